// The whole front end on arbitrary bytes: load -> desired -> placement and diff against fake
// hosts -> plan -> every view (human, JSON, markdown; masked and shown) -> saved plan written and
// read back. A crash, a sanitizer report, an internal error, a JSON view that does not parse or a
// saved plan that does not read back is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/views/plan_view.h"
#include "planner/config/loader.h"
#include "planner/desired.h"
#include "planner/plan_io.h"
#include "planner/planner.h"
#include "tests/fake_provider.h"

namespace {

void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "finding: %s: %s\n", what, detail.c_str());
  std::abort();
}

// Hosts as kumo.yaml names them are made on first use; hv1 holds a VM kumo did not make, a
// kumo-made VM of this cluster that the file may no longer list, and one of another cluster.
void populate(kumo::test::FakeProvider& p, const kumo::DesiredCluster& d) {
  if (d.hosts.empty()) return;
  const std::string& h = d.hosts.front().name;
  p.host(h);
  p.add_domain(h, "web");
  kumo::Ownership ours, theirs;
  ours.cluster = d.cluster;
  ours.address = "vm.old-vm";
  theirs.cluster = "other";
  theirs.address = "vm.theirs";
  p.add_domain(h, "old-vm", ours);
  p.add_domain(h, "theirs", theirs);
}

void views(const kumo::Plan& plan) {
  for (bool shown : {false, true}) {
    const kumo::views::ViewOptions o{false, shown};
    (void)kumo::views::render_human(plan, o);
    (void)kumo::views::render_markdown(plan, o);
    const std::string json = kumo::views::render_json(plan, o).dump();
    if (nlohmann::json::parse(json, nullptr, false).is_discarded()) finding("JSON view", json);
  }
  const nlohmann::json saved = kumo::plan_to_json(plan);
  std::string error;
  const auto back = kumo::plan_from_json(nlohmann::json::parse(saved.dump()), &error);
  if (!back) finding("saved plan does not read back", error);
  if (kumo::plan_to_json(*back) != saved) finding("saved plan changes when read back", error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  kumo::LoadOptions options;
  options.environment = {{"HOME", "/nonexistent-home"}, {"KUMO_VAR_x", "1GiB"}};
  options.vars = {{"y", "10.0.0.5"}};
  kumo::LoadResult loaded = kumo::load_config_text(text, "fuzz.yaml", "/nonexistent-dir", options);
  for (const auto& d : loaded.diagnostics.all()) {
    if (d.message.rfind(kumo::kInternalErrorPrefix, 0) == 0) finding("internal error", d.message);
  }
  if (!loaded.config) return 0;
  const kumo::DesiredCluster desired = kumo::expand(*loaded.config);
  kumo::test::FakeProvider provider;
  populate(provider, desired);
  auto made = kumo::make_plan(desired, provider, {});
  for (const auto& d : made.errors.all()) {
    if (d.message.rfind(kumo::kInternalErrorPrefix, 0) == 0) finding("internal error", d.message);
  }
  if (made.plan) views(*made.plan);
  return 0;
}
