#include "cli/usage.h"

#include "cli/help.h"
#include "planner/config/diagnostics.h"
#include "planner/config/names.h"

namespace kumo::cli {
namespace {

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const auto* sub : visible_subcommands(app)) names.push_back(sub->get_name());
  return names;
}

// The innermost command the arguments after kumo's name select ("images prune").
const CLI::App* selected_command(const CLI::App& app, const CommandLine& line) {
  const CLI::App* cmd = find_subcommand(app, line.command);
  if (!cmd) return &app;
  bool seen = false;
  for (std::size_t i = 0; i < line.args.size(); ++i) {
    const std::string& a = line.args[i];
    if (!seen) {
      seen = a == line.command;
      continue;
    }
    if (a == "--") break;
    if (is_option(a)) {
      if (!has_inline_value(a) && takes_value(find_option(*cmd, option_name(a)))) ++i;
      continue;
    }
    if (const auto* sub = find_subcommand(*cmd, a)) cmd = sub;
  }
  return cmd;
}

// The first option of the line that `cmd` does not know, "" if every one is known.
std::string unknown_option(const CLI::App& cmd, const CommandLine& line) {
  for (const auto& a : line.args) {
    if (a == "--") break;
    if (is_option(a) && !find_option(cmd, option_name(a))) {
      // -vv is -v twice; -fkumo.yaml is -f with its value: known when its first letter is.
      return option_name(a);
    }
  }
  return "";
}

}  // namespace

// Terraform writes -var and -var-file with one dash; CLI11 wants two for long names.
std::string rewrite_var(const std::string& a) {
  if (a == "-var" || a == "-var-file") return "-" + a;
  if (a.rfind("-var=", 0) == 0 || a.rfind("-var-file=", 0) == 0) return "-" + a;
  return a;
}

bool is_option(const std::string& token) {
  return token.size() > 1 && token[0] == '-' && token != "--";
}

// "--file=x" -> "--file", "-fx" -> "-f", "-vv" -> "-v".
std::string option_name(const std::string& token) {
  if (token.rfind("--", 0) == 0) return token.substr(0, token.find('='));
  return token.substr(0, 2);
}

bool has_inline_value(const std::string& token) {
  return token.rfind("--", 0) == 0 ? token.find('=') != std::string::npos : token.size() > 2;
}

bool takes_value(const CLI::Option* opt) {
  // Flags expect no value (CLI11 still gives them a type size of 1).
  return opt && opt->get_expected_max() > 0 && opt->get_type_size_max() > 0;
}

const CLI::App* find_subcommand(const CLI::App& app, const std::string& name) {
  for (const auto* sub : app.get_subcommands({}))
    if (sub->check_name(name)) return sub;
  return nullptr;
}

// The option `name` of any command of kumo (for options typed before their command).
const CLI::Option* option_of_any_command(const CLI::App& app, const std::string& name) {
  for (const auto* sub : app.get_subcommands({})) {
    if (const auto* opt = sub->get_option_no_throw(name)) return opt;
    if (const auto* opt = option_of_any_command(*sub, name)) return opt;
  }
  return nullptr;
}

const CLI::Option* find_option(const CLI::App& cmd, const std::string& name) {
  for (const CLI::App* app = &cmd; app; app = app->get_parent())
    if (const auto* opt = app->get_option_no_throw(name)) return opt;
  return nullptr;
}

std::vector<std::string> option_names(const CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::App* app = &cmd; app; app = app->get_parent()) {
    for (const auto* opt : app->get_options()) {
      if (opt->get_positional()) continue;
      for (const auto& n : document(*opt).names) names.push_back(n);
    }
  }
  return names;
}

CommandLine arrange(const CLI::App& app, const std::vector<std::string>& raw) {
  CommandLine line;
  std::vector<std::string> own, moved, after;  // kumo's options, the command's typed before it
  const CLI::App* cmd = nullptr;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::string a = rewrite_var(raw[i]);
    auto& to = cmd ? after : own;
    if (a == "--") {
      to.insert(to.end(), raw.begin() + static_cast<long>(i), raw.end());
      break;
    }
    if (a == "-C" || (a.rfind("-C", 0) == 0 && a.size() > 2)) {
      if (a.size() > 2) {
        line.directories.push_back(a.substr(a[2] == '=' ? 3 : 2));
      } else if (i + 1 < raw.size()) {
        line.directories.push_back(raw[++i]);
      } else {
        throw UsageError("kumo: -C needs a directory: kumo -C DIR COMMAND");
      }
      continue;
    }
    if (is_option(a)) {
      const std::string name = option_name(a);
      const CLI::Option* opt = cmd ? find_option(*cmd, name) : app.get_option_no_throw(name);
      auto* dest = &to;
      if (!cmd && !opt) {
        opt = option_of_any_command(app, name);
        if (opt) dest = &moved;
      }
      dest->push_back(a);
      if (!has_inline_value(a) && takes_value(opt) && i + 1 < raw.size()) {
        // Every value an option takes: -var a=1 b=2 is not how kumo is used; one each.
        dest->push_back(raw[++i]);
      }
      continue;
    }
    if (!cmd) {
      cmd = find_subcommand(app, a);
      if (!cmd) {
        throw UsageError("kumo: unknown command " + quote(a) + did_you_mean(a, command_names(app)) +
                         "\nRun 'kumo help' for the list of commands.");
      }
      line.command = a;
      continue;
    }
    after.push_back(a);
  }
  line.args = own;
  if (cmd) {
    line.args.push_back(line.command);
    line.args.insert(line.args.end(), moved.begin(), moved.end());
    line.args.insert(line.args.end(), after.begin(), after.end());
  } else {
    line.args.insert(line.args.end(), moved.begin(), moved.end());
  }
  return line;
}

std::string usage_message(const CLI::App& app, const CommandLine& line, const CLI::ParseError& e) {
  const CLI::App* cmd = selected_command(app, line);
  const std::string who = command_path(*cmd);
  const std::string more =
      "\nRun '" + who + " --help' for " +
      (cmd == &app ? std::string("kumo's commands and options.") : std::string("its options."));
  if (line.command.empty() && dynamic_cast<const CLI::RequiredError*>(&e)) {
    return "kumo: no command given\nRun 'kumo help' for the list of commands.";
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    if (const std::string name = unknown_option(*cmd, line); !name.empty()) {
      // One letter from another is always one edit away: no guess for short options.
      const std::string guess = name.size() > 2 ? did_you_mean(name, option_names(*cmd)) : "";
      return who + ": unknown option " + name + guess + more;
    }
  }
  return who + ": " + e.what() + more;
}

}  // namespace kumo::cli
