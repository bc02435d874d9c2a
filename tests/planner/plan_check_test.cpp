// A saved plan's fields are checked on loading: nothing that becomes a libvirt object's name, a
// file on a host or a file in the image cache can be turned into a path by editing the plan.
#include "planner/plan_check.h"

#include <catch2/catch.hpp>

#include "planner/plan_io.h"
#include "tests/exec_fixture.h"

using namespace kumo;
using namespace kumo::test;
using json = nlohmann::json;

namespace {

// The index of the change of `address` in a saved plan's JSON.
std::string change(const json& doc, const std::string& address) {
  for (std::size_t i = 0; i < doc["changes"].size(); ++i)
    if (doc["changes"][i]["address"] == address) return "/changes/" + std::to_string(i);
  FAIL("no change of " << address);
  return "";
}

// Every string field of `doc` at `pointers`, set to `value` one at a time, is refused.
void each_refused(const json& doc, const std::vector<std::string>& pointers,
                  const std::string& value) {
  std::string error;
  REQUIRE(plan_from_json(doc, &error).has_value());
  for (const auto& p : pointers) {
    INFO(p << " = " << value);
    json bad = doc;
    REQUIRE(bad.contains(json::json_pointer(p)));
    bad[json::json_pointer(p)] = value;
    CHECK_FALSE(plan_from_json(bad, &error).has_value());
    CHECK(error.rfind("saved plan is damaged", 0) == 0);
  }
}

}  // namespace

TEST_CASE("no name in a saved plan can become a path", "[plan_check]") {
  Lab lab;
  const Plan create = lab.plan(config(kCluster));
  const json made = plan_to_json(create);
  const std::string vm = change(made, "vm.web-0"), net = change(made, "network.front"),
                    root = change(made, "volume.web-0/root"),
                    data = change(made, "volume.web-0/data/data");
  const std::vector<std::string> payload_fields = {
      "/cluster",
      "/hosts/0/name",
      "/hosts/0/pool",
      vm + "/host",
      vm + "/address",
      vm + "/desired/name",
      vm + "/desired/root_volume",
      vm + "/desired/seed_volume",
      vm + "/desired/data_disks/0/0",
      vm + "/desired/data_disks/0/1",
      vm + "/desired/nics/0/network",
      vm + "/desired/nics/0/mac",
      net + "/desired/name",
      net + "/desired/bridge",
      root + "/desired/name",
      root + "/parent",
      data + "/desired/name",
      "/images/0/name",
      "/images/0/checksum",
      "/images/0/volume",
      "/images/0/fetch/checksum",
      "/images/0/upload_to/0",
  };
  for (const char* value : {"../../etc/passwd", "/etc/passwd", "..", "a/../../b"})
    each_refused(made, payload_fields, value);

  REQUIRE(lab.apply(create).success());
  PlanOptions destroy;
  destroy.destroy = true;
  const json gone = plan_to_json(lab.plan(config(kCluster), destroy));
  const std::vector<std::string> observed_fields = {
      change(gone, "vm.web-0") + "/observed/name",
      change(gone, "vm.web-0") + "/observed/uuid",
      change(gone, "network.front") + "/observed/name",
      change(gone, "network.front") + "/observed/uuid",
      change(gone, "volume.web-0/root") + "/observed/name",
      change(gone, "volume.web-0/data/data") + "/observed/name",
  };
  each_refused(gone, observed_fields, "../../etc/passwd");
}

TEST_CASE("a saved plan's names must be the ones kumo gives this cluster's objects",
          "[plan_check]") {
  Lab lab;
  REQUIRE(lab.apply(lab.plan(config(kCluster))).success());
  PlanOptions destroy;
  destroy.destroy = true;
  const json gone = plan_to_json(lab.plan(config(kCluster), destroy));
  const std::string vm = change(gone, "vm.web-0"), net = change(gone, "network.front"),
                    root = change(gone, "volume.web-0/root");
  // Each points a delete somewhere else than its address says: refused before anything runs.
  each_refused(gone, {vm + "/observed/name"}, "db");
  each_refused(gone, {net + "/observed/name"}, "default");
  each_refused(gone, {net + "/observed/name"}, "kumo_other_front");
  each_refused(gone, {root + "/observed/name"}, "kumo_fest_web-1_root.qcow2");
  each_refused(gone, {root + "/observed/name"}, "precious.qcow2");
}

TEST_CASE("checksums are an algorithm and hex digits of its length", "[plan_check]") {
  CHECK(is_checksum_text("sha256:" + std::string(64, 'a')));
  CHECK(is_checksum_text("sha512:" + std::string(128, '0')));
  CHECK_FALSE(is_checksum_text("sha256:" + std::string(63, 'a')));
  CHECK_FALSE(is_checksum_text("sha256:" + std::string(64, 'A')));
  CHECK_FALSE(is_checksum_text("md5:" + std::string(32, 'a')));
  CHECK_FALSE(is_checksum_text("sha256:../" + std::string(61, 'a')));
  CHECK_FALSE(is_checksum_text(std::string(64, 'a')));
  CHECK_FALSE(is_checksum_text(""));
}
