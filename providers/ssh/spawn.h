// Running the system's OpenSSH client: an argv, never a shell string.
#pragma once

#include <string>
#include <vector>

namespace kumo::ssh {

struct SpawnResult {
  int exit_code = 0;  // the program's, or 128 + signal
  // What ssh said on stderr (relayed to kumo's stderr as it came):
  bool host_key_changed = false;  // REMOTE HOST IDENTIFICATION HAS CHANGED
  bool host_key_failed = false;   // Host key verification failed (changed, or not known)
};

// Runs argv[0] (looked up in PATH) with argv, sharing kumo's stdin and stdout; stderr goes
// through kumo, which passes every byte on at once and watches it for ssh's host key messages.
// While it runs kumo ignores SIGINT and SIGQUIT (the terminal's Ctrl-C is the program's).
// Throws std::runtime_error when the program cannot be started (not installed).
SpawnResult run_watched(const std::vector<std::string>& argv);

// `words` as one POSIX shell word each ('...' quoting where needed): for showing a command line
// and for Ansible's ansible_ssh_common_args (which Ansible splits with shlex). Never run by kumo.
std::string shell_join(const std::vector<std::string>& words);
std::string shell_quote(const std::string& word);

}  // namespace kumo::ssh
