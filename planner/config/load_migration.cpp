// Reading hosts.<h>.migration: how a live move reaches the host. Part of the loader.
#include <algorithm>
#include <cctype>

#include "planner/config/loader_internal.h"

namespace kumo::detail {

// hosts.<h>.migration: {socket_dir: /abs} or {address: host}, one of them.
void load_migration(Reader& r, const YAML::Node& f, const std::string& what, MigrationConfig& out) {
  auto fields = r.mapping(f, what, {"socket_dir", "address"});
  if (!fields) return;
  for (auto& [k, v, k_at] : *fields) {
    auto s = r.string(v, what + ": " + k);
    if (!s) continue;
    if (k == "socket_dir") {
      const bool plain = std::all_of(s->begin(), s->end(), [](unsigned char c) {
        return std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '-' || c == '+';
      });
      if (s->empty() || (*s)[0] != '/' || !plain) {
        r.error(v, what + ": socket_dir: " + r.shown(*s) +
                       " must be an absolute directory path of plain characters "
                       "(letters, digits, / . _ - +)");
        continue;
      }
      // A unix socket's path holds at most 107 bytes; kumo adds /kumo-<8 hex>.mem (18).
      if (s->size() > 80) {
        r.error(v, what + ": socket_dir: " + r.shown(*s) +
                       " is too long for unix socket paths (at most 80 characters)");
        continue;
      }
      out.socket_dir = *s;
    } else {
      const bool plain = !s->empty() && std::all_of(s->begin(), s->end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '-' || c == ':';
      });
      if (!plain) {
        r.error(v, what + ": address: " + r.shown(*s) + " is not a host name or IP address");
        continue;
      }
      out.address = *s;
    }
  }
  if (!out.socket_dir.empty() && !out.address.empty()) {
    r.error(f, what + ": give socket_dir or address, not both");
    out = {};
  }
}

}  // namespace kumo::detail
