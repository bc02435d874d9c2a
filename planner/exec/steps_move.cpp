// Move steps: a VM goes from its source host (change.observed->host) to the change's host with
// its data. The source stays the VM until the copy is verified (the migration finished, or the
// cold copy was seen ready): the copy is marked `moving-from` until then. Committing marks the
// source `moved-to`, then clears the copy's mark; the source is removed last. A rerun after a
// kill at any point finds one copy that is the VM (planner/move_copies.h): the source with
// leftovers or an unverified copy on the destination (made again), or the copy with a spare
// source or its leftover volumes (removed).
#include <cstdio>
#include <thread>

#include "planner/exec/steps.h"
#include "planner/exec/verify.h"
#include "providers/digest.h"
#include "providers/ownership.h"

namespace kumo::exec {
namespace {

const std::string& source_host(const ResourceChange& c) {
  static const std::string none;
  return c.observed ? c.observed->host : none;
}

std::string where(ExecContext& ctx, const ResourceChange& c) {
  return c.address.str() + " moving from " + ctx.label(source_host(c));
}

// The source domain, still the one the plan recorded (UUID) and still this cluster's VM;
// nullopt when it is gone.
std::optional<ObservedDomain> source_domain(ExecContext& ctx, const ResourceChange& c) {
  const std::string& name = c.observed->name;
  auto dom = ctx.session(source_host(c)).domain(name);
  if (!dom) return std::nullopt;
  if (!dom->owner || dom->owner->cluster != ctx.plan().cluster ||
      dom->owner->address != c.address.str() || dom->uuid != c.observed->uuid) {
    throw HostError(where(ctx, c) + ": the domain " + name + " there is not the one the plan " +
                    "recorded (UUID " + dom->uuid + "); refused: plan again");
  }
  return dom;
}

ObservedDomain need_source(ExecContext& ctx, const ResourceChange& c) {
  auto dom = source_domain(ctx, c);
  if (!dom) throw HostError(where(ctx, c) + ": its domain is gone from there; plan again");
  return *dom;
}

// The volumes a move carries: root and data disks that exist on the source.
std::vector<const ResourceChange*> carried(ExecContext& ctx, const ResourceChange& c) {
  std::vector<const ResourceChange*> out;
  for (const auto& k : ctx.plan().changes) {
    if (k.parent && *k.parent == c.address && k.host == c.host && k.action == Action::Move &&
        k.kind() == ResourceKind::Volume)
      out.push_back(&k);
  }
  return out;
}

// Every volume name this VM has on a host: carried, made there (seed, new data disks), the
// serial log and a UEFI VM's NVRAM (a migration undefines the source without it).
std::vector<std::string> vm_volumes(ExecContext& ctx, const ResourceChange& c) {
  std::vector<std::string> out;
  for (const auto& k : ctx.plan().changes) {
    if (k.parent && *k.parent == c.address && k.kind() == ResourceKind::Volume && k.volume())
      out.push_back(k.volume()->name);
  }
  out.push_back(serial_log_name(ctx.plan().cluster, c.vm()->name));
  if (c.vm()->record.firmware == "uefi")
    out.push_back(nvram_volume_name(ctx.plan().cluster, c.vm()->name));
  return out;
}

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// The unix socket (or tcp address) a live move reaches the destination at.
std::pair<std::string, std::string> migration_uris(ExecContext& ctx, const ResourceChange& c) {
  const HostReport* h = ctx.plan().find_host(c.host);
  if (!h) return {};
  if (!h->migration_socket_dir.empty()) {
    // Short and unique: a unix socket's path holds at most 107 bytes.
    const std::string tag = sha256_hex(ctx.plan().cluster + "/" + c.vm()->name + "/" +
                                       std::to_string(Clock::now().time_since_epoch().count()))
                                .substr(0, 8);
    const std::string base = "unix://" + h->migration_socket_dir + "/kumo-" + tag;
    return {base + ".mem", base + ".nbd"};
  }
  if (!h->migration_address.empty())
    return {"tcp://" + h->migration_address, "tcp://" + h->migration_address};
  return {};
}

}  // namespace

std::string move_shutdown(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const ObservedDomain dom = need_source(ctx, c);
  if (!dom.active) return "not running";
  const auto timeout = ctx.options().shutdown_timeout;
  const bool graceful = ctx.session(t.host).shutdown_domain(dom.name, timeout);
  return graceful ? "" : "forced off after " + std::to_string(timeout.count()) + " s";
}

// The destination made ready for the copy: what an interrupted move left there goes (a marked
// copy the plan saw, and this VM's volumes); a live move gets its disks: the root overlay on the
// base image there and empty data disks of the source's sizes, for the migration to fill.
std::string move_prepare(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  const ObservedDomain src = need_source(ctx, c);
  std::vector<std::string> done;
  if (c.steps.live && src.state == "paused" &&
      ctx.session(source_host(c)).resume_after_migration(vm.name))
    done.push_back("resumed on " + source_host(c) + " (paused by an interrupted migration)");
  HostSession& s = ctx.session(c.host);
  if (const auto there = s.domain(vm.name)) {
    const bool ours_marked =
        there->owner && there->owner->cluster == ctx.plan().cluster &&
        there->owner->address == c.address.str() &&
        (there->owner->moving_from == source_host(c) || !there->owner->moved_to.empty());
    if (!ours_marked || !c.steps.remove_dest_copy) {
      throw HostError(ctx.label(c.host) + ": " + c.address.str() + ": a domain " + vm.name +
                      " is there that the plan did not see as an interrupted move's copy; "
                      "refused: plan again");
    }
    s.delete_domain(vm.name);
    done.push_back("unfinished copy removed");
  }
  int leftovers = 0;
  for (const auto& name : vm_volumes(ctx, c)) {
    if (!s.volume(name)) continue;
    ctx.delete_volume(c.host, name);
    ++leftovers;
  }
  if (leftovers > 0) done.push_back(std::to_string(leftovers) + " leftover volumes removed");
  if (c.steps.live) {
    for (const ResourceChange* k : carried(ctx, c)) {
      const VolumePayload& p = *k->volume();
      const std::uint64_t size = k->observed->size;
      VolumeSpec spec{p.name, size, "qcow2", "", ""};
      if (k->address.role() == VolumeRole::Root) {
        const auto base = ctx.base(p.image, c.host);
        if (!base) {
          throw HostError(ctx.label(c.host) + ": " + k->address.str() +
                          ": the plan has no base image " + quoted(p.image) +
                          " for this host; plan again");
        }
        spec.backing_path = base->path;
        spec.backing_format = base->format;
      }
      std::lock_guard<std::mutex> lock(ctx.pool_mutex(c.host));
      s.create_volume(spec);
    }
    done.push_back("disks made for the migration");
  }
  return join(done);
}

// A live migration: memory and disks copied while the guest runs; at the end it continues on the
// destination, defined there in kumo's form with the `moving-from` mark.
std::string move_migrate(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  const std::string& from = source_host(c);
  const ObservedDomain src = need_source(ctx, c);
  if (!src.active)
    throw HostError(where(ctx, c) + ": it no longer runs, so it cannot move live; plan again");
  HostSession& s = ctx.session(from);
  HostSession& d = ctx.session(c.host);
  MigrationRequest req;
  req.persistent = vm_domain_spec(ctx, c, d, src.owner && src.owner->ready);
  req.persistent.max_vcpus = src.max_vcpus;
  req.persistent.max_memory = src.max_memory;
  req.persistent.owner.moving_from = from;
  std::tie(req.uri, req.disks_uri) = migration_uris(ctx, c);
  for (const auto& disk : s.live_disks(vm.name)) {
    if (!disk.readonly) req.copy_disks.push_back(disk.target);
  }
  req.timeout = ctx.options().move_timeout;
  req.tick = [&](const Transfer& tr) { ctx.sink().progress(t, tr.done, tr.total); };
  const auto t0 = Clock::now();
  s.migrate_domain(vm.name, d, req);
  const auto there = d.domain(vm.name);
  if (!there || !there->active || !there->owner || there->owner->moving_from != from)
    throw HostError(ctx.label(c.host) + ": " + c.address.str() +
                    " does not run there, marked as moved, after the migration");
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f s", since(t0));
  return "running on " + c.host + " (migrated in " + secs + ", disks " + join(req.copy_disks) + ")";
}

// A cold move's disks: each volume's file streamed from the source through kumo into a volume of
// the same name on the destination (an overlay keeps naming its base image by path, so both
// hosts must keep images at the same path), then grown to the planned size.
std::string move_copy(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const std::string& from = source_host(c);
  const ObservedDomain src = need_source(ctx, c);
  if (src.active)
    throw HostError(where(ctx, c) + ": it still runs; a cold move copies only a stopped VM");
  HostSession& s = ctx.session(from);
  HostSession& d = ctx.session(c.host);
  std::uint64_t bytes = 0;
  const auto t0 = Clock::now();
  const auto parts = carried(ctx, c);
  std::uint64_t total = 0;
  for (const ResourceChange* k : parts) total += k->observed->size;
  for (const ResourceChange* k : parts) {
    const VolumePayload& p = *k->volume();
    if (k->address.role() == VolumeRole::Root) {
      // The overlay's file names its base image by path: it must be the same path there.
      const auto root = s.volume(p.name);
      const auto base = ctx.base(p.image, c.host);
      const std::string src_base = root ? root->backing_path : "";
      if (!base || (!src_base.empty() && src_base != base->path)) {
        throw HostError(where(ctx, c) + ": a cold move copies the root overlay, which names its " +
                        "base image by path: " + quoted(src_base) + " on " + from + ", but " +
                        c.host + " keeps it at " + quoted(base ? base->path : "?") +
                        "; give both hosts' pools the same directory, or move it live");
      }
    }
    auto reader = s.open_volume(p.name);
    const std::uint64_t size = reader->size();
    const std::uint64_t before = bytes;
    d.upload_volume(
        p.name, size, [&](char* buf, std::size_t max) { return reader->read(buf, max); },
        [&](const Transfer& tr) {
          ctx.sink().progress(t, before + tr.done, std::max(total, before + size));
        });
    bytes += size;
    // libvirt reads a copied qcow2 file's virtual size once it refreshes the pool.
    std::optional<ObservedVolume> v;
    for (int i = 0; i < 50; ++i) {
      v = d.volume(p.name);
      if (v && v->capacity >= k->observed->size) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!v || v->capacity < k->observed->size) {
      throw HostError(ctx.label(c.host) + ": volume " + p.name + " reads " +
                      (v ? std::to_string(v->capacity) + " bytes" : std::string("as missing")) +
                      " after copying it; expected " + std::to_string(k->observed->size));
    }
    if (p.size && *p.size > v->capacity) {
      std::lock_guard<std::mutex> lock(ctx.pool_mutex(c.host));
      d.resize_volume(p.name, *p.size);
    }
  }
  char rate[64];
  const double secs = since(t0);
  std::snprintf(rate, sizeof rate, " in %.1f s (%.0f MiB/s)", secs,
                secs > 0 ? static_cast<double>(bytes) / (1 << 20) / secs : 0.0);
  return mib(bytes) + rate;
}

// A cold move's definition on the destination: kumo's form, the source's UUID, marked.
std::string move_define(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  HostSession& d = ctx.session(c.host);
  if (d.domain(vm.name)) {
    throw HostError(ctx.label(c.host) + ": " + c.address.str() + ": a domain " + vm.name +
                    " appeared there since planning; refused: plan again");
  }
  DomainSpec spec = vm_domain_spec(ctx, c, d, false);
  spec.uuid = c.observed ? c.observed->uuid : "";
  spec.owner.moving_from = source_host(c);
  d.define_domain(spec);
  const auto there = d.domain(vm.name);
  if (!there || !there->owner || there->owner->moving_from != source_host(c))
    throw HostError(ctx.label(c.host) + ": domain " + vm.name + " is missing after defining it");
  return "";
}

// The copy becomes the VM: the source (if still there) is marked as moved to the destination,
// then the copy's own mark goes; autostart as the file says (a migration does not carry it).
std::string move_commit(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  HostSession& d = ctx.session(c.host);
  require_our_domain(ctx, c, vm.name);
  d.set_domain_autostart(vm.name, vm.autostart);
  if (const auto src = source_domain(ctx, c)) {
    Ownership mark = *src->owner;
    mark.moved_to = c.host;
    ctx.session(source_host(c)).set_domain_owner(vm.name, mark);
  }
  const auto there = d.domain(vm.name);
  Ownership owner = *there->owner;
  owner.moving_from.clear();
  owner.spec_hash = vm.spec_hash;
  owner.spec = vm.record;
  owner.moved_to.clear();
  d.set_domain_owner(vm.name, owner);
  const auto after = d.domain(vm.name);
  if (!after || !after->owner || !after->owner->moving_from.empty())
    throw HostError(ctx.label(c.host) + ": domain " + vm.name + " still carries the move's mark");
  return "";
}

// The source goes, domain and volumes, once the destination's copy is the VM.
std::string move_remove_source(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  const auto there = ctx.session(c.host).domain(vm.name);
  if (!there || !there->owner || there->owner->cluster != ctx.plan().cluster ||
      there->owner->address != c.address.str() || !there->owner->moving_from.empty()) {
    throw HostError(where(ctx, c) + ": the copy on " + c.host +
                    " is not verified as the VM; the source is kept");
  }
  HostSession& s = ctx.session(t.host);
  std::vector<std::string> done;
  if (source_domain(ctx, c)) {
    s.delete_domain(vm.name);
    done.push_back("domain removed");
  }
  int volumes = 0;
  for (const auto& name : vm_volumes(ctx, c)) {
    // Files libvirt lists only after a refresh (the serial log, the NVRAM) are looked up by
    // delete_volume itself.
    if (!s.volume(name) && name != serial_log_name(ctx.plan().cluster, vm.name) &&
        name != nvram_volume_name(ctx.plan().cluster, vm.name))
      continue;
    ctx.delete_volume(t.host, name);
    ++volumes;
  }
  done.push_back(std::to_string(volumes) + " volumes removed");
  return join(done);
}

}  // namespace kumo::exec
