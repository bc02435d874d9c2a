// Volume steps: a VM's root overlay, cloud-init seed and data disks; grown in place, never shrunk.
#include <algorithm>
#include <cstring>

#include "planner/exec/steps.h"
#include "planner/exec/verify.h"
#include "providers/seed/seed_iso.h"

namespace kumo::exec {

std::string delete_volume(ExecContext& ctx, const Task& t) {
  delete_verified_volume(ctx, *t.change, t.change->observed_name(), t.after_vm_delete);
  return "";
}

std::string create_root(ExecContext& ctx, const Task& t) {
  const ResourceChange& k = *t.change;
  const VolumePayload& p = *k.volume();
  const auto base = ctx.base(p.image, k.host);
  if (!base) {
    throw HostError(ctx.label(k.host) + ": " + k.address.str() + ": the plan has no base image " +
                    quoted(p.image) + " for this host; plan again");
  }
  const std::uint64_t size = std::max(base->virtual_size, p.size.value_or(0));
  HostSession& s = ctx.session(k.host);
  const bool recreate = t.recreate && verified_volume(ctx, k, p.name);
  {
    std::lock_guard<std::mutex> lock(ctx.pool_mutex(k.host));
    if (recreate) s.delete_volume(p.name);
    s.create_volume(VolumeSpec{p.name, size, "qcow2", base->path, base->format});
  }
  const auto v = s.volume(p.name);
  if (!v)
    throw HostError(ctx.label(k.host) + ": volume " + p.name + " is missing after creating it");
  if (v->capacity < size || (!v->backing_path.empty() && v->backing_path != base->path)) {
    throw HostError(ctx.label(k.host) + ": volume " + p.name + " read back differs: " +
                    std::to_string(v->capacity) + " bytes backed by " + quoted(v->backing_path) +
                    ", expected " + std::to_string(size) + " bytes backed by " + base->path);
  }
  return "overlay on " + base->volume.substr(0, 24) + "…";
}

std::string upload_seed(ExecContext& ctx, const Task& t) {
  const ResourceChange& k = *t.change;
  const VolumePayload& p = *k.volume();
  const SeedDocs docs = p.seed.value_or(SeedDocs{});
  const std::string iso =
      seed::build_nocloud_seed(docs.user_data, docs.meta_data, docs.network_config);
  HostSession& s = ctx.session(k.host);
  if (t.recreate && verified_volume(ctx, k, p.name)) ctx.delete_volume(k.host, p.name);
  std::size_t pos = 0;
  s.upload_volume(p.name, iso.size(),
                  [&](char* buf, std::size_t max) {
                    const std::size_t n = std::min(max, iso.size() - pos);
                    std::memcpy(buf, iso.data() + pos, n);
                    pos += n;
                    return n;
                  },
                  {});
  // ISO 9660's volume descriptor ("CD001" at byte 32769) says the seed is really there.
  if (s.read_volume(p.name, 32769, 5) != "CD001") {
    throw HostError(ctx.label(k.host) + ": seed volume " + p.name +
                    " does not hold the cloud-init ISO after the upload");
  }
  return std::to_string(iso.size() / 1024) + " KiB";
}

std::string create_data(ExecContext& ctx, const Task& t) {
  const ResourceChange& k = *t.change;
  const VolumePayload& p = *k.volume();
  const std::uint64_t size = p.size.value_or(0);
  HostSession& s = ctx.session(k.host, p.pool);
  {
    std::lock_guard<std::mutex> lock(ctx.pool_mutex(k.host, p.pool));
    s.create_volume(VolumeSpec{p.name, size, ctx.disk_format(k.host, p.pool), "", ""});
  }
  const auto v = s.volume(p.name);
  if (!v || v->capacity != size) {
    throw HostError(ctx.label(k.host) + ": volume " + p.name +
                    (v ? " read back with the wrong size" : " is missing after creating it"));
  }
  return "";
}

// Grows a volume in place: through the running domain (the guest sees the new size at once),
// or the volume itself when nothing runs on it.
std::string grow_disk(ExecContext& ctx, const Task& t) {
  const ResourceChange& k = *t.change;
  const VolumePayload& p = *k.volume();
  const std::string& domain = k.address.parent;  // the VM instance: its domain's name
  const std::uint64_t size = p.size.value_or(0);
  HostSession& s = ctx.session(k.host);
  const auto vol = verified_volume(ctx, k, p.name);
  if (!vol) throw HostError(ctx.label(k.host) + ": volume " + p.name + " is gone; plan again");
  if (vol->capacity > size) {
    throw HostError(ctx.label(k.host) + ": volume " + p.name + " is larger than planned (" +
                    std::to_string(vol->capacity) + " bytes); kumo never shrinks; plan again");
  }
  std::string how = "volume resized";
  if (vol->capacity < size) {
    const auto dom = s.domain(domain);
    std::string target;
    if (dom && dom->active) {
      // The target it runs under: a hot-plugged disk's may differ from its definition's.
      for (const auto& disk : s.live_disks(domain)) {
        if (disk.path == vol->path) target = disk.target;
      }
    }
    if (!target.empty()) {
      s.resize_domain_disk(domain, target, size);
      how = "live, " + target + " in the running guest";
    } else {
      std::lock_guard<std::mutex> lock(ctx.pool_mutex(k.host, p.pool));
      ctx.session(k.host, p.pool).resize_volume(p.name, size);
    }
  }
  const auto after = ctx.session(k.host, p.pool).volume(p.name);
  if (!after || after->capacity != size) {
    throw HostError(ctx.label(k.host) + ": volume " + p.name + " read back with " +
                    (after ? std::to_string(after->capacity) : std::string("nothing")) +
                    " bytes after growing it to " + std::to_string(size));
  }
  return how;
}

std::string refuse_disk(ExecContext& ctx, const Task& t) {
  const ResourceChange& k = *t.change;
  throw HostError(ctx.label(k.host) + ": " + k.address.str() + ": " + to_string(k.action) +
                  " of this disk of an existing VM is not something kumo does in place; "
                  "use kumo apply --replace " +
                  (k.parent ? k.parent->str() : k.address.owner_vm().str()));
}

}  // namespace kumo::exec
