// user-data is written with yaml-cpp's emitter and must read back as exactly what kumo.yaml
// said: file contents with leading spaces, "<<", trailing newlines, \r, tabs or unicode.
#include "planner/cloudinit.h"

#include <catch2/catch.hpp>

#include <random>
#include <regex>

#include <yaml-cpp/yaml.h>

using namespace kumo;

namespace {

// user-data with `s` as a file's content, a command and a package name; read back.
void check_round_trip(const std::string& s) {
  CloudInitConfig ci;
  ci.write_files = nlohmann::json::array({{{"path", "/etc/x"}, {"content", s}}});
  ci.runcmd = nlohmann::json::array({s});
  ci.packages = {s};
  const std::string ud = render_user_data(ci);
  INFO("user-data:\n" << ud);
  REQUIRE(ud.rfind("#cloud-config\n", 0) == 0);
  const YAML::Node doc = YAML::Load(ud);
  CHECK(doc["write_files"][0]["content"].as<std::string>() == s);
  CHECK(doc["runcmd"][0].as<std::string>() == s);
  CHECK(doc["packages"][0].as<std::string>() == s);
  // A plain scalar must not look like another type to any YAML reader.
  const YAML::Node content = doc["write_files"][0]["content"];
  if (content.Tag() == "?") {
    static const std::regex typed(
        "(true|false|yes|no|on|off|null|y|n|~)|[-+.0-9].*|<<|=|\\s.*|.*\\s", std::regex::icase);
    CHECK_FALSE(std::regex_match(s, typed));
  }
}

}  // namespace

TEST_CASE("user-data gives back every string byte for byte", "[cloudinit]") {
  for (const std::string s : {"  leading spaces\n",
                              "trailing newlines\n\n\n",
                              "no newline at the end\nsecond",
                              "windows\r\nlines\r\n",
                              "\ttab first\n",
                              "tab\tinside",
                              "<<",
                              "=",
                              "a: b",
                              "- item",
                              "# not a comment",
                              "key: value\n  nested: x\n",
                              "雲\nunicode ✓\n",
                              "😀",
                              "true",
                              "no",
                              "0644",
                              "1:20",
                              "~",
                              "null",
                              "",
                              " ",
                              "\n",
                              "\n\n",
                              "x\n \ny\n",
                              "end space ",
                              "quote \" and \\ backslash",
                              "'single'",
                              "*alias",
                              "&anchor",
                              "!tag",
                              "%percent",
                              "@at",
                              "`tick",
                              "|",
                              ">",
                              "{a: 1}",
                              "[1, 2]",
                              "?",
                              "bell\x07",
                              "line\n\ttabbed\n"}) {
    INFO("string: " << nlohmann::json(s).dump());
    check_round_trip(s);
  }
}

TEST_CASE("property: emit then parse gives the same string, for generated strings", "[cloudinit]") {
  const std::vector<std::string> pieces = {
      "a",    "Z", "0",  "7", " ",    "  ",   "\n",     "\r", "\t",   "<<", "=", ":",
      ": ",   "#", " #", "-", "- ",   "'",    "\"",     "\\", "é",    "雲", "😀", "true",
      "null", "~", "*",  "&", "!",    "%",    "@",      "`",  "|",    ">",  "{", "}",
      "[",    "]", ",",  "?", "\x01", "\x1b", "\u00a0", ".",  "0x1F", "1e3"};
  std::mt19937 rng(20261201);  // fixed: a failure is reproducible
  std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1), len(0, 12);
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    for (std::size_t n = len(rng); n > 0; --n) s += pieces[pick(rng)];
    INFO("case " << i << ": " << nlohmann::json(s).dump());
    check_round_trip(s);
  }
}

TEST_CASE("ordinary text reads as it always did: lines as a literal block, words plain",
          "[cloudinit]") {
  CloudInitConfig ci;
  ci.write_files = nlohmann::json::array({{{"path", "/etc/motd"}, {"content", "hello\nworld\n"}}});
  ci.runcmd = nlohmann::json::array({"systemctl enable --now nginx"});
  ci.packages = {"nginx"};
  CHECK(render_user_data(ci) ==
        "#cloud-config\n"
        "packages:\n  - nginx\n"
        "runcmd:\n  - systemctl enable --now nginx\n"
        "write_files:\n  - content: |\n      hello\n      world\n\n    path: /etc/motd\n");
}
