#include "planner/saved_plan.h"

#include "planner/differ.h"

namespace kumo {

SavedPlanCheck check_saved_plan(const Plan& plan, Provider& provider,
                                std::chrono::milliseconds timeout, int parallelism) {
  std::vector<HostTarget> targets;
  for (const auto& h : plan.hosts) targets.push_back(h.target());
  auto observed = observe_hosts(provider, targets, timeout, {}, parallelism);
  for (std::size_t i = 0; i < observed.size(); ++i) {
    if (!plan.hosts[i].skipped) continue;
    observed[i] = ObservedHost{};  // as the plan saw it: not looked at
    observed[i].host = plan.hosts[i].name;
    observed[i].uri = plan.hosts[i].uri;
  }
  SavedPlanCheck check;
  check.current = fingerprint(observed) == plan.fingerprint;
  for (const auto& o : observed) {
    if (!o.reachable && !o.error.empty()) check.unreachable.push_back(o.error);
  }
  return check;
}

std::vector<HostTarget> plan_hosts(const Plan& plan) {
  std::vector<HostTarget> out;
  for (const auto& h : plan.hosts) {
    if (!h.skipped) out.push_back(h.target());
  }
  return out;
}

}  // namespace kumo
