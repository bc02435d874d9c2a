// The desired state: every host, image, VM instance, network and volume that kumo.yaml asks for,
// with every name, MAC and cloud-init document worked out. `expand` is the last stage that reads
// the ClusterConfig: placement, the differ, image planning and the plan take this instead.
// Placement (placement.h) then fills in each instance's host.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "planner/config/model.h"
#include "planner/config/sensitive.h"
#include "providers/host_session.h"
#include "providers/observed.h"
#include "providers/provider.h"

namespace kumo {

struct DesiredNic {
  std::string network;          // name in kumo.yaml ("" for bridge and direct NICs)
  std::string libvirt_network;  // kumo_<cluster>_<network>; "" for mode bridge
  std::string bridge;           // mode bridge, or {bridge: br0}: the host's bridge
  bool own_bridge = false;      // {bridge: br0} (not a network of the file)
  std::string direct, mode;     // {direct: eth1, mode}: macvtap on the host's interface
  std::string model;            // "" = virtio
  int queues = 0;               // 0 = one per vCPU
  std::optional<Ipv4> ip;
  std::string mac;  // given, or derived from cluster/instance/index so it never changes
};

struct DesiredDisk {
  std::string name;    // "data"
  std::string volume;  // kumo_<cluster>_<instance>_data-<name>.qcow2
  std::uint64_t size = 0;
  std::string pool{};  // disks.<name>.pool; "" = the host's pool
  Location pool_location{};
};

struct DesiredVm {
  std::string instance;  // web-0: the domain name and hostname
  std::string group;     // web: the vms: entry it comes from
  int index = 0;
  std::string host;  // set by placement
  std::optional<std::string> pinned_host;
  PlacementStrategy placement = PlacementStrategy::Spread;
  std::optional<std::string> anti_affinity;

  std::string image;     // name in kumo.yaml
  std::string image_id;  // what the root disk is made from: checksum, else the source
  int cpus = 1;
  std::uint64_t memory = 0;
  std::optional<std::uint64_t> disk;
  std::string root_volume, seed_volume;
  std::vector<DesiredDisk> data_disks;
  std::vector<DesiredNic> nics;
  bool running = true;
  bool autostart = true;
  MoveMode move = MoveMode::Auto;
  Firmware firmware = Firmware::Bios;
  bool secure_boot = false;
  bool tpm = false;
  std::string cache;  // "" = none
  // adopt: the hand-made domain this VM takes over ("" for VMs kumo makes), and its disks as the
  // file lists them ("pool/volume" or a path), in order. Such a VM has no root or seed volume.
  std::string adopt;
  std::vector<VolumeRef> adopt_volumes;
  Location adopt_location;
  bool adopted() const { return !adopt.empty(); }
  std::string instance_id;
  std::string user_data, network_config;
  // The seed's meta-data (instance-id, local-hostname), rendered when a seed is made: a plan of
  // thousands of VMs makes few. "" for an adopted VM (it has no seed).
  std::string meta_data() const;
  // user_data and network_config as the plan shows them and the metadata records them: every
  // value from a sensitive variable masked (never a secret).
  std::string user_data_shown, network_config_shown;
  LifecycleConfig lifecycle;
  WaitFor wait_for = WaitFor::CloudInit;
  std::chrono::seconds wait_timeout{600};
  SensitiveFields sensitive;  // by kumo.yaml key: "memory", "networks", "cloud_init", ...
  Location location;
  // How kumo ssh / inventory log in (never recorded, never planned): ssh.user, else cloud-init's
  // first named user, else root; ssh.identity_file ("" = ssh's own keys and agent).
  std::string ssh_user = "root";
  std::string ssh_identity_file;

  std::string address() const { return "vm." + instance; }
  // What kumo records in the domain's metadata and compares on the next plan. Only what the file
  // decides: never the host, never runtime state.
  VmRecord spec() const;
  std::string spec_hash() const;
};

struct DesiredDhcpHost {
  std::string mac, ip, name;
  bool operator==(const DesiredDhcpHost&) const = default;
};

struct DesiredNetwork {
  std::string name;          // front
  std::string libvirt_name;  // kumo_<cluster>_front
  std::string host;
  NetMode mode = NetMode::Nat;
  std::optional<Cidr> cidr;
  std::optional<DhcpRange> dhcp_range;  // effective; unset when DHCP is off
  std::optional<std::string> domain;
  std::string bridge;  // the bridge kumo creates (kb-<hash>), or the host's (mode bridge)
  std::optional<int> mtu;
  std::vector<DesiredDhcpHost> dhcp_hosts;  // static addresses of the VMs placed on this host
  std::vector<std::pair<std::string, std::string>> dns_hosts;  // extra names: name, address
  SensitiveFields sensitive;  // by kumo.yaml key, plus "dhcp_hosts" from the VMs' addresses
  Location location;

  std::string address() const { return "network." + name; }
};

// A storage pool kumo makes on a host (hosts.<h>.pools.<name>).
struct DesiredPool {
  PoolSpec spec;  // spec.cluster set
  Location location;
  std::string address(const std::string& host) const { return "pool." + host + "/" + spec.name; }
};

struct DesiredHost {
  std::string name, uri;
  std::string pool = "default";
  Location pool_location;
  std::vector<DesiredPool> pools;
  const DesiredPool* find_pool(const std::string& n) const {
    for (const auto& p : pools)
      if (p.spec.name == n) return &p;
    return nullptr;
  }
  VirtType virt_type = VirtType::Auto;
  double cpu_overcommit = 4.0;
  double memory_overcommit = 1.0;
  std::optional<SshJumpConfig> ssh_jump;  // how kumo ssh gets inside (unset: from the uri)
  bool drain = false;
  MigrationConfig migration;
  SensitiveFields sensitive;  // "uri": shown masked
  Location location;
  HostTarget target() const { return HostTarget{name, uri, pool, sensitive.has("uri")}; }
};

// A base image the VMs use, with what plan needs to know before resolving it.
struct DesiredImage {
  std::string name;
  std::string source;  // URL or path for display, credentials redacted (masked if sensitive)
  std::optional<Checksum> checksum;
  bool checksum_none = false;
  images::ImageSource fetch;  // how to fetch it
  SensitiveFields sensitive;
  Location location;
};

// A network as the file declares it, before it is made per host: everything but the DHCP
// entries of the VMs placed on each host.
struct NetworkTemplate {
  DesiredNetwork network;          // host and dhcp_hosts unset
  std::vector<std::string> hosts;  // every host it lives on
  bool dhcp = true;
};

struct DesiredCluster {
  std::string cluster;
  std::string file;  // the cluster file, as given ("kumo.yaml", "<stdin>")
  std::vector<DesiredHost> hosts;
  std::vector<DesiredImage> images;
  std::vector<NetworkTemplate> network_templates;
  std::vector<DesiredVm> vms;            // every instance, in file order
  std::vector<DesiredNetwork> networks;  // one per (network, host), after placement

  const DesiredHost* find_host(const std::string& name) const;
  const DesiredImage* find_image(const std::string& name) const;
  const NetworkTemplate* find_network(const std::string& name) const;
  std::vector<HostTarget> targets() const;
};

// Everything the file asks for, VM instances not yet placed.
DesiredCluster expand(const ClusterConfig& cfg);

// The networks each host needs, with DHCP entries for the VMs placed on it. Call after placement.
void expand_networks(DesiredCluster& desired);

std::string derived_mac(const std::string& cluster, const std::string& instance, int nic_index);
std::string bridge_name(const std::string& cluster, const std::string& network);

}  // namespace kumo
