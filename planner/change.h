// A change is plain data: what happens to one object, where, how disruptive it is, the fields
// that change, and what the executor must do. `reason` is for people only: nothing branches on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "planner/action.h"
#include "planner/address.h"
#include "planner/config/model.h"
#include "providers/host_session.h"
#include "providers/observed.h"

namespace kumo {

// An attribute's value as shown to people: nothing, a flag, a number, text, a list of text or
// names mapped to text.
using Value = std::variant<std::monostate, bool, std::int64_t, std::string,
                           std::vector<std::string>, std::map<std::string, std::string>>;

struct AttributeChange {
  std::string name;
  Value before;  // monostate: absent
  Value after;
  bool forces_replacement = false;
  bool sensitive = false;
  bool drift = false;  // live state moved away from what kumo made; this change moves it back
  // A whole document (user_data, network_config) as written to the guest, every value from a
  // sensitive variable masked in it: views show it whole, or as a unified diff of before/after.
  bool document = false;
};

// --- what a change wants (its desired payload), one type per kind

struct VmNic {
  std::string network;  // libvirt network, or "" for a host bridge or interface
  std::string bridge;   // the host's bridge when network is ""
  std::string mac;
  std::string direct;  // the host's interface (macvtap) when network and bridge are ""
  std::string mode;    // its macvtap mode
  std::string model;   // "" = virtio
  int queues = 0;      // 0 = one per vCPU
  bool operator==(const VmNic&) const = default;
};

struct VmPayload {
  std::string name;  // the domain (and guest hostname)
  VmRecord record;   // written into the domain's metadata: what plan compares next time
  std::string spec_hash;
  int cpus = 1;
  std::uint64_t memory = 0;
  bool running = true;
  bool autostart = true;
  std::string root_volume, seed_volume;
  std::vector<std::pair<std::string, std::string>> data_disks;  // disk name, volume; name order
  // Data disks outside the host's pool (disks.<name>.pool): disk name -> pool.
  std::map<std::string, std::string> data_disk_pools{};
  std::vector<VmNic> nics;
  WaitFor wait_for = WaitFor::CloudInit;
  std::chrono::seconds wait_timeout{600};
  // Adopt: the hand-made domain's name now (renamed to `name` when they differ).
  std::string adopt_from;
};

// The NoCloud seed's documents.
struct SeedDocs {
  std::string instance_id, user_data, meta_data, network_config;
};

struct VolumePayload {
  std::string name;                   // in the host's kumo pool
  std::optional<std::uint64_t> size;  // root: unset keeps the image's size
  std::string image;                  // root: the base image's name in the file
  std::string base_volume;            // root: the base image's volume on the host ("" unknown)
  std::optional<SeedDocs> seed;       // seed volumes
  std::string pool{};                 // data disks: "" = the host's pool
};

using Desired = std::variant<std::monostate, VmPayload, NetworkSpec, VolumePayload, PoolSpec>;

// The object as the plan saw it (update, replace, delete): what the executor acts on.
// The state of a network delete's observed object when only kumo's record of the network is
// there: the delete removes the record.
inline constexpr const char* kStaleNetworkRecord = "record only";

struct ObservedRef {
  std::string name;  // libvirt name
  std::string uuid;  // "" for volumes
  std::string host;  // set when it lives on another host than the change's (a moved VM)
  std::string state;
  std::uint64_t size = 0;  // volumes: capacity
  std::string pool{};      // volumes outside the host's pool: theirs
};

// What a VM change asks of the executor besides defining it: explicit, never guessed from
// attribute names.
struct VmSteps {
  bool remove_old = false;  // replace on the same host: the old domain goes first
  bool shutdown = false;    // a restart: shut down gracefully before the definition changes
  bool start = false;       // start it afterwards
  bool wait_ready = false;  // wait until ready as wait_for says
  bool frees_room = false;  // it gets fewer vCPUs or less memory: VMs started on its host wait
  // Moves: live migration (else a cold move: shut down, volumes copied, started there), and
  // whether the plan saw an unverified copy of an interrupted move on the destination (removed
  // first; a copy the plan did not see makes the move stop).
  bool live = false;
  bool remove_dest_copy = false;
};

struct ResourceChange {
  Address address;
  std::string host;
  std::optional<Address> parent;  // volumes: their VM; the old copy of a moved VM: itself
  Action action = Action::NoOp;
  Disruption disruption = Disruption::None;
  bool destroys_data = false;
  std::vector<AttributeChange> attributes;
  std::string reason;  // for display only
  Desired desired;
  std::optional<ObservedRef> observed;
  VmSteps steps;

  ResourceKind kind() const { return address.kind; }
  bool top_level() const { return !parent.has_value(); }
  const VmPayload* vm() const { return std::get_if<VmPayload>(&desired); }
  const NetworkSpec* network() const { return std::get_if<NetworkSpec>(&desired); }
  const VolumePayload* volume() const { return std::get_if<VolumePayload>(&desired); }
  const PoolSpec* pool() const { return std::get_if<PoolSpec>(&desired); }
  // The observed libvirt name ("" when the plan saw none).
  std::string observed_name() const { return observed ? observed->name : ""; }
};

}  // namespace kumo
