// The libvirt HostSession against libvirt's test driver, in process (no daemon).
//
// test:///default keeps one state per process, shared by every connection open at the same time
// and reset when the last one closes. Each test opens its own session and closes it at the end,
// so each starts from the driver's default host: pool "default-pool" (a dir pool at
// /default-pool), network "default" and a running domain "test". A second, raw connection opened
// while a session is open sees and changes the same objects: the tests use one to change things
// behind the session's back.
//
// The test driver has no stream or agent support (virStorageVolUpload, virStorageVolDownload,
// virDomainQemuAgentCommand): for those the tests check the session fails cleanly.
#include "providers/libvirt/session.h"

#include <algorithm>
#include <future>
#include <stdexcept>
#include <vector>

#include <libvirt/virterror.h>
#include <catch2/catch.hpp>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/xml_build.h"
#include "providers/ownership.h"
#include "test_support.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using kumo::testing::host_error;

namespace {

const HostTarget kHost{"hv1", "test:///default", "default-pool"};
const std::string kLabel = "host hv1 (test:///default): ";

std::unique_ptr<HostSession> open_session(const HostTarget& host = kHost) {
  return make_libvirt_connector()->connect(host, 5s);
}

// A connection of the test's own, sharing the session's state.
ConnectHandle side_connection() {
  ensure_libvirt_ready();
  ConnectHandle conn(virConnectOpen("test:///default"));
  REQUIRE(conn);
  return conn;
}

NetworkSpec front_network() {
  NetworkSpec spec;
  spec.name = "kumo_festival_front";
  spec.mode = "nat";
  spec.bridge = "kb-festival-front";
  spec.address = "10.20.0.1";
  spec.prefix = 24;
  spec.dhcp_start = "10.20.0.100";
  spec.dhcp_end = "10.20.0.199";
  spec.dhcp_hosts = {{"52:54:00:6b:3c:01", "10.20.0.10", "web-0"},
                     {"52:54:00:6b:3c:11", "10.20.0.11", "web-1"}};
  spec.domain = "festival.test";
  spec.mtu = 1400;
  return spec;
}

DomainSpec web_domain() {
  DomainSpec spec;
  spec.name = "web-0";
  spec.virt_type = "kvm";
  spec.vcpus = 2;
  spec.memory = 1ull << 30;
  spec.disks = {{"kumo_festival_web-0_root.qcow2", "qcow2", "vda", false, ""},
                {"kumo_festival_web-0_seed.iso", "raw", "vdb", true, ""}};
  spec.nics = {{"default", "", "52:54:00:6b:3c:01", "", "", "virtio", 0}};
  spec.serial_log = "/default-pool/kumo_festival_web-0_serial.log";
  spec.owner = {"festival", "vm.web-0", "9c1185a5",
                vm_record_from_json(R"({"cpus":2,"memory":1073741824,"image":"debian-12"})")};
  return spec;
}

}  // namespace

TEST_CASE("a session opens on the host's pool and knows its directory", "[session]") {
  const auto session = open_session();
  CHECK(session->target().name == "hv1");
  CHECK(session->target().pool == "default-pool");
  CHECK(session->pool_path() == "/default-pool");
}

TEST_CASE(
    "a session's first use of its pool says, naming host and pool, that it is missing or "
    "stopped",
    "[session]") {
  // It opens all the same: a pool kumo makes may not exist yet (lock_pools.h).
  const auto missing = open_session({"hv1", "test:///default", "default"});
  CHECK(host_error([&] { missing->volume("x.qcow2"); }) ==
        kLabel +
            "storage pool \"default\" not found — create it, list it under "
            "hosts.hv1.pools for kumo to make, or set pool: in kumo.yaml");

  const auto side = side_connection();
  const PoolHandle pool(virStoragePoolLookupByName(side.get(), "default-pool"));
  REQUIRE(virStoragePoolDestroy(pool.get()) == 0);
  const auto stopped = open_session();
  CHECK(host_error([&] { stopped->volume("x.qcow2"); }) ==
        kLabel +
            "storage pool \"default-pool\" is not active — start it (virsh pool-start "
            "default-pool; virsh pool-autostart default-pool) or set pool: in kumo.yaml");
}

