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
        c.source = meta.value("source", "");
        c.format = meta.value("format", "");
        c.fetched_at = meta.value("fetched_at", "");
      }
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Runner add_images_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "images", "List the local image cache and the base images on each host of the file");
  struct State {
    ConfigArgs config;
    CacheArgs cache;
    bool json = false, dry_run = false, keep_cache = false;
    TimeoutArg timeout;
  };
  auto s = std::make_shared<State>();
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
    const std::string cache_dir = s->cache.resolve(&error);
    if (cache_dir.empty()) {
      std::cerr << "kumo images: " << error << "\n";
      return 1;
    }
    LoadResult loaded = s->config.load();
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) return 1;
    const ClusterConfig& cfg = *loaded.config;
    const auto timeout = s->timeout.value();
    auto provider = make_libvirt_provider();
    const DesiredCluster desired = expand(cfg);
    auto observed = observe_hosts(*provider, desired.targets(), timeout);
    int rc = 0;
    std::vector<HostImage> on_hosts;
    for (std::size_t i = 0; i < observed.size(); ++i) {
      if (!observed[i].reachable) {
        std::cerr << "kumo images: " << observed[i].error << "\n";
        rc = 1;
        continue;
      }
      for (auto& img : host_images(observed[i], desired.hosts[i].pool)) on_hosts.push_back(img);
    }
    const auto cached = cache_entries(cache_dir);

    if (!prune->parsed()) {
      if (s->json) {
        json out = {{"cache_dir", cache_dir}, {"cache", json::array()}, {"hosts", json::array()}};
        for (const auto& c : cached)
          out["cache"].push_back({{"checksum", c.checksum},
                                  {"path", c.path},
                                  {"size", c.size},
                                  {"format", c.format},
                                  {"source", c.source},
                                  {"fetched_at", c.fetched_at}});
        for (const auto& h : on_hosts)
          out["hosts"].push_back({{"host", h.host},
                                  {"volume", h.volume},
                                  {"size", h.size},
                                  {"complete", h.complete},
                                  {"used_by", h.used_by}});
        std::cout << out.dump(2) << "\n";
        return rc;
      }
      std::cout << "Local cache (" << cache_dir << "):\n";
      if (cached.empty()) std::cout << "  (empty)\n";
      for (const auto& c : cached) {
        std::cout << "  " << c.checksum.substr(0, 23) << "…  " << views::human_bytes(c.size) << "  "
                  << c.format << "  " << c.source << "\n";
      }
      std::cout << "\nOn the hosts:\n";
      if (on_hosts.empty()) std::cout << "  (none)\n";
      for (const auto& h : on_hosts) {
        std::cout << "  " << h.host << "  " << h.volume.substr(0, 34) << "…  "
                  << views::human_bytes(h.size) << "  "
                  << (h.marker_only ? "marker only"
                      : h.complete  ? "complete"
                                    : "INCOMPLETE (an upload was cut short; apply redoes it)")
                  << "  used by " << h.used_by.size() << " volume"
                  << (h.used_by.size() == 1 ? "" : "s") << "\n";
      }
      return rc;
    }

    // prune
    if (rc != 0) {
      std::cerr << "kumo images prune: not every host could be read; nothing was removed\n";
      return 1;
    }
    std::set<std::string> wanted;  // checksums this file uses
    const ImageResolver resolve = make_image_resolver(cache_dir);
    for (const auto& img : desired.images) {
      const ResolvedImage r = resolve(img);
      if (!r.error.empty()) {
        std::cerr << "kumo images prune: " << r.error << "; nothing was removed\n";
        return 1;
      }
      if (r.checksum) wanted.insert(r.checksum->str());
    }
    const PruneDecision decision = decide_prune(on_hosts, cached, wanted, s->keep_cache);
    auto connector = make_connector();
    int removed = 0;
    for (const auto& h : decision.host_removals) {
      std::cout << (s->dry_run ? "would remove " : "removing ") << h.volume << " from " << h.host
                << "\n";
      if (s->dry_run) continue;
      const DesiredHost* hc = desired.find_host(h.host);
      try {
        auto session = connector->connect(hc->target(), timeout);
        session->delete_volume(image_marker_name(h.volume));
        if (!h.marker_only) session->delete_volume(h.volume);
        ++removed;
      } catch (const HostError& e) {
        std::cerr << "kumo images prune: " << e.what() << "\n";
        rc = 1;
      }
    }
    for (const auto& c : decision.cache_removals) {
      std::cout << (s->dry_run ? "would remove " : "removing ") << "cached " << c.checksum << " ("
                << views::human_bytes(c.size) << ")\n";
      if (s->dry_run) continue;
      std::error_code ec;
      fs::remove(c.path, ec);
      fs::remove(c.path + ".json", ec);
      ++removed;
    }
    if (!global.quiet) std::cout << (s->dry_run ? "" : std::to_string(removed) + " removed.\n");
    return rc;
  };
}

}  // namespace kumo::cli
