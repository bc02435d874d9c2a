// diff(desired, observed) on its own: the desired cluster comes from a kumo.yaml placed by hand,
// the hosts are what the real executor left on the fake hosts when it applied it. Each row of
// the tables changes the file or the hosts and says what the differ must make of it.
#include "planner/differ.h"

#include <algorithm>
#include <functional>
#include <utility>

#include <catch2/catch.hpp>

#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::config;

namespace {

const std::string kBase = R"(
cluster: fest
hosts:
  hv1: {uri: "test:///hv1"}
  hv2: {uri: "test:///hv2"}
images:
  deb: {path: /srv/deb.qcow2, checksum: "sha256:)" +
                          std::string(64, 'a') + R"("}
networks:
  front: {cidr: 10.20.0.0/24, domain: fest.internal}
vms:
  web:
    image: deb
    memory: 512MiB
    disk: 4GiB
    networks: [{network: front, ip: 10.20.0.10}]
    disks: {data: 1GiB}
    cloud_init: {packages: []}
)";

using Edits = std::vector<std::pair<std::string, std::string>>;

std::string edited(std::string text, const Edits& edits) {
  for (const auto& [from, to] : edits) {
    const auto at = text.find(from);
    INFO("kumo.yaml has no " + from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
  }
  return text;
}

// The file expanded and placed: each VM on its pin, else on hv1.
DesiredCluster desired_from(const std::string& text) {
  DesiredCluster d = expand(config(text));
  for (auto& vm : d.vms) vm.host = vm.pinned_host.value_or("hv1");
  expand_networks(d);
  return d;
}

// Where the fake sessions keep a host's volumes.
std::string pool_path(const std::string& host) {
  return "/pool/" + host;
}

ObservedVolume volume(const std::string& host, const std::string& name, std::uint64_t capacity) {
  ObservedVolume v;
  v.pool = "default";
  v.name = name;
  v.path = pool_path(host) + "/" + name;
  v.format = "qcow2";
  v.capacity = capacity;
  v.owner = volume_owner(name);
  return v;
}

// A domain of the cluster that the file no longer has, as kumo defined it: headroom to twice its
// vCPUs and memory, its record in the metadata (for rows that add such a VM by hand).
ObservedDomain domain_as_made(const std::string& cluster, const DesiredVm& vm) {
  ObservedDomain d;
  d.name = vm.instance;
  d.uuid = "uuid-" + vm.instance;
  d.active = vm.running;
  d.state = vm.running ? "running" : "shutoff";
  d.autostart = vm.autostart;
  d.virt_type = "kvm";
  d.vcpus = vm.cpus;
  d.max_vcpus = vm.cpus * 2;
  d.memory = vm.memory;
  d.max_memory = vm.memory * 2;
  const std::string pool = pool_path(vm.host) + "/";
  d.disks.push_back({"vda", "disk", pool + vm.root_volume, "qcow2", false});
  for (std::size_t i = 0; i < vm.data_disks.size(); ++i) {
    d.disks.push_back({std::string("vd") + static_cast<char>('b' + i), "disk",
                       pool + vm.data_disks[i].volume, "qcow2", false});
  }
  d.disks.push_back({"sda", "cdrom", pool + vm.seed_volume, "raw", true});
  for (const auto& n : vm.nics)
    d.nics.push_back({n.libvirt_network, "network", n.mac, "virtio", ""});
  d.owner = Ownership{cluster, vm.address(), vm.spec_hash(), vm.spec(), true};
  return d;
}

// What the hosts look like after `desired` was applied: the real executor, run on the fake
// sessions (tests/fake_session.h), then observed. One model of what apply leaves behind.
std::vector<ObservedHost> as_applied(const DesiredCluster& desired) {
  test::Lab lab;
  const auto timeout = std::chrono::milliseconds(500);
  auto observe_all = [&] {
    std::vector<ObservedHost> out;
    for (const auto& h : desired.hosts) {
      ObservedHost o = lab.observe(h.target(), timeout);
      o.uri = h.uri;
      out.push_back(std::move(o));
    }
    return out;
  };
  Plan plan;
  plan.cluster = desired.cluster;
  for (const auto& h : desired.hosts) {
    HostReport r;
    r.name = h.name;
    r.uri = h.uri;
    r.pool = h.pool;
    r.reachable = true;
    r.virt_type = "kvm";
    plan.hosts.push_back(r);
  }
  DiffResult from_nothing = diff(desired, observe_all());
  REQUIRE_FALSE(from_nothing.errors.has_errors());
  plan.changes = std::move(from_nothing.changes);
  ImagePlan image;
  image.name = "deb";
  image.checksum = "sha256:" + test::kHex;
  image.volume = image_volume_name("sha256", test::kHex);
  std::set<std::string> hosts;
  for (const auto& c : plan.changes)
    if (c.address.role() == VolumeRole::Root) hosts.insert(c.host);
  image.upload_to.assign(hosts.begin(), hosts.end());
  plan.images.push_back(image);
  const ExecResult applied = lab.apply(plan);
  INFO(test::failures(applied));
  REQUIRE(applied.success());
  return observe_all();
}

// The hosts before anything was applied.
std::vector<ObservedHost> empty_hosts(const DesiredCluster& desired) {
  test::Lab lab;
  std::vector<ObservedHost> out;
  for (const auto& h : desired.hosts) {
    ObservedHost o = lab.observe(h.target(), std::chrono::milliseconds(500));
    o.uri = h.uri;
    out.push_back(std::move(o));
  }
  return out;
}

ObservedHost& on(std::vector<ObservedHost>& hosts, const std::string& name) {
  for (auto& h : hosts)
    if (h.host == name) return h;
  FAIL("no observed host " << name);
  throw std::logic_error("unreachable");
}

ObservedDomain& domain(std::vector<ObservedHost>& hosts, const std::string& host,
                       const std::string& name) {
  for (auto& d : on(hosts, host).domains)
    if (d.name == name) return d;
  FAIL("no domain " << name << " on " << host);
  throw std::logic_error("unreachable");
}

ObservedNetwork& network(std::vector<ObservedHost>& hosts, const std::string& host,
                         const std::string& name) {
  for (auto& n : on(hosts, host).networks)
    if (n.name == name) return n;
  FAIL("no network " << name << " on " << host);
  throw std::logic_error("unreachable");
}

// Network `name` of cluster fest on `host` (a copy of front), with kumo's record of making it.
void add_our_network(std::vector<ObservedHost>& hosts, const std::string& host,
                     const std::string& name) {
  ObservedNetwork n = network(hosts, host, "kumo_fest_front");
  n.name = network_name("fest", name);
  n.uuid = "uuid-" + name;
  n.owner = network_owner(n.name);
  on(hosts, host).networks.push_back(n);
  on(hosts, host).volumes.push_back(volume(host, network_record_name("fest", name, n.uuid), 0));
}

// A VM of cluster fest that the file no longer has (instance `name`, one data disk), on `host`.
void add_removed_vm(std::vector<ObservedHost>& hosts, const std::string& host,
                    const std::string& name, bool prevent_destroy = false) {
  DesiredVm vm = desired_from(kBase).vms.front();
  vm.instance = name;
  vm.host = host;
  vm.root_volume = root_volume_name("fest", name);
  vm.seed_volume = seed_volume_name("fest", name);
  vm.data_disks = {{"data", data_volume_name("fest", name, "data"), 1ull << 30}};
  vm.lifecycle.prevent_destroy = prevent_destroy;
  auto& h = on(hosts, host);
  h.domains.push_back(domain_as_made("fest", vm));
  h.volumes.push_back(volume(host, vm.root_volume, 4ull << 30));
  h.volumes.push_back(volume(host, vm.seed_volume, 1ull << 20));
  h.volumes.push_back(volume(host, vm.data_disks.front().volume, 1ull << 30));
}

const ResourceChange* find(const DiffResult& r, const std::string& address,
                           const std::string& host = "hv1") {
  for (const auto& c : r.changes)
    if (c.address.str() == address && c.host == host) return &c;
  return nullptr;
}

const AttributeChange* attribute(const ResourceChange& c, const std::string& name) {
  for (const auto& a : c.attributes)
    if (a.name == name) return &a;
  return nullptr;
}

std::vector<std::string> attribute_names(const ResourceChange& c) {
  std::vector<std::string> out;
  for (const auto& a : c.attributes) out.push_back(a.name);
  return out;
}

std::vector<std::string> drifted(const ResourceChange& c) {
  std::vector<std::string> out;
  for (const auto& a : c.attributes)
    if (a.drift) out.push_back(a.name);
  return out;
}

// "action address@host" per change, in plan order.
std::vector<std::string> listing(const DiffResult& r) {
  std::vector<std::string> out;
  for (const auto& c : r.changes)
    out.push_back(std::string(to_string(c.action)) + " " + c.address.str() + "@" + c.host);
  return out;
}

std::vector<std::string> messages(const Diagnostics& d) {
  std::vector<std::string> out;
  for (const auto& e : d.all()) out.push_back(e.message);
  return out;
}

std::string steps_text(const VmSteps& s) {
  std::string out;
  if (s.remove_old) out += "remove_old ";
  if (s.shutdown) out += "shutdown ";
  if (s.start) out += "start ";
  if (s.wait_ready) out += "wait_ready ";
  if (s.frees_room) out += "frees_room ";
  if (s.live) out += "live ";
  if (s.remove_dest_copy) out += "remove_dest_copy ";
  return out;
}

const std::string kLive = "changed in the running guest and its definition, no reboot";
const std::string kMovedLive =
    "moved live: memory and disks are copied while it runs, then it continues on hv2 (same "
    "boot); hv1's copy is removed after. Nothing is destroyed";
const std::string kMadeAnew =
    "made anew: cloud-init runs once per instance; data disks are kept and reattached";

struct Row {
  std::string name = {};
  Edits edits = {};  // kumo.yaml: from -> to
  // The hosts since the apply.
  std::function<void(std::vector<ObservedHost>&)> hosts_differ = [](std::vector<ObservedHost>&) {};
  std::vector<std::string> replace = {};   // --replace
  std::string address = {}, host = "hv1";  // the change looked at
  Action action = Action::NoOp;
  Disruption disruption = Disruption::None;
  std::vector<std::string> attributes = {};  // in the order the plan shows them
  bool destroys_data = false;
  bool forces_replacement = false;
  std::string steps = {};   // steps_text of the VM steps
  std::string reason = {};  // exactly
  std::vector<std::string> drift = {};
};

std::vector<Row> change_rows() {
  return {
      {.name = "memory grows within the running domain's maximum: changed live",
       .edits = {{"memory: 512MiB", "memory: 768MiB"}},
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"memory"},
       .reason = kLive},
      {.name = "vCPUs grow within the running domain's maximum: changed live",
       .edits = {{"memory: 512MiB", "memory: 512MiB\n    cpus: 2"}},
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"cpus"},
       .reason = kLive},
      {.name = "memory beyond the maximum: shut down, redefined, started and waited for",
       .edits = {{"memory: 512MiB", "memory: 2GiB"}},
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Restart,
       .attributes = {"memory"},
       .steps = "shutdown start wait_ready ",
       .reason = "shut down (ACPI), redefined and started again: memory is beyond what the "
                 "running domain can grow to (1 GiB)"},
      {.name = "vCPUs and memory beyond the maximum: the reason names both",
       .edits = {{"memory: 512MiB", "memory: 2GiB\n    cpus: 4"}},
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Restart,
       .attributes = {"cpus", "memory"},
       .steps = "shutdown start wait_ready ",
       .reason = "shut down (ACPI), redefined and started again: cpus is beyond what the "
                 "running domain can grow to (2); memory is beyond what the running domain can "
                 "grow to (1 GiB)"},
      {.name = "memory shrinks: changed live, and it frees room on its host",
       .edits = {{"memory: 512MiB", "memory: 256MiB"}},
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"memory"},
       .steps = "frees_room ",
       .reason = kLive},
      {.name = "memory changed by hand while the record matches the file: drift, moved back",
       .hosts_differ = [](auto& h) { domain(h, "hv1", "web").memory = 768ull << 20; },
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"memory"},
       .steps = "frees_room ",
       .reason = "changed outside kumo in the domain's definition: set back in the definition "
                 "and the running guest, no reboot",
       .drift = {"memory"}},
      {.name = "a new image replaces the VM: the old domain goes first",
       .edits = {{std::string(64, 'a'), std::string(64, 'b')}},
       .address = "vm.web",
       .action = Action::Replace,
       .disruption = Disruption::Recreate,
       .attributes = {"image"},
       .forces_replacement = true,
       .steps = "remove_old start wait_ready ",
       .reason = kMadeAnew},
      {.name = "a replaced VM gets a new root volume from the image",
       .edits = {{std::string(64, 'a'), std::string(64, 'b')}},
       .address = "volume.web/root",
       .action = Action::Replace},
      {.name = "new user-data replaces the VM (on_user_data_change: recreate)",
       .edits = {{"packages: []", "packages: [nginx]"}},
       .address = "vm.web",
       .action = Action::Replace,
       .disruption = Disruption::Recreate,
       .attributes = {"user_data"},
       .forces_replacement = true,
       .steps = "remove_old start wait_ready ",
       .reason = kMadeAnew},
      {.name = "new user-data with on_user_data_change: ignore updates the VM, not replaces it",
       .edits = {{"packages: []",
                  "packages: [nginx]}\n    lifecycle: {on_user_data_change: ignore"}},
       .address = "vm.web",
       .action = Action::Update,
       .attributes = {"user_data"},
       .reason = "on_user_data_change: ignore: only the seed is updated; the running instance "
                 "keeps its first boot"},
      {.name = "new user-data with on_user_data_change: ignore replaces the seed",
       .edits = {{"packages: []",
                  "packages: [nginx]}\n    lifecycle: {on_user_data_change: ignore"}},
       .address = "volume.web/seed",
       .action = Action::Replace},
      {.name = "--replace recreates a VM nothing changed in",
       .replace = {"vm.web"},
       .address = "vm.web",
       .action = Action::Replace,
       .disruption = Disruption::Recreate,
       .attributes = {"replace"},
       .forces_replacement = true,
       .steps = "remove_old start wait_ready ",
       .reason = "replaced on request (--replace): new root disk from the image, cloud-init runs "
                 "again; data disks are kept"},
      {.name = "running: false shuts the VM down",
       .edits = {{"memory: 512MiB", "memory: 512MiB\n    running: false"}},
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Restart,
       .attributes = {"running"},
       .reason = "shut down (ACPI; forced off after a timeout)"},
      {.name = "a stopped VM that should run is started and waited for",
       .hosts_differ =
           [](auto& h) {
             auto& d = domain(h, "hv1", "web");
             d.active = false;
             d.state = "shutoff";
           },
       .address = "vm.web",
       .action = Action::Update,
       .attributes = {"running"},
       .steps = "start wait_ready "},
      {.name = "a VM never seen ready is waited for",
       .hosts_differ = [](auto& h) { domain(h, "hv1", "web").owner->ready = false; },
       .address = "vm.web",
       .action = Action::Update,
       .attributes = {"ready"},
       .steps = "wait_ready ",
       .reason = "not seen ready since it was defined (an apply was interrupted): wait for it"},
      {.name = "a VM recorded in another group shows the group, nothing else",
       .hosts_differ = [](auto& h) { domain(h, "hv1", "web").owner->spec->group = "www"; },
       .address = "vm.web",
       .action = Action::Update,
       .attributes = {"group"}},
      {.name = "prevent_destroy set in the file is recorded",
       .edits = {{"packages: []}", "packages: []}\n    lifecycle: {prevent_destroy: true}"}},
       .address = "vm.web",
       .action = Action::Update,
       .attributes = {"prevent_destroy"}},
      {.name = "autostart turned off",
       .edits = {{"memory: 512MiB", "memory: 512MiB\n    autostart: false"}},
       .address = "vm.web",
       .action = Action::Update,
       .attributes = {"autostart"}},
      {.name = "a bigger root disk: the VM shows it, changed live",
       .edits = {{"disk: 4GiB", "disk: 8GiB"}},
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"disk"},
       .reason = kLive},
      {.name = "a bigger root disk: its volume grows in place",
       .edits = {{"disk: 4GiB", "disk: 8GiB"}},
       .address = "volume.web/root",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"size"}},
      {.name = "a bigger data disk: its volume grows in place",
       .edits = {{"disks: {data: 1GiB}", "disks: {data: 3GiB}"}},
       .address = "volume.web/data/data",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"size"}},
      {.name = "a data disk added to a running VM is hot-plugged",
       .edits = {{"disks: {data: 1GiB}", "disks: {data: 1GiB, logs: 2GiB}"}},
       .address = "volume.web/data/logs",
       .action = Action::Create,
       .disruption = Disruption::Live,
       .attributes = {"size"},
       .reason = "hot-plugged into the running guest: /dev/disk/by-id/virtio-logs"},
      {.name = "a data disk added to a running VM: the VM shows it, changed live",
       .edits = {{"disks: {data: 1GiB}", "disks: {data: 1GiB, logs: 2GiB}"}},
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"disks.logs"},
       .reason = kLive},
      {.name = "a data volume made but not attached is attached",
       .hosts_differ =
           [](auto& h) {
             std::erase_if(domain(h, "hv1", "web").disks,
                           [](const ObservedDisk& d) { return d.target == "vdb"; });
           },
       .address = "vm.web",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"disks.data"},
       .reason = "data disk \"data\" exists but is not attached (an apply was interrupted): "
                 "attached now"},
      {.name = "a network's address changed under running VMs: replaced, naming them",
       .hosts_differ = [](auto& h) { network(h, "hv1", "kumo_fest_front").ip = "10.99.0.1"; },
       .address = "network.front",
       .action = Action::Replace,
       .disruption = Disruption::Restart,
       .attributes = {"address"},
       .forces_replacement = true,
       .reason = "the network is recreated; running VMs lose connectivity meanwhile: web"},
      {.name = "a network's address changed where no VM runs: replaced, live",
       .hosts_differ = [](auto& h) { network(h, "hv2", "kumo_fest_front").ip = "10.99.0.1"; },
       .address = "network.front",
       .host = "hv2",
       .action = Action::Replace,
       .disruption = Disruption::Live,
       .attributes = {"address"},
       .forces_replacement = true,
       .reason = "the network is recreated"},
      {.name = "a CIDR change replaces the network: address and DHCP range change",
       .edits = {{"cidr: 10.20.0.0/24", "cidr: 10.20.0.0/23"}},
       .address = "network.front",
       .action = Action::Replace,
       .disruption = Disruption::Restart,
       .attributes = {"address", "dhcp"},
       .forces_replacement = true,
       .reason = "the network is recreated; running VMs lose connectivity meanwhile: web"},
      {.name = "a missing DHCP host entry is added live",
       .hosts_differ = [](auto& h) { network(h, "hv1", "kumo_fest_front").dhcp_hosts.clear(); },
       .address = "network.front",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"dhcp_hosts"},
       .reason = "DHCP/DNS host entries change live; guests keep their connectivity"},
      {.name = "a new DNS name is added live",
       .edits = {{"domain: fest.internal}",
                  "domain: fest.internal, dns_hosts: {www: 10.20.0.10}}"}},
       .address = "network.front",
       .action = Action::Update,
       .disruption = Disruption::Live,
       .attributes = {"dns_hosts"},
       .reason = "DHCP/DNS host entries change live; guests keep their connectivity"},
      {.name = "a stopped network is started",
       .hosts_differ = [](auto& h) { network(h, "hv2", "kumo_fest_front").active = false; },
       .address = "network.front",
       .host = "hv2",
       .action = Action::Update,
       .attributes = {"active"}},
      {.name = "a VM no longer in the file is deleted, and its data with it",
       .hosts_differ = [](auto& h) { add_removed_vm(h, "hv2", "old"); },
       .address = "vm.old",
       .host = "hv2",
       .action = Action::Delete,
       .destroys_data = true,
       .reason = "no longer in kumo.yaml"},
      {.name = "a deleted VM's data volume destroys data",
       .hosts_differ = [](auto& h) { add_removed_vm(h, "hv2", "old"); },
       .address = "volume.old/data/data",
       .host = "hv2",
       .action = Action::Delete,
       .destroys_data = true},
      {.name = "a deleted VM's root volume destroys no data",
       .hosts_differ = [](auto& h) { add_removed_vm(h, "hv2", "old"); },
       .address = "volume.old/root",
       .host = "hv2",
       .action = Action::Delete},
      {.name = "a volume no VM accounts for is deleted as left over",
       .hosts_differ =
           [](auto& h) {
             on(h, "hv1").volumes.push_back(volume("hv1", "kumo_fest_gone_root.qcow2", 1 << 20));
           },
       .address = "volume.gone/root",
       .action = Action::Delete,
       .reason = "left over: no VM of this cluster uses it"},
      {.name = "a network no longer in the file is deleted",
       .hosts_differ = [](auto& h) { add_our_network(h, "hv1", "back"); },
       .address = "network.back",
       .action = Action::Delete,
       .reason = "no longer in kumo.yaml"},
      {.name = "kumo's record of a network that was never made is deleted",
       .hosts_differ =
           [](auto& h) {
             on(h, "hv1").volumes.push_back(
                 volume("hv1", network_record_name("fest", "back", "uuid-never"), 0));
           },
       .address = "network.back",
       .action = Action::Delete,
       .reason = "left over: kumo's record of a network that was never made (UUID uuid-never; "
                 "an apply stopped in between)"},
      {.name = "a deleted network names the running VMs that lose connectivity",
       .hosts_differ =
           [](auto& h) {
             add_our_network(h, "hv1", "back");
             domain(h, "hv1", "web")
                 .nics.push_back({"kumo_fest_back", "network", "m", "virtio", ""});
           },
       .address = "network.back",
       .action = Action::Delete,
       .disruption = Disruption::Restart,
       .reason = "running VMs lose connectivity: web"},
      {.name = "a running VM pinned to another host moves there live, with its data",
       .edits = {{"image: deb\n", "image: deb\n    host: hv2\n"}},
       .address = "vm.web",
       .host = "hv2",
       .action = Action::Move,
       .disruption = Disruption::Live,
       .attributes = {"host"},
       .steps = "live ",
       .reason = kMovedLive},
      {.name = "a VM with move: cold moves with a restart: shut down, copied, started there",
       .edits = {{"image: deb\n", "image: deb\n    host: hv2\n    move: cold\n"}},
       .address = "vm.web",
       .host = "hv2",
       .action = Action::Move,
       .disruption = Disruption::Restart,
       .attributes = {"host"},
       .steps = "shutdown start wait_ready ",
       .reason =
           "shut down on hv1, its disks copied to hv2 through kumo, started there and, "
           "once ready, hv1's copy removed. Cold, as it has move: cold. Nothing is destroyed"},
      {.name = "a move that also grows the VM's memory beyond its maximum is cold",
       .edits = {{"image: deb\n", "image: deb\n    host: hv2\n"},
                 {"memory: 512MiB", "memory: 2GiB"}},
       .address = "vm.web",
       .host = "hv2",
       .action = Action::Move,
       .disruption = Disruption::Restart,
       .attributes = {"host", "memory"},
       .steps = "shutdown start wait_ready ",
       .reason = "shut down on hv1, its disks copied to hv2 through kumo, started there and, "
                 "once ready, hv1's copy removed. Cold, as its vCPUs or memory change too. "
                 "Nothing is destroyed"},
      {.name = "a stopped VM moves cold without a restart",
       .edits = {{"image: deb\n", "image: deb\n    host: hv2\n"}},
       .hosts_differ =
           [](auto& h) {
             domain(h, "hv1", "web").active = false;
             domain(h, "hv1", "web").state = "shutoff";
           },
       .address = "vm.web",
       .host = "hv2",
       .action = Action::Move,
       .attributes = {"host"},
       .steps = "start wait_ready ",
       .reason = "its disks copied to hv2 through kumo, started there and, once ready, hv1's "
                 "copy removed. Cold, as it is not running. Nothing is destroyed"},
      {.name = "a move's volumes move along; its seed is made anew there",
       .edits = {{"image: deb\n", "image: deb\n    host: hv2\n"}},
       .address = "volume.web/data/data",
       .host = "hv2",
       .action = Action::Move,
       .attributes = {"size"}},
      {.name = "a VM pinned to another host whose image changes too is made anew there",
       .edits = {{"image: deb\n", "image: deb\n    host: hv2\n"},
                 {std::string(64, 'a'), std::string(64, 'b')}},
       .address = "vm.web",
       .host = "hv2",
       .action = Action::Replace,
       .disruption = Disruption::Recreate,
       .attributes = {"host", "image", "cpus", "memory", "disk", "disks.data", "networks",
                      "user_data"},
       .destroys_data = true,
       .forces_replacement = true,
       .steps = "start wait_ready ",
       .reason = "pinned to hv2: moves from hv1 (made anew there)"},
      {.name = "made anew on another host: its old copy is deleted, data and all",
       .edits = {{"image: deb\n", "image: deb\n    host: hv2\n"},
                 {std::string(64, 'a'), std::string(64, 'b')}},
       .address = "vm.web",
       .action = Action::Delete,
       .destroys_data = true,
       .reason = "the old copy of a VM moved to another host"},
  };
}

}  // namespace

