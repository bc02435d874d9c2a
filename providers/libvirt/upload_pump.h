// The loop of an upload, apart from libvirt so that it is tested without a stream: chunks read
// from a ByteReader and pushed through a send call that may take less than it is given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "providers/host_session.h"

namespace kumo::libvirt {

// Like virStreamSend: how many bytes it took (possibly fewer than `size`), -2 for "try again"
// (non-blocking streams only), any other negative value for a failure.
using StreamSend = std::function<int(const char* data, std::size_t size)>;

struct PumpResult {
  enum class Stop {
    done,            // all `size` bytes went
    send_failed,     // `send` failed: libvirt's error is still the thread's last one
    source_ended,    // `read` returned 0 before `size` bytes
    source_overran,  // `read` returned more than it was asked for
  };
  Stop stop = Stop::done;
  std::uint64_t read = 0;  // bytes `read` gave
  std::uint64_t sent = 0;  // bytes `send` took
};

// Sends exactly `size` bytes from `read` through `send`, `chunk` bytes at a time (the last
// chunk may be shorter), and calls `tick` (if any) after each chunk. Exceptions from `read`,
// `send` and `tick` pass through.
PumpResult pump_upload(std::uint64_t size, std::size_t chunk, const ByteReader& read,
                       const StreamSend& send, const TransferTick& tick);

}  // namespace kumo::libvirt
