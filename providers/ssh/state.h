// What kumo keeps on this machine for reaching VMs: per cluster, under $XDG_STATE_HOME/kumo/
// (default ~/.local/state/kumo/): the SSH host keys learned from guests (known_hosts) and the
// ssh_config that names the jump hosts. Never a copy of live state: both are rebuilt from it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kumo::ssh {

// $XDG_STATE_HOME/kumo/<cluster> (else $HOME/.local/state/kumo/<cluster>), made (0700) when
// missing. Throws std::runtime_error naming the path and what to do.
std::string state_dir(const std::string& cluster);

// The keys recorded for one VM: `alias` (HostKeyAlias) and the domain UUID they were learned
// from. A VM made again (another UUID) needs its keys learned again.
struct KnownKeys {
  std::vector<std::string> keys;  // "ssh-ed25519 AAAA..."
  std::string uuid;
};

// The lines of known_hosts for `alias`; nullopt when there are none (or no file).
std::optional<KnownKeys> known_keys(const std::string& path, const std::string& alias);

// Replaces the lines for `alias` with `keys`, each marked with the domain UUID; other lines stay.
// Safe against other kumo processes doing the same (a lock file) and against crashes (written to
// a temporary file, then renamed). The file is 0600.
void remember_keys(const std::string& path, const std::string& alias, const std::string& uuid,
                   const std::vector<std::string>& keys);

// Writes `text` to `path` (0600) through a temporary file and a rename.
void write_private_file(const std::string& path, const std::string& text);

}  // namespace kumo::ssh
