// A saved plan is checked, not trusted: it is current only while the hosts are as it saw them.
#include "planner/saved_plan.h"

#include <catch2/catch.hpp>

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
