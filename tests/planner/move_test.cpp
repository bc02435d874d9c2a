// Moves between hosts, planned and applied on the fake lab: live and cold, draining a host, and
// every state an interrupted move can leave, each converging on the next apply with exactly one
// copy of the VM and its data.
#include <catch2/catch.hpp>

#include "planner/plan_io.h"
#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::config;
using kumo::test::Lab;

namespace {

const std::string kDb = R"(
cluster: fest
hosts:
  hv1: {uri: "test:///hv1"}
  hv2: {uri: "test:///hv2"}
  hv3: {uri: "test:///hv3"}
images:
  deb: {path: /srv/deb.qcow2, checksum: "sha256:)" +
                        std::string(64, 'a') + R"("}
networks:
  front: {cidr: 10.20.0.0/24}
vms:
  db:
    image: deb
    memory: 512MiB
    host: hv1
    networks: [front]
    disks: {data: 1GiB}
)";

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string failures(const PlanResult& r) {
  std::string out;
  for (const auto& d : r.errors.sorted()) out += format_diagnostic(d) + "\n";
  return out;
}

const std::string kData = data_volume_name("fest", "db", "data");

// What the cluster holds on one host: domain names and kumo_fest_ volumes (not the serial log).
std::vector<std::string> held(Lab& lab, const std::string& host) {
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  std::vector<std::string> out;
  for (const auto& d : lab.host(host).domains) out.push_back("domain " + d.name);
  for (const auto& v : lab.host(host).volumes) {
    if (v.name.rfind("kumo_fest_db", 0) == 0 && v.name.find("serial") == std::string::npos)
      out.push_back(v.name);
  }
  return out;
}

const ObservedDomain* find_domain(Lab& lab, const std::string& host, const std::string& name) {
  for (const auto& d : lab.host(host).domains)
    if (d.name == name) return &d;
  return nullptr;
}

// db applied on hv1, running, with a token on its data disk.
void applied(Lab& lab) {
  lab.connector.shared_pool_path = "/var/lib/libvirt/images";  // as on most hosts
  const auto result = lab.apply(lab.plan(config(kDb)));
  INFO(test::failures(result));
  REQUIRE(result.success());
  lab.connector.contents["hv1/" + kData] = "token";
}

void converged(Lab& lab, const std::string& text, const std::string& host) {
  const Plan again = lab.plan(config(text));
  for (const auto& c : again.changes) INFO(c.address.str() << " on " << c.host << ": " << c.reason);
  CHECK_FALSE(again.has_changes());
  for (const char* h : {"hv1", "hv2", "hv3"}) {
    if (h == host) continue;
    INFO("host " << h);
    CHECK(held(lab, h).empty());
  }
  REQUIRE(find_domain(lab, host, "db"));
  CHECK(find_domain(lab, host, "db")->uuid == "uuid-db");
  CHECK(find_domain(lab, host, "db")->owner->moving_from.empty());
  CHECK(lab.connector.contents[host + "/" + kData] == "token");
}

const ResourceChange& only_vm_change(const Plan& p) {
  const ResourceChange* found = nullptr;
  for (const auto& c : p.changes) {
    if (c.kind() != ResourceKind::Vm) continue;
    REQUIRE(found == nullptr);
    found = &c;
  }
  REQUIRE(found);
  return *found;
}

}  // namespace

TEST_CASE("a new pin moves a running VM live: same domain, data kept, the source removed",
          "[move]") {
  Lab lab;
  applied(lab);
  const std::string moved = with(kDb, "host: hv1", "host: hv2");
  const Plan p = lab.plan(config(moved));
  const ResourceChange& c = only_vm_change(p);
  CHECK(c.action == Action::Move);
  CHECK(c.host == "hv2");
  CHECK(c.observed->host == "hv1");
  CHECK(c.disruption == Disruption::Live);
  CHECK(c.steps.live);
  CHECK_FALSE(c.destroys_data);
  for (const auto& ch : p.changes) CHECK_FALSE(ch.destroys_data);
  CHECK(p.summary().move == 1);
  CHECK(p.summary().destroy == 0);
  // The base image is ensured on the destination first.
  REQUIRE(p.images.size() == 1);
  CHECK(p.images[0].upload_to == std::vector<std::string>{"hv2"});
  const auto result = lab.apply(p);
  INFO(test::failures(result));
  REQUIRE(result.success());
  CHECK(lab.connector.count("hv1 migrate_domain db") == 1);
  CHECK(lab.connector.count("hv1 shutdown_domain") == 0);
  CHECK(find_domain(lab, "hv2", "db")->active);
  converged(lab, moved, "hv2");
}

