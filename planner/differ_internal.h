// The differ's parts, shared by differ.cpp, diff_network.cpp, diff_vm.cpp and diff_volumes.cpp.
// Not for use outside the differ.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "planner/config/units.h"
#include "planner/differ.h"
#include "providers/ownership.h"

namespace kumo::differ {

struct HostIndex {
  const ObservedHost* host = nullptr;
  std::map<std::string, const ObservedDomain*> domains;
  std::map<std::string, const ObservedNetwork*> networks;
  std::string pool;  // the host's kumo pool
  // In the host's kumo pool, and this cluster's volumes in other pools (data disks).
  std::map<std::string, const ObservedVolume*> volumes;
  // Of `volumes`, this cluster's VM volumes by instance (web-0), in name order: a VM's own are
  // found without a scan of the host's every volume.
  std::map<std::string, std::vector<const ObservedVolume*>> instance_volumes;
  std::set<NetworkRecord> network_records;  // of the networks kumo made for this cluster
};

inline AttributeChange attr(std::string name, Value before, Value after) {
  AttributeChange a;
  a.name = std::move(name);
  a.before = std::move(before);
  a.after = std::move(after);
  return a;
}
inline Value text(std::string s) {
  return Value(std::move(s));
}
// A cloud-init document attribute (AttributeChange::document): its values are the masked text.
inline AttributeChange document(std::string name, Value before, std::string after) {
  AttributeChange a;
  a.name = std::move(name);
  a.before = std::move(before);
  a.after = Value(std::move(after));
  a.document = true;
  return a;
}
inline Value number(std::int64_t n) {
  return Value(n);
}
inline Value flag(bool b) {
  return Value(b);
}
inline Value size_text(std::uint64_t bytes) {
  return Value(format_size(bytes));
}
std::string join(const std::vector<std::string>& items);
// A change of one of `vm`'s volumes (role root, seed, data/<disk>) on the VM's host.
inline ResourceChange volume_change(const DesiredVm& vm, const std::string& role, Action action) {
  ResourceChange ch;
  ch.address = Address::volume(vm.instance, role);
  ch.host = vm.host;
  ch.parent = Address::vm(vm.instance);
  ch.action = action;
  return ch;
}
// Where a volume lives, as a change records it: "" in the host's kumo pool, else its pool.
inline std::string pool_of(const HostIndex& idx, const ObservedVolume& v) {
  return v.pool == idx.pool ? "" : v.pool;
}
// The volume `name` of a host's kumo pool (or a data disk of this cluster elsewhere), or null.
inline const ObservedVolume* find_volume(const HostIndex& idx, const std::string& name) {
  auto it = idx.volumes.find(name);
  return it == idx.volumes.end() ? nullptr : it->second;
}
// What a VM change wants: the payload the executor defines it from.
VmPayload vm_payload(const DesiredVm& vm);
// "front 10.20.0.5 52:54:00:..": how the plan shows a NIC.
std::vector<std::string> nics_text(const std::vector<NicRecord>& nics);

class Differ {
 public:
  Differ(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
         const std::vector<std::string>& replace);
  DiffResult run();

 private:
  bool ours(const std::optional<Ownership>& o) const { return o && o->cluster == desired_.cluster; }
  // A network is this cluster's by its reserved name and the record kumo keeps of making it.
  bool ours(const HostIndex& idx, const ObservedNetwork& n) const {
    if (!ours(n.owner)) return false;
    const std::string name = n.owner->address.substr(std::string("network.").size());
    return idx.network_records.count(NetworkRecord{name, n.uuid}) > 0;
  }
  std::vector<std::string> running_vms_on(const HostIndex& idx,
                                          const std::string& libvirt_network) const;

  // diff_network.cpp
  void diff_network(const DesiredNetwork& net);
  // diff_vm.cpp
  void diff_vm(const DesiredVm& vm);
  void diff_adopted(const DesiredVm& vm);  // diff_adopt.cpp
  void vm_adopt(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& d);
  void vm_create(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain* moved_from,
                 const std::string& from_host);
  void vm_compare(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& d);
  void compare_live(const DesiredVm& vm, const ObservedDomain& d, ResourceChange& c,
                    Disruption& disruption, std::string& restart_why);
  void attach_leftover_data(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& d,
                            ResourceChange& c, Disruption& disruption);
  void finish_vm(const DesiredVm& vm, bool replace, Disruption disruption,
                 const std::string& restart_why, ResourceChange& c,
                 std::vector<ResourceChange>& children);
  // diff_move.cpp
  const ObservedDomain* copy_on(const std::string& host, const DesiredVm& vm) const;
  std::string live_refusal(const DesiredVm& vm, const ObservedDomain& src, const HostIndex& src_idx,
                           const std::string& dest) const;
  void refuse_cold_move(const DesiredVm& vm, const std::string& from_host,
                        const std::string& why_not_live);
  void refuse_move_of_own_pools(const DesiredVm& vm, const std::string& from_host);
  std::vector<ResourceChange> move_volumes(const DesiredVm& vm, const HostIndex& src_idx,
                                           const std::string& from_host);
  void vm_move(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& src,
               const std::string& from_host, const ObservedDomain* dest_copy);
  void spare_copies_except(const DesiredVm& vm, const std::set<std::string>& keep);
  void move_from(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& src,
                 const std::string& from_host, const ObservedDomain* dest_copy);
  // diff_volumes.cpp
  void volumes_for(const DesiredVm& vm, const HostIndex& idx, bool vm_is_new,
                   ResourceChange& parent, std::vector<ResourceChange>& children);
  void data_volumes(const DesiredVm& vm, const HostIndex& idx, bool vm_is_new, bool running,
                    ResourceChange& parent, std::vector<ResourceChange>& children);
  void unlisted_data_volumes(const DesiredVm& vm, const HostIndex& idx);
  // diff_pool.cpp
  void diff_pool(const DesiredHost& host, const HostIndex& idx, const DesiredPool& want);
  void check_host_pool(const DesiredHost& host, const HostIndex& idx);
  void diff_pools();
  void check_vm_pools(const DesiredVm& vm);
  void pool_orphans();
  // differ.cpp
  void find_orphans();
  void delete_vm(const HostIndex& idx, const ObservedDomain& d, const std::string& reason,
                 bool moved = false, bool spare = false);
  void delete_network(const HostIndex& idx, const ObservedNetwork& n);
  void delete_volume(const HostIndex& idx, const ObservedVolume& v);
  void delete_stale_record(const HostIndex& idx, const NetworkRecord& r);
  std::set<std::string> deleted_domains_;  // host/name of the domains this diff deletes
  std::set<std::string> moving_sources_;   // host/name of domains a move takes away
  // host/name of copies of a VM whose data lives on in another copy (a move's leftovers):
  // deleting them destroys no data.
  std::set<std::string> spare_copies_;
  std::set<std::string> living_instances_;  // instances with a domain of this cluster somewhere

  const DesiredCluster& desired_;
  std::map<std::string, HostIndex> hosts_;
  DiffResult result_;
  std::vector<ResourceChange> deletes_;
  std::set<std::string> claimed_volumes_;    // host/volume deleted together with their VM
  std::set<std::string> replace_requested_;  // --replace addresses
};

}  // namespace kumo::differ
