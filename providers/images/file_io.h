// POSIX file plumbing for the image cache: an owned descriptor, an exclusive lock file, and
// reads/copies that feed a Hasher as the bytes go past. Private to providers/images/.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "providers/digest.h"

namespace kumo::images {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release();

 private:
  int fd_ = -1;
};

// An exclusive flock(2) on `path`, created if missing and removed on release. Removing a lock
// file others may be waiting on is safe only because acquire() re-checks, after locking, that
// the path still names the file it locked (and starts over if not).
class FileLock {
 public:
  static FileLock acquire(const std::string& path, std::string* error);
  FileLock(FileLock&&) noexcept = default;
  FileLock& operator=(FileLock&&) noexcept = default;
  ~FileLock();
  explicit operator bool() const { return static_cast<bool>(fd_); }

 private:
  FileLock() = default;
  std::string path_;
  Fd fd_;
};

// A download or copy in progress: the file, open for appending, and a hasher that has seen
// every byte in it, so resuming never rereads what is already there.
class PartFile {
 public:
  // Opens or creates `path`; keeps and rehashes its bytes when `keep`, else empties it.
  static std::optional<PartFile> open(const std::string& path, ChecksumAlgo algo, bool keep,
                                      std::string* error);
  bool append(const char* data, std::size_t size);
  bool truncate();  // back to zero bytes, e.g. when a server ignores a Range request
  bool sync();
  std::uint64_t size() const { return size_; }
  const Hasher& hasher() const { return hasher_; }
  const std::string& path() const { return path_; }

 private:
  PartFile(std::string path, Fd fd, Hasher hasher)
      : path_(std::move(path)), fd_(std::move(fd)), hasher_(std::move(hasher)) {}
  std::string path_;
  Fd fd_;
  Hasher hasher_;
  std::uint64_t size_ = 0;
};

// "No such file or directory" for errno ENOENT.
std::string errno_text(int err);

bool write_all(int fd, const char* data, std::size_t size);

// Feeds every byte of an open file to `hasher`, from the start; *size gets the byte count.
bool hash_fd(int fd, Hasher& hasher, std::uint64_t* size, std::string* error);

// Copies `from` to a new file `to`, hashing the copy. Tries a reflink (FICLONE) first: instant
// and sharing no later writes, unlike a hard link, which would let an in-place edit of the
// user's file change a cache entry that claims to be verified. `tick` gets bytes done so far.
bool copy_hashing(const std::string& from, const std::string& to, Hasher& hasher,
                  const std::function<void(std::uint64_t)>& tick, std::string* error);

}  // namespace kumo::images
