// How kumo's command line describes itself: `--help`, `kumo help`, the man page and the shell
// completions all read the one CLI11 definition through these functions, so they never disagree.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace kumo::cli {

// One option as a person reads it: `-f, --file FILE  Cluster description to read (default:
// kumo.yaml)`. Ranges, defaults and options it cannot go with are said in words.
struct OptionDoc {
  std::vector<std::string> names;  // as typed: "-f", "--file"; "-var" for --var
  std::string value;               // "FILE", "N", "NAME=VALUE"; "" for a flag
  std::string description;         // with "(1-256; default: 10; not with --json)"
  bool positional = false;
  bool repeatable = false;
};
OptionDoc document(const CLI::Option& option);

// The options of `app` a person may type (not --help, which every command has), in order.
std::vector<const CLI::Option*> visible_options(const CLI::App& app);
// Its subcommands a person may type: hidden ones (`__complete`) are not listed.
std::vector<const CLI::App*> visible_subcommands(const CLI::App& app);
// "kumo images prune"
std::string command_path(const CLI::App& app);

// Help in the form above, with "COMMAND" for CLI11's "SUBCOMMAND" and, under each command, the
// global options that it takes as well.
std::shared_ptr<CLI::Formatter> make_help_formatter();

// kumo.1, in troff (man(7) macros), from the definition of `app` and its commands.
std::string man_page(const CLI::App& app, const std::string& version);

}  // namespace kumo::cli