TEST_CASE("a pool found active is not asked again, and stopped later the next call says so",
          "[session]") {
  const auto session = open_session();
  CHECK_FALSE(session->volume("x.qcow2"));  // first use: found, and active
  const auto side = side_connection();
  const PoolHandle pool(virStoragePoolLookupByName(side.get(), "default-pool"));
  REQUIRE(virStoragePoolDestroy(pool.get()) == 0);
  const std::string error = host_error([&] { session->volume("x.qcow2"); });
  CHECK_THAT(error, StartsWith(kLabel));
  CHECK_THAT(error, Catch::Matchers::Contains("x.qcow2"));
  CHECK_THAT(error, Catch::Matchers::Contains("not active"));
  REQUIRE(virStoragePoolCreate(pool.get(), 0) == 0);
}

TEST_CASE("a session on a host that cannot be opened fails with the connection's message",
          "[session]") {
  const HostTarget missing{"hv2", "test:///nonexistent/node.xml", "default-pool"};
  CHECK_THAT(host_error([&] { open_session(missing); }),
             StartsWith("host hv2 (test:///nonexistent/node.xml): "));
  CHECK_THAT(host_error([] {
               open_session({"hv3", "", "default-pool"});
             }),
             StartsWith("host hv3 (): no URI"));
}

TEST_CASE("volumes are created, read back, and deleted (twice is fine)", "[session]") {
  const auto session = open_session();
  const std::string name = "kumo_festival_web-0_data-logs.qcow2";
  CHECK_FALSE(session->volume(name));

  session->create_volume({name, 10ull << 30, "qcow2", "", ""});
  const auto volume = session->volume(name);
  REQUIRE(volume);
  CHECK(volume->pool == "default-pool");
  CHECK(volume->name == name);
  CHECK(volume->path == "/default-pool/" + name);
  CHECK(volume->format == "qcow2");
  CHECK(volume->capacity == 10ull << 30);
  CHECK(volume->allocation == 0);
  CHECK(volume->owner == Ownership{"festival", "volume.web-0/data/logs", "", std::nullopt});

  CHECK(host_error([&] {
          session->create_volume({name, 1, "qcow2", "", ""});
        }) == kLabel + "creating volume " + name +
                  " in storage pool \"default-pool\" failed: operation failed: storage vol "
                  "already exists");

  session->delete_volume(name);
  CHECK_FALSE(session->volume(name));
  session->delete_volume(name);
}

TEST_CASE("a volume read again answers as a fresh lookup would, made anew or gone behind its back",
          "[session]") {
  // The session reads a volume it read before through the handle it kept (one call, not a
  // lookup and a read): what it says must be what a new lookup would find.
  const auto session = open_session();
  const auto side = side_connection();
  const PoolHandle pool(virStoragePoolLookupByName(side.get(), "default-pool"));
  REQUIRE(pool);
  const std::string name = "kumo-lock_festival";
  session->create_volume({name, 1ull << 20, "raw", "", ""});
  REQUIRE(session->volume(name)->capacity == 1ull << 20);

  auto side_delete = [&] {
    const VolumeHandle v(virStorageVolLookupByName(pool.get(), name.c_str()));
    REQUIRE(v);
    REQUIRE(virStorageVolDelete(v.get(), 0) == 0);
  };
  side_delete();
  CHECK_FALSE(session->volume(name));  // gone: not the old answer

  const std::string xml = volume_xml({name, 2ull << 20, "raw", "", ""});
  const VolumeHandle again(virStorageVolCreateXML(pool.get(), xml.c_str(), 0));
  REQUIRE(again);
  const auto read = session->volume(name);  // made anew: the new one's
  REQUIRE(read);
  CHECK(read->capacity == 2ull << 20);

  session->delete_volume(name);  // through the handle too
  const VolumeHandle left(virStorageVolLookupByName(pool.get(), name.c_str()));
  CHECK_FALSE(left);
  virResetLastError();
  CHECK_FALSE(session->volume(name));
  session->delete_volume(name);  // gone already: nothing to do
}

TEST_CASE("an overlay volume keeps its backing file", "[session]") {
  const auto session = open_session();
  const std::string base = "kumo-image_sha256-ab12.qcow2";
  const std::string root = "kumo_festival_web-0_root.qcow2";
  session->create_volume({base, 2ull << 30, "qcow2", "", ""});
  session->create_volume({root, 20ull << 30, "qcow2", "/default-pool/" + base, "qcow2"});
  const auto volume = session->volume(root);
  REQUIRE(volume);
  CHECK(volume->backing_path == "/default-pool/" + base);
  CHECK(volume->capacity == 20ull << 30);
}

