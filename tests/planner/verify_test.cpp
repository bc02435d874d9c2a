// Saved plans are checked, not trusted, and ownership by name alone is not enough: each step
// looks at the object it changes right before it acts (planner/exec/verify.cpp), a network is
// kumo's only with kumo's record of making it, and a saved plan's fields are checked on loading
// (planner/plan_check.cpp).
#include "planner/exec/verify.h"

#include <catch2/catch.hpp>

#include "planner/plan_io.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;
using Catch::Matchers::Contains;

namespace {

const std::string kRefused =
    "; refused: the plan was edited or the host changed since planning (plan again)";

std::string with_count(int n) {
  std::string text = kCluster;
  text.replace(text.find("count: 3"), 8, "count: " + std::to_string(n));
  return text;
}

const ResourceChange* find_change(const Plan& p, const std::string& address, Action action) {
  for (const auto& c : p.changes)
    if (c.address.str() == address && c.action == action) return &c;
  return nullptr;
}

bool has_domain(Lab& lab, const std::string& host, const std::string& name) {
  for (const auto& d : lab.host(host).domains)
    if (d.name == name) return true;
  return false;
}

bool has_network(Lab& lab, const std::string& host, const std::string& name) {
  for (const auto& n : lab.host(host).networks)
    if (n.name == name) return true;
  return false;
}

bool has_volume(Lab& lab, const std::string& host, const std::string& name) {
  for (const auto& v : lab.host(host).volumes)
    if (v.name == name) return true;
  return false;
}

// The plan as `kumo apply PLANFILE` reads it back, after `edit` changed its JSON.
Plan edited(const Plan& p, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json doc = plan_to_json(p);
  edit(doc);
  std::string error;
  auto back = plan_from_json(doc, &error);
  INFO(error);
  REQUIRE(back.has_value());
  return *back;
}

// A cluster applied on the fake hosts, then the plan that deletes web-2 (on hv3).
struct Shrunk {
  Lab lab;
  Plan plan;
  Shrunk() {
    const ExecResult r = lab.apply(lab.plan(config(kCluster)));
    INFO(failures(r));
    REQUIRE(r.success());
    plan = lab.plan(config(with_count(2)));
    const ResourceChange* del = find_change(plan, "vm.web-2", Action::Delete);
    REQUIRE(del);
    REQUIRE(del->host == "hv3");
  }
};

}  // namespace

TEST_CASE("an edited saved plan whose delete targets a foreign domain is refused, it survives",
          "[verify]") {
  Shrunk s;
  s.lab.add_domain("hv3", "db");  // someone else's: no kumo metadata
  const Plan forged = edited(s.plan, [](nlohmann::json& doc) {
    for (auto& c : doc["changes"]) {
      if (c["address"] != "vm.web-2") continue;
      c["address"] = "vm.db";
      c["observed"]["name"] = "db";
      c["observed"]["uuid"] = "uuid-db";
    }
  });
  const ExecResult r = s.lab.apply(forged);
  const StepOutcome* del = step(r, "hv3/vm.db/delete");
  REQUIRE(del);
  CHECK(del->status == StepStatus::Failed);
  CHECK(del->message ==
        "vm.db on host hv3 (test:///hv3): the domain db there is not this "
        "cluster's (no kumo metadata)" +
            kRefused);
  CHECK(has_domain(s.lab, "hv3", "db"));
  CHECK(s.lab.connector.count("hv3 delete_domain") == 0);
}

TEST_CASE(
    "a domain made foreign under the planned name since planning is not deleted, nor its "
    "volumes",
    "[verify]") {
  Shrunk s;
  auto& domains = s.lab.host("hv3").domains;
  std::erase_if(domains, [](const ObservedDomain& d) { return d.name == "web-2"; });
  s.lab.add_domain("hv3", "web-2");  // undefined, then defined again without kumo's metadata
  const std::size_t deletes_before = s.lab.connector.count("hv3 delete_");
  const ExecResult r = s.lab.apply(s.plan);
  const StepOutcome* del = step(r, "hv3/vm.web-2/delete");
  REQUIRE(del);
  CHECK(del->message ==
        "vm.web-2 on host hv3 (test:///hv3): the domain web-2 there is not this "
        "cluster's (no kumo metadata)" +
            kRefused);
  CHECK(has_domain(s.lab, "hv3", "web-2"));
  CHECK(has_volume(s.lab, "hv3", "kumo_fest_web-2_root.qcow2"));  // its volumes wait for it
  CHECK(s.lab.connector.count("hv3 delete_") == deletes_before);
}

