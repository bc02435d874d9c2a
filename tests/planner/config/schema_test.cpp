#include "planner/config/schema.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace kumo;

TEST_CASE("the schema names the fixed top-level keys", "[schema]") {
  auto keys = schema_keys("");
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"cluster", "defaults", "hosts", "images", "networks",
                                         "ssh", "variables", "vms"});
  CHECK(config_schema()["required"] == nlohmann::json::array({"cluster"}));
}

TEST_CASE("defaults accept every VM field but count", "[schema]") {
  auto vm = schema_keys("vm");
  auto defaults = schema_keys("defaults");
  vm.erase(std::find(vm.begin(), vm.end(), "count"));
  CHECK(vm == defaults);
}

TEST_CASE("docs/configuration.md documents every key of the schema", "[schema][docs]") {
  std::ifstream in(std::filesystem::path(KUMO_SOURCE_DIR) / "docs/configuration.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (const auto& def : {"", "variable", "host", "image", "network", "nic", "placement",
                          "cloud_init", "lifecycle", "vm", "ssh"}) {
    for (const auto& key : schema_keys(def)) {
      INFO("section " << (*def ? def : "top level") << ", key " << key);
      CHECK(doc.find("`" + key + "`") != std::string::npos);
    }
  }
}
