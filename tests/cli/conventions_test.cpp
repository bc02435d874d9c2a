// The conventions of kumo's command line (those of Terraform, git, kubectl): usage errors exit 1
// and say what was meant, help and version as commands, global options before or after the
// command, -C DIR, --no-color, --lock-timeout DURATION. No host is contacted.
#include <catch2/catch.hpp>

#include <regex>

#include "cli/common.h"
#include "tests/cli/run_kumo.h"

using kumo::test::run_kumo;
using kumo::test::TempDir;

namespace {

const std::string kExample = std::string(KUMO_SOURCE_DIR) + "/examples/quickstart.yaml";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a mistyped command exits 1 and names the command meant", "[cli][usage]") {
  auto r = run_kumo({"valdate", "-f", kExample});
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK(r.err ==
        "kumo: unknown command \"valdate\" (did you mean \"validate\"?)\n"
        "Run 'kumo help' for the list of commands.\n");
  auto far = run_kumo({"frobnicate"});
  CHECK(far.status == 1);
  CHECK(far.err ==
        "kumo: unknown command \"frobnicate\"\nRun 'kumo help' for the list of commands.\n");
  // After kumo's own options too.
  auto late = run_kumo({"-q", "pln"});
  CHECK(late.status == 1);
  CHECK(contains(late.err, "unknown command \"pln\" (did you mean \"plan\"?)"));
}

TEST_CASE("a mistyped option exits 1 and names the option meant", "[cli][usage]") {
  auto r = run_kumo({"plan", "-f", kExample, "--josn"});
  CHECK(r.status == 1);
  CHECK(r.err ==
        "kumo plan: unknown option --josn (did you mean \"--json\"?)\n"
        "Run 'kumo plan --help' for its options.\n");
  auto v = run_kumo({"validate", "--fiel", kExample});
  CHECK(v.status == 1);
  CHECK(contains(v.err, "kumo validate: unknown option --fiel (did you mean \"--file\"?)"));
  // Typed before the command, it is still the command's option that was meant.
  auto before = run_kumo({"--detailed-exitcod", "plan"});
  CHECK(before.status == 1);
  CHECK(contains(before.err,
                 "unknown option --detailed-exitcod (did you mean "
                 "\"--detailed-exitcode\"?)"));
  // A subcommand's own: images prune.
  auto prune = run_kumo({"images", "prune", "--dry-rn"});
  CHECK(prune.status == 1);
  CHECK(contains(prune.err,
                 "kumo images prune: unknown option --dry-rn (did you mean "
                 "\"--dry-run\"?)\nRun 'kumo images prune --help'"));
  // An option of another command is not one of this command's.
  auto other = run_kumo({"schema", "--json"});
  CHECK(other.status == 1);
  CHECK(contains(other.err, "kumo schema: unknown option --json"));
}

TEST_CASE("a bad value or a missing one is a usage error: exit 1, never CLI11's 105-114",
          "[cli][usage]") {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"plan", "-f", kExample, "--timeout", "soon"},
           {"apply", "-f", kExample, "--parallelism", "0"},
           {"apply", "-f", kExample, "--lock-timeout", "a while"},
           {"apply", "-f", kExample, "--move-timeout", "0"},
           {"plan", "-f", kExample, "--json", "--markdown"},
           {"plan", "-f"},
           {"completion", "tcsh"},
           {"completion"},
           {"show"},
           {"validate", "extra"},
       }) {
    auto r = run_kumo(args);
    INFO(args[0] << " " << (args.size() > 1 ? args.back() : "") << "\n" << r.err);
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK(contains(r.err, "Run 'kumo " + args[0]));
  }
  CHECK(contains(run_kumo({"apply", "--lock-timeout", "a while"}).err,
                 "not a duration: a while (try 30s, 5m or 1h)"));
  CHECK(contains(run_kumo({"apply", "--move-timeout", "500ms"}).err,
                 "not a duration of at least 1s: 500ms (try 10m or 1h)"));
}

TEST_CASE("kumo help and kumo help COMMAND are --help's text", "[cli][help]") {
  auto help = run_kumo({"help"});
  CHECK(help.status == 0);
  CHECK(help.out == run_kumo({"--help"}).out);
  for (const char* cmd :
       {"validate", "schema", "plan", "show", "apply", "destroy", "status", "hosts", "ssh",
        "console", "inventory", "images", "force-unlock", "completion", "help", "version"})
    CHECK(contains(help.out, std::string("\n  ") + cmd + " "));
  CHECK_FALSE(contains(help.out, "__"));  // hidden: __complete, __man
  CHECK(contains(help.out, "Usage: kumo [OPTIONS] COMMAND"));
  CHECK(contains(help.out, "Exit status: 0 success, 1 error (usage errors too), 2 changes"));
  auto plan = run_kumo({"help", "plan"});
  CHECK(plan.status == 0);
  CHECK(plan.out == run_kumo({"plan", "--help"}).out);
  CHECK(contains(plan.out, "--detailed-exitcode"));
  CHECK(run_kumo({"help", "images", "prune"}).out == run_kumo({"images", "prune", "--help"}).out);
  auto typo = run_kumo({"help", "plna"});
  CHECK(typo.status == 1);
  CHECK(contains(typo.err, "kumo help: kumo has no command \"plna\" (did you mean \"plan\"?)"));
}

