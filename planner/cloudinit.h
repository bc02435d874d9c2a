// The three NoCloud seed documents for one VM instance, rendered from its cloud_init config.
// Pure functions: the same config always gives byte-identical documents (and so the same hash).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "planner/config/model.h"

namespace kumo {

// A static address the guest must configure itself (its network has no DHCP).
struct StaticAddress {
  std::string mac;
  Ipv4 ip;
  int prefix = 24;
  std::optional<Ipv4> gateway;  // nat/route networks route through the host
  std::optional<Ipv4> dns;
  std::optional<std::string> search_domain;
};

// user-data: a whole non-cloud-config document is used as-is; otherwise "#cloud-config" with the
// shorthand keys merged in (lists appended after the document's own entries).
std::string render_user_data(const CloudInitConfig& ci);

// meta-data: instance-id and local-hostname.
std::string render_meta_data(const std::string& instance_id, const std::string& hostname);

// network-config (v2): the user's own if given; else static addresses by MAC and DHCP for the
// other interfaces; "" when every interface uses DHCP (cloud-init's default).
// `masked`: MACs and addresses are shown as "(sensitive)" (they came from sensitive variables).
std::string render_network_config(const CloudInitConfig& ci,
                                  const std::vector<std::string>& dhcp_macs,
                                  const std::vector<StaticAddress>& statics, bool masked = false);

// The user-data a reviewer sees, from cloud_init_shown (sensitive values masked). Never throws:
// a document the mask made unreadable as YAML is shown as written.
std::string render_user_data_shown(const CloudInitConfig& shown);

// JSON -> YAML block text, quoting strings that YAML would otherwise read as another type.
std::string to_yaml(const nlohmann::json& value);

}  // namespace kumo
