// kumo apply / kumo destroy: plan (or load a saved plan), show it, confirm, carry it out.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "cli/common.h"
#include "cli/engine.h"
#include "cli/views/apply_view.h"
#include "cli/views/plan_view.h"
#include "planner/config/scope.h"
#include "planner/lock.h"
#include "planner/lock_gate.h"
#include "planner/lock_pools.h"
#include "planner/observe.h"
#include "planner/plan_io.h"
#include "planner/planner.h"
#include "planner/saved_plan.h"
#include "providers/libvirt/libvirt_provider.h"

namespace kumo::cli {
namespace {

struct ApplyState {
  ConfigArgs config;
  CacheArgs cache;
  std::string plan_file;
  bool auto_approve = false, skip_unreachable = false, show_sensitive = false;
  TimeoutArg timeout;
  LockTimeoutArg lock_timeout;
  std::string move_timeout = "30m";
  int parallelism = 10, per_host = 4;
  CLI::Option* parallelism_option = nullptr;
  std::vector<std::string> targets;
  std::vector<std::string> replace;
  // Hosts talked to at once (locking, reading, connecting): the pool's own bound, capped by
  // --parallelism when it is given.
  int hosts_at_once() const {
    return parallelism_option && parallelism_option->count() > 0
               ? std::min(parallelism, kHostParallelism)
               : kHostParallelism;
  }
};

// Takes the cluster's lock on its hosts while `read` reads them (acquire_while_reading: each host
// read once locked); nullptr (after saying why, *rc set) when it is held elsewhere, and what
// `read` made is then not to be used. `locked` runs as soon as the lock is held.
std::unique_ptr<ClusterLock> lock_and_read(HostConnector& connector,
                                           const std::vector<HostTarget>& hosts,
                                           const std::string& cluster, const std::string& verb,
                                           const ApplyState& s, int* rc, Provider& provider,
                                           const std::function<void(Provider&)>& read,
                                           const std::function<void()>& locked) {
  const auto started = std::chrono::steady_clock::now();
  auto since = [&started] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  std::vector<std::string> warnings;
  try {
    auto lock = acquire_while_reading(connector, hosts, cluster, lock_holder("kumo " + verb),
                                      s.timeout.value(), lock_is_stale, warnings,
                                      lock_waiter(s.lock_timeout.value(), verb, std::cerr),
                                      s.hosts_at_once(), provider, read, [&] {
                                        spdlog::debug("lock taken in {:.3f} s", since());
                                        locked();
                                      });
    spdlog::debug("lock taken and hosts read in {:.3f} s", since());
    for (const auto& w : warnings) std::cerr << "warning: " << w << "\n";
    return lock;
  } catch (const LockHeld& e) {
    std::cerr << "kumo " << verb << ": " << e.what() << "\n";
  } catch (const HostError& e) {
    std::cerr << "kumo " << verb << ": taking the cluster lock failed: " << e.what()
              << "\nnothing was changed\n";
  }
  *rc = 1;
  return nullptr;
}

// Hosts the lock left out because their kumo pool is not there (lock_pools.h): those whose pool
// this run makes get it now, once the plan is accepted, and are locked too. False (after saying
// why) when that fails.
bool lock_after_pools(HostConnector& connector, const std::vector<LockPool>& candidates,
                      const ApplyState& s, ClusterLock& lock) {
  std::vector<LockPool> later;
  for (const auto& t : lock.missing_pools()) {
    for (const auto& c : candidates)
      if (c.target.name == t.name) later.push_back(c);
  }
  if (later.empty()) return true;
  std::vector<HostTarget> hosts;
  std::vector<std::string> warnings;
  try {
    make_lock_pools(connector, later, s.timeout.value());
    for (const auto& p : later) {
      std::cerr << "made storage pool \"" << p.spec.name << "\" on " << p.target.name
                << " first: kumo's lock there lives in it\n";
      hosts.push_back(p.target);
    }
    lock.extend(hosts, lock_is_stale, warnings);
  } catch (const LockHeld& e) {
    std::cerr << "kumo apply: " << e.what() << "\n";
    return false;
  } catch (const HostError& e) {
    std::cerr << "kumo apply: making a host's own storage pool and locking it failed: " << e.what()
              << "\nnothing else was changed\n";
    return false;
  }
  for (const auto& w : warnings) std::cerr << "warning: " << w << "\n";
  return true;
}

int finish(std::unique_ptr<ClusterLock> lock, int rc) {
  if (lock) {
    for (const auto& w : lock->release()) std::cerr << "warning: " << w << "\n";
  }
  return rc;
}

void add_common(CLI::App* cmd, ApplyState& s) {
  s.config.add_to(*cmd);
  s.cache.add_to(*cmd);
  cmd->add_flag("--auto-approve", s.auto_approve, "Do not ask for confirmation");
  s.timeout.add_to(*cmd);
  s.lock_timeout.add_to(*cmd);
  cmd->add_flag("--skip-unreachable", s.skip_unreachable,
                "Carry on with the reachable hosts when some cannot be reached");
  cmd->add_flag("--show-sensitive", s.show_sensitive, "Show user-data and sensitive values");
  cmd->add_option("--target", s.targets, "Only this resource (and what it needs); repeatable");
  s.parallelism_option =
      cmd->add_option("--parallelism", s.parallelism,
                      "Steps at once over all hosts; also caps the hosts talked to at once "
                      "(32 when not given)")
          ->capture_default_str()
          ->check(CLI::Range(1, 256));
  cmd->add_option("--per-host", s.per_host, "Steps at once on one host")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
}

bool confirm(const std::string& verb, bool auto_approve, const std::string& alternative) {
  if (auto_approve) return true;
  if (isatty(STDIN_FILENO) != 1) {
    std::cerr << "kumo " << verb
              << ": refusing to go on without confirmation: stdin is not a terminal. Pass "
                 "--auto-approve"
              << alternative << ".\n";
    return false;
  }
  std::cout << "\nDo you want to " << verb
            << " these changes? Only 'yes' is accepted: " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "yes") {
    std::cout << verb << " cancelled; nothing was changed.\n";
    return false;
  }
  return true;
}

int run_plan(const Plan& plan, const ApplyState& s, const std::string& cache_dir,
             const std::string& verb, const GlobalOptions& global, const ClusterLock& lock) {
  auto connector = make_connector();
  const ImageFetcher fetcher = make_image_fetcher(cache_dir);
  ExecOptions options;
  options.parallelism = s.parallelism;
  options.per_host = s.per_host;
  options.connect_timeout = s.timeout.value();
  if (const auto d = parse_duration(s.move_timeout))
    options.move_timeout = std::chrono::duration_cast<std::chrono::seconds>(*d);
  options.connections = s.hosts_at_once();
  // Every step that changes a host first makes sure the lock there is still this run's.
  options.before_change = [&lock](const std::string& host, HostSession& session) {
    lock.verify(host, session);
  };
  // Progress is for people watching (stderr); the summary is the result (stdout).
  const bool tty = isatty(STDERR_FILENO) == 1;
  winsize size{};
  const int width =
      tty && ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 ? size.ws_col : 80;
  views::ProgressView view(std::cerr, tty, colour_enabled(STDERR_FILENO), global.quiet, width);
  // On a terminal it redraws the status line; in a log it says which steps are still running.
  // Woken at once when the steps are over (not at its next tick: up to half a second more).
  std::mutex ticking;
  std::condition_variable stop;
  bool running = true;
  std::thread ticker([&] {
    std::unique_lock l(ticking);
    while (!stop.wait_for(l, std::chrono::milliseconds(500), [&] { return !running; })) {
      l.unlock();
      view.tick();
      l.lock();
    }
  });
  std::cerr << "\n";
  const ExecResult result = execute(plan, *connector, fetcher, options, [&](const ExecEvent& e) {
    view.on_event(e);
    if (e.kind == ExecEvent::Kind::Finished)
      spdlog::debug("step {} on {}: {} in {:.4f} s", e.address, e.host, e.what, e.seconds);
  });
  spdlog::debug("{}: steps ran in {:.3f} s", verb, result.seconds);
  {
    std::lock_guard l(ticking);
    running = false;
  }
  stop.notify_all();
  if (ticker.joinable()) ticker.join();
  view.finish();
  std::cout << views::render_summary(result, verb, colour_enabled(STDOUT_FILENO));
  if (!result.stopped.empty()) {
    std::cerr << "kumo " << (verb == "Destroy" ? "destroy" : "apply") << ": " << result.stopped
              << "\n";
  }
  return result.success() ? 0 : 1;
}

int apply_saved(const ApplyState& s, const GlobalOptions& global) {
  std::string error;
  auto plan = load_plan(s.plan_file, &error);
  if (!plan) {
    std::cerr << "kumo apply: " << s.plan_file << ": " << error << "\n";
    return 1;
  }
  const std::string cache_dir = s.cache.resolve(&error);
  if (cache_dir.empty()) {
    std::cerr << "kumo apply: " << error << "\n";
    return 1;
  }
  // The plan is only valid against the state it was made from.
  auto provider = make_libvirt_provider();
  auto lock_connector = make_lock_connector();
  int rc = 0;
  std::vector<LockPool> candidates;
  for (const auto& c : plan->changes) {
    const HostReport* h = plan->find_host(c.host);
    if (c.kind() == ResourceKind::Pool && c.action == Action::Create && c.pool() && h &&
        c.address.name == h->pool)
      candidates.push_back({h->target(), *c.pool()});
  }
  // Each host is read once locked, over the lock's connection (lent), which the steps then take
  // over (reuse); their streams' connections (seeds, images) are begun once the lock is held (not
  // beside the lock's own connects, which they would slow).
  const auto reuse = reuse_connections();
  std::shared_ptr<void> ahead_streams;
  SavedPlanCheck check;
  auto lock = lock_and_read(
      *lock_connector, plan_hosts(*plan), plan->cluster, "apply", s, &rc, *provider,
      [&](Provider& reader) {
        check = check_saved_plan(*plan, reader, s.timeout.value(), s.hosts_at_once());
      },
      [&] { ahead_streams = open_ahead(plan_hosts(*plan), 1, s.hosts_at_once()); });
  if (!lock) return rc;
  if (!check.current) {
    std::cerr << "kumo apply: " << s.plan_file << " is stale: the hosts changed since it was made ("
              << plan->config_file << "); nothing was changed. Run kumo plan again.\n";
    for (const auto& e : check.unreachable) std::cerr << "  " << e << "\n";
    return finish(std::move(lock), 1);
  }
  views::ViewOptions view{colour_enabled(STDOUT_FILENO), s.show_sensitive};
  if (!global.quiet) std::cout << views::render_human(*plan, view);
  if (!plan->has_changes()) return finish(std::move(lock), 0);
  if (!lock_after_pools(*lock_connector, candidates, s, *lock)) return finish(std::move(lock), 1);
  const int rc_run = run_plan(*plan, s, cache_dir, "Apply", global, *lock);
  return finish(std::move(lock), rc_run);
}

int plan_and_run(const ApplyState& s, const GlobalOptions& global, bool destroy) {
  const char* verb = destroy ? "destroy" : "apply";
  LoadResult loaded = s.config.load();
  print_diagnostics(loaded.diagnostics);
  if (!loaded.config) return 1;
  std::string error;
  const std::string cache_dir = s.cache.resolve(&error);
  if (cache_dir.empty()) {
    std::cerr << "kumo " << verb << ": " << error << "\n";
    return 1;
  }
  // Locked before the hosts are read: the plan shown is the one carried out.
  auto lock_connector = make_lock_connector();
  int rc = 0;
  // A destroy of some VMs expands only their entries of the file (thousands of others would be
  // rendered only to be left out).
  std::optional<ClusterConfig> scoped;
  if (destroy) scoped = destroy_scoped_config(*loaded.config, s.targets);
  const ClusterConfig& config = scoped ? *scoped : *loaded.config;
  DesiredCluster desired = expand(config);
  std::vector<LockPool> candidates;
  for (const auto& h : desired.hosts) {
    if (const DesiredPool* p = h.find_pool(h.pool); p && !destroy)
      candidates.push_back({h.target(), p->spec});
  }
  auto provider = make_libvirt_provider();
  PlanOptions options;
  options.timeout = s.timeout.value();
  options.parallelism = s.hosts_at_once();
  options.skip_unreachable = s.skip_unreachable;
  options.targets = s.targets;
  options.replace = s.replace;
  options.destroy = destroy;
  if (!destroy) options.resolve_image = make_image_resolver(cache_dir);
  // Over ssh every connection is a new ssh session. Each host is read as soon as it is locked,
  // over the lock's connection (lent: ClusterLock), which the steps then take over (reuse); an
  // apply's streams (seeds, images) have connections of their own, begun once the lock is held
  // (not beside the lock's own connects, which they would slow).
  const auto reuse = reuse_connections();
  std::shared_ptr<void> ahead_streams;
  PlanResult result;
  const std::vector<HostTarget> targets = desired.targets();
  const std::string cluster = desired.cluster;
  // The first read plans with the expanded file itself, not a copy (thousands of VMs: copied
  // while the hosts are being connected to, on the same cores); one read again after a refused
  // try at the lock expands it anew.
  bool first_read = true;
  auto lock = lock_and_read(
      *lock_connector, targets, cluster, verb, s, &rc, *provider,
      [&](Provider& reader) {
        result = make_plan(first_read ? std::move(desired) : expand(config), reader, options,
                           log_host_read);
        first_read = false;
      },
      [&] {
        if (!destroy) ahead_streams = open_ahead(targets, 1, s.hosts_at_once());
      });
  if (!lock) return rc;
  if (destroy) {
    lock->change_missing_pools_unlocked();
    for (const auto& t : lock->missing_pools()) {
      std::cerr << "warning: host " << t.name << ": its storage pool \"" << t.pool
                << "\" (where the cluster's lock lives) is gone, so it is not locked; what is "
                   "left of the cluster there is removed without it\n";
    }
  }
  if (!result.plan) {
    print_diagnostics(result.errors);
    std::cerr << "kumo " << verb << ": no plan (" << result.errors.error_count() << " error"
              << (result.errors.error_count() == 1 ? "" : "s")
              << "); nothing was changed on any host\n";
    return finish(std::move(lock), 1);
  }
  const Plan& plan = *result.plan;
  views::ViewOptions view{colour_enabled(STDOUT_FILENO), s.show_sensitive};
  std::cout << views::render_human(plan, view);
  if (!plan.has_changes()) return finish(std::move(lock), 0);
  if (!confirm(verb, s.auto_approve, destroy ? "" : ", or apply a saved plan (kumo plan -o FILE)"))
    return finish(std::move(lock), 1);
  if (!lock_after_pools(*lock_connector, candidates, s, *lock)) return finish(std::move(lock), 1);
  const int rc_run = run_plan(plan, s, cache_dir, destroy ? "Destroy" : "Apply", global, *lock);
  return finish(std::move(lock), rc_run);
}

}  // namespace

