#include "providers/ownership.h"

#include <sstream>

#include <nlohmann/json.hpp>

#include <pugixml.hpp>

namespace kumo {
namespace {

std::string local_name(const char* name) {
  std::string n = name;
  const auto colon = n.find(':');
  return colon == std::string::npos ? n : n.substr(colon + 1);
}

// Splits "kumo_<cluster>_<rest>" into cluster and rest.
bool split_reserved(const std::string& name, std::string& cluster, std::string& rest) {
  const std::string prefix = std::string(kOwnerPrefix) + "_";
  if (name.rfind(prefix, 0) != 0) return false;
  const auto sep = name.find('_', prefix.size());
  if (sep == std::string::npos || sep == prefix.size() || sep + 1 >= name.size()) return false;
  cluster = name.substr(prefix.size(), sep - prefix.size());
  rest = name.substr(sep + 1);
  return true;
}

std::string strip_extension(const std::string& name) {
  for (const char* ext : {".qcow2", ".iso", ".raw", ".img", ".log", ".fd"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      return name.substr(0, name.size() - e.size());
    }
  }
  return name;
}

}  // namespace

std::string network_name(const std::string& cluster, const std::string& network) {
  return std::string(kOwnerPrefix) + "_" + cluster + "_" + network;
}

std::string root_volume_name(const std::string& cluster, const std::string& instance) {
  return std::string(kOwnerPrefix) + "_" + cluster + "_" + instance + "_root.qcow2";
}

std::string seed_volume_name(const std::string& cluster, const std::string& instance) {
  return std::string(kOwnerPrefix) + "_" + cluster + "_" + instance + "_seed.iso";
}

std::string data_volume_name(const std::string& cluster, const std::string& instance,
                             const std::string& disk) {
  return std::string(kOwnerPrefix) + "_" + cluster + "_" + instance + "_data-" + disk + ".qcow2";
}

std::string nvram_volume_name(const std::string& cluster, const std::string& instance) {
  return std::string(kOwnerPrefix) + "_" + cluster + "_" + instance + "_nvram.fd";
}

std::string image_volume_name(const std::string& algo, const std::string& hex) {
  return std::string(kOwnerPrefix) + "-image_" + algo + "-" + hex;
}

std::string image_marker_name(const std::string& image_volume) {
  return image_volume + ".done";
}

std::string serial_log_name(const std::string& cluster, const std::string& instance) {
  return std::string(kOwnerPrefix) + "_" + cluster + "_" + instance + "_serial.log";
}

namespace {

// The role a reserved name gives a volume: "root", "seed", "serial", "nvram", "data/<disk>";
// "done" for an image's marker; "" for an image itself and for names kumo never uses. Compared
// whole: a data disk named "serial" is data/serial, no log.
std::string role_of(const std::string& volume_name) {
  const auto owner = volume_owner(volume_name);
  if (!owner) return "";
  const auto slash = owner->address.find('/');
  return slash == std::string::npos ? "" : owner->address.substr(slash + 1);
}

}  // namespace

bool is_serial_log(const std::string& volume_name) {
  return role_of(volume_name) == "serial";
}

bool is_seed_volume(const std::string& volume_name) {
  return role_of(volume_name) == "seed";
}

std::string lock_volume_name(const std::string& cluster) {
  return std::string(kOwnerPrefix) + "-lock_" + cluster;
}

bool is_lock_volume(const std::string& volume_name) {
  return volume_name.rfind(std::string(kOwnerPrefix) + "-lock_", 0) == 0;
}

bool is_bookkeeping_volume(const std::string& volume_name) {
  if (is_lock_volume(volume_name) || volume_name.rfind(std::string(kOwnerPrefix) + "-net_", 0) == 0)
    return true;
  const std::string role = role_of(volume_name);
  return role == "done" || role == "serial";
}

std::string network_record_name(const std::string& cluster, const std::string& network,
                                const std::string& uuid) {
  return std::string(kOwnerPrefix) + "-net_" + cluster + "_" + network + "_" + uuid;
}

std::optional<NetworkRecord> network_record(const std::string& volume_name,
                                            const std::string& cluster) {
  const std::string prefix = std::string(kOwnerPrefix) + "-net_" + cluster + "_";
  if (volume_name.size() <= prefix.size() || volume_name.rfind(prefix, 0) != 0) return std::nullopt;
  // UUIDs have no '_' (network names may): the last '_' starts the UUID.
  const std::string rest = volume_name.substr(prefix.size());
  const auto cut = rest.rfind('_');
  if (cut == std::string::npos || cut == 0 || cut + 1 == rest.size()) return std::nullopt;
  return NetworkRecord{rest.substr(0, cut), rest.substr(cut + 1)};
}

std::set<NetworkRecord> network_records(const std::vector<ObservedVolume>& volumes,
                                        const std::string& pool, const std::string& cluster) {
  std::set<NetworkRecord> out;
  for (const auto& v : volumes) {
    if (v.pool != pool) continue;
    if (auto r = network_record(v.name, cluster)) out.insert(*r);
  }
  return out;
}

std::optional<Ownership> network_owner(const std::string& libvirt_name) {
  std::string cluster, rest;
  if (!split_reserved(libvirt_name, cluster, rest)) return std::nullopt;
  return Ownership{cluster, "network." + rest, "", std::nullopt};
}

std::optional<Ownership> volume_owner(const std::string& volume_name) {
  const std::string image_prefix = std::string(kOwnerPrefix) + "-image_";
  if (volume_name.rfind(image_prefix, 0) == 0) {
    std::string id = volume_name.substr(image_prefix.size());
    const bool marker = id.size() > 5 && id.compare(id.size() - 5, 5, ".done") == 0;
    id = strip_extension(marker ? id.substr(0, id.size() - 5) : id);
    if (id.empty()) return std::nullopt;
    return Ownership{"", "image." + id + (marker ? "/done" : ""), "", std::nullopt};
  }
  std::string cluster, rest;
  if (!split_reserved(volume_name, cluster, rest)) return std::nullopt;
  rest = strip_extension(rest);
  const auto sep = rest.find('_');  // <instance>_<role>
  if (sep == std::string::npos || sep == 0 || sep + 1 >= rest.size()) return std::nullopt;
  const std::string instance = rest.substr(0, sep);
  std::string role = rest.substr(sep + 1);
  if (role.rfind("data-", 0) == 0) {
    role = "data/" + role.substr(5);
  } else if (role != "root" && role != "seed" && role != "serial" && role != "nvram") {
    return std::nullopt;
  }
  return Ownership{cluster, "volume." + instance + "/" + role, "", std::nullopt};
}

std::string vm_record_json(const VmRecord& r) {
  nlohmann::json nics = nlohmann::json::array();
  for (const auto& n : r.nics) {
    nlohmann::json nic{{"network", n.network}, {"ip", n.ip}, {"mac", n.mac}};
    // Only when set: a NIC on a network records (and hashes) as before these existed.
    if (!n.bridge.empty()) nic["bridge"] = n.bridge;
    if (!n.direct.empty()) nic["direct"] = n.direct;
    if (!n.mode.empty()) nic["mode"] = n.mode;
    if (!n.model.empty()) nic["model"] = n.model;
    if (n.queues != 0) nic["queues"] = n.queues;
    nics.push_back(std::move(nic));
  }
  // nlohmann::json keeps keys sorted: the text (and so spec_hash) depends on the values alone.
  nlohmann::json j{{"image", r.image},
                   {"image_id", r.image_id},
                   {"cpus", r.cpus},
                   {"memory", r.memory},
                   {"disk", r.disk ? nlohmann::json(*r.disk) : nlohmann::json(nullptr)},
                   {"data_disks", r.data_disks},
                   {"nics", nics},
                   {"autostart", r.autostart},
                   {"group", r.group},
                   {"prevent_destroy", r.prevent_destroy},
                   {"instance_id", r.instance_id},
                   {"user_data_sha256", r.user_data_sha256},
                   {"network_config_sha256", r.network_config_sha256},
                   {"user_data_shown", r.user_data_shown},
                   {"network_config_shown", r.network_config_shown}};
  // Written only when set, so that a BIOS VM's record (and hash) reads as before they existed.
  if (!r.firmware.empty()) j["firmware"] = r.firmware;
  if (r.secure_boot) j["secure_boot"] = true;
  if (r.tpm) j["tpm"] = true;
  if (!r.cache.empty()) j["cache"] = r.cache;
  if (!r.adopted.empty()) {
    j["adopted"] = r.adopted;
    j["volumes"] = r.volumes;
  }
  return j.dump();
}

std::optional<VmRecord> vm_record_from_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    VmRecord r;
    r.image = j.value("image", "");
    r.image_id = j.value("image_id", "");
    r.cpus = j.value("cpus", 1);
    r.memory = j.value("memory", std::uint64_t{0});
    if (j.contains("disk") && j["disk"].is_number_unsigned())
      r.disk = j["disk"].get<std::uint64_t>();
    if (j.contains("data_disks") && j["data_disks"].is_object())
      r.data_disks = j["data_disks"].get<std::map<std::string, std::uint64_t>>();
    for (const auto& n : j.value("nics", nlohmann::json::array())) {
      r.nics.push_back({n.value("network", ""), n.value("ip", ""), n.value("mac", ""),
                        n.value("bridge", ""), n.value("direct", ""), n.value("mode", ""),
                        n.value("model", ""), n.value("queues", 0)});
    }
    r.autostart = j.value("autostart", true);
    r.group = j.value("group", "");
    r.prevent_destroy = j.value("prevent_destroy", false);
    r.instance_id = j.value("instance_id", "");
    r.user_data_sha256 = j.value("user_data_sha256", "");
    r.network_config_sha256 = j.value("network_config_sha256", "");
    r.user_data_shown = j.value("user_data_shown", "");
    r.network_config_shown = j.value("network_config_shown", "");
    r.firmware = j.value("firmware", "");
    r.secure_boot = j.value("secure_boot", false);
    r.tpm = j.value("tpm", false);
    r.cache = j.value("cache", "");
    r.adopted = j.value("adopted", "");
    if (j.contains("volumes")) r.volumes = j["volumes"].get<std::vector<std::string>>();
    return r;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a field of the wrong type: not a record this kumo wrote
  }
}

