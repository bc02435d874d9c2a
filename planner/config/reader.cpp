#include "planner/config/reader.h"

#include <cmath>
#include <map>

#include "planner/config/names.h"
#include "planner/config/units.h"

namespace kumo {

Location Reader::loc(const YAML::Node& n) const {
  if (!n.IsDefined() || n.Mark().is_null()) return {file_, 0, 0};
  return {file_, n.Mark().line + 1, n.Mark().column + 1};
}

std::string Reader::join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? " or " : ", ";
    out += items[i];
  }
  return out;
}

std::string Reader::did_you_mean_(const std::string& word, const std::vector<std::string>& names) {
  return did_you_mean(word, names);
}

std::string Reader::type_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return quote(n.Scalar());
    default:
      return "nothing";
  }
}

namespace {

std::optional<Reader::Entries> entries_of(Reader& r, const YAML::Node& n, const std::string& what,
                                          const std::vector<std::string>* allowed) {
  if (!n.IsDefined() || n.IsNull()) return Reader::Entries{};
  if (!n.IsMap()) {
    r.error(n, what + ": expected a mapping, got " + Reader::type_name(n));
    return std::nullopt;
  }
  Reader::Entries out;
  std::map<std::string, int> first_line;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: the iterator hands out a temporary
    if (!key.IsScalar()) {
      r.error(key, what + ": keys must be plain names, got " + Reader::type_name(key));
      continue;
    }
    const std::string k = key.Scalar();
    if (auto [pos, inserted] = first_line.emplace(k, r.loc(key).line); !inserted) {
      r.error(key, what + ": duplicate key " + quote(k) + " (first defined on line " +
                       std::to_string(pos->second) + ")");
      continue;
    }
    if (allowed) {
      bool known = false;
      for (const auto& a : *allowed) known = known || a == k;
      if (!known) {
        if (k == "<<") {
          const bool vmish = what.rfind("vm ", 0) == 0 || what == "defaults";
          r.error(key, what + ": YAML merge keys (<<) are not supported" +
                           std::string(vmish ? "; put shared VM settings under defaults:" : ""));
        } else {
          r.error(key, what + ": unknown key " + quote(k) + did_you_mean(k, *allowed));
        }
        continue;
      }
    }
    out.push_back({k, it->second, key});
  }
  return out;
}

}  // namespace

std::optional<Reader::Entries> Reader::mapping(const YAML::Node& n, const std::string& what,
                                               const std::vector<std::string>& allowed) {
  return entries_of(*this, n, what, &allowed);
}

std::optional<Reader::Entries> Reader::named_mapping(const YAML::Node& n, const std::string& what) {
  return entries_of(*this, n, what, nullptr);
}

bool Reader::scalar_text(const YAML::Node& n, const std::string& what, std::string& out) {
  if (!n.IsScalar()) {
    error(n, what + ": expected a value, got " + type_name(n));
    return false;
  }
  bool sensitive = false;
  auto expanded = interp_.expand(n.Scalar(), &sensitive);
  last_sensitive_ = sensitive;
  if (sensitive) {
    any_sensitive_ = true;
    for (auto& [into, field] : marks_) into->add(field);
  }
  if (auto* err = std::get_if<ParseError>(&expanded)) {
    error(n, what + ": " + err->message);
    return false;
  }
  out = std::get<std::string>(std::move(expanded));
  return true;
}

Reader::Mark::Mark(Reader& r, SensitiveFields& into, std::string field) : r_(r) {
  r_.marks_.emplace_back(&into, std::move(field));
}

Reader::Mark::~Mark() {
  r_.marks_.pop_back();
}

bool Reader::refuse_sensitive(const YAML::Node& n, const std::string& what) {
  if (!last_sensitive_) return false;
  error(n, what +
               ": cannot come from a sensitive variable: names and references are shown in "
               "every plan (mark the variable not sensitive, or write the name here)");
  return true;
}

std::optional<std::string> Reader::string(const YAML::Node& n, const std::string& what) {
  std::string s;
  if (!scalar_text(n, what, s)) return std::nullopt;
  return s;
}

std::optional<int> Reader::integer(const YAML::Node& n, const std::string& what, int min, int max) {
  std::string s;
  if (!scalar_text(n, what, s)) return std::nullopt;
  size_t used = 0;
  long long v = 0;
  bool ok = !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-');
  if (ok) {
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      ok = false;
    }
  }
  if (!ok || used != s.size()) {
    error(n, what + ": expected a whole number, got " + shown(s));
    return std::nullopt;
  }
  if (v < min || v > max) {
    error(n, what + ": " + (last_sensitive_ ? std::string(kSensitiveMask) : s) +
                 " is out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")");
    return std::nullopt;
  }
  return static_cast<int>(v);
}

