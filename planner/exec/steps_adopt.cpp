// Adopting a domain made by hand: the one the plan saw (its UUID), still nobody's, renamed when
// the file names it otherwise (libvirt renames only shut-off domains), then marked as this
// cluster's VM with the record of the file's entry. Nothing in the guest changes.
#include "planner/exec/steps.h"
#include "providers/ownership.h"

namespace kumo::exec {

std::string adopt_vm(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  HostSession& s = ctx.session(c.host);
  const std::string where = ctx.label(c.host) + ": domain " + vm.adopt_from;
  const auto dom = s.domain(vm.adopt_from);
  if (!dom) throw HostError(where + " is gone since the plan was made; plan again");
  if (!c.observed || dom->uuid != c.observed->uuid)
    throw HostError(where + " is not the domain the plan saw (another UUID); plan again");
  if (dom->owner && !dom->owner->cluster.empty())
    throw HostError(where + " was taken by cluster " + dom->owner->cluster +
                    " meanwhile; plan again");
  std::vector<std::string> done;
  if (vm.adopt_from != vm.name) {
    if (dom->active)
      throw HostError(where + " runs: libvirt renames only a shut-off domain; plan again");
    if (s.domain(vm.name))
      throw HostError(ctx.label(c.host) + ": a domain named " + vm.name +
                      " appeared since the plan was made; plan again");
    s.rename_domain(vm.adopt_from, vm.name);
    done.push_back("renamed from " + vm.adopt_from);
  }
  // Seen ready as it is: an adopted VM is not waited for.
  s.set_domain_owner(
      vm.name, Ownership{ctx.plan().cluster, c.address.str(), vm.spec_hash, vm.record, true, ""});
  const auto now = s.domain(vm.name);
  if (!now || !now->owner || now->owner->cluster != ctx.plan().cluster ||
      now->owner->address != c.address.str() || now->uuid != dom->uuid)
    throw HostError(ctx.label(c.host) + ": domain " + vm.name +
                    " does not carry kumo's mark after adopting it");
  done.push_back("marked as " + c.address.str());
  return join(done);
}

}  // namespace kumo::exec
