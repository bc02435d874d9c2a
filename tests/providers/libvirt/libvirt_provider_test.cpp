// The libvirt provider against libvirt's own test driver, in process (no daemon).
#include "providers/libvirt/libvirt_provider.h"

#include <algorithm>
#include <future>
#include <vector>

#include <catch2/catch.hpp>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/ownership.h"
#include "test_support.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;

namespace {

const std::string kNodeUri =
    "test://" + std::string(KUMO_SOURCE_DIR) + "/tests/data/libvirt/node.xml";

template <typename T>
const T& named(const std::vector<T>& objects, const std::string& name) {
  const auto it =
      std::find_if(objects.begin(), objects.end(), [&](const T& o) { return o.name == name; });
  INFO("looking for " << name);
  REQUIRE(it != objects.end());
  return *it;
}

// The formula documented in libvirt_provider.h.
int expected_calls(const ObservedHost& host) {
  const auto active_pools = std::count_if(host.pools.begin(), host.pools.end(),
                                          [](const ObservedPool& p) { return p.active; });
  // 18 per host: 17, and the q35 domain capabilities (UEFI, secure boot, TPM).
  return 18 + static_cast<int>(host.domains.size() + host.networks.size() + host.pools.size() +
                               active_pools + host.volumes.size());
}

std::string libvirt_version() {
  unsigned long version = 0;
  virGetVersion(&version, nullptr, nullptr);
  return std::to_string(version / 1000000) + "." + std::to_string(version / 1000 % 1000) + "." +
         std::to_string(version % 1000);
}

}  // namespace

