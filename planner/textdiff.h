// Unified diffs of text, line by line (the one place kumo uses dtl, Debian's libdtl-dev).
#pragma once

#include <string>

namespace kumo {

// The hunks of a unified diff from `before` to `after` ("@@ -a,b +c,d @@", then lines starting
// with ' ', '-' or '+'), three lines of context, each line ending in '\n'. "" when equal.
std::string unified_diff(const std::string& before, const std::string& after);

}  // namespace kumo
