#include "planner/config/units.h"

#include <cctype>
#include <cstdio>
#include <limits>

namespace kumo {
namespace {

constexpr std::uint64_t KiB = 1024;

struct Unit {
  const char* name;
  std::uint64_t factor;
};

constexpr Unit kSizeUnits[] = {
    {"K", KiB},
    {"KiB", KiB},
    {"M", KiB* KiB},
    {"MiB", KiB* KiB},
    {"G", KiB* KiB* KiB},
    {"GiB", KiB* KiB* KiB},
    {"T", KiB* KiB* KiB* KiB},
    {"TiB", KiB* KiB* KiB* KiB},
};

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

}  // namespace

Parsed<std::uint64_t> parse_size(const std::string& raw) {
  const std::string text = trim(raw);
  size_t i = 0;
  std::uint64_t whole = 0;
  bool digits = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (whole > std::numeric_limits<std::uint64_t>::max() / 10)
      return "size " + text + " is too large";
    whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
    digits = true;
    ++i;
  }
  std::uint64_t frac_num = 0, frac_den = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (frac_den < 1000000) {
        frac_num = frac_num * 10 + static_cast<std::uint64_t>(text[i] - '0');
        frac_den *= 10;
      }
      digits = true;
      ++i;
    }
  }
  if (!digits) return "\"" + text + "\" is not a size (write e.g. 512MiB, 2GiB or 20G)";
  const std::string unit = trim(text.substr(i));
  if (unit.empty()) {
    return "size " + text + " has no unit (write " + text + "MiB or " + text + "GiB)";
  }
  for (const Unit& u : kSizeUnits) {
    if (unit == u.name) {
      if (whole > std::numeric_limits<std::uint64_t>::max() / u.factor) {
        return "size " + text + " is too large";
      }
      const std::uint64_t bytes = whole * u.factor + frac_num * u.factor / frac_den;
      if (bytes == 0) return "size " + text + " must be greater than zero";
      return bytes;
    }
  }
  std::string hint = "use K, M, G or T (binary: KiB, MiB, GiB, TiB)";
  if (unit == "B" || unit == "b") hint = "sizes in bytes are not accepted; " + hint;
  if (unit == "MB" || unit == "GB" || unit == "TB" || unit == "KB" || unit == "mb" ||
      unit == "gb" || unit == "m" || unit == "g" || unit == "mib" || unit == "gib") {
    std::string up;
    for (char c : unit) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    hint = "did you mean " + std::string(1, up[0]) + "iB? kumo sizes are binary";
  }
  return "unknown unit \"" + unit + "\" in size \"" + text + "\" (" + hint + ")";
}

std::string format_size(std::uint64_t bytes) {
  const char* names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int idx = 0;
  std::uint64_t factor = 1;
  while (idx < 4 && bytes >= factor * 1024) {
    factor *= 1024;
    ++idx;
  }
  if (bytes % factor == 0) return std::to_string(bytes / factor) + " " + names[idx];
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s",
                static_cast<double>(bytes) / static_cast<double>(factor), names[idx]);
  return buf;
}

Parsed<std::chrono::seconds> parse_duration(const std::string& raw) {
  const std::string text = trim(raw);
  if (text.empty()) return std::string("empty duration (write e.g. 90s, 10m or 1h)");
  long long total = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    long long n = 0;
    bool digits = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n > 100000000) return "duration \"" + text + "\" is too large";
      n = n * 10 + (text[i] - '0');
      digits = true;
      ++i;
    }
    if (!digits) return "\"" + text + "\" is not a duration (write e.g. 90s, 10m or 1h30m)";
    if (i == text.size()) {
      return "duration \"" + text + "\" has no unit (write " + std::to_string(n) + "s or " +
             std::to_string(n) + "m)";
    }
    const char u = text[i++];
    if (u == ' ' || u == '.' || u == ',') {
      return "duration \"" + text + "\": write whole numbers with s, m or h, e.g. 90s, 5m or 1h30m";
    }
    switch (u) {
      case 's':
        total += n;
        break;
      case 'm':
        total += n * 60;
        break;
      case 'h':
        total += n * 3600;
        break;
      default:
        return "unknown unit \"" + std::string(1, u) + "\" in duration \"" + text +
               "\" (use s, m or h)";
    }
    any = true;
  }
  if (!any || total == 0) return "duration \"" + text + "\" must be greater than zero";
  return std::chrono::seconds(total);
}

std::string format_duration(std::chrono::seconds d) {
  long long s = d.count();
  std::string out;
  if (s >= 3600) {
    out += std::to_string(s / 3600) + "h";
    s %= 3600;
  }
  if (s >= 60) {
    out += std::to_string(s / 60) + "m";
    s %= 60;
  }
  if (s > 0 || out.empty()) out += std::to_string(s) + "s";
  return out;
}

}  // namespace kumo