TEST_CASE("an upload the host cannot take fails cleanly and leaves no volume behind", "[session]") {
  // The test driver has no virStorageVolUpload: the session creates the volume, fails to start
  // the stream, deletes the volume again and says which host, volume and call.
  const auto session = open_session();
  const std::string name = "kumo-image_sha256-cd34.qcow2";
  int reads = 0, ticks = 0;
  const ByteReader reader = [&](char*, std::size_t) -> std::size_t {
    ++reads;
    return 0;
  };
  const TransferTick tick = [&](const Transfer&) { ++ticks; };
  CHECK(host_error([&] { session->upload_volume(name, 8u << 20, reader, tick); }) ==
        kLabel + "uploading to volume " + name +
            " in storage pool \"default-pool\" failed: this function is not supported by the "
            "connection driver: virStorageVolUpload");
  CHECK(reads == 0);
  CHECK(ticks == 0);
  CHECK_FALSE(session->volume(name));
}

TEST_CASE("an empty upload needs no stream, a source with more bytes than announced is refused",
          "[session]") {
  const auto session = open_session();
  const ByteReader empty = [](char*, std::size_t) -> std::size_t { return 0; };
  session->upload_volume("empty.raw", 0, empty, {});
  const auto volume = session->volume("empty.raw");
  REQUIRE(volume);
  CHECK(volume->format == "raw");
  CHECK(volume->capacity == 0);

  const ByteReader endless = [](char* buf, std::size_t max) -> std::size_t {
    std::fill(buf, buf + max, 'x');
    return max;
  };
  CHECK(host_error([&] { session->upload_volume("long.raw", 0, endless, {}); }) ==
        kLabel +
            "uploading to volume long.raw in storage pool \"default-pool\" failed: the source "
            "holds more than the 0 bytes announced");
  CHECK_FALSE(session->volume("long.raw"));
}

TEST_CASE("an uploaded volume (a seed, a base image) is readable by its owner only", "[session]") {
  const auto session = open_session();
  const ByteReader empty = [](char*, std::size_t) -> std::size_t { return 0; };
  session->upload_volume("kumo_festival_web-0_seed.iso", 0, empty, {});
  const auto conn = side_connection();
  const PoolHandle pool(virStoragePoolLookupByName(conn.get(), "default-pool"));
  REQUIRE(pool);
  const VolumeHandle vol(virStorageVolLookupByName(pool.get(), "kumo_festival_web-0_seed.iso"));
  REQUIRE(vol);
  const std::string xml = adopt_string(virStorageVolGetXMLDesc(vol.get(), 0));
  CHECK_THAT(xml, Contains("<mode>0600</mode>"));
}

TEST_CASE("the tail of a pool file is best effort: \"\" when it is missing or unreadable",
          "[session]") {
  const auto session = open_session();
  CHECK(session->tail_pool_file("kumo_festival_web-0_serial.log", 4096) == "");
  // The test driver has no virStorageVolDownload: still "", never an exception.
  session->create_volume({"kumo_festival_web-0_serial.log", 1 << 20, "raw", "", ""});
  CHECK(session->tail_pool_file("kumo_festival_web-0_serial.log", 4096) == "");
  CHECK(session->tail_pool_file("kumo_festival_web-0_serial.log", 0) == "");
}

TEST_CASE("a network is defined, started and autostarted, and reads back whole", "[session]") {
  const auto session = open_session();
  const auto spec = front_network();
  CHECK_FALSE(session->network(spec.name));
  session->define_network(spec);

  const auto network = session->network(spec.name);
  REQUIRE(network);
  CHECK(network->name == spec.name);
  CHECK_FALSE(network->uuid.empty());
  CHECK(network->active);
  CHECK(network->persistent);
  CHECK(network->autostart);
  CHECK(network->forward_mode == "nat");
  CHECK(network->bridge == "kb-festival-front");
  CHECK(network->ip == "10.20.0.1");
  CHECK(network->prefix == 24);
  CHECK(network->dhcp_start == "10.20.0.100");
  CHECK(network->dhcp_end == "10.20.0.199");
  CHECK(network->dhcp_hosts ==
        std::vector<ObservedDhcpHost>{{"52:54:00:6b:3c:01", "10.20.0.10", "web-0"},
                                      {"52:54:00:6b:3c:11", "10.20.0.11", "web-1"}});
  CHECK(network->domain == "festival.test");
  CHECK(network->mtu == 1400);
  CHECK(network->owner == Ownership{"festival", "network.front", "", std::nullopt});

  CHECK_THAT(host_error([&] { session->define_network(spec); }),
             StartsWith(kLabel + "defining network kumo_festival_front failed: "));
}

