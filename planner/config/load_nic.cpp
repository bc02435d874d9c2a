// One entry of a VM's networks: a network name, or a mapping: {network, ip, mac}, {bridge} (a
// bridge the host already has) or {direct, mode} (macvtap on a host interface), each with model
// and queues. Part of the loader.
#include <algorithm>
#include <cctype>

#include "planner/config/loader_internal.h"
#include "planner/config/names.h"
#include "planner/config/schema.h"

namespace kumo::detail {
namespace {

// A Linux interface name as the host knows it: 1-15 bytes, no '/', ':' or whitespace.
bool interface_name(const std::string& s) {
  return !s.empty() && s.size() <= 15 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

std::vector<std::string> network_names(const ClusterConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& n : cfg.networks) out.push_back(n.name);
  return out;
}

void load_address(Reader& r, const YAML::Node& item, const std::string& where, NicConfig& nic) {
  if (item["ip"].IsDefined()) {
    nic.ip_location = r.loc(item["ip"]);
    if (auto s = r.string(item["ip"], where + ": ip")) {
      auto ip = parse_ipv4(*s);
      if (auto* e = std::get_if<ParseError>(&ip)) {
        r.error(item["ip"], where + ": ip: " + r.hide(e->message));
      } else {
        nic.ip = std::get<Ipv4>(ip);
      }
    }
  }
  if (item["mac"].IsDefined()) {
    nic.mac_location = r.loc(item["mac"]);
    if (auto s = r.string(item["mac"], where + ": mac")) {
      auto mac = parse_mac(*s);
      if (auto* e = std::get_if<ParseError>(&mac)) {
        r.error(item["mac"], where + ": mac: " + r.hide(e->message));
      } else {
        nic.mac = std::get<Mac>(mac);
      }
    }
  }
}

// model and queues; false when either is wrong (reported).
bool load_device(Reader& r, const YAML::Node& item, const std::string& where, NicConfig& nic) {
  bool ok = true;
  if (item["model"].IsDefined()) {
    if (auto s = r.string(item["model"], where + ": model")) {
      const bool plain =
          !s->empty() && s->size() <= 32 && std::all_of(s->begin(), s->end(), [](unsigned char c) {
            return std::islower(c) || std::isdigit(c) || c == '-' || c == '_';
          });
      if (!plain) {
        r.error(item["model"], where + ": model: " + quote(*s) +
                                   " is not a NIC model name (virtio, e1000e, rtl8139, ...)");
        ok = false;
      } else if (*s != "virtio") {
        nic.model = *s;
      }
    }
  }
  if (item["queues"].IsDefined()) {
    if (auto q = r.integer(item["queues"], where + ": queues", 1, 256)) {
      if (!nic.model.empty()) {
        r.error(item["queues"], where + ": queues: multiqueue is a virtio feature; model " +
                                    quote(nic.model) + " has one queue");
        ok = false;
      } else {
        nic.queues = *q;
      }
    } else {
      ok = false;
    }
  }
  return ok;
}

}  // namespace

void load_nic(Reader& r, const YAML::Node& item, const std::string& where, const ClusterConfig& cfg,
              const Sections& sections, std::vector<NicConfig>& out) {
  NicConfig nic;
  nic.location = r.loc(item);
  const std::string fw = where + ": networks";
  if (!item.IsMap()) {
    auto name = r.string(item, fw);
    if (!name || r.refuse_sensitive(item, fw)) return;
    nic.network = *name;
    if (!cfg.find_network(*name)) {
      if (sections.networks)
        r.error(item, where + ": network " + quote(*name) + " is not defined" +
                          did_you_mean(*name, network_names(cfg)));
      return;
    }
    out.push_back(std::move(nic));
    return;
  }
  auto fields = r.mapping(item, fw, schema_keys("nic"));
  if (!fields) return;
  const char* kinds[] = {"network", "bridge", "direct"};
  const auto given = std::count_if(std::begin(kinds), std::end(kinds),
                                   [&](const char* k) { return item[k].IsDefined(); });
  if (given == 0) {
    r.error(item, fw +
                      ": entry needs one of network: <name in networks:>, bridge: <a bridge on the "
                      "host> or direct: <a host interface, for macvtap>");
    return;
  }
  if (given > 1) {
    r.error(item, fw + ": give one of network, bridge or direct per entry, not several");
    return;
  }
  load_address(r, item, where, nic);
  if (!load_device(r, item, where, nic)) return;
  if (item["mode"].IsDefined() && !item["direct"].IsDefined()) {
    r.error(item["mode"], where + ": mode is the macvtap mode of a direct: NIC; this entry has " +
                              "none (add direct: <host interface>)");
    return;
  }
  if (item["network"].IsDefined()) {
    auto name = r.string(item["network"], fw);
    if (!name || r.refuse_sensitive(item["network"], fw)) return;
    nic.network = *name;
    if (!cfg.find_network(*name)) {
      if (sections.networks)
        r.error(item["network"], where + ": network " + quote(*name) + " is not defined" +
                                     did_you_mean(*name, network_names(cfg)));
      return;
    }
    out.push_back(std::move(nic));
    return;
  }
  const char* key = item["bridge"].IsDefined() ? "bridge" : "direct";
  const YAML::Node dev = item[key];
  auto name = dev.IsNull() ? std::optional<std::string>("") : r.string(dev, fw + ": " + key);
  if (!name) return;
  if (!interface_name(*name)) {
    r.error(dev,
            where + ": " + key + ": " +
                (name->empty() ? std::string("needs the name of ") +
                                     (std::string(key) == "bridge" ? "a bridge" : "an interface") +
                                     " on the host (e.g. " +
                                     (std::string(key) == "bridge" ? "br0" : "eth1") + ")"
                               : quote(*name) + " is not a network interface name (1-15 letters, "
                                                "digits, - _ .)"));
    return;
  }
  if (nic.ip) {
    r.error(item["ip"], where +
                            ": ip: a static address needs a network of this file (its cidr "
                            "and DHCP); on a " +
                            std::string(key) +
                            " NIC, configure the guest with cloud_init: network_config");
    return;
  }
  if (std::string(key) == "bridge") {
    nic.bridge = *name;
  } else {
    nic.direct = *name;
    nic.mode = "bridge";
    if (item["mode"].IsDefined()) {
      auto m = r.choice<std::string>(item["mode"], where + ": mode",
                                     {{"bridge", "bridge"},
                                      {"vepa", "vepa"},
                                      {"private", "private"},
                                      {"passthrough", "passthrough"}});
      if (!m) return;
      nic.mode = *m;
    }
  }
  out.push_back(std::move(nic));
}

}  // namespace kumo::detail
