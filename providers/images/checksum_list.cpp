#include "providers/images/checksum_list.h"

#include <algorithm>
#include <cctype>

namespace kumo::images {
namespace {

constexpr std::size_t kNamesInError = 5;

bool is_hex(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::optional<Checksum> checksum_of_hex(std::string_view hex) {
  if (!is_hex(hex) || (hex.size() != 64 && hex.size() != 128)) return std::nullopt;
  Checksum sum{hex.size() == 64 ? ChecksumAlgo::Sha256 : ChecksumAlgo::Sha512, std::string(hex)};
  std::transform(sum.hex.begin(), sum.hex.end(), sum.hex.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return sum;
}

std::string clean_name(std::string_view name) {
  if (name.substr(0, 2) == "./") name.remove_prefix(2);
  return std::string(name);
}

// "HEX  name" or "HEX *name".
std::optional<ChecksumListEntry> parse_gnu_line(std::string_view line) {
  const auto space = line.find(' ');
  if (space == std::string_view::npos || space + 2 > line.size()) return std::nullopt;
  if (line[space + 1] != ' ' && line[space + 1] != '*') return std::nullopt;
  auto sum = checksum_of_hex(line.substr(0, space));
  if (!sum || space + 2 == line.size()) return std::nullopt;
  return ChecksumListEntry{*sum, clean_name(line.substr(space + 2))};
}

// "SHA256 (name) = HEX".
std::optional<ChecksumListEntry> parse_bsd_line(std::string_view line) {
  const auto open = line.find(" (");
  const auto close = line.rfind(") = ");
  if (open == std::string_view::npos || close == std::string_view::npos || close <= open + 2) {
    return std::nullopt;
  }
  const std::string_view tag = line.substr(0, open);
  if (tag != "SHA256" && tag != "SHA512") return std::nullopt;
  auto sum = checksum_of_hex(line.substr(close + 4));
  if (!sum || (tag == "SHA256") != (sum->algo == ChecksumAlgo::Sha256)) return std::nullopt;
  return ChecksumListEntry{*sum, clean_name(line.substr(open + 2, close - open - 2))};
}

std::string listed_names(const std::vector<ChecksumListEntry>& entries) {
  if (entries.empty()) return "it lists no sha256 or sha512 checksums";
  std::string out = "it lists ";
  for (std::size_t i = 0; i < entries.size() && i < kNamesInError; ++i) {
    out += (i == 0 ? "" : ", ") + entries[i].name;
  }
  if (entries.size() > kNamesInError) {
    out += " and " + std::to_string(entries.size() - kNamesInError) + " more";
  }
  return out;
}

}  // namespace

std::vector<ChecksumListEntry> parse_checksum_list(std::string_view text) {
  std::vector<ChecksumListEntry> entries;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto entry = parse_gnu_line(line)) {
      entries.push_back(std::move(*entry));
    } else if (auto bsd = parse_bsd_line(line)) {
      entries.push_back(std::move(*bsd));
    }
  }
  return entries;
}

std::optional<Checksum> checksum_for(std::string_view list_text, const std::string& file_name,
                                     const std::string& image_name, const std::string& list_display,
                                     std::string* error) {
  const auto entries = parse_checksum_list(list_text);
  for (const auto& entry : entries) {
    if (entry.name == file_name) return entry.checksum;
  }
  *error = "image \"" + image_name + "\": " + file_name + " is not listed in " + list_display +
           " (" + listed_names(entries) + ")";
  return std::nullopt;
}

}  // namespace kumo::images
