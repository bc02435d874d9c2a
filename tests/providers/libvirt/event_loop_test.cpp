// kumo's libvirt event loop, through libvirt's own entry points (virEventAddHandle and friends
// call the implementation kumo registered): handles are dispatched for what they watch and no
// more, updates are seen within kLazyUpdate (at once when eager), timers fire at their frequency
// and stop, and free callbacks run after removal, never inside it. The loop does not spin on a
// socket that stays readable while its callback leaves it be (a thread in a call reads it), nor
// wake for a timer pushed back.
#include "providers/libvirt/event_loop.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include "providers/libvirt/connection.h"

using namespace kumo::libvirt;
using namespace std::chrono_literals;

namespace {

struct Watched {
  std::atomic<int> calls{0}, last_events{0}, freed{0};
  std::atomic<bool> freed_in_remove{false};  // on the thread that removed it
  std::thread::id remover = std::this_thread::get_id();
};

void on_handle(int /*watch*/, int fd, int events, void* opaque) {
  auto* w = static_cast<Watched*>(opaque);
  char buf[64];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  w->last_events = events;
  ++w->calls;
}

// As libvirt's client does while a thread is in a call: leaves what came for that thread.
void on_handle_leaving_it(int /*watch*/, int /*fd*/, int /*events*/, void* opaque) {
  ++static_cast<Watched*>(opaque)->calls;
}

void on_timer(int /*timer*/, void* opaque) {
  ++static_cast<Watched*>(opaque)->calls;
}

void on_free(void* opaque) {
  auto* w = static_cast<Watched*>(opaque);
  if (std::this_thread::get_id() == w->remover) w->freed_in_remove = true;
  ++w->freed;
}

// Waits up to `limit` for `done`.
template <typename F>
bool within(std::chrono::milliseconds limit, F done) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class Pipe {
 public:
  Pipe() { REQUIRE(::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) == 0); }
  ~Pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int read_end() const { return fds_[0]; }
  void poke() const { REQUIRE(::write(fds_[1], "x", 1) == 1); }

 private:
  int fds_[2] = {-1, -1};
};

}  // namespace

TEST_CASE("a handle is dispatched for what it watches, updates are seen, removal frees later",
          "[event-loop]") {
  ensure_libvirt_ready();
  Pipe pipe;
  Watched w;
  const int watch =
      virEventAddHandle(pipe.read_end(), VIR_EVENT_HANDLE_READABLE, on_handle, &w, on_free);
  REQUIRE(watch > 0);
  pipe.poke();
  REQUIRE(within(2s, [&] { return w.calls > 0; }));
  CHECK((w.last_events & VIR_EVENT_HANDLE_READABLE) != 0);

  // Not watched (a thread in a call holds the socket): nothing is dispatched, however long.
  virEventUpdateHandle(watch, 0);
  std::this_thread::sleep_for(kLazyUpdate + 50ms);  // the loop has looked again by now
  const int before = w.calls;
  pipe.poke();
  std::this_thread::sleep_for(kLazyUpdate + 50ms);
  CHECK(w.calls == before);

  // Watched again: what waits is dispatched within the lazy bound.
  virEventUpdateHandle(watch, VIR_EVENT_HANDLE_READABLE);
  CHECK(within(kLazyUpdate * 3, [&] { return w.calls > before; }));

  // Eager (kumo console): seen at once, well within the lazy bound.
  set_eager_updates(true);
  virEventUpdateHandle(watch, 0);
  std::this_thread::sleep_for(kLazyUpdate + 50ms);
  const int eager_before = w.calls;
  pipe.poke();
  const auto t0 = std::chrono::steady_clock::now();
  virEventUpdateHandle(watch, VIR_EVENT_HANDLE_READABLE);
  REQUIRE(within(2s, [&] { return w.calls > eager_before; }));
  CHECK(std::chrono::steady_clock::now() - t0 < kLazyUpdate / 2);
  set_eager_updates(false);

  CHECK(virEventRemoveHandle(watch) == 0);
  CHECK(virEventRemoveHandle(watch) == -1);  // once
  REQUIRE(within(kLazyUpdate * 3, [&] { return w.freed == 1; }));
  CHECK_FALSE(w.freed_in_remove);
  const int after = w.calls;
  pipe.poke();
  std::this_thread::sleep_for(kLazyUpdate + 50ms);
  CHECK(w.calls == after);  // a removed handle is never dispatched
}

