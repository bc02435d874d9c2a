// Shell completion and the man page: the scripts kumo prints are valid bash, zsh and fish, and
// when a shell runs them they complete commands, options and the cluster file's addresses (by
// asking kumo __complete, which contacts no host); kumo.1 is clean troff. The build writes all
// four where packaging expects them.
#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/cli/run_kumo.h"

using kumo::test::read_file;
using kumo::test::run_kumo;
using kumo::test::run_program;
using kumo::test::TempDir;

namespace {

namespace fs = std::filesystem;

// Its hosts are never contacted: one of them could never answer.
constexpr const char* kCluster = R"(cluster: comp
hosts:
  hv1: {uri: "qemu+tcp://127.0.0.1:1/system"}
images:
  deb: {path: /srv/deb.qcow2, checksum: none}
networks:
  front: {cidr: 10.20.0.0/24}
vms:
  web: {count: 3, image: deb, networks: [{network: front}]}
  db: {image: deb}
)";

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    out.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

bool has(const std::vector<std::string>& words, const std::string& w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

const std::string kBinDir = fs::path(KUMO_BINARY).parent_path().string();

// The environment of a shell in the test: kumo on its PATH, a HOME of its own.
std::vector<std::string> shell_env(const TempDir& home) {
  return {"PATH=" + kBinDir + ":/usr/bin:/bin", "HOME=" + home.path(), "TERM=dumb"};
}

}  // namespace

TEST_CASE("kumo __complete offers commands, options and the file's addresses",
          "[cli][completion]") {
  TempDir dir;
  const std::string file = dir.write("kumo.yaml", kCluster);
  auto commands = lines(run_kumo({"__complete", ""}).out);
  for (const char* c : {"validate", "plan", "show", "apply", "status", "hosts", "ssh", "console",
                        "inventory", "completion", "help", "version"})
    CHECK(has(commands, c));
  CHECK_FALSE(has(commands, "__man"));
  CHECK_FALSE(has(commands, "__complete"));
  auto options = lines(run_kumo({"__complete", "plan", "--"}).out);
  for (const char* o :
       {"--json", "--detailed-exitcode", "-f", "--file", "-var", "--target", "-C", "-q"})
    CHECK(has(options, o));
  auto targets = run_kumo({"__complete", "-f", file, "plan", "--target", "vm.w"});
  CHECK(targets.status == 0);
  CHECK(lines(targets.out) == std::vector<std::string>{"vm.web", "vm.web-0", "vm.web-1", "vm.web-2",
                                                       "vm.db", "network.front"});
  // kumo ssh / console take a VM's name.
  auto vms = run_kumo({"__complete", "-f", file, "ssh", ""});
  CHECK(lines(vms.out) == std::vector<std::string>{"web-0", "web-1", "web-2", "db"});
  CHECK(lines(run_kumo({"__complete", "-f", file, "console", "w"}).out).size() == 4);
  // --replace takes VMs only; -C finds ./kumo.yaml there, before or after the command.
  CHECK(lines(run_kumo({"__complete", "-C", dir.path(), "apply", "--replace", ""}).out) ==
        std::vector<std::string>{"vm.web", "vm.web-0", "vm.web-1", "vm.web-2", "vm.db"});
  CHECK(lines(run_kumo({"__complete", "destroy", "-C", dir.path(), "--target", ""}).out).size() ==
        6);
  CHECK(run_kumo({"__complete", "plan", "-f", ""}).out == ":files\n");
  CHECK(run_kumo({"__complete", "show", ""}).out == ":files\n");
  CHECK(run_kumo({"__complete", "-C", ""}).out == ":dirs\n");
  CHECK(lines(run_kumo({"__complete", "completion", ""}).out) ==
        std::vector<std::string>{"bash", "zsh", "fish"});
  CHECK(has(lines(run_kumo({"__complete", "images", ""}).out), "prune"));
  // A file that does not load offers no address, and no error.
  auto broken = run_kumo({"__complete", "-f", dir / "missing.yaml", "plan", "--target", ""});
  CHECK(broken.status == 0);
  CHECK(broken.out.empty());
  CHECK(broken.err.empty());
}

TEST_CASE("the completion scripts are valid bash, zsh and fish", "[cli][completion]") {
  TempDir dir;
  for (const char* shell : {"bash", "zsh", "fish"}) {
    auto r = run_kumo({"completion", shell});
    REQUIRE(r.status == 0);
    const std::string script = dir.write(std::string("kumo.") + shell, r.out);
    auto check = run_program(std::string("/usr/bin/") + shell, {"-n", script}, shell_env(dir));
    INFO(shell << ": " << check.err);
    CHECK(check.status == 0);
    CHECK(check.err.empty());
  }
}

