// The differ's networks: created, replaced when what libvirt cannot change live changes (mode,
// address, DHCP range, domain, bridge, MTU), updated live when only host entries change.
#include <algorithm>

#include "planner/differ_internal.h"
#include "providers/ownership.h"

namespace kumo::differ {
namespace {

std::string forward_of(NetMode m) {
  switch (m) {
    case NetMode::Nat:
      return "nat";
    case NetMode::Route:
      return "route";
    case NetMode::Bridge:
      return "bridge";
    case NetMode::Isolated:
      return "";
  }
  return "";
}

NetworkSpec network_spec(const DesiredNetwork& n) {
  NetworkSpec s;
  s.name = n.libvirt_name;
  s.mode = to_string(n.mode);
  s.bridge = n.bridge;
  s.address = n.cidr ? n.cidr->first_host().str() : "";
  s.prefix = n.cidr ? n.cidr->prefix : 0;
  s.dhcp_start = n.dhcp_range ? n.dhcp_range->start.str() : "";
  s.dhcp_end = n.dhcp_range ? n.dhcp_range->end.str() : "";
  s.domain = n.domain.value_or("");
  s.mtu = n.mtu;
  for (const auto& h : n.dhcp_hosts) s.dhcp_hosts.push_back({h.mac, h.ip, h.name});
  for (const auto& [name, ip] : n.dns_hosts) s.dns_hosts.push_back({ip, {name}});
  return s;
}

std::string dhcp_text(const DesiredNetwork& n) {
  return n.dhcp_range ? n.dhcp_range->start.str() + "-" + n.dhcp_range->end.str() : "";
}

// What the network's DNS serves, as comparable text: one line per <dns><host>.
std::set<std::string> dns_lines(const std::vector<ObservedDnsHost>& hosts) {
  std::set<std::string> out;
  for (const auto& h : hosts) {
    std::string line = h.ip;
    for (const auto& n : h.names) line += " " + n;
    out.insert(line);
  }
  return out;
}

void created(const DesiredNetwork& net, ResourceChange& c) {
  c.action = Action::Create;
  std::map<std::string, std::string> dns;
  for (const auto& [name, ip] : net.dns_hosts) dns[name] = ip;
  c.attributes = {attr("mode", {}, text(to_string(net.mode))),
                  attr("cidr", {}, text(net.cidr ? net.cidr->str() : "")),
                  attr("dhcp", {}, text(net.dhcp_range ? dhcp_text(net) : "off")),
                  attr("domain", {}, text(net.domain.value_or(""))),
                  attr("bridge", {}, text(net.bridge))};
  if (!net.dhcp_hosts.empty())
    c.attributes.push_back(
        attr("dhcp_hosts", {}, number(static_cast<std::int64_t>(net.dhcp_hosts.size()))));
  if (!net.dns_hosts.empty()) c.attributes.push_back(attr("dns_hosts", {}, Value(dns)));
  // Unset: say nothing.
  std::erase_if(c.attributes,
                [](const AttributeChange& a) { return a.after == Value(std::string()); });
}

void changed_lines(ResourceChange& c, const char* name, const std::set<std::string>& have,
                   const std::set<std::string>& want) {
  if (want == have) return;
  c.attributes.push_back(attr(name, Value(std::vector<std::string>(have.begin(), have.end())),
                              Value(std::vector<std::string>(want.begin(), want.end()))));
}

}  // namespace

void Differ::diff_network(const DesiredNetwork& net) {
  auto hit = hosts_.find(net.host);
  if (hit == hosts_.end()) return;  // unreachable, reported elsewhere
  const HostIndex& idx = hit->second;
  ResourceChange c;
  c.address = Address::network(net.name);
  c.host = net.host;
  c.desired = network_spec(net);
  auto it = idx.networks.find(net.libvirt_name);
  if (it == idx.networks.end()) {
    created(net, c);
    result_.changes.push_back(std::move(c));
    return;
  }
  const ObservedNetwork& o = *it->second;
  if (!ours(idx, o)) {
    // The reserved name alone proves nothing: kumo never adopts a network it has no record of.
    const DesiredHost* dh = desired_.find_host(net.host);
    const std::string pool = dh ? dh->pool : "default";
    const std::string record = network_record_name(desired_.cluster, net.name, o.uuid);
    result_.errors.error(
        {}, "host \"" + net.host + "\": network " + o.name + " (UUID " + o.uuid +
                ") has the name kumo reserves for network." + net.name +
                ", but kumo has no record of making it (no volume " + record +
                " in storage pool \"" + pool + "\"); kumo never adopts it: remove or rename it, " +
                "or, if this cluster's kumo made it before it kept records, record it on the " +
                "host: virsh vol-create-as " + pool + " " + record + " 0");
    return;
  }
  c.observed = ObservedRef{o.name, o.uuid, "", o.active ? "active" : "inactive", 0};
  auto forces = [&](const std::string& name, Value before, Value after) {
    if (before == after) return;
    auto a = attr(name, std::move(before), std::move(after));
    a.forces_replacement = true;
    c.attributes.push_back(std::move(a));
  };
  auto optional_number = [](const std::optional<int>& v) { return v ? number(*v) : Value(); };
  forces("mode", text(o.forward_mode.empty() ? "isolated" : o.forward_mode),
         text(net.mode == NetMode::Isolated ? "isolated" : forward_of(net.mode)));
  forces(
      "address", text(o.ip.empty() ? "" : o.ip + "/" + std::to_string(o.prefix)),
      text(net.cidr ? net.cidr->first_host().str() + "/" + std::to_string(net.cidr->prefix) : ""));
  forces("dhcp", text(o.dhcp_start.empty() ? "off" : o.dhcp_start + "-" + o.dhcp_end),
         text(net.dhcp_range ? dhcp_text(net) : "off"));
  forces("domain", text(o.domain), text(net.domain.value_or("")));
  forces("bridge", text(o.bridge), text(net.bridge));
  forces("mtu", optional_number(o.mtu), optional_number(net.mtu));
  if (!c.attributes.empty()) {
    c.action = Action::Replace;
    c.disruption = Disruption::Live;
    const auto users = running_vms_on(idx, o.name);
    c.reason = users.empty() ? "the network is recreated"
                             : "the network is recreated; running VMs lose connectivity "
                               "meanwhile: " +
                                   join(users);
    if (!users.empty()) c.disruption = Disruption::Restart;
    result_.changes.push_back(std::move(c));
    return;
  }
  std::set<std::string> want, have;
  for (const auto& h : net.dhcp_hosts) want.insert(h.mac + " " + h.ip + " " + h.name);
  for (const auto& h : o.dhcp_hosts) have.insert(h.mac + " " + h.ip + " " + h.name);
  changed_lines(c, "dhcp_hosts", have, want);
  changed_lines(c, "dns_hosts", dns_lines(o.dns_hosts), dns_lines(dns_entries(*c.network())));
  if (!c.attributes.empty()) {
    c.reason = "DHCP/DNS host entries change live; guests keep their connectivity";
    c.disruption = Disruption::Live;
  }
  if (!o.active) c.attributes.push_back(attr("active", flag(false), flag(true)));
  if (!o.autostart) c.attributes.push_back(attr("autostart", flag(false), flag(true)));
  if (!c.attributes.empty()) {
    c.action = Action::Update;
    result_.changes.push_back(std::move(c));
  }
}

}  // namespace kumo::differ
