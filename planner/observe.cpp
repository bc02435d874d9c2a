#include "planner/observe.h"

namespace kumo {
namespace {

using Observe = ObservedHost (Provider::*)(const HostTarget&, std::chrono::milliseconds);

std::vector<ObservedHost> observe_each(Provider& provider, Observe observe,
                                       const std::vector<HostTarget>& hosts,
                                       std::chrono::milliseconds timeout,
                                       const HostObserved& on_done, int parallelism) {
  std::vector<ObservedHost> out(hosts.size());  // in the file's host order
  bounded_for(hosts.size(), parallelism, [&](std::size_t i) {
    ObservedHost o = (provider.*observe)(hosts[i], timeout);
    o.host = hosts[i].name;
    o.uri = hosts[i].uri;
    if (on_done) on_done(o);
    out[i] = std::move(o);
  });
  return out;
}

}  // namespace

std::vector<ObservedHost> observe_hosts(Provider& provider, const std::vector<HostTarget>& hosts,
                                        std::chrono::milliseconds timeout,
                                        const HostObserved& on_done, int parallelism) {
  return observe_each(provider, &Provider::observe, hosts, timeout, on_done, parallelism);
}

std::vector<ObservedHost> observe_host_details(Provider& provider,
                                               const std::vector<HostTarget>& hosts,
                                               std::chrono::milliseconds timeout, int parallelism) {
  return observe_each(provider, &Provider::observe_details, hosts, timeout, {}, parallelism);
}

}  // namespace kumo
