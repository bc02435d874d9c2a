// Typed, located reads of yaml-cpp nodes. Every problem becomes a Diagnostic at the node that
// caused it; a failed read returns nullopt and loading goes on, so all errors are reported at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "planner/config/diagnostics.h"
#include "planner/config/interpolate.h"
#include "planner/config/sensitive.h"

namespace kumo {

// n[key] when n is a mapping that has key; otherwise an undefined node. (yaml-cpp throws on
// operator[] of a scalar or list, and missing keys give invalid nodes that reset() rejects.)
inline YAML::Node child(const YAML::Node& n, const char* key) {
  if (n.IsDefined() && n.IsMap() && n[key].IsDefined()) return n[key];
  return YAML::Node(YAML::NodeType::Undefined);
}
inline bool has(const YAML::Node& n, const char* key) {
  return child(n, key).IsDefined();
}

class Reader {
 public:
  Reader(std::string file, Diagnostics& diags, const Interpolator& interp)
      : file_(std::move(file)), diags_(diags), interp_(interp) {}

  Location loc(const YAML::Node& n) const;
  void error(const YAML::Node& n, const std::string& message) { diags_.error(loc(n), message); }
  void warning(const YAML::Node& n, const std::string& message) { diags_.warning(loc(n), message); }
  Diagnostics& diagnostics() { return diags_; }
  const Interpolator& interpolator() const { return interp_; }
  const std::string& file() const { return file_; }

  // The entries of a mapping, in file order, after reporting duplicate keys, non-scalar keys and
  // keys not in `allowed` (with a did-you-mean). A null node is an empty mapping. Returns nullopt
  // (after an error) when the node is not a mapping.
  struct Entry {
    std::string key;
    YAML::Node value;
    YAML::Node key_node;  // where the name was written: objects are reported there
  };
  using Entries = std::vector<Entry>;
  std::optional<Entries> mapping(const YAML::Node& n, const std::string& what,
                                 const std::vector<std::string>& allowed);
  // The same for mappings whose keys are names the user chooses (vms, networks, ...).
  std::optional<Entries> named_mapping(const YAML::Node& n, const std::string& what);

  std::optional<std::string> string(const YAML::Node& n, const std::string& what);
  std::optional<int> integer(const YAML::Node& n, const std::string& what, int min, int max);
  std::optional<double> number(const YAML::Node& n, const std::string& what, double min_exclusive);
  std::optional<bool> boolean(const YAML::Node& n, const std::string& what);
  std::optional<std::uint64_t> size(const YAML::Node& n, const std::string& what);
  std::optional<std::chrono::seconds> duration(const YAML::Node& n, const std::string& what);
  std::optional<std::vector<std::string>> string_list(const YAML::Node& n, const std::string& what);

  template <typename E>
  std::optional<E> choice(const YAML::Node& n, const std::string& what,
                          const std::vector<std::pair<std::string, E>>& options) {
    auto s = string(n, what);
    if (!s) return std::nullopt;
    std::vector<std::string> names;
    for (auto& [name, value] : options) {
      if (*s == name) return value;
      names.push_back(name);
    }
    error(n, what + ": " + shown(*s) + " is not one of " + join(names) +
                 (last_sensitive_ ? "" : did_you_mean_(*s, names)));
    return std::nullopt;
  }

  // Arbitrary YAML (cloud-init structures) as JSON: plain scalars get YAML 1.2 core types,
  // quoted ones stay strings; every string is interpolated.
  std::optional<nlohmann::json> any(const YAML::Node& n, const std::string& what);

  // Sensitivity marks. While a Mark lives, every value read that used a sensitive variable adds
  // `field` to `into` (marks nest: a NIC's "ip" and its VM's "networks" are both marked).
  class Mark {
   public:
    Mark(Reader& r, SensitiveFields& into, std::string field);
    ~Mark();
    Mark(const Mark&) = delete;
    Mark& operator=(const Mark&) = delete;

   private:
    Reader& r_;
  };
  [[nodiscard]] Mark mark(SensitiveFields& into, std::string field) {
    return Mark(*this, into, std::move(field));
  }
  // Whether the value read last (for any(): anything in it) used a sensitive variable.
  bool last_sensitive() const { return last_sensitive_; }
  // The value read last, quoted for a message; masked when it is sensitive.
  std::string shown(const std::string& value) const {
    return last_sensitive_ ? std::string(kSensitiveMask) : quote(value);
  }
  // A message about the value read last, or a generic one when that value is sensitive (parse
  // errors quote the text they could not parse).
  std::string hide(const std::string& message) const {
    return last_sensitive_ ? "not valid (the value is sensitive, so it is not shown)" : message;
  }
  // A located error when the value read last is sensitive: names and references are shown in
  // every plan, so they cannot be secret. Returns true when it refused.
  bool refuse_sensitive(const YAML::Node& n, const std::string& what);

  static std::string join(const std::vector<std::string>& items);
  static std::string type_name(const YAML::Node& n);

 private:
  static std::string did_you_mean_(const std::string& word, const std::vector<std::string>& names);
  bool scalar_text(const YAML::Node& n, const std::string& what, std::string& out);
  // depth guards against recursive aliases; budget against alias bombs (a&b&c... fan-out).
  std::optional<nlohmann::json> any_at(const YAML::Node& n, const std::string& what, int depth,
                                       long& budget);

  std::string file_;
  Diagnostics& diags_;
  const Interpolator& interp_;
  std::vector<std::pair<SensitiveFields*, std::string>> marks_;
  bool last_sensitive_ = false;
  bool any_sensitive_ = false;  // since the outermost any() began
};

}  // namespace kumo
