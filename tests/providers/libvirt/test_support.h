// A host that never answers, for the timeout tests.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "providers/host_session.h"

namespace kumo::testing {

// The message of the HostError f() throws; the test fails when it throws none.
template <typename F>
std::string host_error(F&& f) {
  try {
    f();
  } catch (const HostError& e) {
    return e.what();
  }
  FAIL("no HostError was thrown");
  return "";
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
