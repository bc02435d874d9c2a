#include "providers/read_scope.h"

#include <algorithm>

#include "providers/instance_name.h"
#include "providers/ownership.h"

namespace kumo {

bool ReadScope::has_domain(const std::string& domain_name) const {
  if (names.count(domain_name)) return true;
  return std::any_of(groups.begin(), groups.end(),
                     [&](const std::string& g) { return is_instance_of(domain_name, g); });
}

bool ReadScope::has_volume(const std::string& volume_name) const {
  if (network_record(volume_name, cluster)) return true;
  const auto owner = volume_owner(volume_name);
  if (!owner || owner->cluster.empty() || owner->cluster != cluster) return false;
  const std::string instance = volume_instance(owner->address);
  return !instance.empty() && has_domain(instance);
}

std::string volume_instance(const std::string& address) {
  const std::string prefix = "volume.";
  const auto slash = address.find('/');
  if (address.rfind(prefix, 0) != 0 || slash == std::string::npos) return "";
  return address.substr(prefix.size(), slash - prefix.size());
}

ObservedHost::Listed listed(const ObservedHost& host) {
  ObservedHost::Listed out;
  out.domains = static_cast<int>(host.domains.size());
  out.volumes = static_cast<int>(
      std::count_if(host.volumes.begin(), host.volumes.end(),
                    [](const ObservedVolume& v) { return !is_bookkeeping_volume(v.name); }));
  return out;
}

}  // namespace kumo
