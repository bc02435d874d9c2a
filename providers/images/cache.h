// The local image cache: content-addressed, so an image is fetched once per checksum whatever
// URL, cluster or process asks for it.
//
//   <cache>/sha256/<hex>        the image, read-only, only ever renamed into place once verified
//   <cache>/sha256/<hex>.json   where it came from: source (redacted), size, format, fetched_at
//   <cache>/tmp/<key>.part      a download or copy in progress (resumable)
//   <cache>/tmp/<key>.lock      flock'ed by the one process fetching <key>
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "providers/images/source.h"

namespace kumo::images {

struct CachedImage {
  std::string path;  // <cache>/<algo>/<hex>
  Checksum checksum;
  std::uint64_t size = 0;
  std::string format;       // "qcow2" or "raw", from the file's first bytes
  bool downloaded = false;  // this call put it into the cache (a download or a local copy)
};

// $XDG_CACHE_HOME/kumo/images, else $HOME/.cache/kumo/images; "" when neither is set (the
// caller says so). A relative XDG_CACHE_HOME is ignored, as the XDG spec asks.
std::string default_cache_dir(const std::map<std::string, std::string>& env);

// The cache entry for `checksum`, without touching the network or rehashing: entries are only
// renamed into place after verification. The format is what the file is; fetch_image is the
// one that compares it with the format the image declares.
std::optional<CachedImage> find_cached(const ImageSource& image, const Checksum& checksum,
                                       const std::string& cache_dir);

// "qcow2" when the file starts with qcow2's magic QFI\xfb, else "raw"; "" if unreadable.
std::string detect_format(const std::string& path);

// The error for an image whose declared format is not the detected one; "" when they agree
// or nothing is declared.
std::string format_mismatch(const ImageSource& image, const std::string& display,
                            const std::string& detected);

class ImageCache {
 public:
  explicit ImageCache(std::string dir) : dir_(std::move(dir)) {}

  bool prepare(std::string* error) const;  // creates <cache>/tmp
  std::string object_path(const Checksum& checksum) const;
  std::string part_path(const std::string& key) const;
  std::string lock_path(const std::string& key) const;

  // Moves a verified, fsync'ed part file into place (read-only) next to its metadata.
  std::optional<CachedImage> commit(const std::string& part, const Checksum& checksum,
                                    const std::string& source_display, std::string* error) const;

 private:
  std::string dir_;
};

}  // namespace kumo::images