TEST_CASE(
    "a cold move shuts down, copies the disks through kumo, and removes the source only "
    "once the copy is ready",
    "[move]") {
  Lab lab;
  applied(lab);
  const std::string moved =
      with(with(kDb, "host: hv1", "host: hv2"), "    disks:", "    move: cold\n    disks:");
  const Plan p = lab.plan(config(moved));
  const ResourceChange& c = only_vm_change(p);
  CHECK(c.action == Action::Move);
  CHECK(c.disruption == Disruption::Restart);
  CHECK_FALSE(c.steps.live);
  const auto result = lab.apply(p);
  INFO(test::failures(result));
  REQUIRE(result.success());
  auto& k = lab.connector;
  CHECK(k.count("hv1 migrate_domain") == 0);
  CHECK(k.index_of("hv1 shutdown_domain db") < k.index_of("hv1 open_volume " + kData));
  CHECK(k.index_of("hv2 start_domain db") < k.index_of("hv1 delete_domain db"));
  // Committed first: the source marked as moved, then it goes.
  CHECK(k.index_of("hv1 set_domain_owner db") >= 0);
  CHECK(k.index_of("hv1 set_domain_owner db") < k.index_of("hv1 delete_domain db"));
  converged(lab, moved, "hv2");
}

TEST_CASE("an interrupted move converges on the next apply with one copy", "[move]") {
  Lab lab;
  applied(lab);
  const std::string moved = with(kDb, "host: hv1", "host: hv2");
  const std::string cold = with(moved, "    disks:", "    move: cold\n    disks:");

  SECTION("killed during the copy: half-made volumes on the destination are made again") {
    auto s = lab.connector.connect(HostTarget{"hv2", "test:///hv2", "default", false}, {});
    s->create_volume(VolumeSpec{kData, 1ull << 30, "qcow2", "", ""});
    lab.connector.contents["hv2/" + kData] = "half";
    const Plan p = lab.plan(config(moved));
    const ResourceChange& c = only_vm_change(p);
    CHECK(c.action == Action::Move);
    CHECK(c.reason.find("is removed first and made again") != std::string::npos);
    REQUIRE(lab.apply(p).success());
    converged(lab, moved, "hv2");
  }
  SECTION("the destination defined but never seen ready: the source is the VM, moved again") {
    lab.connector.fail.insert("hv2 start_domain");
    CHECK_FALSE(lab.apply(lab.plan(config(cold))).success());
    lab.connector.fail.clear();
    REQUIRE(find_domain(lab, "hv2", "db"));
    CHECK(find_domain(lab, "hv2", "db")->owner->moving_from == "hv1");
    REQUIRE(find_domain(lab, "hv1", "db"));
    const Plan p = lab.plan(config(cold));
    const ResourceChange& c = only_vm_change(p);
    CHECK(c.action == Action::Move);
    CHECK(c.steps.remove_dest_copy);
    CHECK(c.observed->host == "hv1");
    REQUIRE(lab.apply(p).success());
    converged(lab, cold, "hv2");
  }
  SECTION("migrated but not marked finished: the copy is the VM, the source's volumes go") {
    lab.connector.fail.insert("hv2 set_domain_autostart");
    CHECK_FALSE(lab.apply(lab.plan(config(moved))).success());
    lab.connector.fail.clear();
    CHECK_FALSE(find_domain(lab, "hv1", "db"));
    const Plan p = lab.plan(config(moved));
    bool update = false;
    for (const auto& c : p.changes) {
      INFO(c.address.str() << " " << to_string(c.action) << " on " << c.host);
      if (c.kind() == ResourceKind::Vm) {
        CHECK(c.action == Action::Update);
        CHECK(c.host == "hv2");
        update = true;
      } else {
        CHECK(c.action == Action::Delete);
        CHECK(c.host == "hv1");
        CHECK_FALSE(c.destroys_data);
      }
    }
    CHECK(update);
    REQUIRE(lab.apply(p).success());
    converged(lab, moved, "hv2");
  }
  SECTION("finished but the source not yet removed: the old copy goes, no data destroyed") {
    lab.connector.fail.insert("hv1 delete_domain db");
    CHECK_FALSE(lab.apply(lab.plan(config(cold))).success());
    lab.connector.fail.clear();
    REQUIRE(find_domain(lab, "hv1", "db"));
    const Plan p = lab.plan(config(cold));
    const ResourceChange& c = only_vm_change(p);
    CHECK(c.action == Action::Delete);
    CHECK(c.host == "hv1");
    CHECK_FALSE(c.destroys_data);
    for (const auto& ch : p.changes) CHECK_FALSE(ch.destroys_data);
    REQUIRE(lab.apply(p).success());
    converged(lab, cold, "hv2");
  }
  SECTION("the destination lost mid-migration: the source keeps running, the error names it") {
    lab.connector.fail.insert("hv2 incoming_migration");
    const auto r = lab.apply(lab.plan(config(moved)));
    CHECK_FALSE(r.success());
    CHECK(test::failures(r).find("host hv2") != std::string::npos);
    REQUIRE(find_domain(lab, "hv1", "db"));
    CHECK(find_domain(lab, "hv1", "db")->active);
    lab.connector.fail.clear();
    REQUIRE(lab.apply(lab.plan(config(moved))).success());
    converged(lab, moved, "hv2");
  }
}

