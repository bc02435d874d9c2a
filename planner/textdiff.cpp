#include "planner/textdiff.h"

#include <sstream>
#include <vector>

#include <dtl/dtl.hpp>

namespace kumo {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

}  // namespace

std::string unified_diff(const std::string& before, const std::string& after) {
  if (before == after) return "";
  const auto a = lines_of(before);
  const auto b = lines_of(after);
  dtl::Diff<std::string, std::vector<std::string>> diff(a, b);
  diff.compose();
  diff.composeUnifiedHunks();
  std::string out;
  auto emit = [&](const auto& elems) {
    for (const auto& [line, info] : elems) {
      out += info.type == dtl::SES_ADD ? '+' : info.type == dtl::SES_DELETE ? '-' : ' ';
      out += line;
      out += '\n';
    }
  };
  for (const auto& hunk : diff.getUniHunks()) {
    // As GNU diff: an empty side starts at the line before (0 for an empty document).
    const long long a = hunk.b == 0 ? hunk.a - 1 : hunk.a;
    const long long c = hunk.d == 0 ? hunk.c - 1 : hunk.c;
    out += "@@ -" + std::to_string(a) + "," + std::to_string(hunk.b) + " +" + std::to_string(c) +
           "," + std::to_string(hunk.d) + " @@\n";
    emit(hunk.common[0]);
    emit(hunk.change);
    emit(hunk.common[1]);
  }
  // Only a final newline differs: the line lists are equal and dtl finds no hunk.
  if (out.empty()) out = "@@ (only the final newline differs) @@\n";
  return out;
}

}  // namespace kumo
