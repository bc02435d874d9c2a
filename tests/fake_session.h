// The write side of FakeProvider: sessions that change the fake hosts' state the way libvirt
// would, so a test can apply a plan and plan again. Records every call (in order, with the
// host), counts how many calls run at once per host, and fails or slows calls on request.
#pragma once

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fake_provider.h"
#include "providers/host_session.h"
#include "providers/ownership.h"

namespace kumo::test {

class FakeConnector;

// What the fake writes at the head of a qcow2 volume's bytes when it is read whole: its
// virtual size, as a real qcow2 header carries it.
inline constexpr const char* kFakeQcow2 = "kumo-fake-qcow2 capacity=";

class FakeSession : public HostSession {
 public:
  FakeSession(FakeConnector& c, HostTarget t) : c_(c), target_(std::move(t)) {}
  const HostTarget& target() const override { return target_; }
  std::string pool_path() override;

  std::optional<ObservedVolume> volume(const std::string& name) override;
  void create_volume(const VolumeSpec& spec) override;
  void upload_volume(const std::string& name, std::uint64_t size, const ByteReader& read,
                     const TransferTick& tick) override;
  std::string read_volume(const std::string& name, std::uint64_t offset,
                          std::size_t length) override;
  void delete_volume(const std::string& name) override;
  void resize_volume(const std::string& name, std::uint64_t capacity) override;
  bool create_volume_exclusive(const std::string& name, const std::string& content) override;
  std::string tail_pool_file(const std::string& name, std::size_t max) override;
  std::optional<ObservedNetwork> network(const std::string& name) override;
  void define_network(const NetworkSpec& spec) override;
  void start_network(const std::string& name, bool autostart) override;
  void delete_network(const std::string& name) override;
  void update_network_hosts(const std::string& name, const NetworkHostsChange& change) override;
  std::optional<ObservedDomain> domain(const std::string& name) override;
  void define_domain(const DomainSpec& spec) override;
  void start_domain(const std::string& name) override;
  void set_domain_autostart(const std::string& name, bool autostart) override;
  void delete_domain(const std::string& name) override;
  bool shutdown_domain(const std::string& name, std::chrono::seconds timeout) override;
  void set_domain_vcpus(const std::string& name, int vcpus) override;
  void set_domain_memory(const std::string& name, std::uint64_t bytes) override;
  void resize_domain_disk(const std::string& name, const std::string& target,
                          std::uint64_t capacity) override;
  void set_domain_owner(const std::string& name, const Ownership& owner) override;
  void rename_domain(const std::string& name, const std::string& to) override;
  std::vector<ObservedDisk> live_disks(const std::string& name) override;
  void attach_disk(const std::string& name, const DomainDisk& disk) override;
  nlohmann::json agent_command(const std::string& domain, const nlohmann::json& command,
                               std::chrono::seconds timeout) override;
  std::vector<GuestAddress> addresses(const std::string& domain) override;
  void lend_connection() override;
  void migrate_domain(const std::string& name, HostSession& dest,
                      const MigrationRequest& req) override;
  bool resume_after_migration(const std::string& name) override;
  std::unique_ptr<VolumeReader> open_volume(const std::string& name) override;
  std::optional<ObservedPool> pool(const std::string& name) override;
  void define_pool(const PoolSpec& spec) override;
  void start_pool(const std::string& name, bool autostart) override;
  void delete_pool(const std::string& name) override;

 private:
  // Logs the call, applies the configured delay and failure, tracks concurrency.
  struct Call {
    Call(FakeSession& s, const std::string& op, const std::string& name);
    ~Call();
    FakeSession& s;
    std::string op_;  // "delete_domain old"
  };
  ObservedHost& host();
  FakeConnector& c_;
  HostTarget target_;
};

class FakeConnector : public HostConnector {
 public:
  explicit FakeConnector(FakeProvider& p) : provider(p) {}
  std::unique_ptr<HostSession> connect(const HostTarget& host, std::chrono::milliseconds) override {
    log("connect", host.name, "");
    if (on_connect) on_connect(host.name);
    if (provider.unreachable.count(host.name))
      throw HostError("host " + host.name + " (" + host.uri + "): connection refused");
    return std::make_unique<FakeSession>(*this, host);
  }

