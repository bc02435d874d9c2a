// kumo destroy --target of VMs reads only what names tie to the targets (ReadScope): the plan
// and what apply removes are those of a full read, other VMs are neither read nor touched, and a
// target its name does not find is looked for in a full read.
#include <algorithm>

#include <catch2/catch.hpp>

#include "cli/views/plan_view.h"
#include "planner/config/loader.h"
#include "planner/config/scope.h"
#include "planner/plan_io.h"
#include "planner/planner.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;

namespace {

PlanResult destroy_plan(Lab& lab, const ClusterConfig& cfg, std::vector<std::string> targets) {
  PlanOptions o;
  o.timeout = std::chrono::milliseconds(500);
  o.destroy = true;
  o.targets = std::move(targets);
  // As kumo destroy plans it: the file's other VM entries are not even expanded.
  return make_plan(expand(destroy_scoped_config(cfg, o.targets)), lab, o);
}

std::vector<std::string> addresses(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& c : p.changes) out.push_back(c.host + " " + c.address.str());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> domains_of(Lab& lab, bool with_host = true) {
  std::vector<std::string> out;
  std::lock_guard<std::recursive_mutex> l(lab.state_mu);
  for (const char* h : {"hv1", "hv2", "hv3"})
    for (const auto& d : lab.host(h).domains)
      out.push_back(with_host ? std::string(h) + " " + d.name : d.name);
  std::sort(out.begin(), out.end());
  return out;
}

bool has_volume(Lab& lab, const std::string& host, const std::string& name) {
  std::lock_guard<std::recursive_mutex> l(lab.state_mu);
  const auto& vs = lab.host(host).volumes;
  return std::any_of(vs.begin(), vs.end(), [&](const ObservedVolume& v) { return v.name == name; });
}

}  // namespace

TEST_CASE("destroy --target of a VM reads only its objects and removes exactly them",
          "[planner][destroy-scope]") {
  Lab lab;
  const auto cfg = config(kCluster);
  REQUIRE(lab.apply(lab.plan(cfg)).success());
  lab.add_domain("hv2", "handmade");
  const auto r = destroy_plan(lab, cfg, {"vm.web-1"});
  REQUIRE(r.plan);
  CHECK(lab.scoped_reads == 3);  // one read per host, each limited to the target
  CHECK(addresses(*r.plan) == std::vector<std::string>{"hv2 vm.web-1", "hv2 volume.web-1/data/data",
                                                       "hv2 volume.web-1/root",
                                                       "hv2 volume.web-1/seed"});
  // What was read: the target's domain and volumes (and network records), nothing else.
  for (const auto& h : r.observed) {
    for (const auto& d : h.domains) CHECK(d.name == "web-1");
    for (const auto& v : h.volumes) {
      INFO(v.name);
      CHECK((v.name.find("_web-1_") != std::string::npos || v.name.rfind("kumo-net_", 0) == 0));
    }
  }
  // The host lines still count what each host has.
  for (const auto& h : r.plan->hosts) {
    CHECK(h.scoped);
    CHECK(h.domains == (h.name == "hv2" ? 2 : 1));
  }
  const std::string shown = views::render_human(*r.plan, {});
  CHECK(shown.find("host hv2: kvm, 2 domains, 1 network, ") != std::string::npos);
  CHECK(shown.find("the targets' read in") != std::string::npos);
  CHECK(views::render_json(*r.plan, {})["hosts"][1]["scoped"] == true);
  std::string error;
  const auto back = plan_from_json(plan_to_json(*r.plan), &error);
  REQUIRE(back);
  CHECK(back->hosts[1].scoped);
  CHECK_FALSE(views::render_json(lab.plan(cfg), {})["hosts"][1].contains("scoped"));

  const ExecResult done = lab.apply(*r.plan);
  INFO(failures(done));
  REQUIRE(done.success());
  CHECK(domains_of(lab) == std::vector<std::string>{"hv1 web-0", "hv2 handmade", "hv3 web-2"});
  CHECK_FALSE(has_volume(lab, "hv2", "kumo_fest_web-1_root.qcow2"));
  CHECK(has_volume(lab, "hv1", "kumo_fest_web-0_root.qcow2"));
  // The rest of the cluster is as the file wants it: only web-1 is to be made again.
  CHECK(addresses(lab.plan(cfg)) ==
        std::vector<std::string>{"hv2 vm.web-1", "hv2 volume.web-1/data/data",
                                 "hv2 volume.web-1/root", "hv2 volume.web-1/seed"});
}

