#include "providers/libvirt/event_loop.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace kumo::libvirt {
namespace {

using Clock = std::chrono::steady_clock;

// A handle dispatched is not watched again for this long (but when eager). libvirt's callback
// for a connection's socket does nothing while a thread is in a call on it (that thread reads the
// reply), so the socket stays readable: watched without a pause, the loop spun on it, 18 turns
// per libvirt call on a plan of 3,000 VMs (111,000 turns, 0.2 s of CPU). An idle connection's
// message (keepalive) waits at most this long.
constexpr std::chrono::milliseconds kDispatchQuiet{10};

struct Handle {
  int id = 0, fd = -1, events = 0;  // id: the watch
  virEventHandleCallback cb = nullptr;
  void* opaque = nullptr;
  virFreeCallback ff = nullptr;
  bool deleted = false;
  Clock::time_point quiet_until{};  // not watched before then (dispatched just now; lazy mode)
};

struct Timer {
  int id = 0, frequency = -1;  // ms; -1: off; 0: every turn of the loop
  Clock::time_point due;
  virEventTimeoutCallback cb = nullptr;
  void* opaque = nullptr;
  virFreeCallback ff = nullptr;
  bool deleted = false;
};

// An opaque whose free callback is due: called by the loop's thread on a clean stack (never from
// inside a remove, where libvirt may hold its own locks).
using PendingFree = std::pair<virFreeCallback, void*>;

short poll_events(int events) {
  short out = 0;
  if (events & VIR_EVENT_HANDLE_READABLE) out |= POLLIN;
  if (events & VIR_EVENT_HANDLE_WRITABLE) out |= POLLOUT;
  return out;
}

int handle_events(short revents) {
  int out = 0;
  if (revents & POLLIN) out |= VIR_EVENT_HANDLE_READABLE;
  if (revents & POLLOUT) out |= VIR_EVENT_HANDLE_WRITABLE;
  if (revents & POLLERR) out |= VIR_EVENT_HANDLE_ERROR;
  if (revents & POLLHUP) out |= VIR_EVENT_HANDLE_HANGUP;
  return out;
}

class Loop {
 public:
  static Loop& get() {
    static Loop* const loop = new Loop;  // never destroyed: its thread runs to the process's end
    return *loop;
  }

  int add_handle(int fd, int events, virEventHandleCallback cb, void* opaque, virFreeCallback ff) {
    int watch;
    {
      const std::lock_guard l(mu_);
      watch = next_id_++;
      handles_.push_back({watch, fd, events, cb, opaque, ff, false});
    }
    wake();
    return watch;
  }

  void update_handle(int watch, int events) {
    bool more = false;  // events it was not watched for
    {
      const std::lock_guard l(mu_);
      Handle* h = find(handles_, watch);
      if (h == nullptr) return;
      more = (events & ~h->events) != 0;
      h->events = events;
    }
    if (more && eager_) wake();
  }

  int remove_handle(int watch) {
    const std::lock_guard l(mu_);
    Handle* h = find(handles_, watch);
    if (h == nullptr) return -1;
    h->deleted = true;  // freed by the loop's next turn; its fd is not watched from then on
    return 0;
  }

  int add_timer(int frequency, virEventTimeoutCallback cb, void* opaque, virFreeCallback ff) {
    int id;
    {
      const std::lock_guard l(mu_);
      id = next_id_++;
      timers_.push_back({id, frequency, due_after(frequency), cb, opaque, ff, false});
    }
    wake();
    return id;
  }

  // Wakes the loop only when the timer is now due before the loop would look anyway: libvirt's
  // keepalive pushes its timer back on every message a connection receives.
  void update_timer(int id, int frequency) {
    bool sooner = false;
    {
      const std::lock_guard l(mu_);
      Timer* t = find(timers_, id);
      if (t == nullptr) return;
      t->frequency = frequency;
      t->due = due_after(frequency);
      sooner = frequency >= 0 && (eager_ || t->due < looks_again_);
    }
    if (sooner) wake();
  }

  int remove_timer(int id) {
    const std::lock_guard l(mu_);
    Timer* t = find(timers_, id);
    if (t == nullptr) return -1;
    t->deleted = true;
    return 0;
  }

  void set_eager(bool eager) { eager_ = eager; }

  EventLoopStats stats() {
    const std::lock_guard l(mu_);
    EventLoopStats s = stats_;
    s.wakeups = wakeups_;
    s.handles = static_cast<int>(std::count_if(handles_.begin(), handles_.end(),
                                               [](const Handle& h) { return !h.deleted; }));
    s.timers = static_cast<int>(
        std::count_if(timers_.begin(), timers_.end(), [](const Timer& t) { return !t.deleted; }));
    return s;
  }

  void run() {
    for (;;) turn();
  }

 private:
  Loop() : wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  template <typename T>
  static T* find(std::vector<T>& items, int id) {
    for (auto& i : items) {
      if (i.id == id && !i.deleted) return &i;
    }
    return nullptr;
  }

