// Runs a task graph: a step starts once everything it depends on succeeded, within the limits
// (steps at once overall, per host, uploads per host; waiting for guests is free). A failed step
// skips only the steps that depend on it; everything else runs to the end, unless a step throws
// ApplyStopped: then no step starts after it. Knows nothing of what the steps do.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "planner/exec/context.h"
#include "planner/exec/graph.h"

namespace kumo::exec {

struct Limits {
  int parallelism = 10;
  int per_host = 4;
  int uploads_per_host = 2;
};

struct TaskState {
  StepStatus status = StepStatus::Pending;
  std::string message;
  double seconds = 0;
};

// Runs one task: returns a detail for its finished event, throws (std::exception) on failure.
using RunTask = std::function<std::string(const Task&)>;

// One state per task, in graph order. Started and Finished events go to `sink`. `stopped` (if
// given) gets the first ApplyStopped's message, "" when the run went to its end.
std::vector<TaskState> run_graph(const TaskGraph& graph, const Limits& limits, const RunTask& run,
                                 EventSink& sink, std::string* stopped = nullptr);

}  // namespace kumo::exec
