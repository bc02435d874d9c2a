// defaults: and vms: -> VmConfig. defaults are read once into a template VM; each VM starts from
// a copy of it, so a bad default is reported once, at the default.
#include <algorithm>

#include "planner/config/load_ssh.h"
#include "planner/config/loader_internal.h"
#include "planner/config/names.h"
#include "planner/config/schema.h"

namespace kumo::detail {
namespace {

std::vector<std::string> names_of(const auto& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.name);
  return out;
}

void load_placement(Reader& r, const YAML::Node& f, const std::string& where, VmConfig& vm) {
  const std::vector<std::pair<std::string, PlacementStrategy>> strategies = {
      {"spread", PlacementStrategy::Spread}, {"pack", PlacementStrategy::Pack}};
  if (f.IsScalar()) {
    if (auto s = r.choice(f, where + ": placement", strategies)) vm.placement = *s;
    return;
  }
  auto fields = r.mapping(f, where + ": placement", schema_keys("placement"));
  if (!fields) return;
  for (auto& [k, v, k_at] : *fields) {
    if (k == "strategy") {
      if (auto s = r.choice(v, where + ": placement: strategy", strategies)) vm.placement = *s;
    } else if (k == "anti_affinity") {
      if (auto s = r.string(v, where + ": placement: anti_affinity")) {
        if (r.refuse_sensitive(v, where + ": placement: anti_affinity")) continue;
        if (auto bad = check_name(*s)) r.error(v, where + ": placement: anti_affinity: " + *bad);
        vm.anti_affinity = *s;
        vm.anti_affinity_location = r.loc(v);
      }
    }
  }
}

bool looks_like_ssh_key(const std::string& key) {
  for (const char* prefix : {"ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"}) {
    if (key.rfind(prefix, 0) == 0 && key.find(' ') != std::string::npos) return true;
  }
  return false;
}

void load_ssh_keys(Reader& r, const YAML::Node& f, const std::string& fw, CloudInitConfig& ci) {
  auto keys = r.string_list(f, fw);
  if (!keys) return;
  const bool secret = r.last_sensitive();
  ci.ssh_authorized_keys.clear();
  for (size_t i = 0; i < keys->size(); ++i) {
    std::string key = (*keys)[i];
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    if (!looks_like_ssh_key(key)) {
      r.error(f[i], fw + ": " + (secret ? std::string(kSensitiveMask) : quote(key.substr(0, 40))) +
                        " does not look like an OpenSSH public key (ssh-ed25519 AAAA... or "
                        "ssh-rsa AAAA...)");
    }
    ci.ssh_authorized_keys.push_back(key);
  }
}

void load_runcmd(Reader& r, const YAML::Node& f, const std::string& fw, CloudInitConfig& ci) {
  auto v = r.any(f, fw);
  if (!v) return;
  bool ok = v->is_array();
  for (auto& cmd : ok ? *v : nlohmann::json::array()) {
    ok = ok &&
         (cmd.is_string() || (cmd.is_array() && std::all_of(cmd.begin(), cmd.end(), [](auto& a) {
                                return a.is_string() || a.is_number();
                              })));
  }
  if (!ok) {
    r.error(f, fw + ": expected a list of commands (each a string, or a list of arguments)");
  } else {
    ci.runcmd = *v;
  }
}

// One write_files entry: an absolute path and only the keys cloud-init knows.
bool check_write_file(Reader& r, const nlohmann::json& entry, const YAML::Node& item,
                      const std::string& fw, bool secret) {
  static const std::vector<std::string> file_keys = {"path",        "content",  "source", "owner",
                                                     "permissions", "encoding", "append", "defer"};
  if (!entry.is_object() || !entry.contains("path") || !entry["path"].is_string()) {
    r.error(item, fw + ": each entry needs path: <absolute path in the guest>");
    return false;
  }
  bool ok = true;
  const std::string path = entry["path"].get<std::string>();
  if (path.empty() || path[0] != '/') {
    r.error(child(item, "path"), fw + ": path " +
                                     (secret ? std::string(kSensitiveMask) : quote(path)) +
                                     " must be absolute (start with /)");
    ok = false;
  }
  for (auto it = item.begin(); it != item.end(); ++it) {
    const YAML::Node key = it->first;
    const std::string name = key.IsScalar() ? key.Scalar() : "";
    if (std::find(file_keys.begin(), file_keys.end(), name) == file_keys.end()) {
      r.error(key, fw + ": unknown key " + quote(name) + did_you_mean(name, file_keys));
      ok = false;
    }
  }
  return ok;
}

void load_write_files(Reader& r, const YAML::Node& f, const std::string& fw, CloudInitConfig& ci) {
  auto v = r.any(f, fw);
  if (!v) return;
  if (!v->is_array()) {
    r.error(f, fw + ": expected a list of {path, content, ...}");
    return;
  }
  bool ok = true;
  const bool secret = r.last_sensitive();
  for (size_t i = 0; i < v->size(); ++i) ok = check_write_file(r, (*v)[i], f[i], fw, secret) && ok;
  if (ok) ci.write_files = *v;
}

void load_users(Reader& r, const YAML::Node& f, const std::string& fw, CloudInitConfig& ci) {
  auto v = r.any(f, fw);
  if (!v) return;
  if (!v->is_array()) {
    r.error(f, fw + ": expected a list of users (\"default\", or {name: ..., ...})");
    return;
  }
  bool ok = true;
  for (size_t i = 0; i < v->size(); ++i) {
    const auto& u = (*v)[i];
    if (!u.is_string() && !(u.is_object() && u.contains("name") && u["name"].is_string())) {
      r.error(f[i], fw + ": each user needs name: <login> (or is the string \"default\")");
      ok = false;
    }
  }
  if (ok) ci.users = *v;
}

void load_user_data_file(Reader& r, const YAML::Node& f, const std::string& fw,
                         CloudInitConfig& ci) {
  auto path = r.string(f, fw);
  if (!path) return;
  auto content = r.interpolator().read_file(*path);
  if (auto* e = std::get_if<ParseError>(&content)) {
    r.error(f, fw + ": " + e->message);
  } else {
    ci.user_data = std::get<std::string>(content);
    ci.user_data_file = r.interpolator().resolve_path(*path);
  }
}

void load_cloud_init(Reader& r, const YAML::Node& node, const std::string& where,
                     CloudInitConfig& ci) {
  const std::string ci_where = where + ": cloud_init";
  auto fields = r.mapping(node, ci_where, schema_keys("cloud_init"));
  if (!fields) return;
  if (has(node, "user_data") && has(node, "user_data_file")) {
    r.error(child(node, "user_data_file"),
            ci_where + ": set either user_data or user_data_file, not both");
  }
  for (auto& [k, f, k_at] : *fields) {
    const std::string fw = ci_where + ": " + k;
    if (k == "user_data") {
      if (auto s = r.string(f, fw)) {
        ci.user_data = *s;
        ci.user_data_file.reset();
      }
    } else if (k == "user_data_file") {
      load_user_data_file(r, f, fw, ci);
    } else if (k == "ssh_authorized_keys") {
      load_ssh_keys(r, f, fw, ci);
    } else if (k == "packages") {
      if (auto pkgs = r.string_list(f, fw)) ci.packages = *pkgs;
    } else if (k == "runcmd") {
      load_runcmd(r, f, fw, ci);
    } else if (k == "write_files") {
      load_write_files(r, f, fw, ci);
    } else if (k == "users") {
      load_users(r, f, fw, ci);
    } else if (k == "network_config") {
      auto v = r.any(f, fw);
      if (!v) continue;
      if (!v->is_object()) {
        r.error(f, fw + ": expected a mapping (cloud-init network config, version 2)");
      } else {
        ci.network_config = *v;
      }
    }
  }
}

void load_lifecycle(Reader& r, const YAML::Node& node, const std::string& where,
                    LifecycleConfig& lc) {
  auto fields = r.mapping(node, where + ": lifecycle", schema_keys("lifecycle"));
  if (!fields) return;
  for (auto& [k, f, k_at] : *fields) {
    if (k == "prevent_destroy") {
      if (auto b = r.boolean(f, where + ": lifecycle: prevent_destroy")) lc.prevent_destroy = *b;
    } else if (k == "on_user_data_change") {
      if (auto v = r.choice<UserDataChange>(
              f, where + ": lifecycle: on_user_data_change",
              {{"recreate", UserDataChange::Recreate}, {"ignore", UserDataChange::Ignore}})) {
        lc.on_user_data_change = *v;
      }
    }
  }
}

// How the VM runs, waits and moves: running, autostart, move, wait_for, wait_timeout. False for
// any other key.
bool apply_run_field(Reader& r, const std::string& k, const YAML::Node& f, const std::string& fw,
                     VmConfig& vm) {
  if (k == "running") {
    if (auto b = r.boolean(f, fw)) vm.running = *b;
  } else if (k == "autostart") {
    if (auto b = r.boolean(f, fw)) vm.autostart = *b;
  } else if (k == "move") {
    if (auto v = r.choice<MoveMode>(
            f, fw, {{"auto", MoveMode::Auto}, {"live", MoveMode::Live}, {"cold", MoveMode::Cold}}))
      vm.move = *v;
  } else if (k == "wait_for") {
    if (auto v = r.choice<WaitFor>(f, fw,
                                   {{"none", WaitFor::None},
                                    {"running", WaitFor::Running},
                                    {"agent", WaitFor::Agent},
                                    {"cloud-init", WaitFor::CloudInit}}))
      vm.wait_for = *v;
  } else if (k == "wait_timeout") {
    if (auto v = r.duration(f, fw)) vm.wait_timeout = *v;
  } else {
    return false;
  }
  return true;
}

// Applies the fields written in one mapping (a VM's, or defaults:) onto vm.
void apply_vm_fields(Reader& r, const Reader::Entries& fields, const std::string& where,
                     const ClusterConfig& cfg, const Sections& sections, VmConfig& vm) {
  for (auto& [k, f, k_at] : fields) {
    const std::string fw = where + ": " + k;
    // Written here: what defaults marked no longer applies (cloud_init merges with the
    // defaults' field by field, so its mark stays).
    if (k != "cloud_init") vm.sensitive.fields.erase(k);
    const auto marked = r.mark(vm.sensitive, k);
    if (k == "count") {
      if (where == "defaults") {
        r.error(k_at, "defaults: count is set per VM, not in defaults");
      } else if (auto v = r.integer(f, fw, 1, 1000)) {
        vm.count = *v;
      }
    } else if (k == "image") {
      if (auto s = r.string(f, fw)) {
        if (!r.refuse_sensitive(f, fw) && !cfg.find_image(*s) && sections.images) {
          r.error(f, where + ": image " + quote(*s) + " is not defined" +
                         did_you_mean(*s, names_of(cfg.images)));
        }
        vm.image = *s;
      }
    } else if (k == "cpus") {
      if (auto v = r.integer(f, fw, 1, 1024)) vm.cpus = *v;
    } else if (k == "memory") {
      if (auto v = r.size(f, fw)) {
        if (*v < 64 * kMiB) {
          r.error(f, fw + ": " + (r.last_sensitive() ? kSensitiveMask : format_size(*v)) +
                         " is too little (at least 64 MiB)");
        } else {
          vm.memory = *v;
        }
      }
    } else if (k == "disk") {
      if (auto v = r.size(f, fw)) {
        if (*v < 256 * kMiB) {
          r.error(f, fw + ": " + (r.last_sensitive() ? kSensitiveMask : format_size(*v)) +
                         " is too small for a root disk (at least 256 MiB)");
        } else {
          vm.disk = *v;
        }
      }
    } else if (k == "disks") {
      auto disks = r.named_mapping(f, fw);
      if (!disks) continue;
      vm.disks.clear();
      for (auto& [dname, dn, dname_at] : *disks) {
        if (auto bad = check_name(dname)) r.error(dname_at, fw + ": " + *bad);
        if (dname == "root" || dname == "seed") {
          r.error(dname_at, fw + ": " + quote(dname) +
                                " is reserved for kumo's own disks; choose another name");
        }
        DataDiskConfig disk;
        disk.name = dname;
        if (detail::load_data_disk(r, dn, fw + ": " + dname, disk)) vm.disks.push_back(disk);
      }
    } else if (k == "networks") {
      if (!f.IsSequence()) {
        r.error(f, fw + ": expected a list of network names or {network, ip, mac} entries");
        continue;
      }
      vm.networks.clear();
      for (const auto& item : f) load_nic(r, item, where, cfg, sections, vm.networks);
    } else if (k == "host") {
      if (auto s = r.string(f, fw)) {
        if (!r.refuse_sensitive(f, fw) && !cfg.find_host(*s) && sections.hosts) {
          r.error(f, where + ": host " + quote(*s) + " is not defined" +
                         (cfg.hosts_implicit
                              ? " (there is no hosts: block, so the only host is \"local\")"
                              : did_you_mean(*s, names_of(cfg.hosts))));
        }
        vm.host = *s;
        vm.host_location = r.loc(f);
      }
    } else if (k == "placement") {
      load_placement(r, f, where, vm);
    } else if (apply_run_field(r, k, f, fw, vm) || apply_machine_field(r, k, f, fw, vm) ||
               apply_adopt_field(r, k, f, fw, where, vm)) {
    } else if (k == "cloud_init") {
      load_cloud_init(r, f, where, vm.cloud_init);
      // Again with each sensitive variable's value masked: the documents reviewers see.
      Diagnostics again;
      const Interpolator masked = r.interpolator().masked();
      Reader shown(r.file(), again, masked);
      load_cloud_init(shown, f, where, vm.cloud_init_shown);
    } else if (k == "lifecycle") {
      load_lifecycle(r, f, where, vm.lifecycle);
    } else if (k == "ssh") {
      load_ssh(r, f, where + ": ssh", vm.ssh);
    }
  }
}

bool has_shorthand(const CloudInitConfig& ci) {
  return !ci.ssh_authorized_keys.empty() || !ci.packages.empty() || !ci.runcmd.empty() ||
         !ci.write_files.empty() || !ci.users.empty();
}

// A whole user-data must be something cloud-init recognises; a #cloud-config must parse.
void check_user_data(Reader& r, const YAML::Node& vm_node, const std::string& where,
                     const VmConfig& vm) {
  const auto& ci = vm.cloud_init;
  if (!ci.user_data) return;
  const std::string& ud = *ci.user_data;
  const YAML::Node ci_node = child(vm_node, "cloud_init");
  const YAML::Node at = has(ci_node, "user_data")        ? child(ci_node, "user_data")
                        : has(ci_node, "user_data_file") ? child(ci_node, "user_data_file")
                                                         : vm_node;
  const std::string source = ci.user_data_file ? "user_data_file" : "user_data";
  if (ud.rfind("#cloud-config", 0) == 0 &&
      (ud.size() == 13 || std::isspace(static_cast<unsigned char>(ud[13])))) {
    try {
      YAML::Node doc = YAML::Load(ud);
      if (!doc.IsNull() && !doc.IsMap()) {
        r.error(at, where + ": cloud_init: " + source + ": a #cloud-config must be a mapping");
      }
    } catch (const YAML::Exception& e) {
      if (ci.user_data_file) {
        r.diagnostics().error({*ci.user_data_file, e.mark.line + 1, e.mark.column + 1},
                              "YAML syntax error in cloud-config: " + e.msg);
      } else {
        r.error(at, where + ": cloud_init: user_data: YAML syntax error on line " +
                        std::to_string(e.mark.line + 1) + " of the cloud-config: " + e.msg);
      }
    }
    return;
  }
  const bool script = ud.rfind("#!", 0) == 0;
  const bool other = ud.rfind("#include", 0) == 0 || ud.rfind("Content-Type:", 0) == 0 ||
                     ud.rfind("#cloud-boothook", 0) == 0;
  if (!script && !other) {
    r.error(at,
            where + ": cloud_init: " + source +
                " must start with #cloud-config, a #! script, #include, #cloud-boothook or a MIME "
                "Content-Type: line");
    return;
  }
  if (has_shorthand(ci)) {
    r.error(
        at,
        where +
            ": cloud_init: ssh_authorized_keys, packages, runcmd, write_files and users can only "
            "be merged into a #cloud-config " +
            source + " (this one starts with " +
            (vm.sensitive.has("cloud_init") ? std::string(kSensitiveMask)
                                            : quote(ud.substr(0, ud.find('\n')))) +
            ")");
  }
}

// "" when ip can be a VM's static address on net; otherwise what it is instead.
std::string address_problem(const NetworkConfig& net, Ipv4 ip) {
  const Cidr& c = *net.cidr;
  const std::string of = " of network " + quote(net.name) + " (" + c.str() + ")";
  if (!c.contains(ip)) return "outside network " + quote(net.name) + " (" + c.str() + ")";
  if (ip == c.network) return "the network address" + of;
  if (ip == c.broadcast()) return "the broadcast address" + of;
  if (ip == net.gateway() && net.mode != NetMode::Bridge)
    return "the host's own address (gateway)" + of;
  return "";
}

void finish_vm(Reader& r, const YAML::Node& node, const std::string& where,
               const ClusterConfig& cfg, const YAML::Node& defaults, VmConfig& vm) {
  const bool own_placement = has(node, "placement");
  if (has(node, "host") && own_placement) {
    r.error(child(node, "placement"), where + ": set either host (pin) or placement, not both");
  } else if (vm.host && !own_placement) {
    vm.placement = PlacementStrategy::Spread;  // a pinned VM ignores placement from defaults
    vm.anti_affinity.reset();
  } else if (own_placement && !has(node, "host") && vm.host) {
    vm.host.reset();  // ... and a VM's own placement overrides a host pinned in defaults
  }
  finish_adopt(r, node, where, vm);
  const bool defaults_readable = !defaults.IsDefined() || defaults.IsNull() || defaults.IsMap();
  if (vm.image.empty() && !vm.adopt && !has(defaults, "image") && defaults_readable) {
    r.diagnostics().error(vm.location,
                          where + ": missing image (set image: here or under defaults:)");
  }
  if (!has(node, "networks") && !has(defaults, "networks")) {
    if (cfg.networks.size() == 1) {
      NicConfig only;
      only.network = cfg.networks.front().name;
      only.location = vm.location;
      vm.networks.push_back(std::move(only));
    } else if (!cfg.networks.empty()) {
      r.diagnostics().warning(vm.location,
                              where +
                                  ": no networks: the VM gets no network interface (list "
                                  "networks: to attach it)");
    }
  }
  for (const auto& instance : vm.count ? vm.instance_names() : std::vector<std::string>{}) {
    if (check_hostname(vm.name)) break;  // the name itself is wrong; reported already
    if (auto bad = check_hostname(instance)) {
      r.diagnostics().error(vm.location, where + ": instance " + *bad);
      break;
    }
  }
  for (const auto& nic : vm.networks) {
    const NetworkConfig* net = cfg.find_network(nic.network);
    if (!net || !nic.ip) continue;
    if (!net->cidr) {
      r.diagnostics().error(nic.ip_location,
                            where + ": ip: network " + quote(net->name) +
                                " has no cidr, so kumo cannot configure a static address on it");
      continue;
    }
    for (int i = 0; i < vm.instance_count(); ++i) {
      const Ipv4 ip{nic.ip->value + static_cast<std::uint32_t>(i)};
      const std::string problem = address_problem(*net, ip);
      if (!problem.empty()) {
        const std::string shown = vm.sensitive.show("networks", ip.str());
        const std::string text = vm.count ? "instance " + quote(vm.instance_name(i)) +
                                                " would get " + shown + ", which is " + problem
                                          : shown + " is " + problem;
        r.diagnostics().error(nic.ip_location, where + ": ip: " + text);
        break;
      }
    }
  }
  if (has(node, "cloud_init"))
    check_user_data(r, node, where, vm);  // else checked once, at defaults
  finish_machine(r, where, vm);
}

}  // namespace

void load_vms(Reader& r, const YAML::Node& vms, const YAML::Node& defaults,
              const Sections& sections, ClusterConfig& cfg) {
  VmConfig base;
  if (defaults.IsDefined() && !defaults.IsNull()) {
    auto allowed = schema_keys("defaults");
    allowed.push_back("count");  // known, but refused with its own message
    if (auto fields = r.mapping(defaults, "defaults", allowed)) {
      apply_vm_fields(r, *fields, "defaults", cfg, sections, base);
      check_user_data(r, defaults, "defaults", base);
    }
  }
  auto entries = r.named_mapping(vms, "vms");
  if (!entries) return;
  for (auto& [name, node, name_at] : *entries) {
    VmConfig vm = base;
    vm.name = name;
    vm.location = r.loc(name_at);
    const std::string where = ctx("vm", name);
    if (auto bad = check_hostname(name)) r.error(name_at, where + ": " + *bad);
    if (auto fields = r.mapping(node, where, schema_keys("vm"))) {
      apply_vm_fields(r, *fields, where, cfg, sections, vm);
      finish_vm(r, node, where, cfg, defaults, vm);
    }
    cfg.vms.push_back(std::move(vm));
  }
}

}  // namespace kumo::detail
