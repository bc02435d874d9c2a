// Chooses a host for every VM instance. Stable: an instance that exists stays where it is (a pin
// to another host is a move, decided by the differ). Deterministic: the same file and the same
// live state give the same answer. New instances go, in file order, to the hosts that have all
// their networks, respect their anti-affinity group and have room.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "planner/config/diagnostics.h"
#include "planner/desired.h"
#include "providers/observed.h"

namespace kumo {

struct PlacementResult {
  Diagnostics errors;
  // Instances whose host cannot be known because a host was skipped as unreachable.
  std::vector<std::string> unknown;
  // New instances placed elsewhere than where they would go with every host open to them, and
  // why: instance -> "placed on hv2, not hv1 (a domain named "web-1" that kumo did not make is
  // there)".
  std::map<std::string, std::string> detours;
};

// hosts: every observed host, reachable or not (unreachable ones are never chosen, and instances
// that could live there are reported as unknown rather than created twice).
PlacementResult place(const std::vector<ObservedHost>& hosts, DesiredCluster& desired);

// Why `vm`'s machine (firmware: uefi, secure_boot, tpm) cannot run on a host with these facts,
// with what to install there; "" if it can, or if the host does not say.
std::string machine_refusal(const DesiredVm& vm, const HostFacts& facts);

}  // namespace kumo