TEST_CASE("a domain whose UUID is not the one the plan recorded is refused", "[verify]") {
  SECTION("the domain changed on the host") {
    Shrunk s;
    for (auto& d : s.lab.host("hv3").domains)
      if (d.name == "web-2") d.uuid = "uuid-other";
    const ExecResult r = s.lab.apply(s.plan);
    CHECK(step(r, "hv3/vm.web-2/delete")->message ==
          "vm.web-2 on host hv3 (test:///hv3): the domain web-2 there is not the one the plan "
          "recorded (UUID uuid-other, the plan recorded uuid-web-2)" +
              kRefused);
    CHECK(has_domain(s.lab, "hv3", "web-2"));
  }
  SECTION("the saved plan's UUID was edited") {
    Shrunk s;
    const Plan forged = edited(s.plan, [](nlohmann::json& doc) {
      for (auto& c : doc["changes"])
        if (c["address"] == "vm.web-2") c["observed"]["uuid"] = "uuid-forged";
    });
    const ExecResult r = s.lab.apply(forged);
    CHECK_THAT(step(r, "hv3/vm.web-2/delete")->message, Contains("the plan recorded uuid-forged"));
    CHECK(has_domain(s.lab, "hv3", "web-2"));
  }
}

TEST_CASE("another cluster's domain is refused too, naming the cluster", "[verify]") {
  Shrunk s;
  for (auto& d : s.lab.host("hv3").domains)
    if (d.name == "web-2") d.owner->cluster = "other";
  const ExecResult r = s.lab.apply(s.plan);
  CHECK(step(r, "hv3/vm.web-2/delete")->message ==
        "vm.web-2 on host hv3 (test:///hv3): the domain web-2 there is not this cluster's (it "
        "belongs to cluster \"other\")" +
            kRefused);
  CHECK(has_domain(s.lab, "hv3", "web-2"));
}

TEST_CASE("an update of a domain that is no longer the planned one is refused before it changes",
          "[verify]") {
  Lab lab;
  REQUIRE(lab.apply(lab.plan(config(kCluster))).success());
  std::string bigger = kCluster;
  bigger.replace(bigger.find("memory: 512MiB"), 14, "memory: 768MiB");
  const Plan p = lab.plan(config(bigger));
  REQUIRE(find_change(p, "vm.web-0", Action::Update));
  for (auto& d : lab.host("hv1").domains)
    if (d.name == "web-0") d.owner.reset();
  const ExecResult r = lab.apply(p);
  CHECK(step(r, "hv1/vm.web-0/update")->message ==
        "vm.web-0 on host hv1 (test:///hv1): the domain web-0 there is not this cluster's (no kumo "
        "metadata)" +
            kRefused);
  CHECK(lab.connector.count("hv1 set_domain_memory") == 0);
  CHECK(lab.connector.count("hv1 define_domain web-0") == 1);  // the first apply's only
}

TEST_CASE("a volume that a foreign domain holds is not deleted", "[verify]") {
  Lab lab;
  lab.add_volume("hv1", "kumo_fest_web-9_root.qcow2", 1 << 20);  // left over: no VM of the file
  const Plan p = lab.plan(config(kCluster));
  REQUIRE(find_change(p, "volume.web-9/root", Action::Delete));
  lab.add_domain("hv1", "web-9");  // someone else's domain of that name, using it
  const ExecResult r = lab.apply(p);
  CHECK(step(r, "hv1/volume.web-9/root/delete")->message ==
        "volume.web-9/root on host hv1 (test:///hv1): the volume kumo_fest_web-9_root.qcow2 "
        "belongs with the domain web-9 there, which is not this cluster's (no kumo metadata)" +
            kRefused);
  CHECK(has_volume(lab, "hv1", "kumo_fest_web-9_root.qcow2"));
}

