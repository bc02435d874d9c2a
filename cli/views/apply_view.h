// What apply and destroy show while they run, and the summary after. Lines for every finished
// step (plain, so CI logs read well); on a terminal also one live status line at the bottom with
// the running steps, transfer progress and elapsed times.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <ostream>
#include <string>

#include "planner/executor.h"

namespace kumo::views {

class ProgressView {
 public:
  ProgressView(std::ostream& out, bool live, bool colour, bool quiet);
  void on_event(const ExecEvent& e);  // thread-safe
  void tick();                        // redraws the live line (call ~once a second)
  void finish();                      // clears the live line

 private:
  void draw_locked();
  void clear_locked();

  std::ostream& out_;
  bool live_, colour_, quiet_;
  std::mutex mu_;
  struct Running {
    ExecEvent last;
    std::chrono::steady_clock::time_point since;
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

}  // namespace kumo::views