TEST_CASE("diff from nothing creates the networks, then each VM followed by its volumes",
          "[differ]") {
  const DesiredCluster desired = desired_from(kBase);
  const DiffResult r = diff(desired, empty_hosts(desired));
  CHECK(messages(r.errors).empty());
  CHECK(r.warnings.empty());
  CHECK(listing(r) ==
        std::vector<std::string>{"create network.front@hv1", "create network.front@hv2",
                                 "create vm.web@hv1", "create volume.web/root@hv1",
                                 "create volume.web/seed@hv1", "create volume.web/data/data@hv1"});
  for (const auto& c : r.changes) {
    INFO(c.address.str());
    CHECK(c.disruption == Disruption::None);
    CHECK_FALSE(c.destroys_data);
    CHECK_FALSE(c.observed);
    if (c.kind() == ResourceKind::Volume) {
      REQUIRE(c.parent);
      CHECK(c.parent->str() == "vm.web");
      REQUIRE(c.volume());
    } else {
      CHECK(c.top_level());
    }
  }
  const auto* net = find(r, "network.front");
  REQUIRE(net);
  CHECK(attribute_names(*net) ==
        std::vector<std::string>{"mode", "cidr", "dhcp", "domain", "bridge", "dhcp_hosts"});
  CHECK(attribute(*net, "cidr")->after == Value(std::string("10.20.0.0/24")));
  CHECK(attribute(*net, "dhcp")->after == Value(std::string("10.20.0.128-10.20.0.254")));
  CHECK(attribute(*net, "dhcp_hosts")->after == Value(std::int64_t{1}));
  // No VM on hv2: its copy of the network has no host entries.
  CHECK_FALSE(attribute(*find(r, "network.front", "hv2"), "dhcp_hosts"));
  REQUIRE(net->network());
  CHECK(net->network()->name == "kumo_fest_front");
  CHECK(net->network()->address == "10.20.0.1");

  const auto* vm = find(r, "vm.web");
  REQUIRE(vm);
  CHECK(attribute_names(*vm) == std::vector<std::string>{"image", "cpus", "memory", "disk",
                                                         "disks.data", "networks", "user_data"});
  CHECK(attribute(*vm, "memory")->after == Value(std::string("512 MiB")));
  CHECK(attribute(*vm, "networks")->after ==
        Value(std::vector<std::string>{"front 10.20.0.10 " + derived_mac("fest", "web", 0)}));
  // The document, masked where values came from sensitive variables; never hidden whole.
  CHECK(attribute(*vm, "user_data")->document);
  CHECK_FALSE(attribute(*vm, "user_data")->sensitive);
  CHECK(steps_text(vm->steps) == "start wait_ready ");
  REQUIRE(vm->vm());
  CHECK(vm->vm()->root_volume == "kumo_fest_web_root.qcow2");
  CHECK(vm->vm()->spec_hash == desired.vms.front().spec_hash());
  CHECK(find(r, "volume.web/root")->volume()->size == std::optional<std::uint64_t>(4ull << 30));
  REQUIRE(find(r, "volume.web/seed")->volume()->seed);
  CHECK(find(r, "volume.web/data/data")->volume()->name == "kumo_fest_web_data-data.qcow2");
}

