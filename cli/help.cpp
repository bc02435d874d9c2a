#include "cli/help.h"

#include <map>
#include <regex>
#include <sstream>

#include "cli/usage.h"

namespace kumo::cli {
namespace {

// What an option's value is, by its long name: help says FILE, not CLI11's TEXT.
const std::map<std::string, std::string>& value_names() {
  static const std::map<std::string, std::string> names = {
      {"file", "FILE"},
      {"var", "NAME=VALUE"},
      {"var-file", "FILE"},
      {"cache-dir", "DIR"},
      {"out", "FILE"},
      {"target", "ADDRESS"},
      {"replace", "ADDRESS"},
      {"timeout", "SECONDS"},
      {"lock-timeout", "DURATION"},
      {"move-timeout", "DURATION"},
      {"parallelism", "N"},
      {"per-host", "N"},
      {"C", "DIR"},
  };
  return names;
}

// CLI11 writes a validator into the type name: "INT:INT in [1 - 256]", "FLOAT:POSITIVE".
std::string range_of(const std::string& type_name) {
  static const std::regex range(R"(\[(-?[0-9.]+) - (-?[0-9.]+)\])");
  std::smatch m;
  if (std::regex_search(type_name, m, range)) return m[1].str() + "-" + m[2].str();
  if (type_name.find("POSITIVE") != std::string::npos) return "more than 0";
  return "";
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// The global options each command takes too, for the foot of its help.
std::string global_options_line(const CLI::App& root) {
  std::vector<std::string> names;
  for (const auto* opt : visible_options(root)) {
    const OptionDoc d = document(*opt);
    if (d.names.front() == "--version") continue;
    names.push_back(d.names.front() + (d.value.empty() ? "" : " " + d.value));
  }
  return "Global options (before or after the command): " + join(names, ", ") +
         "; see 'kumo --help'.";
}

class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter() {
    label("SUBCOMMAND", "COMMAND");
    label("SUBCOMMANDS", "COMMANDS");
    label("Subcommands", "Commands");
    label("Positionals", "Arguments");
    column_width(32);
  }
  std::string make_option_name(const CLI::Option* opt, bool positional) const override {
    if (positional) return opt->get_name(true, false);
    return join(document(*opt).names, ", ");
  }
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (opt->get_positional()) return "";
    const OptionDoc d = document(*opt);
    return d.value.empty() ? "" : " " + d.value;
  }
  std::string make_option_desc(const CLI::Option* opt) const override {
    return document(*opt).description;
  }
  std::string make_footer(const CLI::App* app) const override {
    std::string footer = CLI::Formatter::make_footer(app);
    if (app->get_parent() == nullptr) return footer;
    const CLI::App* root = app;
    while (root->get_parent()) root = root->get_parent();
    return footer + (footer.empty() ? "\n" : "") + global_options_line(*root) + "\n";
  }
};

}  // namespace

std::string command_path(const CLI::App& app) {
  std::string path = app.get_name();
  for (const CLI::App* p = app.get_parent(); p; p = p->get_parent())
    path = p->get_name() + " " + path;
  return path;
}

std::vector<const CLI::Option*> visible_options(const CLI::App& app) {
  std::vector<const CLI::Option*> out;
  for (const auto* opt : app.get_options()) {
    if (opt->get_group().empty() || opt == app.get_help_ptr()) continue;
    out.push_back(opt);
  }
  return out;
}

std::vector<const CLI::App*> visible_subcommands(const CLI::App& app) {
  std::vector<const CLI::App*> out;
  for (const auto* sub : app.get_subcommands({})) {
    if (sub->get_group().empty()) continue;
    out.push_back(sub);
  }
  return out;
}

OptionDoc document(const CLI::Option& option) {
  OptionDoc d;
  d.positional = option.get_positional();
  for (const auto& s : option.get_snames()) d.names.push_back("-" + s);
  for (const auto& l : option.get_lnames()) d.names.push_back(l == "var" ? "-var" : "--" + l);
  if (d.positional) d.names = {option.get_name(true, false)};
  const bool value = takes_value(&option);
  const std::string type = option.get_type_name();
  std::vector<std::string> notes;
  if (value) {
    const std::string key = !option.get_lnames().empty()   ? option.get_lnames().front()
                            : !option.get_snames().empty() ? option.get_snames().front()
                                                           : "";
    const auto it = value_names().find(key);
    d.value = it != value_names().end() ? it->second
              : d.positional            ? option.get_name(true, false)
                                        : "VALUE";
    if (const std::string r = range_of(type); !r.empty()) notes.push_back(r);
    if (!option.get_default_str().empty()) notes.push_back("default: " + option.get_default_str());
    d.repeatable = option.get_expected_max() > 1;
  }
  std::vector<std::string> excluded;
  for (const auto* other : option.get_excludes()) {
    excluded.push_back(other->get_lnames().empty() ? other->get_name()
                                                   : "--" + other->get_lnames().front());
  }
  if (!excluded.empty()) notes.push_back("not with " + join(excluded, " or "));
  d.description = option.get_description();
  if (d.repeatable && d.description.find("repeatable") == std::string::npos)
    notes.push_back("repeatable");
  if (!notes.empty()) d.description += " (" + join(notes, "; ") + ")";
  return d;
}

std::shared_ptr<CLI::Formatter> make_help_formatter() {
  return std::make_shared<HelpFormatter>();
}

}  // namespace kumo::cli
