// Sizes ("512MiB", "20G") and durations ("90s", "10m") as people write them in kumo.yaml.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>

namespace kumo {

// What is wrong with a value, without its location (the caller knows where it was written).
struct ParseError {
  ParseError(std::string m) : message(std::move(m)) {}
  ParseError(const char* m) : message(m) {}
  std::string message;
};

// Either a parsed value or what is wrong with it.
template <typename T>
using Parsed = std::variant<T, ParseError>;

// Binary units only: K/KiB, M/MiB, G/GiB, T/TiB (G == GiB). A bare number is rejected so that
// "memory: 512" cannot silently mean bytes, KiB or MiB.
Parsed<std::uint64_t> parse_size(const std::string& text);

// "1.5 GiB", "512 MiB": exact where possible, one decimal otherwise.
std::string format_size(std::uint64_t bytes);

// "90s", "10m", "1h", "1h30m". A bare number is rejected.
Parsed<std::chrono::seconds> parse_duration(const std::string& text);
std::string format_duration(std::chrono::seconds d);

}  // namespace kumo