TEST_CASE("a VM created stopped is neither started nor waited for", "[differ]") {
  const DesiredCluster desired =
      desired_from(edited(kBase, {{"memory: 512MiB", "memory: 512MiB\n    running: false"}}));
  const DiffResult r = diff(desired, empty_hosts(desired));
  const auto* vm = find(r, "vm.web");
  REQUIRE(vm);
  CHECK(vm->action == Action::Create);
  CHECK(steps_text(vm->steps).empty());
  REQUIRE(attribute(*vm, "running"));
  CHECK(attribute(*vm, "running")->after == Value(false));
}

TEST_CASE("diff of hosts that match the file plans nothing", "[differ]") {
  const DesiredCluster desired = desired_from(kBase);
  const DiffResult r = diff(desired, as_applied(desired));
  CHECK(listing(r).empty());
  CHECK(messages(r.errors).empty());
  CHECK(r.warnings.empty());
}

TEST_CASE("diff table: each change to the file or the hosts, and what the differ makes of it",
          "[differ]") {
  const Row row = GENERATE(Catch::Generators::from_range(change_rows()));
  INFO(row.name);
  auto hosts = as_applied(desired_from(kBase));
  row.hosts_differ(hosts);
  const DesiredCluster desired = desired_from(edited(kBase, row.edits));
  const DiffResult r = diff(desired, hosts, row.replace);
  CHECK(messages(r.errors).empty());
  INFO("changes: " << Catch::StringMaker<std::vector<std::string>>::convert(listing(r)));
  const ResourceChange* c = find(r, row.address, row.host);
  REQUIRE(c);
  CHECK(to_string(c->action) == std::string(to_string(row.action)));
  CHECK(to_string(c->disruption) == std::string(to_string(row.disruption)));
  CHECK(attribute_names(*c) == row.attributes);
  CHECK(c->destroys_data == row.destroys_data);
  CHECK(std::any_of(c->attributes.begin(), c->attributes.end(), [](const AttributeChange& a) {
          return a.forces_replacement;
        }) == row.forces_replacement);
  CHECK(steps_text(c->steps) == row.steps);
  CHECK(c->reason == row.reason);
  CHECK(drifted(*c) == row.drift);
  // What apply acts on: the object as the plan saw it.
  if (row.action == Action::Update || row.action == Action::Delete ||
      (row.action == Action::Replace && c->kind() != ResourceKind::Volume)) {
    CHECK(c->observed);
  }
  if (row.action == Action::Delete) CHECK_FALSE(c->volume());
}

