// networks: -> NetworkConfig
#include <algorithm>

#include "planner/config/loader_internal.h"
#include "planner/config/names.h"
#include "planner/config/schema.h"

namespace kumo::detail {
namespace {

std::optional<std::string> check_domain(const std::string& domain) {
  if (domain.empty() || domain.size() > 253)
    return "domain " + quote(domain) + " is not a DNS domain";
  size_t start = 0;
  while (start <= domain.size()) {
    const size_t dot = domain.find('.', start);
    const std::string label =
        domain.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (check_hostname(label)) {
      return "domain " + quote(domain) +
             " is not a DNS domain (labels of lowercase letters, digits and '-', separated by "
             "dots)";
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return std::nullopt;
}

void load_dhcp(Reader& r, const YAML::Node& f, const std::string& where, NetworkConfig& net) {
  if (f.IsScalar()) {
    if (auto b = r.boolean(f, where + ": dhcp")) net.dhcp = *b;
    return;
  }
  auto fields = r.mapping(f, where + ": dhcp", {"range"});
  if (!fields) return;
  net.dhcp = true;
  for (auto& [k, v, k_at] : *fields) {
    auto s = r.string(v, where + ": dhcp: range");
    if (!s) continue;
    const auto dash = s->find('-');
    auto trim = [](std::string x) {
      x.erase(0, x.find_first_not_of(' '));
      x.erase(x.find_last_not_of(' ') + 1);
      return x;
    };
    if (dash == std::string::npos) {
      r.error(v, where + ": dhcp: range: " + r.shown(*s) +
                     " must be START-END, e.g. 10.10.0.100-10.10.0.200");
      continue;
    }
    auto a = parse_ipv4(trim(s->substr(0, dash)));
    auto b = parse_ipv4(trim(s->substr(dash + 1)));
    if (auto* e = std::get_if<ParseError>(&a)) {
      r.error(v, where + ": dhcp: range: " + r.hide(e->message));
      continue;
    }
    if (auto* e = std::get_if<ParseError>(&b)) {
      r.error(v, where + ": dhcp: range: " + r.hide(e->message));
      continue;
    }
    DhcpRange range{std::get<Ipv4>(a), std::get<Ipv4>(b)};
    if (range.end < range.start) {
      r.error(v, where + ": dhcp: range: " +
                     r.hide(range.start.str() + " comes after " + range.end.str()));
      continue;
    }
    net.dhcp_range = range;
  }
}

// hosts: which of the file's hosts the network lives on.
void load_network_hosts(Reader& r, const YAML::Node& f, const std::string& where,
                        const Sections& sections, const ClusterConfig& cfg,
                        const std::vector<std::string>& host_names, NetworkConfig& net) {
  auto list = r.string_list(f, where + ": hosts");
  if (!list || r.refuse_sensitive(f, where + ": hosts")) return;
  net.hosts.clear();
  size_t i = 0;
  for (const auto& h : *list) {
    const YAML::Node item = f[i++];
    if (!cfg.find_host(h)) {
      if (sections.hosts)
        r.error(item, where + ": hosts: host " + quote(h) + " is not defined" +
                          did_you_mean(h, host_names));
    } else if (std::find(net.hosts.begin(), net.hosts.end(), h) != net.hosts.end()) {
      r.error(item, where + ": hosts: host " + quote(h) + " is listed twice");
    } else {
      net.hosts.push_back(h);
    }
  }
  if (list->empty())
    r.error(f, where + ": hosts: the list is empty (leave hosts: out for all hosts)");
}

void load_dns_hosts(Reader& r, const YAML::Node& f, const std::string& where, NetworkConfig& net) {
  auto names = r.named_mapping(f, where + ": dns_hosts");
  if (!names) return;
  for (auto& [dns_name, value, dns_at] : *names) {
    const std::string what = where + ": dns_hosts: " + dns_name;
    if (auto bad = check_hostname(dns_name)) r.error(dns_at, what + ": " + *bad);
    auto s = r.string(value, what);
    if (!s) continue;
    auto ip = parse_ipv4(*s);
    if (auto* e = std::get_if<ParseError>(&ip)) {
      r.error(value, what + ": " + r.hide(e->message));
      continue;
    }
    net.dns_hosts.push_back({dns_name, std::get<Ipv4>(ip), r.loc(dns_at)});
  }
}

// The nodes a network's checks point at once every field is read. Undefined until seen.
// (Assigning to a bound yaml-cpp node overwrites the node it refers to, so these are rebound
// with reset(), never assigned.)
struct NetworkNodes {
  YAML::Node dhcp{YAML::NodeType::Undefined}, bridge{YAML::NodeType::Undefined},
      cidr{YAML::NodeType::Undefined};
};

void load_network_field(Reader& r, const std::string& k, const YAML::Node& f,
                        const std::string& where, const Sections& sections,
                        const ClusterConfig& cfg, const std::vector<std::string>& host_names,
                        NetworkNodes& nodes, NetworkConfig& net) {
  if (k == "mode") {
    if (auto m = r.choice<NetMode>(f, where + ": mode",
                                   {{"nat", NetMode::Nat},
                                    {"isolated", NetMode::Isolated},
                                    {"route", NetMode::Route},
                                    {"bridge", NetMode::Bridge}})) {
      net.mode = *m;
    }
  } else if (k == "cidr") {
    nodes.cidr.reset(f);
    net.cidr_location = r.loc(f);
    if (auto s = r.string(f, where + ": cidr")) {
      auto c = parse_cidr(*s);
      if (auto* e = std::get_if<ParseError>(&c)) {
        r.error(f, where + ": cidr: " + r.hide(e->message));
      } else {
        net.cidr = std::get<Cidr>(c);
      }
    }
  } else if (k == "dhcp") {
    nodes.dhcp.reset(f);
    load_dhcp(r, f, where, net);
  } else if (k == "domain") {
    if (auto s = r.string(f, where + ": domain")) {
      if (auto bad = check_domain(*s))
        r.error(f, where + ": " + (r.last_sensitive() ? "domain: " + r.hide(*bad) : *bad));
      net.domain = *s;
    }
  } else if (k == "bridge") {
    nodes.bridge.reset(f);
    if (auto s = r.string(f, where + ": bridge")) {
      if (s->empty() || s->size() > 15 || s->find_first_of(" /:") != std::string::npos) {
        r.error(f, where + ": bridge: " + r.shown(*s) +
                       " is not a Linux interface name (1-15 characters, no spaces, '/' or ':')");
      }
      net.bridge = *s;
    }
  } else if (k == "hosts") {
    load_network_hosts(r, f, where, sections, cfg, host_names, net);
  } else if (k == "mtu") {
    if (auto v = r.integer(f, where + ": mtu", 576, 9216)) net.mtu = *v;
  } else if (k == "dns_hosts") {
    load_dns_hosts(r, f, where, net);
  }
}

// What a mode needs and forbids.
void check_mode(Reader& r, const YAML::Node& n, const YAML::Node& name_at, const std::string& where,
                const NetworkNodes& nodes, NetworkConfig& net) {
  if (net.mode != NetMode::Bridge) {
    if (nodes.bridge.IsDefined()) {
      r.error(
          nodes.bridge,
          where + ": bridge: is only used with mode: bridge (kumo names the bridges it creates)");
    }
    if (!nodes.cidr.IsDefined()) {
      r.error(name_at, where + ": mode " + std::string(to_string(net.mode)) +
                           " needs a cidr (e.g. cidr: 10.10.0.0/24)");
    }
    return;
  }
  if (!nodes.bridge.IsDefined()) {
    r.error(name_at,
            where + ": mode: bridge needs bridge: <name of an existing bridge on the host>");
  }
  if (nodes.dhcp.IsDefined()) {
    r.error(nodes.dhcp, where +
                            ": dhcp: a bridged network gets DHCP from the bridge's LAN, not "
                            "from kumo; remove dhcp");
  }
  if (n["domain"].IsDefined()) {
    r.error(n["domain"], where + ": domain: a bridged network has no kumo DNS; remove domain");
  }
  if (n["dns_hosts"].IsDefined()) {
    r.error(n["dns_hosts"],
            where + ": dns_hosts: a bridged network has no kumo DNS; remove dns_hosts");
  }
  net.dhcp = false;
}

// The DHCP range lies inside the block, off its network, broadcast and gateway addresses.
void check_dhcp_range(Reader& r, const YAML::Node& dhcp_node, const std::string& where,
                      const NetworkConfig& net) {
  if (!net.cidr || !net.dhcp_range) return;
  const Cidr& c = *net.cidr;
  for (Ipv4 ip : {net.dhcp_range->start, net.dhcp_range->end}) {
    std::string problem;
    if (!c.contains(ip)) {
      problem = "outside " + c.str();
    } else if (ip == c.network) {
      problem = "the network address of " + c.str();
    } else if (ip == c.broadcast()) {
      problem = "the broadcast address of " + c.str();
    } else if (ip == net.gateway()) {
      problem = "the host's own address (gateway) on " + c.str();
    }
    if (!problem.empty()) {
      const bool secret = net.sensitive.has("dhcp") || net.sensitive.has("cidr");
      r.error(child(dhcp_node, "range"),
              where + ": dhcp: range: " +
                  (secret ? std::string(kSensitiveMask) + " is outside the usable addresses"
                          : ip.str() + " is " + problem));
      return;
    }
  }
}

}  // namespace

bool load_networks(Reader& r, const YAML::Node& node, const Sections& sections,
                   ClusterConfig& cfg) {
  auto entries = r.named_mapping(node, "networks");
  if (!entries) return false;
  std::vector<std::string> host_names;
  for (auto& h : cfg.hosts) host_names.push_back(h.name);
  for (auto& [name, n, name_at] : *entries) {
    NetworkConfig net;
    net.name = name;
    net.location = r.loc(name_at);
    net.hosts = host_names;
    const std::string where = ctx("network", name);
    if (auto bad = check_name(name)) r.error(name_at, where + ": " + *bad);
    auto fields = r.mapping(n, where, schema_keys("network"));
    if (!fields) {
      cfg.networks.push_back(std::move(net));
      continue;
    }
    NetworkNodes nodes;
    for (auto& [k, f, k_at] : *fields) {
      const auto marked = r.mark(net.sensitive, k);
      load_network_field(r, k, f, where, sections, cfg, host_names, nodes, net);
    }
    check_mode(r, n, name_at, where, nodes, net);
    check_dhcp_range(r, nodes.dhcp, where, net);
    cfg.networks.push_back(std::move(net));
  }
  return true;
}

}  // namespace kumo::detail
