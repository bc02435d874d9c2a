// Who holds a lock, told apart for certain. A run of kumo is named by its machine
// (/etc/machine-id), that machine's boot (/proc/sys/kernel/random/boot_id), its pid namespace,
// its pid and the pid's start time (field 22 of /proc/<pid>/stat, clock ticks after boot): a pid
// alone is reused, and a hostname is shared by clones and containers. What is read from the
// system is read here only, under a root directory that tests point at a tree of their own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "planner/lock.h"

namespace kumo {

// This machine, as a lock's holder is judged from it.
struct Machine {
  std::string hostname;    // what people read (the old lock format's only name)
  std::string machine_id;  // "" when unknown: nothing here is ever judged stale but by the old rule
  std::string boot_id;
  std::string pid_ns;  // "pid:[4026531836]": which pids this process can see
  // A process's start time, nullopt when this machine has no such process (in this namespace).
  std::function<std::optional<std::uint64_t>(long pid)> start_time;
};

// This machine as seen under `root` ("/" on the real one).
Machine local_machine(const std::string& root = "/");

// The identity fields of `holder` (machine id, boot id, pid namespace, pid, start time) for
// the process `pid` of `here`.
void identify(LockHolder& holder, const Machine& here, long pid);

// Field 22 (starttime) of a /proc/<pid>/stat line; the command in parentheses may hold anything.
std::optional<std::uint64_t> stat_start_time(const std::string& stat);

// Whether `holder` is certainly gone, as `here` sees it: same machine and pid namespace, and
// another boot, or no such pid, or that pid started at another time. A holder from another
// machine is never stale (kumo force-unlock is for it). A holder of the old format (no machine
// id) is stale when it names this hostname and its pid does not exist.
bool holder_is_stale(const LockHolder& holder, const Machine& here);

}  // namespace kumo