TEST_CASE("a test-driver host is observed whole: domains, networks, pools, volumes, facts",
          "[provider]") {
  const auto host = make_libvirt_provider()->observe({"hv1", kNodeUri, "kumo-images"}, 5s);
  REQUIRE(host.error == "");
  REQUIRE(host.reachable);
  CHECK(host.host == "hv1");
  CHECK(host.uri == kNodeUri);

  CHECK(host.facts.cpus == 8);
  CHECK(host.facts.memory == 16ull << 30);
  CHECK(host.facts.free_memory == 0);  // unknown: the test driver keeps no cells for a node file
  CHECK(host.facts.arch == "i686");    // the test driver's capabilities always say i686
  CHECK_FALSE(host.facts.kvm);         // ... and offer only <domain type='test'>
  CHECK_FALSE(host.facts.hostname.empty());
  CHECK(host.facts.libvirt_version == libvirt_version());

  REQUIRE(host.domains.size() == 3);
  const auto& web0 = named(host.domains, "web-0");
  CHECK(web0.uuid == "4f5d8a38-2c4b-4d4e-9a52-3f1b6f0f2a11");
  CHECK(web0.state == "running");
  CHECK(web0.active);
  CHECK(web0.persistent);
  CHECK_FALSE(web0.autostart);
  CHECK(web0.virt_type == "test");
  CHECK(web0.vcpus == 2);
  CHECK(web0.max_vcpus == 4);
  CHECK(web0.memory == 1ull << 30);
  CHECK(web0.max_memory == 2ull << 30);
  REQUIRE(web0.disks.size() == 2);
  CHECK(web0.disks[0] == ObservedDisk{"vda", "disk",
                                      "/var/lib/kumo/images/kumo_festival_web-0_root.qcow2",
                                      "qcow2", false});
  // A volume disk is resolved to its path through the pool's volumes.
  CHECK(web0.disks[1] == ObservedDisk{"sda", "cdrom",
                                      "/var/lib/kumo/images/kumo_festival_web-0_seed.iso", "raw",
                                      true});
  REQUIRE(web0.nics.size() == 1);
  CHECK(web0.nics[0] ==
        ObservedNic{"kumo_festival_front", "network", "52:54:00:6b:3c:01", "virtio", ""});
  REQUIRE(web0.owner);
  CHECK(*web0.owner ==
        Ownership{"festival", "vm.web-0", "9c1185a5c5e9fc54612808977ee8f548b2258d31",
                  vm_record_from_json(R"({"cpus":2,"memory":1073741824,"image":"debian-12"})")});

  const auto& web1 = named(host.domains, "web-1");
  CHECK(web1.state == "paused");
  CHECK(web1.active);
  CHECK_FALSE(web1.persistent);
  CHECK(web1.vcpus == 2);
  CHECK(web1.memory == 1ull << 30);  // no currentMemory: the maximum
  CHECK(web1.owner == Ownership{"festival", "vm.web-1", "0b7e", std::nullopt});

  const auto& legacy = named(host.domains, "legacy");
  CHECK(legacy.state == "shutoff");
  CHECK_FALSE(legacy.active);
  CHECK(legacy.persistent);
  CHECK_FALSE(legacy.owner);
  CHECK(legacy.nics.at(0).network == "default");

  REQUIRE(host.networks.size() == 2);
  const auto& front = named(host.networks, "kumo_festival_front");
  CHECK(front.active);
  CHECK(front.persistent);
  CHECK(front.forward_mode == "nat");
  CHECK(front.bridge == "kumo-front");
  CHECK(front.ip == "10.20.0.1");
  CHECK(front.prefix == 24);
  CHECK(front.dhcp_start == "10.20.0.100");
  CHECK(front.dhcp_end == "10.20.0.199");
  CHECK(front.dhcp_hosts ==
        std::vector<ObservedDhcpHost>{{"52:54:00:6b:3c:01", "10.20.0.10", "web-0"},
                                      {"52:54:00:6b:3c:11", "10.20.0.11", "web-1"}});
  CHECK(front.domain == "festival.internal");
  CHECK(front.mtu == 9000);
  CHECK(front.owner == Ownership{"festival", "network.front", "", std::nullopt});
  const auto& def = named(host.networks, "default");
  CHECK(def.prefix == 24);  // from its netmask
  CHECK_FALSE(def.mtu);
  CHECK_FALSE(def.owner);

  REQUIRE(host.pools.size() == 2);
  const auto& images = named(host.pools, "kumo-images");
  CHECK(images.type == "dir");
  CHECK(images.path == "/var/lib/kumo/images");
  CHECK(images.active);
  CHECK(images.capacity == 100ull << 30);  // the test driver's fixed pool size
  CHECK(images.available > 0);
  CHECK(images.available < images.capacity);

  REQUIRE(host.volumes.size() == 6);
  const auto& root = named(host.volumes, "kumo_festival_web-0_root.qcow2");
  CHECK(root.pool == "kumo-images");
  CHECK(root.path == "/var/lib/kumo/images/kumo_festival_web-0_root.qcow2");
  CHECK(root.format == "qcow2");
  CHECK(root.capacity == 10ull << 30);
  CHECK(root.allocation == 300ull << 20);
  CHECK(root.backing_path == "/var/lib/kumo/images/kumo-image_sha256-5d1e.qcow2");
  CHECK(root.owner == Ownership{"festival", "volume.web-0/root", "", std::nullopt});
  CHECK(named(host.volumes, "kumo_festival_web-0_seed.iso").owner->address == "volume.web-0/seed");
  // A seed is known from the list (its size is never asked for: what it holds is in the domain).
  CHECK(named(host.volumes, "kumo_festival_web-0_seed.iso").path ==
        "/var/lib/kumo/images/kumo_festival_web-0_seed.iso");
  CHECK(named(host.volumes, "kumo_festival_web-0_seed.iso").capacity == 0);
  CHECK(named(host.volumes, "kumo-image_sha256-5d1e.qcow2").owner ==
        Ownership{"", "image.sha256-5d1e", "", std::nullopt});
  CHECK(named(host.volumes, "random.img").capacity == 5'000'000u);
  CHECK_FALSE(named(host.volumes, "random.img").owner);
  CHECK(named(host.volumes, "notes.txt").pool == "scratch");
  CHECK_FALSE(named(host.volumes, "notes.txt").owner);

  // 3 domains, 2 networks, 2 pools (both active), 6 volumes of which one a seed (no XML).
  CHECK(host.api_calls == expected_calls(host) - 1);
  CHECK(host.api_calls == 18 + 3 + 2 + 2 + 2 + 5);
  CHECK(host.seconds > 0);
}

