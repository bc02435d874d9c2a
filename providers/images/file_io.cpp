#include "providers/images/file_io.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace kumo::images {
namespace {

constexpr std::size_t kChunk = 1 << 20;

bool fail(std::string* error, std::string text) {
  *error = std::move(text);
  return false;
}

bool same_file(int fd, const std::string& path) {
  struct stat by_fd {
  }, by_path{};
  return ::fstat(fd, &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 &&
         by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

// Reads all of `in` into `out` (when out >= 0) and `hasher`, ticking per chunk.
bool pump(int in, int out, Hasher& hasher, const std::function<void(std::uint64_t)>& tick,
          std::uint64_t* total, std::string* error) {
  std::vector<char> buffer(kChunk);
  std::uint64_t done = 0;
  for (;;) {
    const ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(error, "read failed: " + errno_text(errno));
    if (n == 0) break;
    hasher.update(buffer.data(), static_cast<std::size_t>(n));
    if (out >= 0 && !write_all(out, buffer.data(), static_cast<std::size_t>(n))) {
      return fail(error, "write failed: " + errno_text(errno));
    }
    done += static_cast<std::uint64_t>(n);
    if (tick) tick(done);
  }
  if (total) *total = done;
  return true;
}

}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

int Fd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

FileLock FileLock::acquire(const std::string& path, std::string* error) {
  FileLock lock;
  for (;;) {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) {
      *error = "cannot create " + path + ": " + errno_text(errno);
      return FileLock();
    }
    int rc;
    while ((rc = ::flock(fd.get(), LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      *error = "cannot lock " + path + ": " + errno_text(errno);
      return FileLock();
    }
    if (same_file(fd.get(), path)) {
      lock.path_ = path;
      lock.fd_ = std::move(fd);
      return lock;
    }
    // The holder before us removed the file: ours is stale, lock the new one.
  }
}

FileLock::~FileLock() {
  if (fd_) ::unlink(path_.c_str());  // while still locked, so nobody else holds this inode
}

std::optional<PartFile> PartFile::open(const std::string& path, ChecksumAlgo algo, bool keep,
                                       std::string* error) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) {
    *error = "cannot create " + path + ": " + errno_text(errno);
    return std::nullopt;
  }
  PartFile part(path, std::move(fd), Hasher(algo));
  if (!keep && !part.truncate()) {
    *error = "cannot empty " + path + ": " + errno_text(errno);
    return std::nullopt;
  }
  std::string why;
  if (keep && !hash_fd(part.fd_.get(), part.hasher_, &part.size_, &why)) {
    *error = "cannot read " + path + ": " + why;
    return std::nullopt;
  }
  return part;
}

bool PartFile::append(const char* data, std::size_t size) {
  if (!write_all(fd_.get(), data, size)) return false;
  hasher_.update(data, size);
  size_ += size;
  return true;
}

bool PartFile::truncate() {
  if (::ftruncate(fd_.get(), 0) != 0) return false;
  hasher_.reset();
  size_ = 0;
  return true;
}

bool PartFile::sync() {
  return ::fsync(fd_.get()) == 0;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool hash_fd(int fd, Hasher& hasher, std::uint64_t* size, std::string* error) {
  if (::lseek(fd, 0, SEEK_SET) < 0) return fail(error, "seek failed: " + errno_text(errno));
  return pump(fd, -1, hasher, nullptr, size, error);
}

bool copy_hashing(const std::string& from, const std::string& to, Hasher& hasher,
                  const std::function<void(std::uint64_t)>& tick, std::string* error) {
  Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return fail(error, "cannot read " + from + ": " + errno_text(errno));
  Fd out(::open(to.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return fail(error, "cannot create " + to + ": " + errno_text(errno));
  std::string why;
  bool ok;
  if (::ioctl(out.get(), FICLONE, in.get()) == 0) {
    ok = hash_fd(out.get(), hasher, nullptr, &why);  // the clone, not the source: what we keep
  } else {
    ok = pump(in.get(), out.get(), hasher, tick, nullptr, &why);
  }
  if (ok && ::fsync(out.get()) != 0) ok = fail(&why, "fsync failed: " + errno_text(errno));
  return ok || fail(error, "cannot copy " + from + " to " + to + ": " + why);
}

}  // namespace kumo::images
