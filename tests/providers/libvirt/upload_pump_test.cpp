// The upload loop with a fake stream: the libvirt test driver has no upload, so this is where
// chunking, short reads, partial sends and "try again" are checked.
#include "providers/libvirt/upload_pump.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace kumo;
using namespace kumo::libvirt;
using Stop = PumpResult::Stop;

namespace {

std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// Gives at most `step` bytes a call, as a pipe would.
ByteReader reader_of(const std::string& data, std::size_t step) {
  auto pos = std::make_shared<std::size_t>(0);
  return [&data, step, pos](char* buf, std::size_t max) {
    const std::size_t n = std::min({max, step, data.size() - *pos});
    data.copy(buf, n, *pos);
    *pos += n;
    return n;
  };
}

}  // namespace

TEST_CASE("an upload goes whole through short reads, partial sends and try-again", "[pump]") {
  const std::string data = pattern(10'000);
  std::string received;
  int calls = 0;
  const StreamSend send = [&](const char* buf, std::size_t size) {
    if (++calls % 3 == 0) return -2;  // "try again"
    const std::size_t n = std::min<std::size_t>(size, 700);
    received.append(buf, n);
    return static_cast<int>(n);
  };
  std::vector<std::uint64_t> ticks;
  const TransferTick tick = [&](const Transfer& t) {
    CHECK(t.total == 10'000);
    ticks.push_back(t.done);
  };
  const auto result = pump_upload(data.size(), 4096, reader_of(data, 333), send, tick);
  CHECK(result.stop == Stop::done);
  CHECK(result.read == 10'000);
  CHECK(result.sent == 10'000);
  CHECK(received == data);
  CHECK(ticks == std::vector<std::uint64_t>{4096, 8192, 10'000});  // one tick a chunk
}

TEST_CASE("an upload stops when the source ends early or gives more than asked", "[pump]") {
  const std::string data = pattern(5000);
  const StreamSend send = [](const char*, std::size_t size) { return static_cast<int>(size); };
  const auto ended = pump_upload(8000, 4096, reader_of(data, 4096), send, {});
  CHECK(ended.stop == Stop::source_ended);
  CHECK(ended.read == 5000);
  CHECK(ended.sent == 4096);

  const ByteReader liar = [](char*, std::size_t max) { return max + 1; };
  CHECK(pump_upload(100, 64, liar, send, {}).stop == Stop::source_overran);
}

TEST_CASE("an upload stops at the first failed send, and nothing is sent for size 0", "[pump]") {
  const std::string data = pattern(3000);
  int sends = 0;
  const StreamSend failing = [&](const char*, std::size_t size) {
    return ++sends == 2 ? -1 : static_cast<int>(size);
  };
  const auto failed = pump_upload(data.size(), 1000, reader_of(data, 1000), failing, {});
  CHECK(failed.stop == Stop::send_failed);
  CHECK(failed.sent == 1000);
  CHECK(sends == 2);

  sends = 0;
  CHECK(pump_upload(0, 1000, reader_of(data, 1000), failing, {}).sent == 0);
  CHECK(sends == 0);
}