TEST_CASE("observe_details adds the driver, its version and why there is no KVM, in 3 calls",
          "[provider]") {
  auto provider = make_libvirt_provider();
  const HostTarget target{"hv1", kNodeUri, "kumo-images"};
  const auto plain = provider->observe(target, 5s);
  const auto host = provider->observe_details(target, 5s);
  REQUIRE(host.reachable);
  CHECK_FALSE(plain.facts.detailed);
  CHECK(host.facts.detailed);
  CHECK(plain.facts.hypervisor.empty());
  CHECK(host.facts.hypervisor == "TEST");
  CHECK(host.facts.hypervisor_version == "0.0.2");
  // The test driver offers no KVM and cannot say more (no domain capabilities): the reason
  // comes from its capabilities, the same as plan's.
  CHECK_FALSE(host.facts.kvm);
  CHECK(host.facts.kvm_reason == describe_no_kvm("i686", ""));
  CHECK(plain.facts.kvm_reason == host.facts.kvm_reason);
  CHECK_FALSE(host.facts.nested.has_value());
  CHECK(host.facts.cpu_model.empty());
  CHECK(host.facts.cpu_features.empty());
  CHECK(host.domains.size() == plain.domains.size());
  CHECK(host.api_calls == plain.api_calls + 3);
}

TEST_CASE("autostart, inactive and transient objects are learned from list flags", "[provider]") {
  // test:///default is one in-memory host shared by every connection of the process while one
  // stays open: this connection shapes it, the provider's own connection observes it.
  ConnectHandle conn(virConnectOpen("test:///default"));
  REQUIRE(conn);
  const Ownership owner{"festival", "vm.db-0", "feed", vm_record_from_json(R"({"cpus": 1})")};
  DomainHandle db(virDomainDefineXML(
      conn.get(), ("<domain type='test'><name>db-0</name><metadata>" + owner_metadata_xml(owner) +
                   "</metadata><memory unit='MiB'>512</memory><vcpu>1</vcpu>"
                   "<os><type arch='i686'>hvm</type></os></domain>")
                      .c_str()));
  REQUIRE(db);
  REQUIRE(virDomainSetAutostart(db.get(), 1) == 0);
  NetworkHandle back(virNetworkDefineXML(conn.get(),
                                         "<network><name>kumo_festival_back</name>"
                                         "<bridge name='kumo-back'/></network>"));
  REQUIRE(back);
  REQUIRE(virNetworkSetAutostart(back.get(), 1) == 0);
  NetworkHandle temp(virNetworkCreateXML(conn.get(),
                                         "<network><name>kumo_festival_temp</name>"
                                         "<bridge name='kumo-temp'/></network>"));
  REQUIRE(temp);
  PoolHandle cold(virStoragePoolDefineXML(conn.get(),
                                          "<pool type='dir'><name>cold</name>"
                                          "<target><path>/cold</path></target></pool>",
                                          0));
  REQUIRE(cold);

  const auto host =
      make_libvirt_provider()->observe({"hv1", "test:///default", "default-pool"}, 5s);
  REQUIRE(host.reachable);

  const auto& dbo = named(host.domains, "db-0");
  CHECK(dbo.state == "shutoff");
  CHECK_FALSE(dbo.active);
  CHECK(dbo.persistent);
  CHECK(dbo.autostart);
  CHECK(dbo.owner == owner);
  const auto& test = named(host.domains, "test");  // the driver's own running domain
  CHECK(test.state == "running");
  CHECK_FALSE(test.autostart);
  CHECK_FALSE(test.owner);

  const auto& backo = named(host.networks, "kumo_festival_back");
  CHECK_FALSE(backo.active);
  CHECK(backo.persistent);
  CHECK(backo.autostart);
  CHECK(backo.forward_mode == "");
  const auto& tempo = named(host.networks, "kumo_festival_temp");
  CHECK(tempo.active);
  CHECK_FALSE(tempo.persistent);
  CHECK_FALSE(tempo.autostart);
  CHECK(named(host.networks, "default").active);

  CHECK_FALSE(named(host.pools, "cold").active);  // inactive: its volumes are not listed
  CHECK(named(host.pools, "default-pool").active);
  CHECK(host.volumes.empty());

  // 2 domains, 3 networks, 2 pools of which 1 active, no volumes.
  CHECK(host.api_calls == expected_calls(host));
  CHECK(host.api_calls == 18 + 2 + 3 + 2 + 1 + 0);

  virDomainUndefine(db.get());
  virNetworkUndefine(back.get());
  virNetworkDestroy(temp.get());
  virStoragePoolUndefine(cold.get());
}

