// What apply and destroy show while they run, and the summary after. Lines for every finished
// step (plain, so CI logs read well); on a terminal also one live status line at the bottom with
// the running steps, transfer progress and elapsed times.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "planner/executor.h"

namespace kumo::views {

// On a terminal (live) the running steps share one status line, cut to the terminal's `width`.
// Without one (a CI log), each step's start is a line of its own, and every `report_every` a
// step still running says so: "  waiting vm.web-0 on hv1: wait for cloud-init (cloud-init status
// "running", 2m10s)".
class ProgressView {
 public:
  ProgressView(std::ostream& out, bool live, bool colour, bool quiet, int width = 80,
               std::chrono::seconds report_every = std::chrono::seconds(30));
  void on_event(const ExecEvent& e);  // thread-safe
  void tick();                        // redraws the live line (call ~once a second)
  void finish();                      // clears the live line

 private:
  void draw_locked();
  void clear_locked();

  std::ostream& out_;
  bool live_, colour_, quiet_;
  int width_;
  std::chrono::seconds report_every_;
  std::mutex mu_;
  struct Running {
    ExecEvent last;
    std::chrono::steady_clock::time_point since, reported;
    std::string status;  // what the step saw last (Progress messages)
  };
  std::map<std::string, Running> running_;
  int done_ = 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

// "Apply complete: 12 steps done, 1 failed, 3 skipped in 95.2 s", the failures with their
// errors, and a table of the VMs that became ready with their addresses.
std::string render_summary(const ExecResult& result, const std::string& verb, bool colour);

// "512 MiB", "1.5 GiB"
std::string human_bytes(std::uint64_t bytes);

// The rows of `table` (the first one its header) in columns two spaces apart, one line each.
std::string aligned(const std::vector<std::vector<std::string>>& table);

}  // namespace kumo::views
