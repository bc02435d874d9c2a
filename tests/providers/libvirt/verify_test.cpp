// Saved plans are checked, not trusted, on libvirt's test driver (in process): each step of an
// apply looks at the real object again right before it changes it, and a network is kumo's only
// with kumo's record of making it. See tests/providers/libvirt/session_test.cpp for how the test
// driver keeps its state (one host per process, reset when the last connection closes).
#include <catch2/catch.hpp>

#include "planner/config/loader.h"
#include "planner/executor.h"
#include "planner/planner.h"
#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/libvirt_provider.h"
#include "providers/libvirt/session.h"
#include "providers/ownership.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;

namespace {

const HostTarget kHost{"hv1", "test:///default", "default-pool"};
const std::string kRefused =
    "; refused: the plan was edited or the host changed since planning (plan again)";

// Keeps the test driver's state alive for the whole test, and changes it behind kumo's back.
ConnectHandle side_connection() {
  ensure_libvirt_ready();
  ConnectHandle conn(virConnectOpen("test:///default"));
  REQUIRE(conn);
  return conn;
}

std::string define_foreign_domain(virConnectPtr conn, const std::string& name) {
  const std::string xml = "<domain type='test'><name>" + name +
                          "</name><memory>65536</memory><os><type>hvm</type></os></domain>";
  const DomainHandle dom(virDomainDefineXML(conn, xml.c_str()));
  REQUIRE(dom);
  char uuid[VIR_UUID_STRING_BUFLEN];
  REQUIRE(virDomainGetUUIDString(dom.get(), uuid) == 0);
  return uuid;
}

DomainSpec kumo_domain(const std::string& name) {
  DomainSpec spec;
  spec.name = name;
  spec.virt_type = "qemu";
  spec.memory = 64ull << 20;
  spec.owner = {"festival", "vm." + name, "", std::nullopt};
  return spec;
}

NetworkSpec kumo_network(const std::string& name) {
  NetworkSpec spec;
  spec.name = "kumo_festival_" + name;
  spec.mode = "isolated";
  spec.bridge = "kb-festival-" + name;
  return spec;
}

Plan plan_of(std::vector<ResourceChange> changes) {
  Plan p;
  p.cluster = "festival";
  HostReport h;
  h.name = kHost.name;
  h.uri = kHost.uri;
  h.pool = kHost.pool;
  h.reachable = true;
  h.virt_type = "qemu";
  p.hosts.push_back(h);
  p.changes = std::move(changes);
  return p;
}

ResourceChange delete_of(const Address& address, const std::string& name, const std::string& uuid) {
  ResourceChange c;
  c.address = address;
  c.host = kHost.name;
  c.action = Action::Delete;
  c.observed = ObservedRef{name, uuid, "", "", 0};
  return c;
}

ExecResult run(const Plan& plan) {
  auto connector = make_libvirt_connector();
  const ImageFetcher no_images = [](const ImagePlan&, const FetchTick&) -> FetchedImage {
    throw std::runtime_error("no images here");
  };
  return execute(plan, *connector, no_images, ExecOptions{}, [](const ExecEvent&) {});
}

std::string message(const ExecResult& r, const std::string& id) {
  for (const auto& s : r.steps)
    if (s.step == id) return s.message;
  FAIL("no step " << id);
  return "";
}

}  // namespace

TEST_CASE("apply refuses to delete a domain that is not this cluster's, it survives", "[verify]") {
  const auto side = side_connection();
  const std::string uuid = define_foreign_domain(side.get(), "db");
  // A saved plan edited to delete it (its UUID copied in, to get past the UUID check).
  const ExecResult r = run(plan_of({delete_of(Address::vm("db"), "db", uuid)}));
  CHECK_FALSE(r.success());
  CHECK(message(r, "hv1/vm.db/delete") ==
        "vm.db on host hv1 (test:///default): the domain db there is not this cluster's (no kumo "
        "metadata)" +
            kRefused);
  const DomainHandle still(virDomainLookupByName(side.get(), "db"));
  CHECK(still);
}

