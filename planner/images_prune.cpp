#include "planner/images_prune.h"

#include <map>

namespace kumo {

std::vector<HostImage> host_images(const ObservedHost& h, const std::string& pool) {
  std::map<std::string, HostImage> images;
  for (const auto& v : h.volumes) {
    if (v.pool != pool || !v.owner || v.owner->address.rfind("image.", 0) != 0) continue;
    const bool marker = v.owner->address.size() > 5 &&
                        v.owner->address.compare(v.owner->address.size() - 5, 5, "/done") == 0;
    const std::string base = marker ? v.name.substr(0, v.name.size() - 5) : v.name;
    HostImage& img = images[base];
    img.host = h.host;
    img.volume = base;
    if (marker) {
      img.complete = true;
    } else {
      img.path = v.path;
      img.size = v.allocation ? v.allocation : v.capacity;
    }
  }
  for (auto& [name, img] : images) {
    img.marker_only = img.path.empty();
    for (const auto& v : h.volumes) {
      if (!img.path.empty() && v.backing_path == img.path) img.used_by.push_back(v.name);
    }
  }
  std::vector<HostImage> out;
  for (auto& [n, i] : images) out.push_back(i);
  return out;
}

PruneDecision decide_prune(const std::vector<HostImage>& on_hosts,
                           const std::vector<CachedImage>& cached,
                           const std::set<std::string>& wanted, bool keep_cache) {
  PruneDecision d;
  for (const auto& h : on_hosts) {
    if (!h.used_by.empty()) continue;
    if (!h.complete && !h.marker_only) continue;  // maybe an upload in progress: leave it
    d.host_removals.push_back(h);
  }
  if (keep_cache) return d;
  for (const auto& c : cached) {
    if (!wanted.count(c.checksum)) d.cache_removals.push_back(c);
  }
  return d;
}

}  // namespace kumo
