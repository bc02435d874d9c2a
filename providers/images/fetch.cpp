// The curl side of image fetching (transfer.h): the only file that includes <curl/curl.h>.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include "providers/images/transfer.h"
#include "providers/redact.h"

namespace kumo::images {
namespace {

constexpr std::size_t kMaxTextBytes = 16u << 20;
constexpr long kMaxRedirects = 10;

struct CurlCleanup {
  void operator()(CURL* curl) const noexcept { curl_easy_cleanup(curl); }
};
using CurlHandle = std::unique_ptr<CURL, CurlCleanup>;

// curl_global_init must run once before any handle exists and is not thread-safe in every
// libcurl build, while fetches start on several threads at once. It is never undone: a fetch
// may still be running on another thread when main returns.
CurlHandle new_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return CurlHandle(curl_easy_init());
}

// What one HTTP exchange produced. curl reports transport errors; HTTP errors arrive as a
// status (no CURLOPT_FAILONERROR, whose docs admit some codes slip through) with the reason
// phrase kept for messages.
struct Response {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string reason;
  std::string detail;  // curl's error buffer: more specific than curl_easy_strerror
  std::optional<std::uint64_t> range_start;
  std::optional<std::uint64_t> content_length;
  std::string location;    // where a redirect pointed
  std::string sink_error;  // why we stopped taking the headers or the body
  bool sink_transient = false;
  bool discard = false;  // what we hold of the file is no use (too big)
};

struct Exchange {
  Response response;
  std::function<bool(const char*, std::size_t)> body;  // false stops the transfer
  ProgressTick progress;
  std::uint64_t max_size = 0;  // 0: no limit
};

bool succeeded(const Response& r) {
  return r.code == CURLE_OK && (r.status == 200 || r.status == 206);
}

bool transient(const Response& r) {
  if (!r.sink_error.empty()) return r.sink_transient;
  if (r.code == CURLE_OK) return r.status >= 500 || r.status == 429;
  switch (r.code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:  // the server closed the connection before the end
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

std::string status_text(long status, const std::string& reason) {
  if (!reason.empty()) return std::to_string(status) + " " + reason;
  // HTTP/2 has no reason phrase.
  static constexpr std::pair<long, const char*> kKnown[] = {{400, "Bad Request"},
                                                            {401, "Unauthorized"},
                                                            {403, "Forbidden"},
                                                            {404, "Not Found"},
                                                            {410, "Gone"},
                                                            {416, "Range Not Satisfiable"},
                                                            {429, "Too Many Requests"},
                                                            {500, "Internal Server Error"},
                                                            {502, "Bad Gateway"},
                                                            {503, "Service Unavailable"},
                                                            {504, "Gateway Timeout"}};
  for (const auto& [code, text] : kKnown) {
    if (code == status) return std::to_string(status) + " " + text;
  }
  return "HTTP status " + std::to_string(status);
}

std::string describe(const Response& r) {
  if (!r.sink_error.empty()) return r.sink_error;
  if (r.code == CURLE_OK) return status_text(r.status, r.reason);
  std::string text = r.detail.empty() ? curl_easy_strerror(r.code) : r.detail;
  // "Failed to connect..." reads as the end of our own sentence once lowercased.
  if (text.size() > 1 && std::isupper(static_cast<unsigned char>(text[0])) &&
      std::islower(static_cast<unsigned char>(text[1]))) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  if (r.code == CURLE_PEER_FAILED_VERIFICATION) text += " (for a private CA, set ca_bundle)";
  return text;
}

bool stop(Response& r, std::string why, bool transient) {
  r.sink_error = std::move(why);
  r.sink_transient = transient;
  return false;
}

// `lead` ends in "more": "the server sent more", "the server announces 70 GiB, more".
bool too_big(Response& r, const std::string& lead, std::uint64_t max_size) {
  r.discard = true;
  return stop(r,
              lead + " than max_size (" + size_text(max_size) +
                  "): the download was stopped and its part file removed",
              false);
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

// "HTTP/1.1 206 Partial Content": a new response begins (redirects bring several).
void parse_status_line(std::string_view line, Response& r) {
  r = Response{};
  const auto space = line.find(' ');
  if (space == std::string_view::npos) return;
  line.remove_prefix(space + 1);
  const auto end = line.find(' ');
  r.status = std::strtol(std::string(line.substr(0, end)).c_str(), nullptr, 10);
  if (end != std::string_view::npos) r.reason = std::string(line.substr(end + 1));
}

// "Content-Range: bytes 100-999/1000" → 100.
std::optional<std::uint64_t> parse_range_start(std::string_view value) {
  const auto bytes = value.find("bytes ");
  if (bytes == std::string_view::npos) return std::nullopt;
  const std::string digits(value.substr(bytes + 6, value.find('-') - bytes - 6));
  if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits[0]))) return std::nullopt;
  return std::strtoull(digits.c_str(), nullptr, 10);
}

std::string_view header_value(std::string_view line, std::size_t name_length) {
  line.remove_prefix(name_length);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  return line;
}

// The end of a response's headers: refuse a file that says it is bigger than allowed before
// any of it arrives. A 206's total is what we hold plus what it sends.
bool headers_done(Exchange& exchange) {
  Response& r = exchange.response;
  if (!succeeded(r) || !r.content_length || exchange.max_size == 0) return true;
  const std::uint64_t total = r.range_start.value_or(0) + *r.content_length;
  if (total <= exchange.max_size) return true;
  return too_big(r, "the server announces " + size_text(total) + ", more", exchange.max_size);
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  Response& r = exchange->response;
  std::string_view line(data, size * count);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {
    parse_status_line(line, r);
  } else if (starts_with_nocase(line, "content-range:")) {
    r.range_start = parse_range_start(line.substr(14));
  } else if (starts_with_nocase(line, "content-length:")) {
    const std::string digits(header_value(line, 15));
    if (!digits.empty() && std::isdigit(static_cast<unsigned char>(digits[0])))
      r.content_length = std::strtoull(digits.c_str(), nullptr, 10);
  } else if (starts_with_nocase(line, "location:")) {
    r.location = header_value(line, 9);
  } else if (line.empty() && !headers_done(*exchange)) {
    return 0;  // a short count stops curl (CURLE_WRITE_ERROR)
  }
  return size * count;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  const std::size_t n = size * count;
  if (!succeeded(exchange->response)) return n;  // an error page: read and dropped
  return exchange->body(data, n) ? n : 0;        // a short count stops curl (CURLE_WRITE_ERROR)
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* exchange = static_cast<Exchange*>(user);
  if (exchange->progress && succeeded(exchange->response)) {
    exchange->progress(static_cast<std::uint64_t>(dlnow), static_cast<std::uint64_t>(dltotal));
  }
  return 0;
}

bool is_https(const std::string& url) {
  return starts_with_nocase(url, "https://");
}

// What curl must refuse for `url`: other protocols than http(s), and, from https, a redirect
// to plain http (which would hand the rest of the exchange to anyone on the path).
void set_protocols(CURL* c, const std::string& url) {
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, is_https(url) ? "https" : "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, kMaxRedirects);
}

// curl's own words for two failures, in ours: a refused downgrade names where it led.
void explain(const std::string& url, const TransferOptions& options, Response& r) {
  if (r.code == CURLE_UNSUPPORTED_PROTOCOL && is_https(url) && !r.location.empty()) {
    r.sink_error = "refused the server's redirect to " + redact_url(r.location) +
                   ": an https download is only ever redirected to https";
    r.sink_transient = false;
  } else if (r.code == CURLE_OPERATION_TIMEDOUT &&
             std::string_view(r.detail).substr(0, 18) == "Operation too slow") {
    r.detail = "stalled: less than " +
               size_text(static_cast<std::uint64_t>(options.low_speed_bytes)) + "/s for " +
               std::to_string(options.low_speed_time.count()) + " s";
  }
}

void set_limits(CURL* c, const TransferOptions& options) {
  const auto connect_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.connect_timeout).count();
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_ms));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.low_speed_time.count()));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (options.ca_bundle) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_bundle->c_str());
}

