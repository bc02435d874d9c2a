// kumo about itself: help [COMMAND], version, completion SHELL; and, hidden, what the shell
// completions and the build ask it (__complete, __man).
#include <iostream>

#include "cli/common.h"
#include "cli/completion.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "planner/config/names.h"
#include "providers/libvirt/version.h"

namespace kumo::cli {

std::string version_text(const std::string& revision) {
  const LibvirtVersions libvirt = libvirt_versions();
  return std::string("kumo ") + KUMO_VERSION + "\ngit revision: " + revision +
         "\nlibvirt: built against " + libvirt.built + ", running " + libvirt.running + "\n";
}

Runner add_help_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand("help", "Show kumo's commands, or a command's options");
  auto words = std::make_shared<std::vector<std::string>>();
  cmd->add_option("COMMAND", *words, "The command to show (kumo help images prune)");
  return [&app, cmd, words]() -> int {
    if (!cmd->parsed()) return -1;
    const CLI::App* shown = &app;
    for (const auto& w : *words) {
      const CLI::App* sub = find_subcommand(*shown, w);
      if (!sub || sub->get_group().empty()) {
        std::vector<std::string> names;
        for (const auto* s : visible_subcommands(*shown)) names.push_back(s->get_name());
        std::cerr << "kumo help: " << command_path(*shown) << " has no command " << quote(w)
                  << did_you_mean(w, names) << "\nRun 'kumo help' for the list of commands.\n";
        return 1;
      }
      shown = sub;
    }
    // As `kumo plan --help` shows it ("Usage: kumo plan ..."); not App::help(), which shows
    // the command being run (help) instead of the one asked for.
    std::cout << shown->get_formatter()->make_help(shown, command_path(*shown),
                                                   CLI::AppFormatMode::Normal);
    return 0;
  };
}

Runner add_version_command(CLI::App& app, const std::string& revision) {
  auto* cmd = app.add_subcommand(
      "version", "Show kumo's version, git revision, and the libvirt it was built with and runs");
  return [cmd, revision]() -> int {
    if (!cmd->parsed()) return -1;
    std::cout << version_text(revision);
    return 0;
  };
}

Runner add_completion_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand("completion",
                                 "Print the completion script for bash, zsh or fish (commands, "
                                 "options, the file's addresses)");
  auto shell = std::make_shared<std::string>();
  cmd->add_option("SHELL", *shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  cmd->footer(
      "bash: source <(kumo completion bash), or save it as "
      "/usr/share/bash-completion/completions/kumo\n"
      "zsh: kumo completion zsh > \"${fpath[1]}/_kumo\"\n"
      "fish: kumo completion fish > ~/.config/fish/completions/kumo.fish");
  // The man page, from this very definition: the build writes it (share/man/man1/kumo.1).
  auto* man = app.add_subcommand("__man", "Print kumo.1")->group("");
  return [cmd, man, shell, &app]() -> int {
    if (man->parsed()) {
      std::cout << man_page(app, KUMO_VERSION);
      return 0;
    }
    if (!cmd->parsed()) return -1;
    std::cout << *completion_script(*shell);
    return 0;
  };
}

int run_complete(const CLI::App& app, const std::vector<std::string>& words) {
  for (const auto& w : complete(app, words)) std::cout << w << "\n";
  return 0;
}

}  // namespace kumo::cli
