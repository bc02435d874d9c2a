// A VM's serial console through libvirt (virDomainOpenConsole and a stream), over any URI:
// bytes from `in_fd` go to the guest, the guest's to `out_fd`, until the escape byte (Ctrl-])
// is typed, `in_fd` ends, or the console closes. The caller owns the terminal (raw mode).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "providers/provider.h"

namespace kumo::libvirt {

constexpr char kConsoleEscape = 0x1d;  // Ctrl-], as virsh console

// How many of `n` bytes go to the guest before the escape byte (n when there is none).
std::size_t bytes_before_escape(const char* data, std::size_t n);

struct ConsoleEnd {
  bool ok = false;    // left with the escape byte or at the end of input
  std::string error;  // why not, naming the host and VM and what to do
};

// `force`: take the console over from another session holding it.
ConsoleEnd run_console(const HostTarget& host, const std::string& domain, bool force,
                       std::chrono::milliseconds timeout, int in_fd, int out_fd);

}  // namespace kumo::libvirt
