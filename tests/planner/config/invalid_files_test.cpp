// Every file in tests/data/invalid/ is broken on purpose. NAME.expected holds the exact lines
// kumo validate prints for NAME.yaml (file names as the basename). A line
// "# test-vars: NAME=VALUE ..." in the YAML passes those as -var.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "planner/config/loader.h"

using namespace kumo;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::pair<std::string, std::string>> test_vars(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> vars;
  const std::string tag = "# test-vars:";
  auto pos = text.find(tag);
  if (pos == std::string::npos) return vars;
  std::istringstream line(text.substr(pos + tag.size(), text.find('\n', pos) - pos - tag.size()));
  std::string item;
  while (line >> item) {
    auto eq = item.find('=');
    vars.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return vars;
}

}  // namespace

TEST_CASE("every invalid example reports exactly its expected errors", "[loader][invalid]") {
  const fs::path dir = fs::path(KUMO_SOURCE_DIR) / "tests/data/invalid";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 40);
  for (const auto& file : files) {
    DYNAMIC_SECTION(file.filename().string()) {
      const std::string text = slurp(file);
      LoadOptions options;
      options.environment = {{"HOME", "/nonexistent-home"}};
      options.vars = test_vars(text);
      LoadResult result = load_config_text(text, file.filename().string(), dir.string(), options);
      std::string actual;
      for (const auto& d : result.diagnostics.sorted()) actual += format_diagnostic(d) + "\n";
      const fs::path expected_file = fs::path(file).replace_extension(".expected");
      REQUIRE(fs::exists(expected_file));
      CHECK(actual == slurp(expected_file));
      CHECK_FALSE(result.config.has_value());
    }
  }
}
