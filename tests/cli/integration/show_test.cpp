// kumo show PLANFILE against what kumo plan printed when it saved that plan (libvirt's
// test:///default driver, in kumo's own process): the same text, JSON and markdown, masked the
// same way; and a file that is not a plan kumo saved is refused, exit 1.
#include <catch2/catch.hpp>

#include "tests/cli/run_kumo.h"

using kumo::test::read_file;
using kumo::test::run_kumo;
using kumo::test::TempDir;

namespace {

constexpr const char* kSecret = "hunter2-very-secret";

struct Cluster {
  TempDir dir;
  std::string file;
  std::vector<std::string> env{"HOME=" + dir.path(), "NO_COLOR=1"};
  Cluster() {
    const std::string image = dir.write("base.img", std::string(4096, '\0'));
    file = dir.write("kumo.yaml", std::string(R"(cluster: show
variables:
  secret: {sensitive: true, default: ")") +
                                      kSecret + R"("}
hosts:
  t: {uri: "test:///default", pool: default-pool}
images:
  base: {path: )" + image + R"(}
vms:
  web:
    count: 2
    image: base
    memory: 64MiB
    running: false
    wait_for: none
    cloud_init:
      write_files: [{path: /etc/secret, content: "${var.secret}"}]
)");
  }
  // kumo plan ... -o FILE, what it printed.
  kumo::test::Run plan(const std::string& saved, std::vector<std::string> extra) {
    std::vector<std::string> args{"plan", "-f", file, "--cache-dir", dir / "cache", "-o", saved};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_kumo(args, env);
  }
};

}  // namespace

TEST_CASE("kumo show prints a saved plan as kumo plan printed it, masked the same way",
          "[cli][show]") {
  Cluster c;
  for (const std::vector<std::string>& format : std::vector<std::vector<std::string>>{
           {}, {"--json"}, {"--markdown"}, {"--json", "--show-sensitive"}}) {
    const std::string saved = c.dir / "plan.saved";
    const auto planned = c.plan(saved, format);
    INFO((format.empty() ? "human" : format[0]) << "\n" << planned.err);
    REQUIRE(planned.status == 0);
    REQUIRE(planned.out.find("web-1") != std::string::npos);
    std::vector<std::string> args{"show", saved};
    args.insert(args.end(), format.begin(), format.end());
    const auto shown = run_kumo(args, c.env);
    CHECK(shown.status == 0);
    CHECK(shown.err.empty());
    CHECK(shown.out == planned.out);
    const bool revealed = format.size() == 2;
    CHECK((shown.out.find(kSecret) != std::string::npos) == revealed);
    // The saved file keeps what apply needs; show masks it unless asked.
    if (revealed) {
      const auto masked = run_kumo({"show", saved, "--json"}, c.env);
      CHECK(masked.status == 0);
      CHECK(masked.out.find(kSecret) == std::string::npos);
    }
  }
  // Global options and -C work for show as for every command. (Compared with the plan that
  // saved this very file: a host's read time differs from one plan to the next.)
  const auto markdown = c.plan(c.dir / "md.saved", {"--markdown"});
  REQUIRE(markdown.status == 0);
  const auto quiet = run_kumo({"-C", c.dir.path(), "show", "md.saved", "-q", "--markdown"}, c.env);
  CHECK(quiet.status == 0);
  CHECK(quiet.out == markdown.out);
}

TEST_CASE("kumo show refuses a file that is not a plan kumo saved: exit 1, saying why",
          "[cli][show]") {
  Cluster c;
  const std::string saved = c.dir / "plan.saved";
  REQUIRE(c.plan(saved, {}).status == 0);
  const std::string text = read_file(saved);

  const auto missing = run_kumo({"show", c.dir / "nope"}, c.env);
  CHECK(missing.status == 1);
  CHECK(missing.out.empty());
  CHECK(missing.err == "kumo show: " + c.dir / "nope" + ": cannot read " + c.dir / "nope" +
                           ": No such file or directory\n");

  const std::string cut = c.dir.write("cut.saved", text.substr(0, text.size() / 2));
  const auto truncated = run_kumo({"show", cut}, c.env);
  CHECK(truncated.status == 1);
  CHECK(truncated.out.empty());
  CHECK(truncated.err ==
        "kumo show: " + cut + ": " + cut + " is not JSON: not a saved kumo plan\n");

  const std::string other = c.dir.write("other.json", "{\"cluster\": \"show\"}\n");
  const auto not_plan = run_kumo({"show", other}, c.env);
  CHECK(not_plan.status == 1);
  CHECK(not_plan.err.rfind("kumo show: " + other + ": ", 0) == 0);

  // An edited plan whose volume would be written outside the pool.
  std::string forged_text = text;
  const std::string volume = "kumo_show_web-0_root.qcow2";
  const auto at = forged_text.find(volume);
  REQUIRE(at != std::string::npos);
  forged_text.replace(at, volume.size(), "../../etc/passwd");
  const std::string forged = c.dir.write("forged.saved", forged_text);
  const auto refused = run_kumo({"show", forged}, c.env);
  CHECK(refused.status == 1);
  CHECK(refused.out.empty());
  CHECK(refused.err.find("kumo show: " + forged + ": saved plan is damaged") == 0);
}
