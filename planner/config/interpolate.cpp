#include "planner/config/interpolate.h"

#include "planner/config/sensitive.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "planner/config/diagnostics.h"
#include "planner/config/names.h"

namespace kumo {

Interpolator::Interpolator(std::map<std::string, VariableValue> variables, std::string base_dir,
                           std::string home)
    : variables_(std::move(variables)), base_dir_(std::move(base_dir)), home_(std::move(home)) {}

std::string Interpolator::resolve_path(const std::string& path) const {
  std::filesystem::path p;
  if (path == "~" || path.rfind("~/", 0) == 0) {
    p = std::filesystem::path(home_) / path.substr(path.size() > 1 ? 2 : 1);
  } else {
    p = path;
  }
  if (p.is_relative()) p = std::filesystem::path(base_dir_) / p;
  return p.lexically_normal().string();
}

Parsed<std::string> Interpolator::read_file(const std::string& path) const {
  const std::string full = resolve_path(path);
  std::error_code ec;
  if (std::filesystem::is_directory(full, ec)) {
    return ParseError("cannot read file " + quote(path) + " (" + full + "): it is a directory");
  }
  // Devices and pipes (/dev/zero, /dev/stdin) would never end; huge files are surely a mistake.
  if (std::filesystem::exists(full, ec) && !std::filesystem::is_regular_file(full, ec)) {
    return ParseError("cannot read file " + quote(path) + " (" + full + "): not a regular file");
  }
  constexpr std::uintmax_t kMaxBytes = 16u << 20;
  if (std::filesystem::exists(full, ec) && std::filesystem::file_size(full, ec) > kMaxBytes) {
    return ParseError("cannot read file " + quote(path) + " (" + full + "): larger than 16 MiB");
  }
  std::ifstream in(full, std::ios::binary);
  if (!in) {
    return ParseError("cannot read file " + quote(path) + " (" + full +
                      "): " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Interpolator Interpolator::masked() const {
  Interpolator out = *this;
  for (auto& [name, v] : out.variables_) {
    if (v.sensitive && v.value) v.value = kSensitiveMask;
  }
  return out;
}

Parsed<std::string> Interpolator::expand(const std::string& text, bool* used_sensitive) const {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    const bool is_var = text.compare(i, 6, "${var.") == 0;
    const bool is_file = text.compare(i, 7, "${file(") == 0;
    if (!is_var && !is_file) {
      out += text[i++];
      continue;
    }
    const size_t close = text.find('}', i);
    if (close == std::string::npos) {
      return ParseError("unterminated expression " + quote(text.substr(i)) +
                        " (expected a closing \"}\")");
    }
    const std::string expr = text.substr(i + 2, close - i - 2);  // var.x  or  file(...)
    if (is_var) {
      const std::string name = expr.substr(4);
      auto it = variables_.find(name);
      if (it == variables_.end()) {
        std::vector<std::string> names;
        for (auto& [n, v] : variables_) names.push_back(n);
        return ParseError("undefined variable " + quote(name) + did_you_mean(name, names) +
                          "; declare it under variables:");
      }
      if (!it->second.value) {
        return ParseError("variable " + quote(name) + " has no value: set it with -var " + name +
                          "=VALUE, --var-file FILE or KUMO_VAR_" + name + ", or give it a default");
      }
      if (it->second.sensitive && used_sensitive) *used_sensitive = true;
      out += *it->second.value;
    } else {
      if (expr.size() < 6 || expr.back() != ')') {
        return ParseError("malformed expression " + quote("${" + expr + "}") +
                          " (write ${file(PATH)})");
      }
      std::string path = expr.substr(5, expr.size() - 6);
      if (path.size() >= 2 && (path.front() == '"' || path.front() == '\'') &&
          path.back() == path.front()) {
        path = path.substr(1, path.size() - 2);
      }
      if (path.empty()) return ParseError("${file()} needs a path");
      auto content = read_file(path);
      if (auto* err = std::get_if<ParseError>(&content)) return *err;
      out += std::get<std::string>(content);
    }
    i = close + 1;
  }
  return out;
}

}  // namespace kumo