TEST_CASE("help says ranges, defaults and exclusive options in words, and -var as typed",
          "[cli][help]") {
  const std::string plan = run_kumo({"plan", "--help"}).out;
  CHECK(std::regex_search(
      plan,
      std::regex(
          R"(\n  --json +Print the plan as JSON \(docs/plan-json.md\) \(not with --markdown\)\n)")));
  CHECK(std::regex_search(plan, std::regex(R"(\n  --markdown +Print .* \(not with --json\)\n)")));
  CHECK(std::regex_search(plan, std::regex(R"(\n  -var NAME=VALUE +Set a variable)")));
  CHECK(std::regex_search(
      plan,
      std::regex(
          R"(\n  -f, --file FILE +Cluster description to read \('-' for stdin\) \(default: kumo.yaml\)\n)")));
  CHECK(std::regex_search(
      plan,
      std::regex(
          R"(\n  --timeout SECONDS +Seconds to wait for each host to connect \(more than 0; default: 10\)\n)")));
  CHECK_FALSE(contains(plan, "Excludes"));
  CHECK_FALSE(contains(plan, "TEXT"));
  CHECK(contains(plan,
                 "Global options (before or after the command): -C DIR, -v, -q, --no-color; see"));
  const std::string apply = run_kumo({"apply", "--help"}).out;
  CHECK(std::regex_search(
      apply,
      std::regex(
          R"(\n  --parallelism N +Steps at once over all hosts;.* \(1-256; default: 10\)\n)")));
  CHECK(std::regex_search(
      apply, std::regex(R"(\n  --per-host N +Steps at once on one host \(1-64; default: 4\)\n)")));
  CHECK(std::regex_search(
      apply, std::regex(R"(\n  --lock-timeout DURATION +How long to wait .* \(default: 0s\)\n)")));
  CHECK_FALSE(contains(apply, "INT"));
}

TEST_CASE("kumo version: kumo's version, git revision, libvirt built against and running",
          "[cli][help]") {
  auto v = run_kumo({"version"});
  CHECK(v.status == 0);
  CHECK(std::regex_match(v.out, std::regex("kumo [0-9]+\\.[0-9]+\\.[0-9]+\n"
                                           "git revision: [^ \n]+\n"
                                           "libvirt: built against [0-9]+\\.[0-9]+\\.[0-9]+, "
                                           "running [0-9]+\\.[0-9]+\\.[0-9]+\n")));
  CHECK(run_kumo({"--version"}).out == v.out);
}

TEST_CASE("global options go before or after the command", "[cli][usage]") {
  auto after = run_kumo({"validate", "-f", kExample, "-var", "image=/srv/x.qcow2", "-q"});
  auto before = run_kumo({"-f", kExample, "-var", "image=/srv/x.qcow2", "-q", "validate"});
  CHECK(after.status == 0);
  CHECK(before.status == after.status);
  CHECK(before.out == after.out);
  CHECK(before.err == after.err);
  auto loud = run_kumo({"-f", kExample, "validate"});
  CHECK(loud.status == 0);
  CHECK(contains(loud.out, "quickstart.yaml: valid"));
  // kumo -f x plan is kumo plan -f x: the same error, nothing contacted.
  auto p1 = run_kumo({"-f", "/nonexistent/kumo.yaml", "plan"});
  auto p2 = run_kumo({"plan", "-f", "/nonexistent/kumo.yaml"});
  CHECK(p1.status == 1);
  CHECK(p1.err == p2.err);
  CHECK(contains(p1.err, "/nonexistent/kumo.yaml: error: cannot read the cluster file"));
  // --file=x and the value glued to -f work before the command too.
  CHECK(run_kumo({"--file=" + kExample, "validate"}).status == 0);
  CHECK(run_kumo({"-f" + kExample, "validate"}).status == 0);
}

TEST_CASE("kumo -C DIR runs kumo as if started in DIR", "[cli][usage]") {
  TempDir dir;
  dir.write("kumo.yaml", kumo::test::read_file(kExample));
  auto r = run_kumo({"-C", dir.path(), "validate"});
  CHECK(r.status == 0);
  CHECK(r.out.rfind("kumo.yaml: valid: cluster", 0) == 0);
  // After the command, and with -f relative to DIR.
  auto after = run_kumo({"validate", "-f", "kumo.yaml", "-C", dir.path()});
  CHECK(after.status == 0);
  CHECK(after.out == r.out);
  auto missing = run_kumo({"-C", dir / "nope", "validate"});
  CHECK(missing.status == 1);
  CHECK(missing.err == "kumo: -C " + dir / "nope" + ": No such file or directory\n");
  auto no_dir = run_kumo({"validate", "-C"});
  CHECK(no_dir.status == 1);
  CHECK(contains(no_dir.err, "-C needs a directory"));
}

TEST_CASE("kumo apply --lock-timeout takes a duration", "[cli][lock]") {
  using kumo::cli::parse_duration;
  using std::chrono::milliseconds;
  CHECK(parse_duration("0") == milliseconds(0));
  CHECK(parse_duration("30") == milliseconds(30000));
  CHECK(parse_duration("30s") == milliseconds(30000));
  CHECK(parse_duration("1.5s") == milliseconds(1500));
  CHECK(parse_duration("500ms") == milliseconds(500));
  CHECK(parse_duration("5m") == milliseconds(300000));
  CHECK(parse_duration("1h") == milliseconds(3600000));
  CHECK(parse_duration("1m30s") == milliseconds(90000));
  for (const char* bad : {"", "s", "-1s", "5 m", "5x", "soon", "1s5", "1e400s"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}