  std::vector<std::string> calls() {
    std::lock_guard<std::mutex> lock(mu);
    return log_;
  }
  std::size_t count(const std::string& prefix) {
    std::size_t n = 0;
    for (const auto& c : calls()) n += c.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
  // Index of the first call starting with `prefix`, or -1.
  long index_of(const std::string& prefix) {
    const auto all = calls();
    for (std::size_t i = 0; i < all.size(); ++i)
      if (all[i].rfind(prefix, 0) == 0) return static_cast<long>(i);
    return -1;
  }

  void log(const std::string& op, const std::string& host, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu);
    log_.push_back(host + " " + op + " " + name);
  }

  FakeProvider& provider;
  std::mutex mu;
  std::vector<std::string> log_;
  std::set<std::string> fail;  // "host op" or "host op name": throw HostError
  std::chrono::milliseconds delay{0};
  bool volume_stamps = true;  // false: volumes come without `changed`, as from a logical pool
  std::map<std::string, std::chrono::milliseconds> slow;  // "host op name": this call is slow
  // Called with "host op name" as each call begins, on the caller's thread, before the call
  // acts: a test changes the hosts or holds a call back there. Set it before any call runs.
  std::function<void(const std::string& call)> on_call;
  // Called with the host's name as a connection to it begins, on the caller's thread.
  std::function<void(const std::string& host)> on_connect;
  // Every call's begin and end in order ("begin hv1 delete_domain old", "end ..."): what ran
  // while something else was still running.
  std::vector<std::string> timeline;
  long timeline_index(const std::string& entry) {
    std::lock_guard<std::mutex> lock(mu);
    for (std::size_t i = 0; i < timeline.size(); ++i)
      if (timeline[i] == entry) return static_cast<long>(i);
    return -1;
  }
  std::map<std::string, int> in_flight, max_in_flight;  // per host
  int in_flight_total = 0, max_in_flight_total = 0;
  std::map<std::string, std::string> contents;    // "host/volume" -> bytes
  std::map<std::string, DomainSpec> defined;      // "host/domain" -> the last definition
  std::map<std::string, std::string> cloud_init;  // domain -> status (default "done")
  std::set<std::string> agent_down;               // domains whose agent never answers
  std::string shared_pool_path;                   // every host's pool directory ("": /pool/<host>)
  std::set<std::string> ignores_acpi;             // domains that must be forced off
  std::set<std::string> no_file_api;              // agents with guest-file-* disabled
  // "host/domain" -> the disks of the running domain, when they differ from its definition
  // (hot-plugged since it started). Absent: a running domain runs its definition.
  std::map<std::string, std::vector<ObservedDisk>> live;
};

inline FakeSession::Call::Call(FakeSession& s_, const std::string& op, const std::string& name)
    : s(s_), op_(op + " " + name) {
  auto& c = s.c_;
  c.log(op, s.target_.name, name);
  if (c.on_call) c.on_call(s.target_.name + " " + op + " " + name);
  {
    std::lock_guard<std::mutex> lock(c.mu);
    const int n = ++c.in_flight[s.target_.name];
    c.max_in_flight[s.target_.name] = std::max(c.max_in_flight[s.target_.name], n);
    c.max_in_flight_total = std::max(c.max_in_flight_total, ++c.in_flight_total);
  }
  if (c.delay.count() > 0) std::this_thread::sleep_for(c.delay);
  std::chrono::milliseconds extra{0};
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.timeline.push_back("begin " + s.target_.name + " " + op + " " + name);
    if (auto it = c.slow.find(s.target_.name + " " + op + " " + name); it != c.slow.end())
      extra = it->second;
  }
  if (extra.count() > 0) std::this_thread::sleep_for(extra);
  bool failing;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    failing = c.fail.count(s.target_.name + " " + op) ||
              c.fail.count(s.target_.name + " " + op + " " + name);
  }
  if (failing) {
    std::lock_guard<std::mutex> lock(c.mu);
    --c.in_flight[s.target_.name];
    --c.in_flight_total;
    throw HostError("host " + s.target_.name + ": " + op + " " + name + ": injected failure");
  }
}

inline FakeSession::Call::~Call() {
  std::lock_guard<std::mutex> lock(s.c_.mu);
  s.c_.timeline.push_back("end " + s.target_.name + " " + op_);
  --s.c_.in_flight[s.target_.name];
  --s.c_.in_flight_total;
}