TEST_CASE("networks in bridge and isolated mode are defined too", "[session]") {
  const auto session = open_session();
  NetworkSpec lan;
  lan.name = "kumo_festival_lan";
  lan.mode = "bridge";
  lan.bridge = "br0";
  session->define_network(lan);
  const auto bridged = session->network(lan.name);
  REQUIRE(bridged);
  CHECK(bridged->forward_mode == "bridge");
  CHECK(bridged->bridge == "br0");
  CHECK(bridged->active);

  auto back = front_network();
  back.name = "kumo_festival_back";
  back.mode = "isolated";
  back.bridge = "kb-festival-back";
  back.address = "10.30.0.1";
  back.dhcp_start = back.dhcp_end = "";
  back.dhcp_hosts.clear();
  session->define_network(back);
  const auto isolated = session->network(back.name);
  REQUIRE(isolated);
  CHECK(isolated->forward_mode == "");
  CHECK(isolated->ip == "10.30.0.1");
  CHECK(isolated->dhcp_hosts.empty());
}

TEST_CASE("a stopped network is started again, and its autostart set either way", "[session]") {
  const auto session = open_session();
  const auto spec = front_network();
  session->define_network(spec);

  const auto side = side_connection();
  const NetworkHandle net(virNetworkLookupByName(side.get(), spec.name.c_str()));
  REQUIRE(virNetworkDestroy(net.get()) == 0);
  CHECK_FALSE(session->network(spec.name)->active);

  session->start_network(spec.name, false);
  CHECK(session->network(spec.name)->active);
  CHECK_FALSE(session->network(spec.name)->autostart);
  session->start_network(spec.name, true);  // already running: only autostart changes
  CHECK(session->network(spec.name)->autostart);

  CHECK(host_error([&] { session->start_network("kumo_festival_gone", true); }) ==
        kLabel +
            "starting network kumo_festival_gone failed: no such network — was it deleted "
            "outside kumo? `kumo apply` defines it again");
}

TEST_CASE("a network is stopped and undefined, a missing one is no error", "[session]") {
  const auto session = open_session();
  const auto spec = front_network();
  session->define_network(spec);
  session->delete_network(spec.name);
  CHECK_FALSE(session->network(spec.name));
  session->delete_network(spec.name);

  // Stopped already: only undefined.
  session->define_network(spec);
  const auto side = side_connection();
  const NetworkHandle net(virNetworkLookupByName(side.get(), spec.name.c_str()));
  REQUIRE(virNetworkDestroy(net.get()) == 0);
  session->delete_network(spec.name);
  CHECK_FALSE(session->network(spec.name));
}

TEST_CASE("a domain is defined and reads back with kumo's owner mark", "[session]") {
  const auto session = open_session();
  const auto spec = web_domain();
  session->create_volume({spec.disks[0].volume, 20ull << 30, "qcow2", "", ""});
  CHECK_FALSE(session->domain(spec.name));
  session->define_domain(spec);

  const auto domain = session->domain(spec.name);
  REQUIRE(domain);
  CHECK(domain->name == "web-0");
  CHECK_FALSE(domain->uuid.empty());
  CHECK(domain->state == "shutoff");
  CHECK_FALSE(domain->active);
  CHECK(domain->persistent);
  CHECK(domain->autostart);
  CHECK(domain->virt_type == "kvm");
  CHECK(domain->vcpus == 2);
  CHECK(domain->memory == 1ull << 30);
  CHECK(domain->max_memory == 1ull << 30);
  REQUIRE(domain->owner);
  CHECK(*domain->owner == spec.owner);
  // A disk's volume is resolved to its path through the pool; one not there (the seed was never
  // created) reads as pool/volume.
  CHECK(domain->disks ==
        std::vector<ObservedDisk>{
            {"vda", "disk", "/default-pool/kumo_festival_web-0_root.qcow2", "qcow2", false},
            {"vdb", "disk", "default-pool/kumo_festival_web-0_seed.iso", "raw", true}});
  CHECK(domain->nics ==
        std::vector<ObservedNic>{{"default", "network", "52:54:00:6b:3c:01", "virtio", ""}});
  // Its identity alone (what a delete checks) says the same, and a missing one is nullopt.
  const auto id = session->domain_identity(spec.name);
  REQUIRE(id);
  CHECK(id->uuid == domain->uuid);
  REQUIRE(id->owner);
  CHECK(*id->owner == spec.owner);
  CHECK_FALSE(session->domain_identity("nope"));
  const auto builtin = session->domain_identity("test");
  REQUIRE(builtin);
  CHECK_FALSE(builtin->owner);
  CHECK(builtin->uuid == session->domain("test")->uuid);
}

