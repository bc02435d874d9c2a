// The libvirt session's volumes: created, uploaded and read through streams, resized, deleted.
#include "providers/libvirt/session_impl.h"

namespace kumo::libvirt {

LibvirtSession::SharedVolume LibvirtSession::known_volume(const std::string& name) {
  const std::lock_guard lock(known_mu_);
  const auto it = known_.find(name);
  return it == known_.end() ? nullptr : it->second;
}

LibvirtSession::SharedVolume LibvirtSession::remember_volume(const std::string& name,
                                                             VolumeHandle vol) {
  SharedVolume shared(vol.release(), VolumeFreer{});
  const std::lock_guard lock(known_mu_);
  return known_.insert_or_assign(name, std::move(shared)).first->second;
}

void LibvirtSession::take_listed(ListedVolumes& listed) {
  for (auto& [key, handle] : listed) {
    if (key.first == target_.pool && handle) remember_volume(key.second, std::move(handle));
  }
}

void LibvirtSession::forget_volume(const std::string& name) {
  const std::lock_guard lock(known_mu_);
  known_.erase(name);
}

std::optional<ObservedVolume> LibvirtSession::volume(const std::string& name) {
  SharedVolume vol = known_volume(name);
  if (!vol) {
    auto found = find_volume(name);
    if (!found) return std::nullopt;
    vol = remember_volume(name, std::move(found));
  }
  const std::string xml = adopt_string(virStorageVolGetXMLDesc(vol.get(), 0));
  if (xml.empty()) {
    return vanished_or_fail<ObservedVolume>(VIR_ERR_NO_STORAGE_VOL,
                                            "reading " + volume_label(name));
  }
  auto observed = parse_volume_xml(xml);
  if (!observed) unreadable(volume_label(name));
  observed->pool = target_.pool;
  return observed;
}

void LibvirtSession::create_volume(const VolumeSpec& spec) {
  const VolumeHandle vol(virStorageVolCreateXML(kumo_pool(), volume_xml(spec).c_str(), 0));
  if (!vol) fail("creating " + volume_label(spec.name));
}

// Owner-only where the pool honours it (directory pools do): a seed holds the VM's user-data,
// which may hold secrets, and nobody but libvirt and qemu needs to read a base image.
void LibvirtSession::upload_volume(const std::string& name, std::uint64_t size,
                                   const ByteReader& read, const TransferTick& tick) {
  const VolumeHandle vol(virStorageVolCreateXML(
      kumo_pool(), volume_xml({name, size, "raw", "", ""}, "0600").c_str(), 0));
  if (!vol) fail("creating " + volume_label(name) + " for an upload");
  const std::string what = "uploading to " + volume_label(name);
  std::unique_ptr<StreamLease> lease;  // outlives the stream
  StreamHandle stream;
  // Whatever goes wrong, nothing half-written stays behind: a volume of the right name and
  // size but the wrong content would pass for a finished one. The reader's and the tick's own
  // exceptions come back unchanged once the volume is gone.
  try {
    if (size > 0) {
      lease = lease_stream(what);
      const VolumeHandle target = stream_volume(*lease, name, what);
      stream.reset(virStreamNew(lease->conn(), 0));
      if (!stream) fail(what);
      if (virStorageVolUpload(target.get(), stream.get(), 0, size, 0) < 0) fail(what);
      virStreamPtr st = stream.get();
      const auto sent = pump_upload(
          size, kUploadChunk, read,
          [st](const char* data, std::size_t n) {
            return virStreamSend(st, data, std::min(n, kStreamMessage));
          },
          tick);
      using Stop = PumpResult::Stop;
      if (sent.stop == Stop::send_failed) fail(what);
      if (sent.stop == Stop::source_overran) {
        fail_because(what, "the source returned more bytes than were asked for");
      }
      if (sent.stop == Stop::source_ended) {
        fail_because(what, "the source ended after " + std::to_string(sent.read) + " of " +
                               std::to_string(size) + " bytes");
      }
    }
    char extra = 0;
    if (read(&extra, 1) != 0) {
      fail_because(what,
                   "the source holds more than the " + std::to_string(size) + " bytes announced");
    }
    if (stream && virStreamFinish(stream.get()) < 0) fail(what);
  } catch (...) {
    if (stream) virStreamAbort(stream.get());
    stream.reset();
    lease.reset();
    virStorageVolDelete(vol.get(), 0);
    virResetLastError();
    throw;
  }
}

void LibvirtSession::refresh_pool() {
  const std::uint64_t asked = refreshes_started_.load();
  const std::lock_guard lock(refresh_mutex_);
  // A refresh numbered after `asked` started after this caller asked, and has ended (it held
  // the mutex): every file there when the caller asked is listed.
  if (refreshes_started_.load() > asked) return;
  ++refreshes_started_;
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (virStoragePoolRefresh(kumo_pool(), 0) == 0) return;
    const auto error = last_error();
    virResetLastError();
    if (error.code != VIR_ERR_OPERATION_INVALID ||
        error.message.find("asynchronous jobs") == std::string::npos)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void LibvirtSession::delete_volume(const std::string& name) {
  // A volume read before goes through its handle (known_volume): no lookup.
  const SharedVolume known = known_volume(name);
  VolumeHandle found;
  virStorageVolPtr vol = known.get();
  if (!vol) {
    found = find_volume(name);
    if (!found) {
      // A file libvirt does not list yet (a serial log written behind its back) shows after a
      // refresh.
      refresh_pool();
      found = find_volume(name);
      if (!found) return;
    }
    vol = found.get();
  }
  if (virStorageVolDelete(vol, 0) < 0) {
    const auto error = last_error();
    if (error.code == VIR_ERR_NO_STORAGE_VOL) return forget_volume(name);
    // The file went behind libvirt's back (undefining a domain removes its NVRAM file): gone
    // after a refresh is deleted.
    refresh_pool();
    if (!find_volume(name)) return forget_volume(name);
    fail_because("deleting " + volume_label(name), error.message);
  }
  forget_volume(name);
}

void LibvirtSession::resize_volume(const std::string& name, std::uint64_t capacity) {
  const auto vol = find_volume(name);
  if (!vol) raise(volume_label(name) + " does not exist (resizing it)");
  if (virStorageVolResize(vol.get(), capacity, 0) < 0) fail("growing " + volume_label(name));
}

bool LibvirtSession::create_volume_exclusive(const std::string& name, const std::string& content) {
  const VolumeHandle vol(virStorageVolCreateXML(
      kumo_pool(), volume_xml({name, content.size(), "raw", "", ""}).c_str(), 0));
  if (!vol) {
    // Drivers word "exists" differently (VIR_ERR_STORAGE_VOL_EXIST, or a plain "operation
    // failed"): whether the volume is there is what counts.
    const auto error = last_error();
    if (find_volume(name)) {
      virResetLastError();
      return false;
    }
    fail_because("creating " + volume_label(name), error.message);
  }
  // Read back next (whose is it?), and written now in line: no lookup for either.
  if (virStorageVolRef(vol.get()) == 0) remember_volume(name, VolumeHandle(vol.get()));
  if (content.empty()) return true;  // a marker: nothing to write, no stream needed
  try {
    const std::string what = "writing " + volume_label(name);
    const auto lease = lease_stream(what);
    const VolumeHandle target = stream_volume(*lease, name, what);
    const StreamHandle stream(virStreamNew(lease->conn(), 0));
    std::string_view rest(content);
    if (!stream || virStorageVolUpload(target.get(), stream.get(), 0, content.size(), 0) < 0)
      fail(what);
    if (!content.empty() && virStreamSendAll(
                                stream.get(),
                                [](virStreamPtr, char* buf, size_t n, void* opaque) -> int {
                                  auto* rest = static_cast<std::string_view*>(opaque);
                                  const std::size_t take = std::min(n, rest->size());
                                  std::memcpy(buf, rest->data(), take);
                                  rest->remove_prefix(take);
                                  return static_cast<int>(take);
                                },
                                &rest) < 0) {
      const std::string why = last_error().message;  // the abort resets it
      virStreamAbort(stream.get());
      fail_because(what, why);
    }
    if (virStreamFinish(stream.get()) < 0) fail(what);
  } catch (...) {
    virStorageVolDelete(vol.get(), 0);
    virResetLastError();
    forget_volume(name);
    throw;
  }
  return true;
}

// Best effort: diagnostics for a guest that did not come up must never fail on their own.
std::string LibvirtSession::tail_pool_file(const std::string& name, std::size_t max_bytes) {
  // libvirt lists a file that appeared behind its back (a serial log) only after a refresh.
  refresh_pool();
  std::unique_ptr<StreamLease> lease;
  VolumeHandle vol;
  try {
    lease = lease_stream("reading " + volume_label(name));
    vol = stream_volume(*lease, name, "reading " + volume_label(name));
  } catch (const HostError&) {
    virResetLastError();
    return "";
  }
  virStorageVolInfo info{};
  if (max_bytes == 0 || virStorageVolGetInfo(vol.get(), &info) < 0) {
    virResetLastError();
    return "";
  }
  const std::uint64_t size = info.capacity;
  const std::uint64_t offset = size > max_bytes ? size - max_bytes : 0;
  if (size == offset) return "";
  LibvirtError error;
  std::string out = download(*lease, vol.get(), offset, size - offset, &error);
  virResetLastError();
  if (out.size() > max_bytes) out.erase(0, out.size() - max_bytes);
  return out;
}

std::string LibvirtSession::read_volume(const std::string& name, std::uint64_t offset,
                                        std::size_t length) {
  const std::string what = "reading " + volume_label(name);
  const auto lease = lease_stream(what);
  const VolumeHandle vol = stream_volume(*lease, name, what);
  virStorageVolInfo info{};
  if (virStorageVolGetInfo(vol.get(), &info) < 0) fail(what);
  // Sparse raw files report their size as capacity; never ask past it.
  const std::uint64_t size = std::max<std::uint64_t>(info.capacity, info.allocation);
  if (offset >= size || length == 0) return "";
  const std::uint64_t want = std::min<std::uint64_t>(length, size - offset);
  LibvirtError error;
  std::string out = download(*lease, vol.get(), offset, want, &error);
  if (error.code != 0) fail_because(what, error.message);
  return out;
}

// Bytes [offset, offset+length) of a volume through a stream on `lease`; on failure, what was
// read before it, and libvirt's error in *error.
std::string LibvirtSession::download(StreamLease& lease, virStorageVolPtr vol, std::uint64_t offset,
                                     std::uint64_t length, LibvirtError* error) {
  // Freeing a stream resets the thread's libvirt error: what failed is kept before that.
  const StreamHandle stream(virStreamNew(lease.conn(), 0));
  if (!stream || virStorageVolDownload(vol, stream.get(), offset, length, 0) < 0) {
    *error = last_error();
    return "";
  }
  std::string out;
  std::vector<char> buf(kDownloadChunk);
  for (;;) {
    const int got = virStreamRecv(stream.get(), buf.data(), buf.size());
    if (got == 0) break;
    if (got == -2) continue;  // only a non-blocking stream says "try again"
    if (got < 0) {
      *error = last_error();
      virStreamAbort(stream.get());
      return out;
    }
    out.append(buf.data(), static_cast<std::size_t>(got));
  }
  if (virStreamFinish(stream.get()) < 0) *error = last_error();
  return out;
}

}  // namespace kumo::libvirt
