// Pool steps: a storage pool kumo makes (defined, built, started, set to autostart) or starts
// again, and one it made that the file no longer wants (removed with what kumo left in it).
#include "planner/exec/steps.h"

namespace kumo::exec {

std::string apply_pool(ExecContext& ctx, const Task& t) {
  const ResourceChange& k = *t.change;
  const PoolSpec& spec = *k.pool();
  HostSession& s = ctx.session(k.host);
  if (k.action == Action::Create) {
    s.define_pool(spec);
  } else {
    const auto now = s.pool(spec.name);
    if (!now || now->owner_cluster != spec.cluster) {
      throw HostError(ctx.label(k.host) + ": storage pool " + quoted(spec.name) +
                      (now ? " is no longer kumo's" : " is gone") + "; plan again");
    }
    s.start_pool(spec.name, true);
  }
  const auto made = s.pool(spec.name);
  if (!made || !made->active || !made->autostart || made->owner_cluster != spec.cluster) {
    throw HostError(ctx.label(k.host) + ": storage pool " + quoted(spec.name) + " read back " +
                    (made ? "not active, not started with the host or unmarked" : "missing") +
                    " after " + t.what);
  }
  return spec.type == "logical" ? "volume group on " + join(spec.devices) : made->path;
}

std::string delete_pool(ExecContext& ctx, const Task& t) {
  const ResourceChange& k = *t.change;
  const PoolSpec& spec = *k.pool();
  HostSession& s = ctx.session(k.host);
  const auto now = s.pool(spec.name);
  if (!now) return "already gone";
  if (now->owner_cluster != ctx.plan().cluster) {
    throw HostError(ctx.label(k.host) + ": storage pool " + quoted(spec.name) +
                    " is not this cluster's any more; kumo leaves it");
  }
  // kumo's own volumes left in it (base images, records, the lock last), then the pool: a
  // directory pool is removed only when it is empty, so nothing else is lost.
  for (const auto& v : spec.volumes) ctx.delete_volume(k.host, v, spec.name);
  s.delete_pool(spec.name);
  return spec.volumes.empty()
             ? ""
             : std::to_string(spec.volumes.size()) + " volume(s) of kumo's with it";
}

}  // namespace kumo::exec
