// The cluster description as kumo understands it after loading and validation: plain values,
// every field defaulted, every reference checked, every object remembering where it was written.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "planner/config/diagnostics.h"
#include "planner/config/netaddr.h"
#include "planner/config/sensitive.h"
#include "providers/digest.h"
#include "providers/images/source.h"

namespace kumo {

constexpr std::uint64_t kMiB = 1024ull * 1024;
constexpr std::uint64_t kGiB = 1024ull * kMiB;

enum class VirtType { Auto, Kvm, Qemu };
enum class NetMode { Nat, Isolated, Route, Bridge };
using ImageFormat = images::ImageFormat;  // to_string(ImageFormat) is images::to_string
enum class PlacementStrategy { Spread, Pack };
enum class UserDataChange { Recreate, Ignore };
enum class WaitFor { None, Running, Agent, CloudInit };
// How a VM moves to another host: live where possible (auto), live or fail, or always cold.
enum class MoveMode { Auto, Live, Cold };
// The VM's firmware: SeaBIOS on the pc machine, or OVMF (UEFI) on q35.
enum class Firmware { Bios, Uefi };

// How a live move reaches a host (as its destination): QEMU's memory and NBD disk streams over
// unix sockets in a directory every host's libvirtd sees, or over TCP to an address. Unset:
// libvirt's default, the destination's hostname.
struct MigrationConfig {
  std::string socket_dir;  // absolute
  std::string address;     // host name or IP
};

const char* to_string(VirtType v);
const char* to_string(NetMode v);
const char* to_string(PlacementStrategy v);
const char* to_string(UserDataChange v);
const char* to_string(WaitFor v);

struct VariableConfig {
  std::string name;
  std::optional<std::string> default_value;
  std::string description;
  bool sensitive = false;
  Location location;
};

// How `kumo ssh` and `kumo inventory` log in to a VM (top level, defaults:, or a VM's own;
// field by field, the nearest wins). Never part of what kumo makes: changing it changes no plan.
struct SshConfig {
  std::optional<std::string> user;           // default: cloud-init's first user, else root
  std::optional<std::string> identity_file;  // absolute (resolved against the file's folder)
  Location location;
};

// hosts.<h>.ssh_jump: how to reach VMs on networks inside the host (NAT, isolated, routed).
// Unset: the host's qemu+ssh:// URI says it. `direct`: connect straight to the VM's address.
struct SshJumpConfig {
  bool direct = false;
  std::string host;           // address or name of the jump host
  std::string user;           // "" = ssh's own choice (ssh config, else the local user)
  int port = 0;               // 0 = ssh's own choice
  std::string identity_file;  // absolute; "" = ssh's own choice (ssh config, agent)
  Location location;
};

// hosts.<h>.pools.<name>: a storage pool kumo makes and owns on that host.
struct PoolConfig {
  std::string name;
  std::string type;                  // dir | logical
  std::string path;                  // dir
  std::vector<std::string> devices;  // logical
  Location location;
};

struct HostConfig {
  std::string name;
  std::string uri;
  std::string pool = "default";
  Location pool_location;  // where pool: is written (the host's name when it is not)
  std::vector<PoolConfig> pools;
  VirtType virt_type = VirtType::Auto;
  double cpu_overcommit = 4.0;     // vCPUs per host CPU kumo will place
  double memory_overcommit = 1.0;  // guest memory per byte of host memory
  std::optional<SshJumpConfig> ssh_jump;
  bool drain = false;  // nothing new is placed here; unpinned VMs move away
  MigrationConfig migration;
  SensitiveFields sensitive;  // fields whose values came from sensitive variables
  Location location;
};

struct ImageConfig {
  std::string name;
  std::optional<std::string> url;   // http(s):// or file://
  std::optional<std::string> path;  // absolute, resolved against the config file's folder
  std::optional<Checksum> checksum;
  std::optional<std::string> checksum_url;
  bool checksum_none = false;  // "checksum: none": never verified, warned about every time
  ImageFormat format = ImageFormat::Auto;
  std::optional<std::string> ca_bundle;                   // absolute path
  std::uint64_t max_size = images::kDefaultMaxImageSize;  // the most a download may bring
  SensitiveFields sensitive;  // fields whose values came from sensitive variables
  Location location;
};

// What providers/images/ needs of an image: everything but where kumo.yaml wrote it.
images::ImageSource image_source(const ImageConfig& image);

struct DhcpRange {
  Ipv4 start, end;
  auto operator<=>(const DhcpRange&) const = default;
};

struct NetworkConfig {
  std::string name;
  NetMode mode = NetMode::Nat;
  std::optional<Cidr> cidr;
  bool dhcp = true;
  std::optional<DhcpRange> dhcp_range;  // as written; see effective_dhcp_range()
  std::optional<std::string> domain;
  std::optional<std::string> bridge;
  std::vector<std::string> hosts;  // resolved: every host name the network lives on
  std::optional<int> mtu;
  // Extra names the network's DNS answers (inside `domain`), name -> address, in file order.
  struct DnsHost {
    std::string name;
    Ipv4 ip;
    Location location;
  };
  std::vector<DnsHost> dns_hosts;
  SensitiveFields sensitive;  // fields whose values came from sensitive variables
  Location location;
  Location cidr_location;