TEST_CASE("bash completes a VM address through the script", "[cli][completion]") {
  TempDir dir;
  const std::string file = dir.write("kumo.yaml", kCluster);
  const std::string script = dir.write("kumo.bash", run_kumo({"completion", "bash"}).out);
  // COMP_WORDS as bash sets them for `kumo -f FILE plan --target vm.web-<TAB>`.
  const std::string drive =
      "source \"$1\"; COMP_WORDS=(kumo -f \"$2\" plan --target vm.web-); COMP_CWORD=5; "
      "_kumo; printf '%s\\n' \"${COMPREPLY[@]}\"";
  auto r = run_program("/usr/bin/bash", {"-c", drive, "bash", script, file}, shell_env(dir));
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(lines(r.out) == std::vector<std::string>{"vm.web-0", "vm.web-1", "vm.web-2"});
  // A command, and an option.
  const std::string cmd =
      "source \"$1\"; COMP_WORDS=(kumo vali); COMP_CWORD=1; _kumo; printf '%s\\n' "
      "\"${COMPREPLY[@]}\"";
  CHECK(run_program("/usr/bin/bash", {"-c", cmd, "bash", script}, shell_env(dir)).out ==
        "validate\n");
  const std::string opt =
      "source \"$1\"; COMP_WORDS=(kumo plan --detailed); COMP_CWORD=2; _kumo; "
      "printf '%s\\n' \"${COMPREPLY[@]}\"";
  CHECK(run_program("/usr/bin/bash", {"-c", opt, "bash", script}, shell_env(dir)).out ==
        "--detailed-exitcode\n");
}

TEST_CASE("zsh completes a VM address through the script", "[cli][completion]") {
  TempDir dir;
  const std::string file = dir.write("kumo.yaml", kCluster);
  const std::string script = dir.write("_kumo", run_kumo({"completion", "zsh"}).out);
  // Outside a completion widget: compdef and compadd stand in for zsh's, compadd recording.
  const std::string drive =
      "compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -l -- \"$@\"; }; "
      "source \"$1\"; words=(kumo -f \"$2\" plan --target vm.web-); CURRENT=6; _kumo";
  auto r = run_program("/usr/bin/zsh", {"-f", "-c", drive, "zsh", script, file}, shell_env(dir));
  INFO(r.err);
  CHECK(r.status == 0);
  // compadd filters by what is typed itself: every address comes to it.
  CHECK(has(lines(r.out), "vm.web-0"));
  CHECK(has(lines(r.out), "vm.web-2"));
}

TEST_CASE("fish completes a VM address through the script", "[cli][completion]") {
  TempDir dir;
  const std::string file = dir.write("kumo.yaml", kCluster);
  const std::string script = dir.write("kumo.fish", run_kumo({"completion", "fish"}).out);
  auto r = run_program(
      "/usr/bin/fish",
      {"--no-config", "-c",
       "source $argv[1]; complete -C \"kumo -f $argv[2] plan --target vm.web-\"", script, file},
      shell_env(dir));
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(lines(r.out) == std::vector<std::string>{"vm.web-0", "vm.web-1", "vm.web-2"});
}

TEST_CASE("kumo.1 is generated from the command line definition and is clean troff", "[cli][man]") {
  const std::string page = kBinDir + "/share/man/man1/kumo.1";
  REQUIRE(fs::exists(page));
  const std::string text = read_file(page);
  CHECK(text == run_kumo({"__man"}).out);
  CHECK(text.rfind(".TH KUMO 1 ", 0) == 0);
  for (const char* cmd : {"validate", "plan", "show", "apply", "hosts", "ssh", "console",
                          "inventory", "images prune", "completion"})
    CHECK(text.find(std::string(".SS \"kumo ") + cmd + "\"") != std::string::npos);
  CHECK(text.find("\\fB\\-\\-detailed\\-exitcode\\fR") != std::string::npos);
  CHECK(text.find("__complete") == std::string::npos);
  // man --warnings: groff's warnings on stderr; none allowed.
  TempDir home;
  auto r = run_program("/usr/bin/man", {"--warnings", "-l", page},
                       {"PATH=/usr/bin:/bin", "HOME=" + home.path(), "MANPAGER=cat", "PAGER=cat",
                        "MANWIDTH=80", "LANG=C.UTF-8"});
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  CHECK(r.out.find("kumo plan") != std::string::npos);
  // The completions are where packaging takes them from.
  for (const char* path :
       {"/share/bash-completion/completions/kumo", "/share/zsh/vendor-completions/_kumo",
        "/share/fish/vendor_completions.d/kumo.fish"}) {
    INFO(path);
    CHECK(fs::exists(kBinDir + path));
  }
  CHECK(read_file(kBinDir + "/share/bash-completion/completions/kumo") ==
        run_kumo({"completion", "bash"}).out);
}
