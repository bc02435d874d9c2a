// What a host looks like right now, as plain values. Filled by a Provider, read by the planner.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kumo {

// A VM's NIC as recorded in its metadata.
struct NicRecord {
  std::string network;  // the network's name in kumo.yaml ("" for bridge and direct NICs)
  std::string ip;       // "" when none was fixed
  std::string mac;
  std::string bridge;  // {bridge: br0}
  std::string direct;  // {direct: eth1}, with its macvtap mode
  std::string mode;
  std::string model;  // "" = virtio
  int queues = 0;     // 0 = one per vCPU
  bool operator==(const NicRecord&) const = default;
};

// What kumo records in a domain's metadata about the spec it was made from: only what the file
// decides (never the host, never runtime state). Plan compares it with the file next time; its
// JSON form (providers/ownership.h) is what spec_hash hashes.
struct VmRecord {
  std::string image;     // name in kumo.yaml
  std::string image_id;  // what the root disk is made from: checksum, else the source
  int cpus = 1;
  std::uint64_t memory = 0;
  std::optional<std::uint64_t> disk;
  std::map<std::string, std::uint64_t> data_disks;  // name -> bytes
  std::vector<NicRecord> nics;
  bool autostart = true;
  std::string group;
  bool prevent_destroy = false;
  std::string instance_id;
  std::string user_data_sha256, network_config_sha256;
  // The documents as the plan shows them, sensitive values masked: the next plan diffs against
  // them. "" when an older kumo made the domain.
  std::string user_data_shown, network_config_shown;
  // The machine: "" (BIOS, what every older record means) or "uefi"; secure boot and a TPM.
  std::string firmware;
  bool secure_boot = false;
  bool tpm = false;
  std::string cache;  // the disks' cache mode: "" is kumo's default, none
  // Adopted VMs: the domain's name when it was adopted, and its disks (paths, in order). kumo
  // did not make those disks and never deletes them.
  std::string adopted;
  std::vector<std::string> volumes;
  bool operator==(const VmRecord&) const = default;
};

// Who made a libvirt object and from what. Domains carry all of it in their <metadata>;
// networks and volumes only cluster and address, recovered from their reserved names.
struct Ownership {
  std::string cluster;  // "" for objects shared by every cluster (base images)
  std::string address;  // "vm.web-0", "network.front", "volume.web-0/root", "image.sha256-ab12..."
  std::string spec_hash;  // sha256 of the normalized spec the object was made from ("" if unknown)
  std::optional<VmRecord> spec;  // domains: that normalized spec (unset if unknown or unreadable)
  // Domains: the guest was seen ready (wait_for) since this definition was made. An apply
  // interrupted while waiting leaves it false, and the next apply waits again.
  bool ready = false;
  // Domains: the copy a move made on this host, not yet verified ready, from the host named
  // here (whose copy stays the truth until then). "" for every other domain.
  std::string moving_from{};
  // Domains: the source of a move being committed, to the host named here (removed next).
  std::string moved_to{};
  bool operator==(const Ownership&) const = default;
};

struct ObservedDisk {
  std::string target;  // vda
  std::string device;  // disk | cdrom
  std::string path;    // source file (or pool/volume resolved to a path)
  std::string format;  // qcow2 | raw
  bool readonly = false;
  bool operator==(const ObservedDisk&) const = default;
};

struct ObservedNic {
  std::string network;  // libvirt network name (type='network'), or bridge name (type='bridge')
  std::string type;     // network | bridge
  std::string mac;
  std::string model;
  std::string mode;  // direct: the macvtap mode
  bool operator==(const ObservedNic&) const = default;
};

struct ObservedDomain {
  std::string name;
  std::string uuid;
  std::string state;  // running | paused | shutoff | crashed | ... (from the API, not the XML)
  bool active = false;
  bool persistent = true;
  bool autostart = false;
  std::string virt_type;  // kvm | qemu
  int vcpus = 0;          // current
  int max_vcpus = 0;
  std::uint64_t memory = 0;      // current, bytes
  std::uint64_t max_memory = 0;  // bytes
  std::vector<ObservedDisk> disks;
  std::vector<ObservedNic> nics;
  std::string firmware;  // "" (BIOS) | "uefi" (<os firmware='efi'> or a pflash loader)
  bool secure_boot = false;
  bool tpm = false;
  std::optional<Ownership> owner;
};

struct ObservedDhcpHost {
  std::string mac;
  std::string ip;
  std::string name;
  bool operator==(const ObservedDhcpHost&) const = default;
};

// A <dns><host>: the names the network's DNS answers with `ip`.
struct ObservedDnsHost {
  std::string ip;
  std::vector<std::string> names;
  bool operator==(const ObservedDnsHost&) const = default;
};

