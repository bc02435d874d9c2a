// Where an image comes from, as plain data: no network, no file system. ImageSource and
// ImageFormat are what the rest of kumo hands to providers/images/ (planner builds them from
// kumo.yaml's images); everything else here is private to providers/images/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "providers/digest.h"
#include "providers/redact.h"

namespace kumo::images {

enum class ImageFormat { Auto, Qcow2, Raw };

// The most an image download may bring unless kumo.yaml says otherwise (max_size).
constexpr std::uint64_t kDefaultMaxImageSize = std::uint64_t{64} << 30;

const char* to_string(ImageFormat v);  // "auto", "qcow2", "raw"

// One base image to fetch, describe or find in the cache: everything providers/images/ needs to
// know about it. Errors name it by `name`.
struct ImageSource {
  std::string name;
  std::optional<std::string> url;   // http(s):// or file://
  std::optional<std::string> path;  // absolute
  std::optional<Checksum> checksum;
  std::optional<std::string> checksum_url;  // a SHA256SUMS/SHA512SUMS file
  bool checksum_none = false;               // "checksum: none": never verified
  ImageFormat format = ImageFormat::Auto;
  std::optional<std::string> ca_bundle;           // absolute path of a PEM file for TLS
  std::uint64_t max_size = kDefaultMaxImageSize;  // bytes a download may bring; 0: no limit
};

enum class SourceKind { Http, Local };

// An ImageSource's url or path, resolved: where the bytes are and how to name them.
struct ResolvedSource {
  SourceKind kind = SourceKind::Local;
  std::string location;   // the URL to download (Http) or the local file's path (Local)
  std::string display;    // for messages: the URL or path with any user:password redacted
  std::string file_name;  // what a SHA256SUMS file calls it: the last path segment
};

// http(s):// → Http; file:// and `path` → Local. nullopt (with *error set) for an image with
// neither or a file:// URL kumo cannot turn into a local path.
std::optional<ResolvedSource> resolve_source(const ImageSource& image, std::string* error);

// The last path segment of a URL (query and fragment dropped) or of a path.
std::string file_name_of(std::string_view url_or_path);

// "file:///srv/a%20b.qcow2" and "file://localhost/srv/x" → the path; nullopt for a file URL
// naming another host. Not for other schemes.
std::optional<std::string> path_of_file_url(std::string_view url);

bool is_http_url(std::string_view url);
bool is_file_url(std::string_view url);

}  // namespace kumo::images