  // The written range, or the upper half of the block (the lower half stays for static IPs).
  std::optional<DhcpRange> effective_dhcp_range() const;
  Ipv4 gateway() const { return cidr ? cidr->first_host() : Ipv4{}; }
};

// One NIC: on a network of the file, on a bridge the host already has, or straight on a host
// interface (macvtap).
struct NicConfig {
  std::string network;        // a name under networks: ("" for bridge and direct NICs)
  std::string bridge;         // {bridge: br0}: the host's bridge
  std::string direct;         // {direct: eth1}: the host's interface, macvtap
  std::string mode;           // direct: bridge (default) | vepa | private | passthrough
  std::string model;          // "" = virtio
  std::optional<int> queues;  // virtio multiqueue (unset: one per vCPU)
  std::optional<Ipv4> ip;     // with count, instance i gets ip + i
  std::optional<Mac> mac;     // with count, instance i gets mac + i
  Location location;
  Location ip_location, mac_location;
};

struct DataDiskConfig {
  std::string name;
  std::uint64_t size = 0;
  Location location;
  std::string pool{};  // "" = the host's pool
  Location pool_location{};
};

// An existing volume an adopted VM keeps as one of its disks: a pool's volume, or a file.
struct VolumeRef {
  std::string pool, volume;  // {pool, volume}
  std::string path;          // {path}
  Location location;
  std::string str() const { return path.empty() ? pool + "/" + volume : path; }
};

struct CloudInitConfig {
  std::optional<std::string> user_data;          // the whole document, used as-is
  std::optional<std::string> user_data_file;     // where it came from, if a file
  std::vector<std::string> ssh_authorized_keys;  // merged into user-data
  std::vector<std::string> packages;
  nlohmann::json runcmd = nlohmann::json::array();
  nlohmann::json write_files = nlohmann::json::array();
  nlohmann::json users = nlohmann::json::array();
  nlohmann::json network_config;  // null when not given
};

struct LifecycleConfig {
  bool prevent_destroy = false;
  UserDataChange on_user_data_change = UserDataChange::Recreate;
};

struct VmConfig {
  std::string name;
  std::optional<int> count;  // unset: one VM called `name`; set: name-0 .. name-(count-1)
  std::string image;
  int cpus = 1;
  std::uint64_t memory = 512 * kMiB;
  std::optional<std::uint64_t> disk;  // root disk size; unset keeps the image's size
  std::vector<DataDiskConfig> disks;
  std::vector<NicConfig> networks;
  std::optional<std::string> host;  // pinned
  PlacementStrategy placement = PlacementStrategy::Spread;
  std::optional<std::string> anti_affinity;
  bool running = true;
  bool autostart = true;
  MoveMode move = MoveMode::Auto;
  Firmware firmware = Firmware::Bios;
  bool secure_boot = false;  // UEFI only: OVMF's secure-boot build, keys enrolled, SMM on
  bool tpm = false;          // an emulated TPM 2.0 (swtpm) whose state lives with the VM
  std::string cache;         // the disks' cache mode ("" = none, kumo's default)
  // adopt: a domain made by hand on `host`, taken over as it is (no image, no cloud-init): its
  // disks are `volumes`, in order.
  std::optional<std::string> adopt;
  std::vector<VolumeRef> volumes;
  Location adopt_location;
  Location secure_boot_location;
  CloudInitConfig cloud_init;
  // cloud_init as read with every sensitive variable's value masked ("(sensitive)"): what the
  // plan shows of the documents kumo writes. Never written to a guest.
  CloudInitConfig cloud_init_shown;
  LifecycleConfig lifecycle;
  SshConfig ssh;  // this VM's and defaults:' fields (the top-level ssh: fills the rest)
  WaitFor wait_for = WaitFor::CloudInit;
  std::chrono::seconds wait_timeout{600};
  SensitiveFields sensitive;  // fields whose values came from sensitive variables
  Location location;
  Location host_location, anti_affinity_location;

  int instance_count() const { return count.value_or(1); }
  std::vector<std::string> instance_names() const;
  std::string instance_name(int index) const;  // instance_names()[index], without the others
};

struct ClusterConfig {
  std::string name;
  std::string file;      // as given by the user ("kumo.yaml", "<stdin>")
  std::string base_dir;  // relative paths in the file resolve against this
  std::vector<VariableConfig> variables;
  std::vector<HostConfig> hosts;
  bool hosts_implicit = false;  // no hosts: block, one "local" host
  std::vector<ImageConfig> images;
  std::vector<NetworkConfig> networks;
  std::vector<VmConfig> vms;
  SshConfig ssh;  // the top-level ssh:

  const HostConfig* find_host(const std::string& name) const;
  const ImageConfig* find_image(const std::string& name) const;
  const NetworkConfig* find_network(const std::string& name) const;
  const VmConfig* find_vm(const std::string& name) const;
};

}  // namespace kumo