TEST_CASE("a serial log and a seed are known from the volume list alone: their path, no XML call",
          "[provider]") {
  ConnectHandle conn(virConnectOpen("test:///default"));
  REQUIRE(conn);
  PoolHandle pool(virStoragePoolLookupByName(conn.get(), "default-pool"));
  REQUIRE(pool);
  std::vector<VolumeHandle> made;
  for (const char* name :
       {"kumo_fest_web-0_serial.log", "kumo_fest_web-0_seed.iso", "kumo_fest_web-0_root.qcow2",
        "notes_serial.log", "notes_seed.iso", "kumo_fest_web-0_data-serial.qcow2"}) {
    made.emplace_back(virStorageVolCreateXML(
        pool.get(),
        ("<volume><name>" + std::string(name) +
         "</name><capacity unit='bytes'>4096</capacity><target><format type='raw'/></target>"
         "</volume>")
            .c_str(),
        0));
    REQUIRE(made.back());
  }
  const auto host =
      make_libvirt_provider()->observe({"hv1", "test:///default", "default-pool"}, 5s);
  REQUIRE(host.reachable);
  for (const char* name : {"kumo_fest_web-0_serial.log", "kumo_fest_web-0_seed.iso"}) {
    INFO(name);
    const auto& v = named(host.volumes, name);
    CHECK(v.pool == "default-pool");
    CHECK(v.path == std::string("/default-pool/") + name);
    CHECK(v.format == "raw");
    CHECK(v.owner == volume_owner(name));
    CHECK(v.capacity == 0);  // never asked for
  }
  // The others are read from their XML: hand-made files named like a log or a seed, and a data
  // disk named serial.
  for (const char* name : {"kumo_fest_web-0_root.qcow2", "notes_serial.log", "notes_seed.iso",
                           "kumo_fest_web-0_data-serial.qcow2"}) {
    INFO(name);
    CHECK(named(host.volumes, name).capacity == 4096);
  }
  CHECK(host.volumes.size() == 6);
  CHECK(host.api_calls == expected_calls(host) - 2);  // the log's and the seed's XML: not asked
  for (auto& v : made) virStorageVolDelete(v.get(), 0);
}

TEST_CASE("many objects are read side by side and come back whole, in libvirt's order",
          "[provider]") {
  // Enough domains and volumes that their XML is fetched several at a time on the connection.
  ConnectHandle conn(virConnectOpen("test:///default"));
  REQUIRE(conn);
  PoolHandle pool(virStoragePoolLookupByName(conn.get(), "default-pool"));
  REQUIRE(pool);
  std::vector<VolumeHandle> volumes;
  std::vector<DomainHandle> domains;
  for (int i = 0; i < 40; ++i) {
    const std::string n = std::to_string(i);
    volumes.emplace_back(
        virStorageVolCreateXML(pool.get(),
                               ("<volume><name>many-" + n + ".qcow2</name><capacity unit='bytes'>" +
                                std::to_string(4096 * (i + 1)) +
                                "</capacity><target><format type='qcow2'/></target></volume>")
                                   .c_str(),
                               0));
    REQUIRE(volumes.back());
    domains.emplace_back(
        virDomainDefineXML(conn.get(), ("<domain type='test'><name>many-" + n + "</name><memory>" +
                                        std::to_string(1024 * (i + 1)) +
                                        "</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>")
                                           .c_str()));
    REQUIRE(domains.back());
  }
  const auto host =
      make_libvirt_provider()->observe({"hv1", "test:///default", "default-pool"}, 5s);
  REQUIRE(host.reachable);
  CHECK(host.api_calls == expected_calls(host));

  // libvirt's own list order, and each object with its own values.
  virDomainPtr* raw_domains = nullptr;
  const auto listed =
      adopt_list<DomainHandle>(raw_domains, virConnectListAllDomains(conn.get(), &raw_domains, 0));
  REQUIRE(host.domains.size() == listed.size());
  for (std::size_t i = 0; i < listed.size(); ++i)
    CHECK(host.domains[i].name == virDomainGetName(listed[i].get()));
  for (int i = 0; i < 40; ++i) {
    const std::string n = std::to_string(i);
    CHECK(named(host.domains, "many-" + n).memory == 1024ull * 1024 * (i + 1));
    CHECK(named(host.volumes, "many-" + n + ".qcow2").capacity == 4096ull * (i + 1));
  }
  for (auto& d : domains) virDomainUndefine(d.get());
  for (auto& v : volumes) virStorageVolDelete(v.get(), 0);
}

