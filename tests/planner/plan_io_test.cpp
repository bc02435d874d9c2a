#include "planner/plan_io.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

using namespace kumo;

TEST_CASE("a saved plan reads back exactly, is private, and other files are refused", "[plan_io]") {
  Plan p;
  p.cluster = "fest";
  p.config_file = "kumo.yaml";
  p.fingerprint = "sha256:abc";
  p.hosts.push_back(
      {"hv1", "test:///default", true, "default", true, false, "", true, "kvm", 1, 2, 3, 17, 0.5});
  ResourceChange c;
  c.address = Address::vm("web");
  c.host = "hv1";
  c.action = Action::Replace;
  c.disruption = Disruption::Recreate;
  c.destroys_data = true;
  c.reason = "why";
  VmPayload vm;
  vm.name = "web";
  vm.record.image = "deb";
  vm.memory = 512ull << 20;
  vm.root_volume = "kumo_fest_web_root.qcow2";
  vm.seed_volume = "kumo_fest_web_seed.iso";
  vm.data_disks = {{"pg", "kumo_fest_web_data-pg.qcow2"}};
  vm.nics = {{"kumo_fest_front", "", "52:54:00:00:00:01", "", "", "", 0}};
  c.desired = vm;
  c.observed = ObservedRef{"web", "uuid-1", "", "running", 0};
  c.steps.remove_old = c.steps.start = true;
  AttributeChange a;
  a.name = "image";
  a.before = std::string("a");
  a.after = std::string("b");
  a.forces_replacement = true;
  c.attributes.push_back(a);
  p.changes.push_back(c);

  const auto path = (std::filesystem::temp_directory_path() / "kumo-plan-io-test.json").string();
  std::string error;
  REQUIRE(save_plan(p, path, &error));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto back = load_plan(path, &error);
  INFO(error);
  REQUIRE(back.has_value());
  CHECK(plan_to_json(*back) == plan_to_json(p));

  std::ofstream(path) << "{\"format_version\": 1}";
  CHECK_FALSE(load_plan(path, &error).has_value());
  CHECK(error == "not a saved kumo plan (make one with kumo plan -o FILE)");
  std::ofstream(path) << "{\"kumo_saved_plan\": 99}";
  CHECK_FALSE(load_plan(path, &error).has_value());
  CHECK(error == "saved plan format 99 is not supported by this kumo (format " +
                     std::to_string(kSavedPlanVersion) + "); plan again");
  std::filesystem::remove(path);
}
