// kumo images: which base images each host holds, and what prune removes.
#include "planner/images_prune.h"

#include <catch2/catch.hpp>

#include "providers/ownership.h"

using namespace kumo;

namespace {

ObservedVolume volume(const std::string& name, const std::string& backing = "") {
  ObservedVolume v;
  v.pool = "default";
  v.name = name;
  v.path = "/pool/" + name;
  v.capacity = 2ull << 30;
  v.allocation = 300ull << 20;
  v.backing_path = backing;
  v.owner = volume_owner(name);
  return v;
}

const std::string kA = image_volume_name("sha256", std::string(64, 'a'));
const std::string kB = image_volume_name("sha256", std::string(64, 'b'));
const std::string kC = image_volume_name("sha256", std::string(64, 'c'));
const std::string kD = image_volume_name("sha256", std::string(64, 'd'));

ObservedHost host_with_images() {
  ObservedHost h;
  h.host = "hv1";
  h.volumes = {volume(kA),
               volume(image_marker_name(kA)),  // complete, in use
               volume("kumo_fest_web_root.qcow2", "/pool/" + kA),
               volume(kB),
               volume(image_marker_name(kB)),  // complete, unused
               volume(kC),                     // no marker: an upload in progress?
               volume(image_marker_name(kD)),  // a marker left alone
               volume("handmade.qcow2")};
  ObservedVolume elsewhere = volume(kD);
  elsewhere.pool = "other";  // another pool's volume is not this one's image
  h.volumes.push_back(elsewhere);
  return h;
}

}  // namespace

TEST_CASE("a host's base images: complete, incomplete, marker only, and who backs onto them",
          "[images]") {
  const auto images = host_images(host_with_images(), "default");
  REQUIRE(images.size() == 4);
  CHECK(images[0].volume == kA);
  CHECK(images[0].complete);
  CHECK(images[0].size == 300ull << 20);
  CHECK(images[0].used_by == std::vector<std::string>{"kumo_fest_web_root.qcow2"});
  CHECK(images[1].volume == kB);
  CHECK(images[1].used_by.empty());
  CHECK(images[2].volume == kC);
  CHECK_FALSE(images[2].complete);
  CHECK(images[3].volume == kD);
  CHECK(images[3].marker_only);
}

TEST_CASE(
    "prune removes unused complete images and lone markers, never one in use or in "
    "progress",
    "[images]") {
  const auto on_hosts = host_images(host_with_images(), "default");
  std::vector<CachedImage> cached(2);
  cached[0].checksum = "sha256:" + std::string(64, 'a');
  cached[0].path = "/c/a";
  cached[1].checksum = "sha256:" + std::string(64, 'e');
  cached[1].path = "/c/e";
  const std::set<std::string> wanted = {"sha256:" + std::string(64, 'a')};
  const PruneDecision d = decide_prune(on_hosts, cached, wanted, false);
  std::vector<std::string> removed;
  for (const auto& h : d.host_removals) removed.push_back(h.volume);
  CHECK(removed == std::vector<std::string>{kB, kD});
  REQUIRE(d.cache_removals.size() == 1);
  CHECK(d.cache_removals[0].path == "/c/e");  // the file no longer uses it
  CHECK(decide_prune(on_hosts, cached, wanted, /*keep_cache=*/true).cache_removals.empty());
}
