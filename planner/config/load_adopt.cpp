// adopt: and volumes: — a VM that takes over a domain made by hand. Part of the loader.
#include "planner/config/loader_internal.h"
#include "planner/config/names.h"

namespace kumo::detail {
namespace {

void load_volumes(Reader& r, const YAML::Node& f, const std::string& fw, VmConfig& vm) {
  if (!f.IsSequence()) {
    r.error(f, fw + ": expected a list of {pool, volume} or {path} entries (kumo import prints "
                    "them)");
    return;
  }
  vm.volumes.clear();
  for (const auto& item : f) {
    auto fields = r.mapping(item, fw, {"pool", "volume", "path"});
    if (!fields) continue;
    VolumeRef v;
    v.location = r.loc(item);
    for (auto& [k, n, k_at] : *fields) {
      auto s = r.string(n, fw + ": " + k);
      if (!s) continue;
      if (k == "pool") v.pool = *s;
      if (k == "volume") v.volume = *s;
      if (k == "path") v.path = *s;
    }
    const bool by_volume = !v.pool.empty() || !v.volume.empty();
    if (by_volume == !v.path.empty()) {
      r.error(item, fw + ": each entry is {pool, volume} (a volume of a storage pool) or {path} "
                         "(a file), not both and not neither");
      continue;
    }
    if (by_volume && (v.pool.empty() || v.volume.empty())) {
      r.error(item, fw + ": a volume entry needs both pool and volume");
      continue;
    }
    if (!by_volume && v.path[0] != '/') {
      r.error(child(item, "path"), fw + ": path " + quote(v.path) + " must be absolute");
      continue;
    }
    vm.volumes.push_back(std::move(v));
  }
}

}  // namespace

bool apply_adopt_field(Reader& r, const std::string& k, const YAML::Node& f, const std::string& fw,
                       const std::string& where, VmConfig& vm) {
  if (k == "adopt") {
    if (where == "defaults") {
      r.error(f, "defaults: adopt names one domain; set it per VM");
    } else if (auto s = r.string(f, fw)) {
      if (s->empty()) {
        r.error(f, fw + ": needs the name of the domain to adopt (kumo import HOST/DOMAIN prints "
                        "the whole entry)");
      } else {
        vm.adopt = *s;
        vm.adopt_location = r.loc(f);
      }
    }
  } else if (k == "volumes") {
    if (where == "defaults") {
      r.error(f, "defaults: volumes are an adopted VM's own disks; set them per VM");
    } else {
      load_volumes(r, f, fw, vm);
    }
  } else {
    return false;
  }
  return true;
}

void finish_adopt(Reader& r, const YAML::Node& node, const std::string& where, VmConfig& vm) {
  if (!vm.adopt) {
    if (has(node, "volumes")) {
      r.error(child(node, "volumes"),
              where +
                  ": volumes are the disks of an adopted VM; without adopt: kumo makes the "
                  "VM's disks itself (image:, disk:, disks:)");
    }
    return;
  }
  const std::string why =
      " (an adopted VM keeps the disks it has, listed under volumes:, and cloud-init ran when it "
      "was first booted)";
  for (const char* key : {"image", "count", "disk", "disks", "cloud_init"}) {
    if (has(node, key)) {
      r.error(child(node, key), where + ": adopt and " + key + " do not go together" + why);
    }
  }
  vm.image.clear();  // one from defaults: does not apply
  vm.disk.reset();
  vm.disks.clear();
  vm.cloud_init = CloudInitConfig{};
  vm.cloud_init_shown = CloudInitConfig{};
  if (!vm.host) {
    r.diagnostics().error(vm.adopt_location, where + ": adopt needs host: the host the domain " +
                                                 quote(*vm.adopt) + " is on");
  }
  if (vm.volumes.empty() && !has(node, "volumes")) {
    r.diagnostics().error(vm.adopt_location,
                          where +
                              ": adopt needs volumes: the domain's disks, in order (kumo "
                              "import prints them)");
  }
  // kumo gave it no cloud-init and may find no agent in it: ready once it runs, unless asked.
  if (!has(node, "wait_for")) vm.wait_for = WaitFor::Running;
}

}  // namespace kumo::detail
