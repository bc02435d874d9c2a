#include "planner/lock_pools.h"

namespace kumo {

std::vector<LockPool> missing_lock_pools(HostConnector& connector,
                                         const std::vector<LockPool>& candidates,
                                         std::chrono::milliseconds timeout) {
  std::vector<LockPool> out;
  for (const auto& c : candidates) {
    try {
      auto session = connector.connect(c.target, timeout);
      if (!session->pool(c.spec.name)) out.push_back(c);
    } catch (const HostError&) {
      // Unreachable or failing: the lock says so, naming the host.
    }
  }
  return out;
}

void make_lock_pools(HostConnector& connector, const std::vector<LockPool>& pools,
                     std::chrono::milliseconds timeout) {
  for (const auto& p : pools) {
    auto session = connector.connect(p.target, timeout);
    session->define_pool(p.spec);
  }
}

}  // namespace kumo