inline std::string FakeSession::pool_path() {
  return c_.shared_pool_path.empty() ? "/pool/" + target_.name : c_.shared_pool_path;
}

inline ObservedHost& FakeSession::host() {
  return c_.provider.host(target_.name);
}

inline std::optional<ObservedVolume> FakeSession::volume(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (const auto& v : host().volumes) {
    if (v.pool != target_.pool || v.name != name) continue;
    // As a file's timestamps: a volume made anew (FakeProvider::add_volume numbers each), or
    // written to, changed.
    ObservedVolume found = v;
    std::lock_guard<std::mutex> l2(c_.mu);
    const auto it = c_.contents.find(target_.name + "/" + name);
    found.changed = v.changed + " " +
                    std::to_string(std::hash<std::string>{}(it == c_.contents.end() ? std::string()
                                                                                    : it->second));
    if (!c_.volume_stamps) found.changed.clear();
    return found;
  }
  return std::nullopt;
}

inline void FakeSession::create_volume(const VolumeSpec& spec) {
  Call call(*this, "create_volume", spec.name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  if (volume(spec.name)) throw HostError("host " + target_.name + ": volume exists: " + spec.name);
  ObservedVolume& v = c_.provider.add_volume(target_.name, spec.name, spec.capacity, target_.pool);
  v.path = pool_path() + "/" + spec.name;
  v.format = spec.format;
  v.backing_path = spec.backing_path;
}

inline void FakeSession::upload_volume(const std::string& name, std::uint64_t size,
                                       const ByteReader& read, const TransferTick& tick) {
  Call call(*this, "upload_volume", name);
  std::string data;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const std::size_t n = read(buf.data(), buf.size());
    if (n == 0) break;
    data.append(buf.data(), n);
    if (tick) tick({data.size(), size});
  }
  if (data.size() != size) throw HostError("host " + target_.name + ": short upload of " + name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  if (volume(name)) throw HostError("host " + target_.name + ": volume exists: " + name);
  ObservedVolume& v = c_.provider.add_volume(target_.name, name, size, target_.pool);
  v.path = pool_path() + "/" + name;
  v.format = "raw";
  if (data.rfind(kFakeQcow2, 0) == 0) {  // a qcow2 file copied whole (a cold move)
    v.format = "qcow2";
    v.capacity = std::stoull(data.substr(std::strlen(kFakeQcow2)));
    data.erase(0, data.find('\n') + 1);
  }
  std::lock_guard<std::mutex> l2(c_.mu);
  c_.contents[target_.name + "/" + name] = data;
}

inline std::string FakeSession::read_volume(const std::string& name, std::uint64_t offset,
                                            std::size_t length) {
  Call call(*this, "read_volume", name);
  std::lock_guard<std::mutex> lock(c_.mu);
  const std::string& d = c_.contents[target_.name + "/" + name];
  if (offset >= d.size()) return "";
  return d.substr(offset, length);
}

inline void FakeSession::delete_volume(const std::string& name) {
  Call call(*this, "delete_volume", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  std::erase_if(host().volumes,
                [&](const ObservedVolume& v) { return v.pool == target_.pool && v.name == name; });
}

inline void FakeSession::resize_volume(const std::string& name, std::uint64_t capacity) {
  Call call(*this, "resize_volume", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& v : host().volumes) {
    if (v.pool != target_.pool || v.name != name) continue;
    if (capacity < v.capacity) throw HostError("host " + target_.name + ": cannot shrink " + name);
    v.capacity = capacity;
    return;
  }
  throw HostError("host " + target_.name + ": no volume " + name);
}

inline bool FakeSession::create_volume_exclusive(const std::string& name,
                                                 const std::string& content) {
  Call call(*this, "create_volume_exclusive", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  // As libvirt: a volume needs its pool (the lock's first volume shows a missing one).
  const auto& pools = host().pools;
  if (std::none_of(pools.begin(), pools.end(),
                   [&](const ObservedPool& p) { return p.name == target_.pool; }))
    throw HostError("host " + target_.name + ": storage pool \"" + target_.pool + "\" not found");
  if (volume(name)) return false;
  ObservedVolume& v = c_.provider.add_volume(target_.name, name, content.size(), target_.pool);
  v.path = pool_path() + "/" + name;
  v.format = "raw";
  std::lock_guard<std::mutex> l2(c_.mu);
  c_.contents[target_.name + "/" + name] = content;
  return true;
}

inline std::string FakeSession::tail_pool_file(const std::string& name, std::size_t max) {
  std::lock_guard<std::mutex> lock(c_.mu);
  const std::string& d = c_.contents[target_.name + "/" + name];
  return d.size() > max ? d.substr(d.size() - max) : d;
}

inline std::optional<ObservedNetwork> FakeSession::network(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (const auto& n : host().networks)
    if (n.name == name) return n;
  return std::nullopt;
}

inline void FakeSession::define_network(const NetworkSpec& spec) {
  Call call(*this, "define_network", spec.name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  if (network(spec.name)) throw HostError("host " + target_.name + ": network exists");
  ObservedNetwork& n = c_.provider.add_network(target_.name, spec.name);
  if (!spec.uuid.empty()) n.uuid = spec.uuid;
  n.forward_mode = spec.mode == "isolated" ? "" : spec.mode;
  n.bridge = spec.bridge;
  n.ip = spec.address;
  n.prefix = spec.prefix;
  n.dhcp_start = spec.dhcp_start;
  n.dhcp_end = spec.dhcp_end;
  for (const auto& h : spec.dhcp_hosts) n.dhcp_hosts.push_back({h.mac, h.ip, h.name});
  n.dns_hosts = dns_entries(spec);
  n.domain = spec.domain;
  n.mtu = spec.mtu;
}

inline void FakeSession::start_network(const std::string& name, bool autostart) {
  Call call(*this, "start_network", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& n : host().networks) {
    if (n.name != name) continue;
    n.active = true;
    n.autostart = autostart;
  }
}

inline void FakeSession::delete_network(const std::string& name) {
  Call call(*this, "delete_network", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  std::erase_if(host().networks, [&](const ObservedNetwork& n) { return n.name == name; });
}

inline void FakeSession::update_network_hosts(const std::string& name,
                                              const NetworkHostsChange& change) {
  Call call(*this, "update_network_hosts", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& n : host().networks) {
    if (n.name != name) continue;
    for (const auto& h : change.dns_remove) {
      if (std::erase(n.dns_hosts, h) == 0)
        throw HostError("host " + target_.name + ": no such DNS host entry " + h.ip);
    }
    for (const auto& h : change.dhcp_remove) {
      if (std::erase_if(n.dhcp_hosts, [&](const ObservedDhcpHost& o) {
            return o.mac == h.mac && o.ip == h.ip && o.name == h.name;
          }) == 0)
        throw HostError("host " + target_.name + ": no such DHCP host entry " + h.mac);
    }
    for (const auto& h : change.dhcp_add) {
      for (const auto& o : n.dhcp_hosts) {
        if (o.mac == h.mac || o.ip == h.ip)
          throw HostError("host " + target_.name + ": DHCP entry clashes with " + o.mac);
      }
      n.dhcp_hosts.push_back({h.mac, h.ip, h.name});
    }
    for (const auto& h : change.dns_add) n.dns_hosts.push_back(h);
    return;
  }
  throw HostError("host " + target_.name + ": no network " + name);
}

inline std::optional<ObservedDomain> FakeSession::domain(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (const auto& d : host().domains)
    if (d.name == name) return d;
  return std::nullopt;
}

inline void FakeSession::define_domain(const DomainSpec& spec) {
  Call call(*this, "define_domain", spec.name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  bool was_active = false;
  for (const auto& d : host().domains) {
    if (d.name != spec.name || !d.active) continue;
    was_active = true;
    c_.live.emplace(target_.name + "/" + spec.name, d.disks);  // what runs stays as it is
  }
  c_.defined[target_.name + "/" + spec.name] = spec;
  std::erase_if(host().domains, [&](const ObservedDomain& d) { return d.name == spec.name; });
  ObservedDomain& d =
      c_.provider.add_domain(target_.name, spec.name, spec.owner, spec.memory, spec.vcpus);
  d.max_memory = std::max(spec.memory, spec.max_memory);
  d.max_vcpus = std::max(spec.vcpus, spec.max_vcpus);
  d.active = false;
  d.state = "shutoff";
  d.autostart = spec.autostart;
  d.virt_type = spec.virt_type;
  d.firmware = spec.firmware == "efi" ? "uefi" : "";
  d.secure_boot = spec.secure_boot;
  d.tpm = spec.tpm;
  for (const auto& n : spec.nics) {
    const char* type = !n.network.empty() ? "network" : !n.direct.empty() ? "direct" : "bridge";
    d.nics.push_back({!n.network.empty()  ? n.network
                      : !n.direct.empty() ? n.direct
                                          : n.bridge,
                      type, n.mac, n.model, n.mode});
  }
  for (const auto& disk : spec.disks)
    d.disks.push_back(
        {disk.target, "disk", pool_path() + "/" + disk.volume, disk.format, disk.readonly});
  if (was_active) {  // redefining a running domain changes its persistent definition only
    d.active = true;
    d.state = "running";
  }
}

inline void FakeSession::start_domain(const std::string& name) {
  Call call(*this, "start_domain", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  c_.live.erase(target_.name + "/" + name);
  for (auto& d : host().domains) {
    if (d.name != name) continue;
    d.active = true;
    d.state = "running";
  }
}

inline void FakeSession::set_domain_autostart(const std::string& name, bool autostart) {
  Call call(*this, "set_domain_autostart", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& d : host().domains)
    if (d.name == name) d.autostart = autostart;
}

inline void FakeSession::delete_domain(const std::string& name) {
  Call call(*this, "delete_domain", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  c_.live.erase(target_.name + "/" + name);
  std::erase_if(host().domains, [&](const ObservedDomain& d) { return d.name == name; });
}

inline bool FakeSession::shutdown_domain(const std::string& name, std::chrono::seconds) {
  Call call(*this, "shutdown_domain", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  bool forced = false;
  {
    std::lock_guard<std::mutex> l2(c_.mu);
    forced = c_.ignores_acpi.count(name) > 0;
  }
  c_.live.erase(target_.name + "/" + name);
  for (auto& d : host().domains) {
    if (d.name != name) continue;
    d.active = false;
    d.state = "shutoff";
  }
  return !forced;
}

inline void FakeSession::set_domain_vcpus(const std::string& name, int vcpus) {
  Call call(*this, "set_domain_vcpus", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& d : host().domains) {
    if (d.name != name) continue;
    if (vcpus > d.max_vcpus) throw HostError("host " + target_.name + ": beyond max vCPUs");
    d.vcpus = vcpus;
  }
}

inline void FakeSession::set_domain_memory(const std::string& name, std::uint64_t bytes) {
  Call call(*this, "set_domain_memory", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& d : host().domains) {
    if (d.name != name) continue;
    if (bytes > d.max_memory) throw HostError("host " + target_.name + ": beyond max memory");
    d.memory = bytes;
  }
}

// Logged but not counted as in flight: the executor writes it from the wait step, which runs
// outside the parallelism limits (like the agent's calls).
// The fake's migration: the destination's volumes named like the source's get their contents,
// the domain goes over running (UUID kept) as req.persistent describes it.
inline void FakeSession::migrate_domain(const std::string& name, HostSession& dest,
                                        const MigrationRequest& req) {
  Call call(*this, "migrate_domain", name);
  auto* to = dynamic_cast<FakeSession*>(&dest);
  if (!to) throw HostError("host " + target_.name + ": not a fake destination");
  {
    std::lock_guard<std::mutex> l(c_.mu);
    if (c_.fail.count(to->target_.name + " incoming_migration"))
      throw HostError("host " + target_.name + ": moving domain " + name + " live to host " +
                      to->target_.name + " failed: injected failure (the domain keeps running)");
  }
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  std::optional<ObservedDomain> src;
  for (const auto& d : host().domains)
    if (d.name == name) src = d;
  if (!src || !src->active) throw HostError("host " + target_.name + ": " + name + " not running");
  for (const auto& disk : src->disks) {
    const std::string vol = disk.path.substr(disk.path.rfind('/') + 1);
    if (disk.readonly) continue;
    if (!to->volume(vol))
      throw HostError("host " + to->target_.name + ": no volume " + vol + " to migrate into");
    std::lock_guard<std::mutex> l(c_.mu);
    c_.contents[to->target_.name + "/" + vol] = c_.contents[target_.name + "/" + vol];
  }
  if (req.tick) req.tick({1, 1});
  to->define_domain(req.persistent);
  for (auto& d : to->host().domains) {
    if (d.name != name) continue;
    d.uuid = src->uuid;
    d.active = true;
    d.state = "running";
  }
  std::erase_if(host().domains, [&](const ObservedDomain& d) { return d.name == name; });
}

inline bool FakeSession::resume_after_migration(const std::string& name) {
  c_.log("resume_after_migration", target_.name, name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& d : host().domains) {
    if (d.name == name && d.state == "paused") {
      d.state = "running";
      return true;
    }
  }
  return false;
}

inline std::unique_ptr<VolumeReader> FakeSession::open_volume(const std::string& name) {
  Call call(*this, "open_volume", name);
  if (!volume(name)) throw HostError("host " + target_.name + ": no volume " + name);
  struct Reader : VolumeReader {
    std::string data;
    std::size_t pos = 0;
    std::uint64_t size() const override { return data.size(); }
    std::size_t read(char* buf, std::size_t max) override {
      const std::size_t n = std::min(max, data.size() - pos);
      std::memcpy(buf, data.data() + pos, n);
      pos += n;
      return n;
    }
  };
  auto r = std::make_unique<Reader>();
  const auto v = volume(name);
  std::lock_guard<std::mutex> l(c_.mu);
  // A qcow2 file's bytes carry its virtual size: the fake's stand-in for that header.
  r->data = (v->format == "qcow2" ? kFakeQcow2 + std::to_string(v->capacity) + "\n" : "") +
            c_.contents[target_.name + "/" + name];
  return r;
}

inline void FakeSession::set_domain_owner(const std::string& name, const Ownership& owner) {
  c_.log("set_domain_owner", target_.name, name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& d : host().domains)
    if (d.name == name) d.owner = owner;
}

inline void FakeSession::rename_domain(const std::string& name, const std::string& to) {
  Call call(*this, "rename_domain", name + " " + to);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& d : host().domains) {
    if (d.name != name) continue;
    if (d.active) throw HostError("host " + target_.name + ": cannot rename a running domain");
    d.name = to;
  }
}

inline void FakeSession::resize_domain_disk(const std::string& name, const std::string& target,
                                            std::uint64_t capacity) {
  Call call(*this, "resize_domain_disk", name + " " + target);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (const auto& d : host().domains) {
    if (d.name != name) continue;
    if (!d.active) throw HostError("host " + target_.name + ": domain is not running");
    auto it = c_.live.find(target_.name + "/" + name);
    for (const auto& disk : it != c_.live.end() ? it->second : d.disks) {
      if (disk.target != target) continue;
      for (auto& v : host().volumes) {
        if (v.path == disk.path) {
          v.capacity = capacity;
          return;
        }
      }
    }
  }
  throw HostError("host " + target_.name + ": no disk " + target + " on " + name);
}

inline std::vector<ObservedDisk> FakeSession::live_disks(const std::string& name) {
  Call call(*this, "live_disks", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (const auto& d : host().domains) {
    if (d.name != name) continue;
    if (!d.active) return {};
    auto it = c_.live.find(target_.name + "/" + name);
    return it != c_.live.end() ? it->second : d.disks;
  }
  throw HostError("host " + target_.name + ": no domain " + name);
}

inline void FakeSession::attach_disk(const std::string& name, const DomainDisk& disk) {
  Call call(*this, "attach_disk", name + " " + disk.volume + " " + disk.target);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (const auto& d : host().domains) {
    if (d.name != name) continue;
    if (!d.active) throw HostError("host " + target_.name + ": domain is not running");
    auto& running = c_.live.emplace(target_.name + "/" + name, d.disks).first->second;
    for (const auto& r : running) {
      if (r.target == disk.target)
        throw HostError("host " + target_.name + ": target " + disk.target + " already in use");
    }
    running.push_back(
        {disk.target, "disk", pool_path() + "/" + disk.volume, disk.format, disk.readonly});
    return;
  }
  throw HostError("host " + target_.name + ": no domain " + name);
}

inline nlohmann::json FakeSession::agent_command(const std::string& domain,
                                                 const nlohmann::json& command,
                                                 std::chrono::seconds) {
  {
    std::lock_guard<std::mutex> lock(c_.mu);
    if (c_.agent_down.count(domain))
      throw HostError("host " + target_.name + ": guest agent of " + domain + " did not answer");
  }
  const std::string what = command.value("execute", "");
  if (what == "guest-ping") return nlohmann::json::object();
  if (what == "guest-exec") return {{"pid", 42}};
  std::string status = "done";
  bool file_api = true;
  {
    std::lock_guard<std::mutex> lock(c_.mu);
    if (auto it = c_.cloud_init.find(domain); it != c_.cloud_init.end()) status = it->second;
    file_api = !c_.no_file_api.count(domain);
  }
  if (what.rfind("guest-file-", 0) == 0 && !file_api) {
    throw HostError("host " + target_.name + ": guest agent of " + domain +
                    " did not answer: Command " + what + " has been disabled");
  }
  // /run/cloud-init/result.json: there once cloud-init finished, with its errors.
  if (what == "guest-file-open") {
    if (status == "running" || status == "error-exec") {
      throw HostError("host " + target_.name + ": guest agent of " + domain +
                      " did not answer: failed to open file: No such file or directory");
    }
    return 7;
  }
  if (what == "guest-file-close") return nlohmann::json::object();
  std::string text;
  if (what == "guest-file-read") {
    text =
        status == "error"
            ? R"({"v1": {"datasource": "DataSourceNoCloud", "errors": ["modules-final failed: runcmd"]}})"
            : R"({"v1": {"datasource": "DataSourceNoCloud", "errors": []}})";
  } else {
    text = "..\nstatus: " + status + "\n" +
           (status == "error" ? "detail:\nmodules-final failed: runcmd\n" : "");
  }
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string enc;
  unsigned int val = 0;
  int bits = -6;
  for (unsigned char ch : text) {
    val = (val << 8) + ch;
    bits += 8;
    while (bits >= 0) {
      enc.push_back(b64[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) enc.push_back(b64[((val << 8) >> (bits + 8)) & 0x3F]);
  while (enc.size() % 4) enc.push_back('=');
  if (what == "guest-file-read") return {{"count", text.size()}, {"buf-b64", enc}, {"eof", true}};
  return {{"exited", true}, {"exitcode", status == "done" ? 0 : 1}, {"out-data", enc}};
}

inline std::vector<GuestAddress> FakeSession::addresses(const std::string& domain) {
  return {{"", "10.0.0." + std::to_string(domain.size()), "agent"}};
}

// Logged only: the fake's sessions have no connection to share.
inline void FakeSession::lend_connection() {
  c_.log("lend_connection", target_.name, "");
}

// --- pools: the host's ObservedPool list, as a real libvirt keeps its definitions.
inline std::optional<ObservedPool> FakeSession::pool(const std::string& name) {
  Call call(*this, "pool", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (const auto& p : host().pools)
    if (p.name == name) return p;
  return std::nullopt;
}

inline void FakeSession::define_pool(const PoolSpec& spec) {
  Call call(*this, "define_pool", spec.name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& p : host().pools) {
    if (p.name != spec.name) continue;
    if (p.owner_cluster != spec.cluster || p.type != spec.type)
      throw HostError("host " + target_.name + ": storage pool " + spec.name + " exists");
    p.active = p.autostart = true;
    return;
  }
  ObservedPool p;
  p.name = spec.name;
  p.type = spec.type;
  p.path = spec.type == "logical" ? "/dev/" + spec.name : spec.path;
  p.devices = spec.devices;
  p.source_name = spec.type == "logical" ? spec.name : "";
  p.owner_cluster = spec.cluster;
  p.active = p.autostart = true;
  host().pools.push_back(p);
}

inline void FakeSession::start_pool(const std::string& name, bool autostart) {
  Call call(*this, "start_pool", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (auto& p : host().pools) {
    if (p.name != name) continue;
    p.active = true;
    p.autostart = autostart;
    return;
  }
  throw HostError("host " + target_.name + ": no storage pool " + name);
}

inline void FakeSession::delete_pool(const std::string& name) {
  Call call(*this, "delete_pool", name);
  std::lock_guard<std::recursive_mutex> lock(c_.provider.state_mu);
  for (const auto& v : host().volumes) {
    if (v.pool == name)
      throw HostError("host " + target_.name + ": storage pool " + name + " is not empty");
  }
  std::erase_if(host().pools, [&](const ObservedPool& p) { return p.name == name; });
}

}  // namespace kumo::test
