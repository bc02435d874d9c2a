#include "providers/libvirt/console.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include <libvirt/virterror.h>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/event_loop.h"

namespace kumo::libvirt {
namespace {

struct Pump {
  virStreamPtr stream = nullptr;
  int out_fd = 1;
  std::atomic<bool> done{false};
  std::mutex mutex;   // held by on_stream while it runs
  std::string error;  // under mutex
};

void write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Runs in libvirt's event thread whenever the stream has something.
void on_stream(virStreamPtr stream, int events, void* opaque) {
  auto* p = static_cast<Pump*>(opaque);
  std::lock_guard<std::mutex> lock(p->mutex);  // run_console waits for it before leaving
  if (events & (VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_HANGUP)) {
    char buf[4096];
    for (;;) {
      const int n = virStreamRecv(stream, buf, sizeof buf);
      if (n > 0) {
        write_all(p->out_fd, buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == -2) break;  // nothing more for now
      if (n < 0) p->error = last_error().message;
      p->done = true;  // 0: the console was closed
      break;
    }
  }
  if ((events & VIR_STREAM_EVENT_ERROR) && !p->done) {
    p->error = "the console stream failed";
    p->done = true;
  }
}

// Sends everything, waiting while the stream is full. false when the stream failed.
bool send_all(Pump& p, const char* data, std::size_t n) {
  while (n > 0 && !p.done) {
    const int w = virStreamSend(p.stream, data, n);
    if (w == -2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (w < 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

std::size_t bytes_before_escape(const char* data, std::size_t n) {
  const void* at = std::memchr(data, kConsoleEscape, n);
  return at == nullptr ? n : static_cast<std::size_t>(static_cast<const char*>(at) - data);
}

ConsoleEnd run_console(const HostTarget& host, const std::string& domain, bool force,
                       std::chrono::milliseconds timeout, int in_fd, int out_fd) {
  ConsoleEnd end;
  const std::string where = "vm." + domain + " on " + host.name;
  OpenResult opened = open_connection(host, timeout);
  if (!opened.conn) {
    end.error = opened.error;
    return end;
  }
  DomainHandle dom(virDomainLookupByName(opened.conn.get(), domain.c_str()));
  if (!dom) {
    end.error = where + ": no such domain (" + last_error().message + ")";
    return end;
  }
  StreamHandle stream(virStreamNew(opened.conn.get(), VIR_STREAM_NONBLOCK));
  if (!stream) {
    end.error = where + ": cannot make a stream: " + last_error().message;
    return end;
  }
  if (virDomainOpenConsole(dom.get(), nullptr, stream.get(),
                           force ? VIR_DOMAIN_CONSOLE_FORCE : VIR_DOMAIN_CONSOLE_SAFE) < 0) {
    const LibvirtError e = last_error();
    end.error = where + ": cannot open its serial console: " + e.message;
    if (e.message.find("session") != std::string::npos ||
        e.message.find("busy") != std::string::npos)
      end.error += " (another session holds it: kumo console --force takes it over)";
    return end;
  }
  // The guest's output shows as it comes: the event loop looks at once when the console's
  // socket is watched again after each keystroke sent.
  set_eager_updates(true);
  Pump pump;
  pump.stream = stream.get();
  pump.out_fd = out_fd;
  if (virStreamEventAddCallback(
          stream.get(),
          VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP, on_stream,
          &pump, nullptr) < 0) {
    end.error = where + ": cannot watch the console stream: " + last_error().message;
    virStreamAbort(stream.get());
    return end;
  }
  char buf[1024];
  while (!pump.done) {
    pollfd pfd{in_fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, 100);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(in_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the end of input: leave as with the escape byte
    const std::size_t keep = bytes_before_escape(buf, static_cast<std::size_t>(n));
    if (!send_all(pump, buf, keep)) {
      const std::string why = last_error().message;
      std::lock_guard<std::mutex> lock(pump.mutex);
      if (pump.error.empty()) pump.error = why;
      break;
    }
    if (keep < static_cast<std::size_t>(n)) break;  // the escape byte: leave
  }
  virStreamEventRemoveCallback(stream.get());
  std::lock_guard<std::mutex> lock(pump.mutex);  // no callback runs past this point
  const bool closed_by_guest = pump.done.load();
  virStreamAbort(stream.get());  // as virsh console leaves
  virResetLastError();
  if (!pump.error.empty()) {
    end.error = where + ": the console failed: " + pump.error;
  } else if (closed_by_guest) {
    end.error = where +
                ": the console was closed (the VM stopped, or another session took it "
                "over with --force)";
  } else {
    end.ok = true;
  }
  return end;
}

}  // namespace kumo::libvirt
