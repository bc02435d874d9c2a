// The libvirt session's moves: live migration managed by kumo (it holds both connections; QEMU
// sends memory and disks straight to QEMU, natively: libvirt 9.0 cannot tunnel the NBD disk
// copy), the pause a killed migration leaves behind, and volumes read whole for a cold move.
#include <atomic>
#include <condition_variable>

#include "providers/libvirt/session_impl.h"

namespace kumo::libvirt {
namespace {

// virDomainMigrate3's typed parameters, freed with the object.
class Params {
 public:
  Params() = default;
  Params(const Params&) = delete;
  Params& operator=(const Params&) = delete;
  ~Params() { virTypedParamsFree(params_, count_); }
  void add(const char* key, const std::string& value) {
    if (virTypedParamsAddString(&params_, &count_, &max_, key, value.c_str()) < 0)
      throw std::bad_alloc();
  }
  virTypedParameterPtr get() const { return params_; }
  int size() const { return count_; }

 private:
  virTypedParameterPtr params_ = nullptr;
  int count_ = 0, max_ = 0;
};

// The migration job's progress: bytes processed of the total, both 0 when libvirt has none yet.
Transfer job_progress(virDomainPtr dom) {
  Transfer t;
  int type = 0, count = 0;
  virTypedParameterPtr params = nullptr;
  if (virDomainGetJobStats(dom, &type, &params, &count, 0) < 0) {
    virResetLastError();
    return t;
  }
  unsigned long long total = 0, processed = 0;
  if (virTypedParamsGetULLong(params, count, VIR_DOMAIN_JOB_DATA_TOTAL, &total) == 1 &&
      virTypedParamsGetULLong(params, count, VIR_DOMAIN_JOB_DATA_PROCESSED, &processed) == 1) {
    t.total = total;
    t.done = std::min(processed, total);
  }
  virTypedParamsFree(params, count);
  return t;
}

class StreamReader final : public VolumeReader {
 public:
  StreamReader(std::unique_ptr<StreamLease> lease, StreamHandle stream, std::uint64_t size,
               std::string what)
      : lease_(std::move(lease)), stream_(std::move(stream)), size_(size), what_(std::move(what)) {}
  ~StreamReader() override {
    if (!finished_) virStreamAbort(stream_.get());
    virResetLastError();
  }
  std::uint64_t size() const override { return size_; }
  std::size_t read(char* buf, std::size_t max) override {
    if (finished_ || max == 0) return 0;
    for (;;) {
      const int got = virStreamRecv(stream_.get(), buf, std::min(max, kDownloadChunk));
      if (got == -2) continue;  // only a non-blocking stream says "try again"
      if (got < 0) throw HostError(what_ + " failed: " + last_error().message);
      if (got == 0) {
        finished_ = true;
        if (virStreamFinish(stream_.get()) < 0)
          throw HostError(what_ + " failed: " + last_error().message);
      }
      return static_cast<std::size_t>(got);
    }
  }

