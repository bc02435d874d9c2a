#include "providers/ownership.h"

#include <sstream>

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
  for (const char* ext : {".qcow2", ".iso", ".raw", ".img", ".log"}) {
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

std::string image_volume_name(const std::string& algo, const std::string& hex) {
  return std::string(kOwnerPrefix) + "-image_" + algo + "-" + hex;
}

std::string image_marker_name(const std::string& image_volume) {
  return image_volume + ".done";
}

std::string serial_log_name(const std::string& cluster, const std::string& instance) {
  return std::string(kOwnerPrefix) + "_" + cluster + "_" + instance + "_serial.log";
}

std::string lock_volume_name(const std::string& cluster) {
  return std::string(kOwnerPrefix) + "-lock_" + cluster;
}

bool is_lock_volume(const std::string& volume_name) {
  return volume_name.rfind(std::string(kOwnerPrefix) + "-lock_", 0) == 0;
}

std::optional<Ownership> network_owner(const std::string& libvirt_name) {
  std::string cluster, rest;
  if (!split_reserved(libvirt_name, cluster, rest)) return std::nullopt;
  return Ownership{cluster, "network." + rest, "", nullptr};
}

std::optional<Ownership> volume_owner(const std::string& volume_name) {
  const std::string image_prefix = std::string(kOwnerPrefix) + "-image_";
  if (volume_name.rfind(image_prefix, 0) == 0) {
    std::string id = volume_name.substr(image_prefix.size());
    const bool marker = id.size() > 5 && id.compare(id.size() - 5, 5, ".done") == 0;
    id = strip_extension(marker ? id.substr(0, id.size() - 5) : id);
    if (id.empty()) return std::nullopt;
    return Ownership{"", "image." + id + (marker ? "/done" : ""), "", nullptr};
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
  } else if (role != "root" && role != "seed" && role != "serial") {
    return std::nullopt;
  }
  return Ownership{cluster, "volume." + instance + "/" + role, "", nullptr};
}

std::string owner_metadata_xml(const Ownership& owner, bool with_namespace) {
  pugi::xml_document doc;
  const std::string p = with_namespace ? std::string(kOwnerPrefix) + ":" : "";
  auto root = doc.append_child((p + "owner").c_str());
  if (with_namespace) root.append_attribute("xmlns:kumo") = kOwnerNamespace;
  root.append_child((p + "cluster").c_str()).text() = owner.cluster.c_str();
  root.append_child((p + "address").c_str()).text() = owner.address.c_str();
  root.append_child((p + "spec-hash").c_str()).text() = owner.spec_hash.c_str();
  if (!owner.spec.is_null())
    root.append_child((p + "spec").c_str()).text() = owner.spec.dump().c_str();
  if (owner.ready) root.append_child((p + "ready").c_str()).text() = "yes";
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
      if (key == "spec" && !value.empty()) {
        owner.spec = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
        if (owner.spec.is_discarded()) owner.spec = nullptr;
      }
    }
    if (owner.cluster.empty() || owner.address.empty()) return std::nullopt;
    return owner;
  }
  return std::nullopt;
}

}  // namespace kumo
