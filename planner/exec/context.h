// What the steps of one apply share: the plan, one session per host (opened on first use), the
// images fetched and where each host keeps them, the VMs seen ready, and the event sink.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <vector>

#include "planner/exec/graph.h"
#include "planner/executor.h"

namespace kumo::exec {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0);
std::string quoted(const std::string& s);
std::string join(const std::vector<std::string>& items);

// Serialises events to the listener (called from worker threads).
class EventSink {
 public:
  explicit EventSink(const ExecListener& listener) : listener_(listener) {}
  void emit(const ExecEvent& e);
  void task_event(const Task& t, ExecEvent::Kind kind, StepStatus status = StepStatus::Running,
                  const std::string& message = "", double seconds = 0);
  void progress(const Task& t, std::uint64_t done, std::uint64_t total);
  // What a long step sees meanwhile ("cloud-init status \"running\""): a Progress event.
  void status(const Task& t, const std::string& message);

 private:
  const ExecListener& listener_;
  std::mutex mu_;
};

// What a base image looks like on one host, once it is there.
struct BaseImage {
  std::string volume, path, format;
  std::uint64_t virtual_size = 0;
};

class ExecContext {
 public:
  ExecContext(const Plan& plan, HostConnector& connector, const ImageFetcher& fetch,
              const ExecOptions& options, EventSink& sink);
  // Closes every host's session at once (each close is a round trip; over ssh, an ssh session's
  // end too).
  ~ExecContext();
  ExecContext(const ExecContext&) = delete;
  ExecContext& operator=(const ExecContext&) = delete;

  const Plan& plan() const { return plan_; }
  const ExecOptions& options() const { return options_; }
  EventSink& sink() { return sink_; }
  Clock::time_point started() const { return t0_; }

  // The host's session, connected on first use; throws HostError when it cannot connect.
  // `pool`: a session whose volume calls go to that pool instead of the host's ("" = the host's;
  // data disks in their own pool), on a connection of its own.
  HostSession& session(const std::string& host, const std::string& pool = "");
  // Volume creation on one host's pool, one at a time (libvirt refuses a pool refresh while a
  // volume is being created: "pool has asynchronous jobs running").
  std::mutex& pool_mutex(const std::string& host, const std::string& pool = "");
  void delete_volume(const std::string& host, const std::string& name,
                     const std::string& pool = "");
  // The format of a data disk in `pool` ("" = the host's): raw in a logical pool (a logical
  // volume holds the guest's bytes; libvirt makes no qcow2 there), else qcow2. Read from the
  // host once per pool.
  std::string disk_format(const std::string& host, const std::string& pool);
  // "host hv1 (qemu+ssh://root@hv1/system)"
  std::string label(const std::string& host) const;
  std::string virt_type(const std::string& host) const;

  void set_fetched(const std::string& image, const FetchedImage& f);
  FetchedImage fetched(const std::string& image);
  void record_base(const std::string& image, const std::string& host, HostSession& s,
                   const std::string& volume, const ObservedVolume& v);
  std::optional<BaseImage> base(const std::string& image, const std::string& host);
  void vm_ready(const VmOutcome& out);
  std::vector<VmOutcome> ready_vms();
  const ImageFetcher& fetcher() const { return fetch_; }

 private:
  struct HostState {
    std::mutex mu;
    std::unique_ptr<HostSession> session;
    std::string error;
    bool tried = false;
    std::mutex pool;
  };
  HostState& host_state(const std::string& host);

  const Plan& plan_;
  HostConnector& connector_;
  const ImageFetcher& fetch_;
  const ExecOptions& options_;
  EventSink& sink_;
  Clock::time_point t0_;
  std::counting_semaphore<> connecting_;  // sessions being opened at once: options_.connections
  std::mutex mu_;                         // guards everything below
  std::map<std::string, std::unique_ptr<HostState>> hosts_;
  std::map<std::string, FetchedImage> fetched_;
  std::map<std::string, BaseImage> bases_;      // image@host
  std::map<std::string, std::string> formats_;  // host/pool -> disk format
  std::vector<VmOutcome> vms_;
};

// Carries out one step (throws on failure; returns a detail for the finished line).
std::string run_step(ExecContext& ctx, const Task& task);

}  // namespace kumo::exec
