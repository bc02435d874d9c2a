// kumo apply, as a function: carries out a Plan (and only the plan, never the config) on the
// hosts. In parts (planner/exec/): the plan becomes a task graph (graph.h, pure), the scheduler
// runs it within the limits (scheduler.h), and the steps do the work through HostSessions
// (steps_*.cpp). A failed step skips only the steps that depend on it; each write is read back.
// The engine prints nothing: it reports through ExecEvent callbacks, and returns what happened
// to every step.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "planner/bounded.h"
#include "planner/plan.h"
#include "providers/host_session.h"

namespace kumo {

// A base image in the local cache, verified.
struct FetchedImage {
  std::string path;
  std::string checksum;  // sha256:<hex>
  std::uint64_t size = 0;
  std::string format;  // qcow2 | raw
};
using FetchTick = std::function<void(std::uint64_t done, std::uint64_t total)>;
// Puts a plan's image into the local cache (throws std::runtime_error naming the image).
using ImageFetcher = std::function<FetchedImage(const ImagePlan&, const FetchTick&)>;

// Thrown by ExecOptions::before_change when the whole apply must stop: the step fails, and no
// step starts after it (those already running finish).
class ApplyStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ExecOptions {
  int parallelism = 10;      // steps at once, over all hosts (waiting for guests is free)
  int per_host = 4;          // steps at once on one host
  int uploads_per_host = 2;  // image and seed uploads at once to one host
  std::chrono::milliseconds connect_timeout{10000};
  int connections = kHostParallelism;    // hosts being connected to at once
  std::chrono::milliseconds poll{1000};  // how often readiness is asked
  // How long a guest gets to power off after the ACPI button before it is forced off.
  std::chrono::seconds shutdown_timeout{120};
  // How long a live migration may take before it is aborted (the VM keeps running where it was).
  std::chrono::seconds move_timeout{1800};
  // Asked before every step that changes a host, with the executor's session to that host (the
  // CLI checks there that this run still holds the cluster's lock: ClusterLock::verify). Throws
  // ApplyStopped to stop the apply, anything else to fail that step only. Unset: no check.
  std::function<void(const std::string& host, HostSession& session)> before_change;
};

// A VM is defined able to grow to this many times its vCPUs and memory while it runs.
inline constexpr int kHeadroom = 2;

enum class StepStatus { Pending, Running, Ok, Failed, Skipped };
const char* to_string(StepStatus s);

struct ExecEvent {
  enum class Kind { Started, Progress, Finished };
  Kind kind = Kind::Started;
  std::string step;     // unique id: "hv1/vm.web-0/define"
  std::string address;  // vm.web-0, network.front, image.debian-12, volume.web-0/root
  std::string host;     // "" for local steps (downloads)
  std::string what;     // "upload", "define", "wait for cloud-init", ...
  StepStatus status = StepStatus::Running;  // Finished: Ok | Failed | Skipped
  std::string message;  // the error, why skipped, a detail when done; Progress: what it sees
  std::uint64_t done = 0, total = 0;  // Progress: bytes
  double seconds = 0;                 // Finished: how long it ran
};
using ExecListener = std::function<void(const ExecEvent&)>;  // called from worker threads

struct StepOutcome {
  std::string step, address, host, what;
  StepStatus status = StepStatus::Pending;
  std::string message;
  double seconds = 0;
};

struct VmOutcome {
  std::string address, host;
  bool ready = false;
  std::vector<std::string> addresses;
  double seconds = 0;  // from the start of apply until ready
};

struct ExecResult {
  std::vector<StepOutcome> steps;  // in plan order
  std::vector<VmOutcome> vms;      // VMs started by this apply
  double seconds = 0;
  std::string stopped;  // why the apply stopped before its end (ApplyStopped), "" if it did not
  int count(StepStatus s) const;
  bool success() const { return count(StepStatus::Failed) == 0 && count(StepStatus::Skipped) == 0; }
};

ExecResult execute(const Plan& plan, HostConnector& connector, const ImageFetcher& fetch,
                   const ExecOptions& options, const ExecListener& listener = {});

}  // namespace kumo
