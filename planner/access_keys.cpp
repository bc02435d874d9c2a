// The SSH host keys of a VM, learned from the guest itself (planner/access.h).
#include "planner/access.h"
#include "providers/guest.h"
#include "providers/ownership.h"
#include "providers/ssh/state.h"

namespace kumo {

std::string ensure_host_keys(HostSession& session, const std::string& cluster, const SshTarget& t,
                             const std::string& known_hosts) {
  if (auto known = ssh::known_keys(known_hosts, t.host_key_alias); known && known->uuid == t.uuid)
    return "";
  std::vector<std::string> keys;
  std::string why;
  std::string from = "its guest agent";
  try {
    keys = guest_host_keys(session, t.vm);
    if (keys.empty()) why = "the guest has no /etc/ssh/ssh_host_*_key.pub yet";
  } catch (const HostError& e) {
    why = std::string("the guest agent does not answer (") + e.what() + ")";
  }
  if (keys.empty()) {
    from = "its serial console";
    try {
      keys = host_keys_from_console(
          session.tail_pool_file(serial_log_name(cluster, t.vm), 1024 * 1024));
    } catch (const HostError&) {
    }
  }
  if (keys.empty()) {
    throw AccessError("cannot learn vm." + t.vm + "'s SSH host keys: " + why +
                      ", and its serial console shows none (cloud-init prints them there when "
                      "it has made them). kumo never connects to a VM whose host key it does "
                      "not know: wait until kumo status shows it ready, then try again");
  }
  ssh::remember_keys(known_hosts, t.host_key_alias, t.uuid, keys);
  return from;
}

}  // namespace kumo

namespace kumo {

VmReach reach_vm(HostConnector& connector, const DesiredCluster& desired,
                 const std::vector<ObservedHost>& observed, const LocatedVm& located,
                 const std::vector<ssh::Route>& routes, const std::string& known_hosts,
                 std::chrono::milliseconds timeout) {
  VmReach r;
  r.vm = located.domain->name;
  r.host = observed.at(located.host).host;
  try {
    const DesiredHost* dh = desired.find_host(r.host);
    std::unique_ptr<HostSession> session;
    std::vector<GuestAddress> live;
    if (dh != nullptr && located.domain->active) {
      session = connector.connect(dh->target(), timeout);
      live = session->addresses(r.vm);
    }
    r.addresses = network_addresses(*located.domain, located.vm, live);
    SshTarget t = ssh_target(desired, observed, located, r.addresses, routes);
    if (!known_hosts.empty())
      r.keys_from = ensure_host_keys(*session, desired.cluster, t, known_hosts);
    r.target = std::move(t);
  } catch (const AccessError& e) {
    r.error = e.what();
  } catch (const HostError& e) {
    r.error = e.what();
  } catch (const std::runtime_error& e) {  // the state directory
    r.error = e.what();
  }
  return r;
}

}  // namespace kumo

namespace kumo {

SshFiles prepare_ssh_files(const DesiredCluster& desired) {
  const std::string dir = ssh::state_dir(desired.cluster);
  // ssh hands -F on to the jump's own ssh through a shell command line (ProxyJump): the path
  // must need no quoting there.
  if (dir.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            "/._+@%=:,-") != std::string::npos) {
    throw AccessError("kumo's state directory " + dir +
                      " has characters ssh cannot pass on to a jump host (spaces, quotes, ...); "
                      "set XDG_STATE_HOME to a plain path");
  }
  SshFiles files{dir + "/ssh_config", dir + "/known_hosts"};
  ssh::write_private_file(files.config, ssh_config_text(desired.cluster, cluster_jumps(desired)));
  return files;
}

}  // namespace kumo
