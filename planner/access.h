// Reaching a VM by name (kumo ssh, kumo inventory, kumo status): which host runs it, its
// addresses by network, and how to get there over ssh — straight to the address, or through a
// jump host (the VM's host, as its qemu+ssh:// URI says, or hosts.<h>.ssh_jump) when the address
// lives on a network inside that host. Pure functions of the desired and the observed state;
// what they cannot do becomes an AccessError that names what is missing and how to fix it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "planner/desired.h"
#include "providers/host_session.h"
#include "providers/observed.h"
#include "providers/ssh/routes.h"

namespace kumo {

class AccessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A host ssh goes through (ProxyJump). Its key and known_hosts, when the URI names them, go into
// kumo's ssh_config under `Host <host>`: the jump is made to the host's real name, so that your
// own ssh config for it applies as it does for libvirt's qemu+ssh.
struct SshJump {
  std::string host;                        // name or address, as the URI or ssh_jump gives it
  std::string user;                        // "" = ssh's choice
  int port = 0;                            // 0 = ssh's choice
  std::string identity_file, known_hosts;  // "" = ssh's choice
  bool verify = true;                      // false only when the URI says no_verify=1
  std::string from;                        // "hv3's uri" | "hosts.hv3.ssh_jump"
  bool operator==(const SshJump&) const = default;
  // ProxyJump's [user@]host[:port] ([v6]:port in brackets).
  std::string spec() const;
};

// The jump a host's URI implies: qemu+ssh://, qemu+libssh:// and qemu+libssh2:// give user, host,
// port and keyfile (and libssh's known_hosts, no_verify); nullopt for every other transport.
std::optional<SshJump> jump_from_uri(const std::string& host_name, const std::string& uri);

// Whether `uri` reaches a libvirtd on this machine (no host part: qemu:///system,
// qemu+unix:///system?socket=...).
bool local_uri(const std::string& uri);

// A VM found on the hosts.
struct LocatedVm {
  const DesiredVm* vm = nullptr;  // its entry in the file
  std::size_t host = 0;           // index into the observed hosts (and desired.hosts)
  const ObservedDomain* domain = nullptr;
};

// The file's VM called `name` ("web-0" or "vm.web-0"). Throws AccessError with a did-you-mean.
const DesiredVm& desired_vm(const DesiredCluster& desired, const std::string& name);

// `name` ("web-0" or "vm.web-0") among the VMs of the file and the domains of this cluster on
// the hosts. Throws AccessError: not in the file (with a did-you-mean), on no host (and which
// hosts could not be asked), on two hosts at once.
LocatedVm locate_vm(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                    const std::string& name);

// One NIC's address, network by network in the VM's NIC order.
struct NetworkAddress {
  std::string network;  // name in kumo.yaml
  std::string mac;
  std::string ip;      // "" when none is known yet
  std::string source;  // static | agent | lease
};

// The VM's addresses by network: a live address of the NIC's MAC (guest agent, else DHCP lease),
// else its static address. Guest-reported values are used only when they parse as IPv4 or
// global IPv6 addresses (a guest controls what it reports).
std::vector<NetworkAddress> network_addresses(const ObservedDomain& domain, const DesiredVm* vm,
                                              const std::vector<GuestAddress>& live);

// How kumo ssh reaches one running VM.
struct SshTarget {
  std::string vm, group, host;  // web-0, web, hv1
  std::string uuid;             // the domain's: host keys are learned per domain
  std::string address, network;
  std::string user, identity_file;
  std::optional<SshJump> jump;
  std::string host_key_alias;  // web-0.festival.kumo: its name in kumo's known_hosts
};

// Picks the address and route: a NIC that is reachable straight from here first (a bridged
// network, ssh_jump: direct, or a local host's network this machine routes), else one through
// the host's jump. Throws AccessError when no NIC has an address yet, or no route leads in.
SshTarget ssh_target(const DesiredCluster& desired, const std::vector<ObservedHost>& observed,
                     const LocatedVm& located, const std::vector<NetworkAddress>& addresses,
                     const std::vector<ssh::Route>& routes);

// How ssh gets onto the networks inside host `h`: hosts.<h>.ssh_jump, else the host itself as
// its URI names it (user, port and key of qemu+ssh://). nullopt: ssh_jump: direct, or a local
// URI (no host part).
std::optional<SshJump> host_jump(const DesiredHost& h);

// Every host's jump, in file order (hosts without one left out): kumo's ssh_config.
std::vector<SshJump> cluster_jumps(const DesiredCluster& desired);

// kumo's ssh_config: one Host block per jump, then the user's and the system's own config.
std::string ssh_config_text(const std::string& cluster, const std::vector<SshJump>& jumps);

// Where kumo keeps things for ssh (providers/ssh/state.h): given, so these stay pure.
struct SshFiles {
  std::string config;       // kumo's ssh_config
  std::string known_hosts;  // the host keys learned from guests
};

// ssh's options for reaching `t` (everything but the login and the destination): -F, the jump,
// the known_hosts, strict checking, the host key alias. For kumo ssh and Ansible alike.
std::vector<std::string> ssh_common_options(const SshTarget& t, const SshFiles& files);

// The whole command line of `kumo ssh VM -- command...`.
std::vector<std::string> ssh_argv(const SshTarget& t, const SshFiles& files,
                                  const std::vector<std::string>& command);

// Makes sure `known_hosts` holds the VM's SSH host keys, learned from the guest itself, never from
// the network: through its agent (/etc/ssh/ssh_host_*_key.pub), else from what cloud-init printed
// on its serial console. Keys already recorded for this domain (its UUID) are kept as they are:
// a guest that answers with another key is refused by ssh. Returns where the keys came from
// ("" when they were known). Throws AccessError when neither source has them.
std::string ensure_host_keys(HostSession& session, const std::string& cluster, const SshTarget& t,
                             const std::string& known_hosts);

// Writes kumo's ssh_config for the cluster into its state directory (providers/ssh/state.h) and
// says where it and the known_hosts are. Throws AccessError / std::runtime_error naming the path.
SshFiles prepare_ssh_files(const DesiredCluster& desired);

// One VM as kumo ssh and kumo inventory see it, read live: its addresses by network, and its ssh
// route with its host keys learned into `known_hosts` ("" = learn none), or why it has none.
struct VmReach {
  std::string vm, host;
  std::vector<NetworkAddress> addresses;
  std::optional<SshTarget> target;
  std::string error;      // why target is unset
  std::string keys_from;  // where its host keys were learned now ("" = known already)
};
VmReach reach_vm(HostConnector& connector, const DesiredCluster& desired,
                 const std::vector<ObservedHost>& observed, const LocatedVm& located,
                 const std::vector<ssh::Route>& routes, const std::string& known_hosts,
                 std::chrono::milliseconds timeout);

}  // namespace kumo