TEST_CASE("a drained host gets nothing new and its unpinned VMs move live elsewhere", "[move]") {
  Lab lab;
  const std::string unpinned = with(kDb, "    host: hv1\n", "");
  REQUIRE(lab.apply(lab.plan(config(unpinned))).success());
  REQUIRE(find_domain(lab, "hv1", "db"));  // spread: the first host
  lab.connector.contents["hv1/" + kData] = "token";
  const std::string drained =
      with(unpinned, R"(hv1: {uri: "test:///hv1"})", R"(hv1: {uri: "test:///hv1", drain: true})");
  const Plan p = lab.plan(config(drained));
  const ResourceChange& c = only_vm_change(p);
  CHECK(c.action == Action::Move);
  CHECK(c.observed->host == "hv1");
  CHECK(c.host != "hv1");
  CHECK(c.disruption == Disruption::Live);
  const std::string dest = c.host;
  REQUIRE(lab.apply(p).success());
  converged(lab, drained, dest);
  // Placement stays stable: undraining moves nothing back.
  CHECK_FALSE(lab.plan(config(unpinned)).has_changes());
}

TEST_CASE("moves the plan refuses: a pin to a drained host, move: live that cannot be", "[move]") {
  Lab lab;
  applied(lab);
  auto errors_of = [&](const std::string& text) {
    return failures(make_plan(expand(config(text)), lab, PlanOptions{}));
  };
  const std::string drained =
      with(kDb, R"(hv1: {uri: "test:///hv1"})", R"(hv1: {uri: "test:///hv1", drain: true})");
  CHECK(errors_of(drained).find("vm.db is pinned to host \"hv1\", which is drained") !=
        std::string::npos);
  const std::string live_grow =
      with(with(with(kDb, "host: hv1", "host: hv2"), "    disks:", "    move: live\n    disks:"),
           "memory: 512MiB", "memory: 2GiB");
  CHECK(errors_of(live_grow).find("vm.db has move: live, but it cannot move live from hv1 to "
                                  "hv2: its vCPUs or memory change too") != std::string::npos);
  // Nothing changed on any host.
  CHECK(lab.connector.count("hv1 migrate_domain") == 0);
}

TEST_CASE("a drained host's VM goes where its anti-affinity group is not", "[move]") {
  Lab lab;
  const std::string text = with(with(kDb, "    host: hv1\n", "    count: 2\n"),
                                "    disks:", "    placement: {anti_affinity: data}\n    disks:");
  REQUIRE(lab.apply(lab.plan(config(text))).success());
  REQUIRE(find_domain(lab, "hv1", "db-0"));
  REQUIRE(find_domain(lab, "hv2", "db-1"));
  const Plan p = lab.plan(config(
      with(text, R"(hv1: {uri: "test:///hv1"})", R"(hv1: {uri: "test:///hv1", drain: true})")));
  const ResourceChange& c = only_vm_change(p);
  CHECK(c.address.str() == "vm.db-0");
  CHECK(c.action == Action::Move);
  CHECK(c.host == "hv3");
}

TEST_CASE("a cold move between pools in different directories is refused before any copy",
          "[move]") {
  Lab lab;
  const auto made = lab.apply(lab.plan(config(kDb)));  // pools at /pool/hv1, /pool/hv2
  REQUIRE(made.success());
  const std::string cold =
      with(with(kDb, "host: hv1", "host: hv2"), "    disks:", "    move: cold\n    disks:");
  const auto r = lab.apply(lab.plan(config(cold)));
  CHECK_FALSE(r.success());
  CHECK(test::failures(r).find("names its base image by path") != std::string::npos);
  CHECK(lab.connector.count("hv2 upload_volume kumo_fest_db_root") == 0);
  // The source is still the VM: the next plan moves it again.
  CHECK(find_domain(lab, "hv1", "db"));
}

TEST_CASE("a saved plan with a move comes back whole and checked, a tampered one is refused",
          "[move]") {
  Lab lab;
  applied(lab);
  const std::string moved = with(kDb, R"(hv2: {uri: "test:///hv2"})",
                                 R"(hv2: {uri: "test:///hv2", migration: {socket_dir: /srv/mig}})");
  const Plan p = lab.plan(config(with(moved, "host: hv1", "host: hv2")));
  std::string error;
  const auto back = plan_from_json(plan_to_json(p), &error);
  INFO(error);
  REQUIRE(back);
  const ResourceChange& c = only_vm_change(*back);
  CHECK(c.action == Action::Move);
  CHECK(c.steps.live);
  CHECK(c.observed->host == "hv1");
  CHECK(back->find_host("hv2")->migration_socket_dir == "/srv/mig");
  auto doc = plan_to_json(p);
  for (auto& h : doc["hosts"])
    if (h["name"] == "hv2") h["migration_socket_dir"] = "/srv/mig;rm -rf /";
  CHECK_FALSE(plan_from_json(doc, &error));
  CHECK(error.find("migration socket_dir") != std::string::npos);
  doc = plan_to_json(p);
  for (auto& ch : doc["changes"])
    if (ch["address"] == "vm.db") ch["observed"]["host"] = "hv2";
  CHECK_FALSE(plan_from_json(doc, &error));
  CHECK(error.find("a move records no other host") != std::string::npos);
}

TEST_CASE("under KVM a VM moves live only between hosts with the same CPU", "[move]") {
  Lab lab;
  applied(lab);
  lab.host("hv1").facts.cpu_model = "Skylake-Client-IBRS";
  lab.host("hv2").facts.cpu_model = "EPYC-Rome";
  const std::string moved = with(kDb, "host: hv1", "host: hv2");
  const ResourceChange cold = only_vm_change(lab.plan(config(moved)));
  CHECK_FALSE(cold.steps.live);
  CHECK(cold.disruption == Disruption::Restart);
  CHECK(cold.reason.find("the host's own CPU (Skylake-Client-IBRS) and hv2's is a EPYC-Rome") !=
        std::string::npos);
  lab.host("hv2").facts.cpu_model = "Skylake-Client-IBRS";
  CHECK(only_vm_change(lab.plan(config(moved))).steps.live);
}
