#include "planner/access.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>

#include "planner/config/names.h"
#include "providers/ownership.h"

namespace kumo {
namespace {

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct UriParts {
  std::string scheme, user, host, query;
  int port = 0;
};

UriParts split_uri(const std::string& uri) {
  UriParts p;
  const auto sep = uri.find("://");
  if (sep == std::string::npos) return p;
  p.scheme = uri.substr(0, sep);
  std::string rest = uri.substr(sep + 3);
  if (const auto q = rest.find('?'); q != std::string::npos) {
    p.query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string authority = rest.substr(0, rest.find('/'));
  if (const auto at = authority.rfind('@'); at != std::string::npos) {
    p.user =
        percent_decode(authority.substr(0, authority.find(':') < at ? authority.find(':') : at));
    authority = authority.substr(at + 1);
  }
  if (!authority.empty() && authority[0] == '[') {  // [v6]:port
    const auto close = authority.find(']');
    p.host = authority.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    authority = close == std::string::npos ? "" : authority.substr(close + 1);
    if (!authority.empty() && authority[0] == ':') p.port = std::atoi(authority.c_str() + 1);
  } else {
    const auto colon = authority.find(':');
    p.host = authority.substr(0, colon);
    if (colon != std::string::npos) p.port = std::atoi(authority.c_str() + colon + 1);
  }
  return p;
}

std::map<std::string, std::string> query_params(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= query.size()) {
    const auto end = std::min(query.find('&', start), query.size());
    const std::string item = query.substr(start, end - start);
    const auto eq = item.find('=');
    if (!item.empty()) {
      out[percent_decode(item.substr(0, eq))] =
          eq == std::string::npos ? "" : percent_decode(item.substr(eq + 1));
    }
    start = end + 1;
  }
  return out;
}

bool is_usable_ip(const std::string& ip) {
  in_addr a4{};
  if (inet_pton(AF_INET, ip.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) != 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, ip.c_str(), &a6) != 1) return false;
  const bool link_local = a6.s6_addr[0] == 0xfe && (a6.s6_addr[1] & 0xc0) == 0x80;
  return !link_local && !IN6_IS_ADDR_LOOPBACK(&a6);
}

bool is_ipv4(const std::string& ip) {
  in_addr a{};
  return inet_pton(AF_INET, ip.c_str(), &a) == 1;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string SshJump::spec() const {
  std::string out = user.empty() ? "" : user + "@";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port > 0) out += ":" + std::to_string(port);
  return out;
}

std::optional<SshJump> jump_from_uri(const std::string& host_name, const std::string& uri) {
  const UriParts p = split_uri(uri);
  const auto plus = p.scheme.find('+');
  const std::string transport = plus == std::string::npos ? "" : p.scheme.substr(plus + 1);
  if (transport != "ssh" && transport != "libssh" && transport != "libssh2") return std::nullopt;
  if (p.host.empty()) return std::nullopt;
  SshJump j;
  j.host = p.host;
  j.user = p.user;
  j.port = p.port;
  const auto q = query_params(p.query);
  if (auto it = q.find("keyfile"); it != q.end()) j.identity_file = it->second;
  if (auto it = q.find("known_hosts"); it != q.end()) j.known_hosts = it->second;
  if (auto it = q.find("no_verify"); it != q.end()) j.verify = it->second != "1";
  j.from = host_name + "'s uri";
  return j;
}

bool local_uri(const std::string& uri) {
  return split_uri(uri).host.empty();
}

const DesiredVm& desired_vm(const DesiredCluster& desired, const std::string& name) {
  const std::string instance = name.rfind("vm.", 0) == 0 ? name.substr(3) : name;
  std::vector<std::string> names;
  for (const auto& vm : desired.vms) {
    if (vm.instance == instance) return vm;
    names.push_back(vm.instance);
  }
  throw AccessError("no VM named \"" + instance + "\" in " + desired.file + " (cluster " +
                    desired.cluster + ")" + did_you_mean(instance, names) +
                    "; kumo status lists the VMs");
}

LocatedVm locate_vm(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                    const std::string& name) {
  LocatedVm out;
  out.vm = &desired_vm(desired, name);
  const std::string& instance = out.vm->instance;
  std::vector<std::string> found_on, unreachable;
  for (std::size_t h = 0; h < observed.size(); ++h) {
    if (!observed[h].reachable) {
      unreachable.push_back(observed[h].error);
      continue;
    }
    for (const auto& d : observed[h].domains) {
      if (d.name != instance || !d.owner || d.owner->cluster != desired.cluster) continue;
      found_on.push_back(observed[h].host);
      out.host = h;
      out.domain = &d;
    }
  }
  if (found_on.size() > 1) {
    throw AccessError("vm." + instance + " exists on " + found_on[0] + " and " + found_on[1] +
                      " at once; run kumo plan to see which one kumo keeps");
  }
  if (out.domain == nullptr) {
    std::string msg = "vm." + instance + " is in " + desired.file + " but on no host";
    if (!unreachable.empty()) {
      msg += " that answered; not asked: " + unreachable.front();
    } else {
      msg += " yet; kumo apply makes it";
    }
    throw AccessError(msg);
  }
  return out;
}

std::vector<NetworkAddress> network_addresses(const ObservedDomain& domain, const DesiredVm* vm,
                                              const std::vector<GuestAddress>& live) {
  // What was made (the domain's record) is the truth; the file's NICs when there is none.
  std::vector<NicRecord> nics;
  if (domain.owner && domain.owner->spec) {
    nics = domain.owner->spec->nics;
  } else if (vm != nullptr) {
    for (const auto& n : vm->nics) {
      nics.push_back({n.network, n.ip ? n.ip->str() : "", n.mac, n.own_bridge ? n.bridge : "",
                      n.direct, n.mode, n.model, n.queues});
    }
  }
  std::vector<NetworkAddress> out;
  for (const auto& nic : nics) {
    // A host bridge or interface is named as such: no network of the file is behind it.
    const std::string on = !nic.network.empty()  ? nic.network
                           : !nic.bridge.empty() ? "bridge:" + nic.bridge
                                                 : "direct:" + nic.direct;
    NetworkAddress a{on, lower(nic.mac), "", ""};
    // A live IPv4 address first, then IPv6 (global only).
    for (const bool v4 : {true, false}) {
      for (const auto& g : live) {
        if (!a.ip.empty() || lower(g.mac) != a.mac || !is_usable_ip(g.ip) || is_ipv4(g.ip) != v4)
          continue;
        a.ip = g.ip;
        a.source = g.source;
      }
    }
    if (a.ip.empty() && !nic.ip.empty()) {
      a.ip = nic.ip;
      a.source = "static";
    }
    out.push_back(a);
  }
  return out;
}

std::optional<SshJump> host_jump(const DesiredHost& h) {
  if (h.ssh_jump) {
    if (h.ssh_jump->direct) return std::nullopt;
    SshJump j;
    j.host = h.ssh_jump->host;
    j.user = h.ssh_jump->user;
    j.port = h.ssh_jump->port;
    j.identity_file = h.ssh_jump->identity_file;
    j.from = "hosts." + h.name + ".ssh_jump";
    return j;
  }
  if (auto j = jump_from_uri(h.name, h.uri)) return j;
  const UriParts p = split_uri(h.uri);
  if (p.host.empty()) return std::nullopt;  // this machine
  SshJump j;  // qemu+tls://hv1/system and the like: ssh to the same machine, ssh's defaults
  j.host = p.host;
  j.from = h.name + "'s uri (its host, with ssh's own settings)";
  return j;
}

std::vector<SshJump> cluster_jumps(const DesiredCluster& desired) {
  std::vector<SshJump> out;
  for (const auto& h : desired.hosts) {
    if (auto j = host_jump(h)) out.push_back(*j);
  }
  return out;
}

}  // namespace kumo