TEST_CASE("an unreachable host comes back unreachable with what to check", "[provider]") {
  const std::string uri = "qemu+unix:///system?socket=/nonexistent/sock";
  const auto host = make_libvirt_provider()->observe({"hv1", uri, "default"}, 5s);
  CHECK_FALSE(host.reachable);
  CHECK(
      host.error ==
      "host hv1 (" + uri +
          "): cannot connect to the libvirt socket /nonexistent/sock — is libvirtd running there?");
  CHECK(host.host == "hv1");
  CHECK(host.uri == uri);
  CHECK(host.domains.empty());
  CHECK(host.api_calls == 1);
}

TEST_CASE("a malformed URI comes back unreachable, not as an exception", "[provider]") {
  const auto host =
      make_libvirt_provider()->observe({"hv3", "qemu+ssh://root@hv3 /system", "default"}, 5s);
  CHECK_FALSE(host.reachable);
  CHECK(host.error ==
        "host hv3 (qemu+ssh://root@hv3 /system): malformed URI — check the host's uri in kumo.yaml "
        "(e.g. qemu+ssh://root@hv1/system)");
}

TEST_CASE("a host that never answers is given up on after the timeout", "[provider]") {
  kumo::testing::SilentSocket silent;
  const std::string uri = "qemu+unix:///system?socket=" + silent.path();
  const auto host = make_libvirt_provider()->observe({"hv2", uri, "default"}, 300ms);
  CHECK_FALSE(host.reachable);
  CHECK(host.error ==
        "host hv2 (" + uri + "): timed out after 300ms — is the host up and reachable?");
  CHECK(host.seconds >= 0.3);
  CHECK(host.seconds < 2);
}

TEST_CASE("several hosts are observed at once from several threads", "[provider]") {
  const auto provider = make_libvirt_provider();
  std::vector<std::future<ObservedHost>> results;
  for (int i = 0; i < 6; ++i) {
    const std::string uri = i % 3 == 0 ? kNodeUri
                            : i % 3 == 1
                                ? std::string("test:///default")
                                : std::string("qemu+unix:///system?socket=/nonexistent/sock");
    results.push_back(std::async(std::launch::async, [&provider, uri, i] {
      return provider->observe({"hv" + std::to_string(i), uri, "default"}, 5s);
    }));
  }
  for (int i = 0; i < 6; ++i) {
    const auto host = results[i].get();
    CHECK(host.host == "hv" + std::to_string(i));
    CHECK(host.reachable == (i % 3 != 2));
    if (i % 3 == 0) CHECK(host.domains.size() == 3);
    if (i % 3 == 1) CHECK(named(host.domains, "test").state == "running");
    // The node's seed is known from the list (no XML); test:///default has no volumes.
    if (host.reachable) CHECK(host.api_calls == expected_calls(host) - (i % 3 == 0 ? 1 : 0));
  }
}

