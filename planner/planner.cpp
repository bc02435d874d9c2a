#include "planner/planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "planner/config/names.h"
#include "planner/differ.h"
#include "planner/placement.h"
#include "providers/ownership.h"
#include "providers/redact.h"

namespace kumo {

std::string resolve_virt_type(VirtType wanted, const HostFacts& facts) {
  switch (wanted) {
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

HostReport report_for(const DesiredHost& h, const ObservedHost& o, bool skipped) {
  HostReport r;
  r.name = h.name;
  r.uri = h.uri;
  r.uri_sensitive = h.sensitive.has("uri");
  r.pool = h.pool;
  r.reachable = o.reachable;
  r.skipped = skipped;
  r.error = o.error;
  r.kvm = o.facts.kvm;
  r.virt_type = o.reachable ? resolve_virt_type(h.virt_type, o.facts) : "";
  r.domains = static_cast<int>(o.domains.size());
  r.networks = static_cast<int>(o.networks.size());
  // kumo's bookkeeping is no object: the lock (there during apply, not during plan), network
  // records, image markers and serial-console logs (there once a VM has run) are not counted.
  r.volumes = static_cast<int>(std::count_if(o.volumes.begin(), o.volumes.end(), [](const auto& v) {
    return !is_bookkeeping_volume(v.name);
  }));
  if (o.scoped) {  // what the host has, not what was read
    r.scoped = true;
    r.domains = o.scoped->domains;
    r.volumes = o.scoped->volumes;
  }
  r.api_calls = o.api_calls;
  r.seconds = o.seconds;
  r.drain = h.drain;
  r.migration_socket_dir = h.migration.socket_dir;
  r.migration_address = h.migration.address;
  return r;
}

// Every host's report, and the errors or warnings about reaching it and its KVM.
void check_hosts(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                 const PlanOptions& options, Plan& plan, Diagnostics& errors) {
  for (std::size_t i = 0; i < desired.hosts.size(); ++i) {
    const auto& h = desired.hosts[i];
    const auto& o = observed[i];
    if (!o.reachable) {
      if (options.skip_unreachable) {
        plan.warnings.push_back("host " + h.name + " (" +
                                h.sensitive.show("uri", redact_host_uri(h.uri)) +
                                ") was NOT looked at: " + o.error + ". Nothing on it is planned.");
      } else {
        errors.error({}, o.error + " (use --skip-unreachable to plan the other hosts)");
      }
    } else if (h.virt_type == VirtType::Kvm && !o.facts.kvm) {
      errors.error(h.location, "host " + quote(h.name) +
                                   " has virt_type: kvm, but it offers no KVM; use "
                                   "virt_type: auto or qemu");
    } else if (!o.facts.kvm && h.virt_type == VirtType::Auto) {
      plan.warnings.push_back("host " + h.name +
                              " has no KVM: its VMs run under software emulation (QEMU TCG), "
                              "many times slower");
    }
    plan.hosts.push_back(report_for(h, o, !o.reachable && options.skip_unreachable));
  }
  for (const auto& img : desired.images) {
    const auto& list = img.fetch.checksum_url;
    if (list && list->rfind("http://", 0) == 0)
      plan.warnings.push_back("image " + img.name + " is not really verified: its checksum_url " +
                              redact_url(*list) + " is plain http (use https)");
  }
}

// The VM groups of the file: vm.web stands for every instance of web (docs/addresses.md).
// A VM whose host (pinned, or where it lives) lacks what its machine needs fails the plan, before
// apply: firmware, secure boot, TPM.
void check_machines(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                    Diagnostics& errors) {
  for (const auto& vm : desired.vms) {
    if (vm.host.empty()) continue;
    for (const auto& o : observed) {
      if (o.host != vm.host || !o.reachable) continue;
      if (auto why = machine_refusal(vm, o.facts); !why.empty())
        errors.error(vm.location,
                     vm.address() + " cannot run on host " + quote(vm.host) + ": it " + why);
    }
  }
}

std::vector<std::string> group_addresses(const DesiredCluster& desired) {
  std::vector<std::string> groups;
  for (const auto& vm : desired.vms) {
    const std::string a = "vm." + vm.group;
    if (std::find(groups.begin(), groups.end(), a) == groups.end()) groups.push_back(a);
  }
  return groups;
}

// --target and --replace name things the file has: a VM instance, a VM group, a network.
void check_addresses(const DesiredCluster& desired, const PlanOptions& options,
                     Diagnostics& errors) {
  std::vector<std::string> known, vms;
  for (const auto& vm : desired.vms) vms.push_back(vm.address());
  for (const auto& g : group_addresses(desired))
    if (std::find(vms.begin(), vms.end(), g) == vms.end()) vms.push_back(g);
  known = vms;
  for (const auto& n : desired.network_templates) known.push_back("network." + n.network.name);
  for (const auto& t : options.targets) {
    if (std::find(known.begin(), known.end(), t) == known.end())
      errors.error(
          {}, "--target " + t + ": no such resource in " + desired.file + did_you_mean(t, known));
  }
  for (const auto& r : options.replace) {
    if (std::find(vms.begin(), vms.end(), r) == vms.end()) {
      errors.error({}, "--replace " + r + ": no such VM in " + desired.file +
                           (r.rfind("vm.", 0) == 0 ? "" : " (addresses look like vm.web-0)") +
                           did_you_mean(r, vms));
    }
  }
}

}  // namespace

std::vector<std::string> expand_vm_groups(const std::vector<std::string>& addresses,
                                          const DesiredCluster& desired,
                                          const std::vector<ObservedHost>& observed) {
  std::vector<std::string> out;
  auto add = [&out](const std::string& a) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  for (const auto& a : addresses) {
    const std::size_t before = out.size();
    if (a.rfind("vm.", 0) == 0) {
      const std::string group = a.substr(3);
      for (const auto& vm : desired.vms)
        if (vm.group == group) add(vm.address());
      // Instances the file no longer has (count lowered) that a host still runs.
      for (const auto& host : observed)
        for (const auto& d : host.domains)
          if (d.owner && d.owner->cluster == desired.cluster && d.owner->spec &&
              d.owner->spec->group == group)
            add(d.owner->address);
    }
    if (out.size() == before) add(a);
  }
  return out;
}

namespace {

// kumo destroy --target of VMs reads only what their names tie to them: the domains so named
// and the volumes whose reserved names say they are theirs (providers/read_scope.h). Unset for
// everything else: a network's removal asks which running VMs lose it, so every domain is read.
std::shared_ptr<const ReadScope> destroy_scope(const DesiredCluster& desired,
                                               const PlanOptions& options) {
  if (!options.destroy || options.targets.empty()) return nullptr;
  auto scope = std::make_shared<ReadScope>();
  scope->cluster = desired.cluster;
  for (const auto& t : options.targets) {
    if (t.rfind("vm.", 0) != 0) return nullptr;
    const std::string name = t.substr(3);
    for (const auto& vm : desired.vms) {
      if (vm.group == name) scope->groups.insert(name);  // and what a lowered count left
      if (vm.instance != name && vm.group != name) continue;
      scope->names.insert(vm.instance);
      if (vm.adopted()) scope->names.insert(vm.adopt);
    }
  }
  return scope;
}

// Did the scoped read find every targeted VM of the file, on some host? A domain named otherwise
// (or a VM already gone) is found only by reading every domain.
bool found_every_target(const DesiredCluster& desired, const PlanOptions& options,
                        const std::vector<ObservedHost>& observed) {
  for (const auto& a : expand_vm_groups(options.targets, desired, {})) {
    // A target the file does not have is an error the plan reports, not worth a second read.
    if (std::none_of(desired.vms.begin(), desired.vms.end(),
                     [&](const DesiredVm& vm) { return vm.address() == a; }))
      continue;
    const bool found = std::any_of(observed.begin(), observed.end(), [&](const ObservedHost& h) {
      return std::any_of(h.domains.begin(), h.domains.end(), [&](const ObservedDomain& d) {
        return d.owner && d.owner->cluster == desired.cluster && d.owner->address == a;
      });
    });
    if (!found) return false;
  }
  return true;
}

// A scoped destroy plans the targets alone: the file's other VMs are left out, and of what was
// read (scoped or, `read_scoped` false, in full), only the targets' domains and volumes are kept (a
// name can match another VM's: web-12 alone and group web), with the network records that say whose
// the networks are.
void narrow_to_targets(const std::vector<std::string>& targets, DesiredCluster& desired,
                       std::vector<ObservedHost>& observed, bool read_scoped) {
  const std::set<std::string> keep(targets.begin(), targets.end());
  std::erase_if(desired.vms, [&](const DesiredVm& vm) { return !keep.count(vm.address()); });
  auto ours = [&](const std::optional<Ownership>& o) { return o && o->cluster == desired.cluster; };
  for (auto& h : observed) {
    // A provider that read everything for a scoped read: still count it.
    if (read_scoped && !h.scoped) h.scoped = listed(h);
    std::erase_if(h.domains, [&](const ObservedDomain& d) {
      return !ours(d.owner) || !keep.count(d.owner->address);
    });
    std::erase_if(h.volumes, [&](const ObservedVolume& v) {
      if (network_record(v.name, desired.cluster)) return false;
      if (!ours(v.owner)) return true;
      const std::string instance = volume_instance(v.owner->address);
      return instance.empty() || !keep.count("vm." + instance);
    });
  }
}

// kumo destroy: nothing (or nothing of the targets) is wanted any more.
void drop_destroyed(const PlanOptions& options, DesiredCluster& desired) {
  auto targeted = [&](const std::string& address) {
    return options.targets.empty() || std::find(options.targets.begin(), options.targets.end(),
                                                address) != options.targets.end();
  };
  std::erase_if(desired.vms, [&](const DesiredVm& vm) { return targeted(vm.address()); });
  std::erase_if(desired.networks, [&](const DesiredNetwork& n) { return targeted(n.address()); });
  for (auto& h : desired.hosts) {
    std::erase_if(h.pools, [&](const DesiredPool& p) { return targeted(p.address(h.name)); });
  }
}

std::vector<ResourceChange> chosen_changes(std::vector<ResourceChange> changes,
                                           const DesiredCluster& desired,
                                           const PlanOptions& options) {
  if (!options.destroy) {
    return options.targets.empty() ? std::move(changes)
                                   : filter_targets(changes, desired, options.targets);
  }
  std::erase_if(changes, [](const ResourceChange& c) { return c.action != Action::Delete; });
  if (!options.targets.empty()) {
    std::set<std::string> keep(options.targets.begin(), options.targets.end());
    std::erase_if(changes, [&](const ResourceChange& c) {
      return !keep.count(c.address.str()) && !(c.parent && keep.count(c.parent->str()));
    });
  }
  return changes;
}

// Is the base image `volume` complete on `host` (the volume and its marker)? Partly (volume only)?
std::pair<bool, bool> image_on_host(const std::vector<ObservedHost>& observed,
                                    const std::string& host, const std::string& pool,
                                    const std::string& volume) {
  bool has_volume = false, marker = false;
  for (const auto& o : observed) {
    if (o.host != host || volume.empty()) continue;
    for (const auto& v : o.volumes) {
      if (v.pool != pool) continue;
      has_volume = has_volume || v.name == volume;
      marker = marker || v.name == image_marker_name(volume);
    }
  }
  return {has_volume, marker};
}

// Which hosts need which base image: those where the plan makes a root disk from it. Resolves
// only the images that are needed (resolving may read a checksum list over the network).
void plan_images(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                 const PlanOptions& options, Plan& plan, Diagnostics& errors) {
  std::map<std::string, std::set<std::string>> hosts_of;  // image -> hosts
  for (const auto& c : plan.changes) {
    const VolumePayload* v = c.volume();
    if (!v || c.address.role() != VolumeRole::Root) continue;
    // A live move makes an overlay on the base there; a cold move copies one that needs it.
    if (c.action == Action::Create || c.action == Action::Replace || c.action == Action::Move)
      hosts_of[v->image].insert(c.host);
  }
  std::map<std::string, std::string> volume_of;  // image -> base volume name
  for (const auto& img : desired.images) {
    auto it = hosts_of.find(img.name);
    if (it == hosts_of.end()) continue;
    ResolvedImage r;
    r.checksum = img.checksum;
    if (options.resolve_image) r = options.resolve_image(img);
    if (!r.error.empty()) {
      errors.error(img.location, r.error);
      continue;
    }
    ImagePlan p;
    p.name = img.name;
    p.source = img.source;
    p.fetch = img.fetch;
    p.cached = r.cached;
    p.size = r.size;
    if (r.checksum) {
      p.checksum = r.checksum->str();
      p.volume = image_volume_name(to_string(r.checksum->algo), r.checksum->hex);
      volume_of[img.name] = p.volume;
    }
    for (const auto& host : it->second) {
      const DesiredHost* dh = desired.find_host(host);
      const auto [has_volume, complete] =
          image_on_host(observed, host, dh ? dh->pool : "default", p.volume);
      if (has_volume && complete) {
        p.present_on.push_back(host);
      } else {
        p.upload_to.push_back(host);
        if (has_volume) p.partial_on.push_back(host);
      }
    }
    plan.images.push_back(std::move(p));
  }
  for (auto& c : plan.changes) {
    auto* v = std::get_if<VolumePayload>(&c.desired);
    if (!v || v->image.empty()) continue;
    auto it = volume_of.find(v->image);
    v->base_volume = it == volume_of.end() ? "" : it->second;
  }
}

}  // namespace

PlanResult make_plan(DesiredCluster desired_in, Provider& provider, const PlanOptions& options,
                     const HostObserved& on_host) {
  PlanResult result;
  result.desired = std::move(desired_in);
  DesiredCluster& desired = result.desired;
  auto hosts = desired.targets();
  auto scope = destroy_scope(desired, options);
  const bool scoped_destroy = scope != nullptr;
  for (auto& h : hosts) h.scope = scope;
  result.observed = observe_hosts(provider, hosts, options.timeout, on_host, options.parallelism);
  if (scope && !found_every_target(desired, options, result.observed)) {
    scope = nullptr;  // read again in full what could be read (an unreachable host is not retried)
    std::vector<HostTarget> again;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      hosts[i].scope = nullptr;
      if (result.observed[i].reachable) again.push_back(hosts[i]);
    }
    auto full = observe_hosts(provider, again, options.timeout, on_host, options.parallelism);
    for (std::size_t i = 0, j = 0; i < hosts.size(); ++i)
      if (result.observed[i].reachable) result.observed[i] = std::move(full[j++]);
  }

  Plan plan;
  plan.cluster = desired.cluster;
  plan.config_file = desired.file;
  plan.targets = options.targets;
  check_hosts(desired, result.observed, options, plan, result.errors);
  if (result.errors.has_errors()) return result;

  check_addresses(desired, options, result.errors);
  PlanOptions chosen = options;  // vm.web: every instance of web
  chosen.targets = expand_vm_groups(options.targets, desired, result.observed);
  chosen.replace = expand_vm_groups(options.replace, desired, {});
  // Also after a full read (a target its name did not find): the file given may hold only the
  // targets' entries (destroy_scoped_config), and nothing but the targets is planned either way.
  if (scoped_destroy) narrow_to_targets(chosen.targets, desired, result.observed, scope != nullptr);
  PlacementResult placed = place(result.observed, desired);
  result.errors.append(placed.errors);
  check_machines(desired, result.observed, result.errors);
  for (const auto& u : placed.unknown) {
    plan.warnings.push_back("vm." + u +
                            " is not planned: it may live on a host that was not looked at");
  }
  expand_networks(desired);
  std::set<std::string> in_file;  // what kumo destroy takes although the file still has it
  if (options.destroy) {
    for (const auto& vm : desired.vms) in_file.insert(vm.host + "/" + vm.address());
    for (const auto& n : desired.networks) in_file.insert(n.host + "/" + n.address());
    drop_destroyed(chosen, desired);
    plan.destroy = true;
  }
  DiffResult diffed = diff(desired, result.observed, chosen.replace);
  result.errors.append(diffed.errors);
  for (auto& w : diffed.warnings) plan.warnings.push_back(std::move(w));
  if (result.errors.has_errors()) return result;

  plan.changes = chosen_changes(std::move(diffed.changes), desired, chosen);
  for (auto& c : plan.changes) {
    const auto detour = placed.detours.find(c.address.name);
    if (c.kind() == ResourceKind::Vm && c.action == Action::Create && c.reason.empty() &&
        detour != placed.detours.end())
      c.reason = detour->second;
  }
  for (auto& c : plan.changes) {
    if (c.action == Action::Delete && !c.parent && in_file.count(c.host + "/" + c.address.str()) &&
        c.reason.rfind("no longer in ", 0) == 0)
      c.reason = "kumo destroy (still in " + desired.file + ")";
  }
  plan_images(desired, result.observed, options, plan, result.errors);
  if (result.errors.has_errors()) return result;
  plan.fingerprint = fingerprint(result.observed);
  result.plan = std::move(plan);
  return result;
}

}  // namespace kumo
