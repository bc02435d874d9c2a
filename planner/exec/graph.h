// A plan as a graph of small steps: which step does what to which object, on which host, after
// which others. Building it is a pure function of the plan (no threads, no hosts): the
// scheduler runs it, the steps (steps_*.cpp) carry each one out.
//
//   download image ─▶ upload image to host ─▶ root overlay ─┐
//                     seed ISO upload, data disks ──────────┼─▶ define domain ─▶ start ─▶ ready
//                     create / replace network ─────────────┘                    ▲
//   deletes: domain ─▶ its volumes; VM deletes and shrinks on a host ────────────┘ (room first)
//            every VM delete on a host ─▶ that host's network deletes
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "planner/plan.h"

namespace kumo::exec {

enum class StepKind {
  FetchImage,    // into the local cache
  UploadImage,   // to one host
  CheckImage,    // a host that had it when planned still has it
  ApplyNetwork,  // create, replace or update one network
  DeleteNetwork,
  DeleteVolume,
  DeleteVm,     // the domain and its serial log
  RemoveOldVm,  // a VM replaced on the same host: the old domain goes first
  ShutdownVm,   // graceful, before a restart
  CreateRoot,   // a qcow2 overlay on the base image
  UploadSeed,   // the cloud-init NoCloud ISO
  CreateData,
  GrowDisk,
  RefuseDisk,  // a disk change of a running VM kumo does not do in place: fails with the fix
  DefineVm,    // a new or replaced VM's definition
  UpdateVm,    // an existing VM: live changes, then its definition
  StartVm,
  WaitVm,  // until ready as wait_for says
  // A VM moving to another host (steps_move.cpp):
  MoveShutdown,      // on the source, before a cold move
  MovePrepare,       // the destination: leftovers of an interrupted move removed, disks made
  MoveMigrate,       // live migration, memory and disks
  MoveCopy,          // a cold move's volumes, streamed host to host
  MoveDefine,        // a cold move's definition on the destination (marked unverified)
  MoveCommit,        // the destination's copy marked as the VM
  MoveRemoveSource,  // the source's domain and volumes, once the copy is the VM
  AdoptVm,           // a hand-made domain marked as this cluster's (renamed first if asked)
  ApplyPool,         // a storage pool kumo makes: defined, built, started, autostarted
  DeletePool,        // one kumo made, once nothing on its host uses it
};
const char* to_string(StepKind k);

// How a step counts against the limits: Upload steps also against uploads per host; Free steps
// (waiting for guests) against none.
enum class Slot { Normal, Upload, Free };

struct Task {
  std::string id;       // "hv1/vm.web-0/define": unique
  std::string address;  // vm.web-0, network.front, image.deb, volume.web-0/root
  std::string host;     // "" for local steps (downloads)
  std::string what;     // what people read: "upload", "define", "wait for cloud-init", ...
  StepKind kind = StepKind::DefineVm;
  Slot slot = Slot::Normal;
  std::vector<std::size_t> deps;
  const ResourceChange* change = nullptr;  // the change the step carries out
  const ImagePlan* image = nullptr;        // image steps
  bool recreate = false;                   // volumes: delete what is there first
  // A deleted VM's volumes: its delete step (a dependency) found the domain gone at its end.
  bool after_vm_delete = false;
};

struct TaskGraph {
  std::vector<Task> tasks;  // every dep points to an earlier task
  std::map<std::string, std::size_t> index;
  std::optional<std::size_t> find(const std::string& id) const;
};

// `plan` must outlive the graph (tasks point into it): a temporary plan does not compile.
TaskGraph build_graph(const Plan& plan);
TaskGraph build_graph(const Plan&& plan) = delete;

}  // namespace kumo::exec
