#include "planner/desired.h"

#include <algorithm>

#include "planner/cloudinit.h"
#include "providers/digest.h"
#include "providers/ownership.h"
#include "providers/redact.h"

namespace kumo {

std::string derived_mac(const std::string& cluster, const std::string& instance, int nic_index) {
  const std::string h = sha256_hex(cluster + "/" + instance + "/" + std::to_string(nic_index));
  return "52:54:00:" + h.substr(0, 2) + ":" + h.substr(2, 2) + ":" + h.substr(4, 2);
}

std::string bridge_name(const std::string& cluster, const std::string& network) {
  return "kb-" + sha256_hex(cluster + "/" + network).substr(0, 10);  // 13 chars (IFNAMSIZ is 15)
}

VmRecord DesiredVm::spec() const {
  VmRecord r;
  r.image = image;
  r.image_id = image_id;
  r.cpus = cpus;
  r.memory = memory;
  r.disk = disk;
  for (const auto& d : data_disks) r.data_disks[d.name] = d.size;
  for (const auto& n : nics) {
    r.nics.push_back({n.network, n.ip ? n.ip->str() : "", n.mac, n.own_bridge ? n.bridge : "",
                      n.direct, n.mode, n.model, n.queues});
  }
  r.autostart = autostart;
  r.group = group;
  r.prevent_destroy = lifecycle.prevent_destroy;
  r.instance_id = instance_id;
  r.user_data_sha256 = sha256_hex(user_data);
  r.network_config_sha256 = sha256_hex(network_config);
  r.user_data_shown = user_data_shown;
  r.network_config_shown = network_config_shown;
  r.firmware = firmware == Firmware::Uefi ? "uefi" : "";
  r.secure_boot = secure_boot;
  r.tpm = tpm;
  r.cache = cache;
  r.adopted = adopt;
  for (const auto& v : adopt_volumes) r.volumes.push_back(v.str());
  return r;
}

std::string DesiredVm::spec_hash() const {
  return sha256_hex(vm_record_json(spec()));
}

const DesiredHost* DesiredCluster::find_host(const std::string& name) const {
  for (const auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

const DesiredImage* DesiredCluster::find_image(const std::string& name) const {
  for (const auto& i : images)
    if (i.name == name) return &i;
  return nullptr;
}

const NetworkTemplate* DesiredCluster::find_network(const std::string& name) const {
  for (const auto& n : network_templates)
    if (n.network.name == name) return &n;
  return nullptr;
}

std::vector<HostTarget> DesiredCluster::targets() const {
  std::vector<HostTarget> out;
  for (const auto& h : hosts) out.push_back(h.target());
  return out;
}

namespace {

// Recorded in every VM's metadata, which any read-only libvirt client can read: a URL is kept
// without its userinfo and query (diff_vm compares what older kumo recorded the same way).
std::string image_identity(const ImageConfig& img) {
  if (img.checksum) return img.checksum->str();
  if (img.url)
    return img.url->rfind("file://", 0) == 0 ? img.url->substr(7) : strip_url_secrets(*img.url);
  return img.path.value_or("");
}

std::vector<StaticAddress> static_addresses(const ClusterConfig& cfg,
                                            const std::vector<DesiredNic>& nics,
                                            std::vector<std::string>& dhcp_macs) {
  std::vector<StaticAddress> out;
  for (const auto& nic : nics) {
    const NetworkConfig* net = cfg.find_network(nic.network);
    // With DHCP the host hands the reserved address out; only DHCP-less networks need config.
    if (!net || !nic.ip || !net->cidr || (net->dhcp && net->mode != NetMode::Bridge)) {
      dhcp_macs.push_back(nic.mac);
      continue;
    }
    StaticAddress s;
    s.mac = nic.mac;
    s.ip = *nic.ip;
    s.prefix = net->cidr->prefix;
    if (net->mode == NetMode::Nat || net->mode == NetMode::Route) s.gateway = net->gateway();
    if (net->mode != NetMode::Bridge) {
      s.dns = net->gateway();
      s.search_domain = net->domain;
    }
    out.push_back(s);
  }
  return out;
}

// Who kumo ssh logs in as: ssh.user (the VM's, defaults:', the top level's), else the first user
// cloud-init creates by name, else root.
std::string ssh_user(const ClusterConfig& cfg, const VmConfig& vm) {
  if (vm.ssh.user) return *vm.ssh.user;
  if (cfg.ssh.user) return *cfg.ssh.user;
  for (const auto& u : vm.cloud_init.users) {
    if (u.is_object() && u.contains("name") && u["name"].is_string()) return u["name"];
  }
  return "root";
}

// What every instance of a group shares, made once per group: a group of 300 rendered the same
// user-data 300 times (kumo destroy, which needs none of it, waited for that too).
struct GroupShared {
  std::string user_data, user_data_shown, ssh_user;
};

DesiredVm expand_instance(const ClusterConfig& cfg, const VmConfig& vm, int index,
                          const GroupShared& group) {
  DesiredVm d;
  d.instance = vm.instance_name(index);
  d.group = vm.name;
  d.index = index;
  d.pinned_host = vm.host;
  d.placement = vm.placement;
  d.anti_affinity = vm.anti_affinity;
  d.image = vm.image;
  if (const ImageConfig* img = cfg.find_image(vm.image)) d.image_id = image_identity(*img);
  d.cpus = vm.cpus;
  d.memory = vm.memory;
  d.disk = vm.disk;
  d.root_volume = root_volume_name(cfg.name, d.instance);
  d.seed_volume = seed_volume_name(cfg.name, d.instance);
  for (const auto& disk : vm.disks) {
    d.data_disks.push_back({disk.name, data_volume_name(cfg.name, d.instance, disk.name), disk.size,
                            disk.pool, disk.pool_location});
  }
  int n = 0;
  for (const auto& nic : vm.networks) {
    DesiredNic dn;
    dn.network = nic.network;
    dn.model = nic.model;
    dn.queues = nic.queues.value_or(0);
    const NetworkConfig* net = cfg.find_network(nic.network);
    if (!nic.bridge.empty()) {
      dn.bridge = nic.bridge;
      dn.own_bridge = true;
    } else if (!nic.direct.empty()) {
      dn.direct = nic.direct;
      dn.mode = nic.mode.empty() ? "bridge" : nic.mode;
    } else if (net && net->mode == NetMode::Bridge) {
      dn.bridge = net->bridge.value_or("");
    } else {
      dn.libvirt_network = network_name(cfg.name, nic.network);
    }
    if (nic.ip) dn.ip = Ipv4{nic.ip->value + static_cast<std::uint32_t>(index)};
    dn.mac = nic.mac ? nic.mac->plus(static_cast<std::uint32_t>(index)).str()
                     : derived_mac(cfg.name, d.instance, n);
    d.nics.push_back(dn);
    ++n;
  }
  d.running = vm.running;
  d.autostart = vm.autostart;
  d.move = vm.move;
  d.firmware = vm.firmware;
  d.secure_boot = vm.secure_boot;
  d.tpm = vm.tpm;
  d.cache = vm.cache;
  d.user_data = group.user_data;
  std::vector<std::string> dhcp_macs;
  const auto statics = static_addresses(cfg, d.nics, dhcp_macs);
  d.network_config = render_network_config(vm.cloud_init, dhcp_macs, statics);
  // What the plan shows: the same documents with what came from sensitive variables masked.
  bool addresses_sensitive = vm.sensitive.has("networks");
  for (const auto& nic : vm.networks) {
    if (const NetworkConfig* net = cfg.find_network(nic.network))
      addresses_sensitive = addresses_sensitive || net->sensitive.any();
  }
  d.user_data_shown = group.user_data_shown;
  d.network_config_shown =
      render_network_config(vm.cloud_init_shown, dhcp_macs, statics, addresses_sensitive);
  // A new instance-id whenever the first-boot documents change: cloud-init runs once per id.
  d.instance_id = cfg.name + "-" + d.instance + "-" +
                  sha256_hex(d.user_data + "\n--\n" + d.network_config).substr(0, 12);
  d.lifecycle = vm.lifecycle;
  d.wait_for = vm.wait_for;
  d.wait_timeout = vm.wait_timeout;
  d.sensitive = vm.sensitive;
  d.location = vm.location;
  d.ssh_user = group.ssh_user;
  d.ssh_identity_file = vm.ssh.identity_file.value_or(cfg.ssh.identity_file.value_or(""));
  if (vm.adopt) {
    // Taken over as it is: no root or seed volume, no cloud-init documents, no instance-id.
    d.adopt = *vm.adopt;
    d.adopt_volumes = vm.volumes;
    d.adopt_location = vm.adopt_location;
    d.root_volume.clear();
    d.seed_volume.clear();
    d.user_data.clear();
    d.network_config.clear();
    d.user_data_shown.clear();
    d.network_config_shown.clear();
    d.instance_id.clear();
  }
  return d;
}

// A URL or path for display: userinfo (user:password@) is never shown.
std::string display_source(const ImageConfig& img) {
  return img.url ? redact_url(*img.url) : img.path.value_or("");
}

NetworkTemplate network_template(const ClusterConfig& cfg, const NetworkConfig& net) {
  NetworkTemplate t;
  DesiredNetwork& dn = t.network;
  dn.name = net.name;
  dn.libvirt_name = network_name(cfg.name, net.name);
  dn.mode = net.mode;
  dn.cidr = net.cidr;
  dn.dhcp_range = net.effective_dhcp_range();
  dn.domain = net.domain;
  dn.bridge =
      net.mode == NetMode::Bridge ? net.bridge.value_or("") : bridge_name(cfg.name, net.name);
  dn.mtu = net.mtu;
  dn.sensitive = net.sensitive;
  dn.location = net.location;
  for (const auto& d : net.dns_hosts) dn.dns_hosts.emplace_back(d.name, d.ip.str());
  t.hosts = net.hosts;
  t.dhcp = net.dhcp;
  return t;
}

}  // namespace

std::string DesiredVm::meta_data() const {
  return adopted() ? "" : render_meta_data(instance_id, instance);
}

DesiredCluster expand(const ClusterConfig& cfg) {
  DesiredCluster out;
  out.cluster = cfg.name;
  out.file = cfg.file;
  for (const auto& h : cfg.hosts) {
    DesiredHost dh;
    dh.name = h.name;
    dh.uri = h.uri;
    dh.pool = h.pool;
    dh.pool_location = h.pool_location;
    for (const auto& p : h.pools)
      dh.pools.push_back({PoolSpec{p.name, p.type, p.path, p.devices, cfg.name}, p.location});
    dh.virt_type = h.virt_type;
    dh.cpu_overcommit = h.cpu_overcommit;
    dh.memory_overcommit = h.memory_overcommit;
    dh.ssh_jump = h.ssh_jump;
    dh.drain = h.drain;
    dh.migration = h.migration;
    dh.sensitive = h.sensitive;
    dh.location = h.location;
    out.hosts.push_back(std::move(dh));
  }
  for (const auto& img : cfg.images) {
    const bool secret_source = img.sensitive.has("url") || img.sensitive.has("path");
    out.images.push_back({img.name, secret_source ? kSensitiveMask : display_source(img),
                          img.checksum, img.checksum_none, image_source(img), img.sensitive,
                          img.location});
  }
  for (const auto& net : cfg.networks) out.network_templates.push_back(network_template(cfg, net));
  std::size_t instances = 0;
  for (const auto& vm : cfg.vms) instances += static_cast<std::size_t>(vm.instance_count());
  out.vms.reserve(instances);  // thousands of DesiredVm, never moved while the list grows
  for (const auto& vm : cfg.vms) {
    const GroupShared group{render_user_data(vm.cloud_init),
                            render_user_data_shown(vm.cloud_init_shown), ssh_user(cfg, vm)};
    for (int i = 0; i < vm.instance_count(); ++i)
      out.vms.push_back(expand_instance(cfg, vm, i, group));
  }
  return out;
}

void expand_networks(DesiredCluster& desired) {
  desired.networks.clear();
  for (const auto& t : desired.network_templates) {
    if (t.network.mode == NetMode::Bridge) continue;  // an existing host bridge: nothing to create
    for (const auto& host : t.hosts) {
      DesiredNetwork dn = t.network;
      dn.host = host;
      if (t.dhcp) {
        for (const auto& vm : desired.vms) {
          if (vm.host != host) continue;
          for (const auto& nic : vm.nics) {
            if (nic.network != dn.name || !nic.ip) continue;
            dn.dhcp_hosts.push_back({nic.mac, nic.ip->str(), vm.instance});
            if (vm.sensitive.has("networks")) dn.sensitive.add("dhcp_hosts");
          }
        }
        std::sort(dn.dhcp_hosts.begin(), dn.dhcp_hosts.end(),
                  [](const auto& a, const auto& b) { return a.name < b.name; });
      }
      desired.networks.push_back(std::move(dn));
    }
  }
}

}  // namespace kumo
