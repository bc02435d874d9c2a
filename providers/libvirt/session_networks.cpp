// The libvirt session's networks: defined, started, host entries changed live, deleted.
#include "providers/libvirt/session_impl.h"

namespace kumo::libvirt {

std::optional<ObservedNetwork> LibvirtSession::network(const std::string& name) {
  const auto net = find_network(name);
  if (!net) return std::nullopt;
  const std::string what = "reading network " + name;
  const std::string xml = adopt_string(virNetworkGetXMLDesc(net.get(), 0));
  if (xml.empty()) return vanished_or_fail<ObservedNetwork>(VIR_ERR_NO_NETWORK, what);
  auto observed = parse_network_xml(xml);
  if (!observed) unreadable("network " + name);
  const int active = virNetworkIsActive(net.get());
  const int persistent = virNetworkIsPersistent(net.get());
  int autostart = 0;
  if (active < 0 || persistent < 0 || virNetworkGetAutostart(net.get(), &autostart) < 0) {
    return vanished_or_fail<ObservedNetwork>(VIR_ERR_NO_NETWORK, what);
  }
  observed->active = active == 1;
  observed->persistent = persistent == 1;
  observed->autostart = autostart != 0;
  return observed;
}

void LibvirtSession::define_network(const NetworkSpec& spec) {
  const NetworkHandle net(virNetworkDefineXML(conn_.get(), network_xml(spec).c_str()));
  if (!net) fail("defining network " + spec.name);
  if (virNetworkCreate(net.get()) < 0) fail("starting network " + spec.name);
  if (virNetworkSetAutostart(net.get(), 1) < 0) {
    fail("setting network " + spec.name + " to start with the host");
  }
}

void LibvirtSession::start_network(const std::string& name, bool autostart) {
  const auto net = need_network(name, "starting");
  const int active = virNetworkIsActive(net.get());
  if (active < 0) fail("starting network " + name);
  if (active == 0 && virNetworkCreate(net.get()) < 0) fail("starting network " + name);
  set_autostart(virNetworkGetAutostart, virNetworkSetAutostart, net.get(), autostart,
                "network " + name);
}

void LibvirtSession::delete_network(const std::string& name) {
  const auto net = find_network(name);
  if (!net) return;
  const std::string what = "deleting network " + name;
  const int persistent = virNetworkIsPersistent(net.get());
  const int active = virNetworkIsActive(net.get());
  if (persistent < 0 || active < 0) return vanished_or_fail<void>(VIR_ERR_NO_NETWORK, what);
  if (active == 1 && virNetworkDestroy(net.get()) < 0) {
    const int code = last_error().code;
    if (code == VIR_ERR_NO_NETWORK) return;
    if (code != VIR_ERR_OPERATION_INVALID) fail(what + " (stopping it)");  // not "not active"
  }
  if (persistent == 0) return;  // a transient network is gone once stopped
  if (virNetworkUndefine(net.get()) < 0) vanished_or_fail<void>(VIR_ERR_NO_NETWORK, what);
}

void LibvirtSession::update_network_hosts(const std::string& name,
                                          const NetworkHostsChange& change) {
  const auto net = need_network(name, "updating host entries of");
  const int active = virNetworkIsActive(net.get());
  if (active < 0) fail("updating network " + name);
  const unsigned flags =
      VIR_NETWORK_UPDATE_AFFECT_CONFIG | (active == 1 ? VIR_NETWORK_UPDATE_AFFECT_LIVE : 0);
  auto update = [&](unsigned command, unsigned section, const std::string& xml,
                    const std::string& what) {
    if (virNetworkUpdate(net.get(), command, section, -1, xml.c_str(), flags) < 0) {
      fail(what + " network " + name);
    }
  };
  for (const auto& h : change.dns_remove) {
    update(VIR_NETWORK_UPDATE_COMMAND_DELETE, VIR_NETWORK_SECTION_DNS_HOST, dns_host_xml(h),
           "removing DNS name " + (h.names.empty() ? h.ip : h.names.front()) + " from");
  }
  for (const auto& h : change.dhcp_remove) {
    update(VIR_NETWORK_UPDATE_COMMAND_DELETE, VIR_NETWORK_SECTION_IP_DHCP_HOST, dhcp_host_xml(h),
           "removing the DHCP entry of " + h.mac + " from");
  }
  for (const auto& h : change.dhcp_add) {
    update(VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST, dhcp_host_xml(h),
           "adding a DHCP entry " + h.mac + " " + h.ip + " to");
  }
  for (const auto& h : change.dns_add) {
    update(VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_DNS_HOST, dns_host_xml(h),
           "adding DNS name " + (h.names.empty() ? h.ip : h.names.front()) + " to");
  }
}

}  // namespace kumo::libvirt
