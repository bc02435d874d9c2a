// Shared by the executor tests: a three-host fake lab (FakeProvider + FakeConnector), a fake
// image, a cluster to apply, and helpers to plan, apply and look at the outcome.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>

#include <catch2/catch.hpp>

#include "planner/config/loader.h"
#include "planner/executor.h"
#include "planner/planner.h"
#include "tests/fake_provider.h"
#include "tests/fake_session.h"

namespace kumo::test {

inline const std::string kHex = std::string(64, 'a');

// An attribute value of text, as the plan holds it.
inline Value V(const char* text) {
  return Value(std::string(text));
}

inline ClusterConfig config(const std::string& text) {
  LoadOptions opts;
  opts.environment["HOME"] = "/home/test";
  auto r = load_config_text(text, "kumo.yaml", "/tmp", opts);
  std::string errors;
  for (const auto& d : r.diagnostics.sorted()) errors += format_diagnostic(d) + "\n";
  INFO(errors);
  REQUIRE(r.config.has_value());
  return *r.config;
}

inline const std::string kCluster = R"(
cluster: fest
hosts:
  hv1: {uri: "test:///hv1"}
  hv2: {uri: "test:///hv2"}
  hv3: {uri: "test:///hv3"}
images:
  deb: {path: /srv/deb.qcow2, checksum: "sha256:)" +
                                    std::string(64, 'a') + R"("}
networks:
  front: {cidr: 10.20.0.0/24, domain: fest.internal}
vms:
  web:
    count: 3
    image: deb
    memory: 512MiB
    disk: 4GiB
    networks: [{network: front}]
    disks: {data: 1GiB}
    cloud_init: {packages: []}
)";

// A small "image": a qcow2 header announcing 2 GiB, then filler.
struct TempImage {
  std::string path;
  TempImage() {
    char tmpl[] = "/tmp/kumo-exec-test-XXXXXX";
    const int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path = tmpl;
    std::string data(70000, 'x');
    const std::string magic = "QFI\xfb";
    data.replace(0, 4, magic);
    const std::uint64_t vsize = 2ull << 30;
    for (int i = 0; i < 8; ++i) data[24 + i] = static_cast<char>((vsize >> (8 * (7 - i))) & 0xff);
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  ~TempImage() { std::remove(path.c_str()); }
};

struct Lab : FakeProvider {
  FakeConnector connector{*this};
  TempImage image;
  std::atomic<int> fetches{0};
  ImageFetcher fetcher = [this](const ImagePlan&, const FetchTick& tick) {
    ++fetches;
    if (tick) tick(70000, 70000);
    return FetchedImage{image.path, "sha256:" + kHex, 70000, "qcow2"};
  };
  Lab() {
    host("hv1");
    host("hv2");
    host("hv3");
  }

  Plan plan(const ClusterConfig& cfg, PlanOptions opts = {}) {
    opts.timeout = std::chrono::milliseconds(500);
    auto r = make_plan(expand(cfg), *this, opts);
    std::string errors;
    for (const auto& d : r.errors.sorted()) errors += format_diagnostic(d) + "\n";
    INFO(errors);
    REQUIRE(r.plan.has_value());
    return *r.plan;
  }

  // Networks get random UUIDs when apply makes them; golden renderings want the same text every
  // run: each network's UUID becomes uuid-<name>, and kumo's record of it follows.
  void stable_network_uuids(const std::string& cluster) {
    std::lock_guard<std::recursive_mutex> lock(state_mu);
    for (const char* h : {"hv1", "hv2", "hv3"}) {
      for (auto& n : host(h).networks) {
        std::string stable = "uuid-" + n.name;  // like a real UUID, without '_'
        std::replace(stable.begin(), stable.end(), '_', '-');
        for (auto& v : host(h).volumes) {
          const auto owner = network_owner(n.name);
          if (!owner) continue;
          const std::string net = owner->address.substr(std::string("network.").size());
          if (v.name != network_record_name(cluster, net, n.uuid)) continue;
          v.name = network_record_name(cluster, net, stable);
          v.path = "/pool/" + std::string(h) + "/" + v.name;
        }
        n.uuid = stable;
      }
    }
  }

  ExecResult apply(const Plan& p, ExecOptions opts = {}, std::vector<ExecEvent>* events = nullptr) {
    opts.poll = std::chrono::milliseconds(1);
    std::mutex mu;
    return execute(p, connector, fetcher, opts, [&](const ExecEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (events) events->push_back(e);
    });
  }
};

// A plan that may fail, and its diagnostics as kumo prints them.
inline PlanResult plan_result(Lab& lab, const std::string& text) {
  PlanOptions opts;
  opts.timeout = std::chrono::milliseconds(500);
  return make_plan(expand(config(text)), lab, opts);
}

inline std::string errors_of(const PlanResult& r) {
  std::string out;
  for (const auto& d : r.errors.sorted()) out += format_diagnostic(d) + "\n";
  return out;
}

inline std::string failures(const ExecResult& r) {
  std::string out;
  for (const auto& s : r.steps)
    if (s.status != StepStatus::Ok)
      out += s.step + ": " + to_string(s.status) + ": " + s.message + "\n";
  return out;
}

inline const StepOutcome* step(const ExecResult& r, const std::string& id) {
  for (const auto& s : r.steps)
    if (s.step == id) return &s;
  return nullptr;
}

}  // namespace kumo::test