  static Clock::time_point due_after(int frequency) {
    return Clock::now() + std::chrono::milliseconds(std::max(frequency, 0));
  }

  void wake() {
    ++wakeups_;
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
  }

  // One turn: frees what was removed, polls what is watched and not quiet (no longer than the
  // next timer, the end of a quiet period, or kLazyUpdate), then dispatches ready handles and due
  // timers, without the lock held.
  void turn() {
    std::vector<PendingFree> frees;
    std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
    std::vector<int> watches{0};
    int timeout_ms = static_cast<int>(kLazyUpdate.count());
    {
      const std::lock_guard l(mu_);
      ++stats_.iterations;
      collect_frees(frees);
      const auto now = Clock::now();
      for (const auto& h : handles_) {
        if (h.events == 0) continue;
        if (h.quiet_until > now) {
          const auto left = std::chrono::ceil<std::chrono::milliseconds>(h.quiet_until - now);
          timeout_ms = std::min<int>(timeout_ms, static_cast<int>(left.count()));
          continue;
        }
        fds.push_back({h.fd, poll_events(h.events), 0});
        watches.push_back(h.id);
      }
      for (const auto& t : timers_) {
        if (t.frequency < 0) continue;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(t.due - now).count();
        timeout_ms = std::min<int>(timeout_ms, static_cast<int>(std::max<long long>(left, 0)));
      }
      looks_again_ = now + std::chrono::milliseconds(timeout_ms);
    }
    for (const auto& [ff, opaque] : frees) ff(opaque);
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
    }
    for (std::size_t i = 1; ready > 0 && i < fds.size(); ++i) {
      if (fds[i].revents != 0) dispatch(watches[i], fds[i].revents);
    }
    fire_timers();
  }

  // Deleted handles and timers leave the lists; their free callbacks go to `frees`.
  void collect_frees(std::vector<PendingFree>& frees) {
    auto take = [&](auto& items) {
      for (const auto& i : items) {
        if (i.deleted && i.ff != nullptr) frees.emplace_back(i.ff, i.opaque);
      }
      std::erase_if(items, [](const auto& i) { return i.deleted; });
    };
    take(handles_);
    take(timers_);
  }

  // A handle still watched for what came (updated since the poll began: only what it wants now).
  void dispatch(int watch, short revents) {
    virEventHandleCallback cb = nullptr;
    void* opaque = nullptr;
    int fd = -1, events = 0;
    {
      const std::lock_guard l(mu_);
      Handle* h = find(handles_, watch);
      if (h == nullptr || h->events == 0) return;
      events =
          handle_events(revents) & (h->events | VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP);
      if (events == 0) return;
      cb = h->cb;
      opaque = h->opaque;
      fd = h->fd;
      ++stats_.dispatched;
      if (!eager_) h->quiet_until = Clock::now() + kDispatchQuiet;
    }
    cb(watch, fd, events, opaque);
  }

  void fire_timers() {
    std::vector<std::pair<int, Timer>> due;
    {
      const std::lock_guard l(mu_);
      const auto now = Clock::now();
      for (auto& t : timers_) {
        if (t.deleted || t.frequency < 0 || t.due > now) continue;
        t.due = now + std::chrono::milliseconds(t.frequency);
        due.emplace_back(t.id, t);
        ++stats_.timer_fires;
      }
    }
    for (const auto& [id, t] : due) t.cb(id, t.opaque);
  }

  std::mutex mu_;
  std::vector<Handle> handles_;
  std::vector<Timer> timers_;
  int next_id_ = 1;
  Clock::time_point looks_again_{};  // when the poll under way ends at the latest
  const int wake_fd_;
  std::atomic<bool> eager_{false};
  std::atomic<unsigned long long> wakeups_{0};
  EventLoopStats stats_;  // but wakeups, counted apart (wake() holds no lock)
};

}  // namespace

void start_event_loop() {
  virEventRegisterImpl(
      [](int fd, int events, virEventHandleCallback cb, void* opaque, virFreeCallback ff) {
        return Loop::get().add_handle(fd, events, cb, opaque, ff);
      },
      [](int watch, int events) { Loop::get().update_handle(watch, events); },
      [](int watch) { return Loop::get().remove_handle(watch); },
      [](int frequency, virEventTimeoutCallback cb, void* opaque, virFreeCallback ff) {
        return Loop::get().add_timer(frequency, cb, opaque, ff);
      },
      [](int timer, int frequency) { Loop::get().update_timer(timer, frequency); },
      [](int timer) { return Loop::get().remove_timer(timer); });
  std::thread([] { Loop::get().run(); }).detach();
}

void set_eager_updates(bool eager) {
  Loop::get().set_eager(eager);
}

EventLoopStats event_loop_stats() {
  return Loop::get().stats();
}

}  // namespace kumo::libvirt
