#include "providers/redact.h"

#include <algorithm>

namespace kumo {
namespace {

constexpr std::string_view kRedacted = "(redacted)";

// Where a URL's parts are: [0, authority) "scheme://", [authority, host) "userinfo@" (empty when
// there is none), then the host and path up to `query` ('?', or the end) and `fragment` ('#').
struct UrlParts {
  std::size_t authority = 0, host = 0, query = 0, fragment = 0;
};

bool split(std::string_view url, UrlParts& p) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return false;
  p.authority = scheme_end + 3;
  p.fragment = std::min(url.find('#', p.authority), url.size());
  p.query = std::min(url.find('?', p.authority), p.fragment);
  const auto path = std::min(url.find('/', p.authority), p.query);
  // The last '@' before the path: a password may hold an unescaped '@'.
  const auto at = url.substr(0, path).rfind('@');
  p.host = at == std::string_view::npos || at < p.authority ? p.authority : at + 1;
  return true;
}

// "a=1&b&c=" → "a=(redacted)&b&c=(redacted)"
std::string redact_query(std::string_view query) {
  std::string out;
  while (true) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    out += eq == std::string_view::npos
               ? std::string(pair)
               : std::string(pair.substr(0, eq + 1)) + std::string(kRedacted);
    if (amp == std::string_view::npos) return out;
    out += '&';
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

std::string redact_url(std::string_view url) {
  UrlParts p;
  if (!split(url, p)) return std::string(url);
  std::string out(url.substr(0, p.authority));
  if (p.host > p.authority) out += std::string(kRedacted) + "@";
  out += url.substr(p.host, p.query - p.host);
  if (p.query < p.fragment) {
    out += '?';
    out += redact_query(url.substr(p.query + 1, p.fragment - p.query - 1));
  }
  out += url.substr(p.fragment);
  return out;
}

std::string redact_host_uri(std::string_view uri) {
  UrlParts p;
  if (!split(uri, p) || p.host == p.authority) return std::string(uri);
  const std::string_view userinfo = uri.substr(p.authority, p.host - 1 - p.authority);
  const auto colon = userinfo.find(':');
  if (colon == std::string_view::npos) return std::string(uri);
  return std::string(uri.substr(0, p.authority + colon + 1)) + std::string(kRedacted) +
         std::string(uri.substr(p.host - 1));
}

std::string strip_url_secrets(std::string_view url) {
  UrlParts p;
  if (!split(url, p)) return std::string(url);
  return std::string(url.substr(0, p.authority)) +
         std::string(url.substr(p.host, p.query - p.host));
}

}  // namespace kumo
