// Adopting domains made by hand, on the fake lab: kumo import prints the entry, the plan shows
// only `adopt`, apply writes only the metadata (renaming a shut-off domain when asked), the next
// plan is clean, and destroy removes the adopted domain but keeps its disks and never touches a
// hand-made domain that was not adopted. What cannot be adopted fails the plan, located.
#include <catch2/catch.hpp>

#include "planner/import.h"
#include "planner/plan_io.h"
#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using kumo::test::config;
using kumo::test::errors_of;
using kumo::test::Lab;
using kumo::test::plan_result;

namespace {

const std::string kBase = R"(
cluster: fest
hosts:
  hv1: {uri: "test:///hv1"}
  hv2: {uri: "test:///hv2"}
images:
  deb: {path: /srv/deb.qcow2, checksum: "sha256:)" +
                          std::string(64, 'a') + R"("}
vms:
)";

// A domain made by hand on hv2: one disk in the default pool, one NIC on a bridge.
ObservedDomain& hand_made(Lab& lab, const std::string& name, bool running) {
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  const auto& v = lab.add_volume("hv2", name + ".qcow2", 8ull << 30);
  ObservedDomain& d = lab.add_domain("hv2", name, std::nullopt, 1ull << 30, 2);
  d.active = running;
  d.state = running ? "running" : "shutoff";
  d.disks.push_back({"vda", "disk", v.path, "qcow2", false});
  d.disks.push_back({"sda", "cdrom", "/srv/install.iso", "raw", true});
  d.nics.push_back({"br0", "bridge", "52:54:00:12:34:56", "virtio", ""});
  return d;
}

