// The kumo binary itself: exit codes and messages for bad command lines (no host is contacted).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/cli/run_kumo.h"

namespace {

using kumo::test::run_kumo;
using kumo::test::Stdout;

const std::string kExample = std::string(KUMO_SOURCE_DIR) + "/examples/quickstart.yaml";

}  // namespace

TEST_CASE("kumo --version and --help", "[cli]") {
  auto v = run_kumo({"--version"});
  CHECK(v.status == 0);
  CHECK(v.out.rfind("kumo ", 0) == 0);
  auto h = run_kumo({"--help"});
  CHECK(h.status == 0);
  for (const char* cmd : {"validate", "schema", "plan"})
    CHECK(h.out.find(cmd) != std::string::npos);
  auto none = run_kumo({});
  CHECK(none.status == 1);
  CHECK(none.err == "kumo: no command given\nRun 'kumo help' for the list of commands.\n");
}

TEST_CASE("variables on the command line need NAME=VALUE and a declared name, errors go to stderr",
          "[cli]") {
  auto bad = run_kumo({"validate", "-f", kExample, "-var", "image"});
  CHECK(bad.status == 1);
  CHECK(bad.err.find("kumo: error: -var \"image\": expected NAME=VALUE") != std::string::npos);
  CHECK(bad.out.empty());
  auto undeclared = run_kumo({"validate", "-f", kExample, "-var", "imgae=/x"});
  CHECK(undeclared.status == 1);
  CHECK(undeclared.err.find("kumo: error: -var imgae=...: no variable \"imgae\" is declared in " +
                            kExample + " (did you mean \"image\"?)") != std::string::npos);
  auto ok = run_kumo({"validate", "-f", kExample, "-var", "image=/srv/x.qcow2"});
  CHECK(ok.status == 0);
}

TEST_CASE("plan refuses bad options before contacting any host", "[cli]") {
  auto t = run_kumo({"plan", "-f", kExample, "--timeout", "0"});
  CHECK(t.status == 1);
  CHECK(t.err.find("--timeout") != std::string::npos);
  auto both = run_kumo({"plan", "-f", kExample, "--json", "--markdown"});
  CHECK(both.status == 1);
  CHECK(both.err.find("excludes") != std::string::npos);
  auto missing = run_kumo({"plan", "-f", "/nonexistent/kumo.yaml"});
  CHECK(missing.status == 1);
  CHECK(missing.err.find("/nonexistent/kumo.yaml: error: cannot read the cluster file") !=
        std::string::npos);
}

TEST_CASE("validate --json prints diagnostics as data on stdout", "[cli]") {
  auto r = run_kumo(
      {"validate", "-f",
       std::string(KUMO_SOURCE_DIR) + "/tests/data/invalid/77-https-image-without-checksum.yaml",
       "--json"});
  CHECK(r.status == 1);
  CHECK(r.out.find("\"severity\": \"error\"") != std::string::npos);
  CHECK(r.out.find("\"line\": 4") != std::string::npos);
}