struct ErrorRow {
  std::string name;
  Edits edits;
  std::function<void(std::vector<ObservedHost>&)> hosts_differ;
  std::vector<std::string> errors;  // exactly, in order
  bool located = true;              // at the VM in kumo.yaml
};

TEST_CASE("diff table: refusals and conflicts are errors that say what to do", "[differ]") {
  const auto nothing = [](std::vector<ObservedHost>&) {};
  const std::vector<ErrorRow> rows = {
      {"replacing a VM with prevent_destroy",
       {{std::string(64, 'a'), std::string(64, 'b')},
        {"packages: []}", "packages: []}\n    lifecycle: {prevent_destroy: true}"}},
       nothing,
       {"vm.web has lifecycle.prevent_destroy, but this change replaces it (image changed)"}},
      {"moving a VM with prevent_destroy to another host, made anew there",
       {{"image: deb\n", "image: deb\n    host: hv2\n"},
        {std::string(64, 'a'), std::string(64, 'b')},
        {"packages: []}", "packages: []}\n    lifecycle: {prevent_destroy: true}"}},
       nothing,
       {"vm.web has lifecycle.prevent_destroy, but moving it from hv1 to hv2 would destroy it"}},
      {"removing a VM with prevent_destroy from the file",
       {},
       [](auto& h) { add_removed_vm(h, "hv2", "db", true); },
       {"host \"hv2\": vm.db has lifecycle.prevent_destroy; set prevent_destroy: false and apply "
        "before removing it from the file"},
       false},
      {"a smaller root disk",
       {{"disk: 4GiB", "disk: 2GiB"}},
       nothing,
       {"vm.web: disk cannot shrink from 4 GiB to 2 GiB (kumo only grows disks)"}},
      {"a smaller data disk",
       {{"disks: {data: 1GiB}", "disks: {data: 512MiB}"}},
       nothing,
       {"vm.web: data disk \"data\" cannot shrink from 1 GiB to 512 MiB (kumo only grows disks)"}},
      {"a data disk taken out of disks: while its VM stays",
       {{"    disks: {data: 1GiB}\n", ""}},
       nothing,
       {"vm.web: data disk \"data\" (kumo_fest_web_data-data.qcow2, 1 GiB) is no longer listed "
        "under disks:, but kumo never deletes the data disk of a VM that stays. List it again, or "
        "remove it with its VM (kumo destroy --target vm.web)"}},
      {"a domain with the VM's name that kumo did not make",
       {},
       [](auto& h) { domain(h, "hv1", "web").owner.reset(); },
       {"host \"hv1\": a domain named \"web\" already exists and kumo did not make it; kumo never "
        "touches it. Rename the VM or remove that domain"}},
      {"a domain with the VM's name that another cluster made",
       {},
       [](auto& h) { domain(h, "hv1", "web").owner->cluster = "other"; },
       {"host \"hv1\": a domain named \"web\" already exists and it belongs to cluster \"other\"; "
        "kumo never touches it. Rename the VM or remove that domain"}},
  };
  for (const auto& row : rows) {
    INFO(row.name);
    auto hosts = as_applied(desired_from(kBase));
    row.hosts_differ(hosts);
    const DesiredCluster desired = desired_from(edited(kBase, row.edits));
    const DiffResult r = diff(desired, hosts);
    CHECK(messages(r.errors) == row.errors);
    for (const auto& e : r.errors.all()) {
      CHECK(e.severity == Severity::Error);
      CHECK(e.location.known() == row.located);
    }
  }
}

