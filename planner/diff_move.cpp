// The differ's moves: a VM that lives on another host than the one it should be on goes there
// with its data, live (migration) when nothing but its host changes and both hosts run it the
// same way, else cold (shut down, volumes copied, started there). A change that makes the VM
// anew anyway (image, networks, --replace) stays a replace.
#include <algorithm>

#include "planner/differ_internal.h"
#include "planner/planner.h"
#include "providers/digest.h"
#include "providers/ownership.h"

namespace kumo::differ {

// The copy of `vm` on host `host`, if that host holds one of this cluster's.
const ObservedDomain* Differ::copy_on(const std::string& host, const DesiredVm& vm) const {
  auto h = hosts_.find(host);
  if (h == hosts_.end()) return nullptr;
  auto d = h->second.domains.find(vm.instance);
  if (d == h->second.domains.end() || !ours(d->second->owner) ||
      d->second->owner->address != vm.address())
    return nullptr;
  return d->second;
}

// Why this VM cannot move live from `src` to `dest` ("" when it can).
std::string Differ::live_refusal(const DesiredVm& vm, const ObservedDomain& src,
                                 const HostIndex& src_idx, const std::string& dest) const {
  if (vm.move == MoveMode::Cold) return "it has move: cold";
  if (!src.active) return "it is not running";
  if (!vm.running) return "it has running: false";
  const DesiredHost* dh = desired_.find_host(dest);
  auto di = hosts_.find(dest);
  if (!dh || di == hosts_.end()) return dest + " could not be read";
  const std::string dest_type = resolve_virt_type(dh->virt_type, di->second.host->facts);
  if (!src.virt_type.empty() && src.virt_type != dest_type) {
    return "it runs under " + src.virt_type + " and " + dest + " would run it under " + dest_type;
  }
  // Under KVM a guest sees its host's own CPU (host-passthrough): it moves live only to the same.
  const HostFacts& from = src_idx.host->facts;
  const HostFacts& to = di->second.host->facts;
  if (dest_type == "kvm" && !from.cpu_model.empty() && !to.cpu_model.empty() &&
      from.cpu_model != to.cpu_model) {
    return "it runs on the host's own CPU (" + from.cpu_model + ") and " + dest + "'s is a " +
           to.cpu_model;
  }
  if (vm.cpus != src.vcpus || vm.memory != src.memory) return "its vCPUs or memory change too";
  const VmRecord* rec = src.owner && src.owner->spec ? &*src.owner->spec : nullptr;
  if (!rec || rec->instance_id != vm.instance_id) return "its cloud-init documents change too";
  const ObservedVolume* root = find_volume(src_idx, vm.root_volume);
  if (vm.disk && root && *vm.disk != root->capacity) return "its root disk grows too";
  for (const auto& disk : vm.data_disks) {
    const ObservedVolume* v = find_volume(src_idx, disk.volume);
    if (!v) return "data disk " + quote(disk.name) + " is new";
    if (v->capacity != disk.size) return "data disk " + quote(disk.name) + " grows too";
  }
  return "";
}

// What a VM that cannot move live refuses instead of a cold move: move: live, and a TPM.
void Differ::refuse_cold_move(const DesiredVm& vm, const std::string& from_host,
                              const std::string& why_not_live) {
  if (vm.move == MoveMode::Live) {
    result_.errors.error(vm.location, vm.address() +
                                          " has move: live, but it cannot move live from " +
                                          from_host + " to " + vm.host + ": " + why_not_live);
  }
  if (vm.tpm) {
    // swtpm keeps the TPM's state in a host directory, outside every pool: only a live
    // migration carries it (in the migration stream). A cold copy would leave it behind.
    result_.errors.error(vm.location,
                         vm.address() + " has tpm: true and cannot move live from " + from_host +
                             " to " + vm.host + " (" + why_not_live +
                             "); a cold move would lose its TPM state, which lives on the host "
                             "outside the pool. Let it run and move live, or pin it back");
  }
}

// Data disks in pools of their own are not moved (only the hosts' pools are).
void Differ::refuse_move_of_own_pools(const DesiredVm& vm, const std::string& from_host) {
  for (const auto& disk : vm.data_disks) {
    const DesiredHost* dh = desired_.find_host(vm.host);
    if (disk.pool.empty() || (dh && disk.pool == dh->pool)) continue;
    result_.errors.error(disk.pool_location.known() ? disk.pool_location : vm.location,
                         vm.address() + " cannot move from " + from_host + " to " + vm.host +
                             ": its data disk " + quote(disk.name) + " is in its own pool " +
                             quote(disk.pool) +
                             ", and kumo moves only disks in the hosts' pools. Pin it back, or "
                             "move the data off that disk first");
  }
}

// The moving VM's volumes: root and data disks moved (a data disk new in the file made), the
// seed made anew there.
std::vector<ResourceChange> Differ::move_volumes(const DesiredVm& vm, const HostIndex& src_idx,
                                                 const std::string& from_host) {
  std::vector<ResourceChange> children;
  const ObservedVolume* root = find_volume(src_idx, vm.root_volume);
  if (!root) {
    result_.errors.error(vm.location, vm.address() + " cannot move from " + from_host +
                                          ": its root volume " + vm.root_volume + " is not there");
  } else {
    auto ch = volume_change(vm, "root", Action::Move);
    ch.desired = VolumePayload{vm.root_volume, std::max(root->capacity, vm.disk.value_or(0)),
                               vm.image, "", std::nullopt};
    ch.observed = ObservedRef{root->name, "", from_host, "", root->capacity};
    children.push_back(ch);
  }
  for (const auto& disk : vm.data_disks) {
    const ObservedVolume* v = find_volume(src_idx, disk.volume);
    auto ch = volume_change(vm, "data/" + disk.name, v ? Action::Move : Action::Create);
    ch.desired = VolumePayload{disk.volume, disk.size, "", "", std::nullopt};
    ch.attributes = {attr("size", v ? size_text(v->capacity) : Value(), size_text(disk.size))};
    if (v) {
      ch.observed = ObservedRef{v->name, "", from_host, "", v->capacity};
      if (v->capacity > disk.size) {
        result_.errors.error(vm.location, vm.address() + ": data disk " + quote(disk.name) +
                                              " cannot shrink from " + format_size(v->capacity) +
                                              " (kumo only grows disks)");
      }
    }
    children.push_back(ch);
  }
  unlisted_data_volumes(vm, src_idx);
  // The seed is made anew there from the file (read-only, it is no part of a migration).
  auto seed = volume_change(vm, "seed", Action::Create);
  seed.desired =
      VolumePayload{vm.seed_volume, std::nullopt, "", "",
                    SeedDocs{vm.instance_id, vm.user_data, vm.meta_data(), vm.network_config}};
  children.push_back(seed);
  return children;
}

void Differ::vm_move(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& src,
                     const std::string& from_host, const ObservedDomain* dest_copy) {
  const HostIndex& src_idx = hosts_.at(from_host);
  ResourceChange c;
  c.address = Address::vm(vm.instance);
  c.host = vm.host;
  c.desired = vm_payload(vm);
  c.action = Action::Move;
  c.observed = ObservedRef{src.name, src.uuid, from_host, src.state, 0};
  c.attributes.push_back(attr("host", text(from_host), text(vm.host)));
  if (vm.cpus != src.vcpus)
    c.attributes.push_back(attr("cpus", number(src.vcpus), number(vm.cpus)));
  if (vm.memory != src.memory)
    c.attributes.push_back(attr("memory", size_text(src.memory), size_text(vm.memory)));
  const std::string why_not_live = live_refusal(vm, src, src_idx, vm.host);
  c.steps.live = why_not_live.empty();
  if (!c.steps.live) refuse_cold_move(vm, from_host, why_not_live);
  refuse_move_of_own_pools(vm, from_host);
  c.steps.remove_dest_copy = dest_copy != nullptr;
  c.steps.shutdown = !c.steps.live && src.active;
  c.steps.start = c.steps.wait_ready = !c.steps.live && vm.running;
  c.disruption = c.steps.live ? Disruption::Live
                 : src.active ? Disruption::Restart
                              : Disruption::None;
  if (c.steps.live) {
    c.reason = "moved live: memory and disks are copied while it runs, then it continues on " +
               vm.host + " (same boot); " + from_host +
               "'s copy is removed after. Nothing is destroyed";
  } else {
    c.reason = std::string(src.active ? "shut down on " + from_host + ", its" : "its") +
               " disks copied to " + vm.host + " through kumo, " +
               (vm.running ? "started there and, once ready, " : "defined there, then ") +
               from_host + "'s copy removed. Cold, as " + why_not_live + ". Nothing is destroyed";
  }
  bool leftovers = dest_copy != nullptr;
  const std::string prefix = "volume." + vm.instance + "/";
  for (const auto& [name, v] : idx.volumes)
    leftovers = leftovers || (ours(v->owner) && v->owner->address.rfind(prefix, 0) == 0);
  if (leftovers) {
    c.reason += "; the unfinished copy of an interrupted move on " + vm.host +
                " is removed first and made again";
  }
  // The moving source is removed by the move itself, volumes and all, once the copy is verified.
  moving_sources_.insert(from_host + "/" + src.name);
  for (const auto& [name, v] : src_idx.volumes) {
    if (ours(v->owner) && v->owner->address.rfind(prefix, 0) == 0)
      claimed_volumes_.insert(from_host + "/" + name);
  }

  std::vector<ResourceChange> children = move_volumes(vm, src_idx, from_host);
  result_.changes.push_back(std::move(c));
  for (auto& ch : children) result_.changes.push_back(std::move(ch));
}

}  // namespace kumo::differ
