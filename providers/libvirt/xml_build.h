// Specs → libvirt XML. Pure functions (pugixml only, no connection), the mirror of xml_parse.h:
// what these build, the parsers read back. Every value goes through pugixml, so a name with
// '<', '&' or a quote is escaped, never spliced into the markup.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "providers/host_session.h"

namespace kumo::libvirt {

// <volume>: name, capacity in bytes, allocation 0 (sparse: libvirt otherwise allocates the whole
// capacity of a raw file up front), format, and the backing file of an overlay. A `mode` ("0600")
// sets the file's permissions where the pool honours it; "" leaves them to the pool.
std::string volume_xml(const VolumeSpec& spec, const std::string& mode = "");

// <secret>: a record of the cluster lock (session_locks.cpp), found by its usage: a "volume"
// usage named `usage` (a name, no path: no volume's encryption ever asks for it). `description`
// holds the record's text; private, persistent, and without a value.
std::string lock_secret_xml(const std::string& usage, const std::string& description);

// <pool>: a storage pool kumo makes (dir on a path; logical: a volume group named like the pool
// on the devices), marked as spec.cluster's in <source>: libvirt keeps <vendor name> and
// <product name> for every pool type, and pools have no <metadata>.
inline constexpr const char* kPoolVendor = "kumo";
inline constexpr const char* kPoolProductPrefix = "cluster:";
std::string pool_xml(const PoolSpec& spec);

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

// The definition a running domain migrates under (virDomainMigrate3's destination XML): its own
// migratable live XML with every disk that names a volume turned into a file disk at the path
// `dest_path(volume)` gives on the destination (libvirt pre-creates nothing for those: kumo made
// them), files under `src_dir` (the serial log) moved to `dest_dir`, and kumo's mark replaced by
// `owner`. Only paths change: the guest's ABI stays what it is. nullopt when the XML cannot be
// read; throws std::runtime_error naming a volume that has no path on the destination.
std::optional<std::string> migration_xml(
    const std::string& live_xml, const std::function<std::string(const std::string&)>& dest_path,
    const std::string& src_dir, const std::string& dest_dir, const Ownership& owner);

}  // namespace kumo::libvirt
