#include "planner/exec/verify.h"

#include "providers/ownership.h"

namespace kumo::exec {
namespace {

constexpr const char* kRefused =
    "; refused: the plan was edited or the host changed since planning (plan again)";

[[noreturn]] void refuse(ExecContext& ctx, const ResourceChange& c, const std::string& what) {
  throw HostError(c.address.str() + " on " + ctx.label(c.host) + ": " + what + kRefused);
}

// Why an owner mark is not this cluster's `address` ("" when it is).
std::string not_ours(const std::optional<Ownership>& owner, const std::string& cluster,
                     const std::string& address, const char* no_mark) {
  if (!owner) return no_mark;
  if (owner->cluster != cluster) return "it belongs to cluster " + quoted(owner->cluster);
  if (owner->address != address) return "it is this cluster's " + owner->address;
  return "";
}

// The UUID the plan recorded for the object `c` acts on on its host ("" when none).
std::string recorded_uuid(const ResourceChange& c) {
  if (!c.observed || (!c.observed->host.empty() && c.observed->host != c.host)) return "";
  return c.observed->uuid;
}

void check_uuid(ExecContext& ctx, const ResourceChange& c, const std::string& kind,
                const std::string& name, const std::string& uuid) {
  const std::string planned = recorded_uuid(c);
  if (planned.empty()) refuse(ctx, c, "the plan recorded no UUID for the " + kind + " " + name);
  if (planned != uuid) {
    refuse(ctx, c,
           "the " + kind + " " + name + " there is not the one the plan recorded (UUID " + uuid +
               ", the plan recorded " + planned + ")");
  }
}

// The plan's change of the VM that owns volume `c`, when it changes that VM in place on c's host.
const ResourceChange* vm_update_of(const Plan& plan, const ResourceChange& c) {
  for (const auto& other : plan.changes) {
    if (other.host == c.host && other.action == Action::Update &&
        other.address == c.address.owner_vm())
      return &other;
  }
  return nullptr;
}

// The domain `name` there carries this cluster's mark for c's VM.
void check_owner(ExecContext& ctx, const ResourceChange& c, const std::string& name,
                 const std::optional<Ownership>& owner) {
  const std::string why =
      not_ours(owner, ctx.plan().cluster, c.address.owner_vm().str(), "no kumo metadata");
  if (!why.empty())
    refuse(ctx, c, "the domain " + name + " there is not this cluster's (" + why + ")");
}

// The domain `name` there is this cluster's VM of `c`, with the UUID the plan recorded.
void check_domain(ExecContext& ctx, const ResourceChange& c, const std::string& name,
                  const DomainIdentity& id) {
  check_owner(ctx, c, name, id.owner);
  check_uuid(ctx, c, "domain", name, id.uuid);
}

}  // namespace

std::optional<DomainIdentity> verified_identity(ExecContext& ctx, const ResourceChange& c,
                                                const std::string& name) {
  auto id = ctx.session(c.host).domain_identity(name);
  if (id) check_domain(ctx, c, name, *id);
  return id;
}

bool delete_verified_domain(ExecContext& ctx, const ResourceChange& c, const std::string& name) {
  return ctx.session(c.host).delete_domain_if(
      name, [&](const DomainIdentity& id) { check_domain(ctx, c, name, id); });
}

std::optional<ObservedDomain> verified_domain(ExecContext& ctx, const ResourceChange& c,
                                              const std::string& name) {
  auto dom = ctx.session(c.host).domain(name);
  if (dom) check_domain(ctx, c, name, {dom->uuid, dom->owner});
  return dom;
}

std::optional<ObservedNetwork> verified_network(ExecContext& ctx, const ResourceChange& c,
                                                const std::string& name) {
  const std::string& cluster = ctx.plan().cluster;
  const std::string why =
      not_ours(network_owner(name), cluster, c.address.str(), "not a name kumo gives networks");
  if (!why.empty()) refuse(ctx, c, "the network " + name + " is not this cluster's (" + why + ")");
  HostSession& s = ctx.session(c.host);
  auto net = s.network(name);
  if (!net) return std::nullopt;
  const std::string record = network_record_name(cluster, c.address.name, net->uuid);
  if (!s.volume(record)) {
    refuse(ctx, c,
           "the network " + name + " there is not this cluster's (kumo has no record of making " +
               "it: no volume " + record + ")");
  }
  check_uuid(ctx, c, "network", name, net->uuid);
  return net;
}

namespace {

// The checks of a volume that need no read of it: a reserved name of c's volume, the one the
// plan recorded.
void check_volume_name(ExecContext& ctx, const ResourceChange& c, const std::string& name) {
  const std::string why = not_ours(volume_owner(name), ctx.plan().cluster, c.address.str(),
                                   "not a name kumo gives volumes");
  if (!why.empty()) refuse(ctx, c, "the volume " + name + " is not this cluster's (" + why + ")");
  if (c.observed && c.observed->name != name)
    refuse(ctx, c, "the plan recorded volume " + c.observed->name + ", not " + name);
}

// The domain named after the volume's VM must be that VM of this cluster, if it is there.
void check_volume_domain(ExecContext& ctx, const ResourceChange& c, const std::string& name) {
  const std::string instance = c.address.parent;
  const auto dom = ctx.session(c.host).domain_identity(instance);
  if (!dom) return;
  const std::string why =
      not_ours(dom->owner, ctx.plan().cluster, c.address.owner_vm().str(), "no kumo metadata");
  if (!why.empty()) {
    refuse(ctx, c,
           "the volume " + name + " belongs with the domain " + instance +
               " there, which is not this cluster's (" + why + ")");
  }
  if (const ResourceChange* vm = vm_update_of(ctx.plan(), c))
    check_uuid(ctx, *vm, "domain", instance, dom->uuid);
}

// The pool c's volume is in: a data disk's own, as the plan records it (observed, or desired);
// "" for the host's.
std::string pool_of(const ResourceChange& c) {
  const VolumePayload* payload = c.volume();
  return c.observed && !c.observed->pool.empty() ? c.observed->pool : payload ? payload->pool : "";
}

}  // namespace

std::optional<ObservedVolume> verified_volume(ExecContext& ctx, const ResourceChange& c,
                                              const std::string& name) {
  check_volume_name(ctx, c, name);
  auto vol = ctx.session(c.host, pool_of(c)).volume(name);
  if (!vol) return std::nullopt;
  check_volume_domain(ctx, c, name);
  return vol;
}

void delete_verified_volume(ExecContext& ctx, const ResourceChange& c, const std::string& name,
                            bool vm_gone) {
  check_volume_name(ctx, c, name);
  if (!vm_gone) check_volume_domain(ctx, c, name);
  ctx.delete_volume(c.host, name, pool_of(c));
}

void require_our_domain(ExecContext& ctx, const ResourceChange& c, const std::string& name) {
  const auto dom = ctx.session(c.host).domain_identity(name);
  if (!dom) refuse(ctx, c, "the domain " + name + " is gone");
  check_owner(ctx, c, name, dom->owner);
}

void require_no_domain(ExecContext& ctx, const ResourceChange& c, const std::string& name) {
  if (ctx.session(c.host).domain_identity(name))
    refuse(ctx, c, "a domain " + name + " is there, and the plan saw none");
}

void require_no_network(ExecContext& ctx, const ResourceChange& c, const std::string& name) {
  if (ctx.session(c.host).network(name))
    refuse(ctx, c, "a network " + name + " is there, and the plan saw none");
}

}  // namespace kumo::exec
