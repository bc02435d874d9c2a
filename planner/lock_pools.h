// The cluster lock lives in each host's kumo pool (lock.h). When that pool is one kumo makes
// (hosts.<h>.pool names an entry of hosts.<h>.pools) and is not there yet, the lock cannot be
// taken there before the pool is made, and nothing may be made before the plan is shown and
// accepted. So: such hosts are found first and left out of the lock; the plan is made; once it
// is accepted their pools are made (as the plan says) and the lock is taken there too.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "providers/host_session.h"
#include "providers/provider.h"

namespace kumo {

struct LockPool {
  HostTarget target;
  PoolSpec spec;  // target.pool
};

// Makes each pool (defined, built, started, autostarted; as the plan's pool step would). Throws
// HostError naming the host.
void make_lock_pools(HostConnector& connector, const std::vector<LockPool>& pools,
                     std::chrono::milliseconds timeout);

}  // namespace kumo