TEST_CASE("a domain is redefined in place, keeping its UUID", "[session]") {
  const auto session = open_session();
  auto spec = web_domain();
  session->define_domain(spec);
  const auto before = session->domain(spec.name);
  REQUIRE(before);

  spec.memory = 2ull << 30;
  spec.vcpus = 4;
  spec.autostart = false;
  spec.owner.spec_hash = "0b7e";
  session->define_domain(spec);
  const auto after = session->domain(spec.name);
  REQUIRE(after);
  CHECK(after->uuid == before->uuid);
  CHECK(after->memory == 2ull << 30);
  CHECK(after->vcpus == 4);
  CHECK_FALSE(after->autostart);
  CHECK(after->owner->spec_hash == "0b7e");
}

TEST_CASE("a domain is started (once), gets addresses, and its autostart follows", "[session]") {
  const auto session = open_session();
  const auto spec = web_domain();
  session->define_domain(spec);
  CHECK(session->addresses(spec.name).empty());  // not running: nothing answers

  session->start_domain(spec.name);
  session->start_domain(spec.name);  // running already: nothing to do
  const auto domain = session->domain(spec.name);
  REQUIRE(domain);
  CHECK(domain->state == "running");
  CHECK(domain->active);

  const auto addresses = session->addresses(spec.name);
  REQUIRE_FALSE(addresses.empty());
  for (const auto& address : addresses) {
    CHECK_FALSE(address.ip.rfind("127.", 0) == 0);
    CHECK(address.ip != "::1");
    // Each address names its interface's MAC (lower case: NICs are matched by it) and source.
    CHECK(address.mac.size() == 17);
    CHECK(address.mac.find_first_of("ABCDEF") == std::string::npos);
    CHECK((address.source == "agent" || address.source == "lease"));
  }
  CHECK(session->addresses("nope").empty());

  session->set_domain_autostart(spec.name, false);
  CHECK_FALSE(session->domain(spec.name)->autostart);
  session->set_domain_autostart(spec.name, true);
  CHECK(session->domain(spec.name)->autostart);

  CHECK(host_error([&] { session->start_domain("nope"); }) ==
        kLabel +
            "starting domain nope failed: no such domain — was it deleted outside kumo? `kumo "
            "apply` defines it again");
  CHECK_THAT(host_error([&] { session->set_domain_autostart("nope", true); }),
             StartsWith(kLabel + "setting autostart of domain nope failed: no such domain"));
}

TEST_CASE("a domain is deleted running or not, a missing one is no error", "[session]") {
  const auto session = open_session();
  const auto spec = web_domain();
  session->define_domain(spec);
  session->start_domain(spec.name);
  session->delete_domain(spec.name);
  CHECK_FALSE(session->domain(spec.name));
  session->delete_domain(spec.name);

  session->define_domain(spec);
  session->delete_domain(spec.name);
  CHECK_FALSE(session->domain(spec.name));

  // The test driver's own running domain, not made by kumo: read back without an owner.
  const auto builtin = session->domain("test");
  REQUIRE(builtin);
  CHECK(builtin->state == "running");
  CHECK_FALSE(builtin->owner);
  session->delete_domain("test");
  CHECK_FALSE(session->domain("test"));

  // A transient domain (created, never defined) is gone once stopped.
  const auto side = side_connection();
  auto transient = web_domain();
  transient.name = "web-9";
  const DomainHandle created(
      virDomainCreateXML(side.get(), domain_xml(transient, "default-pool", "").c_str(), 0));
  REQUIRE(created);
  REQUIRE(session->domain("web-9"));
  CHECK_FALSE(session->domain("web-9")->persistent);
  session->delete_domain("web-9");
  CHECK_FALSE(session->domain_identity("web-9"));
}

