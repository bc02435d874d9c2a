#include "planner/import.h"

#include <yaml-cpp/yaml.h>

#include "planner/config/names.h"
#include "planner/config/units.h"
#include "providers/ownership.h"

namespace kumo {
namespace {

// An exact size kumo reads back: the largest binary unit that divides it.
std::string exact_size(std::uint64_t bytes) {
  constexpr std::uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;
  if (bytes % GiB == 0) return std::to_string(bytes / GiB) + "GiB";
  if (bytes % MiB == 0) return std::to_string(bytes / MiB) + "MiB";
  return std::to_string(bytes / KiB) + "KiB";
}

void emit_nic(YAML::Emitter& out, const ObservedHost& host, const ObservedNic& nic,
              const std::string& cluster) {
  out << YAML::Flow << YAML::BeginMap;
  if (nic.type == "network") {
    const auto owner = network_owner(nic.network);
    if (owner && owner->cluster == cluster) {
      out << YAML::Key << "network" << YAML::Value
          << owner->address.substr(std::string("network.").size());
    } else {
      // Not one of this file's networks: the bridge libvirt plugs it into, which is the same
      // wire for the guest.
      std::string bridge;
      for (const auto& n : host.networks)
        if (n.name == nic.network) bridge = n.bridge;
      if (bridge.empty())
        throw ImportError("its NIC " + nic.mac + " is on libvirt network \"" + nic.network +
                          "\", which has no bridge kumo can name; move it to a bridge first");
      out << YAML::Key << "bridge" << YAML::Value << bridge;
    }
  } else if (nic.type == "bridge") {
    out << YAML::Key << "bridge" << YAML::Value << nic.network;
  } else if (nic.type == "direct") {
    out << YAML::Key << "direct" << YAML::Value << nic.network;
    out << YAML::Key << "mode" << YAML::Value << (nic.mode.empty() ? "vepa" : nic.mode);
  } else {
    throw ImportError("its NIC " + nic.mac + " is of type \"" + nic.type +
                      "\"; kumo knows networks, bridges and direct (macvtap) NICs");
  }
  if (!nic.model.empty() && nic.model != "virtio")
    out << YAML::Key << "model" << YAML::Value << nic.model;
  out << YAML::Key << "mac" << YAML::Value << YAML::DoubleQuoted << nic.mac;
  out << YAML::EndMap;
}

}  // namespace

std::string import_entry(const ObservedHost& host, const ImportRequest& request) {
  const ObservedDomain* d = nullptr;
  std::vector<std::string> free;
  for (const auto& dom : host.domains) {
    if (dom.name == request.domain) d = &dom;
    if (!dom.owner || dom.owner->cluster.empty()) free.push_back(dom.name);
  }
  if (!d) {
    std::string list;
    for (const auto& f : free) list += (list.empty() ? "" : ", ") + f;
    throw ImportError("host " + request.host + " has no domain \"" + request.domain + "\"" +
                      (free.empty() ? std::string(" (and none that kumo did not make)")
                                    : "; domains kumo did not make there: " + list));
  }
  if (d->owner && !d->owner->cluster.empty()) {
    throw ImportError("domain \"" + d->name + "\" is " +
                      (d->owner->cluster == request.cluster
                           ? "this cluster's " + d->owner->address + " already"
                           : "cluster \"" + d->owner->cluster + "\"'s " + d->owner->address +
                                 "; kumo adopts only domains no kumo cluster made"));
  }
  const std::string name = request.name.empty() ? d->name : request.name;
  if (auto bad = check_hostname(name)) {
    throw ImportError("\"" + name + "\" cannot be a VM's name: " + *bad +
                      (request.name.empty() ? "; give one with --name (the domain is renamed "
                                              "when it is adopted, which needs it shut off)"
                                            : ""));
  }
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << name << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "adopt" << YAML::Value << d->name;
  out << YAML::Key << "host" << YAML::Value << request.host;
  out << YAML::Key << "cpus" << YAML::Value << d->vcpus;
  out << YAML::Key << "memory" << YAML::Value << exact_size(d->memory);
  if (!d->firmware.empty()) out << YAML::Key << "firmware" << YAML::Value << d->firmware;
  if (d->secure_boot) out << YAML::Key << "secure_boot" << YAML::Value << true;
  if (d->tpm) out << YAML::Key << "tpm" << YAML::Value << true;
  out << YAML::Key << "networks" << YAML::Value << YAML::BeginSeq;
  for (const auto& nic : d->nics) emit_nic(out, host, nic, request.cluster);
  out << YAML::EndSeq;
  out << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq;
  for (const auto& disk : d->disks) {
    if (disk.device != "disk") continue;  // CD-ROMs are not the VM's disks
    const ObservedVolume* vol = nullptr;
    for (const auto& v : host.volumes)
      if (!v.path.empty() && v.path == disk.path) vol = &v;
    out << YAML::Flow << YAML::BeginMap;
    if (vol) {
      out << YAML::Key << "pool" << YAML::Value << vol->pool;
      out << YAML::Key << "volume" << YAML::Value << vol->name;
    } else {
      out << YAML::Key << "path" << YAML::Value << disk.path;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "running" << YAML::Value << d->active;
  out << YAML::Key << "autostart" << YAML::Value << d->autostart;
  out << YAML::EndMap << YAML::EndMap;
  return "# kumo import " + request.host + "/" + d->name + ": paste under vms: (" +
         std::to_string(d->disks.size()) +
         " disk(s) as volumes; kumo writes only its metadata "
         "when it adopts the domain)\n" +
         out.c_str() + "\n";
}

}  // namespace kumo