TEST_CASE("apply refuses a domain whose UUID is not the one the plan recorded", "[verify]") {
  const auto side = side_connection();
  const auto session = make_libvirt_connector()->connect(kHost, 5s);
  session->define_domain(kumo_domain("web-0"));
  const std::string uuid = session->domain("web-0")->uuid;
  const std::string other = "00000000-0000-4000-8000-000000000001";
  const ExecResult refused = run(plan_of({delete_of(Address::vm("web-0"), "web-0", other)}));
  CHECK(message(refused, "hv1/vm.web-0/delete") ==
        "vm.web-0 on host hv1 (test:///default): the domain web-0 there is not the one the plan "
        "recorded (UUID " +
            uuid + ", the plan recorded " + other + ")" + kRefused);
  CHECK(session->domain("web-0"));

  const ExecResult deleted = run(plan_of({delete_of(Address::vm("web-0"), "web-0", uuid)}));
  CHECK(deleted.success());
  CHECK_FALSE(session->domain("web-0"));
}

TEST_CASE("a network with kumo's name but no record is not deleted, a recorded one is",
          "[verify]") {
  const auto side = side_connection();
  const auto session = make_libvirt_connector()->connect(kHost, 5s);
  session->define_network(kumo_network("old"));
  const std::string uuid = session->network("kumo_festival_old")->uuid;
  const Plan del = plan_of({delete_of(Address::network("old"), "kumo_festival_old", uuid)});

  const ExecResult refused = run(del);
  CHECK(message(refused, "hv1/network.old/delete") ==
        "network.old on host hv1 (test:///default): the network kumo_festival_old there is not "
        "this cluster's (kumo has no record of making it: no volume kumo-net_festival_old_" +
            uuid + ")" + kRefused);
  CHECK(session->network("kumo_festival_old"));

  REQUIRE(session->create_volume_exclusive(network_record_name("festival", "old", uuid), ""));
  const ExecResult deleted = run(del);
  CHECK(deleted.success());
  CHECK_FALSE(session->network("kumo_festival_old"));
  CHECK_FALSE(session->volume(network_record_name("festival", "old", uuid)));
}

TEST_CASE("kumo destroy plans no delete for a network that only has kumo's name", "[verify]") {
  const auto side = side_connection();
  const auto session = make_libvirt_connector()->connect(kHost, 5s);
  session->define_network(kumo_network("old"));
  session->define_network(kumo_network("made"));
  const std::string made = session->network("kumo_festival_made")->uuid;
  REQUIRE(session->create_volume_exclusive(network_record_name("festival", "made", made), ""));

  LoadOptions opts;
  auto loaded = load_config_text(
      "cluster: festival\nhosts:\n  hv1: {uri: \"test:///default\", pool: default-pool}\n",
      "kumo.yaml", "/tmp", opts);
  REQUIRE(loaded.config);
  const auto provider = make_libvirt_provider();
  PlanOptions destroy;
  destroy.destroy = true;
  const PlanResult r = make_plan(expand(*loaded.config), *provider, destroy);
  REQUIRE(r.plan);
  std::vector<std::string> deletes;
  for (const auto& c : r.plan->changes) deletes.push_back(c.address.str());
  CHECK(deletes == std::vector<std::string>{"network.made"});
}

TEST_CASE("a record of a network that was never made is planned for deletion and removed",
          "[verify]") {
  const auto side = side_connection();
  const auto session = make_libvirt_connector()->connect(kHost, 5s);
  // An apply killed between recording network.front and defining it.
  const std::string stale =
      network_record_name("festival", "front", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");
  REQUIRE(session->create_volume_exclusive(stale, ""));

  LoadOptions opts;
  auto loaded = load_config_text(
      "cluster: festival\nhosts:\n  hv1: {uri: \"test:///default\", pool: default-pool}\n",
      "kumo.yaml", "/tmp", opts);
  REQUIRE(loaded.config);
  const auto provider = make_libvirt_provider();
  PlanOptions destroy;
  destroy.destroy = true;
  const PlanResult r = make_plan(expand(*loaded.config), *provider, destroy);
  REQUIRE(r.plan);
  REQUIRE(r.plan->changes.size() == 1);
  const ResourceChange& c = r.plan->changes.front();
  CHECK(c.address.str() == "network.front");
  CHECK(c.action == Action::Delete);
  CHECK(c.observed->state == kStaleNetworkRecord);

  const ExecResult done = run(*r.plan);
  CHECK(done.success());
  CHECK_FALSE(session->volume(stale));
  const PlanResult again = make_plan(expand(*loaded.config), *provider, destroy);
  REQUIRE(again.plan);
  CHECK(again.plan->changes.empty());
}
