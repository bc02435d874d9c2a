// kumo images: what base images each host holds and who backs onto them, and what
// `kumo images prune` removes: base images no volume backs onto (complete ones, or a marker left
// alone), and cached images the file does not use. Pure: the CLI reads, decides here, removes.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "providers/observed.h"

namespace kumo {

struct HostImage {
  std::string host, volume, path;
  std::uint64_t size = 0;
  bool complete = false, marker_only = false;
  std::vector<std::string> used_by;  // volumes backed onto it
};

struct CachedImage {
  std::string checksum, path, source, format, fetched_at;
  std::uint64_t size = 0;
};

// The base images (kumo-image_*) in `pool` on one observed host.
std::vector<HostImage> host_images(const ObservedHost& h, const std::string& pool);

struct PruneDecision {
  std::vector<HostImage> host_removals;
  std::vector<CachedImage> cache_removals;
};

// `wanted`: the checksums the file's images resolve to. An image nothing backs onto but whose
// upload may still be in progress (no marker yet) is left alone.
PruneDecision decide_prune(const std::vector<HostImage>& on_hosts,
                           const std::vector<CachedImage>& cached,
                           const std::set<std::string>& wanted, bool keep_cache);

}  // namespace kumo