TEST_CASE("a checked delete deletes only what its check accepts, running or not", "[session]") {
  const auto session = open_session();
  const auto spec = web_domain();
  session->define_domain(spec);
  session->start_domain(spec.name);
  const std::string uuid = session->domain(spec.name)->uuid;
  // Refused: the check's exception comes through, and the domain runs on as it was.
  CHECK_THROWS_WITH(
      session->delete_domain_if(
          spec.name, [](const DomainIdentity&) { throw HostError("not this cluster's"); }),
      "not this cluster's");
  REQUIRE(session->domain(spec.name));
  CHECK(session->domain(spec.name)->active);
  // Accepted: the check saw its UUID and owner, and it is gone, stopped first.
  DomainIdentity seen;
  CHECK(session->delete_domain_if(spec.name, [&](const DomainIdentity& id) { seen = id; }));
  CHECK(seen.uuid == uuid);
  REQUIRE(seen.owner);
  CHECK(*seen.owner == spec.owner);
  CHECK_FALSE(session->domain(spec.name));
  // Gone: false, and no check.
  bool asked = false;
  CHECK_FALSE(session->delete_domain_if(spec.name, [&](const DomainIdentity&) { asked = true; }));
  CHECK_FALSE(asked);
  // Defined, not running.
  session->define_domain(spec);
  CHECK(session->delete_domain_if(spec.name, [](const DomainIdentity&) {}));
  CHECK_FALSE(session->domain(spec.name));
}

TEST_CASE("a guest agent that cannot answer is a HostError naming host and domain", "[session]") {
  const auto session = open_session();
  const auto spec = web_domain();
  session->define_domain(spec);
  session->start_domain(spec.name);
  const nlohmann::json ping = {{"execute", "guest-ping"}};
  CHECK(host_error([&] { session->agent_command(spec.name, ping, 5s); }) ==
        kLabel +
            "guest agent of web-0 did not answer: this function is not supported by the "
            "connection driver: virDomainQemuAgentCommand");
  CHECK(host_error([&] { session->agent_command("nope", ping, 0s); }) ==
        kLabel + "guest agent of nope did not answer: domain nope does not exist");
}

TEST_CASE("one session serves several threads at once", "[session]") {
  const auto session = open_session();
  std::vector<std::future<void>> workers;
  for (int t = 0; t < 4; ++t) {
    workers.push_back(std::async(std::launch::async, [&session, t] {
      for (int i = 0; i < 5; ++i) {
        const std::string name = "vol-" + std::to_string(t) + "-" + std::to_string(i) + ".qcow2";
        session->create_volume({name, 1 << 20, "qcow2", "", ""});
        // Catch's assertions are not thread safe: a failure here is an exception for get().
        if (!session->volume(name)) throw std::runtime_error(name + " was not created");
        session->tail_pool_file(name, 1024);
        auto domain = web_domain();
        domain.name = "vm-" + std::to_string(t) + "-" + std::to_string(i);
        session->define_domain(domain);
        session->start_domain(domain.name);
        session->delete_domain(domain.name);
        session->delete_volume(name);
        // Missing ones refresh the pool first, threads at once sharing a refresh: no error.
        session->delete_volume("never-" + name);
      }
    }));
  }
  for (auto& worker : workers) worker.get();
  CHECK_FALSE(session->volume("vol-0-0.qcow2"));
  CHECK_FALSE(session->domain("vm-3-4"));
}

TEST_CASE("each test starts from the test driver's default host", "[session]") {
  // The state of test:///default lives only while a connection is open: objects made by the
  // tests above are gone, the default ones are back.
  const auto session = open_session();
  CHECK(session->domain("test"));
  CHECK_FALSE(session->domain("web-0"));
  CHECK_FALSE(session->network("kumo_festival_front"));
  CHECK(session->network("default"));
}

TEST_CASE("a domain is defined with headroom: current vCPUs and memory below the maximums",
          "[session]") {
  const auto session = open_session();
  auto spec = web_domain();
  spec.max_vcpus = 4;
  spec.max_memory = 2ull << 30;
  session->define_domain(spec);
  const auto d = session->domain(spec.name);
  REQUIRE(d);
  CHECK(d->vcpus == 2);
  CHECK(d->max_vcpus == 4);
  CHECK(d->memory == 1ull << 30);
  CHECK(d->max_memory == 2ull << 30);
}

