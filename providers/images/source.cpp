#include "providers/images/source.h"

namespace kumo::images {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

}  // namespace

const char* to_string(ImageFormat v) {
  switch (v) {
    case ImageFormat::Auto:
      return "auto";
    case ImageFormat::Qcow2:
      return "qcow2";
    case ImageFormat::Raw:
      return "raw";
  }
  return "?";
}

bool is_http_url(std::string_view url) {
  return starts_with(url, "http://") || starts_with(url, "https://");
}

bool is_file_url(std::string_view url) {
  return starts_with(url, "file://");
}

std::string file_name_of(std::string_view url_or_path) {
  std::string_view path = url_or_path;
  if (const auto scheme_end = path.find("://"); scheme_end != std::string_view::npos) {
    path = path.substr(0, path.find_first_of("?#", scheme_end + 3));
  }
  const auto slash = path.rfind('/');
  return percent_decode(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::optional<std::string> path_of_file_url(std::string_view url) {
  std::string_view rest = url.substr(std::string_view("file://").size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view host = rest.substr(0, slash);
  if (!host.empty() && host != "localhost") return std::nullopt;
  return percent_decode(rest.substr(slash));
}

std::optional<ResolvedSource> resolve_source(const ImageSource& image, std::string* error) {
  ResolvedSource source;
  if (image.path) {
    source.location = source.display = *image.path;
  } else if (image.url && is_http_url(*image.url)) {
    source.kind = SourceKind::Http;
    source.location = *image.url;
    source.display = redact_url(*image.url);
  } else if (image.url && is_file_url(*image.url)) {
    auto path = path_of_file_url(*image.url);
    if (!path) {
      *error = "image \"" + image.name + "\": " + redact_url(*image.url) +
               " names another host; a file:// URL must be a local file (file:///path)";
      return std::nullopt;
    }
    source.location = *path;
    source.display = redact_url(*image.url);
  } else {
    *error = "image \"" + image.name + "\": no url or path to fetch it from";
    return std::nullopt;
  }
  source.file_name = file_name_of(source.kind == SourceKind::Http ? *image.url : source.location);
  return source;
}

}  // namespace kumo::images
