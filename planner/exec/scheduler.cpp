#include "planner/exec/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace kumo::exec {
namespace {

class Scheduler {
 public:
  Scheduler(const TaskGraph& graph, const Limits& limits, const RunTask& run, EventSink& sink)
      : graph_(graph), limits_(limits), run_(run), sink_(sink), states_(graph.tasks.size()) {}

  std::vector<TaskState> run(std::string* stopped) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      // A thread that ran out of steps is joined now, not at the end: threads never pile up with
      // the number of steps, only with the steps running at once.
      for (std::size_t key : finished_) {
        threads_.at(key).join();
        threads_.erase(key);
      }
      finished_.clear();
      while (pass(nullptr)) {
      }
      const bool all_done = std::all_of(states_.begin(), states_.end(), [](const TaskState& s) {
        return s.status != StepStatus::Pending && s.status != StepStatus::Running;
      });
      if (all_done) break;
      cv_.wait(lock);
    }
    lock.unlock();
    for (auto& [key, th] : threads_) th.join();
    if (stopped) *stopped = stopped_;
    return states_;
  }

 private:
  // One pass over the pending tasks: skips those whose dependency failed, starts those that are
  // ready and fit: each on a thread of its own, but the first on the calling worker when `next`
  // is given (its next step, so that a finished step's slot is taken again without waiting for
  // this scheduler's thread to wake). True when anything changed (another pass may find more).
  bool pass(std::optional<std::size_t>* next) {
    bool progressed = false;
    // Ready tasks by host, in graph order, and how many steps each host has not started yet.
    std::map<std::string, std::vector<std::size_t>> ready;
    std::map<std::string, std::size_t> left;
    for (std::size_t i = 0; i < graph_.tasks.size(); ++i) {
      if (states_[i].status != StepStatus::Pending) continue;
      if (skip_if_blocked(i)) {
        progressed = true;
        continue;
      }
      ++left[graph_.tasks[i].host];
      if (deps_done(graph_.tasks[i])) ready[graph_.tasks[i].host].push_back(i);
    }
    // Each free slot goes to the host with the fewest steps running, then to the one with the
    // most steps left: every host gets going at once (hosts are read and locked in parallel;
    // their steps too), and a host whose steps take longer (over ssh) is not starved by quicker
    // ones that free their slots more often; once those are done, it gets their slots.
    for (;;) {
      std::vector<std::size_t>* pick = nullptr;
      std::vector<std::size_t>::iterator pick_it;
      std::pair<int, std::size_t> best{0, 0};
      std::string pick_host;
      for (auto& [host, tasks] : ready) {
        const auto it = std::find_if(tasks.begin(), tasks.end(),
                                     [&](std::size_t i) { return fits(graph_.tasks[i]); });
        if (it == tasks.end()) continue;
        // Fewer running first, then more left (negated into an ascending key).
        const std::pair<int, std::size_t> key{count(running_host_, host),
                                              std::numeric_limits<std::size_t>::max() - left[host]};
        if (pick && key >= best) continue;
        pick = &tasks;
        pick_it = it;
        best = key;
        pick_host = host;
      }
      if (!pick) break;
      const std::size_t i = *pick_it;
      pick->erase(pick_it);
      --left[pick_host];
      progressed = true;
      begin(i);
      if (next && !*next) {
        *next = i;
      } else {
        const std::size_t key = next_key_++;
        threads_.emplace(key, std::thread([this, key, i] { work(key, i); }));
      }
    }
    return progressed;
  }

  // Skipped (and said so) when the apply stopped or a dependency failed or was skipped.
  bool skip_if_blocked(std::size_t i) {
    const Task& t = graph_.tasks[i];
    TaskState& s = states_[i];
    if (!stopped_.empty()) {
      s.status = StepStatus::Skipped;
      s.message = "skipped: the apply stopped at " + stopped_at_;
      sink_.task_event(t, ExecEvent::Kind::Finished, s.status, s.message, 0);
      return true;
    }
    for (std::size_t dep : t.deps) {
      const StepStatus d = states_[dep].status;
      if (d != StepStatus::Failed && d != StepStatus::Skipped) continue;
      const Task& blocker = graph_.tasks[dep];
      s.status = StepStatus::Skipped;
      s.message = "skipped: " + blocker.what + " " + blocker.address +
                  (blocker.host.empty() ? "" : " on " + blocker.host) +
                  (d == StepStatus::Failed ? " failed" : " was skipped");
      sink_.task_event(t, ExecEvent::Kind::Finished, s.status, s.message, 0);
      return true;
    }
    return false;
  }

  bool deps_done(const Task& t) const {
    return std::all_of(t.deps.begin(), t.deps.end(),
                       [&](std::size_t dep) { return states_[dep].status == StepStatus::Ok; });
  }

  // Marks task i running (under mu_).
  void begin(std::size_t i) {
    const Task& t = graph_.tasks[i];
    states_[i].status = StepStatus::Running;
    account(t, +1);
    sink_.task_event(t, ExecEvent::Kind::Started);
  }

  bool fits(const Task& t) const {
    if (t.slot == Slot::Free) return true;
    if (running_ >= limits_.parallelism) return false;
    if (t.host.empty()) return true;
    if (count(running_host_, t.host) >= limits_.per_host) return false;
    return t.slot != Slot::Upload || count(uploads_host_, t.host) < limits_.uploads_per_host;
  }

  static int count(const std::map<std::string, int>& m, const std::string& host) {
    auto it = m.find(host);
    return it == m.end() ? 0 : it->second;
  }

  void account(const Task& t, int delta) {
    if (t.slot == Slot::Free) return;
    running_ += delta;
    if (t.host.empty()) return;
    running_host_[t.host] += delta;
    if (t.slot == Slot::Upload) uploads_host_[t.host] += delta;
  }

  // A worker thread: runs task i, then whatever its pass hands it next, until nothing does.
  void work(std::size_t key, std::size_t i) {
    for (;;) {
      const Task& t = graph_.tasks[i];
      const auto start = Clock::now();
      StepStatus status = StepStatus::Ok;
      std::string message;
      bool stops = false;
      try {
        message = run_(t);
      } catch (const ApplyStopped& e) {
        status = StepStatus::Failed;
        message = e.what();
        stops = true;
      } catch (const std::exception& e) {
        status = StepStatus::Failed;
        message = e.what();
      }
      std::lock_guard<std::mutex> lock(mu_);
      TaskState& s = states_[i];
      s.seconds = since(start);
      s.status = status;
      s.message = message;
      if (stops && stopped_.empty()) {
        stopped_ = message;
        stopped_at_ = t.what + " " + t.address + (t.host.empty() ? "" : " on " + t.host);
      }
      account(t, -1);
      sink_.task_event(t, ExecEvent::Kind::Finished, s.status, s.message, s.seconds);
      std::optional<std::size_t> next;
      pass(&next);
      if (!next) {
        finished_.push_back(key);
        cv_.notify_all();
        return;
      }
      i = *next;
    }
  }

  const TaskGraph& graph_;
  const Limits& limits_;
  const RunTask& run_;
  EventSink& sink_;
  std::vector<TaskState> states_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
  std::map<std::size_t, std::thread> threads_;  // by key, a number given to each
  std::size_t next_key_ = 0;
  std::vector<std::size_t> finished_;  // keys of the threads that are done but not joined yet
  std::string stopped_, stopped_at_;   // the first ApplyStopped: why, and at which step
  std::map<std::string, int> running_host_, uploads_host_;
};

}  // namespace

std::vector<TaskState> run_graph(const TaskGraph& graph, const Limits& limits, const RunTask& run,
                                 EventSink& sink, std::string* stopped) {
  return Scheduler(graph, limits, run, sink).run(stopped);
}

}  // namespace kumo::exec
