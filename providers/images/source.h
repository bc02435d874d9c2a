// Where an image comes from, as plain data: no network, no file system. Private to
// providers/images/.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "planner/config/model.h"

namespace kumo::images {

enum class SourceKind { Http, Local };

struct ImageSource {
  SourceKind kind = SourceKind::Local;
  std::string location;   // the URL to download (Http) or the local file's path (Local)
  std::string display;    // for messages: the URL or path with any user:password redacted
  std::string file_name;  // what a SHA256SUMS file calls it: the last path segment
};

// http(s):// → Http; file:// and `path` → Local. nullopt (with *error set) for an image with
// neither or a file:// URL kumo cannot turn into a local path.
std::optional<ImageSource> image_source(const ImageConfig& image, std::string* error);

// "https://user:secret@mirror/x" → "https://***@mirror/x". Credentials in a URL are for curl,
// never for logs or error messages.
std::string redact_url(std::string_view url);

// The last path segment of a URL (query and fragment dropped) or of a path.
std::string file_name_of(std::string_view url_or_path);

// "file:///srv/a%20b.qcow2" and "file://localhost/srv/x" → the path; nullopt for a file URL
// naming another host. Not for other schemes.
std::optional<std::string> path_of_file_url(std::string_view url);

bool is_http_url(std::string_view url);
bool is_file_url(std::string_view url);

}  // namespace kumo::images
