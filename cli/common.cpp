#include "cli/common.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

extern char** environ;

namespace kumo::cli {

void ConfigArgs::add_to(CLI::App& cmd) {
  cmd.add_option("-f,--file", file, "Cluster description to read ('-' for stdin)")
      ->capture_default_str();
  cmd.add_option("--var", vars, "Set a variable: -var NAME=VALUE (repeatable)")->take_all();
  cmd.add_option("--var-file", var_files,
                 "Read variables from a YAML file of NAME: VALUE (repeatable)")
      ->check(CLI::ExistingFile);
}

LoadResult ConfigArgs::load() const {
  LoadOptions options;
  options.environment = environment_for_loader();
  options.var_files = var_files;
  Diagnostics arg_errors;
  for (const auto& v : vars) {
    const auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0) {
      arg_errors.error({}, "-var " + quote(v) + ": expected NAME=VALUE");
      continue;
    }
    options.vars.emplace_back(v.substr(0, eq), v.substr(eq + 1));
  }
  LoadResult result = load_config(file, options);
  if (arg_errors.has_errors()) {
    arg_errors.append(result.diagnostics);
    result.diagnostics = arg_errors;
    result.config.reset();
  }
  return result;
}

void TimeoutArg::add_to(CLI::App& cmd) {
  cmd.add_option("--timeout", seconds, "Seconds to wait for each host to connect")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

std::map<std::string, std::string> environment_for_loader() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    const auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = entry.substr(0, eq);
    if (key.rfind("KUMO_VAR_", 0) == 0 || key == "LIBVIRT_DEFAULT_URI" || key == "HOME") {
      env[key] = entry.substr(eq + 1);
    }
  }
  return env;
}

bool colour_enabled(int fd) {
  const char* no_colour = std::getenv("NO_COLOR");
  if (no_colour && *no_colour) return false;
  return isatty(fd) == 1;
}

int print_diagnostics(const Diagnostics& diags) {
  const bool colour = colour_enabled(STDERR_FILENO);
  int errors = 0;
  for (const auto& d : diags.sorted()) {
    std::string line = format_diagnostic(d);
    if (colour) {
      const std::string tag = d.severity == Severity::Error ? ": error: " : ": warning: ";
      const std::string painted = d.severity == Severity::Error ? ": \033[1;31merror:\033[0m "
                                                                : ": \033[1;35mwarning:\033[0m ";
      if (auto pos = line.find(tag); pos != std::string::npos)
        line.replace(pos, tag.size(), painted);
    }
    std::cerr << line << "\n";
    errors += d.severity == Severity::Error ? 1 : 0;
  }
  return errors;
}

std::vector<std::string> normalize_args(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-var") {
      a = "--var";
    } else if (a.rfind("-var=", 0) == 0) {
      a = "-" + a;
    } else if (a == "-var-file") {
      a = "--var-file";
    } else if (a.rfind("-var-file=", 0) == 0) {
      a = "-" + a;
    }
    out.push_back(a);
  }
  return out;
}

void setup_logging(const GlobalOptions& opts) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
      colour_enabled(STDERR_FILENO) ? spdlog::color_mode::automatic : spdlog::color_mode::never);
  auto logger = std::make_shared<spdlog::logger>("kumo", sink);
  logger->set_pattern("%^%l%$: %v");
  if (opts.quiet) {
    logger->set_level(spdlog::level::err);
  } else if (opts.verbosity >= 2) {
    logger->set_level(spdlog::level::trace);
  } else if (opts.verbosity == 1) {
    logger->set_level(spdlog::level::debug);
  } else {
    logger->set_level(spdlog::level::info);
  }
  spdlog::set_default_logger(logger);
}

}  // namespace kumo::cli
