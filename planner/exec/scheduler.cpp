#include "planner/exec/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace kumo::exec {
namespace {

class Scheduler {
 public:
  Scheduler(const TaskGraph& graph, const Limits& limits, const RunTask& run, EventSink& sink)
      : graph_(graph), limits_(limits), run_(run), sink_(sink), states_(graph.tasks.size()) {}

  std::vector<TaskState> run(std::string* stopped) {
    std::map<std::size_t, std::thread> threads;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      // A finished step's thread is joined now, not at the end: threads never pile up with the
      // number of steps, only with the steps running at once.
      for (std::size_t i : finished_) {
        threads.at(i).join();
        threads.erase(i);
      }
      finished_.clear();
      while (start_ready(threads)) {
      }
      const bool all_done = std::all_of(states_.begin(), states_.end(), [](const TaskState& s) {
        return s.status != StepStatus::Pending && s.status != StepStatus::Running;
      });
      if (all_done) break;
      cv_.wait(lock);
    }
    lock.unlock();
    for (auto& [i, th] : threads) th.join();
    if (stopped) *stopped = stopped_;
    return states_;
  }

 private:
  // One pass over the pending tasks: skips those whose dependency failed, starts those that are
  // ready and fit. True when anything changed (another pass may find more).
  bool start_ready(std::map<std::size_t, std::thread>& threads) {
    bool progressed = false;
    // Ready tasks by host, in graph order: started a host at a time, round after round, so
    // every host gets going at once (hosts are read and locked in parallel; their steps too).
    std::map<std::string, std::vector<std::size_t>> ready;
    for (std::size_t i = 0; i < graph_.tasks.size(); ++i) {
      if (states_[i].status != StepStatus::Pending) continue;
      if (skip_if_blocked(i)) {
        progressed = true;
        continue;
      }
      if (deps_done(graph_.tasks[i])) ready[graph_.tasks[i].host].push_back(i);
    }
    for (bool started = true; started;) {
      started = false;
      for (auto& [host, tasks] : ready) {
        const auto it = std::find_if(tasks.begin(), tasks.end(),
                                     [&](std::size_t i) { return fits(graph_.tasks[i]); });
        if (it == tasks.end()) continue;
        start(*it, threads);
        tasks.erase(it);
        started = progressed = true;
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

  void start(std::size_t i, std::map<std::size_t, std::thread>& threads) {
    const Task& t = graph_.tasks[i];
    states_[i].status = StepStatus::Running;
    account(t, +1);
    sink_.task_event(t, ExecEvent::Kind::Started);
    threads.emplace(i, std::thread([this, i] { run_one(i); }));
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

  void run_one(std::size_t i) {
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
    finished_.push_back(i);
    cv_.notify_all();
  }

  const TaskGraph& graph_;
  const Limits& limits_;
  const RunTask& run_;
  EventSink& sink_;
  std::vector<TaskState> states_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
  std::vector<std::size_t> finished_;  // tasks whose thread is done but not joined yet
  std::string stopped_, stopped_at_;   // the first ApplyStopped: why, and at which step
  std::map<std::string, int> running_host_, uploads_host_;
};

}  // namespace

std::vector<TaskState> run_graph(const TaskGraph& graph, const Limits& limits, const RunTask& run,
                                 EventSink& sink, std::string* stopped) {
  return Scheduler(graph, limits, run, sink).run(stopped);
}

}  // namespace kumo::exec
