#include "planner/observe.h"

namespace kumo {

std::vector<ObservedHost> observe_hosts(Provider& provider, const std::vector<HostTarget>& hosts,
                                        std::chrono::milliseconds timeout,
                                        const HostObserved& on_done, int parallelism) {
  std::vector<ObservedHost> out(hosts.size());  // in the file's host order
  bounded_for(hosts.size(), parallelism, [&](std::size_t i) {
    ObservedHost o = provider.observe(hosts[i], timeout);
    o.host = hosts[i].name;
    o.uri = hosts[i].uri;
    if (on_done) on_done(o);
    out[i] = std::move(o);
  });
  return out;
}

}  // namespace kumo