std::optional<double> Reader::number(const YAML::Node& n, const std::string& what,
                                     double min_exclusive) {
  std::string s;
  if (!scalar_text(n, what, s)) return std::nullopt;
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || !std::isfinite(v)) {
    error(n, what + ": expected a number, got " + shown(s));
    return std::nullopt;
  }
  if (v <= min_exclusive) {
    error(n, what + ": must be greater than " + std::to_string(static_cast<int>(min_exclusive)));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Reader::boolean(const YAML::Node& n, const std::string& what) {
  std::string s;
  if (!scalar_text(n, what, s)) return std::nullopt;
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  error(n, what + ": expected true or false, got " + shown(s));
  return std::nullopt;
}

std::optional<std::uint64_t> Reader::size(const YAML::Node& n, const std::string& what) {
  std::string s;
  if (!scalar_text(n, what, s)) return std::nullopt;
  auto parsed = parse_size(s);
  if (auto* err = std::get_if<ParseError>(&parsed)) {
    error(n,
          what + ": " + (last_sensitive_ ? "not a size (the value is sensitive)" : err->message));
    return std::nullopt;
  }
  return std::get<std::uint64_t>(parsed);
}

std::optional<std::chrono::seconds> Reader::duration(const YAML::Node& n, const std::string& what) {
  std::string s;
  if (!scalar_text(n, what, s)) return std::nullopt;
  auto parsed = parse_duration(s);
  if (auto* err = std::get_if<ParseError>(&parsed)) {
    error(n, what + ": " +
                 (last_sensitive_ ? "not a duration (the value is sensitive)" : err->message));
    return std::nullopt;
  }
  return std::get<std::chrono::seconds>(parsed);
}

std::optional<std::vector<std::string>> Reader::string_list(const YAML::Node& n,
                                                            const std::string& what) {
  if (n.IsNull()) return std::vector<std::string>{};
  if (!n.IsSequence()) {
    error(n, what + ": expected a list, got " + type_name(n));
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true, secret = false;
  for (const auto& item : n) {
    auto s = string(item, what);
    secret = secret || last_sensitive_;
    if (s) {
      out.push_back(*s);
    } else {
      ok = false;
    }
  }
  last_sensitive_ = secret;  // for the list as a whole
  if (!ok) return std::nullopt;
  return out;
}

namespace {

// YAML 1.2 core schema resolution of a plain (unquoted) scalar.
nlohmann::json resolve_plain(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s == "null" || s == "Null" || s == "NULL" || s == "~" || s.empty()) return nullptr;
  if (!s.empty() &&
      (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+')) {
    // Octal-looking values such as file modes (0644) stay strings: cloud-init wants them so.
    if (s.size() > 1 && s[0] == '0' && s.find('.') == std::string::npos) return s;
    size_t used = 0;
    try {
      long long v = std::stoll(s, &used);
      if (used == s.size()) return v;
      double d = std::stod(s, &used);
      if (used == s.size()) return d;
    } catch (const std::exception&) {
    }
  }
  return s;
}

}  // namespace

std::optional<nlohmann::json> Reader::any(const YAML::Node& n, const std::string& what) {
  long budget = 100000;
  any_sensitive_ = false;
  auto out = any_at(n, what, 0, budget);
  last_sensitive_ = any_sensitive_;
  return out;
}

std::optional<nlohmann::json> Reader::any_at(const YAML::Node& n, const std::string& what,
                                             int depth, long& budget) {
  if (budget < 0) return std::nullopt;  // reported once already
  if (depth > 64) {
    error(n, what + ": nested more than 64 levels deep (a YAML alias that contains itself?)");
    budget = -1;
    return std::nullopt;
  }
  if (--budget < 0) {
    error(n, what + ": more than 100000 values (YAML aliases expanding too far?)");
    return std::nullopt;
  }
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nlohmann::json(nullptr);
    case YAML::NodeType::Scalar: {
      std::string s;
      if (!scalar_text(n, what, s)) return std::nullopt;
      // Only plain, untagged scalars ("?") get types; quoted ("!"), !!str and expanded stay text.
      if (n.Tag() != "?" || s != n.Scalar()) return nlohmann::json(s);
      return resolve_plain(s);
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      bool ok = true;
      for (const auto& item : n) {
        auto v = any_at(item, what, depth + 1, budget);
        ok = ok && v.has_value();
        if (v) arr.push_back(std::move(*v));
      }
      if (!ok) return std::nullopt;
      return arr;
    }
    case YAML::NodeType::Map: {
      auto entries = named_mapping(n, what);
      if (!entries) return std::nullopt;
      nlohmann::json obj = nlohmann::json::object();
      bool ok = true;
      for (auto& [k, v, k_node] : *entries) {
        auto value = any_at(v, what, depth + 1, budget);
        ok = ok && value.has_value();
        if (value) obj[k] = std::move(*value);
      }
      if (!ok) return std::nullopt;
      return obj;
    }
  }
  return std::nullopt;
}

}  // namespace kumo
