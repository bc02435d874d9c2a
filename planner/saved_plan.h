// A saved plan is checked, not trusted: it is carried out only while the hosts are still as they
// were when it was made (the same fingerprint of their observed state).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "planner/observe.h"
#include "planner/plan.h"

namespace kumo {

struct SavedPlanCheck {
  bool current = false;
  std::vector<std::string> unreachable;  // errors of hosts that could not be read
};

// Reads the plan's hosts again (those it skipped as unreachable count as unreachable still).
SavedPlanCheck check_saved_plan(const Plan& plan, Provider& provider,
                                std::chrono::milliseconds timeout,
                                int parallelism = kHostParallelism);

// The hosts a saved plan acts on (not those it skipped): what its apply locks.
std::vector<HostTarget> plan_hosts(const Plan& plan);

}  // namespace kumo
