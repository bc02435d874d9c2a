// Shell completion: `kumo completion bash|zsh|fish` prints a script that asks kumo itself
// (`kumo __complete WORD...`) what may come next: commands, options, and the addresses of the
// cluster file (-f FILE or ./kumo.yaml). Nothing here contacts a host.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace kumo::cli {

// What __complete prints instead of words when the shell should complete a path.
inline constexpr const char* kCompleteFiles = ":files";
inline constexpr const char* kCompleteDirs = ":dirs";

// The words that may stand where the last of `words` (what is typed after "kumo", the last one
// possibly empty) is; or {kCompleteFiles} / {kCompleteDirs}. Not filtered by what is typed: the
// shells do that.
std::vector<std::string> complete(const CLI::App& app, const std::vector<std::string>& words);

// The script for `shell` (bash, zsh or fish); nullopt for another shell.
std::optional<std::string> completion_script(const std::string& shell);

}  // namespace kumo::cli
