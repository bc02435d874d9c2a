#include "planner/textdiff.h"

#include <catch2/catch.hpp>

using namespace kumo;

TEST_CASE("unified diffs of documents", "[textdiff]") {
  CHECK(unified_diff("a\nb\n", "a\nb\n").empty());
  CHECK(unified_diff("", "x\n") == "@@ -0,0 +1,1 @@\n+x\n");
  CHECK(unified_diff("#cloud-config\npackages:\n- nginx\n",
                     "#cloud-config\npackages:\n- nginx\n- curl\n") ==
        "@@ -1,3 +1,4 @@\n #cloud-config\n packages:\n - nginx\n+- curl\n");
  CHECK(unified_diff("a\nb\nc\n", "a\nB\nc\n") == "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
  // Far apart changes make separate hunks, with three lines of context each.
  std::string before, after;
  for (int i = 1; i <= 20; ++i) {
    before += "line " + std::to_string(i) + "\n";
    after += (i == 2 || i == 18 ? "LINE " : "line ") + std::to_string(i) + "\n";
  }
  const std::string d = unified_diff(before, after);
  CHECK(d.find("@@ -1,5 +1,5 @@\n line 1\n-line 2\n+LINE 2\n") == 0);
  CHECK(d.find("@@ -15,6 +15,6 @@\n line 15\n line 16\n line 17\n-line 18\n+LINE 18\n") !=
        std::string::npos);
  CHECK_FALSE(unified_diff("a", "a\n").empty());  // only the final newline differs
}
