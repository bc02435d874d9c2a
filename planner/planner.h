// kumo plan, as a function: config + provider -> plan (or the errors that prevent one).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "planner/config/diagnostics.h"
#include "planner/config/model.h"
#include "planner/desired.h"
#include "planner/observe.h"
#include "planner/plan.h"
#include "providers/provider.h"

namespace kumo {

struct PlanOptions {
  std::chrono::milliseconds timeout{10000};
  bool skip_unreachable = false;
  std::vector<std::string> targets;  // addresses; empty = everything
};

struct PlanResult {
  std::optional<Plan> plan;  // unset when errors say why there is none
  Diagnostics errors;
  std::vector<ObservedHost> observed;
  DesiredCluster desired;
};

PlanResult make_plan(const ClusterConfig& cfg, Provider& provider, const PlanOptions& options,
                     const HostObserved& on_host = {});

// What kumo runs VMs with on this host: kvm or qemu (software emulation).
std::string resolve_virt_type(const HostConfig& host, const HostFacts& facts);

}  // namespace kumo
