#include "planner/planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "planner/config/names.h"
#include "planner/differ.h"
#include "planner/placement.h"
#include "planner/plan_io.h"
#include "providers/ownership.h"

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
  r.pool = h.pool;
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

// Which hosts need which base image: those where the plan makes a root disk from it. Resolves
// only the images that are needed (resolving may read a checksum list over the network).
void plan_images(const ClusterConfig& cfg, const std::vector<ObservedHost>& observed,
                 const PlanOptions& options, Plan& plan, Diagnostics& errors) {
  std::map<std::string, std::set<std::string>> hosts_of;  // image -> hosts
  for (const auto& c : plan.changes) {
    if (c.kind != "volume" || c.address.size() < 5 ||
        c.address.compare(c.address.size() - 5, 5, "/root") != 0)
      continue;
    if (c.action != Action::Create && c.action != Action::Replace) continue;
    hosts_of[c.desired.value("image", "")].insert(c.host);
  }
  std::map<std::string, std::string> volume_of;  // image -> base volume name
  for (const auto& img : cfg.images) {
    auto it = hosts_of.find(img.name);
    if (it == hosts_of.end()) continue;
    ResolvedImage r;
    if (options.resolve_image) {
      r = options.resolve_image(img);
    } else {
      r.checksum = img.checksum;
    }
    if (!r.error.empty()) {
      errors.error(img.location, r.error);
      continue;
    }
    ImagePlan p;
    p.name = img.name;
    p.source = img.url ? *img.url : img.path.value_or("");
    if (const auto at = p.source.find('@'); at != std::string::npos) {
      const auto scheme = p.source.find("://");
      if (scheme != std::string::npos && at > scheme)
        p.source = p.source.substr(0, scheme + 3) + "***" + p.source.substr(at);
    }
    p.fetch = image_config_to_json(img);
    p.cached = r.cached;
    p.size = r.size;
    if (r.checksum) {
      p.checksum = r.checksum->str();
      p.volume = image_volume_name(to_string(r.checksum->algo), r.checksum->hex);
      volume_of[img.name] = p.volume;
    }
    for (const auto& host : it->second) {
      const HostConfig* hc = cfg.find_host(host);
      const std::string pool = hc ? hc->pool : "default";
      bool volume = false, marker = false;
      for (const auto& o : observed) {
        if (o.host != host) continue;
        for (const auto& v : o.volumes) {
          if (v.pool != pool || p.volume.empty()) continue;
          volume = volume || v.name == p.volume;
          marker = marker || v.name == image_marker_name(p.volume);
        }
      }
      if (volume && marker) {
        p.present_on.push_back(host);
      } else {
        p.upload_to.push_back(host);
        if (volume) p.partial_on.push_back(host);
      }
    }
    plan.images.push_back(std::move(p));
  }
  for (auto& c : plan.changes) {
    if (!c.desired.is_object() || !c.desired.contains("image")) continue;
    auto v = volume_of.find(c.desired["image"].get<std::string>());
    c.desired["base_volume"] = v == volume_of.end() ? "" : v->second;
  }
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
  for (const auto& r : options.replace) {
    std::vector<std::string> vms;
    for (const auto& vm : result.desired.vms) vms.push_back(vm.address());
    if (std::find(vms.begin(), vms.end(), r) == vms.end()) {
      result.errors.error({},
                          "--replace " + r + ": no such VM in " + cfg.file +
                              (r.rfind("vm.", 0) == 0 ? "" : " (addresses look like vm.web-0)") +
                              did_you_mean(r, vms));
    }
  }
  PlacementResult placed = place(cfg, result.observed, result.desired);
  result.errors.append(placed.errors);
  for (const auto& u : placed.unknown) {
    plan.warnings.push_back("vm." + u +
                            " is not planned: it may live on a host that was not looked at");
  }
  expand_networks(cfg, result.desired);
  if (options.destroy) {
    // Nothing (or nothing of the targets) is wanted any more: the differ plans its removal.
    auto targeted = [&](const std::string& address) {
      return options.targets.empty() || std::find(options.targets.begin(), options.targets.end(),
                                                  address) != options.targets.end();
    };
    std::erase_if(result.desired.vms, [&](const DesiredVm& vm) { return targeted(vm.address()); });
    std::erase_if(result.desired.networks,
                  [&](const DesiredNetwork& n) { return targeted(n.address()); });
  }
  DiffResult diffed = diff(cfg, result.desired, result.observed, options.replace);
  result.errors.append(diffed.errors);
  for (auto& w : diffed.warnings) plan.warnings.push_back(std::move(w));
  if (result.errors.has_errors()) return result;

  if (options.destroy) {
    std::erase_if(diffed.changes,
                  [](const ResourceChange& c) { return c.action != Action::Delete; });
    if (!options.targets.empty()) {
      std::set<std::string> keep(options.targets.begin(), options.targets.end());
      std::erase_if(diffed.changes, [&](const ResourceChange& c) {
        return !keep.count(c.address) && !keep.count(c.parent);
      });
    }
    plan.changes = std::move(diffed.changes);
  } else {
    plan.changes = options.targets.empty()
                       ? std::move(diffed.changes)
                       : filter_targets(diffed.changes, result.desired, options.targets);
  }
  plan_images(cfg, result.observed, options, plan, result.errors);
  if (result.errors.has_errors()) return result;
  plan.fingerprint = fingerprint(result.observed);
  result.plan = std::move(plan);
  return result;
}

}  // namespace kumo
