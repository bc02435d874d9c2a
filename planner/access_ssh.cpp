// The route to a VM and the ssh command line that takes it (planner/access.h).
#include <arpa/inet.h>

#include <algorithm>

#include "planner/access.h"
#include "providers/ownership.h"
#include "providers/redact.h"

namespace kumo {
namespace {

bool is_ipv4(const std::string& ip) {
  in_addr a{};
  return inet_pton(AF_INET, ip.c_str(), &a) == 1;
}

std::string shown_uri(const DesiredHost& h) {
  return h.sensitive.has("uri") ? std::string(kSensitiveMask) : redact_host_uri(h.uri);
}

std::string mode_of(const DesiredCluster& desired, const ObservedHost& host,
                    const std::string& network) {
  if (const NetworkTemplate* t = desired.find_network(network)) return to_string(t->network.mode);
  const std::string libvirt_name = network_name(desired.cluster, network);
  for (const auto& n : host.networks) {
    if (n.name == libvirt_name) return n.forward_mode.empty() ? "isolated" : n.forward_mode;
  }
  return "isolated";  // not known: assume it lives inside the host
}

enum class Way { Direct, Jump, None };

// A value kumo writes into its ssh_config: no quote, no control character, no leading '-'.
void check_config_value(const std::string& what, const std::string& value, const SshJump& j) {
  const bool bad = (!value.empty() && value[0] == '-') ||
                   std::any_of(value.begin(), value.end(),
                               [](unsigned char c) { return c == '"' || c < 0x20 || c == 0x7f; });
  if (bad) {
    throw AccessError("the " + what + " of the jump host in " + j.from +
                      " has characters ssh_config cannot hold (a double quote, a control "
                      "character or a leading -)");
  }
}

}  // namespace

SshTarget ssh_target(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                     const LocatedVm& located, const std::vector<NetworkAddress>& addresses,
                     const std::vector<ssh::Route>& routes) {
  const ObservedHost& oh = observed.at(located.host);
  const DesiredHost* dh = desired.find_host(oh.host);
  const ObservedDomain& d = *located.domain;
  const std::string vm = "vm." + d.name;
  if (dh == nullptr) {
    throw AccessError(vm + " runs on host " + oh.host + ", which " + desired.file +
                      " no longer lists");
  }
  if (!d.active) {
    throw AccessError(vm + " on " + oh.host + " is " + d.state +
                      ", so there is nothing to connect to; start it with kumo apply (with "
                      "running: true) or virsh -c '" +
                      shown_uri(*dh) + "' start " + d.name);
  }
  SshTarget t;
  t.vm = d.name;
  t.group = located.vm ? located.vm->group : d.name;
  t.host = oh.host;
  t.uuid = d.uuid;
  t.user = located.vm ? located.vm->ssh_user : "root";
  t.identity_file = located.vm ? located.vm->ssh_identity_file : "";
  t.host_key_alias = d.name + "." + desired.cluster + ".kumo";
  const auto jump = host_jump(*dh);

  const NetworkAddress* direct = nullptr;
  const NetworkAddress* through = nullptr;
  const NetworkAddress* stuck = nullptr;  // has an address, but no way in
  std::vector<std::string> without;       // networks with no address yet
  for (const auto& a : addresses) {
    if (a.ip.empty()) {
      without.push_back(a.network);
      continue;
    }
    const std::string mode = mode_of(desired, oh, a.network);
    Way way = Way::None;
    if (dh->ssh_jump && dh->ssh_jump->direct)
      way = Way::Direct;
    else if (dh->ssh_jump)
      way = Way::Jump;
    else if (mode == "bridge")
      way = Way::Direct;
    else if (jump)
      way = Way::Jump;
    else if (is_ipv4(a.ip) && ssh::routed_here(a.ip, routes))
      way = Way::Direct;
    if (way == Way::Direct && !direct) direct = &a;
    if (way == Way::Jump && !through) through = &a;
    if (way == Way::None && !stuck) stuck = &a;
  }
  if (const NetworkAddress* a = direct ? direct : through) {
    t.address = a->ip;
    t.network = a->network;
    if (!direct) t.jump = jump;
    return t;
  }
  if (stuck != nullptr) {
    throw AccessError(
        vm + " is at " + stuck->ip + " on network " + stuck->network + " (" +
        mode_of(desired, oh, stuck->network) + ") inside host " + oh.host +
        ", and kumo has no ssh route in: " + oh.host + " is reached through " + shown_uri(*dh) +
        ", which names no machine to jump through, and this machine has no route to " + stuck->ip +
        ". Set hosts." + oh.host +
        ".ssh_jump to [user@]host[:port] of a machine that reaches that network (" + oh.host +
        " itself), or use a qemu+ssh:// uri" +
        (dh->location.known() ? " (host " + oh.host + " is at " + dh->location.file + ":" +
                                    std::to_string(dh->location.line) + ")"
                              : ""));
  }
  if (addresses.empty()) {
    throw AccessError(vm +
                      " has no network interface, so it has no address to connect to; "
                      "give it networks: in " +
                      desired.file);
  }
  std::string nets;
  for (const auto& n : without) nets += (nets.empty() ? "" : ", ") + n;
  throw AccessError(vm + " has no address yet on " + nets +
                    " (no static ip, no DHCP lease, and the guest agent does not say); it may "
                    "still be booting: kumo status shows when it is ready");
}

std::string ssh_config_text(const std::string& cluster, const std::vector<SshJump>& jumps) {
  std::string out =
      "# kumo's ssh_config for cluster " + cluster +
      ": what kumo ssh and kumo inventory need to jump through the hosts.\n"
      "# Rewritten from kumo.yaml by every kumo ssh and kumo inventory: edits here are lost.\n";
  for (const auto& j : jumps) {
    check_config_value("host", j.host, j);
    check_config_value("user", j.user, j);
    check_config_value("identity file", j.identity_file, j);
    check_config_value("known_hosts file", j.known_hosts, j);
    // ssh puts user and host into the command line it runs for the jump: plain names only.
    const std::string name_chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    if (j.host.empty() || j.host.find_first_not_of(name_chars + ":") != std::string::npos)
      throw AccessError("the jump host in " + j.from + " is not a plain host name or address");
    if (j.user.find_first_not_of(name_chars) != std::string::npos)
      throw AccessError("the jump user in " + j.from + " is not a plain login name");
    if (j.identity_file.empty() && j.known_hosts.empty() && j.verify) continue;
    out += "\n# from " + j.from + "\nHost " + j.host + "\n";
    if (!j.identity_file.empty()) out += "    IdentityFile \"" + j.identity_file + "\"\n";
    if (!j.known_hosts.empty()) out += "    UserKnownHostsFile \"" + j.known_hosts + "\"\n";
    if (!j.verify) out += "    StrictHostKeyChecking no\n";
  }
  out +=
      "\n# Everything else as ssh would do it without kumo.\nMatch all\nInclude ~/.ssh/config\n"
      "Include /etc/ssh/ssh_config\n";
  return out;
}

std::vector<std::string> ssh_common_options(const SshTarget& t, const SshFiles& files) {
  std::vector<std::string> out = {"-F", files.config,
                                  "-o", "UserKnownHostsFile=" + files.known_hosts,
                                  "-o", "StrictHostKeyChecking=yes",
                                  "-o", "HostKeyAlias=" + t.host_key_alias,
                                  "-o", "CheckHostIP=no"};
  if (t.jump) {
    out.push_back("-o");
    out.push_back("ProxyJump=" + t.jump->spec());
  }
  return out;
}

std::vector<std::string> ssh_argv(const SshTarget& t, const SshFiles& files,
                                  const std::vector<std::string>& command) {
  std::vector<std::string> argv = {"ssh"};
  for (auto& o : ssh_common_options(t, files)) argv.push_back(std::move(o));
  if (!t.identity_file.empty()) {
    argv.push_back("-i");
    argv.push_back(t.identity_file);
  }
  argv.push_back("-l");
  argv.push_back(t.user);
  argv.push_back(t.address);
  if (!command.empty()) {
    // ssh reads options again after the destination: "--" ends them, the rest is the command.
    argv.push_back("--");
    for (const auto& c : command) argv.push_back(c);
  }
  return argv;
}

}  // namespace kumo
