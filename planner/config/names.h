// Name rules and "did you mean" suggestions.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kumo {

// VM names become hostnames: lowercase letters, digits and '-', 1-63 chars, no leading or
// trailing '-'. Other objects (hosts, images, networks, disks, groups) may also use '_'.
std::optional<std::string> check_hostname(const std::string& name);
std::optional<std::string> check_name(const std::string& name);

// The closest candidate within a small edit distance, if any.
std::optional<std::string> closest(const std::string& word,
                                   const std::vector<std::string>& candidates);

// " (did you mean "x"?)" or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace kumo
