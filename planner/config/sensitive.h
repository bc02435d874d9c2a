// Sensitivity is a property of values: when kumo.yaml is read, every field whose value used a
// sensitive variable is marked on the object it belongs to, and the mark travels with the
// object (desired state, plan attributes). Views and messages mask by the mark; nothing ever
// searches rendered text for a secret.
#pragma once

#include <set>
#include <string>

namespace kumo {

inline constexpr const char* kSensitiveMask = "(sensitive)";

// The fields of one object (a host, image, network or VM) whose values came from a sensitive
// variable, by their key in kumo.yaml: "memory", "cloud_init", "uri", "networks".
struct SensitiveFields {
  std::set<std::string> fields;

  bool has(const std::string& field) const { return fields.count(field) > 0; }
  bool any() const { return !fields.empty(); }
  void add(const std::string& field) { fields.insert(field); }
  // `text`, or the mask when `field` is sensitive.
  std::string show(const std::string& field, const std::string& text) const {
    return has(field) ? kSensitiveMask : text;
  }
  bool operator==(const SensitiveFields&) const = default;
};

}  // namespace kumo