// The entry kumo import prints, indented under vms:.
std::string imported(Lab& lab, const std::string& domain, const std::string& name = "") {
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  ObservedHost host = lab.host("hv2");
  const std::string entry = import_entry(host, {"fest", "hv2", domain, name});
  std::string out;
  std::size_t at = entry.find('\n') + 1;  // the comment line
  while (at < entry.size()) {
    const auto end = entry.find('\n', at);
    out += "  " + entry.substr(at, end - at) + "\n";
    at = end + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("kumo import prints the entry that adopts a hand-made domain as it is", "[adopt]") {
  Lab lab;
  hand_made(lab, "legacy", true);
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  const std::string entry = import_entry(lab.host("hv2"), {"fest", "hv2", "legacy", ""});
  CHECK(entry ==
        "# kumo import hv2/legacy: paste under vms: (2 disk(s) as volumes; kumo writes only its "
        "metadata when it adopts the domain)\n"
        "legacy:\n"
        "  adopt: legacy\n"
        "  host: hv2\n"
        "  cpus: 2\n"
        "  memory: 1GiB\n"
        "  networks:\n"
        "    - {bridge: br0, mac: \"52:54:00:12:34:56\"}\n"
        "  volumes:\n"
        "    - {pool: default, volume: legacy.qcow2}\n"
        "  running: true\n"
        "  autostart: true\n");
  SECTION("a missing domain names those that could be adopted") {
    CHECK_THROWS_WITH(import_entry(lab.host("hv2"), {"fest", "hv2", "nope", ""}),
                      "host hv2 has no domain \"nope\"; domains kumo did not make there: legacy");
  }
  SECTION("a domain of another cluster is refused") {
    lab.host("hv2").domains.front().owner = Ownership{"other", "vm.legacy", "", std::nullopt};
    CHECK_THROWS_WITH(import_entry(lab.host("hv2"), {"fest", "hv2", "legacy", ""}),
                      Catch::Contains("cluster \"other\"'s vm.legacy; kumo adopts only domains "
                                      "no kumo cluster made"));
  }
  SECTION("a name that is no hostname needs --name") {
    lab.host("hv2").domains.front().name = "Legacy_DB";
    CHECK_THROWS_WITH(import_entry(lab.host("hv2"), {"fest", "hv2", "Legacy_DB", ""}),
                      Catch::Contains("give one with --name"));
  }
}

TEST_CASE("an imported domain is adopted: only adopt, clean after, destroy keeps its disks",
          "[adopt]") {
  Lab lab;
  hand_made(lab, "legacy", true);
  hand_made(lab, "keepme", false);
  // Room for what runs there now, not for it twice: the adopted domain counts once, as the VM.
  lab.host("hv2").facts.memory = lab.host("hv2").facts.free_memory = 2ull << 30;
  const std::string file = kBase + imported(lab, "legacy");
  const Plan p = lab.plan(config(file));
  REQUIRE(p.changes.size() == 1);
  const ResourceChange& c = p.changes.front();
  CHECK(c.action == Action::Adopt);
  CHECK(c.address.str() == "vm.legacy");
  CHECK(c.disruption == Disruption::None);
  CHECK(p.summary().adopt == 1);
  // A saved plan keeps it, checked.
  std::string error;
  const bool loads = plan_from_json(plan_to_json(p), &error).has_value();
  INFO(error);
  REQUIRE(loads);

  const auto result = lab.apply(p);
  INFO(test::failures(result));
  REQUIRE(result.success());
  // Only the metadata was written: nothing was defined, started or stopped.
  CHECK(lab.connector.count("hv2 set_domain_owner legacy") == 1);
  CHECK(lab.connector.count("hv2 define_domain") == 0);
  CHECK(lab.connector.count("hv2 shutdown_domain") == 0);
  CHECK_FALSE(lab.plan(config(file)).has_changes());

  // A later change of the file is applied live, without redefining the domain.
  lab.host("hv2").domains.front().max_vcpus = 4;
  const Plan grow = lab.plan(config([&] {
    std::string f = file;
    f.replace(f.find("cpus: 2"), 7, "cpus: 3");
    return f;
  }()));
  REQUIRE(grow.changes.size() == 1);
  CHECK(grow.changes.front().action == Action::Update);
  REQUIRE(lab.apply(grow).success());
  CHECK(lab.connector.count("hv2 define_domain") == 0);

  Plan gone = lab.plan(config(kBase), PlanOptions{});
  std::vector<std::string> deleted;
  for (const auto& ch : gone.changes) deleted.push_back(ch.address.str());
  CHECK(deleted == std::vector<std::string>{"vm.legacy"});
  CHECK(gone.changes.front().reason.find("its 1 disk(s) are kept") != std::string::npos);
  REQUIRE(lab.apply(gone).success());
  std::lock_guard<std::recursive_mutex> lock(lab.state_mu);
  std::vector<std::string> left;
  for (const auto& d : lab.host("hv2").domains) left.push_back(d.name);
  CHECK(left == std::vector<std::string>{"keepme"});
  int volumes = 0;
  for (const auto& v : lab.host("hv2").volumes)
    volumes += v.name == "legacy.qcow2" || v.name == "keepme.qcow2";
  CHECK(volumes == 2);
}

TEST_CASE("adopting under another name renames a shut-off domain, and refuses a running one",
          "[adopt]") {
  Lab lab;
  hand_made(lab, "old-db", false);
  const std::string file = kBase + imported(lab, "old-db", "db");
  const Plan p = lab.plan(config(file));
  REQUIRE(p.changes.size() == 1);
  CHECK(p.changes.front().vm()->adopt_from == "old-db");
  REQUIRE(lab.apply(p).success());
  CHECK(lab.connector.count("hv2 rename_domain old-db db") == 1);
  CHECK_FALSE(lab.plan(config(file)).has_changes());

  Lab running;
  hand_made(running, "old-db", true);
  const auto r = plan_result(running, kBase + imported(running, "old-db", "db"));
  CHECK_FALSE(r.plan.has_value());
  CHECK(errors_of(r).find("libvirt renames only a domain that is shut off") != std::string::npos);
}

TEST_CASE("what cannot be adopted fails the plan, located, and nothing changes", "[adopt]") {
  Lab lab;
  hand_made(lab, "legacy", true);
  const std::string good = kBase + imported(lab, "legacy");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string f = good;
    f.replace(f.find(from), from.size(), to);
    return f;
  };
  SECTION("a missing domain") {
    lab.host("hv2").domains.front().name = "other";
    const auto r = plan_result(lab, good);
    INFO(errors_of(r));
    CHECK(errors_of(r).find("kumo.yaml:10:12: error: host \"hv2\": there is no domain "
                            "\"legacy\" to adopt (kumo import hv2/<domain> prints an entry "
                            "for one that is)") != std::string::npos);
    const auto taken = plan_result(lab, with("adopt: legacy", "adopt: other"));
    CHECK(errors_of(taken).find("vm.legacy adopts domain \"other\"") == std::string::npos);
  }
  SECTION("another cluster's domain") {
    lab.host("hv2").domains.front().owner = Ownership{"other", "vm.legacy", "", std::nullopt};
    const auto r = plan_result(lab, good);
    CHECK(errors_of(r).find("domain \"legacy\" is cluster \"other\"'s vm.legacy; kumo adopts "
                            "only domains no kumo cluster made") != std::string::npos);
  }
  SECTION("disks, NICs or firmware that are not the domain's") {
    const auto r = plan_result(lab, with("volume: legacy.qcow2}", "volume: other.qcow2}"));
    CHECK(errors_of(r).find("volumes: the file lists [default/other.qcow2], the domain has "
                            "[default/legacy.qcow2]") != std::string::npos);
    const auto n = plan_result(lab, with("52:54:00:12:34:56", "52:54:00:12:34:57"));
    CHECK(errors_of(n).find("networks: the file's NICs have MACs") != std::string::npos);
    const auto f = plan_result(lab, with("  cpus: 2\n", "  cpus: 2\n    firmware: uefi\n"));
    CHECK(errors_of(f).find("the domain has firmware bios; the file asks for uefi") !=
          std::string::npos);
  }
  CHECK(lab.connector.count("hv2 set_domain_owner") == 0);
}
