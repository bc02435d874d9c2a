// Golden files: tests/golden/NAME holds the exact expected text. KUMO_UPDATE_GOLDEN=1 rewrites
// them (then review the diff).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

namespace kumo::test {

inline void check_golden(const std::string& name, const std::string& actual) {
  const std::string path =
      (std::filesystem::path(KUMO_SOURCE_DIR) / "tests/golden" / name).string();
  if (std::getenv("KUMO_UPDATE_GOLDEN")) std::ofstream(path) << actual;
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(actual == ss.str());
}

}  // namespace kumo::test
