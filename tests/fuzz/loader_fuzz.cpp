// Feeds arbitrary bytes to the kumo.yaml loader. Any crash, sanitizer report, or an error that
// says kumo itself failed (kInternalErrorPrefix) is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "planner/config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  kumo::LoadOptions options;
  options.environment = {{"HOME", "/nonexistent-home"}, {"KUMO_VAR_x", "1GiB"}};
  options.vars = {{"y", "10.0.0.5"}};
  kumo::LoadResult result = kumo::load_config_text(text, "fuzz.yaml", "/nonexistent-dir", options);
  for (const auto& d : result.diagnostics.all()) {
    if (d.message.rfind(kumo::kInternalErrorPrefix, 0) == 0) {
      std::fprintf(stderr, "internal error: %s\n", d.message.c_str());
      std::abort();
    }
    if (d.severity == kumo::Severity::Error && d.message.empty()) std::abort();
  }
  if (result.config.has_value() == result.diagnostics.has_errors()) std::abort();
  return 0;
}
