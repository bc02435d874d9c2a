#include "planner/lock_pools.h"

namespace kumo {

void make_lock_pools(HostConnector& connector, const std::vector<LockPool>& pools,
                     std::chrono::milliseconds timeout) {
  for (const auto& p : pools) {
    auto session = connector.connect(p.target, timeout);
    session->define_pool(p.spec);
  }
}

}  // namespace kumo
