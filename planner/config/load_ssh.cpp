// The ssh: mappings (top level, defaults:, a VM) and hosts.<h>.ssh_jump: how kumo ssh and
// kumo inventory log in. Nothing here reaches a plan.
#include <algorithm>
#include <cctype>

#include "planner/config/load_ssh.h"

namespace kumo::detail {
namespace {

// What ssh accepts as a login name: letters, digits, . _ - (not first), at most 64.
bool valid_user(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

// A host name or address as ssh takes it (IPv6 in brackets is not needed: written bare).
bool valid_host(const std::string& s) {
  if (s.empty() || s.size() > 253 || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':';
  });
}

// kumo writes paths into an ssh_config file, double-quoted: no quote, no control character.
bool writable_path(const std::string& s) {
  return std::none_of(s.begin(), s.end(),
                      [](unsigned char c) { return c == '"' || c < 0x20 || c == 0x7f; });
}

std::optional<std::string> read_user(Reader& r, const YAML::Node& f, const std::string& what) {
  auto s = r.string(f, what);
  if (!s) return std::nullopt;
  if (!valid_user(*s)) {
    r.error(f, what + ": " + r.shown(*s) +
                   " is not a login name (letters, digits, . _ -, not starting with -)");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> read_identity(Reader& r, const YAML::Node& f, const std::string& what) {
  auto s = r.string(f, what);
  if (!s) return std::nullopt;
  if (s->empty() || !writable_path(*s)) {
    r.error(f, what + ": " + r.shown(*s) +
                   " is not a usable path (empty, or with a double quote or control character)");
    return std::nullopt;
  }
  return r.interpolator().resolve_path(*s);
}

// "[user@]host[:port]"
std::optional<SshJumpConfig> parse_jump_text(Reader& r, const YAML::Node& f,
                                             const std::string& what, const std::string& text) {
  SshJumpConfig j;
  std::string rest = text;
  if (const auto at = rest.find('@'); at != std::string::npos) {
    j.user = rest.substr(0, at);
    rest = rest.substr(at + 1);
  }
  if (const auto colon = rest.rfind(':');
      colon != std::string::npos && rest.find(':') == colon) {  // one colon: a port
    const std::string port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    const bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); });
    j.port = digits ? std::stoi(port) : -1;
  }
  j.host = rest;
  const bool ok = (j.user.empty() || valid_user(j.user)) && valid_host(j.host) && j.port >= 0 &&
                  j.port <= 65535;
  if (!ok) {
    r.error(f, what + ": " + r.shown(text) +
                   " is not [user@]host[:port] (e.g. root@hv1.example.org or admin@10.0.0.5:2222),"
                   " nor direct");
    return std::nullopt;
  }
  return j;
}

}  // namespace

void load_ssh(Reader& r, const YAML::Node& node, const std::string& where, SshConfig& into) {
  auto fields = r.mapping(node, where, {"user", "identity_file"});
  if (!fields) return;
  into.location = r.loc(node);
  for (auto& [k, f, k_at] : *fields) {
    if (k == "user") {
      if (auto u = read_user(r, f, where + ": user")) into.user = *u;
    } else if (k == "identity_file") {
      if (auto p = read_identity(r, f, where + ": identity_file")) into.identity_file = *p;
    }
  }
}

std::optional<SshJumpConfig> load_ssh_jump(Reader& r, const YAML::Node& f,
                                           const std::string& where) {
  const std::string what = where + ": ssh_jump";
  std::optional<SshJumpConfig> out;
  if (f.IsScalar()) {
    auto s = r.string(f, what);
    if (!s) return std::nullopt;
    if (*s == "direct") {
      out = SshJumpConfig{};
      out->direct = true;
    } else {
      out = parse_jump_text(r, f, what, *s);
    }
  } else {
    auto fields = r.mapping(f, what, {"host", "user", "port", "identity_file"});
    if (!fields) return std::nullopt;
    SshJumpConfig j;
    bool ok = true, has_host = false;
    for (auto& [k, v, k_at] : *fields) {
      if (k == "host") {
        has_host = true;
        auto s = r.string(v, what + ": host");
        if (s && !valid_host(*s)) {
          r.error(v, what + ": host: " + r.shown(*s) + " is not a host name or address");
          ok = false;
        } else if (s) {
          j.host = *s;
        }
      } else if (k == "user") {
        if (auto u = read_user(r, v, what + ": user"))
          j.user = *u;
        else
          ok = false;
      } else if (k == "port") {
        if (auto p = r.integer(v, what + ": port", 1, 65535))
          j.port = *p;
        else
          ok = false;
      } else if (k == "identity_file") {
        if (auto p = read_identity(r, v, what + ": identity_file"))
          j.identity_file = *p;
        else
          ok = false;
      }
    }
    if (!has_host) {
      r.error(f, what + ": missing required key \"host\" (e.g. host: hv1.example.org)");
      ok = false;
    }
    if (ok) out = j;
  }
  if (out) out->location = r.loc(f);
  return out;
}

}  // namespace kumo::detail
