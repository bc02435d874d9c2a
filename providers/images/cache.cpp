#include "providers/images/cache.h"

#include <sys/stat.h>

#include <array>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

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

bool write_metadata(const std::string& path, const nlohmann::json& meta, std::string* error) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << meta.dump(2) << '\n';
    if (!out.flush()) {
      *error = "cannot write " + tmp;
      return false;
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) *error = "cannot write " + path + ": " + ec.message();
  return !ec;
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
  std::error_code ec;
  fs::create_directories(dir_ + "/tmp", ec);
  if (ec) *error = "cannot create the image cache " + dir_ + "/tmp: " + ec.message();
  return !ec;
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
  fs::create_directories(fs::path(object).parent_path(), ec);
  const auto size = ec ? 0 : fs::file_size(part, ec);
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
  fs::permissions(part, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, ec);
  fs::rename(part, object, ec);
  if (ec) {
    *error = "cannot move " + part + " to " + object + ": " + ec.message();
    return std::nullopt;
  }
  return CachedImage{object, checksum, size, format, true};
}

}  // namespace kumo::images
