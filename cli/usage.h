// Command lines as people type them (Terraform, git, kubectl): options before or after the
// command, -C DIR, -var; and usage errors that say what was meant, exit 1 (never CLI11's 105-114).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace kumo::cli {

// A command line that is not one of kumo's: the message says what is wrong and what to run.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CommandLine {
  std::vector<std::string> args;         // for CLI11, in order: kumo's own, the command, its own
  std::string command;                   // "plan"; "" when none is given
  std::vector<std::string> directories;  // -C DIR, in the order given (each relative to the last)
};

// Rewrites -var into --var, takes out every -C DIR, and moves the options of the command typed
// before it (`kumo -f x.yaml plan`) behind it. Throws UsageError for an unknown command.
CommandLine arrange(const CLI::App& app, const std::vector<std::string>& args);

// CLI11's parse error as kumo says it, with "did you mean" for an unknown option and where to
// read more. Not for --help and --version (CLI11's own "errors" that succeed).
std::string usage_message(const CLI::App& app, const CommandLine& line, const CLI::ParseError& e);

// The names every option of `cmd` (and of kumo itself) is typed with: "--json", "-f", "-var".
std::vector<std::string> option_names(const CLI::App& cmd);

// The option of `cmd`, or of an app above it, that `name` ("--file", "-f") is; nullptr if none.
const CLI::Option* find_option(const CLI::App& cmd, const std::string& name);

// Pieces of a command line, for arrange and for completion.
bool is_option(const std::string& token);           // "-f", "--json", "-vv"; not "--" or "-"
std::string option_name(const std::string& token);  // "--file=x": "--file", "-fx": "-f"
bool has_inline_value(const std::string& token);    // "--file=x", "-fx"
bool takes_value(const CLI::Option* option);        // not a flag
std::string rewrite_var(const std::string& token);  // "-var" -> "--var" (Terraform's spelling)
const CLI::App* find_subcommand(const CLI::App& app, const std::string& name);
const CLI::Option* option_of_any_command(const CLI::App& app, const std::string& name);

}  // namespace kumo::cli