// kumo with stdout and stderr on a pseudo-terminal: what a person at a terminal sees.
std::string kumo_on_terminal(std::vector<std::string> args, const std::vector<std::string>& env) {
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(master >= 0);
  REQUIRE(grantpt(master) == 0);
  REQUIRE(unlockpt(master) == 0);
  const std::string slave_name = ptsname(master);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int slave = open(slave_name.c_str(), O_RDWR);
    dup2(slave, 1);
    dup2(slave, 2);
    close(master);
    kumo::test::exec_program(KUMO_BINARY, args, env);
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(master, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(master);  // read ends with EIO once kumo has exited and closed the terminal
  waitpid(pid, nullptr, 0);
  return out;
}

TEST_CASE("no colour without a terminal or with NO_COLOR", "[cli]") {
  const std::vector<std::string> args{"validate", "-f", "/nonexistent.yaml"};
  // On a terminal the error is coloured: the check below can see colour when there is some.
  CHECK(kumo_on_terminal(args, {}).find("\033[") != std::string::npos);
  CHECK(kumo_on_terminal(args, {"NO_COLOR=1"}).find("\033[") == std::string::npos);
  // --no-color is NO_COLOR, before or after the command.
  auto no_color = args;
  no_color.push_back("--no-color");
  CHECK(kumo_on_terminal(no_color, {}).find("\033[") == std::string::npos);
  no_color.insert(no_color.begin(), no_color.back());
  no_color.pop_back();
  CHECK(kumo_on_terminal(no_color, {}).find("\033[") == std::string::npos);
  CHECK(run_kumo(args).err.find("\033[") == std::string::npos);  // a pipe
}

TEST_CASE("apply, destroy and force-unlock refuse bad options before contacting any host",
          "[cli]") {
  for (const char* cmd : {"apply", "destroy"}) {
    auto p = run_kumo({cmd, "-f", kExample, "--parallelism", "0"});
    CHECK(p.status == 1);
    CHECK(p.err.find("--parallelism") != std::string::npos);
    auto h = run_kumo({cmd, "-f", kExample, "--per-host", "65"});
    CHECK(h.status == 1);
    CHECK(h.err.find("--per-host") != std::string::npos);
  }
  auto r = run_kumo({"apply", "-f", kExample, "--replace"});
  CHECK(r.status == 1);
  CHECK(r.err.find("--replace") != std::string::npos);
  // --replace changes what is planned: a saved plan is applied exactly or not at all.
  auto saved = run_kumo({"apply", "/nonexistent/plan.json", "--replace", "vm.web-0"});
  CHECK(saved.status == 1);
  CHECK(saved.err.find("--replace cannot change a saved plan") != std::string::npos);
  // So does --target: it is not silently ignored.
  auto targeted = run_kumo({"apply", "/nonexistent/plan.json", "--target", "vm.web-0"});
  CHECK(targeted.status == 1);
  CHECK(targeted.err ==
        "kumo apply: --target cannot change a saved plan; pass it to kumo plan -o\n");
  auto d = run_kumo({"destroy", "-f", kExample, "--replace", "vm.web-0"});
  CHECK(d.status == 1);  // destroy has no --replace
  auto u = run_kumo({"force-unlock", "-f", "/nonexistent/kumo.yaml", "--auto-approve"});
  CHECK(u.status == 1);
  CHECK(u.err.find("/nonexistent/kumo.yaml: error: cannot read the cluster file") !=
        std::string::npos);
  auto t = run_kumo({"force-unlock", "-f", kExample, "--timeout", "-1"});
  CHECK(t.status == 1);
  CHECK(t.err.find("--timeout") != std::string::npos);
}

// libvirt's ssh transport writes to a pipe to its ssh child; when a host dies during apply that
// write must be an error of that host, not a SIGPIPE that kills kumo and every other host's work
// (this killed `kumo apply` in e2e.fault when hv3's libvirtd was stopped under it). A closed
// stdout is the same write to a pipe without a reader, and needs no host to show it. A reader
// that went away wanted no more (`kumo schema | head -1`): kumo ends quietly, as Unix tools do.
TEST_CASE("a closed stdout neither kills kumo by SIGPIPE nor makes it complain", "[cli]") {
  // kumo schema prints a JSON schema (several KiB) and contacts no host.
  auto r = run_kumo({"schema"}, {}, Stdout{.closed = true, .file = ""});
  CHECK(r.signal == 0);
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  // The same command with a reader succeeds and writes it all.
  auto ok = run_kumo({"schema"});
  CHECK(ok.status == 0);
  CHECK(ok.out.size() > 1000);
  // Output lost otherwise (a full disk) is an error: exit 1, said on stderr.
  auto full = run_kumo({"schema"}, {}, Stdout{.closed = false, .file = "/dev/full"});
  CHECK(full.signal == 0);
  CHECK(full.status == 1);
  CHECK(full.err.find("kumo: error: cannot write to standard output (No space left on device)") !=
        std::string::npos);
}

TEST_CASE("every command that talks to hosts takes the same --timeout, positive only", "[cli]") {
  for (const char* cmd :
       {"plan", "apply", "destroy", "status", "hosts", "inventory", "images", "force-unlock"}) {
    for (const char* bad : {"0", "-1", "soon"}) {
      INFO(cmd << " --timeout " << bad);
      auto r = run_kumo({cmd, "-f", kExample, "--timeout", bad});
      CHECK(r.status == 1);
      CHECK(r.err.find("--timeout") != std::string::npos);
    }
  }
}
