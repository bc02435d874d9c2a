#include "planner/config/names.h"

#include <algorithm>
#include <cctype>

#include "planner/config/diagnostics.h"

namespace kumo {
namespace {

std::optional<std::string> check(const std::string& name, bool allow_underscore) {
  if (name.empty()) return "name is empty";
  if (name.size() > 63) return "name " + quote(name) + " is longer than 63 characters";
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    (allow_underscore && c == '_');
    if (!ok) {
      std::string allowed = allow_underscore ? "lowercase letters, digits, '-' and '_'"
                                             : "lowercase letters, digits and '-'";
      return "name " + quote(name) + " is not valid: use " + allowed;
    }
  }
  if (name.front() == '-' || name.back() == '-' || name.front() == '_' || name.back() == '_') {
    return "name " + quote(name) + " must start and end with a letter or digit";
  }
  return std::nullopt;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::optional<std::string> check_hostname(const std::string& name) {
  return check(name, false);
}
std::optional<std::string> check_name(const std::string& name) {
  return check(name, true);
}

std::optional<std::string> closest(const std::string& word,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = 0;
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d <= limit && d < std::max(word.size(), c.size()) && (!best || d < best_d)) {
      best = c;
      best_d = d;
    }
  }
  return best;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  auto c = closest(word, candidates);
  return c ? " (did you mean " + quote(*c) + "?)" : "";
}

}  // namespace kumo
