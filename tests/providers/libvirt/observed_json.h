// Observed state rendered as JSON, so that tests compare whole objects against golden files and a
// failure shows both sides. Only the fields read from XML: state, activity, persistence and
// autostart come from API calls and are checked where those are made.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "providers/observed.h"
#include "providers/ownership.h"

namespace kumo::testing {

inline nlohmann::json render(const std::optional<Ownership>& owner) {
  if (!owner) return nullptr;
  return {{"cluster", owner->cluster},
          {"address", owner->address},
          {"spec_hash", owner->spec_hash},
          {"spec", owner->spec ? nlohmann::json::parse(vm_record_json(*owner->spec))
                               : nlohmann::json(nullptr)}};
}

inline nlohmann::json render(const ObservedDomain& d) {
  auto disks = nlohmann::json::array();
  for (const auto& disk : d.disks) {
    disks.push_back({{"target", disk.target},
                     {"device", disk.device},
                     {"path", disk.path},
                     {"format", disk.format},
                     {"readonly", disk.readonly}});
  }
  auto nics = nlohmann::json::array();
  for (const auto& nic : d.nics) {
    nics.push_back(
        {{"type", nic.type}, {"network", nic.network}, {"mac", nic.mac}, {"model", nic.model}});
  }
  return {{"name", d.name},
          {"uuid", d.uuid},
          {"virt_type", d.virt_type},
          {"vcpus", d.vcpus},
          {"max_vcpus", d.max_vcpus},
          {"memory", d.memory},
          {"max_memory", d.max_memory},
          {"disks", disks},
          {"nics", nics},
          {"owner", render(d.owner)}};
}

inline nlohmann::json render(const ObservedNetwork& n) {
  auto hosts = nlohmann::json::array();
  for (const auto& h : n.dhcp_hosts)
    hosts.push_back({{"mac", h.mac}, {"ip", h.ip}, {"name", h.name}});
  return {{"name", n.name},
          {"uuid", n.uuid},
          {"forward_mode", n.forward_mode},
          {"bridge", n.bridge},
          {"ip", n.ip},
          {"prefix", n.prefix},
          {"dhcp_start", n.dhcp_start},
          {"dhcp_end", n.dhcp_end},
          {"dhcp_hosts", hosts},
          {"domain", n.domain},
          {"mtu", n.mtu ? nlohmann::json(*n.mtu) : nlohmann::json(nullptr)},
          {"owner", render(n.owner)}};
}

inline nlohmann::json render(const ObservedPool& p) {
  return {{"name", p.name},
          {"type", p.type},
          {"path", p.path},
          {"capacity", p.capacity},
          {"available", p.available}};
}

inline nlohmann::json render(const ObservedVolume& v) {
  return {{"name", v.name},
          {"path", v.path},
          {"format", v.format},
          {"capacity", v.capacity},
          {"allocation", v.allocation},
          {"backing_path", v.backing_path},
          {"owner", render(v.owner)},
          {"changed", v.changed}};
}

inline std::string data_path(const std::string& name) {
  return std::string(KUMO_SOURCE_DIR) + "/tests/data/libvirt/" + name;
}

inline std::string read_data(const std::string& name) {
  std::ifstream in(data_path(name));
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace kumo::testing
