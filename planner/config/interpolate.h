// ${var.NAME} and ${file(PATH)} in string values. "$${" writes a literal "${". Any other "${"
// (a shell's ${HOME} in runcmd, say) is left alone.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include "planner/config/units.h"

namespace kumo {

struct VariableValue {
  std::optional<std::string> value;  // unset: declared without default and given no value
  bool sensitive = false;
};

class Interpolator {
 public:
  Interpolator(std::map<std::string, VariableValue> variables, std::string base_dir,
               std::string home);

  // The expanded text, or a message saying what is wrong. *used_sensitive is set when a
  // sensitive variable went into it (the caller marks the field it reads).
  Parsed<std::string> expand(const std::string& text, bool* used_sensitive) const;

  // The same variables, each sensitive one's value replaced by the mask "(sensitive)": what
  // expands through it is the text as a reviewer may see it.
  Interpolator masked() const;

  // Reads a file named in the config: relative to the config's folder, "~" is $HOME.
  Parsed<std::string> read_file(const std::string& path) const;
  std::string resolve_path(const std::string& path) const;

 private:
  std::map<std::string, VariableValue> variables_;
  std::string base_dir_;
  std::string home_;
};

}  // namespace kumo