 private:
  std::unique_ptr<StreamLease> lease_;  // the stream's connection, given back after the stream
  StreamHandle stream_;
  std::uint64_t size_;
  std::string what_;
  bool finished_ = false;
};

}  // namespace

void LibvirtSession::migrate_domain(const std::string& name, HostSession& dest,
                                    const MigrationRequest& req) {
  auto* to = dynamic_cast<LibvirtSession*>(&dest);
  if (to == nullptr) raise("moving domain " + name + ": the destination is not a libvirt host");
  const std::string what = "moving domain " + name + " live to " + to->label();
  const auto dom = need_domain(name, "moving");
  const std::string live = adopt_string(virDomainGetXMLDesc(dom.get(), VIR_DOMAIN_XML_MIGRATABLE));
  if (live.empty()) fail(what + " (reading its definition)");
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  if (virDomainGetUUIDString(dom.get(), uuid) < 0) fail(what);
  std::optional<std::string> dest_xml;
  try {
    dest_xml = migration_xml(
        live, [to](const std::string& volume) { return to->volume_path(to->target_.pool, volume); },
        pool_path(), to->pool_path(), req.persistent.owner);
  } catch (const std::runtime_error& e) {
    fail_because(what, e.what());
  }
  if (!dest_xml) unreadable("domain " + name);
  Params params;
  params.add(VIR_MIGRATE_PARAM_DEST_XML, *dest_xml);
  params.add(VIR_MIGRATE_PARAM_PERSIST_XML, domain_xml(req.persistent, to->target_.pool, uuid));
  if (!req.uri.empty()) params.add(VIR_MIGRATE_PARAM_URI, req.uri);
  if (!req.disks_uri.empty() && !req.copy_disks.empty())
    params.add(VIR_MIGRATE_PARAM_DISKS_URI, req.disks_uri);
  for (const auto& target : req.copy_disks) params.add(VIR_MIGRATE_PARAM_MIGRATE_DISKS, target);
  unsigned flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE |
                   VIR_MIGRATE_AUTO_CONVERGE;
  // Only the top of each disk travels: the destination's overlays sit on the same base image.
  if (!req.copy_disks.empty()) flags |= VIR_MIGRATE_NON_SHARED_INC;

  // Progress and the deadline, watched from the side while virDomainMigrate3 blocks.
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::atomic<bool> timed_out{false};
  std::thread watcher([&] {
    const auto deadline = std::chrono::steady_clock::now() + req.timeout;
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, std::chrono::seconds(1), [&] { return finished; })) {
      lock.unlock();
      if (!timed_out && std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        if (virDomainAbortJob(dom.get()) < 0) virResetLastError();
      } else if (req.tick) {
        try {
          const Transfer t = job_progress(dom.get());
          if (t.total > 0) req.tick(t);
        } catch (...) {  // progress is for people: it never stops a migration
        }
      }
      lock.lock();
    }
  });
  virDomainPtr moved = virDomainMigrate3(dom.get(), to->connection(), params.get(),
                                         static_cast<unsigned>(params.size()), flags);
  const LibvirtError error = moved ? LibvirtError{} : last_error();
  {
    const std::lock_guard lock(mu);
    finished = true;
  }
  cv.notify_all();
  watcher.join();
  if (moved != nullptr) {
    virDomainFree(moved);
    return;
  }
  // Whatever failed, the domain runs on here: a migration that got as far as pausing it is
  // undone.
  try {
    resume_after_migration(name);
  } catch (const HostError&) {
  }
  if (timed_out) {
    fail_because(what, "it took longer than " + std::to_string(req.timeout.count()) +
                           " s and was aborted; the domain keeps running on " + label_);
  }
  fail_because(what, error.message + " (the domain keeps running on " + label_ + ")");
}

bool LibvirtSession::resume_after_migration(const std::string& name) {
  const auto dom = find_domain(name);
  if (!dom) return false;
  int state = VIR_DOMAIN_NOSTATE, reason = 0;
  if (virDomainGetState(dom.get(), &state, &reason, 0) < 0) {
    return vanished_or_fail<bool>(VIR_ERR_NO_DOMAIN, "reading the state of domain " + name)
        .value_or(false);
  }
  if (state != VIR_DOMAIN_PAUSED ||
      (reason != VIR_DOMAIN_PAUSED_MIGRATION && reason != VIR_DOMAIN_PAUSED_POSTCOPY_FAILED))
    return false;
  if (virDomainResume(dom.get()) < 0) fail("resuming domain " + name + " after a migration");
  return true;
}

std::unique_ptr<VolumeReader> LibvirtSession::open_volume(const std::string& name) {
  const std::string what = "reading " + volume_label(name);
  auto lease = lease_stream(what);
  const VolumeHandle vol = stream_volume(*lease, name, what);
  virStorageVolInfo info{};
  // The allocation field then holds the file's own size: what a download brings.
  if (virStorageVolGetInfoFlags(vol.get(), &info, VIR_STORAGE_VOL_GET_PHYSICAL) < 0) fail(what);
  StreamHandle stream(virStreamNew(lease->conn(), 0));
  if (!stream || virStorageVolDownload(vol.get(), stream.get(), 0, info.allocation, 0) < 0)
    fail(what);
  return std::make_unique<StreamReader>(std::move(lease), std::move(stream), info.allocation,
                                        label_ + ": " + what);
}

}  // namespace kumo::libvirt
