// Helpers for tests that need a host which never answers, and a way to see that the threads
// kumo leaves behind do finish.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

namespace kumo::testing {

using namespace std::chrono_literals;

inline int thread_count() {
  int n = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

// Abandoned openers are detached threads; the only outside sign that one finished is that the
// process has one thread fewer.
inline bool threads_settle_to(int expected, std::chrono::milliseconds within = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (thread_count() > expected) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A unix socket that listens but never accepts: connect() succeeds (the kernel queues it) and
// libvirt then waits forever for an answer. Closing it resets the queued connection.
class SilentSocket {
 public:
  SilentSocket() {
    char dir_template[] = "/tmp/kumo-silent-XXXXXX";
    dir_ = ::mkdtemp(dir_template);
    path_ = dir_ + "/sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
  }
  ~SilentSocket() {
    close();
    std::filesystem::remove_all(dir_);
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

}  // namespace kumo::testing