TEST_CASE("the masked cloud-init documents a plan diffs against live in the domain's metadata",
          "[provider]") {
  ConnectHandle conn(virConnectOpen("test:///default"));
  REQUIRE(conn);
  VmRecord record;
  record.user_data_sha256 = std::string(64, 'a');
  record.user_data_shown =
      "#cloud-config\nwrite_files:\n  - content: \"a < b & 'c' ]]> (sensitive)\"\n"
      "    path: /etc/x\n\t\xe9\x9b\xb2\n";
  record.network_config_shown = "version: 2\n";
  const Ownership owner{"festival", "vm.docs-0", "feed", record};
  DomainHandle dom(virDomainDefineXML(
      conn.get(), ("<domain type='test'><name>docs-0</name><metadata>" + owner_metadata_xml(owner) +
                   "</metadata><memory unit='MiB'>512</memory><vcpu>1</vcpu>"
                   "<os><type arch='i686'>hvm</type></os></domain>")
                      .c_str()));
  REQUIRE(dom);
  const auto host =
      make_libvirt_provider()->observe({"hv1", "test:///default", "default-pool"}, 5s);
  REQUIRE(host.reachable);
  const auto& seen = named(host.domains, "docs-0");
  REQUIRE(seen.owner);
  REQUIRE(seen.owner->spec);
  CHECK(seen.owner->spec->user_data_shown == record.user_data_shown);
  CHECK(seen.owner->spec->network_config_shown == "version: 2\n");
  REQUIRE(virDomainUndefine(dom.get()) == 0);
}

TEST_CASE("a scoped read fetches only the domains and volumes it names, and counts the rest",
          "[provider]") {
  const auto full = make_libvirt_provider()->observe({"hv1", kNodeUri, "kumo-images"}, 5s);
  REQUIRE(full.reachable);
  CHECK_FALSE(full.scoped);
  auto scope = std::make_shared<ReadScope>();
  scope->cluster = "festival";
  scope->names = {"web-0"};
  HostTarget target{"hv1", kNodeUri, "kumo-images"};
  target.scope = scope;
  auto host = make_libvirt_provider()->observe(target, 5s);
  REQUIRE(host.error == "");
  REQUIRE(host.reachable);
  REQUIRE(host.domains.size() == 1);
  // The domain as a full read sees it, its disks resolved from the volumes in scope.
  const auto& web0 = host.domains[0];
  CHECK(web0.name == "web-0");
  CHECK(web0.state == "running");
  CHECK(web0.disks == named(full.domains, "web-0").disks);
  CHECK(web0.owner == named(full.domains, "web-0").owner);
  std::vector<std::string> volumes;
  for (const auto& v : host.volumes) volumes.push_back(v.name);
  std::sort(volumes.begin(), volumes.end());
  CHECK(volumes ==
        std::vector<std::string>{"kumo_festival_web-0_root.qcow2", "kumo_festival_web-0_seed.iso"});
  CHECK(named(host.volumes, "kumo_festival_web-0_root.qcow2").capacity ==
        named(full.volumes, "kumo_festival_web-0_root.qcow2").capacity);
  // Networks and pools whole; what the host has in all, counted from the lists.
  CHECK(host.networks.size() == full.networks.size());
  CHECK(host.pools.size() == full.pools.size());
  REQUIRE(host.scoped);
  CHECK(host.scoped->domains == 3);
  CHECK(host.scoped->volumes == static_cast<int>(full.volumes.size()));
  // One XML fetch per object read (the seed aside, known from the list), none for the others.
  CHECK(host.api_calls == expected_calls(host) - 1);
  CHECK(host.api_calls == full.api_calls - 2 - 4);

  // A group's instances (web-<n>), never another name; a cluster's volumes only.
  scope->names.clear();
  scope->groups = {"web"};
  host = make_libvirt_provider()->observe(target, 5s);
  REQUIRE(host.reachable);
  std::vector<std::string> domains;
  for (const auto& d : host.domains) domains.push_back(d.name);
  std::sort(domains.begin(), domains.end());
  CHECK(domains == std::vector<std::string>{"web-0", "web-1"});
  CHECK(host.volumes.size() == 3);
  scope->cluster = "other";
  host = make_libvirt_provider()->observe(target, 5s);
  CHECK(host.volumes.empty());
  // Nothing named: nothing fetched, and the states call is not made.
  scope->groups.clear();
  host = make_libvirt_provider()->observe(target, 5s);
  REQUIRE(host.reachable);
  CHECK(host.domains.empty());
  CHECK(host.api_calls == expected_calls(host) - 1);
}
