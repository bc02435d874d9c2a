// Fetching base images into the local cache (cache.h): downloads over http(s) with resume,
// retries and checksum verification, and copies of local files, so the rest of kumo only ever
// sees verified cache paths. fetch.cpp is the only code that includes <curl/curl.h>.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "providers/images/cache.h"
#include "providers/images/source.h"

namespace kumo::images {

struct FetchProgress {
  std::string image;                  // the image's name in kumo.yaml
  std::uint64_t done = 0, total = 0;  // bytes; total is 0 while unknown
  double bytes_per_s = 0;
  bool finished = false;  // the last call for this fetch, success or not
};

struct FetchOptions {
  std::string cache_dir;  // see default_cache_dir()
  int retries = 4;        // further attempts after a transient failure, 0.5 s, 1 s, 2 s... apart
  std::chrono::seconds connect_timeout{15};
  long low_speed_bytes = 1024;  // a transfer slower than this (bytes/s) for low_speed_time
  std::chrono::seconds low_speed_time{30};  // ...has stalled: abandoned (and retried)
  std::optional<std::string> ca_bundle;     // trusted CAs for images without their own ca_bundle
  // Called on the fetching thread, at most ~4 times a second, then once with finished=true.
  std::function<void(const FetchProgress&)> on_progress;
};

struct FetchResult {
  std::optional<CachedImage> image;
  std::string error;  // names the image and the (redacted) URL or path; empty on success
};

// FetchOptions for `cache_dir` with what the environment says: CURL_CA_BUNDLE, else
// SSL_CERT_FILE, is the CA file for images without a ca_bundle (libcurl itself reads neither);
// KUMO_DOWNLOAD_STALL_SECONDS replaces the stall time (for tests). nullopt with *error set for
// a stall time that is not a number of seconds.
std::optional<FetchOptions> fetch_options(const std::string& cache_dir,
                                          const std::map<std::string, std::string>& env,
                                          std::string* error);

// The image in the cache, fetching it first unless its checksum is already there (then no
// network request at all). Safe to call from several threads and processes at once: one
// fetches a given image, the others wait and find it cached.
FetchResult fetch_image(const ImageSource& image, const FetchOptions& options);

// The checksum the image must have: `checksum` as written, or the line for the image's file
// name in `checksum_url`'s SHA256SUMS/SHA512SUMS file (downloaded, or read for file://).
// nullopt with *error empty for `checksum: none` and for local files without one (the caller
// warns); nullopt with *error set when the list cannot be fetched or does not name the file.
std::optional<Checksum> resolve_checksum(const ImageSource& image, const FetchOptions& options,
                                         std::string* error);

// What `kumo plan` says about an image without fetching it: its checksum (reading checksum_url,
// or hashing a local file that has none), whether the cache has it, and its size (from the
// cache, the local file, or a HEAD request; 0 when unknown). `error` names the image.
struct ImageFacts {
  std::optional<Checksum> checksum;  // nullopt: checksum: none (only the download tells)
  bool cached = false;
  std::uint64_t size = 0;
  std::string error;
};
ImageFacts describe_image(const ImageSource& image, const FetchOptions& options);

}  // namespace kumo::images
