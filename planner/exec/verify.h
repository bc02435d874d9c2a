// Saved plans are checked, not trusted, and so is the host: right before a step changes or
// deletes an object, it looks the object up again and acts only if it is still this cluster's,
// with the identity the plan recorded (a domain's and a network's UUID; a volume's reserved name
// and the domain that owns it). A plan edited after it was saved, or a host changed since
// planning, can then never make kumo touch what it did not make: the step is refused with the
// object and host named, and the object is left as it is.
#pragma once

#include <optional>
#include <string>

#include "planner/exec/context.h"

namespace kumo::exec {

// The domain `name` that `c` acts on, as it is now: nullopt when it is gone. Throws HostError
// when one is there that is not this cluster's c.address or not the one the plan recorded.
std::optional<ObservedDomain> verified_domain(ExecContext& ctx, const ResourceChange& c,
                                              const std::string& name);
// The same check, reading only the domain's identity (for steps that need nothing more: deletes,
// starts, shutdowns).
std::optional<DomainIdentity> verified_identity(ExecContext& ctx, const ResourceChange& c,
                                                const std::string& name);
// Deletes the domain `name` that `c` acts on once checked as verified_domain checks it (on the
// same lookup); false when it is gone already.
bool delete_verified_domain(ExecContext& ctx, const ResourceChange& c, const std::string& name);
// The network `name` that `c` acts on: this cluster's by its name and kumo's record of making it,
// with the UUID the plan recorded. nullopt when it is gone.
std::optional<ObservedNetwork> verified_network(ExecContext& ctx, const ResourceChange& c,
                                                const std::string& name);
// The volume `name` that `c` acts on: this cluster's volume of c.address by its reserved name, the
// one the plan recorded, and not in the hands of a domain that is not this cluster's VM.
// nullopt when it is gone.
std::optional<ObservedVolume> verified_volume(ExecContext& ctx, const ResourceChange& c,
                                              const std::string& name);
// Deletes the volume `name` that `c` acts on, checked as verified_volume checks it, without
// reading it first (gone already: nothing to do). A delete costs the lookup and the delete.
// `vm_gone`: the step deleting c's VM ran before this one and saw its domain gone (a VM's
// delete checks that last), so the volume's domain is not asked about again.
void delete_verified_volume(ExecContext& ctx, const ResourceChange& c, const std::string& name,
                            bool vm_gone = false);
// The domain `name` carries this cluster's mark for c's VM (whatever its UUID: it may have just
// been defined anew); throws HostError otherwise, also when it is gone.
void require_our_domain(ExecContext& ctx, const ResourceChange& c, const std::string& name);
// A create must not define over something that appeared since planning.
void require_no_domain(ExecContext& ctx, const ResourceChange& c, const std::string& name);
void require_no_network(ExecContext& ctx, const ResourceChange& c, const std::string& name);

}  // namespace kumo::exec
