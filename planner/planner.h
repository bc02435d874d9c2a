// kumo plan, as a function: desired state + provider -> plan (or the errors that prevent one).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "planner/config/diagnostics.h"
#include "planner/desired.h"
#include "planner/observe.h"
#include "planner/plan.h"
#include "providers/provider.h"

namespace kumo {

// What plan needs to know about a base image before any VM uses it: its checksum (which names
// its volume on every host), whether it is cached locally and how big it is. The CLI resolves
// with providers/images (reading checksum_url, the cache, a HEAD request); tests fake it.
struct ResolvedImage {
  std::optional<Checksum> checksum;  // nullopt: only the download tells (checksum: none)
  bool cached = false;
  std::uint64_t size = 0;  // 0: unknown
  std::string error;       // set: no plan (names the image and what failed)
};
using ImageResolver = std::function<ResolvedImage(const DesiredImage&)>;

struct PlanOptions {
  std::chrono::milliseconds timeout{10000};
  int parallelism = kHostParallelism;  // hosts observed at once
  bool skip_unreachable = false;
  std::vector<std::string> targets;  // addresses; empty = everything
  std::vector<std::string> replace;  // VM addresses to recreate although unchanged (--replace)
  // Unset: checksums as written in the file, nothing cached.
  ImageResolver resolve_image;
  // kumo destroy: plan the removal of everything this cluster owns (or of the targets).
  bool destroy = false;
};

struct PlanResult {
  std::optional<Plan> plan;  // unset when errors say why there is none
  Diagnostics errors;
  std::vector<ObservedHost> observed;
  DesiredCluster desired;
};

// `desired` comes from expand(): the plan places and diffs it, and keeps it in
// PlanResult::desired (pass it with std::move when the caller needs it no more: no copy).
PlanResult make_plan(DesiredCluster desired, Provider& provider, const PlanOptions& options,
                     const HostObserved& on_host = {});

// Addresses as --target and --replace take them, with every VM group's address (vm.web) replaced
// by its instances' (vm.web-0, vm.web-1, ...): those of the file, and those of `observed` that this
// cluster made for that group (instances a lowered count leaves behind). Others are kept as they
// are; the result has no duplicates. docs/addresses.md.
std::vector<std::string> expand_vm_groups(const std::vector<std::string>& addresses,
                                          const DesiredCluster& desired,
                                          const std::vector<ObservedHost>& observed);

// What kumo runs VMs with on this host: kvm or qemu (software emulation).
std::string resolve_virt_type(VirtType wanted, const HostFacts& facts);

}  // namespace kumo
