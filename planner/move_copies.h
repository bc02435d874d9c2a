// Which copy of a VM is the VM when an interrupted move left one on two hosts. A move marks its
// copy on the destination `moving_from: <source>` until the copy is verified; committing marks
// the source `moved_to: <destination>`, then clears the copy's mark; only then is the source
// removed. So at any point exactly one copy counts:
//   - a copy marked moving_from S, while S holds a copy not marked moved_to here: unverified;
//   - a copy marked moved_to D, while D holds a copy: spare (the VM and its data live on in D's);
//   - any other copy: the VM.
#pragma once

#include <functional>
#include <string>

#include "providers/observed.h"

namespace kumo {

enum class CopyRole { Vm, Unverified, Spare };

// `copy_on(host)`: the VM's copy on that host (this cluster's, same address), or null.
inline CopyRole copy_role(const std::string& host, const ObservedDomain& d,
                          const std::function<const ObservedDomain*(const std::string&)>& copy_on) {
  if (!d.owner) return CopyRole::Vm;
  const std::string& from = d.owner->moving_from;
  if (!from.empty() && from != host) {
    const ObservedDomain* src = copy_on(from);
    if (src && (!src->owner || src->owner->moved_to != host)) return CopyRole::Unverified;
  }
  const std::string& to = d.owner->moved_to;
  if (!to.empty() && to != host && copy_on(to)) return CopyRole::Spare;
  return CopyRole::Vm;
}

}  // namespace kumo