TEST_CASE("a timer fires at its frequency, stops when turned off, and is freed after removal",
          "[event-loop]") {
  ensure_libvirt_ready();
  Watched w;
  const int timer = virEventAddTimeout(10, on_timer, &w, on_free);
  REQUIRE(timer > 0);
  // Not held to the lazy bound: a timer wakes the loop.
  CHECK(within(kLazyUpdate / 2, [&] { return w.calls >= 3; }));
  virEventUpdateTimeout(timer, -1);
  std::this_thread::sleep_for(30ms);
  const int stopped = w.calls;
  std::this_thread::sleep_for(100ms);
  CHECK(w.calls == stopped);
  virEventUpdateTimeout(timer, 0);  // every turn of the loop
  CHECK(within(kLazyUpdate / 2, [&] { return w.calls >= stopped + 5; }));
  CHECK(virEventRemoveTimeout(timer) == 0);
  REQUIRE(within(kLazyUpdate * 3, [&] { return w.freed == 1; }));
  CHECK_FALSE(w.freed_in_remove);
  const int removed = w.calls;
  std::this_thread::sleep_for(50ms);
  CHECK(w.calls == removed);
  CHECK(event_loop_stats().timers == 0);
}

TEST_CASE("a handle left readable by its callback is dispatched now and then, not in a spin",
          "[event-loop]") {
  ensure_libvirt_ready();
  Pipe pipe;
  Watched w;
  const int watch = virEventAddHandle(pipe.read_end(), VIR_EVENT_HANDLE_READABLE,
                                      on_handle_leaving_it, &w, on_free);
  REQUIRE(watch > 0);
  const auto turns_before = event_loop_stats().iterations;
  pipe.poke();  // readable from now on: nothing reads it
  REQUIRE(within(2s, [&] { return w.calls > 0; }));
  std::this_thread::sleep_for(300ms);
  // Still served (an idle connection's keepalive is read by the callback), but at most once per
  // rest of 10 ms: about 30 in 300 ms. Without the rest: tens of thousands.
  CHECK(w.calls >= 5);
  CHECK(w.calls <= 60);
  CHECK(event_loop_stats().iterations - turns_before <= 120);

  // Eager (kumo console): every turn, at once.
  set_eager_updates(true);
  const int eager_before = w.calls;
  virEventUpdateHandle(watch, VIR_EVENT_HANDLE_READABLE);
  std::this_thread::sleep_for(50ms);
  CHECK(w.calls > eager_before + 60);
  set_eager_updates(false);

  CHECK(virEventRemoveHandle(watch) == 0);
  REQUIRE(within(kLazyUpdate * 3, [&] { return w.freed == 1; }));
}

TEST_CASE("a timer pushed back does not wake the loop, one brought forward does", "[event-loop]") {
  ensure_libvirt_ready();
  Watched w;
  const int timer = virEventAddTimeout(5000, on_timer, &w, on_free);
  REQUIRE(timer > 0);
  std::this_thread::sleep_for(20ms);  // the loop has seen it, and waits for kLazyUpdate at most
  const auto wakeups_before = event_loop_stats().wakeups;
  for (int i = 0; i < 100; ++i) virEventUpdateTimeout(timer, 5000);  // keepalive, per message
  CHECK(event_loop_stats().wakeups - wakeups_before <= 1);
  CHECK(w.calls == 0);

  // Brought forward (or made due every turn): the loop wakes for it, well within the lazy bound.
  std::this_thread::sleep_for(5ms);
  const auto t0 = std::chrono::steady_clock::now();
  virEventUpdateTimeout(timer, 0);
  REQUIRE(within(2s, [&] { return w.calls > 0; }));
  CHECK(std::chrono::steady_clock::now() - t0 < kLazyUpdate / 2);
  CHECK(event_loop_stats().wakeups > wakeups_before);
  CHECK(virEventRemoveTimeout(timer) == 0);
  REQUIRE(within(kLazyUpdate * 3, [&] { return w.freed == 1; }));
}
