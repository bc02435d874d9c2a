#include "planner/config/scope.h"

#include "providers/instance_name.h"

namespace kumo {

ClusterConfig destroy_scoped_config(const ClusterConfig& cfg,
                                    const std::vector<std::string>& targets) {
  if (targets.empty()) return cfg;
  std::vector<bool> keep(cfg.vms.size(), false);
  for (const auto& t : targets) {
    if (t.rfind("vm.", 0) != 0) return cfg;
    const std::string name = t.substr(3);
    bool named = false;
    for (std::size_t i = 0; i < cfg.vms.size(); ++i) {
      // The entry itself, or one of its instances (web-3 of web with a count).
      if (name != cfg.vms[i].name && !(cfg.vms[i].count && is_instance_of(name, cfg.vms[i].name)))
        continue;
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
