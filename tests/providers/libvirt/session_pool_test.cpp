// Storage pools kumo makes, through the real libvirt API against the test driver in process: the
// pool XML kumo writes (its ownership mark in <source>), parsed back; define (build, start,
// autostart), idempotent for kumo's own pool, refused for another; start again; delete; and a
// session whose pool does not exist yet opens, then says what to do on first use.
#include <catch2/catch.hpp>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/libvirt_provider.h"
#include "providers/libvirt/session.h"
#include "providers/libvirt/xml_build.h"
#include "providers/libvirt/xml_parse.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;

namespace {

const HostTarget kHost{"hv1", "test:///default", "default-pool"};

const ObservedPool* find_pool(const ObservedHost& h, const std::string& name) {
  for (const auto& p : h.pools)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace

TEST_CASE("kumo's pool XML carries its mark, and the parser reads it back", "[xml_build]") {
  const PoolSpec dir{"fast", "dir", "/srv/kumo/fast", {}, "fest"};
  CHECK(pool_xml(dir) ==
        "<pool type=\"dir\">\n"
        "  <name>fast</name>\n"
        "  <source>\n"
        "    <vendor name=\"kumo\" />\n"
        "    <product name=\"cluster:fest\" />\n"
        "  </source>\n"
        "  <target>\n"
        "    <path>/srv/kumo/fast</path>\n"
        "  </target>\n"
        "</pool>\n");
  const PoolSpec lvm{"vg0", "logical", "", {"/dev/sdb", "/dev/sdc"}, "fest"};
  const auto back = parse_pool_xml(pool_xml(lvm));
  REQUIRE(back);
  CHECK(back->type == "logical");
  CHECK(back->devices == std::vector<std::string>{"/dev/sdb", "/dev/sdc"});
  CHECK(back->source_name == "vg0");
  CHECK(back->path == "/dev/vg0");
  CHECK(back->owner_cluster == std::optional<std::string>("fest"));
  // A pool nobody marked, or marked by someone else than kumo, is nobody's.
  CHECK_FALSE(parse_pool_xml("<pool type='dir'><name>p</name><source><vendor name='acme'/>"
                             "<product name='cluster:fest'/></source></pool>")
                  ->owner_cluster);
  CHECK_FALSE(parse_pool_xml("<pool type='dir'><name>p</name></pool>")->owner_cluster);
}

TEST_CASE("a pool kumo makes is defined, started, autostarted, seen as kumo's, and removed",
          "[session]") {
  const auto session = make_libvirt_connector()->connect(kHost, 5s);
  const PoolSpec spec{"kumo-test-fast", "dir", "/kumo-test-fast", {}, "fest"};
  REQUIRE_FALSE(session->pool(spec.name));
  session->define_pool(spec);
  auto p = session->pool(spec.name);
  REQUIRE(p);
  CHECK(p->active);
  CHECK(p->autostart);
  CHECK(p->owner_cluster == std::optional<std::string>("fest"));
  CHECK(p->path == "/kumo-test-fast");

  // What plan reads (the same connection keeps the driver's state alive meanwhile).
  const ObservedHost seen = make_libvirt_provider()->observe(kHost, 5s);
  REQUIRE(seen.reachable);
  const ObservedPool* o = find_pool(seen, spec.name);
  REQUIRE(o);
  CHECK(o->owner_cluster == std::optional<std::string>("fest"));
  CHECK(o->autostart);
  const ObservedPool* other = find_pool(seen, "default-pool");
  REQUIRE(other);
  CHECK_FALSE(other->owner_cluster);

  // Again: kumo's own pool, as described: nothing to do. Described otherwise: refused.
  session->define_pool(spec);
  PoolSpec moved = spec;
  moved.path = "/elsewhere";
  CHECK_THROWS_WITH(session->define_pool(moved),
                    Catch::Contains("a pool of that name exists and is not the one kumo.yaml "
                                    "describes"));
  PoolSpec theirs = spec;
  theirs.name = "default-pool";
  CHECK_THROWS_AS(session->define_pool(theirs), HostError);

  // Stopped and not autostarted behind kumo's back: started again.
  {
    ConnectHandle conn(virConnectOpen("test:///default"));
    PoolHandle handle(virStoragePoolLookupByName(conn.get(), spec.name.c_str()));
    REQUIRE(handle);
    REQUIRE(virStoragePoolDestroy(handle.get()) == 0);
    REQUIRE(virStoragePoolSetAutostart(handle.get(), 0) == 0);
  }
  CHECK_FALSE(session->pool(spec.name)->active);
  session->start_pool(spec.name, true);
  CHECK(session->pool(spec.name)->active);
  CHECK(session->pool(spec.name)->autostart);

  session->delete_pool(spec.name);
  CHECK_FALSE(session->pool(spec.name));
  session->delete_pool(spec.name);  // gone already: nothing to do
}

TEST_CASE("a session opens before its pool exists and says what to do on first use", "[session]") {
  const HostTarget missing{"hv1", "test:///default", "kumo-not-yet"};
  const auto session = make_libvirt_connector()->connect(missing, 5s);
  CHECK_THROWS_WITH(session->volume("x.qcow2"),
                    Catch::Contains("storage pool \"kumo-not-yet\"") &&
                        Catch::Contains("list it under hosts.hv1.pools for kumo to make"));
  // Made now (as apply makes a host's own pool before locking it), it is used at once.
  session->define_pool({"kumo-not-yet", "dir", "/kumo-not-yet", {}, "fest"});
  session->create_volume({"x.qcow2", 1 << 20, "qcow2", "", ""});
  CHECK(session->volume("x.qcow2"));
  session->delete_volume("x.qcow2");
  session->delete_pool("kumo-not-yet");
}
