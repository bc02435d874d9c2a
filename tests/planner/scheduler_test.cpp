// The scheduler on its own (run_graph), with steps that only take time: which host a free slot
// goes to.
#include "planner/exec/scheduler.h"

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

using namespace kumo;
using namespace kumo::exec;

namespace {

// `per_host` independent steps on each host.
TaskGraph independent_steps(const std::vector<std::string>& hosts, int per_host) {
  TaskGraph g;
  for (const auto& h : hosts) {
    for (int i = 0; i < per_host; ++i) {
      Task t;
      t.address = "volume.v" + std::to_string(i) + "/root";
      t.id = h + "/" + t.address + "/delete";
      t.host = h;
      t.what = "delete";
      t.kind = StepKind::DeleteVolume;
      g.index[t.id] = g.tasks.size();
      g.tasks.push_back(t);
    }
  }
  return g;
}

}  // namespace

TEST_CASE("a free slot goes to the host with the fewest steps running: a slow host is not starved",
          "[scheduler]") {
  // "fast" comes first in every order by name and frees its slots ten times as often as "slow"
  // (a host over ssh among unix ones). With room for 2 steps, slow must keep one of them
  // whenever it has steps left: handing every freed slot to the first host by name kept slow
  // waiting until fast had nothing left.
  const int per_host = 30;
  const TaskGraph g = independent_steps({"fast", "slow"}, per_host);
  std::mutex mu;
  std::map<std::string, int> running, started;
  std::vector<std::string> unfair;
  const ExecListener listener = [&](const ExecEvent& e) {
    std::lock_guard l(mu);
    if (e.kind == ExecEvent::Kind::Finished) {
      --running[e.host];
      return;
    }
    if (e.kind != ExecEvent::Kind::Started) return;
    for (const auto& other : {std::string("fast"), std::string("slow")}) {
      if (other != e.host && started[other] < per_host && running[other] < running[e.host]) {
        unfair.push_back(e.host + " got a slot with " + std::to_string(running[e.host]) +
                         " running while " + other + " had " + std::to_string(running[other]));
      }
    }
    ++running[e.host];
    ++started[e.host];
  };
  EventSink sink(listener);
  const RunTask run = [](const Task& t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(t.host == "slow" ? 20 : 2));
    return std::string();
  };
  const auto states = run_graph(g, Limits{2, 2, 1}, run, sink);
  for (const auto& s : states) CHECK(s.status == StepStatus::Ok);
  CHECK(started["fast"] == per_host);
  CHECK(started["slow"] == per_host);
  INFO((unfair.empty() ? std::string() : unfair.front()));
  CHECK(unfair.empty());
}

TEST_CASE("among hosts with as many steps running, the one with the most left goes first",
          "[scheduler]") {
  // One slot: the host with more steps left gets it, whatever the names' order.
  TaskGraph g = independent_steps({"a"}, 2);
  const TaskGraph more = independent_steps({"b"}, 5);
  for (const auto& t : more.tasks) {
    g.index[t.id] = g.tasks.size();
    g.tasks.push_back(t);
  }
  std::vector<std::string> order;
  std::mutex mu;
  const ExecListener listener = [&](const ExecEvent& e) {
    std::lock_guard l(mu);
    if (e.kind == ExecEvent::Kind::Started) order.push_back(e.host);
  };
  EventSink sink(listener);
  const RunTask run = [](const Task&) { return std::string(); };
  run_graph(g, Limits{1, 1, 1}, run, sink);
  // b: 5 left against a's 2, until b has 2 left (then a, by name, at a tie).
  CHECK(order == std::vector<std::string>{"b", "b", "b", "a", "b", "a", "b"});
}
