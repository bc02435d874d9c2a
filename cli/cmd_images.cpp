// kumo images: what the local cache holds and which base images each host holds (and who backs
// onto them); kumo images prune: remove those nothing uses.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/engine.h"
#include "cli/views/apply_view.h"
#include "planner/desired.h"
#include "planner/images_prune.h"
#include "planner/observe.h"
#include "providers/images/fetch.h"
#include "providers/libvirt/libvirt_provider.h"
#include "providers/ownership.h"
#include "providers/redact.h"

namespace kumo::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<CachedImage> cache_entries(const std::string& dir) {
  std::vector<CachedImage> out;
  for (const char* algo : {"sha256", "sha512"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(dir) / algo, ec)) {
      if (e.path().extension() == ".json") continue;
      CachedImage c;
      c.checksum = std::string(algo) + ":" + e.path().filename().string();
      c.path = e.path().string();
      c.size = fs::file_size(e.path(), ec);
      std::ifstream in(e.path().string() + ".json");
      json meta = json::parse(in, nullptr, false);
      if (meta.is_object()) {
        c.source = redact_url(meta.value("source", ""));  // older kumo stored it as written
        c.format = meta.value("format", "");
        c.fetched_at = meta.value("fetched_at", "");
      }
      out.push_back(c);
    }
  }
  return out;
}

struct ImagesState {
  ConfigArgs config;
  CacheArgs cache;
  bool json = false, dry_run = false, keep_cache = false;
  TimeoutArg timeout;
};

// What kumo images reads: the local cache and every host's base images.
struct Inventory {
  std::string cache_dir;
  std::vector<CachedImage> cached;
  std::vector<HostImage> on_hosts;
  bool all_hosts_read = true;
};

int list_images(const ImagesState& s, const Inventory& inv) {
  const int rc = inv.all_hosts_read ? 0 : 1;
  if (s.json) {
    json out = {{"cache_dir", inv.cache_dir}, {"cache", json::array()}, {"hosts", json::array()}};
    for (const auto& c : inv.cached)
      out["cache"].push_back({{"checksum", c.checksum},
                              {"path", c.path},
                              {"size", c.size},
                              {"format", c.format},
                              {"source", c.source},
                              {"fetched_at", c.fetched_at}});
    for (const auto& h : inv.on_hosts)
      out["hosts"].push_back({{"host", h.host},
                              {"volume", h.volume},
                              {"size", h.size},
                              {"complete", h.complete},
                              {"used_by", h.used_by}});
    std::cout << out.dump(2) << "\n";
    return rc;
  }
  std::cout << "Local cache (" << inv.cache_dir << "):\n";
  if (inv.cached.empty()) std::cout << "  (empty)\n";
  for (const auto& c : inv.cached) {
    std::cout << "  " << c.checksum.substr(0, 23) << "…  " << views::human_bytes(c.size) << "  "
              << c.format << "  " << c.source << "\n";
  }
  std::cout << "\nOn the hosts:\n";
  if (inv.on_hosts.empty()) std::cout << "  (none)\n";
  for (const auto& h : inv.on_hosts) {
    std::cout << "  " << h.host << "  " << h.volume.substr(0, 34) << "…  "
              << views::human_bytes(h.size) << "  "
              << (h.marker_only ? "marker only"
                  : h.complete  ? "complete"
                                : "INCOMPLETE (an upload was cut short; apply redoes it)")
              << "  used by " << h.used_by.size() << " volume" << (h.used_by.size() == 1 ? "" : "s")
              << "\n";
  }
  return rc;
}

int prune_images(const ImagesState& s, const Inventory& inv, const DesiredCluster& desired,
                 const GlobalOptions& global) {
  if (!inv.all_hosts_read) {
    std::cerr << "kumo images prune: not every host could be read; nothing was removed\n";
    return 1;
  }
  std::set<std::string> wanted;  // checksums this file uses
  const ImageResolver resolve = make_image_resolver(inv.cache_dir);
  for (const auto& img : desired.images) {
    const ResolvedImage r = resolve(img);
    if (!r.error.empty()) {
      std::cerr << "kumo images prune: " << r.error << "; nothing was removed\n";
      return 1;
    }
    if (r.checksum) wanted.insert(r.checksum->str());
  }
  const PruneDecision decision = decide_prune(inv.on_hosts, inv.cached, wanted, s.keep_cache);
  auto connector = make_connector();
  int removed = 0, rc = 0;
  for (const auto& h : decision.host_removals) {
    std::cout << (s.dry_run ? "would remove " : "removing ") << h.volume << " from " << h.host
              << "\n";
    if (s.dry_run) continue;
    try {
      auto session = connector->connect(desired.find_host(h.host)->target(), s.timeout.value());
      session->delete_volume(image_marker_name(h.volume));
      if (!h.marker_only) session->delete_volume(h.volume);
      ++removed;
    } catch (const HostError& e) {
      std::cerr << "kumo images prune: " << e.what() << "\n";
      rc = 1;
    }
  }
  for (const auto& c : decision.cache_removals) {
    std::cout << (s.dry_run ? "would remove " : "removing ") << "cached " << c.checksum << " ("
              << views::human_bytes(c.size) << ")\n";
    if (s.dry_run) continue;
    std::error_code ec;
    fs::remove(c.path, ec);
    fs::remove(c.path + ".json", ec);
    ++removed;
  }
  if (!global.quiet) std::cout << (s.dry_run ? "" : std::to_string(removed) + " removed.\n");
  return rc;
}

}  // namespace

Runner add_images_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "images", "List the local image cache and the base images on each host of the file");
  auto s = std::make_shared<ImagesState>();
  s->config.add_to(*cmd);
  s->cache.add_to(*cmd);
  cmd->add_flag("--json", s->json, "Print JSON");
  s->timeout.add_to(*cmd);
  auto* prune = cmd->add_subcommand(
      "prune",
      "Remove base images no volume backs onto from every host of the file, and cached images "
      "the file does not use");
  prune->add_flag("--dry-run", s->dry_run, "Only say what would be removed");
  prune->add_flag("--keep-cache", s->keep_cache, "Leave the local cache alone");
  return [s, &global, cmd, prune]() -> int {
    if (!cmd->parsed()) return -1;
    std::string error;
    Inventory inv;
    inv.cache_dir = s->cache.resolve(&error);
    if (inv.cache_dir.empty()) {
      std::cerr << "kumo images: " << error << "\n";
      return 1;
    }
    LoadResult loaded = s->config.load();
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) return 1;
    const DesiredCluster desired = expand(*loaded.config);
    auto provider = make_libvirt_provider();
    const auto observed = observe_hosts(*provider, desired.targets(), s->timeout.value());
    for (std::size_t i = 0; i < observed.size(); ++i) {
      if (!observed[i].reachable) {
        std::cerr << "kumo images: " << observed[i].error << "\n";
        inv.all_hosts_read = false;
        continue;
      }
      for (auto& img : host_images(observed[i], desired.hosts[i].pool)) inv.on_hosts.push_back(img);
    }
    inv.cached = cache_entries(inv.cache_dir);
    return prune->parsed() ? prune_images(*s, inv, desired, global) : list_images(*s, inv);
  };
}

}  // namespace kumo::cli