// One GET. `from` > 0 asks for the rest of the file with CURLOPT_RANGE rather than
// CURLOPT_RESUME_FROM_LARGE: with the latter, curl itself fails a 200 answer (the server
// ignoring the range), where we would rather take the full body and start over.
Response perform(const std::string& url, const TransferOptions& options, std::uint64_t from,
                 Exchange& exchange) {
  CurlHandle curl = new_curl();
  if (!curl) {
    exchange.response.code = CURLE_FAILED_INIT;
    return exchange.response;
  }
  CURL* c = curl.get();
  char detail[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // several threads fetch at once: no SIGALRM
  set_protocols(c, url);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "kumo/" KUMO_VERSION);
  set_limits(c, options);
  exchange.max_size = options.max_size;
  if (from > 0) curl_easy_setopt(c, CURLOPT_RANGE, (std::to_string(from) + "-").c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &exchange);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &exchange);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &exchange);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  exchange.response.code = curl_easy_perform(c);
  exchange.response.detail = detail;
  explain(url, options, exchange.response);
  return exchange.response;
}

// Appends a body chunk to the part, starting over if the server ignored the Range request.
bool take_body(Response& r, PartFile& part, std::uint64_t offset, bool& restarted,
               std::uint64_t max_size, const char* data, std::size_t n) {
  if (r.status == 200 && offset > 0 && !restarted) {
    restarted = true;
    if (!part.truncate()) return stop(r, "cannot empty " + part.path(), false);
  }
  if (r.status == 206 && r.range_start != offset) {
    part.truncate();
    return stop(
        r,
        "the server answered a request for bytes " + std::to_string(offset) + "- with other bytes",
        true);
  }
  if (max_size > 0 && part.size() + n > max_size) {
    return too_big(r, "the server sent more", max_size);
  }
  if (!part.append(data, n)) {
    return stop(r, "cannot write " + part.path() + ": " + errno_text(errno), false);
  }
  return true;
}