std::string owner_metadata_xml(const Ownership& owner, bool with_namespace) {
  pugi::xml_document doc;
  const std::string p = with_namespace ? std::string(kOwnerPrefix) + ":" : "";
  auto root = doc.append_child((p + "owner").c_str());
  if (with_namespace) root.append_attribute("xmlns:kumo") = kOwnerNamespace;
  root.append_child((p + "cluster").c_str()).text() = owner.cluster.c_str();
  root.append_child((p + "address").c_str()).text() = owner.address.c_str();
  root.append_child((p + "spec-hash").c_str()).text() = owner.spec_hash.c_str();
  if (owner.spec)
    root.append_child((p + "spec").c_str()).text() = vm_record_json(*owner.spec).c_str();
  if (owner.ready) root.append_child((p + "ready").c_str()).text() = "yes";
  if (!owner.moving_from.empty())
    root.append_child((p + "moving-from").c_str()).text() = owner.moving_from.c_str();
  if (!owner.moved_to.empty())
    root.append_child((p + "moved-to").c_str()).text() = owner.moved_to.c_str();
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw | pugi::format_no_declaration);
  return out.str();
}

std::optional<Ownership> parse_owner_from_domain_xml(const std::string& domain_xml) {
  pugi::xml_document doc;
  if (!doc.load_string(domain_xml.c_str())) return std::nullopt;
  for (auto child : doc.child("domain").child("metadata").children()) {
    bool ours = false;
    for (auto attr : child.attributes()) {
      const std::string name = attr.name();
      ours = ours || ((name == "xmlns" || name.rfind("xmlns:", 0) == 0) &&
                      std::string(attr.value()) == kOwnerNamespace);
    }
    if (!ours || local_name(child.name()) != "owner") continue;
    Ownership owner;
    for (auto field : child.children()) {
      const std::string key = local_name(field.name());
      const std::string value = field.text().get();
      if (key == "cluster") owner.cluster = value;
      if (key == "address") owner.address = value;
      if (key == "spec-hash") owner.spec_hash = value;
      if (key == "ready") owner.ready = value == "yes";
      if (key == "moving-from") owner.moving_from = value;
      if (key == "moved-to") owner.moved_to = value;
      if (key == "spec" && !value.empty()) owner.spec = vm_record_from_json(value);
    }
    if (owner.cluster.empty() || owner.address.empty()) return std::nullopt;
    return owner;
  }
  return std::nullopt;
}

}  // namespace kumo
