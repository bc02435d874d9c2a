#include "cli/common.h"

#include <unistd.h>

#include <cctype>
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
  // One value per -var (repeat the option for more): `kumo ssh -var a=b web-0` must leave web-0
  // to the command.
  cmd.add_option("--var", vars, "Set a variable: -var NAME=VALUE (repeatable)")
      ->allow_extra_args(false)
      ->take_all();
  cmd.add_option("--var-file", var_files,
                 "Read variables from a YAML file of NAME: VALUE (repeatable)")
      ->allow_extra_args(false)
      ->take_all()
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

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const bool first = i == 0;
    std::size_t used = 0;
    double number = 0;
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    try {
      number = std::stod(text.substr(i), &used);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    i += used;
    std::size_t unit_end = i;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end])))
      ++unit_end;
    const std::string unit = text.substr(i, unit_end - i);
    static const std::map<std::string, double> ms_per = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const auto it = ms_per.find(unit);
    // A bare number is seconds, and only alone: "1s5" is no duration.
    if (it == ms_per.end() || (unit.empty() && !(first && unit_end == text.size())))
      return std::nullopt;
    total_ms += number * it->second;
    i = unit_end;
  }
  if (total_ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(static_cast<long long>(total_ms));
}

void LockTimeoutArg::add_to(CLI::App& cmd) {
  cmd.add_option("--lock-timeout", text,
                 "How long to wait while another kumo holds the cluster's lock (30s, 5m); 0 "
                 "fails at once")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& v) {
            return parse_duration(v) ? std::string()
                                     : "not a duration: " + v + " (try 30s, 5m or 1h)";
          },
          "DURATION"));
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

void log_host_read(const ObservedHost& h) {
  if (!h.reachable) return;
  const auto& t = h.phases;
  const std::string of_all = h.scoped
                                 ? fmt::format(" (of {} domains and {} volumes: the targets' only)",
                                               h.scoped->domains, h.scoped->volumes)
                                 : "";
  spdlog::debug(
      "{}: {} domains, {} networks, {} volumes{} in {:.3f} s ({} libvirt calls; connect {:.3f} "
      "s, facts {:.3f} s, list {:.3f} s, fetch {:.3f} s, parse {:.3f} s)",
      h.host, h.domains.size(), h.networks.size(), h.volumes.size(), of_all, h.seconds, h.api_calls,
      t.connect, t.facts, t.list, t.fetch, t.parse);
}

}  // namespace kumo::cli