TEST_CASE(
    "destroy --target of a group also removes what a lowered count left, and no VM whose "
    "name merely looks like an instance",
    "[planner][destroy-scope]") {
  Lab lab;
  // web-12 is a VM of its own, not an instance of web.
  const std::string web12 = "  web-12: {image: deb, memory: 512MiB, host: hv1}\n";
  REQUIRE(lab.apply(lab.plan(config(kCluster + web12))).success());
  REQUIRE(domains_of(lab, false) == std::vector<std::string>{"web-0", "web-1", "web-12", "web-2"});
  // The count lowered from 3 to 2: web-2 is left on hv3 until the next apply.
  std::string text = kCluster + web12;
  text.replace(text.find("count: 3"), 8, "count: 2");
  const auto cfg = config(text);
  const auto r = destroy_plan(lab, cfg, {"vm.web"});
  REQUIRE(r.plan);
  CHECK(lab.scoped_reads == 3);
  std::vector<std::string> vms;
  for (const auto& c : r.plan->changes)
    if (!c.parent) vms.push_back(c.address.str());
  std::sort(vms.begin(), vms.end());
  CHECK(vms == std::vector<std::string>{"vm.web-0", "vm.web-1", "vm.web-2"});
  REQUIRE(lab.apply(*r.plan).success());
  CHECK(domains_of(lab, false) == std::vector<std::string>{"web-12"});
  CHECK(has_volume(lab, "hv1", "kumo_fest_web-12_root.qcow2"));
}

TEST_CASE("a target its name does not find is looked for in a full read",
          "[planner][destroy-scope]") {
  Lab lab;
  const auto cfg = config(kCluster);
  REQUIRE(lab.apply(lab.plan(cfg)).success());
  SECTION("a domain named otherwise (an adopt: key taken out of the file) is still removed") {
    {
      std::lock_guard<std::recursive_mutex> l(lab.state_mu);
      for (auto& d : lab.host("hv2").domains)
        if (d.name == "web-1") d.name = "legacy-web";
    }
    const auto r = destroy_plan(lab, cfg, {"vm.web-1"});
    REQUIRE(r.plan);
    CHECK(lab.scoped_reads == 3);
    CHECK_FALSE(r.plan->hosts[1].scoped);  // the plan came from the full read
    CHECK(addresses(*r.plan) ==
          std::vector<std::string>{"hv2 vm.web-1", "hv2 volume.web-1/data/data",
                                   "hv2 volume.web-1/root", "hv2 volume.web-1/seed"});
    REQUIRE(lab.apply(*r.plan).success());
    CHECK(domains_of(lab) == std::vector<std::string>{"hv1 web-0", "hv3 web-2"});
  }
  SECTION("an unreachable host is not tried again") {
    lab.unreachable.insert("hv3");
    PlanOptions o;
    o.timeout = std::chrono::milliseconds(500);
    o.destroy = true;
    o.skip_unreachable = true;
    o.targets = {"vm.web-2"};  // on hv3: found nowhere
    auto reads = [&](const std::string& host) {
      const auto calls = lab.calls();
      return std::count(calls.begin(), calls.end(), "observe " + host);
    };
    const auto hv1 = reads("hv1"), hv3 = reads("hv3");
    const auto r = make_plan(expand(cfg), lab, o);
    REQUIRE(r.plan);
    CHECK_FALSE(r.plan->has_changes());
    CHECK(reads("hv3") == hv3 + 1);
    CHECK(reads("hv1") == hv1 + 2);
  }
  SECTION("a VM already gone: nothing to do, and nothing else touched") {
    PlanOptions all;
    all.destroy = true;
    all.targets = {"vm.web-1"};
    REQUIRE(lab.apply(lab.plan(cfg, all)).success());
    lab.scoped_reads = 0;
    const auto r = destroy_plan(lab, cfg, {"vm.web-1"});
    REQUIRE(r.plan);
    CHECK(lab.scoped_reads == 3);
    CHECK_FALSE(r.plan->has_changes());
    CHECK(domains_of(lab) == std::vector<std::string>{"hv1 web-0", "hv3 web-2"});
  }
}

TEST_CASE("a scoped destroy is refused as a full one is: a protected target, unknown target",
          "[planner][destroy-scope]") {
  Lab lab;
  std::string text = kCluster +
                     "  api: {image: deb, memory: 512MiB, host: hv1, lifecycle: "
                     "{prevent_destroy: true}}\n";
  const auto cfg = config(text);
  REQUIRE(lab.apply(lab.plan(cfg)).success());
  // A protected VM that is no target does not stand in the way.
  auto r = destroy_plan(lab, cfg, {"vm.web-0"});
  REQUIRE(r.plan);
  REQUIRE(r.plan->has_changes());
  for (const auto& c : r.plan->changes)
    CHECK((c.address.str() == "vm.web-0" || (c.parent && c.parent->str() == "vm.web-0")));
  // The protected one refuses, as in a full read.
  r = destroy_plan(lab, cfg, {"vm.api"});
  CHECK_FALSE(r.plan);
  CHECK(errors_of(r).find("vm.api has lifecycle.prevent_destroy") != std::string::npos);
  const auto calls = lab.calls().size();
  r = destroy_plan(lab, cfg, {"vm.nope"});
  CHECK_FALSE(r.plan);
  CHECK(errors_of(r).find("--target vm.nope: no such resource") != std::string::npos);
  CHECK(lab.calls().size() == calls + 3);  // one read of each host, no full read after it
}

