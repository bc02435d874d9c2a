// Specs → libvirt XML. Pure functions (pugixml only, no connection), the mirror of xml_parse.h:
// what these build, the parsers read back. Every value goes through pugixml, so a name with
// '<', '&' or a quote is escaped, never spliced into the markup.
#pragma once

#include <string>

#include "providers/host_session.h"

namespace kumo::libvirt {

// <volume>: name, capacity in bytes, allocation 0 (sparse: libvirt otherwise allocates the whole
// capacity of a raw file up front), format, and the backing file of an overlay. A `mode` ("0600")
// sets the file's permissions where the pool honours it; "" leaves them to the pool.
std::string volume_xml(const VolumeSpec& spec, const std::string& mode = "");

// <network>: a bridge libvirt creates (nat, route, isolated) with DHCP, its static hosts and
// their DNS names; or, for mode bridge, only a <forward mode='bridge'/> onto the host's bridge.
std::string network_xml(const NetworkSpec& spec);

// One <host> of a network's <dhcp> or <dns>, as virNetworkUpdate takes it.
std::string dhcp_host_xml(const NetworkDhcpHost& host);
std::string dns_host_xml(const NetworkDnsHost& host);

// <domain>: an x86_64 pc guest whose disks are volumes of `pool` and whose <metadata> carries
// kumo's ownership mark. `uuid` ("" for none) is needed to redefine an existing domain: libvirt
// refuses a second definition of a name under a new UUID.
std::string domain_xml(const DomainSpec& spec, const std::string& pool,
                       const std::string& uuid = "");

// One <disk> of a domain (a volume of `pool`), as virDomainAttachDeviceFlags takes it.
std::string disk_xml(const DomainDisk& disk, const std::string& pool);

}  // namespace kumo::libvirt
