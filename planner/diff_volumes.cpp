// The differ's volumes of one VM: a replaced or new VM gets a new root and seed; data volumes are
// kept (grown if needed), created if missing, and never deleted while their VM stays.
#include <algorithm>

#include "planner/differ_internal.h"
#include "providers/ownership.h"

namespace kumo::differ {
namespace {

bool has_attribute(const ResourceChange& c, const std::string& name) {
  return std::any_of(c.attributes.begin(), c.attributes.end(),
                     [&](const AttributeChange& a) { return a.name == name; });
}

}  // namespace

void Differ::volumes_for(const DesiredVm& vm, const HostIndex& idx, bool vm_is_new,
                         ResourceChange& parent, std::vector<ResourceChange>& children) {
  if (vm.adopted()) return;  // its disks are the ones it had; kumo makes none
  const auto dom = idx.domains.find(vm.instance);
  const bool running = dom != idx.domains.end() && dom->second->active;
  const ObservedVolume* root = find_volume(idx, vm.root_volume);
  if (vm_is_new || !root) {
    auto ch = volume_change(vm, "root", root ? Action::Replace : Action::Create);
    ch.desired = VolumePayload{vm.root_volume, vm.disk, vm.image, "", std::nullopt};
    if (root) ch.observed = ObservedRef{root->name, "", "", "", root->capacity};
    if (root && parent.action == Action::Create)
      ch.reason = "left over from an earlier VM; made anew from the image";
    children.push_back(ch);
  } else if (vm.disk && root->capacity != *vm.disk) {
    if (*vm.disk < root->capacity) {
      result_.errors.error(vm.location, vm.address() + ": disk cannot shrink from " +
                                            format_size(root->capacity) + " to " +
                                            vm.sensitive.show("disk", format_size(*vm.disk)) +
                                            " (kumo only grows disks)");
    } else {
      auto ch = volume_change(vm, "root", Action::Update);
      ch.attributes = {attr("size", size_text(root->capacity), size_text(*vm.disk))};
      ch.disruption = Disruption::Live;
      ch.desired = VolumePayload{vm.root_volume, vm.disk, "", "", std::nullopt};
      ch.observed = ObservedRef{root->name, "", "", "", root->capacity};
      parent.attributes.push_back(attr("disk", size_text(root->capacity), size_text(*vm.disk)));
      children.push_back(ch);
    }
  }
  const ObservedVolume* seed = find_volume(idx, vm.seed_volume);
  const bool seed_stale =
      parent.action == Action::NoOp &&
      (has_attribute(parent, "user_data") || has_attribute(parent, "network_config"));
  if (vm_is_new || !seed || seed_stale) {
    auto ch = volume_change(vm, "seed", seed ? Action::Replace : Action::Create);
    ch.desired =
        VolumePayload{vm.seed_volume, std::nullopt, "", "",
                      SeedDocs{vm.instance_id, vm.user_data, vm.meta_data(), vm.network_config}};
    if (seed) ch.observed = ObservedRef{seed->name, "", "", "", seed->capacity};
    children.push_back(ch);
  }
  data_volumes(vm, idx, vm_is_new, running, parent, children);
  unlisted_data_volumes(vm, idx);
}

void Differ::data_volumes(const DesiredVm& vm, const HostIndex& idx, bool vm_is_new, bool running,
                          ResourceChange& parent, std::vector<ResourceChange>& children) {
  for (const auto& disk : vm.data_disks) {
    const ObservedVolume* v = find_volume(idx, disk.volume);
    const std::string pool = disk.pool == idx.pool ? "" : disk.pool;
    if (v && pool_of(idx, *v) != pool) {
      result_.errors.error(
          disk.pool_location.line > 0 ? disk.pool_location : vm.location,
          vm.address() + ": data disk " + quote(disk.name) + " is in storage pool " +
              quote(v->pool) + ", not " + quote(pool.empty() ? idx.pool : pool) +
              ": kumo does not move disks between pools. Put pool: back, or remove the VM "
              "with its disks first (kumo destroy --target " +
              vm.address() + ")");
      continue;
    }
    if (!v) {
      auto ch = volume_change(vm, "data/" + disk.name, Action::Create);
      ch.attributes = {attr("size", {}, size_text(disk.size))};
      // A disk added to a running guest is hot-plugged: no restart.
      ch.disruption = !vm_is_new && running ? Disruption::Live : Disruption::None;
      ch.desired = VolumePayload{disk.volume, disk.size, "", "", std::nullopt, pool};
      if (!vm_is_new)
        parent.attributes.push_back(attr("disks." + disk.name, {}, size_text(disk.size)));
      if (!vm_is_new && running) {
        ch.reason =
            "hot-plugged into the running guest: /dev/disk/by-id/virtio-" + disk_serial(disk.name);
      }
      children.push_back(ch);
    } else if (v->capacity < disk.size) {
      auto ch = volume_change(vm, "data/" + disk.name, Action::Update);
      ch.attributes = {attr("size", size_text(v->capacity), size_text(disk.size))};
      ch.disruption = Disruption::Live;
      ch.desired = VolumePayload{disk.volume, disk.size, "", "", std::nullopt, pool};
      ch.observed = ObservedRef{v->name, "", "", "", v->capacity, pool};
      if (!vm_is_new)
        parent.attributes.push_back(
            attr("disks." + disk.name, size_text(v->capacity), size_text(disk.size)));
      children.push_back(ch);
    } else if (v->capacity > disk.size) {
      result_.errors.error(vm.location, vm.address() + ": data disk " + quote(disk.name) +
                                            " cannot shrink from " + format_size(v->capacity) +
                                            " to " +
                                            vm.sensitive.show("disks", format_size(disk.size)) +
                                            " (kumo only grows disks)");
    }
  }
}

// Data volumes of this instance that the file no longer lists. A data disk outlives everything
// but its VM: it is deleted with the VM (kumo destroy, or the VM taken out of the file), never
// on its own.
void Differ::unlisted_data_volumes(const DesiredVm& vm, const HostIndex& idx) {
  const auto own = idx.instance_volumes.find(vm.instance);
  if (own == idx.instance_volumes.end()) return;
  const std::string prefix = "volume." + vm.instance + "/data/";
  for (const ObservedVolume* v : own->second) {
    if (v->owner->address.rfind(prefix, 0) != 0) continue;
    const std::string disk = v->owner->address.substr(prefix.size());
    const bool wanted = std::any_of(vm.data_disks.begin(), vm.data_disks.end(),
                                    [&](const DesiredDisk& d) { return d.name == disk; });
    if (wanted) continue;
    result_.errors.error(vm.location,
                         vm.address() + ": data disk " + quote(disk) + " (" + v->name + ", " +
                             format_size(v->capacity) +
                             ") is no longer listed under disks:, but kumo never deletes the data "
                             "disk of a VM that stays. List it again, or remove it with its VM "
                             "(kumo destroy --target " +
                             vm.address() + ")");
  }
}

}  // namespace kumo::differ
