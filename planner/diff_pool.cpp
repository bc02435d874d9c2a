// The differ's storage pools: the pools kumo makes (hosts.<h>.pools), made when missing, started
// when stopped, never redefined; pools the file names (a host's pool:, a data disk's pool:) must
// exist or be made; and pools kumo made that the file no longer wants, removed only when nothing
// but kumo's own volumes of this cluster is left in them.
#include <algorithm>

#include "planner/differ_internal.h"
#include "providers/ownership.h"

namespace kumo::differ {
namespace {

const ObservedPool* observed_pool(const HostIndex& idx, const std::string& name) {
  for (const auto& p : idx.host->pools)
    if (p.name == name) return &p;
  return nullptr;
}

std::string pool_names(const HostIndex& idx, const DesiredHost& host) {
  std::vector<std::string> names;
  for (const auto& p : idx.host->pools) names.push_back(quote(p.name));
  for (const auto& p : host.pools)
    if (!observed_pool(idx, p.spec.name)) names.push_back(quote(p.spec.name));
  std::sort(names.begin(), names.end());
  return names.empty() ? "none" : join(names);
}

std::vector<std::string> pool_attributes_text(const PoolSpec& p) {
  return p.type == "logical" ? p.devices : std::vector<std::string>{p.path};
}

}  // namespace

// One pool kumo makes on `host`: made, started again, or refused (not kumo's, another
// cluster's, or changed where it cannot be).
void Differ::diff_pool(const DesiredHost& host, const HostIndex& idx, const DesiredPool& want) {
  const PoolSpec& spec = want.spec;
  const std::string address = want.address(host.name);
  const ObservedPool* have = observed_pool(idx, spec.name);
  if (!have) {
    ResourceChange c;
    c.address = Address::pool(host.name, spec.name);
    c.host = host.name;
    c.action = Action::Create;
    c.attributes = {attr("type", {}, text(spec.type)),
                    spec.type == "logical" ? attr("devices", {}, Value(spec.devices))
                                           : attr("path", {}, text(spec.path))};
    c.reason = spec.type == "logical"
                   ? "a volume group on " + join(spec.devices) + " (they must hold no data)"
                   : "";
    c.desired = spec;
    result_.changes.push_back(std::move(c));
    return;
  }
  if (!have->owner_cluster) {
    result_.errors.error(
        want.location,
        address + ": host " + quote(host.name) + " has a storage pool " + quote(spec.name) +
            " that kumo did not make, and kumo never changes it. To use it as it is, take it "
            "out of pools: and name it (pool: " +
            spec.name + ", or a data disk's pool:); to have kumo make one, choose another name");
    return;
  }
  if (*have->owner_cluster != desired_.cluster) {
    result_.errors.error(want.location, address + ": the storage pool " + quote(spec.name) +
                                            " on " + quote(host.name) +
                                            " belongs to kumo cluster " +
                                            quote(*have->owner_cluster) + "; choose another name");
    return;
  }
  const bool same = have->type == spec.type && (spec.type != "dir" || have->path == spec.path) &&
                    (spec.type != "logical" || have->devices == spec.devices);
  if (!same) {
    const PoolSpec was{have->name, have->type, have->path, have->devices, desired_.cluster};
    result_.errors.error(
        want.location,
        address + ": kumo made this pool as " + have->type + " on " +
            join(pool_attributes_text(was)) +
            "; a pool's type, path and devices are fixed. "
            "Put them back, or remove the VMs using it and the pool (take it out of pools:, "
            "apply), then add it anew");
    return;
  }
  if (have->active && have->autostart) return;
  ResourceChange c;
  c.address = Address::pool(host.name, spec.name);
  c.host = host.name;
  c.action = Action::Update;
  if (!have->active) c.attributes.push_back(attr("active", flag(false), flag(true)));
  if (!have->autostart) c.attributes.push_back(attr("autostart", flag(false), flag(true)));
  for (auto& a : c.attributes) a.drift = true;
  c.reason = "stopped or no longer started with the host, outside kumo";
  c.desired = spec;
  c.observed = ObservedRef{have->name, "", "", have->active ? "active" : "inactive", 0};
  result_.changes.push_back(std::move(c));
}

// The pool kumo keeps this host's disks, images and lock in, when VMs use the host: a directory
// pool, made by kumo or there and active.
void Differ::check_host_pool(const DesiredHost& host, const HostIndex& idx) {
  const bool used = std::any_of(desired_.vms.begin(), desired_.vms.end(),
                                [&](const DesiredVm& vm) { return vm.host == host.name; });
  if (!used) return;
  const DesiredPool* made = host.find_pool(host.pool);
  const ObservedPool* p = observed_pool(idx, host.pool);
  if ((made ? made->spec.type : p ? p->type : "") == "logical") {
    result_.errors.error(host.pool_location,
                         "hosts." + host.name + ": pool " + quote(host.pool) +
                             " is a logical pool (LVM); the host's pool holds the VMs' root "
                             "disks, qcow2 overlays on the base image, so it must be a "
                             "directory pool. Put data disks in it instead "
                             "(disks: {NAME: {size, pool: " +
                             host.pool + "}})");
    return;
  }
  if (made) return;
  if (!p) {
    const std::string names = pool_names(idx, host);
    result_.errors.error(
        host.pool_location,
        "hosts." + host.name + ": unknown pool " + quote(host.pool) + ": host " + quote(host.name) +
            (names == "none" ? " has no pool. List it"
                             : " has " + names + ". Name one of them in pool:, or list it") +
            " under hosts." + host.name + ".pools for kumo to make");
  } else if (!p->active) {
    result_.errors.error(host.pool_location, "hosts." + host.name + ": storage pool " +
                                                 quote(host.pool) + " is not active on " +
                                                 quote(host.name) + ": start it (virsh " +
                                                 "pool-start " + host.pool +
                                                 "; virsh pool-autostart " + host.pool + ")");
  }
}

void Differ::diff_pools() {
  for (const auto& host : desired_.hosts) {
    auto it = hosts_.find(host.name);
    if (it == hosts_.end()) continue;  // unreachable: left alone
    for (const auto& want : host.pools) diff_pool(host, it->second, want);
    check_host_pool(host, it->second);
  }
}

// A data disk's own pool must be on the VM's host: made by kumo there, or already there.
void Differ::check_vm_pools(const DesiredVm& vm) {
  const DesiredHost* host = desired_.find_host(vm.host);
  auto it = hosts_.find(vm.host);
  if (!host || it == hosts_.end()) return;
  for (const auto& disk : vm.data_disks) {
    if (disk.pool.empty() || host->find_pool(disk.pool) || observed_pool(it->second, disk.pool))
      continue;
    result_.errors.error(disk.pool_location.known() ? disk.pool_location : vm.location,
                         vm.address() + ": data disk " + quote(disk.name) + ": unknown pool " +
                             quote(disk.pool) + " on host " + quote(vm.host) + " (it has " +
                             pool_names(it->second, *host) + "). List it under hosts." + vm.host +
                             ".pools for kumo to make, or name one the host has");
  }
}

void Differ::pool_orphans() {
  // What this plan removes anyway, host/volume; and the networks it deletes, host/uuid.
  std::set<std::string> going, networks_going;
  for (const auto* list : {&result_.changes, &deletes_}) {
    for (const auto& c : *list) {
      if (c.action != Action::Delete || !c.observed) continue;
      if (c.kind() == ResourceKind::Volume) going.insert(c.host + "/" + c.observed->name);
      if (c.kind() == ResourceKind::Vm)
        going.insert(c.host + "/" + serial_log_name(desired_.cluster, c.address.name));
      if (c.kind() == ResourceKind::Network) networks_going.insert(c.host + "/" + c.observed->uuid);
    }
  }
  const std::string lock = lock_volume_name(desired_.cluster);
  for (auto& [name, idx] : hosts_) {
    const DesiredHost* host = desired_.find_host(name);
    // The host's own pool goes last of its pools: the lock lives in it until the end.
    std::vector<const ObservedPool*> order;
    for (const auto& p : idx.host->pools) order.push_back(&p);
    std::stable_partition(order.begin(), order.end(),
                          [&](const ObservedPool* p) { return !host || p->name != host->pool; });
    for (const ObservedPool* pp : order) {
      const ObservedPool& p = *pp;
      if (!p.owner_cluster || *p.owner_cluster != desired_.cluster) continue;
      if (host && host->find_pool(p.name)) continue;  // wanted
      ResourceChange c;
      c.address = Address::pool(name, p.name);
      c.host = name;
      c.action = Action::Delete;
      c.observed = ObservedRef{p.name, "", "", p.active ? "active" : "inactive", 0};
      PoolSpec spec{p.name, p.type, p.path, p.devices, desired_.cluster};
      // It goes only when all that is left in it is kumo's own.
      std::vector<std::string> blocking, lock_last;
      for (const auto& v : idx.host->volumes) {
        if (v.pool != p.name || going.count(name + "/" + v.name)) continue;
        const auto record = network_record(v.name, desired_.cluster);
        const bool image = v.name.rfind(std::string(kOwnerPrefix) + "-image_", 0) == 0;
        if (v.name == lock || v.name.rfind(lock + ".takeover-", 0) == 0) {
          lock_last.push_back(v.name);
        } else if (image || (record && networks_going.count(name + "/" + record->uuid))) {
          spec.volumes.push_back(v.name);
        } else {
          blocking.push_back(v.name);
        }
      }
      const bool holds_kumo =
          p.name == (host ? host->pool : std::string()) &&
          (std::any_of(desired_.vms.begin(), desired_.vms.end(),
                       [&](const DesiredVm& vm) { return vm.host == name; }) ||
           std::any_of(desired_.networks.begin(), desired_.networks.end(),
                       [&](const DesiredNetwork& n) { return n.host == name; }));
      if (!blocking.empty() || holds_kumo) {
        std::sort(blocking.begin(), blocking.end());
        result_.warnings.push_back(
            c.address.str() + ": kumo made this pool but keeps it: " +
            (holds_kumo ? "hosts." + name + ".pool still names it"
                        : "it holds volumes kumo will not remove (" +
                              join(std::vector<std::string>(
                                  blocking.begin(),
                                  blocking.begin() + std::min<std::size_t>(blocking.size(), 5))) +
                              (blocking.size() > 5 ? ", …" : "") + ")"));
        continue;
      }
      for (auto& l : lock_last) spec.volumes.push_back(l);
      c.reason = spec.volumes.empty()
                     ? "no longer in " + desired_.file
                     : "no longer in " + desired_.file + "; with kumo's own volumes left in it (" +
                           std::to_string(spec.volumes.size()) + ": base images, records, lock)";
      c.attributes = {attr("type", text(p.type), {}), p.type == "logical"
                                                          ? attr("devices", Value(p.devices), {})
                                                          : attr("path", text(p.path), {})};
      c.desired = spec;
      deletes_.push_back(std::move(c));
    }
  }
}

}  // namespace kumo::differ
