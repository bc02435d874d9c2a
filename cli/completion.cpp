#include "cli/completion.h"

#include <unistd.h>

#include <algorithm>

#include "cli/common.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "planner/desired.h"

namespace kumo::cli {
namespace {

// What the words before the one being completed say.
struct Typed {
  const CLI::App* command = nullptr;     // the innermost command typed; the app when none
  const CLI::Option* pending = nullptr;  // the last word is this option, waiting for its value
  bool pending_directory = false;        // ... or -C
  int positionals = 0;                   // words that are neither options nor commands
  ConfigArgs config;
  std::vector<std::string> directories;
};

std::string key_of(const CLI::Option& opt) {
  if (!opt.get_lnames().empty()) return opt.get_lnames().front();
  return opt.get_snames().empty() ? "" : opt.get_snames().front();
}

// Remembers the values that say which file to read: -f, -var, --var-file (and -C, before it).
void take_value(Typed& t, const CLI::Option& opt, const std::string& value) {
  const std::string key = key_of(opt);
  if (key == "file") t.config.file = value;
  if (key == "var") t.config.vars.push_back(value);
  if (key == "var-file") t.config.var_files.push_back(value);
}

Typed read_typed(const CLI::App& app, const std::vector<std::string>& words) {
  Typed t;
  t.command = &app;
  for (const auto& raw : words) {
    const std::string w = rewrite_var(raw);
    if (t.pending_directory) {
      t.directories.push_back(w);
      t.pending_directory = false;
      continue;
    }
    if (t.pending) {
      take_value(t, *t.pending, w);
      t.pending = nullptr;
      continue;
    }
    if (w == "-C") {
      t.pending_directory = true;
      continue;
    }
    if (is_option(w)) {
      const CLI::Option* opt = find_option(*t.command, option_name(w));
      if (!opt && t.command == &app) opt = option_of_any_command(app, option_name(w));
      if (!takes_value(opt)) continue;
      if (!has_inline_value(w)) {
        t.pending = opt;
      } else {
        const auto eq = w.find('=');
        take_value(t, *opt, w.rfind("--", 0) == 0 ? w.substr(eq + 1) : w.substr(2));
      }
      continue;
    }
    if (const CLI::App* sub = find_subcommand(*t.command, w); sub && t.positionals == 0) {
      t.command = sub;
    } else {
      ++t.positionals;
    }
  }
  return t;
}

// Addresses of the file: VM instances and groups, and (unless only VMs) networks. Read without
// contacting any host; a file that does not load gives none.
std::vector<std::string> addresses(const Typed& t, bool vms_only) {
  for (const auto& d : t.directories)
    if (chdir(d.c_str()) != 0) return {};
  const LoadResult loaded = t.config.load();
  if (!loaded.config) return {};
  const DesiredCluster desired = expand(*loaded.config);
  std::vector<std::string> out;
  for (const auto& vm : desired.vms) {
    const std::string group = "vm." + vm.group;
    if (std::find(out.begin(), out.end(), group) == out.end()) out.push_back(group);
    if (vm.address() != group) out.push_back(vm.address());
  }
  if (!vms_only)
    for (const auto& n : desired.network_templates) out.push_back("network." + n.network.name);
  return out;
}

// The file's VM instance names (web-0), for kumo ssh and kumo console.
std::vector<std::string> vm_names(const Typed& t) {
  for (const auto& d : t.directories)
    if (chdir(d.c_str()) != 0) return {};
  const LoadResult loaded = t.config.load();
  if (!loaded.config) return {};
  std::vector<std::string> out;
  for (const auto& vm : expand(*loaded.config).vms) out.push_back(vm.instance);
  return out;
}

std::vector<std::string> values_of(const Typed& t, const CLI::Option& opt) {
  const std::string key = key_of(opt);
  if (key == "target") return addresses(t, false);
  if (key == "replace") return addresses(t, true);
  if (key == "file" || key == "var-file" || key == "out") return {kCompleteFiles};
  if (key == "cache-dir") return {kCompleteDirs};
  return {};  // a number, a duration, NAME=VALUE: nothing to offer
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> out;
  for (const auto* sub : visible_subcommands(app)) out.push_back(sub->get_name());
  return out;
}

}  // namespace

std::vector<std::string> complete(const CLI::App& app, const std::vector<std::string>& words) {
  const std::string current = words.empty() ? "" : words.back();
  const std::vector<std::string> before(words.begin(),
                                        words.empty() ? words.begin() : words.end() - 1);
  const Typed t = read_typed(app, before);
  if (t.pending_directory) return {kCompleteDirs};
  if (t.pending) return values_of(t, *t.pending);
  if (is_option(current) || current == "-" || current == "--") {
    std::vector<std::string> names = option_names(*t.command);
    names.push_back("-C");
    names.push_back("--help");
    return names;
  }
  const CLI::App& cmd = *t.command;
  if (&cmd == &app) return command_names(app);
  const std::string name = cmd.get_name();
  if (t.positionals > 0) return {};
  if (name == "help") return command_names(app);
  if (name == "completion") return {"bash", "zsh", "fish"};
  if (name == "ssh" || name == "console") return vm_names(t);
  if (!visible_subcommands(cmd).empty()) return command_names(cmd);
  for (const auto* opt : cmd.get_options())
    if (opt->get_positional()) return {kCompleteFiles};  // PLANFILE
  return {};
}

std::optional<std::string> completion_script(const std::string& shell) {
  if (shell == "bash") {
    return R"(# bash completion for kumo (kumo completion bash). Completes commands, options and the
# addresses of the cluster file by asking kumo (kumo __complete), which contacts no host.
_kumo() {
  local cur=${COMP_WORDS[COMP_CWORD]} out
  local IFS=$'\n'
  out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0
  case $out in
    :files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
    :dirs) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
    *) COMPREPLY=($(compgen -W "$out" -- "$cur")) ;;
  esac
  return 0
}
complete -F _kumo kumo
)";
  }
  if (shell == "zsh") {
    return R"(#compdef kumo
# zsh completion for kumo (kumo completion zsh). Completes commands, options and the addresses
# of the cluster file by asking kumo (kumo __complete), which contacts no host.
_kumo() {
  local out
  out=$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
  case $out in
    :files) _files ;;
    :dirs) _files -/ ;;
    *) local -a candidates; candidates=("${(@f)out}"); compadd -- $candidates ;;
  esac
}
if [ "$funcstack[1]" = "_kumo" ]; then
  _kumo "$@"
else
  compdef _kumo kumo
fi
)";
  }
  if (shell == "fish") {
    return R"(# fish completion for kumo (kumo completion fish). Completes commands, options and the
# addresses of the cluster file by asking kumo (kumo __complete), which contacts no host.
function __kumo_complete
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l out ($words[1] __complete $words[2..-1] $current 2>/dev/null)
    switch "$out"
        case :files
            __fish_complete_path $current
        case :dirs
            __fish_complete_directories $current
        case '*'
            printf '%s\n' $out
    end
end
complete -c kumo -f -a '(__kumo_complete)'
)";
  }
  return std::nullopt;
}

}  // namespace kumo::cli
