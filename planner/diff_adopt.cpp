// The differ's adopted VMs: a domain made by hand becomes this cluster's (`adopt`, only its
// metadata is written), and once adopted is compared like any other VM, except that kumo never
// remakes it: it has no image to be remade from, and its disks are not kumo's.
#include <algorithm>

#include "planner/differ_internal.h"

namespace kumo::differ {
namespace {

// The domain's disks (not CD-ROMs) as the file names them: "pool/volume" when the file is a
// pool's volume, else its path.
std::vector<std::string> disks_as_named(const ObservedHost& host, const ObservedDomain& d) {
  std::vector<std::string> out;
  for (const auto& disk : d.disks) {
    if (disk.device != "disk") continue;
    std::string name = disk.path;
    for (const auto& v : host.volumes)
      if (!v.path.empty() && v.path == disk.path) name = v.pool + "/" + v.name;
    out.push_back(name);
  }
  return out;
}

std::vector<std::string> macs_of(const ObservedDomain& d) {
  std::vector<std::string> out;
  for (const auto& n : d.nics) out.push_back(n.mac);
  return out;
}

}  // namespace

void Differ::diff_adopted(const DesiredVm& vm) {
  const HostIndex& idx = hosts_.at(vm.host);
  const std::string at = "host " + quote(vm.host) + ": ";
  // Adopted before: an ordinary VM from here on (renamed to its name in the file, if asked).
  auto it = idx.domains.find(vm.instance);
  if (it != idx.domains.end() && it->second->owner &&
      it->second->owner->cluster == desired_.cluster &&
      it->second->owner->address == vm.address()) {
    vm_compare(vm, idx, *it->second);
    return;
  }
  // Already adopted, but the file now pins it elsewhere: adopted VMs do not move.
  for (const auto& [name, other] : hosts_) {
    if (name == vm.host) continue;
    const ObservedDomain* o = copy_on(name, vm);
    if (o && o->owner && o->owner->cluster == desired_.cluster) {
      result_.errors.error(vm.location, vm.address() + " was adopted on host " + quote(name) +
                                            " and lives there; adopted VMs do not move (kumo "
                                            "cannot copy disks it did not make). Pin it back "
                                            "to " +
                                            quote(name));
      return;
    }
  }
  const ObservedDomain* d = nullptr;
  if (it != idx.domains.end()) {
    if (vm.adopt != vm.instance) {
      result_.errors.error(vm.adopt_location, at + "vm." + vm.instance + " adopts domain " +
                                                  quote(vm.adopt) + ", but a domain named " +
                                                  quote(vm.instance) +
                                                  " is there already; rename one of them");
      return;
    }
    d = it->second;
  } else {
    auto from = idx.domains.find(vm.adopt);
    if (from == idx.domains.end()) {
      result_.errors.error(vm.adopt_location, at + "there is no domain " + quote(vm.adopt) +
                                                  " to adopt (kumo "
                                                  "import " +
                                                  vm.host +
                                                  "/<domain> prints an entry for one that is)");
      return;
    }
    d = from->second;
  }
  if (d->owner && !d->owner->cluster.empty()) {
    const std::string whose =
        d->owner->cluster == desired_.cluster
            ? "this cluster's " + d->owner->address
            : "cluster " + quote(d->owner->cluster) + "'s " + d->owner->address;
    result_.errors.error(vm.adopt_location, at + "domain " + quote(d->name) + " is " + whose +
                                                "; kumo adopts only domains no kumo cluster made");
    return;
  }
  vm_adopt(vm, idx, *d);
}

void Differ::vm_adopt(const DesiredVm& vm, const HostIndex& idx, const ObservedDomain& d) {
  const std::string where =
      vm.address() + " (adopting domain " + quote(d.name) + " on host " + quote(vm.host) + ")";
  // What the file says of the domain must be what it is: kumo cannot change disks, NICs or the
  // machine of a domain it did not define.
  std::vector<std::string> named;
  for (const auto& v : vm.adopt_volumes) named.push_back(v.str());
  const auto has = disks_as_named(*idx.host, d);
  if (named != has) {
    result_.errors.error(vm.adopt_location, where + ": volumes: the file lists [" + join(named) +
                                                "], the domain has [" + join(has) +
                                                "] (kumo import prints them)");
  }
  std::vector<std::string> want_macs;
  for (const auto& n : vm.nics) want_macs.push_back(n.mac);
  if (want_macs != macs_of(d)) {
    result_.errors.error(vm.adopt_location,
                         where + ": networks: the file's NICs have MACs [" + join(want_macs) +
                             "], the domain's [" + join(macs_of(d)) +
                             "] (give each NIC its mac:, as kumo import prints them)");
  }
  const std::string firmware = vm.firmware == Firmware::Uefi ? "uefi" : "";
  if (firmware != d.firmware || vm.tpm != d.tpm) {
    result_.errors.error(vm.adopt_location,
                         where + ": the domain has firmware " +
                             (d.firmware.empty() ? "bios" : d.firmware) +
                             (d.tpm ? " and a TPM" : "") + "; the file asks for " +
                             (firmware.empty() ? "bios" : firmware) + (vm.tpm ? " and a TPM" : ""));
  }
  if (vm.adopt != vm.instance && d.active) {
    result_.errors.error(vm.adopt_location,
                         where + ": libvirt renames only a domain that is shut off; shut " +
                             quote(d.name) + " down first, or adopt it under its own name");
  }
  ResourceChange c;
  c.address = Address::vm(vm.instance);
  c.host = vm.host;
  VmPayload p = vm_payload(vm);
  p.adopt_from = d.name;
  c.desired = std::move(p);
  c.action = Action::Adopt;
  c.observed = ObservedRef{d.name, d.uuid, "", d.state, 0};
  c.attributes.push_back(attr("adopt", {}, text(d.name)));
  // Anything the domain does not match yet is changed by the next apply, as an update.
  std::vector<std::string> later;
  auto differs = [&](bool differ, const char* name, Value now, Value wanted) {
    if (!differ) return;
    c.attributes.push_back(attr(name, std::move(now), std::move(wanted)));
    later.push_back(name);
  };
  differs(d.vcpus != vm.cpus, "cpus", number(d.vcpus), number(vm.cpus));
  differs(d.memory != vm.memory, "memory", size_text(d.memory), size_text(vm.memory));
  differs(d.autostart != vm.autostart, "autostart", flag(d.autostart), flag(vm.autostart));
  differs(d.active != vm.running, "running", flag(d.active), flag(vm.running));
  c.reason =
      "made by hand: kumo takes it over as it is (only its metadata is written; nothing in "
      "the guest changes)";
  if (!later.empty()) {
    c.reason +=
        "; " + join(later) + " then change to match " + desired_.file + " with the next apply";
  }
  result_.changes.push_back(std::move(c));
}

}  // namespace kumo::differ