TEST_CASE("vCPUs and memory of a running domain change live and in its definition", "[session]") {
  const auto session = open_session();
  auto spec = web_domain();
  spec.max_vcpus = 4;
  spec.max_memory = 2ull << 30;
  session->define_domain(spec);
  session->start_domain(spec.name);
  session->set_domain_memory(spec.name, 1536ull << 20);
  session->set_domain_vcpus(spec.name, 3);    // the agent part fails quietly: no agent here
  const auto d = session->domain(spec.name);  // the persistent definition
  REQUIRE(d);
  CHECK(d->memory == 1536ull << 20);
  CHECK(d->vcpus == 3);
  CHECK(d->max_memory == 2ull << 30);
  // Beyond the maximum: libvirt refuses, and the error names host and domain.
  CHECK_THAT(host_error([&] { session->set_domain_memory(spec.name, 3ull << 30); }),
             StartsWith(kLabel + "setting the memory of domain web-0 failed: "));
  CHECK_THAT(host_error([&] { session->set_domain_vcpus("nope", 2); }),
             StartsWith(kLabel + "setting vCPUs of domain nope failed: no such domain"));
}

TEST_CASE("a domain shuts down on request, a stopped one needs nothing", "[session]") {
  const auto session = open_session();
  const auto spec = web_domain();
  session->define_domain(spec);
  session->start_domain(spec.name);
  CHECK(session->shutdown_domain(spec.name, 5s));
  CHECK_FALSE(session->domain(spec.name)->active);
  CHECK(session->shutdown_domain(spec.name, 5s));
}

TEST_CASE("DHCP and DNS host entries change in the running network and its definition",
          "[session]") {
  const auto session = open_session();
  auto spec = front_network();
  spec.dns_hosts = {{"10.20.0.50", {"www"}}};
  session->define_network(spec);
  auto before = session->network(spec.name);
  REQUIRE(before);
  CHECK(before->dns_hosts ==
        std::vector<ObservedDnsHost>{{"10.20.0.10", {"web-0", "web-0.festival.test"}},
                                     {"10.20.0.11", {"web-1", "web-1.festival.test"}},
                                     {"10.20.0.50", {"www", "www.festival.test"}}});
  NetworkHostsChange change;
  change.dhcp_remove = {spec.dhcp_hosts[1]};
  change.dns_remove = {{"10.20.0.11", {"web-1", "web-1.festival.test"}},
                       {"10.20.0.50", {"www", "www.festival.test"}}};
  change.dhcp_add = {{"52:54:00:6b:3c:21", "10.20.0.12", "web-2"}};
  change.dns_add = {{"10.20.0.12", {"web-2", "web-2.festival.test"}},
                    {"10.20.0.60", {"www", "www.festival.test"}}};
  session->update_network_hosts(spec.name, change);
  const auto after = session->network(spec.name);
  REQUIRE(after);
  CHECK(after->uuid == before->uuid);
  CHECK(after->active);
  CHECK(after->dhcp_hosts ==
        std::vector<ObservedDhcpHost>{{"52:54:00:6b:3c:01", "10.20.0.10", "web-0"},
                                      {"52:54:00:6b:3c:21", "10.20.0.12", "web-2"}});
  CHECK(after->dns_hosts ==
        std::vector<ObservedDnsHost>{{"10.20.0.10", {"web-0", "web-0.festival.test"}},
                                     {"10.20.0.12", {"web-2", "web-2.festival.test"}},
                                     {"10.20.0.60", {"www", "www.festival.test"}}});
  // An entry that is not there cannot be removed: the error names host, entry and network.
  NetworkHostsChange missing;
  missing.dhcp_remove = {{"52:54:00:00:00:99", "10.20.0.99", "ghost"}};
  CHECK_THAT(host_error([&] { session->update_network_hosts(spec.name, missing); }),
             StartsWith(kLabel + "removing the DHCP entry of 52:54:00:00:00:99 from network "
                                 "kumo_festival_front failed: "));
}

