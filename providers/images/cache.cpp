#include "providers/images/cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "providers/images/file_io.h"

namespace fs = std::filesystem;

namespace kumo::images {
namespace {

std::string env_value(const std::map<std::string, std::string>& env, const std::string& key) {
  const auto it = env.find(key);
  return it == env.end() ? "" : it->second;
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Owner-only, like everything kumo writes into the cache: where an image came from is nobody
// else's business.
bool write_metadata(const std::string& path, const nlohmann::json& meta, std::string* error) {
  const std::string tmp = path + ".tmp";
  const std::string text = meta.dump(2) + "\n";
  ::unlink(tmp.c_str());  // left by a crash, perhaps with wider permissions
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out || !write_all(out.get(), text.data(), text.size())) {
    *error = "cannot write " + tmp + ": " + errno_text(errno);
    return false;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) *error = "cannot write " + path + ": " + ec.message();
  return !ec;
}

// A cache directory, owner-only: created 0700 (with any missing parents), and narrowed to 0700
// if an older kumo left it open to others.
bool make_private_dir(const std::string& dir, std::string* error) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    const auto parent = fs::path(dir).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec) && !make_private_dir(parent, error))
      return false;
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = "cannot create " + dir + ": " + errno_text(errno);
      return false;
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0 &&
      ::chmod(dir.c_str(), st.st_mode & 0700) != 0) {
    *error = "cannot make " + dir + " private (chmod 0700): " + errno_text(errno);
    return false;
  }
  return true;
}

}  // namespace

std::string default_cache_dir(const std::map<std::string, std::string>& env) {
  const std::string xdg = env_value(env, "XDG_CACHE_HOME");
  if (!xdg.empty() && xdg.front() == '/') return xdg + "/kumo/images";
  const std::string home = env_value(env, "HOME");
  if (!home.empty()) return home + "/.cache/kumo/images";
  return "";
}

std::string detect_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::array<char, 4> magic{};
  in.read(magic.data(), magic.size());
  const bool qcow2 = in.gcount() == 4 && magic == std::array<char, 4>{'Q', 'F', 'I', '\xfb'};
  return qcow2 ? "qcow2" : "raw";
}

std::string format_mismatch(const ImageSource& image, const std::string& display,
                            const std::string& detected) {
  if (image.format == ImageFormat::Auto || detected == to_string(image.format)) return "";
  return "image \"" + image.name + "\": format: " + to_string(image.format) + " is declared, but " +
         display + " is a " + detected + " image";
}

std::optional<CachedImage> find_cached(const ImageSource& /*image*/, const Checksum& checksum,
                                       const std::string& cache_dir) {
  const std::string path = ImageCache(cache_dir).object_path(checksum);
  struct stat st {};
  if (cache_dir.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return std::nullopt;
  }
  return CachedImage{path, checksum, static_cast<std::uint64_t>(st.st_size), detect_format(path),
                     false};
}

bool ImageCache::prepare(std::string* error) const {
  std::string why;
  if (!make_private_dir(dir_, &why) || !make_private_dir(dir_ + "/tmp", &why)) {
    *error = "cannot create the image cache " + dir_ + ": " + why;
    return false;
  }
  return true;
}

std::string ImageCache::object_path(const Checksum& checksum) const {
  return dir_ + "/" + to_string(checksum.algo) + "/" + checksum.hex;
}

std::string ImageCache::part_path(const std::string& key) const {
  return dir_ + "/tmp/" + key + ".part";
}

std::string ImageCache::lock_path(const std::string& key) const {
  return dir_ + "/tmp/" + key + ".lock";
}

std::optional<CachedImage> ImageCache::commit(const std::string& part, const Checksum& checksum,
                                              const std::string& source_display,
                                              std::string* error) const {
  const std::string object = object_path(checksum);
  std::error_code ec;
  std::string why;
  if (!make_private_dir(fs::path(object).parent_path(), &why)) {
    *error = "cannot add " + part + " to the image cache: " + why;
    return std::nullopt;
  }
  const auto size = fs::file_size(part, ec);
  if (ec) {
    *error = "cannot add " + part + " to the image cache: " + ec.message();
    return std::nullopt;
  }
  const std::string format = detect_format(part);
  const nlohmann::json meta = {{"source", source_display},
                               {"checksum", checksum.str()},
                               {"size", size},
                               {"format", format},
                               {"fetched_at", utc_now()}};
  if (!write_metadata(object + ".json", meta, error)) return std::nullopt;
  // Read-only: VMs' overlays use it as a backing file, nobody should write to it.
  fs::permissions(part, fs::perms::owner_read, ec);
  fs::rename(part, object, ec);
  if (ec) {
    *error = "cannot move " + part + " to " + object + ": " + ec.message();
    return std::nullopt;
  }
  return CachedImage{object, checksum, size, format, true};
}

}  // namespace kumo::images
