// The libvirt session's storage pools: the session's own pool (looked up on first use), and the
// pools kumo makes: defined, built, started, set to autostart; stopped, deleted, undefined.
#include "providers/libvirt/session_impl.h"

namespace kumo::libvirt {

PoolHandle LibvirtSession::find_pool(const std::string& name) const {
  PoolHandle pool(virStoragePoolLookupByName(conn_.get(), name.c_str()));
  if (!pool) {
    if (last_error().code != VIR_ERR_NO_STORAGE_POOL)
      fail("looking up storage pool " + quoted(name));
    virResetLastError();
  }
  return pool;
}

virStoragePoolPtr LibvirtSession::find_kumo_pool() const {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  if (!pool_) pool_ = find_pool(target_.pool);
  return pool_.get();
}

virStoragePoolPtr LibvirtSession::kumo_pool() const {
  virStoragePoolPtr pool = find_kumo_pool();
  // Found active once, it is taken as active from then on: a round trip saved on every volume
  // call (a pool stopped while kumo runs fails the next call with libvirt's own message).
  if (pool && pool_active_) return pool;
  const std::string what = "storage pool " + quoted(target_.pool);
  if (!pool) {
    throw HostError(label_ + ": " + what + " not found — create it, list it under hosts." +
                    target_.name + ".pools for kumo to make, or set pool: in kumo.yaml");
  }
  const int active = virStoragePoolIsActive(pool);
  if (active < 0) fail("reading " + what);
  if (active == 0) {
    throw HostError(label_ + ": " + what + " is not active — start it (virsh pool-start " +
                    target_.pool + "; virsh pool-autostart " + target_.pool +
                    ") or set pool: in kumo.yaml");
  }
  pool_active_ = true;
  return pool;
}

std::optional<ObservedPool> LibvirtSession::pool(const std::string& name) {
  const auto handle = find_pool(name);
  if (!handle) return std::nullopt;
  const std::string what = "reading storage pool " + quoted(name);
  const std::string xml = adopt_string(virStoragePoolGetXMLDesc(handle.get(), 0));
  if (xml.empty()) return vanished_or_fail<ObservedPool>(VIR_ERR_NO_STORAGE_POOL, what);
  auto observed = parse_pool_xml(xml);
  if (!observed) unreadable("storage pool " + quoted(name));
  const int active = virStoragePoolIsActive(handle.get());
  int autostart = 0;
  if (active < 0 || virStoragePoolGetAutostart(handle.get(), &autostart) < 0)
    return vanished_or_fail<ObservedPool>(VIR_ERR_NO_STORAGE_POOL, what);
  observed->active = active == 1;
  observed->autostart = autostart != 0;
  return observed;
}

void LibvirtSession::define_pool(const PoolSpec& spec) {
  const std::string what = "storage pool " + quoted(spec.name);
  if (const auto existing = pool(spec.name)) {
    // Made by an apply that stopped midway, or by the lock's preparation of this run.
    const bool same = existing->owner_cluster == spec.cluster && existing->type == spec.type &&
                      (spec.type != "dir" || existing->path == spec.path) &&
                      (spec.type != "logical" || existing->devices == spec.devices);
    if (!same) {
      fail_because("defining " + what,
                   "a pool of that name exists and is not the one kumo.yaml describes; plan again");
    }
    start_pool(spec.name, true);
    return;
  }
  const PoolHandle handle(virStoragePoolDefineXML(conn_.get(), pool_xml(spec).c_str(), 0));
  if (!handle) fail("defining " + what);
  // A logical pool's build refuses devices that hold a file system or an LVM label: kumo
  // never formats a disk that has data on it.
  const unsigned build = spec.type == "logical" ? VIR_STORAGE_POOL_BUILD_NO_OVERWRITE : 0;
  auto undo = [&](const std::string& doing) {
    const auto error = last_error();
    virStoragePoolUndefine(handle.get());
    virResetLastError();
    fail_because(doing + " " + what, error.message + " (its definition was removed again)");
  };
  if (virStoragePoolBuild(handle.get(), build) < 0) undo("building");
  if (virStoragePoolCreate(handle.get(), 0) < 0) undo("starting");
  if (virStoragePoolSetAutostart(handle.get(), 1) < 0)
    fail("setting " + what + " to start with the host");
}

void LibvirtSession::start_pool(const std::string& name, bool autostart) {
  const auto handle = find_pool(name);
  const std::string what = "storage pool " + quoted(name);
  if (!handle) {
    fail_because("starting " + what,
                 "no such pool — was it deleted outside kumo? `kumo apply` makes it again");
  }
  const int active = virStoragePoolIsActive(handle.get());
  if (active < 0) fail("starting " + what);
  if (active == 0 && virStoragePoolCreate(handle.get(), 0) < 0) fail("starting " + what);
  set_autostart(virStoragePoolGetAutostart, virStoragePoolSetAutostart, handle.get(), autostart,
                what);
}

void LibvirtSession::delete_pool(const std::string& name) {
  const auto handle = find_pool(name);
  if (!handle) return;
  const std::string what = "deleting storage pool " + quoted(name);
  const int active = virStoragePoolIsActive(handle.get());
  if (active < 0) return vanished_or_fail<void>(VIR_ERR_NO_STORAGE_POOL, what);
  if (active == 1 && virStoragePoolDestroy(handle.get()) < 0) fail(what + " (stopping it)");
  // rmdir of the directory (refused when anything is left in it); vgremove + pvremove.
  if (virStoragePoolDelete(handle.get(), 0) < 0) {
    const auto error = last_error();
    virStoragePoolCreate(handle.get(), 0);  // as it was: active, its volumes listed
    virResetLastError();
    fail_because(what, error.message + " (the pool was started again and kept)");
  }
  if (virStoragePoolUndefine(handle.get()) < 0)
    vanished_or_fail<void>(VIR_ERR_NO_STORAGE_POOL, what);
  std::lock_guard<std::mutex> lock(pool_mutex_);
  if (name == target_.pool) {
    pool_.reset();
    pool_active_ = false;
  }
}

}  // namespace kumo::libvirt