TEST_CASE("a foreign domain holding a VM's name is neither changed nor deleted", "[differ]") {
  const DesiredCluster desired = desired_from(kBase);
  auto hosts = as_applied(desired);
  domain(hosts, "hv1", "web").owner->cluster = "other";
  domain(hosts, "hv1", "web").memory = 4ull << 30;  // would be an update were it ours
  const DiffResult r = diff(desired, hosts);
  CHECK(r.errors.has_errors());
  CHECK_FALSE(find(r, "vm.web"));
  for (const auto& c : r.changes) CHECK(c.address.owner_vm().str() != "vm.web");
}

TEST_CASE("a network is kumo's only with the record of that network and its UUID", "[differ]") {
  const DesiredCluster desired = desired_from(kBase);
  auto hosts = as_applied(desired);
  // kumo_fest_back with front's UUID: front's record does not make it kumo's.
  ObservedNetwork n = network(hosts, "hv1", "kumo_fest_front");
  n.name = "kumo_fest_back";
  n.owner = network_owner(n.name);
  on(hosts, "hv1").networks.push_back(n);
  const DiffResult r = diff(desired, hosts);
  CHECK(messages(r.errors).empty());
  CHECK(listing(r).empty());
}

TEST_CASE("deletes come last, VMs and their volumes before networks", "[differ]") {
  const DesiredCluster desired =
      desired_from(edited(kBase, {{"memory: 512MiB", "memory: 768MiB"}}));
  auto hosts = as_applied(desired_from(kBase));
  // hv1 (looked at first) loses a network, hv2 a VM: the network still goes last.
  add_our_network(hosts, "hv1", "back");
  add_removed_vm(hosts, "hv2", "old");
  const DiffResult r = diff(desired, hosts);
  CHECK(messages(r.errors).empty());
  CHECK(listing(r) ==
        std::vector<std::string>{"update vm.web@hv1", "delete vm.old@hv2",
                                 "delete volume.old/data/data@hv2", "delete volume.old/root@hv2",
                                 "delete volume.old/seed@hv2", "delete network.back@hv1"});
  for (const auto& c : r.changes) {
    if (c.kind() == ResourceKind::Volume) {
      REQUIRE(c.parent);
      CHECK(c.parent->str() == "vm.old");
    }
  }
}

