// diff(desired, observed) -> changes. Pure: no host access, no printing. Split by kind:
// differ.cpp (hosts, orphans, deletes), diff_network.cpp, diff_vm.cpp, diff_volumes.cpp.
#pragma once

#include <string>
#include <vector>

#include "planner/change.h"
#include "planner/config/diagnostics.h"
#include "planner/desired.h"
#include "providers/observed.h"

namespace kumo {

struct DiffResult {
  std::vector<ResourceChange> changes;  // dependency order; deletes last, in reverse
  Diagnostics errors;                   // conflicts and refusals: the plan must not be applied
  std::vector<std::string> warnings;
};

// `observed` holds every host of the cluster; unreachable ones are left alone. `desired` is
// placed (every instance has its host, or "" when it cannot be known) with its networks expanded.
// `replace`: VM addresses to recreate although nothing changed (kumo apply --replace).
DiffResult diff(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                const std::vector<std::string>& replace = {});

// The observed state's identity: a saved plan is stale when this changes.
std::string fingerprint(const std::vector<ObservedHost>& observed);

// Keeps the changes to `targets` (addresses such as vm.web-1) and what they depend on.
std::vector<ResourceChange> filter_targets(const std::vector<ResourceChange>& changes,
                                           const DesiredCluster& desired,
                                           const std::vector<std::string>& targets);

}  // namespace kumo
