// hosts.<h>.pools and a data disk's entry (disks.<name>: SIZE or {size, pool}). Part of the
// loader.
#include <set>

#include "planner/config/loader_internal.h"
#include "planner/config/names.h"
#include "planner/config/units.h"

namespace kumo::detail {
namespace {

bool clean_path(const std::string& p) {
  return !p.empty() && p[0] == '/' && p.find("/../") == std::string::npos &&
         (p.size() < 3 || p.compare(p.size() - 3, 3, "/..") != 0);
}

void load_devices(Reader& r, const YAML::Node& f, const std::string& fw, PoolConfig& pool) {
  if (!f.IsSequence() || f.size() == 0) {
    r.error(f, fw + ": expected a list of block devices (e.g. [/dev/sdb])");
    return;
  }
  std::set<std::string> seen;
  for (const auto& item : f) {
    auto s = r.string(item, fw);
    if (!s || r.refuse_sensitive(item, fw)) continue;
    if (s->rfind("/dev/", 0) != 0 || !clean_path(*s)) {
      r.error(item, fw + ": " + quote(*s) + " is not a block device under /dev");
    } else if (!seen.insert(*s).second) {
      r.error(item, fw + ": " + quote(*s) + " is listed twice");
    } else {
      pool.devices.push_back(*s);
    }
  }
}

}  // namespace

void load_pools(Reader& r, const YAML::Node& node, const std::string& where, HostConfig& host) {
  const std::string fw = where + ": pools";
  auto entries = r.named_mapping(node, fw);
  if (!entries) return;
  for (auto& [name, p, name_at] : *entries) {
    PoolConfig pool;
    pool.name = name;
    pool.location = r.loc(name_at);
    const std::string pw = fw + ": " + name;
    if (auto bad = check_name(name)) r.error(name_at, pw + ": " + *bad);
    auto fields = r.mapping(p, pw, {"type", "path", "devices"});
    if (!fields) continue;
    bool has_type = false;
    const YAML::Node* path_at = nullptr;
    const YAML::Node* devices_at = nullptr;
    for (auto& [k, f, k_at] : *fields) {
      if (k == "type") {
        has_type = true;
        if (auto t =
                r.choice<std::string>(f, pw + ": type", {{"dir", "dir"}, {"logical", "logical"}}))
          pool.type = *t;
        r.refuse_sensitive(f, pw + ": type");
      } else if (k == "path") {
        path_at = &f;
        if (auto s = r.string(f, pw + ": path")) {
          if (r.refuse_sensitive(f, pw + ": path")) continue;
          if (!clean_path(*s))
            r.error(f, pw + ": path " + quote(*s) + " must be an absolute directory");
          else
            pool.path = *s;
        }
      } else if (k == "devices") {
        devices_at = &f;
        load_devices(r, f, pw + ": devices", pool);
      }
    }
    if (!has_type) {
      r.error(name_at, pw + ": missing required key \"type\" (dir with a path, or logical with "
                            "devices)");
    } else if (pool.type == "dir") {
      if (devices_at)
        r.error(*devices_at, pw + ": devices is for type: logical; a dir pool has a path");
      if (!path_at)
        r.error(name_at, pw + ": a dir pool needs path: (e.g. path: /srv/kumo/" + name + ")");
    } else if (pool.type == "logical") {
      if (path_at)
        r.error(*path_at,
                pw + ": path is for type: dir; a logical pool's volume group is on devices");
      if (!devices_at)
        r.error(name_at, pw + ": a logical pool needs devices: (e.g. devices: [/dev/sdb])");
    }
    host.pools.push_back(std::move(pool));
  }
}

bool load_data_disk(Reader& r, const YAML::Node& dn, const std::string& fw, DataDiskConfig& disk) {
  disk.location = r.loc(dn);
  if (!dn.IsMap()) {
    auto size = r.size(dn, fw);
    if (size) disk.size = *size;
    return size.has_value();
  }
  auto fields = r.mapping(dn, fw, {"size", "pool"});
  if (!fields) return false;
  bool ok = true, has_size = false;
  for (auto& [k, f, k_at] : *fields) {
    if (k == "size") {
      has_size = true;
      if (auto size = r.size(f, fw + ": size"))
        disk.size = *size;
      else
        ok = false;
    } else if (k == "pool") {
      if (auto s = r.string(f, fw + ": pool")) {
        if (r.refuse_sensitive(f, fw + ": pool")) continue;
        if (auto bad = check_name(*s)) {
          r.error(f, fw + ": pool: " + *bad);
          ok = false;
        } else {
          disk.pool = *s;
          disk.pool_location = r.loc(f);
        }
      }
    }
  }
  if (!has_size) {
    r.error(dn, fw + ": missing required key \"size\" (e.g. {size: 10G, pool: " +
                    (disk.pool.empty() ? std::string("fast") : disk.pool) + "})");
    ok = false;
  }
  return ok;
}

}  // namespace kumo::detail