TEST_CASE("destroy of a network, or of everything, reads every domain",
          "[planner][destroy-scope]") {
  Lab lab;
  const auto cfg = config(kCluster);
  REQUIRE(lab.apply(lab.plan(cfg)).success());
  auto r = destroy_plan(lab, cfg, {"network.front"});
  REQUIRE(r.plan);
  r = destroy_plan(lab, cfg, {"vm.web-0", "network.front"});
  REQUIRE(r.plan);
  r = destroy_plan(lab, cfg, {});
  REQUIRE(r.plan);
  CHECK(lab.scoped_reads == 0);
  for (const auto& h : r.plan->hosts) CHECK_FALSE(h.scoped);
}

TEST_CASE("a read scope takes names, a group's numbered instances and their volumes",
          "[planner][destroy-scope]") {
  ReadScope s;
  s.cluster = "fest";
  s.names = {"db", "legacy"};
  s.groups = {"web"};
  for (const char* yes : {"db", "legacy", "web-0", "web-12"}) CHECK(s.has_domain(yes));
  for (const char* no : {"web", "web-", "web-1a", "webs-1", "db-0", "x"})
    CHECK_FALSE(s.has_domain(no));
  for (const char* yes :
       {"kumo_fest_web-3_root.qcow2", "kumo_fest_db_seed.iso", "kumo_fest_db_data-logs.qcow2",
        "kumo_fest_web-0_serial.log", "kumo_fest_db_nvram.fd", "kumo-net_fest_front_0f3c-11"})
    CHECK(s.has_volume(yes));
  for (const char* no :
       {"kumo_other_db_root.qcow2", "kumo_fest_api_root.qcow2", "kumo-image_sha256-ab12.qcow2",
        "kumo-lock_fest", "db_root.qcow2", "kumo-net_other_front_0f3c-11"})
    CHECK_FALSE(s.has_volume(no));
}

TEST_CASE("a destroy of VMs expands only the file's entries its targets can name",
          "[planner][destroy-scope]") {
  const std::string more =
      "  web-12: {image: deb, memory: 512MiB, host: hv1}\n"
      "  db: {image: deb, memory: 512MiB, host: hv1, count: 2}\n"
      "  cache: {image: deb, memory: 512MiB, host: hv2}\n";
  const auto cfg = config(kCluster + more);
  auto names = [](const ClusterConfig& c) {
    std::vector<std::string> out;
    for (const auto& vm : c.vms) out.push_back(vm.name);
    return out;
  };
  const auto all = names(cfg);
  REQUIRE(all.size() == 4);
  PlanOptions o;
  o.destroy = true;
  SECTION("a group, an instance of one, a VM of its own") {
    o.targets = {"vm.db", "vm.web-1"};
    CHECK(names(destroy_scoped_config(cfg, o.targets)) == std::vector<std::string>{"web", "db"});
    o.targets = {"vm.cache"};
    CHECK(names(destroy_scoped_config(cfg, o.targets)) == std::vector<std::string>{"cache"});
    // web-12 is a VM of its own and also what an instance of web would be called: both stay.
    o.targets = {"vm.web-12"};
    CHECK(names(destroy_scoped_config(cfg, o.targets)) ==
          std::vector<std::string>{"web", "web-12"});
    // Not an instance: web-x, cache-0 (cache has no count).
    o.targets = {"vm.cache", "vm.cache-0"};
    CHECK(names(destroy_scoped_config(cfg, o.targets)) == all);
  }
  SECTION("anything else keeps the whole file") {
    o.targets = {"vm.nope"};  // its error's did-you-mean wants every name
    CHECK(names(destroy_scoped_config(cfg, o.targets)) == all);
    o.targets = {"vm.db", "network.front"};
    CHECK(names(destroy_scoped_config(cfg, o.targets)) == all);
    o.targets.clear();  // destroy of everything
    CHECK(names(destroy_scoped_config(cfg, o.targets)) == all);
  }
  SECTION("the plan of the scoped file is the plan of the whole one") {
    Lab lab;
    REQUIRE(lab.apply(lab.plan(cfg)).success());
    o.timeout = std::chrono::milliseconds(500);
    o.targets = {"vm.db"};
    const auto whole = make_plan(expand(cfg), lab, o);
    const auto scoped = make_plan(expand(destroy_scoped_config(cfg, o.targets)), lab, o);
    REQUIRE(whole.plan);
    REQUIRE(scoped.plan);
    CHECK(addresses(*scoped.plan) == addresses(*whole.plan));
    CHECK(addresses(*scoped.plan).size() == 6);  // db-0, db-1, their root and seed volumes
    std::vector<std::string> reasons;
    for (const auto& c : scoped.plan->changes) reasons.push_back(c.reason);
    for (const auto& c : whole.plan->changes)
      CHECK(std::count(reasons.begin(), reasons.end(), c.reason) >= 1);
  }
}
