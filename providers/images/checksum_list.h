// SHA256SUMS / SHA512SUMS files, as published next to cloud images. Pure text in, checksum out.
// Private to providers/images/.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/digest.h"

namespace kumo::images {

struct ChecksumListEntry {
  Checksum checksum;
  std::string name;
};

// Lines `HEX  name` (text mode) and `HEX *name` (binary mode) as sha256sum/sha512sum write them,
// and the BSD form `SHA256 (name) = HEX` that Fedora publishes. The algorithm follows the hex
// length (64: sha256, 128: sha512); other lines (comments, PGP armour, md5) are skipped.
std::vector<ChecksumListEntry> parse_checksum_list(std::string_view text);

// The entry for `file_name`, or nullopt and an error naming the image, the list and up to five
// names it does list, so a typo or a renamed release is obvious.
std::optional<Checksum> checksum_for(std::string_view list_text, const std::string& file_name,
                                     const std::string& image_name, const std::string& list_display,
                                     std::string* error);

}  // namespace kumo::images