TEST_CASE("a volume delete after its VM's delete does not ask about the domain again", "[verify]") {
  // What the VM's delete step found (no domain left) stands for its volumes' deletes, which
  // run right after it: they save a lookup each. Without that step before them they ask.
  Lab lab;
  lab.add_volume("hv1", "kumo_fest_web-9_root.qcow2", 1 << 20);
  const Plan p = lab.plan(config(kCluster));
  const ResourceChange* c = find_change(p, "volume.web-9/root", Action::Delete);
  REQUIRE(c);
  lab.add_domain("hv1", "web-9");
  const ExecListener quiet = [](const ExecEvent&) {};
  exec::EventSink sink(quiet);
  const ExecOptions options;
  exec::ExecContext ctx(p, lab.connector, lab.fetcher, options, sink);
  CHECK_THROWS_WITH(exec::delete_verified_volume(ctx, *c, "kumo_fest_web-9_root.qcow2"),
                    Contains("which is not this cluster's"));
  CHECK(has_volume(lab, "hv1", "kumo_fest_web-9_root.qcow2"));
  exec::delete_verified_volume(ctx, *c, "kumo_fest_web-9_root.qcow2", /*vm_gone=*/true);
  CHECK_FALSE(has_volume(lab, "hv1", "kumo_fest_web-9_root.qcow2"));
}

TEST_CASE("a network with kumo's reserved name but no record of kumo making it is foreign",
          "[verify]") {
  Lab lab;
  lab.add_network("hv1", "kumo_fest_old");  // the name alone: not kumo's
  PlanOptions destroy;
  destroy.destroy = true;
  const Plan p = lab.plan(config(kCluster), destroy);
  CHECK_FALSE(find_change(p, "network.old", Action::Delete));
  REQUIRE(lab.apply(p).success());
  CHECK(has_network(lab, "hv1", "kumo_fest_old"));

  SECTION("and a desired network of that name fails the plan, saying what to do") {
    lab.add_network("hv2", "kumo_fest_front");
    auto r = make_plan(expand(config(kCluster)), lab, {});
    REQUIRE_FALSE(r.plan.has_value());
    std::string errors;
    for (const auto& d : r.errors.sorted()) errors += format_diagnostic(d) + "\n";
    CHECK_THAT(errors,
               Contains("host \"hv2\": network kumo_fest_front (UUID uuid-kumo-fest-front) has the "
                        "name kumo reserves for network.front, but kumo has no record of making it "
                        "(no volume kumo-net_fest_front_uuid-kumo-fest-front in storage pool "
                        "\"default\"); kumo never adopts it"));
  }
}

TEST_CASE("a network kumo recorded is deleted, with its record", "[verify]") {
  Lab lab;
  lab.add_network("hv1", "kumo_fest_old");
  lab.add_volume("hv1", network_record_name("fest", "old", "uuid-kumo-fest-old"), 0);
  PlanOptions destroy;
  destroy.destroy = true;
  const Plan p = lab.plan(config(kCluster), destroy);
  REQUIRE(find_change(p, "network.old", Action::Delete));

  SECTION("deleted") {
    const ExecResult r = lab.apply(p);
    INFO(failures(r));
    CHECK(r.success());
    CHECK_FALSE(has_network(lab, "hv1", "kumo_fest_old"));
    CHECK_FALSE(has_volume(lab, "hv1", "kumo-net_fest_old_uuid-kumo-fest-old"));
  }
  SECTION("refused when its record went away since planning") {
    std::erase_if(lab.host("hv1").volumes,
                  [](const ObservedVolume& v) { return v.name.rfind("kumo-net_", 0) == 0; });
    const ExecResult r = lab.apply(p);
    CHECK(step(r, "hv1/network.old/delete")->message ==
          "network.old on host hv1 (test:///hv1): the network kumo_fest_old there is not this "
          "cluster's (kumo has no record of making it: no volume "
          "kumo-net_fest_old_uuid-kumo-fest-old)" +
              kRefused);
    CHECK(has_network(lab, "hv1", "kumo_fest_old"));
  }
}

