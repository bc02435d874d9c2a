// kumo ssh's and kumo console's libvirt side on the test driver (in process): a VM's addresses
// by network come from the real API (MAC matched), a route is chosen, host keys that cannot be
// learned stop kumo before it connects, and a console that cannot open says why.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "planner/access.h"
#include "planner/config/loader.h"
#include "planner/observe.h"
#include "providers/libvirt/connection.h"
#include "providers/libvirt/console.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/libvirt_provider.h"
#include "providers/libvirt/session.h"
#include "providers/ownership.h"

using namespace kumo;
using namespace kumo::libvirt;
using namespace std::chrono_literals;

namespace {

DesiredCluster cluster() {
  LoadOptions opts;
  opts.environment["HOME"] = "/home/test";
  auto r = load_config_text(R"(
cluster: festival
hosts:
  hv1:
    uri: test:///default
    pool: default-pool
    ssh_jump: ops@jump.example:2200
images:
  deb: {path: /srv/deb.qcow2}
networks:
  front: {cidr: 10.20.0.0/24}
vms:
  web:
    count: 1
    image: deb
    networks: [{network: front, mac: "52:54:00:6b:3c:01"}]
    cloud_init: {users: [{name: admin}]}
)",
                            "kumo.yaml", "/tmp", opts);
  REQUIRE(r.config);
  return expand(*r.config);
}

}  // namespace

TEST_CASE("kumo ssh on real libvirt: addresses by MAC, the route, no unlearnable keys",
          "[access][ssh]") {
  ensure_libvirt_ready();
  ConnectHandle keep(virConnectOpen("test:///default"));  // the driver's state lives with it
  REQUIRE(keep);
  const DesiredCluster desired = cluster();
  const DesiredVm& vm = desired_vm(desired, "web-0");
  auto connector = make_libvirt_connector();
  {
    auto session = connector->connect(desired.hosts[0].target(), 5s);
    NetworkSpec net;
    net.name = network_name("festival", "front");
    net.mode = "nat";
    net.bridge = "kb-festival-front";
    net.address = "10.20.0.1";
    net.prefix = 24;
    session->define_network(net);
    DomainSpec spec;
    spec.name = "web-0";
    spec.virt_type = "qemu";
    spec.memory = 64ull << 20;
    spec.nics = {{net.name, "", vm.nics[0].mac, "", "", "virtio", 0}};
    spec.owner = {"festival", "vm.web-0", vm.spec_hash(), vm.spec(), true};
    session->define_domain(spec);
  }
  auto provider = make_libvirt_provider();
  auto observed = observe_hosts(*provider, desired.targets(), 5s);
  REQUIRE(observed[0].reachable);

  SECTION("not running: a clear error naming how to start it") {
    const auto located = locate_vm(desired, observed, "web-0");
    const auto r = reach_vm(*connector, desired, observed, located, {}, "", 5s);
    CHECK_FALSE(r.target);
    CHECK_THAT(r.error,
               Catch::Contains("vm.web-0 on hv1 is shutoff") && Catch::Contains("kumo apply"));
  }
  SECTION("running: the live address of its NIC, through the jump") {
    {
      auto session = connector->connect(desired.hosts[0].target(), 5s);
      session->start_domain("web-0");
    }
    observed = observe_hosts(*provider, desired.targets(), 5s);
    const auto located = locate_vm(desired, observed, "vm.web-0");
    const auto r = reach_vm(*connector, desired, observed, located, {}, "", 5s);
    INFO(r.error);
    REQUIRE(r.target);
    REQUIRE(r.addresses.size() == 1);
    CHECK(r.addresses[0].network == "front");
    CHECK(r.addresses[0].mac == vm.nics[0].mac);
    CHECK(r.addresses[0].source != "static");  // the driver's own answer, matched by MAC
    CHECK(r.target->address == r.addresses[0].ip);
    CHECK(r.target->user == "admin");
    REQUIRE(r.target->jump);
    CHECK(r.target->jump->spec() == "ops@jump.example:2200");

    // Learning keys: the test driver has no guest agent and no serial log, so kumo refuses to
    // connect rather than trust the network.
    char dir[] = "/tmp/kumo-access-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const std::string known = std::string(dir) + "/known_hosts";
    const auto learned = reach_vm(*connector, desired, observed, located, {}, known, 5s);
    CHECK_FALSE(learned.target);
    CHECK_THAT(learned.error, Catch::Contains("cannot learn vm.web-0's SSH host keys") &&
                                  Catch::Contains("never connects"));
    CHECK_FALSE(std::filesystem::exists(known));

    // The console: the test driver has none to open; the error names VM and host.
    const auto end = run_console(desired.hosts[0].target(), "web-0", false, 5s, -1, -1);
    CHECK_FALSE(end.ok);
    CHECK_THAT(end.error, Catch::Contains("vm.web-0 on hv1"));
    std::filesystem::remove_all(dir);
  }
  auto session = connector->connect(desired.hosts[0].target(), 5s);
  session->delete_domain("web-0");
  session->delete_network(network_name("festival", "front"));
}

TEST_CASE("the console's escape byte", "[access][console]") {
  const std::string typed = std::string("ls\r") + kConsoleEscape + "more";
  CHECK(bytes_before_escape(typed.data(), typed.size()) == 3);
  CHECK(bytes_before_escape("abc", 3) == 3);
}