TEST_CASE("unreachable hosts and what other clusters made are left alone", "[differ]") {
  const DesiredCluster desired = desired_from(kBase);
  auto hosts = as_applied(desired);
  // hv2 is unreachable: what it held last time (and its network) is not planned for.
  add_removed_vm(hosts, "hv2", "old");
  on(hosts, "hv2").reachable = false;
  // Another cluster's VM, network and volume on hv1.
  ObservedDomain theirs = domain(hosts, "hv1", "web");
  theirs.name = "api";
  theirs.owner = Ownership{"other", "vm.api", "", std::nullopt, true};
  on(hosts, "hv1").domains.push_back(theirs);
  ObservedNetwork net = network(hosts, "hv1", "kumo_fest_front");
  net.name = "kumo_other_front";
  net.owner = network_owner(net.name);
  on(hosts, "hv1").networks.push_back(net);
  on(hosts, "hv1").volumes.push_back(volume("hv1", "kumo_other_api_data-pg.qcow2", 1 << 30));
  // Volumes outside the host's kumo pool are not kumo's to manage.
  ObservedVolume elsewhere = volume("hv1", "kumo_fest_gone_data-x.qcow2", 1 << 30);
  elsewhere.pool = "backup";
  on(hosts, "hv1").volumes.push_back(elsewhere);
  const DiffResult r = diff(desired, hosts);
  CHECK(messages(r.errors).empty());
  CHECK(listing(r).empty());
}

