#include "planner/observe.h"

#include <future>

namespace kumo {

std::vector<ObservedHost> observe_hosts(Provider& provider, const std::vector<HostTarget>& hosts,
                                        std::chrono::milliseconds timeout,
                                        const HostObserved& on_done) {
  std::vector<std::future<ObservedHost>> pending;
  for (const auto& target : hosts) {
    pending.push_back(std::async(std::launch::async, [&provider, target, timeout, &on_done]() {
      ObservedHost o = provider.observe(target, timeout);
      o.host = target.name;
      o.uri = target.uri;
      if (on_done) on_done(o);
      return o;
    }));
  }
  std::vector<ObservedHost> out;
  for (auto& f : pending) out.push_back(f.get());  // in the file's host order
  return out;
}

}  // namespace kumo
