// How much of a host a read fetches. By default everything; `kumo destroy --target vm.…` needs
// only what its names can tie to those VMs (the planner falls back to a full read when that finds
// a target nowhere, docs/performance.md).
#pragma once

#include <set>
#include <string>

#include "providers/observed.h"

namespace kumo {

// The objects a scoped read fetches in full. Every domain and volume is still listed (one call
// per kind, to count them), and networks and pools are read whole, but only these domains' and
// volumes' definitions are fetched:
//  - domains named in `names` (instance names, adopted domains' names) or instances of `groups`
//    (<group>-<n>, what a lowered count leaves behind);
//  - volumes whose reserved names (providers/ownership.h) give one of those instances of
//    `cluster`, and the cluster's network records.
struct ReadScope {
  std::string cluster;
  std::set<std::string> names;
  std::set<std::string> groups;

  bool has_domain(const std::string& domain_name) const;
  bool has_volume(const std::string& volume_name) const;
};

// The instance a volume's owner address names (volume.web-0/root: web-0), "" for any other.
std::string volume_instance(const std::string& address);

// What a host has in all, as a scoped read reports it (ObservedHost::scoped): its domains, and
// its volumes other than kumo's bookkeeping.
ObservedHost::Listed listed(const ObservedHost& host);

}  // namespace kumo
