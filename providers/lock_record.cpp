// The cluster lock's records kept as volumes of the session's pool: what any host with a pool
// can do (host_session.h). A libvirt host with a secret driver overrides these.
#include "providers/host_session.h"

namespace kumo {

bool HostSession::create_lock_record(const std::string& name, const std::string& text) {
  return create_volume_exclusive(name, text);
}

std::optional<std::string> HostSession::read_lock_record(const std::string& name,
                                                         std::size_t max_bytes) {
  if (!volume(name)) return std::nullopt;
  return read_volume(name, 0, max_bytes);
}

std::optional<std::string> HostSession::lock_record_stamp(const std::string& name) {
  const auto v = volume(name);
  if (!v) return std::nullopt;
  return v->changed;
}

void HostSession::delete_lock_record(const std::string& name) {
  delete_volume(name);
}

}  // namespace kumo
