#include "planner/planner.h"

#include <algorithm>

#include "planner/config/names.h"
#include "planner/differ.h"
#include "planner/placement.h"

namespace kumo {

std::string resolve_virt_type(const HostConfig& host, const HostFacts& facts) {
  switch (host.virt_type) {
    case VirtType::Kvm:
      return "kvm";
    case VirtType::Qemu:
      return "qemu";
    case VirtType::Auto:
      return facts.kvm ? "kvm" : "qemu";
  }
  return "qemu";
}

namespace {

std::vector<std::string> known_addresses(const DesiredCluster& d, const ClusterConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& vm : d.vms) out.push_back(vm.address());
  for (const auto& n : cfg.networks) out.push_back("network." + n.name);
  return out;
}

HostReport report_for(const HostConfig& h, const ObservedHost& o, bool skipped) {
  HostReport r;
  r.name = h.name;
  r.uri = h.uri;
  r.reachable = o.reachable;
  r.skipped = skipped;
  r.error = o.error;
  r.kvm = o.facts.kvm;
  r.virt_type = o.reachable ? resolve_virt_type(h, o.facts) : "";
  r.domains = static_cast<int>(o.domains.size());
  r.networks = static_cast<int>(o.networks.size());
  r.volumes = static_cast<int>(o.volumes.size());
  r.api_calls = o.api_calls;
  r.seconds = o.seconds;
  return r;
}

}  // namespace

PlanResult make_plan(const ClusterConfig& cfg, Provider& provider, const PlanOptions& options,
                     const HostObserved& on_host) {
  PlanResult result;
  result.observed = observe_hosts(provider, cfg.hosts, options.timeout, on_host);

  Plan plan;
  plan.cluster = cfg.name;
  plan.config_file = cfg.file;
  plan.targets = options.targets;
  plan.sensitive_values.assign(cfg.sensitive_values.begin(), cfg.sensitive_values.end());
  for (size_t i = 0; i < cfg.hosts.size(); ++i) {
    const auto& h = cfg.hosts[i];
    const auto& o = result.observed[i];
    if (!o.reachable) {
      if (options.skip_unreachable) {
        plan.warnings.push_back("host " + h.name + " (" + h.uri +
                                ") was NOT looked at: " + o.error + ". Nothing on it is planned.");
      } else {
        result.errors.error({}, o.error + " (use --skip-unreachable to plan the other hosts)");
      }
    } else if (h.virt_type == VirtType::Kvm && !o.facts.kvm) {
      result.errors.error(h.location, "host " + quote(h.name) +
                                          " has virt_type: kvm, but it offers no KVM; use "
                                          "virt_type: auto or qemu");
    } else if (!o.facts.kvm && h.virt_type == VirtType::Auto) {
      plan.warnings.push_back("host " + h.name +
                              " has no KVM: its VMs run under software emulation (QEMU TCG), "
                              "many times slower");
    }
    plan.hosts.push_back(report_for(h, o, !o.reachable && options.skip_unreachable));
  }
  for (const auto& img : cfg.images) {
    if (img.checksum_none)
      plan.warnings.push_back("image " + img.name + " is not verified (checksum: none)");
  }
  if (result.errors.has_errors()) return result;

  result.desired = expand(cfg);
  for (const auto& t : options.targets) {
    const auto known = known_addresses(result.desired, cfg);
    if (std::find(known.begin(), known.end(), t) == known.end()) {
      result.errors.error(
          {}, "--target " + t + ": no such resource in " + cfg.file + did_you_mean(t, known));
    }
  }
  PlacementResult placed = place(cfg, result.observed, result.desired);
  result.errors.append(placed.errors);
  for (const auto& u : placed.unknown) {
    plan.warnings.push_back("vm." + u +
                            " is not planned: it may live on a host that was not looked at");
  }
  expand_networks(cfg, result.desired);
  DiffResult diffed = diff(cfg, result.desired, result.observed);
  result.errors.append(diffed.errors);
  for (auto& w : diffed.warnings) plan.warnings.push_back(std::move(w));
  if (result.errors.has_errors()) return result;

  plan.changes = options.targets.empty()
                     ? std::move(diffed.changes)
                     : filter_targets(diffed.changes, result.desired, options.targets);
  plan.fingerprint = fingerprint(result.observed);
  result.plan = std::move(plan);
  return result;
}

}  // namespace kumo