TEST_CASE("a record of a network that was never made is removed by the next apply or destroy",
          "[verify]") {
  Lab lab;
  // An apply killed between recording network.front on hv1 and defining it.
  const std::string stale = network_record_name("fest", "front", "uuid-never-defined");
  lab.add_volume("hv1", stale, 0);

  SECTION("apply makes the network and removes the stale record; then nothing is left to do") {
    const Plan p = lab.plan(config(kCluster));
    const ResourceChange* del = find_change(p, "network.front", Action::Delete);
    REQUIRE(del);
    CHECK(del->host == "hv1");
    CHECK(del->observed->state == kStaleNetworkRecord);
    CHECK_THAT(del->reason, Contains("record of a network that was never made"));
    CHECK(find_change(p, "network.front", Action::Create));
    const ExecResult r = lab.apply(p);
    INFO(failures(r));
    REQUIRE(r.success());
    CHECK_FALSE(has_volume(lab, "hv1", stale));
    CHECK(has_network(lab, "hv1", "kumo_fest_front"));
    CHECK_FALSE(lab.plan(config(kCluster)).has_changes());
  }
  SECTION("destroy removes it with everything else") {
    std::erase_if(lab.host("hv1").volumes,
                  [&](const ObservedVolume& v) { return v.name == stale; });
    REQUIRE(lab.apply(lab.plan(config(kCluster))).success());
    lab.add_volume("hv1", stale, 0);  // killed again, this time on a second apply
    PlanOptions destroy;
    destroy.destroy = true;
    const ExecResult r = lab.apply(lab.plan(config(kCluster), destroy));
    INFO(failures(r));
    REQUIRE(r.success());
    for (const char* h : {"hv1", "hv2", "hv3"}) {
      for (const auto& v : lab.host(h).volumes) CHECK(v.name.rfind("kumo-net_", 0) != 0);
    }
  }
  SECTION("refused when a network with the record's UUID appeared since planning") {
    PlanOptions destroy;
    destroy.destroy = true;
    const Plan p = lab.plan(config(kCluster), destroy);
    REQUIRE(find_change(p, "network.front", Action::Delete));
    lab.add_network("hv1", "kumo_fest_front").uuid = "uuid-never-defined";
    const ExecResult r = lab.apply(p);
    CHECK_THAT(step(r, "hv1/network.front/delete")->message,
               Contains("network kumo_fest_front now has the UUID of the record"));
    CHECK(has_volume(lab, "hv1", stale));
  }
}

TEST_CASE("a network that fails to be defined leaves no record behind", "[verify]") {
  Lab lab;
  lab.connector.fail.insert("hv2 define_network");
  const ExecResult r = lab.apply(lab.plan(config(kCluster)));
  CHECK_FALSE(r.success());
  for (const auto& v : lab.host("hv2").volumes) CHECK(v.name.rfind("kumo-net_", 0) != 0);
  lab.connector.fail.clear();
  const Plan again = lab.plan(config(kCluster));
  CHECK_FALSE(find_change(again, "network.front", Action::Delete));
  REQUIRE(lab.apply(again).success());
  CHECK_FALSE(lab.plan(config(kCluster)).has_changes());
}

TEST_CASE("networks kumo makes are recorded before they are defined, with the UUID they get",
          "[verify]") {
  Lab lab;
  const ExecResult r = lab.apply(lab.plan(config(kCluster)));
  REQUIRE(r.success());
  for (const char* h : {"hv1", "hv2", "hv3"}) {
    std::string uuid;
    for (const auto& n : lab.host(h).networks)
      if (n.name == "kumo_fest_front") uuid = n.uuid;
    REQUIRE(uuid.size() == 36);
    CHECK(has_volume(lab, h, network_record_name("fest", "front", uuid)));
    CHECK(lab.connector.index_of(std::string(h) + " create_volume_exclusive kumo-net_fest_") <
          lab.connector.index_of(std::string(h) + " define_network kumo_fest_front"));
  }
  CHECK_FALSE(lab.plan(config(kCluster)).has_changes());
}