Response attempt_download(const std::string& url, PartFile& part, bool resume,
                          const TransferOptions& options, const ProgressTick& tick) {
  Exchange exchange;
  if (!resume && part.size() > 0 && !part.truncate()) {
    stop(exchange.response, "cannot empty " + part.path(), false);
    return exchange.response;
  }
  const std::uint64_t offset = part.size();
  bool restarted = false;
  exchange.body = [&](const char* data, std::size_t n) {
    return take_body(exchange.response, part, offset, restarted, options.max_size, data, n);
  };
  exchange.progress = [&](std::uint64_t now, std::uint64_t total) {
    const std::uint64_t base = exchange.response.status == 206 ? offset : 0;
    if (tick) tick(base + now, total > 0 ? base + total : 0);
  };
  Response r = perform(url, options, offset, exchange);
  if (r.code == CURLE_OK && r.status == 416 && offset > 0) {
    // We hold more bytes than the file has now: it changed upstream. Start over.
    part.truncate();
    stop(r, status_text(r.status, r.reason) + " when resuming at byte " + std::to_string(offset),
         true);
  }
  return r;
}

std::chrono::milliseconds backoff(int attempt) {
  return std::chrono::milliseconds(500L << std::min(attempt, 6));  // 0.5 s, 1 s, 2 s... 32 s
}

TransferResult with_retries(const TransferOptions& options,
                            const std::function<Response()>& attempt) {
  for (int i = 0;; ++i) {
    const Response r = attempt();
    if (succeeded(r)) return {true, ""};
    if (!transient(r) || i >= options.retries) {
      std::string error = describe(r);
      if (i > 0) error += " (gave up after " + std::to_string(i + 1) + " attempts)";
      return {false, error, r.discard};
    }
    std::this_thread::sleep_for(backoff(i));
  }
}

}  // namespace

// "64 GiB", "1.5 MiB", "900 bytes".
std::string size_text(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  std::uint64_t whole = bytes, rest = 0;
  while (whole >= 1024 && unit < 5) {
    rest = whole % 1024;
    whole /= 1024;
    ++unit;
  }
  std::string text = std::to_string(whole);
  if (rest != 0) text += "." + std::to_string(rest * 10 / 1024);
  return text + " " + kUnits[unit];
}

TransferResult download(const std::string& url, PartFile& part, bool resume,
                        const TransferOptions& options, const ProgressTick& tick) {
  return with_retries(options, [&] { return attempt_download(url, part, resume, options, tick); });
}

std::optional<std::uint64_t> content_length(const std::string& url,
                                            const TransferOptions& options) {
  CurlHandle curl = new_curl();
  if (!curl) return std::nullopt;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  set_protocols(c, url);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "kumo/" KUMO_VERSION);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  set_limits(c, options);
  if (curl_easy_perform(c) != CURLE_OK) return std::nullopt;
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t length = -1;
  curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  if (status != 200 || length < 0) return std::nullopt;
  return static_cast<std::uint64_t>(length);
}

TransferResult download_text(const std::string& url, const TransferOptions& options,
                             std::string* text) {
  return with_retries(options, [&] {
    text->clear();
    Exchange exchange;
    exchange.body = [&](const char* data, std::size_t n) {
      if (text->size() + n > kMaxTextBytes) {
        return stop(exchange.response, "larger than 16 MiB: not a checksum list", false);
      }
      text->append(data, n);
      return true;
    };
    return perform(url, options, 0, exchange);
  });
}

}  // namespace kumo::images
