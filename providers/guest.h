// What kumo asks a guest through its agent, on any HostSession: files read with the agent's file
// API and cloud-init's status. Used by apply's readiness wait and by kumo status.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "providers/host_session.h"

namespace kumo {

// Throws HostError unless the guest agent answers a ping within `timeout`.
void ping_agent(HostSession& session, const std::string& domain, std::chrono::seconds timeout);

// A small file of the guest through the agent's file API (no process started in the guest):
// nullopt when it does not exist. Throws HostError when the agent cannot do it at all. The file
// handle is closed whatever happens while reading.
std::optional<std::string> read_guest_file(HostSession& session, const std::string& domain,
                                           const std::string& path);

struct CloudInitStatus {
  std::string status;  // done | running | error | degraded done | disabled | ...
  std::string detail;  // cloud-init's own words (errors included)
  int exitcode = -1;
  bool done() const { return status == "done" && (exitcode == 0 || exitcode == 2); }
};

// cloud-init's status in the guest, from /run/cloud-init/result.json (or `cloud-init status
// --long` where the agent has no file API). `wait`: until it finishes or `timeout` passes.
// Throws HostError when the agent does not answer.
CloudInitStatus cloud_init_status(HostSession& session, const std::string& domain, bool wait,
                                  std::chrono::seconds timeout,
                                  std::chrono::milliseconds poll = std::chrono::milliseconds(500));

// The guest's SSH host public keys ("ssh-ed25519 AAAA..."), read through the agent's file API
// from /etc/ssh/ssh_host_{ed25519,ecdsa,rsa}_key.pub: the guest's own word, over the hypervisor's
// channel, never over the network. Empty when it has none (yet). Throws HostError when the agent
// does not answer.
std::vector<std::string> guest_host_keys(HostSession& session, const std::string& domain);

// The host keys cloud-init printed on the serial console (its keys_to_console module): those of
// the last "-----BEGIN SSH HOST KEY KEYS-----" block of `console`. Empty when there is none.
std::vector<std::string> host_keys_from_console(const std::string& console);

// A public key line ("ssh-ed25519 AAAA... root@web-0") reduced to "type base64"; "" when the line
// is not a public key.
std::string host_key_of(const std::string& line);

}  // namespace kumo
