// The differ's VMs: created where they are new, compared with what their metadata recorded and
// how they run, and so updated (live or with a restart) or replaced.
#include <algorithm>

#include "planner/differ_internal.h"
#include "planner/move_copies.h"
#include "providers/digest.h"
#include "providers/ownership.h"
#include "providers/redact.h"

namespace kumo::differ {

VmPayload vm_payload(const DesiredVm& vm) {
  VmPayload p;
  p.name = vm.instance;
  p.record = vm.spec();
  p.spec_hash = vm.spec_hash();
  p.cpus = vm.cpus;
  p.memory = vm.memory;
  p.running = vm.running;
  p.autostart = vm.autostart;
  p.root_volume = vm.root_volume;
  p.seed_volume = vm.seed_volume;
  for (const auto& d : vm.data_disks) {
    p.data_disks.emplace_back(d.name, d.volume);
    if (!d.pool.empty()) p.data_disk_pools[d.name] = d.pool;
  }
  std::sort(p.data_disks.begin(), p.data_disks.end());
  for (const auto& n : vm.nics)
    p.nics.push_back({n.libvirt_network, n.bridge, n.mac, n.direct, n.mode, n.model, n.queues});
  p.wait_for = vm.wait_for;
  p.wait_timeout = vm.wait_timeout;
  return p;
}

namespace {

std::vector<std::string> nic_lines(const DesiredVm& vm) {
  return nics_text(vm.spec().nics);
}

// The cloud-init documents that changed since the record, as document attributes: the recorded
// masked text before (absent when the kumo that made the VM recorded none), the masked text now.
std::vector<AttributeChange> document_changes(const DesiredVm& vm, const VmRecord* rec) {
  std::vector<AttributeChange> out;
  auto add = [&](const char* name, const std::string& now, const std::string& now_shown,
                 const std::string& hash, const std::string& shown) {
    if (rec && hash == sha256_hex(now)) return;
    Value before;
    if (rec && (!shown.empty() || hash == sha256_hex(""))) before = text(shown);
    if (now_shown.empty() && std::holds_alternative<std::monostate>(before)) before = text("");
    out.push_back(document(name, std::move(before), now_shown));
  };
  add("user_data", vm.user_data, vm.user_data_shown, rec ? rec->user_data_sha256 : "",
      rec ? rec->user_data_shown : "");
  add("network_config", vm.network_config, vm.network_config_shown,
      rec ? rec->network_config_sha256 : "", rec ? rec->network_config_shown : "");
  return out;
}

// The machine (firmware, secure boot, TPM) is fixed when the domain is made: a change is a
// replace, each field named.
template <typename Forcing>
void machine_changes(const VmRecord* rec, const VmRecord& want, Forcing&& forcing) {
  if (!rec) return;  // no record: the image forces the replace already
  auto fw = [](const std::string& f) { return text(f.empty() ? "bios" : f); };
  if (rec->firmware != want.firmware) forcing("firmware", fw(rec->firmware), fw(want.firmware));
  if (rec->secure_boot != want.secure_boot)
    forcing("secure_boot", flag(rec->secure_boot), flag(want.secure_boot));
  if (rec->tpm != want.tpm) forcing("tpm", flag(rec->tpm), flag(want.tpm));
}

bool machine_differs(const VmRecord* rec, const VmRecord& want) {
  return rec && (rec->firmware != want.firmware || rec->secure_boot != want.secure_boot ||
                 rec->tpm != want.tpm);
}

}  // namespace

void Differ::diff_vm(const DesiredVm& vm) {
  auto hit = hosts_.find(vm.host);
  if (hit == hosts_.end()) return;
  if (vm.adopted()) return diff_adopted(vm);
  const HostIndex& idx = hit->second;
  auto it = idx.domains.find(vm.instance);
  if (it != idx.domains.end()) {
    const ObservedDomain& d = *it->second;
    if (!d.owner || d.owner->cluster != desired_.cluster || d.owner->address != vm.address()) {
      const std::string who =
          !d.owner ? "kumo did not make it"
                   : "it belongs to " + (d.owner->cluster == desired_.cluster
                                             ? std::string("this cluster's ") + d.owner->address
                                             : "cluster " + quote(d.owner->cluster));
      result_.errors.error(vm.location,
                           "host " + quote(vm.host) + ": a domain named " + quote(vm.instance) +
                               " already exists and " + who +
                               "; kumo never touches it. Rename the VM or remove that domain");
      return;
    }
    // An interrupted move's copy here that is not the VM (move_copies.h): the VM is moved
    // here again from the copy that is, this one removed first.
    auto on = [&](const std::string& h) { return copy_on(h, vm); };
    if (copy_role(vm.host, d, on) != CopyRole::Vm) {
      for (const auto& [name, other] : hosts_) {
        const ObservedDomain* o = copy_on(name, vm);
        if (name == vm.host || !o || copy_role(name, *o, on) != CopyRole::Vm) continue;
        spare_copies_except(vm, {name, vm.host});
        move_from(vm, idx, *o, name, &d);
        return;
      }
    }
    spare_copies_except(vm, {vm.host});
    vm_compare(vm, idx, d);
    return;
  }
  // Not on its host: moved there (a new pin, a drained host), or new. The copy that counts is
  // the one that is not an interrupted move's unverified copy.
  for (const auto& [name, other] : hosts_) {
    if (name == vm.host) continue;
    const ObservedDomain* o = copy_on(name, vm);
    if (!o ||
        copy_role(name, *o, [&](const std::string& h) { return copy_on(h, vm); }) != CopyRole::Vm)
      continue;
    spare_copies_except(vm, {name});
    move_from(vm, idx, *o, name, nullptr);
    return;
  }
  vm_create(vm, idx, nullptr, "");
}

// Every copy of `vm` but those on `keep` holds no data of its own: the VM lives in another.
void Differ::spare_copies_except(const DesiredVm& vm, const std::set<std::string>& keep) {
  for (const auto& [name, other] : hosts_) {
    if (!keep.count(name) && copy_on(name, vm)) spare_copies_.insert(name + "/" + vm.instance);
  }
}

// A VM found on `from_host` that should be on vm.host: moved with its data, unless the change
// makes it anew anyway (a replace, which moves nothing).
void Differ::move_from(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& src,
                       const std::string& from_host, const ObservedDomain* dest_copy) {
  const VmRecord* rec = src.owner->spec ? &*src.owner->spec : nullptr;
  const VmRecord want = vm.spec();
  const bool anew = !rec || strip_url_secrets(rec->image_id) != want.image_id ||
                    rec->nics != want.nics || machine_differs(rec, want) ||
                    replace_requested_.count(vm.address()) > 0 ||
                    (vm.lifecycle.on_user_data_change == UserDataChange::Recreate &&
                     !document_changes(vm, rec).empty());
  if (anew) {
    vm_create(vm, idx, &src, from_host);
  } else {
    vm_move(vm, idx, src, from_host, dest_copy);
  }
}

void Differ::vm_create(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain* moved_from,
                       const std::string& from_host) {
  ResourceChange c;
  c.address = Address::vm(vm.instance);
  c.host = vm.host;
  c.desired = vm_payload(vm);
  c.action = Action::Create;
  c.steps.start = c.steps.wait_ready = vm.running;
  c.attributes = {attr("image", {}, text(vm.image)), attr("cpus", {}, number(vm.cpus)),
                  attr("memory", {}, size_text(vm.memory))};
  if (vm.disk) c.attributes.push_back(attr("disk", {}, size_text(*vm.disk)));
  for (const auto& d : vm.data_disks)
    c.attributes.push_back(attr("disks." + d.name, {}, size_text(d.size)));
  c.attributes.push_back(attr("networks", {}, Value(nic_lines(vm))));
  if (vm.firmware == Firmware::Uefi) c.attributes.push_back(attr("firmware", {}, text("uefi")));
  if (vm.secure_boot) c.attributes.push_back(attr("secure_boot", {}, flag(true)));
  if (vm.tpm) c.attributes.push_back(attr("tpm", {}, flag(true)));
  c.attributes.push_back(document("user_data", {}, vm.user_data_shown));
  if (!vm.network_config_shown.empty())
    c.attributes.push_back(document("network_config", {}, vm.network_config_shown));
  if (!vm.running) c.attributes.push_back(attr("running", {}, flag(false)));
  if (moved_from) {
    c.action = Action::Replace;
    c.disruption = Disruption::Recreate;
    c.observed = ObservedRef{moved_from->name, moved_from->uuid, from_host, moved_from->state, 0};
    auto h = attr("host", text(from_host), text(vm.host));
    h.forces_replacement = true;
    c.attributes.insert(c.attributes.begin(), h);
    c.reason = "pinned to " + vm.host + ": moves from " + from_host + " (made anew there)";
    c.destroys_data = !vm.data_disks.empty();
    if (vm.lifecycle.prevent_destroy) {
      result_.errors.error(vm.location, vm.address() +
                                            " has lifecycle.prevent_destroy, but moving it from " +
                                            from_host + " to " + vm.host + " would destroy it");
    }
  }
  std::vector<ResourceChange> children;
  volumes_for(vm, idx, true, c, children);
  result_.changes.push_back(std::move(c));
  for (auto& ch : children) result_.changes.push_back(std::move(ch));
}

void Differ::vm_compare(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& d) {
  ResourceChange c;
  c.address = Address::vm(vm.instance);
  c.host = vm.host;
  c.desired = vm_payload(vm);
  c.observed = ObservedRef{d.name, d.uuid, "", d.state, 0};
  const VmRecord* rec = d.owner->spec ? &*d.owner->spec : nullptr;
  const VmRecord want = vm.spec();
  auto forcing = [&](const std::string& name, Value before, Value after) {
    auto a = attr(name, std::move(before), std::move(after));
    a.forces_replacement = true;
    c.attributes.push_back(std::move(a));
  };
  // Older kumo recorded an image's whole URL, credentials and all: the same image, not drift.
  if (!rec || strip_url_secrets(rec->image_id) != want.image_id)
    forcing("image", rec ? text(rec->image) : Value(), text(vm.image));
  if (vm.lifecycle.on_user_data_change == UserDataChange::Recreate) {
    for (auto& a : document_changes(vm, rec)) {
      a.forces_replacement = true;
      c.attributes.push_back(std::move(a));
    }
  }
  if (!rec || rec->nics != want.nics)
    forcing("networks", Value(nics_text(rec ? rec->nics : std::vector<NicRecord>{})),
            Value(nic_lines(vm)));
  machine_changes(rec, want, forcing);
  if (machine_differs(rec, want)) {
    c.reason =
        "firmware, secure boot and the TPM are fixed when a domain is made: made anew (a new "
        "root disk from the image, cloud-init runs again" +
        std::string(vm.data_disks.empty() ? ")" : "; data disks are kept)");
  }
  if (replace_requested_.count(vm.address())) {
    forcing("replace", {}, text("requested"));
    c.reason =
        "replaced on request (--replace): new root disk from the image, cloud-init runs "
        "again" +
        std::string(vm.data_disks.empty() ? "" : "; data disks are kept");
  }
  const bool replace = !c.attributes.empty();
  if (replace && vm.adopted()) {
    result_.errors.error(vm.location,
                         vm.address() +
                             " was adopted, and kumo cannot make it anew (it has no "
                             "image and its disks are not kumo's), but " +
                             c.attributes.front().name +
                             " changed. Change the domain by hand, then kumo import it again");
    return;
  }
  if (!d.owner->moving_from.empty() || !d.owner->moved_to.empty()) {
    // Its source is gone: this copy is the VM. Recorded as a finished move.
    const bool from = !d.owner->moving_from.empty();
    c.attributes.push_back(attr(from ? "moving_from" : "moved_to",
                                text(from ? d.owner->moving_from : d.owner->moved_to), Value()));
    c.reason =
        "an interrupted move left this copy marked as unfinished; the other copy is gone, "
        "so it is the VM";
  }
  Disruption disruption = Disruption::None;
  std::string restart_why;
  if (!replace) compare_live(vm, d, c, disruption, restart_why);
  if (vm.adopted() && !restart_why.empty()) {
    // kumo never rewrites the definition of a domain it did not make: only live changes.
    result_.errors.error(vm.location, vm.address() +
                                          " was adopted: kumo changes it only live (vCPUs and "
                                          "memory within its maximums, autostart, running), "
                                          "but " +
                                          restart_why);
    return;
  }
  std::vector<ResourceChange> children;
  volumes_for(vm, idx, replace, c, children);
  if (!replace) attach_leftover_data(vm, idx, d, c, disruption);
  if (replace) c.steps.remove_old = true;
  finish_vm(vm, replace, disruption, restart_why, c, children);
}

// Fields of a VM that stays: compared with the live domain (drift when live left what kumo
// recorded) and with the record.
void Differ::compare_live(const DesiredVm& vm, const ObservedDomain& d, ResourceChange& c,
                          Disruption& disruption, std::string& restart_why) {
  const VmRecord* rec = d.owner->spec ? &*d.owner->spec : nullptr;
  auto live_or_restart = [&](const std::string& name, long long live, long long maximum,
                             long long desired, bool recorded_same, Value before, Value after) {
    if (live == desired) return;
    auto a = attr(name, std::move(before), std::move(after));
    a.drift = recorded_same;
    c.attributes.push_back(std::move(a));
    if (!d.active) return;
    if (desired <= maximum) {
      disruption = worst(disruption, Disruption::Live);
    } else {
      disruption = Disruption::Restart;
      restart_why += std::string(restart_why.empty() ? "" : "; ") + name +
                     " is beyond what the running domain can grow to (" +
                     (name == "memory" ? format_size(static_cast<std::uint64_t>(maximum))
                                       : std::to_string(maximum)) +
                     ")";
    }
  };
  live_or_restart("cpus", d.vcpus, d.max_vcpus, vm.cpus, rec && rec->cpus == vm.cpus,
                  number(d.vcpus), number(vm.cpus));
  live_or_restart("memory", static_cast<long long>(d.memory), static_cast<long long>(d.max_memory),
                  static_cast<long long>(vm.memory), rec && rec->memory == vm.memory,
                  size_text(d.memory), size_text(vm.memory));
  if (d.active && vm.running && (vm.cpus < d.vcpus || vm.memory < d.memory))
    c.steps.frees_room = true;
  // Running, but never seen ready since it was defined: an apply stopped while waiting.
  if (vm.running && d.active && vm.wait_for != WaitFor::None && !d.owner->ready) {
    c.attributes.push_back(attr("ready", flag(false), flag(true)));
    c.reason = "not seen ready since it was defined (an apply was interrupted): wait for it";
    c.steps.wait_ready = true;
  }
  if (d.autostart != vm.autostart)
    c.attributes.push_back(attr("autostart", flag(d.autostart), flag(vm.autostart)));
  if (vm.running && !d.active) {
    c.attributes.push_back(attr("running", flag(false), flag(true)));
    c.steps.start = c.steps.wait_ready = true;
  } else if (!vm.running && d.active) {
    c.attributes.push_back(attr("running", flag(true), flag(false)));
    disruption = worst(disruption, Disruption::Restart);
  }
  if ((!rec || rec->instance_id != vm.instance_id) &&
      vm.lifecycle.on_user_data_change == UserDataChange::Ignore) {
    for (auto& a : document_changes(vm, rec)) c.attributes.push_back(std::move(a));
    c.reason =
        "on_user_data_change: ignore: only the seed is updated; the running instance keeps its "
        "first boot";
  }
  if (rec && rec->cache != vm.cache) {
    auto shown = [](const std::string& c) { return text(c.empty() ? "none" : c); };
    c.attributes.push_back(attr("cache", shown(rec->cache), shown(vm.cache)));
    if (d.active && vm.running) {
      disruption = Disruption::Restart;
      restart_why += std::string(restart_why.empty() ? "" : "; ") +
                     "QEMU opens the disks with their cache mode only when it starts";
    }
  }
  const bool recorded_protect = rec && rec->prevent_destroy;
  if (recorded_protect != vm.lifecycle.prevent_destroy)
    c.attributes.push_back(
        attr("prevent_destroy", flag(recorded_protect), flag(vm.lifecycle.prevent_destroy)));
  if (!rec || rec->group != vm.group)
    c.attributes.push_back(attr("group", rec ? text(rec->group) : Value(), text(vm.group)));
}

// A data volume that exists but is not in the domain: an apply stopped between making the
// volume and attaching it. Attached now (hot-plugged when the VM runs).
void Differ::attach_leftover_data(const DesiredVm& vm, const HostIndex& idx,
                                  const ObservedDomain& d, ResourceChange& c,
                                  Disruption& disruption) {
  for (const auto& disk : vm.data_disks) {
    const auto v = idx.volumes.find(disk.volume);
    if (v == idx.volumes.end()) continue;  // made anew: its own change says so
    const bool attached = std::any_of(d.disks.begin(), d.disks.end(), [&](const ObservedDisk& x) {
      return x.path == v->second->path;
    });
    if (attached) continue;
    c.attributes.push_back(
        attr("disks." + disk.name, text("(not attached)"), size_text(disk.size)));
    if (d.active && vm.running) disruption = worst(disruption, Disruption::Live);
    if (c.reason.empty()) {
      c.reason = "data disk " + quote(disk.name) +
                 " exists but is not attached (an apply was interrupted): attached now";
    }
  }
}

void Differ::finish_vm(const DesiredVm& vm, bool replace, Disruption disruption,
                       const std::string& restart_why, ResourceChange& c,
                       std::vector<ResourceChange>& children) {
  if (replace) {
    c.action = Action::Replace;
    c.disruption = Disruption::Recreate;
    c.steps.start = c.steps.wait_ready = vm.running;
    if (c.reason.empty()) {
      c.reason = "made anew: cloud-init runs once per instance" +
                 std::string(vm.data_disks.empty() ? "" : "; data disks are kept and reattached");
    }
    if (vm.lifecycle.prevent_destroy) {
      result_.errors.error(vm.location,
                           vm.address() +
                               " has lifecycle.prevent_destroy, but this change replaces it (" +
                               c.attributes.front().name + " changed)");
    }
  } else if (!c.attributes.empty() || !children.empty()) {
    c.action = Action::Update;
    for (const auto& ch : children) disruption = worst(disruption, ch.disruption);
    c.disruption = disruption;
    if (disruption == Disruption::Restart && vm.running) {
      c.steps.shutdown = true;
      c.steps.start = c.steps.wait_ready = true;
    }
    if (c.reason.empty()) {
      if (disruption == Disruption::Restart && vm.running) {
        c.reason = "shut down (ACPI), redefined and started again: " + restart_why;
      } else if (disruption == Disruption::Restart) {
        c.reason = "shut down (ACPI; forced off after a timeout)";
      } else if (disruption == Disruption::Live &&
                 std::all_of(c.attributes.begin(), c.attributes.end(),
                             [](const AttributeChange& a) { return a.drift; })) {
        // kumo reads sizes from the persistent definition: that is what was changed by hand.
        c.reason =
            "changed outside kumo in the domain's definition: set back in the definition "
            "and the running guest, no reboot";
      } else if (disruption == Disruption::Live) {
        c.reason = "changed in the running guest and its definition, no reboot";
      } else if (!children.empty() && c.attributes.empty()) {
        c.reason = "disks change";
      }
    }
  }
  if (c.action == Action::NoOp) c.steps = {};
  if (c.action != Action::NoOp) result_.changes.push_back(std::move(c));
  for (auto& ch : children) result_.changes.push_back(std::move(ch));
}

}  // namespace kumo::differ
