// How kumo marks what it made, so that live state alone says who owns what (no state file).
//
//  - Domains: <metadata><kumo:owner xmlns:kumo="urn:kumo:owner:1"> with cluster, address, spec
//    hash and the normalized spec. The domain's name is the VM instance name (web-0).
//  - Networks (libvirt 9.0 has no network metadata): the reserved name kumo_<cluster>_<network>
//    AND a record on the host that kumo made it: the empty volume
//    kumo-net_<cluster>_<network>_<uuid> (UUIDs have no '_'; network names may) in the kumo pool,
//    created before the network is defined with that UUID and removed after it is deleted (a record
//    whose network never came, left by an apply killed in between, is removed by the next apply or
//    destroy). A network that merely has the reserved name is someone else's (a name is easy to
//    copy; the record can only come from whoever writes the cluster's pool).
//  - Volumes: reserved names kumo_<cluster>_<instance>_<role>[.ext] with role root, seed or
//    data-<disk>, and the serial console log kumo_<cluster>_<instance>_serial.log; base images,
//    shared by every cluster on a host: kumo-image_<algo>-<hex>, complete once the empty marker
//    volume kumo-image_<algo>-<hex>.done exists next to it (an upload cut short has none).
//  - The cluster's apply lock: kumo-lock_<cluster>, a small raw volume holding who holds it (JSON).
//    Not an object of the cluster: plan neither lists nor changes it.
// Cluster and instance names cannot contain '_' (they are hostnames), so '_' separates safely.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "providers/observed.h"

namespace kumo {

inline constexpr const char* kOwnerNamespace = "urn:kumo:owner:1";
inline constexpr const char* kOwnerPrefix = "kumo";

std::string network_name(const std::string& cluster, const std::string& network);
std::string root_volume_name(const std::string& cluster, const std::string& instance);
std::string seed_volume_name(const std::string& cluster, const std::string& instance);
std::string data_volume_name(const std::string& cluster, const std::string& instance,
                             const std::string& disk);
// algo "sha256"/"sha512", lowercase hex.
// A UEFI VM's NVRAM (its firmware variables), a file in a directory pool that libvirt makes
// from the firmware's template at the first start.
std::string nvram_volume_name(const std::string& cluster, const std::string& instance);
std::string image_volume_name(const std::string& algo, const std::string& hex);
// The marker created once the image volume holds the whole, verified image.
std::string image_marker_name(const std::string& image_volume);
// Lives in the pool's directory so that its tail can be read back over any libvirt connection.
std::string serial_log_name(const std::string& cluster, const std::string& instance);
// Whether a volume's name is a kumo serial log's (any cluster): its name says all a plan needs.
bool is_serial_log(const std::string& volume_name);
// Whether a volume's name is a kumo cloud-init seed's (any cluster): like a serial log, its name
// says all a plan needs (what the seed holds is recorded in its VM's domain, not in the volume).
bool is_seed_volume(const std::string& volume_name);

std::string lock_volume_name(const std::string& cluster);
bool is_lock_volume(const std::string& volume_name);
// kumo's bookkeeping, of any cluster: locks (and takeovers), network records, image markers and
// serial-console logs. Not objects a user made or asked for.
bool is_bookkeeping_volume(const std::string& volume_name);

// kumo's record that it made `cluster`'s network `network` (front) with this UUID.
struct NetworkRecord {
  std::string network;  // the network's name in the file: front
  std::string uuid;
  bool operator==(const NetworkRecord&) const = default;
  auto operator<=>(const NetworkRecord&) const = default;
};
std::string network_record_name(const std::string& cluster, const std::string& network,
                                const std::string& uuid);
// What a volume records for `cluster`, or nullopt when it is no such record.
std::optional<NetworkRecord> network_record(const std::string& volume_name,
                                            const std::string& cluster);
// The network records of `cluster` among a host's volumes in its kumo pool.
std::set<NetworkRecord> network_records(const std::vector<ObservedVolume>& volumes,
                                        const std::string& pool, const std::string& cluster);

// Ownership recovered from a reserved name, or nullopt for names kumo never uses.
std::optional<Ownership> network_owner(const std::string& libvirt_name);
std::optional<Ownership> volume_owner(const std::string& volume_name);

// A VM record as the JSON document kept in the metadata (keys sorted), and back: nullopt when
// the text is not such a record.
std::string vm_record_json(const VmRecord& record);
std::optional<VmRecord> vm_record_from_json(const std::string& text);

// The <kumo:owner> element placed in a domain's <metadata> (no surrounding <metadata>).
// with_namespace = false: the bare element, as virDomainSetMetadata takes it (libvirt puts it
// in kumo's namespace itself).
std::string owner_metadata_xml(const Ownership& owner, bool with_namespace = true);
// Parses the <metadata> contents of a domain XML document; nullopt when no kumo:owner is there.
std::optional<Ownership> parse_owner_from_domain_xml(const std::string& domain_xml);

}  // namespace kumo
