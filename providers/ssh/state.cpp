#include "providers/ssh/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace kumo::ssh {
namespace {

constexpr const char* kUuidMark = "kumo-domain-uuid=";

std::runtime_error fail(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    throw std::runtime_error("cannot create kumo's state directory " + path + ": " + ec.message() +
                             " (set XDG_STATE_HOME to a writable directory)");
  }
}

// One lock per known_hosts, between threads (the mutex) and processes (flock on a side file).
class FileLock {
 public:
  explicit FileLock(const std::string& path) : guard_(mutex()) {
    fd_ = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw fail("cannot open", path + ".lock");
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw fail("cannot lock", path + ".lock");
    }
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  std::lock_guard<std::mutex> guard_;
  int fd_ = -1;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::string state_dir(const std::string& cluster) {
  std::string base;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && x[0] == '/') {
    base = x;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    base = std::string(home) + "/.local/state";
  } else {
    throw std::runtime_error(
        "neither XDG_STATE_HOME nor HOME is set to an absolute path: kumo has nowhere to keep "
        "the SSH host keys it learns; set XDG_STATE_HOME");
  }
  const std::string dir = base + "/kumo/" + cluster;
  make_dirs(dir);
  ::chmod((base + "/kumo").c_str(), 0700);
  ::chmod(dir.c_str(), 0700);
  return dir;
}

std::optional<KnownKeys> known_keys(const std::string& path, const std::string& alias) {
  std::istringstream in(read_all(path));
  KnownKeys out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name, type, key, comment;
    fields >> name >> type >> key >> comment;
    if (name != alias || key.empty()) continue;
    out.keys.push_back(type + " " + key);
    if (comment.rfind(kUuidMark, 0) == 0) out.uuid = comment.substr(std::strlen(kUuidMark));
  }
  if (out.keys.empty()) return std::nullopt;
  return out;
}

void write_private_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw fail("cannot write", tmp);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw fail("cannot write", tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw fail("cannot write", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw fail("cannot replace", path);
  }
}

void remember_keys(const std::string& path, const std::string& alias, const std::string& uuid,
                   const std::vector<std::string>& keys) {
  FileLock lock(path);
  std::istringstream in(read_all(path));
  std::string text;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name != alias) text += line + "\n";
  }
  for (const auto& key : keys) text += alias + " " + key + " " + kUuidMark + uuid + "\n";
  write_private_file(path, text);
}

}  // namespace kumo::ssh
