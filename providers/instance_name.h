// How a VM group's instances are named: <group>-<n> (web-12 of web).
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>

namespace kumo {

// Whether `name` is an instance name of group `group` (web-12 of web; not web-x, not web).
inline bool is_instance_of(const std::string& name, const std::string& group) {
  if (name.size() < group.size() + 2 || name.compare(0, group.size(), group) != 0 ||
      name[group.size()] != '-')
    return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(group.size()) + 1, name.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; });
}

}  // namespace kumo
