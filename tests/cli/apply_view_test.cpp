// Golden renderings of what apply shows: the progress lines (as in a CI log: no terminal) and
// the summary, after success and after a failure.
#include "cli/views/apply_view.h"

#include <catch2/catch.hpp>

#include <sstream>

#include "tests/golden.h"

using namespace kumo;
using kumo::test::check_golden;

namespace {

ExecEvent finished(const std::string& address, const std::string& host, const std::string& what,
                   StepStatus status, const std::string& message, double seconds) {
  ExecEvent e;
  e.kind = ExecEvent::Kind::Finished;
  e.step = host + "/" + address + "/" + what;
  e.address = address;
  e.host = host;
  e.what = what;
  e.status = status;
  e.message = message;
  e.seconds = seconds;
  return e;
}

ExecEvent started(const ExecEvent& f) {
  ExecEvent e = f;
  e.kind = ExecEvent::Kind::Started;
  e.status = StepStatus::Running;
  e.message.clear();
  e.seconds = 0;
  return e;
}

const std::vector<ExecEvent> kSteps = {
    finished("image.deb", "", "download", StepStatus::Ok, "132 MiB, sha256:5d1e0f…", 12.4),
    finished("image.deb", "hv1", "upload", StepStatus::Ok, "132 MiB in 1.52 s (87 MiB/s)", 1.52),
    finished("network.front", "hv1", "create", StepStatus::Ok, "", 0.31),
    finished("volume.web-0/root", "hv1", "create", StepStatus::Ok,
             "overlay on kumo-image_sha256-5d…", 0.12),
    finished("vm.web-0", "hv1", "define", StepStatus::Ok, "", 0.05),
    finished("vm.web-0", "hv1", "wait for cloud-init", StepStatus::Ok,
             "cloud-init done, 10.20.0.10", 41.0),
    finished("image.deb", "hv2", "upload", StepStatus::Failed,
             "host hv2 (qemu+ssh://root@hv2/system): upload of kumo-image_sha256-5d1e stopped at "
             "1048576 of 138412032 bytes",
             3.2),
    finished("volume.web-1/root", "hv2", "create", StepStatus::Skipped,
             "skipped: upload image.deb on hv2 failed", 0),
};

}  // namespace

TEST_CASE("apply progress without a terminal: one line per finished step", "[views][golden]") {
  std::ostringstream out;
  views::ProgressView view(out, /*live=*/false, /*colour=*/false, /*quiet=*/false);
  for (const auto& e : kSteps) {
    view.on_event(started(e));
    view.on_event(e);
  }
  view.finish();
  check_golden("apply_progress.txt", out.str());
}

TEST_CASE("apply progress without a terminal says which steps are still running", "[views]") {
  std::ostringstream out;
  views::ProgressView view(out, /*live=*/false, false, false, 80, std::chrono::seconds(0));
  ExecEvent wait = started(kSteps[5]);
  view.on_event(wait);
  CHECK(out.str() == "  start    vm.web-0 on hv1: wait for cloud-init\n");
  ExecEvent seen = wait;
  seen.kind = ExecEvent::Kind::Progress;
  seen.message = "cloud-init status \"running\"";
  view.on_event(seen);
  view.tick();
  CHECK(out.str().find("  waiting  vm.web-0 on hv1: wait for cloud-init (cloud-init status "
                       "\"running\", 0s)\n") != std::string::npos);
  view.on_event(kSteps[5]);
  const auto before = out.str().size();
  view.tick();  // nothing runs any more: nothing to say
  CHECK(out.str().size() == before);
}

TEST_CASE("the live status line fits the terminal's width", "[views]") {
  for (int width : {40, 80, 132}) {
    std::ostringstream out;
    views::ProgressView view(out, /*live=*/true, false, false, width);
    for (std::size_t i = 0; i < 5; ++i) view.on_event(started(kSteps[i]));
    view.tick();
    std::string last = out.str();
    last = last.substr(last.rfind('\r') + 4);  // after "\r\033[K"
    INFO(last);
    CHECK(last.size() <= static_cast<std::size_t>(width - 1));
    CHECK(last.size() >= static_cast<std::size_t>(std::min(width - 1, 60)));
  }
}

TEST_CASE("apply progress with -q: failures only", "[views]") {
  std::ostringstream out;
  views::ProgressView view(out, false, false, /*quiet=*/true);
  for (const auto& e : kSteps) view.on_event(e);
  CHECK(out.str() ==
        "  FAILED  image.deb on hv2: upload (3.2 s)\n           host hv2 "
        "(qemu+ssh://root@hv2/system): upload of kumo-image_sha256-5d1e stopped at 1048576 of "
        "138412032 bytes\n");
}

TEST_CASE("apply summaries after success and after a failure", "[views][golden]") {
  ExecResult ok;
  ok.seconds = 58.25;
  for (const auto& e : std::vector<ExecEvent>(kSteps.begin(), kSteps.begin() + 6))
    ok.steps.push_back({e.step, e.address, e.host, e.what, StepStatus::Ok, e.message, e.seconds});
  ok.vms.push_back({"vm.web-0", "hv1", true, {"10.20.0.10"}, 55.1});
  ok.vms.push_back({"vm.db", "hv1", true, {}, 57.9});
  check_golden("apply_summary_ok.txt", views::render_summary(ok, "Apply", false));

  ExecResult failed = ok;
  for (const auto& e : std::vector<ExecEvent>(kSteps.begin() + 6, kSteps.end()))
    failed.steps.push_back({e.step, e.address, e.host, e.what, e.status, e.message, e.seconds});
  failed.vms.pop_back();
  check_golden("apply_summary_failed.txt", views::render_summary(failed, "Apply", false));
}
