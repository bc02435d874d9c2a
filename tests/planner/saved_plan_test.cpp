// A saved plan is checked, not trusted: it is current only while the hosts are as it saw them.
#include "planner/saved_plan.h"

#include <catch2/catch.hpp>

#include <algorithm>

#include "planner/differ.h"
#include "providers/ownership.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;

TEST_CASE("a saved plan is current until a host changes", "[saved_plan]") {
  Lab lab;
  const Plan p = lab.plan(config(kCluster));
  const auto timeout = std::chrono::milliseconds(500);
  CHECK(check_saved_plan(p, lab, timeout).current);
  lab.add_domain("hv2", "handmade");  // anything on any host: the plan no longer describes it
  const SavedPlanCheck stale = check_saved_plan(p, lab, timeout);
  CHECK_FALSE(stale.current);
  CHECK(stale.unreachable.empty());
}

TEST_CASE("a host unreachable since the plan makes it stale, and says which", "[saved_plan]") {
  Lab lab;
  const Plan p = lab.plan(config(kCluster));
  lab.unreachable.insert("hv3");
  const SavedPlanCheck c = check_saved_plan(p, lab, std::chrono::milliseconds(500));
  CHECK_FALSE(c.current);
  CHECK(c.unreachable == std::vector<std::string>{"host hv3 (test:///hv3): connection refused"});
}

TEST_CASE("a host the plan skipped stays skipped: neither read nor locked", "[saved_plan]") {
  Lab lab;
  lab.unreachable.insert("hv2");
  PlanOptions skip;
  skip.skip_unreachable = true;
  const Plan p = lab.plan(config(kCluster), skip);
  lab.unreachable.clear();
  lab.add_domain("hv2", "handmade");  // changes on the skipped host do not matter
  CHECK(check_saved_plan(p, lab, std::chrono::milliseconds(500)).current);
  std::vector<std::string> locked;
  for (const auto& h : plan_hosts(p)) locked.push_back(h.name);
  CHECK(locked == std::vector<std::string>{"hv1", "hv3"});
}

TEST_CASE("the state's fingerprint: the objects' order is no change, their content is",
          "[saved_plan]") {
  ObservedHost h;
  h.host = "hv1";
  h.reachable = true;
  for (const char* name : {"web-0", "web-1", "db"}) {
    ObservedDomain d;
    d.name = name;
    d.uuid = std::string("uuid-") + name;
    d.state = "running";
    d.owner = Ownership{"fest", std::string("vm.") + name, "hash-" + d.name, std::nullopt};
    h.domains.push_back(d);
  }
  for (const char* name : {"kumo_fest_web-0_root.qcow2", "kumo_fest_db_root.qcow2"}) {
    ObservedVolume v;
    v.pool = "default";
    v.name = name;
    v.capacity = 10 << 20;
    h.volumes.push_back(v);
  }
  const std::string base = fingerprint({h});
  CHECK(base.rfind("sha256:", 0) == 0);
  CHECK(base.size() == 7 + 64);

  ObservedHost reordered = h;
  std::reverse(reordered.domains.begin(), reordered.domains.end());
  std::reverse(reordered.volumes.begin(), reordered.volumes.end());
  CHECK(fingerprint({reordered}) == base);
  ObservedHost locked = h;  // a lock comes and goes with every apply
  ObservedVolume lock;
  lock.pool = "default";
  lock.name = lock_volume_name("fest");
  lock.capacity = 4096;
  locked.volumes.push_back(lock);
  CHECK(fingerprint({locked}) == base);

  ObservedHost changed = h;
  changed.volumes[1].capacity += 1;
  CHECK(fingerprint({changed}) != base);
  changed = h;
  changed.domains[2].state = "shut off";
  CHECK(fingerprint({changed}) != base);
  changed = h;
  changed.domains[0].owner->spec_hash = "other";
  CHECK(fingerprint({changed}) != base);
  changed = h;
  changed.domains.pop_back();
  CHECK(fingerprint({changed}) != base);
  // An object's fields never run into the next one's: a name that holds what follows it.
  changed = h;
  changed.volumes[0].name += "\n[\"default\"";
  CHECK(fingerprint({changed}) != base);
  ObservedHost other = h;
  other.host = "hv2";
  CHECK(fingerprint({h, other}) != fingerprint({other, h}));  // hosts in the file's order
}