struct ObservedNetwork {
  std::string name;
  std::string uuid;
  bool active = false;
  bool persistent = true;
  bool autostart = false;
  std::string forward_mode;  // "" (isolated) | nat | route | bridge | open
  std::string bridge;
  std::string ip;  // the host's address on it, e.g. 10.20.0.1
  int prefix = 0;  // 24
  std::string dhcp_start, dhcp_end;
  std::vector<ObservedDhcpHost> dhcp_hosts;
  std::vector<ObservedDnsHost> dns_hosts;
  std::string domain;
  std::optional<int> mtu;
  std::optional<Ownership> owner;
};

struct ObservedPool {
  std::string name;
  std::string type;  // dir | logical | ...
  std::string path;  // target path
  bool active = false;
  bool autostart = false;                     // read only for kumo's own pools (owner_cluster set)
  std::uint64_t capacity = 0, available = 0;  // bytes
  std::vector<std::string> devices;  // <source><device path>: a logical pool's physical volumes
  std::string source_name;           // <source><name>: a logical pool's volume group
  // The cluster whose kumo made the pool: libvirt pools have no <metadata>, so kumo marks its
  // own in <source> as <vendor name='kumo'/><product name='cluster:<name>'/> (xml_build.h).
  std::optional<std::string> owner_cluster;
};

struct ObservedVolume {
  std::string pool;
  std::string name;
  std::string path;
  std::string format;                          // qcow2 | raw | iso
  std::uint64_t capacity = 0, allocation = 0;  // bytes
  std::string backing_path;                    // qcow2 backing file, if any
  std::optional<Ownership> owner;
  // When its file last changed, as libvirt reports it ("<mtime> <ctime>", nanoseconds where the
  // file system has them; directory pools): a file made anew or written to differs. "" where
  // libvirt gives no timestamps.
  std::string changed{};
};

struct HostFacts {
  std::string hostname;
  std::string arch;               // x86_64
  int cpus = 0;                   // logical CPUs
  std::uint64_t memory = 0;       // bytes
  std::uint64_t free_memory = 0;  // bytes
  bool kvm = false;               // the host offers <domain type='kvm'>
  std::string libvirt_version;    // "9.0.0"
  // Why there is no KVM (empty when kvm): libvirt's words where it gives them, and what to check.
  std::string kvm_reason;
  std::string cpu_model;  // the host CPU as libvirt names it ("Skylake-Client-IBRS"); "" if none
  // Of the host CPU's features, those that decide how VMs run there, as libvirt names them:
  // vmx | svm (hardware virtualization), vmx-ept | npt (nested paging), hypervisor (the host is
  // itself a VM).
  std::vector<std::string> cpu_features;
  // What the host's QEMU offers a q35 machine under the virt type VMs get there (libvirt's
  // domain capabilities): UEFI firmware (OVMF), a secure-boot build, a TPM emulator (swtpm).
  // nullopt when libvirt does not say (the test driver).
  std::optional<bool> uefi, secure_boot, tpm;

  // Only from Provider::observe_details() (what `kumo hosts` shows and plan need not pay for).
  bool detailed = false;
  std::string hypervisor;          // libvirt's driver: "QEMU" (for qemu:// URIs), "TEST"
  std::string hypervisor_version;  // "7.2.0"; "" when the driver does not say
  // Guests could use hardware virtualization themselves (KVM's host-model CPU offers vmx/svm);
  // nullopt when libvirt does not tell (no KVM, or no host-model CPU).
  std::optional<bool> nested;
};

struct ObservedHost {
  std::string host;  // name in kumo.yaml
  std::string uri;
  bool reachable = false;
  std::string error;  // why not, with what to check
  HostFacts facts;
  std::vector<ObservedDomain> domains;
  std::vector<ObservedNetwork> networks;
  std::vector<ObservedPool> pools;
  std::vector<ObservedVolume> volumes;
  int api_calls = 0;   // libvirt calls made to observe this host
  double seconds = 0;  // wall time, connect included
  // Where that time went, in seconds (kumo plan -vv shows it): opening the connection, the
  // host's own facts, bulk listing, fetching each object's XML, parsing it.
  struct Phases {
    double connect = 0, facts = 0, list = 0, fetch = 0, parse = 0;
  } phases;
  // Set when the read was limited to a ReadScope (HostTarget::scope): only the objects in scope
  // are above; these are how many the host has in all (volumes: not kumo's bookkeeping).
  struct Listed {
    int domains = 0, volumes = 0;
  };
  std::optional<Listed> scoped{};
};

}  // namespace kumo
