// libvirt XML → observed state. Pure functions (pugixml only, no connection), so every field is
// tested against sample documents without a host. libvirt fills in defaults when it echoes a
// definition back; only the fields kumo compares are read.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/observed.h"

namespace kumo::libvirt {

// A <disk type='volume'> names a pool and a volume, not a path; the caller knows the pools and
// resolves it. Returns "" when it cannot (the disk's path then reads "<pool>/<volume>").
using VolumePathLookup =
    std::function<std::string(const std::string& pool, const std::string& volume)>;

// Each returns nullopt for a document that is not XML or lacks its root element or name.
// State, activity, persistence and autostart are not in the XML; the caller fills them.
std::optional<ObservedDomain> parse_domain_xml(std::string_view xml,
                                               const VolumePathLookup& lookup = {});
std::optional<ObservedNetwork> parse_network_xml(std::string_view xml);
std::optional<ObservedPool> parse_pool_xml(std::string_view xml);
// A lock record's secret (lock_secret_xml): its description; nullopt when not a <secret>.
std::optional<std::string> parse_lock_secret_xml(std::string_view xml);
// `pool` is not in a volume's XML; the caller fills it.
std::optional<ObservedVolume> parse_volume_xml(std::string_view xml);

struct HostCapabilities {
  std::string arch;       // x86_64
  bool kvm = false;       // a <guest> for the host's own arch offers <domain type='kvm'>
  std::string cpu_model;  // <host><cpu><model>; "" when libvirt names none
  std::vector<std::string> cpu_features;  // of <host><cpu><feature>, those HostFacts keeps
};
std::optional<HostCapabilities> parse_capabilities_xml(std::string_view xml);

// What a domain capabilities document (virConnectGetDomainCapabilities) tells about nested
// virtualization: whether the host-model CPU a guest gets under this virt type offers vmx or svm.
// nullopt when it does not tell (no usable host-model mode).
struct DomainCapabilities {
  std::string virt_type;       // <domain>: kvm | qemu
  std::optional<bool> nested;  // host-model requires vmx/svm
  bool uefi = false;           // <os><enum name='firmware'> offers efi (firmware descriptors)
  bool secure_boot = false;    // <loader><enum name='secure'> offers yes
  bool tpm_emulator = false;   // <tpm supported='yes'> with backendModel emulator (swtpm)
};
std::optional<DomainCapabilities> parse_domain_capabilities_xml(std::string_view xml);

// libvirt's scaled integers: value and unit as in <memory unit='KiB'>. Units as libvirt reads
// them, case-insensitively: b/bytes, k/KiB (1024), KB (1000), M/MiB, MB, ... E/EiB, EB. An empty
// unit means `default_unit`. nullopt for a bad number, an unknown unit or an overflow.
std::optional<std::uint64_t> scaled_bytes(std::string_view value, std::string_view unit,
                                          std::string_view default_unit);

// 255.255.255.0 → 24; nullopt for a mask that is not contiguous ones.
std::optional<int> netmask_prefix(std::string_view netmask);

}  // namespace kumo::libvirt
