// HTTP(S) transfers, as the rest of providers/images/ sees them: no curl types, errors already
// in words. Implemented in fetch.cpp, the one file that includes <curl/curl.h>.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "providers/images/file_io.h"

namespace kumo::images {

struct TransferOptions {
  int retries = 4;
  std::chrono::seconds connect_timeout{15};
  long low_speed_bytes = 1024;
  std::chrono::seconds low_speed_time{30};
  std::optional<std::string> ca_bundle;  // PEM file for CURLOPT_CAINFO; TLS is always verified
  std::uint64_t max_size = 0;            // bytes a download may have; 0: no limit
};

struct TransferResult {
  bool ok = false;
  // "404 Not Found", "connection refused (gave up after 5 attempts)": what went wrong, for a
  // message that already names the image and URL.
  std::string error;
  bool discard = false;  // the part file must not be kept for a resume (it grew too big)
};

using ProgressTick = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Downloads `url` into `part`. Bytes already in the part are kept and the rest is asked for
// with a Range request; a server that answers 200 instead of 206 is started over. Transient
// failures (connection refused or reset, timeouts, HTTP 5xx and 429) are retried with
// exponential backoff, each retry resuming where the last one stopped unless `resume` is false.
// An https URL is only ever redirected to https. A download whose Content-Length, or whose
// bytes, go beyond `max_size` stops at once (not retried, `discard` set).
TransferResult download(const std::string& url, PartFile& part, bool resume,
                        const TransferOptions& options, const ProgressTick& tick);

// "64 GiB", "1.5 MiB", "900 bytes": for messages about sizes.
std::string size_text(std::uint64_t bytes);

// A small text file, such as SHA256SUMS (at most 16 MiB), with the same retries.
TransferResult download_text(const std::string& url, const TransferOptions& options,
                             std::string* text);

// The size the server announces for `url` (a HEAD request, one attempt); nullopt when it
// says none or cannot be asked. Only for display: nothing relies on it.
std::optional<std::uint64_t> content_length(const std::string& url, const TransferOptions& options);

}  // namespace kumo::images
