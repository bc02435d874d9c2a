// kumo.1: the man page, written from the CLI11 definition (the build runs `kumo __man`).
#include <sstream>

#include "cli/help.h"

namespace kumo::cli {
namespace {

// Text for troff: backslashes and hyphens escaped (a plain '-' may become a hyphen, options need
// the minus sign), and no line that starts with a control character.
std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  return out;
}

std::string paragraph(const std::string& text) {
  std::string out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) {
      out += ".PP\n";
      continue;
    }
    const std::string escaped = escape(line);
    out += (escaped[0] == '.' || escaped[0] == '\'' ? "\\&" : "") + escaped + "\n";
  }
  return out;
}

std::string option_item(const CLI::Option& option) {
  const OptionDoc d = document(option);
  std::string head;
  for (const auto& n : d.names) {
    head += (head.empty() ? "" : ", ") +
            (d.positional ? "\\fI" + escape(n) + "\\fR" : "\\fB" + escape(n) + "\\fR");
  }
  if (!d.positional && !d.value.empty()) head += " \\fI" + escape(d.value) + "\\fR";
  return ".TP\n" + head + "\n" + paragraph(d.description);
}

std::string usage(const CLI::App& cmd) {
  std::string u = "\\fB" + escape(command_path(cmd)) + "\\fR";
  if (!visible_options(cmd).empty()) u += " [\\fIOPTIONS\\fR]";
  for (const auto* opt : cmd.get_options()) {
    if (opt->get_positional()) u += " [\\fI" + escape(opt->get_name(true, false)) + "\\fR]";
  }
  if (!visible_subcommands(cmd).empty()) u += " [\\fICOMMAND\\fR]";
  return u;
}

void command_section(std::ostringstream& out, const CLI::App& cmd) {
  out << ".SS \"" << escape(command_path(cmd)) << "\"\n";
  out << usage(cmd) << "\n.PP\n" << paragraph(cmd.get_description());
  for (const auto* opt : visible_options(cmd)) out << option_item(*opt);
  if (!cmd.get_footer().empty()) out << ".PP\n" << paragraph(cmd.get_footer());
  for (const auto* sub : visible_subcommands(cmd)) command_section(out, *sub);
}

constexpr const char* kAddresses =
    R"(Commands that take a resource (plan, apply and destroy with --target, plan and apply with --replace) name it by its address, the names kumo plan and kumo status show:
vm.web-0 is one VM instance; vm.web is every instance of the VM web (with count: 3, web-0, web-1 and web-2; without count, the one VM web); network.front is a network; volume.web-0/root, volume.web-0/seed and volume.web-0/data/pg are a VM's disks, image.debian-12 a base image (these two appear in plans only).
The whole syntax is in docs/addresses.md.)";

struct Item {
  const char* term;
  const char* text;
};

constexpr Item kExitStatus[] = {
    {"0", "Success."},
    {"1",
     "An error, a usage error too (an unknown command or option, a bad value). What failed "
     "is said on standard error; a rerun of apply finishes what is left."},
    {"2", "kumo plan \\-\\-detailed\\-exitcode only: the plan has changes."},
};

constexpr Item kEnvironment[] = {
    {"NO_COLOR", "When set and not empty: no colour, as \\-\\-no\\-color."},
    {"KUMO_VAR_name", "The value of variable name; \\-\\-var\\-file and \\-var win over it."},
    {"LIBVIRT_DEFAULT_URI", "The host of a file without hosts:."},
    {"XDG_CACHE_HOME, HOME", "Where the image cache is (\\-\\-cache\\-dir)."},
};

template <std::size_t N>
std::string items(const Item (&list)[N]) {
  std::string out;
  for (const auto& i : list) out += ".TP\n\\fB" + std::string(i.term) + "\\fR\n" + i.text + "\n";
  return out;
}

}  // namespace

std::string man_page(const CLI::App& app, const std::string& version) {
  std::ostringstream out;
  out << ".TH KUMO 1 \"\" \"kumo " << escape(version) << "\" \"User Commands\"\n";
  out << ".SH NAME\nkumo \\- declarative provisioning for a small private cloud of libvirt hosts\n";
  out << ".SH SYNOPSIS\n\\fBkumo\\fR [\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n";
  out << ".SH DESCRIPTION\n" << paragraph(app.get_description());
  out << ".PP\nGlobal options go before or after the command: \\fBkumo \\-f x.yaml plan\\fR is "
         "\\fBkumo plan \\-f x.yaml\\fR, and so are the options of the command.\n";
  out << ".SH GLOBAL OPTIONS\n";
  for (const auto* opt : visible_options(app)) out << option_item(*opt);
  out << ".SH COMMANDS\n";
  for (const auto* cmd : visible_subcommands(app)) command_section(out, *cmd);
  out << ".SH ADDRESSES\n" << paragraph(kAddresses);
  out << ".SH EXIT STATUS\n" << items(kExitStatus);
  out << ".SH ENVIRONMENT\n" << items(kEnvironment);
  out << ".SH FILES\n.TP\n\\fIkumo.yaml\\fR\nThe cluster description read when \\fB\\-f\\fR "
         "is not given.\n";
  out << ".SH SEE ALSO\n\\fBvirsh\\fR(1); kumo's README.md and docs/ (configuration.md, "
         "addresses.md, plan\\-json.md, changes.md, images.md, security.md).\n";
  return out.str();
}

}  // namespace kumo::cli
