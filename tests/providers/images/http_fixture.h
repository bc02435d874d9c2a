// Test support for the image fetch tests: temp dirs, the loopback HTTP server of
// http_fixture.py as an RAII child process, and a listener that never accepts.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "providers/images/transfer.h"

namespace kumo::testing {

class TempDir {
 public:
  TempDir() {
    char dir_template[] = "/tmp/kumo-images-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    path_ = dir_template;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// `size` bytes of noise from a fixed seed; a qcow2 image's magic in front when asked.
inline std::string random_bytes(std::size_t size, bool qcow2_magic, unsigned seed = 12) {
  std::mt19937 gen(seed);
  std::string bytes(size, '\0');
  for (auto& c : bytes) c = static_cast<char>(gen() & 0xff);
  if (qcow2_magic) bytes.replace(0, 4, "QFI\xfb");
  if (!qcow2_magic && bytes.compare(0, 4, "QFI\xfb") == 0) bytes[0] = 'x';
  return bytes;
}

// http_fixture.py serving `root` on a loopback port, started with fork/exec (no shell) and
// killed when this goes out of scope, also when a REQUIRE fails half way through a test.
class HttpFixture {
 public:
  // With a `tls_dir`, https: the server's self-signed certificate is tls_dir/cert.pem.
  explicit HttpFixture(const std::string& root, const std::string& tls_dir = "")
      : scheme_(tls_dir.empty() ? "http" : "https"), tls_dir_(tls_dir) {
    const char* script = KUMO_SOURCE_DIR "/tests/providers/images/http_fixture.py";
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      // -I -S: the standard library only, whatever the environment has installed or set.
      if (tls_dir.empty()) {
        ::execlp("python3", "python3", "-I", "-S", script, root.c_str(),
                 static_cast<char*>(nullptr));
      } else {
        ::execlp("python3", "python3", "-I", "-S", script, root.c_str(), "--tls", tls_dir.c_str(),
                 static_cast<char*>(nullptr));
      }
      ::_exit(127);
    }
    ::close(out[1]);
    port_ = read_port(out[0]);
    ::close(out[0]);
    REQUIRE(port_ > 0);
  }
  ~HttpFixture() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  HttpFixture(const HttpFixture&) = delete;
  HttpFixture& operator=(const HttpFixture&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path_and_query) const {
    return scheme_ + "://127.0.0.1:" + std::to_string(port_) + path_and_query;
  }

  // Per path: requests, range_requests, bytes (body bytes sent).
  nlohmann::json stats(const std::string& path) const {
    std::string text;
    images::TransferOptions options;
    if (!tls_dir_.empty()) options.ca_bundle = tls_dir_ + "/cert.pem";
    const auto r = images::download_text(url("/_stats"), options, &text);
    REQUIRE(r.error == "");
    const auto all = nlohmann::json::parse(text);
    if (!all.contains(path)) return {{"requests", 0}, {"range_requests", 0}, {"bytes", 0}};
    return all[path];
  }
  int requests(const std::string& path) const { return stats(path)["requests"].get<int>(); }

 private:
  static int read_port(int fd) {
    std::string line;
    char c;
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 10000) == 1 && ::read(fd, &c, 1) == 1 && c != '\n') line += c;
    return std::atoi(line.c_str());
  }
  std::string scheme_, tls_dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A TCP port whose accept queue is full: new connections get no SYN-ACK, so connecting
// times out (rather than being refused) without leaving the loopback interface.
class BlackholeListener {
 public:
  BlackholeListener() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(listener_, 0) == 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    for (int i = 0; i < 3; ++i) {  // fill the queue
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fillers_.push_back(fd);
    }
    ::usleep(100 * 1000);
  }
  ~BlackholeListener() {
    for (int fd : fillers_) ::close(fd);
    ::close(listener_);
  }
  BlackholeListener(const BlackholeListener&) = delete;
  BlackholeListener& operator=(const BlackholeListener&) = delete;
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

}  // namespace kumo::testing
