// kumo.yaml -> ClusterConfig. All problems are reported at once, each with file:line:column.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "planner/config/diagnostics.h"
#include "planner/config/model.h"

namespace kumo {

struct LoadOptions {
  std::vector<std::pair<std::string, std::string>> vars;  // -var NAME=VALUE, in order given
  std::vector<std::string> var_files;                     // --var-file, in order given
  // The process environment as kumo sees it: KUMO_VAR_<name>, LIBVIRT_DEFAULT_URI, HOME.
  // Passed in rather than read here so that loading is a pure function of its inputs.
  std::map<std::string, std::string> environment;
};

struct LoadResult {
  std::optional<ClusterConfig> config;  // set only when there are no errors
  Diagnostics diagnostics;              // errors and warnings, in any case
};

// The cluster file, var files and standard input are read up to this size; more is refused.
inline constexpr std::size_t kMaxInputBytes = 16u << 20;

// Messages of failures inside kumo itself (never caused by the file) start with this.
inline constexpr const char* kInternalErrorPrefix = "internal error while reading: ";

// Loads a file; "-" reads standard input (shown as "<stdin>", relative paths from the cwd).
LoadResult load_config(const std::string& path, const LoadOptions& options);

// Loads text already in memory; `file` is the name used in messages.
LoadResult load_config_text(const std::string& text, const std::string& file,
                            const std::string& base_dir, const LoadOptions& options);

}  // namespace kumo
