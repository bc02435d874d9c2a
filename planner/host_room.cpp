#include "planner/host_room.h"

#include <cmath>

#include "planner/config/units.h"

namespace kumo {

int HostRoom::cpus_free() const {
  const double left = cpu_capacity - cpus_used;
  return left > 0 ? static_cast<int>(std::floor(left)) : 0;
}

std::string HostRoom::refusal(int cpus, std::uint64_t memory) const {
  if (memory_used + memory > memory_capacity) {
    return "not enough memory (" + format_size(memory_free()) + " free of " +
           format_size(memory_capacity) + ")";
  }
  if (cpus_used + cpus > cpu_capacity) {
    return "not enough vCPUs (" + std::to_string(cpus_used) + " of " +
           std::to_string(static_cast<int>(cpu_capacity)) + " in use)";
  }
  return "";
}

HostRoom empty_room(const DesiredHost& host, const HostFacts& facts) {
  HostRoom room;
  room.memory_capacity =
      static_cast<std::uint64_t>(static_cast<double>(facts.memory) * host.memory_overcommit);
  room.cpu_capacity = facts.cpus * host.cpu_overcommit;
  return room;
}

bool is_cluster_vm(const ObservedDomain& domain, const std::string& cluster) {
  return domain.owner && domain.owner->cluster == cluster &&
         domain.owner->address.rfind("vm.", 0) == 0;
}

}  // namespace kumo
