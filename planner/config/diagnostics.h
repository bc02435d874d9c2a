// Located, human-actionable diagnostics: "file:line:col: error: message".
#pragma once

#include <set>
#include <string>
#include <vector>

namespace kumo {

// A position in an input file. line/column are 1-based; 0 means "unknown".
struct Location {
  std::string file;
  int line = 0;
  int column = 0;

  bool known() const { return line > 0; }
};

enum class Severity { Error, Warning };

struct Diagnostic {
  Severity severity = Severity::Error;
  Location location;
  std::string message;
};

// Collects every problem found in one pass, so users see all of them at once.
class Diagnostics {
 public:
  void error(const Location& loc, std::string message);
  void warning(const Location& loc, std::string message);

  bool has_errors() const;
  int error_count() const;
  const std::vector<Diagnostic>& all() const { return items_; }
  // Errors and warnings ordered by file, line, column (stable for equal positions).
  std::vector<Diagnostic> sorted() const;
  void append(const Diagnostics& other);

 private:
  std::vector<Diagnostic> items_;
};

// "kumo.yaml:14:7: error: vm "web": ..." (the compiler form editors understand).
std::string format_diagnostic(const Diagnostic& d);

// Quote a user-supplied value the way messages show it: "value".
std::string quote(const std::string& s);

}  // namespace kumo