Runner add_apply_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "apply", "Make the hosts match the file (or carry out a plan saved with kumo plan -o)");
  auto s = std::make_shared<ApplyState>();
  add_common(cmd, *s);
  cmd->add_option("PLANFILE", s->plan_file,
                  "A plan saved with 'kumo plan -o FILE': applied exactly, if still current");
  cmd->add_option("--move-timeout", s->move_timeout,
                  "How long a live migration may take before it is aborted (the VM keeps "
                  "running where it was)")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& v) {
            const auto d = parse_duration(v);
            return d && d->count() >= 1000
                       ? std::string()
                       : "not a duration of at least 1s: " + v + " (try 10m or 1h)";
          },
          "DURATION"));
  cmd->add_option("--replace", s->replace,
                  "Recreate this VM (vm.web-1) from its image although nothing changed; data "
                  "disks are kept (repeatable)");
  cmd->footer("Exit status: 0 success, 1 error (what failed is listed; rerun to finish).");
  return [s, &global, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    if (!s->plan_file.empty()) {
      if (!s->replace.empty() || !s->targets.empty()) {
        std::cerr << "kumo apply: " << (s->replace.empty() ? "--target" : "--replace")
                  << " cannot change a saved plan; pass it to kumo plan -o\n";
        return 1;
      }
      return apply_saved(*s, global);
    }
    return plan_and_run(*s, global, false);
  };
}

Runner add_destroy_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "destroy", "Remove everything this cluster owns on every host (base images stay)");
  auto s = std::make_shared<ApplyState>();
  add_common(cmd, *s);
  cmd->footer("Exit status: 0 success, 1 error. Objects kumo did not make are never touched.");
  return [s, &global, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    return plan_and_run(*s, global, true);
  };
}

}  // namespace kumo::cli
