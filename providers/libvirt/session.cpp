#include "providers/libvirt/session_impl.h"

namespace kumo {
namespace libvirt {
namespace {

class LibvirtConnector final : public HostConnector {
 public:
  LibvirtConnector(Streams streams, bool opened_ahead)
      : streams_(streams), opened_ahead_(opened_ahead) {}
  std::unique_ptr<HostSession> connect(const HostTarget& host,
                                       std::chrono::milliseconds timeout) override {
    auto opened = open_connection(host, timeout, {}, opened_ahead_);
    if (!opened.conn) throw HostError(opened.error);
    // The pool is looked up on first use: a pool this apply makes may not exist yet.
    PoolHandle handle(virStoragePoolLookupByName(opened.conn.get(), host.pool.c_str()));
    if (!handle) virResetLastError();
    auto session = std::make_unique<LibvirtSession>(host, std::move(opened.conn), std::move(handle),
                                                    streams_, timeout);
    if (opened.listed) session->take_listed(*opened.listed);
    return session;
  }

 private:
  const Streams streams_;
  const bool opened_ahead_;
};

}  // namespace

StreamLease::~StreamLease() {
  if (!home_ || !own_.conn) return;
  if (virConnectIsAlive(own_.conn.get()) != 1) {  // a dead one is not kept
    virResetLastError();
    return;
  }
  const std::lock_guard lock(home_->mu);
  home_->idle.push_back(std::move(own_));
}

virStoragePoolPtr StreamLease::pool(const std::string& name) {
  if (borrowed_pool_ != nullptr) return borrowed_pool_;
  if (!own_.pool) own_.pool.reset(virStoragePoolLookupByName(own_.conn.get(), name.c_str()));
  return own_.pool.get();
}

std::unique_ptr<StreamLease> LibvirtSession::lease_stream(const std::string& what) {
  if (streams_ == Streams::InLine && !lent_)
    return std::make_unique<StreamLease>(conn_.get(), kumo_pool());
  {
    const std::lock_guard lock(stream_pool_->mu);
    if (!stream_pool_->idle.empty()) {
      auto lease =
          std::make_unique<StreamLease>(stream_pool_, std::move(stream_pool_->idle.back()));
      stream_pool_->idle.pop_back();
      return lease;
    }
  }
  auto opened = open_connection(target_, timeout_);
  if (!opened.conn) raise(what + " failed: no connection for its stream: " + opened.error);
  ++stream_pool_->opened;
  return std::make_unique<StreamLease>(stream_pool_, StreamConnection{std::move(opened.conn), {}});
}

VolumeHandle LibvirtSession::stream_volume(StreamLease& lease, const std::string& name,
                                           const std::string& what) {
  // On the session's own connection (in line), a volume it knows needs no lookup: a stream on
  // one that went since fails as its lookup would have.
  if (lease.conn() == conn_.get()) {
    if (const SharedVolume known = known_volume(name); known && virStorageVolRef(known.get()) == 0)
      return VolumeHandle(known.get());
  }
  virStoragePoolPtr pool = lease.pool(target_.pool);
  if (pool == nullptr) fail(what);
  VolumeHandle vol(virStorageVolLookupByName(pool, name.c_str()));
  if (!vol) {
    if (last_error().code == VIR_ERR_NO_STORAGE_VOL) fail_because(what, "it does not exist");
    fail(what);
  }
  return vol;
}

}  // namespace libvirt

std::unique_ptr<HostConnector> make_libvirt_connector(Streams streams, bool opened_ahead) {
  return std::make_unique<libvirt::LibvirtConnector>(streams, opened_ahead);
}

}  // namespace kumo
