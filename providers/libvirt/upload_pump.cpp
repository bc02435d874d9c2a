#include "providers/libvirt/upload_pump.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace kumo::libvirt {

PumpResult pump_upload(std::uint64_t size, std::size_t chunk, const ByteReader& read,
                       const StreamSend& send, const TransferTick& tick) {
  using Stop = PumpResult::Stop;
  std::vector<char> buf(std::max<std::size_t>(chunk, 1));
  PumpResult result;
  while (result.sent < size) {
    const auto want =
        static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - result.sent));
    // A reader may return less than asked (a pipe, a socket): fill the chunk before sending.
    std::size_t filled = 0;
    while (filled < want) {
      const std::size_t got = read(buf.data() + filled, want - filled);
      if (got == 0) break;
      if (got > want - filled) return {Stop::source_overran, result.read, result.sent};
      filled += got;
      result.read += got;
    }
    if (filled < want) return {Stop::source_ended, result.read, result.sent};
    for (std::size_t taken = 0; taken < filled;) {
      const int n = send(buf.data() + taken, filled - taken);
      if (n == -2) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      if (n < 0) return {Stop::send_failed, result.read, result.sent};
      taken += static_cast<std::size_t>(n);
      result.sent += static_cast<std::uint64_t>(n);
    }
    if (tick) tick(Transfer{result.sent, size});
  }
  return result;
}

}  // namespace kumo::libvirt