TEST_CASE("an exclusive volume is not created over an existing one", "[session]") {
  const auto session = open_session();
  session->create_volume({"kumo-lock_festival", 0, "raw", "", ""});
  CHECK_FALSE(session->create_volume_exclusive("kumo-lock_festival", "{\"token\": \"x\"}"));
  // A new one needs a stream for its content, which the test driver lacks: the failure is clean
  // and leaves no volume behind.
  CHECK_THAT(host_error([&] { session->create_volume_exclusive("kumo-lock_other", "{}"); }),
             StartsWith(kLabel + "writing volume kumo-lock_other in storage pool"));
  CHECK_FALSE(session->volume("kumo-lock_other"));
}

TEST_CASE("a volume grows, a disk of a domain the driver cannot resize fails naming it",
          "[session]") {
  const auto session = open_session();
  session->create_volume({"kumo_festival_web-0_data-data.qcow2", 1ull << 30, "qcow2", "", ""});
  try {
    session->resize_volume("kumo_festival_web-0_data-data.qcow2", 2ull << 30);
    CHECK(session->volume("kumo_festival_web-0_data-data.qcow2")->capacity == 2ull << 30);
  } catch (const HostError& e) {
    CHECK_THAT(e.what(), StartsWith(kLabel + "growing volume kumo_festival_web-0_data-data.qcow2"));
  }
  CHECK_THAT(host_error([&] { session->resize_volume("missing.qcow2", 1); }),
             StartsWith(kLabel + "volume missing.qcow2 in storage pool \"default-pool\" does not "
                                 "exist"));
  CHECK_THAT(host_error([&] { session->resize_domain_disk("test", "vdz", 1ull << 30); }),
             StartsWith(kLabel + "growing disk vdz of domain test failed: "));
}

TEST_CASE("kumo's mark on a domain is rewritten in place, live and in its definition",
          "[session]") {
  const auto session = open_session();
  const auto spec = web_domain();
  session->define_domain(spec);
  session->start_domain(spec.name);
  const std::string uuid = session->domain(spec.name)->uuid;
  CHECK_FALSE(session->domain(spec.name)->owner->ready);
  Ownership ready = spec.owner;
  ready.ready = true;
  session->set_domain_owner(spec.name, ready);
  const auto d = session->domain(spec.name);
  REQUIRE(d);
  REQUIRE(d->owner);
  CHECK(*d->owner == ready);
  CHECK(d->uuid == uuid);
  CHECK(d->active);
  CHECK_THAT(host_error([&] { session->set_domain_owner("nope", ready); }),
             StartsWith(kLabel + "marking domain nope failed: no such domain"));
}

TEST_CASE("the disks a domain runs with are read live and hot-plugging fails naming what and where",
          "[session]") {
  const auto session = open_session();
  auto spec = web_domain();
  session->create_volume({spec.disks[0].volume, 1ull << 30, "qcow2", "", ""});
  session->create_volume({"kumo_festival_web-0_data-logs.qcow2", 1ull << 30, "qcow2", "", ""});
  spec.disks.insert(spec.disks.begin() + 1, DomainDisk{"kumo_festival_web-0_data-logs.qcow2",
                                                       "qcow2", "vdc", false, "logs"});
  session->define_domain(spec);
  CHECK(session->live_disks(spec.name).empty());  // not running: nothing runs
  session->start_domain(spec.name);
  const auto live = session->live_disks(spec.name);
  REQUIRE(live.size() == 3);
  CHECK(live[0].path == "/default-pool/kumo_festival_web-0_root.qcow2");
  bool logs = false;
  for (const auto& d : live)
    logs = logs ||
           (d.target == "vdc" && d.path == "/default-pool/kumo_festival_web-0_data-logs.qcow2");
  CHECK(logs);
  // libvirt's test driver has no device hot-plug: the error names the volume, target, domain.
  CHECK_THAT(
      host_error([&] {
        session->attach_disk(
            spec.name, DomainDisk{"kumo_festival_web-0_data-x.qcow2", "qcow2", "vdd", false, "x"});
      }),
      StartsWith(kLabel + "hot-plugging volume kumo_festival_web-0_data-x.qcow2 as vdd into domain "
                          "web-0 failed: "));
  CHECK(session->live_disks(spec.name).size() == 3);
  CHECK_THAT(host_error([&] { session->live_disks("nope"); }),
             StartsWith(kLabel + "reading the disks of domain nope failed: no such domain"));
}
