// VM steps: defined from the plan (with room to grow live), changed in place, started, deleted.
// Every write is read back and compared with what was asked for.
#include <algorithm>
#include <set>

#include "planner/exec/steps.h"
#include "planner/exec/verify.h"
#include "providers/ownership.h"

namespace kumo::exec {
namespace {}  // namespace

// A new definition gets room to grow live: twice its vCPUs and memory (kHeadroom).
DomainSpec vm_domain_spec(ExecContext& ctx, const ResourceChange& c, HostSession& s, bool ready) {
  const VmPayload& vm = *c.vm();
  DomainSpec spec;
  spec.name = vm.name;
  spec.virt_type = ctx.virt_type(c.host);
  spec.vcpus = vm.cpus;
  spec.memory = vm.memory;
  spec.max_vcpus = spec.vcpus * kHeadroom;
  spec.max_memory = spec.memory * kHeadroom;
  spec.autostart = vm.autostart;
  // Root first, then the data disks in name order (the first is /dev/vdb, as people expect),
  // the cloud-init seed last.
  spec.disks.push_back({vm.root_volume, "qcow2", "vda", false, ""});
  char letter = 'b';
  for (const auto& [disk, volume] : vm.data_disks) {
    const auto in = vm.data_disk_pools.find(disk);
    const std::string pool = in == vm.data_disk_pools.end() ? "" : in->second;
    spec.disks.push_back({volume, ctx.disk_format(c.host, pool), std::string("vd") + letter, false,
                          disk_serial(disk)});
    spec.disks.back().pool = pool;
    ++letter;
  }
  spec.disks.push_back({vm.seed_volume, "raw", std::string("vd") + letter, true, ""});
  for (auto& d : spec.disks) d.cache = vm.record.cache.empty() ? "none" : vm.record.cache;
  for (const auto& n : vm.nics) {
    // Multiqueue virtio-net: one queue pair per vCPU unless the file says otherwise.
    const bool virtio = n.model.empty() || n.model == "virtio";
    const int queues = !virtio ? 0 : n.queues > 0 ? n.queues : vm.cpus;
    spec.nics.push_back({n.network, n.bridge, n.mac, n.direct, n.mode, virtio ? "virtio" : n.model,
                         queues > 1 ? queues : 0});
  }
  const std::string dir = s.pool_path();
  if (!dir.empty()) spec.serial_log = dir + "/" + serial_log_name(ctx.plan().cluster, spec.name);
  if (vm.record.firmware == "uefi") {
    spec.firmware = "efi";
    spec.secure_boot = vm.record.secure_boot;
    // In a directory pool the NVRAM is one of the VM's volumes; elsewhere (a logical pool has
    // no files) libvirt keeps it in its own directory. Removed with the domain either way.
    if (!dir.empty()) spec.nvram = dir + "/" + nvram_volume_name(ctx.plan().cluster, spec.name);
  }
  spec.tpm = vm.record.tpm;
  spec.owner = Ownership{ctx.plan().cluster, c.address.str(), vm.spec_hash, vm.record, ready, ""};
  return spec;
}

namespace {

// Defines (or redefines) the VM as the plan describes it. A running domain's maximums are passed
// in (they only change with a restart).
void define(ExecContext& ctx, const ResourceChange& c, int max_vcpus = 0,
            std::uint64_t max_memory = 0, bool ready = false) {
  HostSession& s = ctx.session(c.host);
  DomainSpec spec = vm_domain_spec(ctx, c, s, ready);
  if (max_vcpus > 0) spec.max_vcpus = max_vcpus;
  if (max_memory > 0) spec.max_memory = max_memory;
  s.define_domain(spec);
  const auto dom = s.domain(spec.name);
  const std::string what = ctx.label(c.host) + ": domain " + spec.name;
  if (!dom) throw HostError(what + " is missing right after it was defined");
  std::vector<std::string> diffs;
  if (!dom->owner || dom->owner->cluster != spec.owner.cluster ||
      dom->owner->address != spec.owner.address || dom->owner->spec_hash != spec.owner.spec_hash)
    diffs.push_back("its kumo metadata");
  if (dom->vcpus != spec.vcpus || dom->max_vcpus != std::max(spec.vcpus, spec.max_vcpus))
    diffs.push_back("vCPUs");
  if (dom->memory != spec.memory || dom->max_memory != std::max(spec.memory, spec.max_memory))
    diffs.push_back("memory");
  std::vector<std::string> want_macs, got_macs;
  for (const auto& n : spec.nics) want_macs.push_back(n.mac);
  for (const auto& n : dom->nics) got_macs.push_back(n.mac);
  if (want_macs != got_macs) diffs.push_back("NICs");
  if (dom->disks.size() != spec.disks.size()) diffs.push_back("disks");
  if (!diffs.empty()) throw HostError(what + " read back differs: " + join(diffs));
}

// The serial log is made, empty, before its domain, so that libvirt lists it from the start.
// virtlogd writes it behind libvirt's back, and a file libvirt does not list is found (to delete
// it with its VM) only by refreshing the whole pool, which reads every volume in it: about 0.25 s
// per VM in a pool of 900. Best effort: a log already there, listed or not, stays as it is, and
// one that cannot be made is found by that refresh.
void make_serial_log(ExecContext& ctx, const ResourceChange& c) {
  HostSession& s = ctx.session(c.host);
  if (s.pool_path().empty()) return;
  const std::lock_guard<std::mutex> lock(ctx.pool_mutex(c.host));
  try {
    s.create_volume(
        VolumeSpec{serial_log_name(ctx.plan().cluster, c.vm()->name), 0, "raw", "", ""});
  } catch (const HostError&) {
  }
}

// An adopted VM's definition is the one it was made with: kumo changes its autostart and its
// mark (the record of the file's entry), never the rest.
void remark(ExecContext& ctx, const ResourceChange& c, bool ready) {
  const VmPayload& vm = *c.vm();
  HostSession& s = ctx.session(c.host);
  s.set_domain_autostart(vm.name, vm.autostart);
  s.set_domain_owner(
      vm.name, Ownership{ctx.plan().cluster, c.address.str(), vm.spec_hash, vm.record, ready, ""});
}

std::string first_free_target(const std::set<std::string>& used) {
  for (char l = 'b'; l <= 'z'; ++l) {
    if (!used.count(std::string("vd") + l)) return std::string("vd") + l;
  }
  return "";
}

// Data disks the running domain does not have yet are plugged into it (the definition gets them
// from define). Each takes the first target free in the running domain: the guest finds it by
// its serial, /dev/disk/by-id/virtio-<name>. Read back: every data volume is in the running
// domain afterwards.
void hot_plug_data_disks(ExecContext& ctx, const ResourceChange& c,
                         std::vector<std::string>& done) {
  const VmPayload& vm = *c.vm();
  if (vm.data_disks.empty()) return;
  HostSession& s = ctx.session(c.host);
  std::set<std::string> used, paths;
  for (const auto& r : s.live_disks(vm.name)) {
    used.insert(r.target);
    paths.insert(r.path);
  }
  std::vector<std::string> plugged;
  for (const auto& [disk, vname] : vm.data_disks) {
    const auto in = vm.data_disk_pools.find(disk);
    const std::string pool = in == vm.data_disk_pools.end() ? "" : in->second;
    const auto v = ctx.session(c.host, pool).volume(vname);
    if (!v) throw HostError(ctx.label(c.host) + ": volume " + vname + " is gone; plan again");
    if (paths.count(v->path)) continue;
    const std::string target = first_free_target(used);
    if (target.empty()) {
      throw HostError(
          ctx.label(c.host) + ": domain " + vm.name + " has no free disk name left for " + vname +
          "; it is attached at the next restart (kumo apply --replace " + c.address.str() + ")");
    }
    s.attach_disk(vm.name,
                  DomainDisk{vname, ctx.disk_format(c.host, pool), target, false, disk_serial(disk),
                             vm.record.cache.empty() ? "none" : vm.record.cache, pool});
    used.insert(target);
    plugged.push_back(v->path);
    done.push_back("disk " + disk + " hot-plugged as " + target);
  }
  if (plugged.empty()) return;
  std::set<std::string> now;
  for (const auto& r : s.live_disks(vm.name)) now.insert(r.path);
  for (const auto& p : plugged) {
    if (!now.count(p))
      throw HostError(ctx.label(c.host) + ": domain " + vm.name + " does not show " + p +
                      " after hot-plugging it");
  }
}

// vCPUs and memory of the running domain, within what it can grow to, as the plan promised.
void live_resize(ExecContext& ctx, const ResourceChange& c, const ObservedDomain& dom,
                 std::vector<std::string>& done) {
  const VmPayload& vm = *c.vm();
  HostSession& s = ctx.session(c.host);
  const std::string where = ctx.label(c.host) + ": " + c.address.str();
  if (vm.cpus != dom.vcpus) {
    if (vm.cpus > dom.max_vcpus) {
      throw HostError(where + ": " + std::to_string(vm.cpus) +
                      " vCPUs are more than the running domain can take (" +
                      std::to_string(dom.max_vcpus) + "); plan again");
    }
    s.set_domain_vcpus(vm.name, vm.cpus);
    done.push_back("vCPUs " + std::to_string(dom.vcpus) + " -> " + std::to_string(vm.cpus));
  }
  if (vm.memory != dom.memory) {
    if (vm.memory > dom.max_memory) {
      throw HostError(where + ": memory " + std::to_string(vm.memory >> 20) +
                      " MiB is more than the running domain can take (" +
                      std::to_string(dom.max_memory >> 20) + " MiB); plan again");
    }
    s.set_domain_memory(vm.name, vm.memory);
    done.push_back("memory " + std::to_string(dom.memory >> 20) + " -> " +
                   std::to_string(vm.memory >> 20) + " MiB");
  }
}

void check_live_size(ExecContext& ctx, const ResourceChange& c) {
  const VmPayload& vm = *c.vm();
  const auto now = ctx.session(c.host).domain(vm.name);
  if (!now || now->vcpus != vm.cpus || now->memory != vm.memory) {
    throw HostError(
        ctx.label(c.host) + ": domain " + vm.name + " read back differs after the live change: " +
        (now ? std::to_string(now->vcpus) + " vCPUs, " + std::to_string(now->memory >> 20) + " MiB"
             : std::string("it is gone")));
  }
}

}  // namespace

std::string delete_vm(ExecContext& ctx, const Task& t) {
  const std::string name = t.change->observed_name();
  HostSession& s = ctx.session(t.host);
  delete_verified_domain(ctx, *t.change, name);
  // Also what the VM's volume deletes go by (Task::after_vm_delete): one started meanwhile
  // outlives its undefine, transient (LibvirtSession::remove_domain).
  if (s.domain_identity(name))
    throw HostError(ctx.label(t.host) + ": domain " + name + " is still there after deleting it");
  ctx.delete_volume(t.host, serial_log_name(ctx.plan().cluster, t.change->address.name));
  return "";
}

std::string remove_old_vm(ExecContext& ctx, const Task& t) {
  const std::string& name = t.change->vm()->name;
  delete_verified_domain(ctx, *t.change, name);
  return "";
}

std::string shutdown_vm(ExecContext& ctx, const Task& t) {
  const std::string& name = t.change->vm()->name;
  if (!verified_identity(ctx, *t.change, name))
    throw HostError(ctx.label(t.host) + ": domain " + name + " is gone; plan again");
  const auto timeout = ctx.options().shutdown_timeout;
  const bool graceful = ctx.session(t.host).shutdown_domain(name, timeout);
  return graceful ? ""
                  : "forced off: the guest did not power off within " +
                        std::to_string(timeout.count()) + " s";
}

std::string define_vm(ExecContext& ctx, const Task& t) {
  require_no_domain(ctx, *t.change, t.change->vm()->name);
  make_serial_log(ctx, *t.change);
  define(ctx, *t.change);
  return "";
}

// An existing VM changes in place: live within the domain's maximums (the definition keeps the
// running domain's maximums and whether it was seen ready), else with the restart the plan
// arranged (shut down before this step, started after it).
std::string update_vm(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  HostSession& s = ctx.session(c.host);
  const auto dom = verified_domain(ctx, c, vm.name);
  if (!dom) throw HostError(ctx.label(c.host) + ": domain " + vm.name + " is gone; plan again");
  std::vector<std::string> done;
  if (dom->active && !c.steps.shutdown && vm.running) {
    live_resize(ctx, c, *dom, done);
    const bool resized = !done.empty();
    hot_plug_data_disks(ctx, c, done);
    if (!vm.record.adopted.empty()) {
      remark(ctx, c, dom->owner && dom->owner->ready);
    } else {
      define(ctx, c, dom->max_vcpus, dom->max_memory, dom->owner && dom->owner->ready);
    }
    if (resized) check_live_size(ctx, c);
    return done.empty() ? std::string() : "live: " + join(done);
  }
  if (dom->active && !vm.running) {
    const auto timeout = ctx.options().shutdown_timeout;
    const bool graceful = s.shutdown_domain(vm.name, timeout);
    done.push_back(graceful ? "shut down"
                            : "forced off after " + std::to_string(timeout.count()) + " s");
  }
  if (!vm.record.adopted.empty()) {
    // Stopped: vCPUs and memory change in its persistent definition through the API.
    if (!dom->active) {
      if (dom->vcpus != vm.cpus) s.set_domain_vcpus(vm.name, vm.cpus);
      if (dom->memory != vm.memory) s.set_domain_memory(vm.name, vm.memory);
    }
    remark(ctx, c, false);
    return join(done);
  }
  define(ctx, c);
  return join(done);
}

std::string start_vm(ExecContext& ctx, const Task& t) {
  const std::string& name = t.change->vm()->name;
  HostSession& s = ctx.session(t.host);
  // An existing VM restarted in place must still be the one planned; a new one was just defined.
  if (t.change->action == Action::Update && !verified_identity(ctx, *t.change, name))
    throw HostError(ctx.label(t.host) + ": domain " + name + " is gone; plan again");
  s.start_domain(name);
  const auto dom = s.domain(name);
  if (!dom || !dom->active)
    throw HostError(ctx.label(t.host) + ": domain " + name + " is not running after starting it");
  return "";
}

}  // namespace kumo::exec