TEST_CASE("a VM's record decides replacement, live state alone decides updates", "[differ]") {
  const DesiredCluster desired = desired_from(kBase);
  SECTION("a domain without a readable record is replaced: its image cannot be known") {
    auto hosts = as_applied(desired);
    domain(hosts, "hv1", "web").owner->spec.reset();
    const DiffResult r = diff(desired, hosts);
    const auto* c = find(r, "vm.web");
    REQUIRE(c);
    CHECK(c->action == Action::Replace);
    CHECK(attribute_names(*c) ==
          std::vector<std::string>{"image", "user_data", "network_config", "networks"});
    CHECK(attribute(*c, "image")->before == Value());
    // No record, so no recorded text: the new documents are shown whole.
    CHECK(attribute(*c, "user_data")->document);
    CHECK(attribute(*c, "user_data")->before == Value());
  }
  SECTION("NICs recorded differently replace the VM") {
    auto hosts = as_applied(desired);
    domain(hosts, "hv1", "web").owner->spec->nics.front().ip = "10.20.0.99";
    const DiffResult r = diff(desired, hosts);
    const auto* c = find(r, "vm.web");
    REQUIRE(c);
    CHECK(c->action == Action::Replace);
    CHECK(attribute_names(*c) == std::vector<std::string>{"networks"});
    CHECK(attribute(*c, "networks")->before ==
          Value(std::vector<std::string>{"front 10.20.0.99 " + derived_mac("fest", "web", 0)}));
  }
  SECTION("an image URL recorded whole by an older kumo, secrets and all, is the same image") {
    const std::string url = "https://mirror.example/d/deb.qcow2";
    const DesiredCluster by_url = desired_from(
        edited(kBase, {{"{path: /srv/deb.qcow2, checksum: \"sha256:" + std::string(64, 'a') + "\"}",
                        "{url: \"https://alice:s3cret@mirror.example/d/deb.qcow2?token=t0p\", "
                        "checksum_url: \"https://mirror.example/d/SHA256SUMS\"}"}}));
    REQUIRE(by_url.vms.front().image_id == url);  // what kumo records now: nothing secret
    auto hosts = as_applied(by_url);
    auto& spec = *domain(hosts, "hv1", "web").owner->spec;
    spec.image_id = "https://alice:s3cret@mirror.example/d/deb.qcow2?token=t0p";
    CHECK(listing(diff(by_url, hosts)).empty());
    spec.image_id = "https://mirror.example/d/other.qcow2";
    const DiffResult r = diff(by_url, hosts);
    const auto* c = find(r, "vm.web");
    REQUIRE(c);
    CHECK(c->action == Action::Replace);
  }
  SECTION("memory the file changed is not drift, memory changed by hand is") {
    auto hosts = as_applied(desired);
    auto& d = domain(hosts, "hv1", "web");
    d.vcpus = 2;                           // by hand: the record still says 1
    d.owner->spec->memory = 256ull << 20;  // the file said 256 MiB last time
    d.memory = 256ull << 20;
    const DiffResult r = diff(desired, hosts);
    const auto* c = find(r, "vm.web");
    REQUIRE(c);
    CHECK(attribute_names(*c) == std::vector<std::string>{"cpus", "memory"});
    CHECK(drifted(*c) == std::vector<std::string>{"cpus"});
    CHECK(attribute(*c, "memory")->before == Value(std::string("256 MiB")));
    CHECK(attribute(*c, "memory")->after == Value(std::string("512 MiB")));
  }
}

TEST_CASE("changed cloud-init documents are diffed against the masked text the record holds",
          "[differ]") {
  const DesiredCluster desired =
      desired_from(edited(kBase, {{"packages: []", "packages: [curl]"}}));
  auto hosts = as_applied(desired_from(kBase));
  SECTION("recorded: before is the recorded text") {
    const DiffResult r = diff(desired, hosts);
    const auto* vm = find(r, "vm.web");
    REQUIRE(vm);
    const auto* ud = attribute(*vm, "user_data");
    REQUIRE(ud);
    CHECK(ud->document);
    CHECK(ud->forces_replacement);
    CHECK(ud->before == Value(desired_from(kBase).vms.front().user_data_shown));
    CHECK(ud->after == Value(desired.vms.front().user_data_shown));
    CHECK_FALSE(attribute(*vm, "network_config"));  // unchanged
  }
  SECTION("made by a kumo that recorded no text: before is absent, the document shown whole") {
    domain(hosts, "hv1", "web").owner->spec->user_data_shown.clear();
    const DiffResult r = diff(desired, hosts);
    const auto* ud = attribute(*find(r, "vm.web"), "user_data");
    REQUIRE(ud);
    CHECK(std::holds_alternative<std::monostate>(ud->before));
  }
}
