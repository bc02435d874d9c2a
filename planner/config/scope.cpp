#include "planner/config/scope.h"

#include <algorithm>

namespace kumo {
namespace {

// Whether vm.`name` can name `vm`'s entry: the entry itself or one of its instances (web-3 of web
// with a count).
bool names_entry(const std::string& name, const VmConfig& vm) {
  if (name == vm.name) return true;
  if (!vm.count || name.size() <= vm.name.size() + 1 || name.rfind(vm.name + "-", 0) != 0)
    return false;
  const std::string index = name.substr(vm.name.size() + 1);
  return std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

ClusterConfig destroy_scoped_config(const ClusterConfig& cfg,
                                    const std::vector<std::string>& targets) {
  if (targets.empty()) return cfg;
  std::vector<bool> keep(cfg.vms.size(), false);
  for (const auto& t : targets) {
    if (t.rfind("vm.", 0) != 0) return cfg;
    const std::string name = t.substr(3);
    bool named = false;
    for (std::size_t i = 0; i < cfg.vms.size(); ++i) {
      if (!names_entry(name, cfg.vms[i])) continue;
      keep[i] = true;
      named = true;
    }
    if (!named) return cfg;
  }
  ClusterConfig scoped = cfg;
  scoped.vms.clear();
  for (std::size_t i = 0; i < cfg.vms.size(); ++i)
    if (keep[i]) scoped.vms.push_back(cfg.vms[i]);
  return scoped;
}

}  // namespace kumo
