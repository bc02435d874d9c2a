#include "providers/libvirt/libvirt_provider.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <libvirt/virterror.h>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/xml_parse.h"
#include "providers/ownership.h"

namespace kumo {
namespace {

using namespace libvirt;

// A call failed in a way that leaves the observation incomplete. Internal: observe() turns it
// into an unreachable host, because planning from half a host would create or delete wrongly.
struct ReadFailure {
  std::string what;     // "listing domains"
  std::string message;  // libvirt's words
};

// The object was deleted between being listed and being read: it is simply not there any more.
bool vanished(int code) {
  return code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_NO_NETWORK ||
         code == VIR_ERR_NO_STORAGE_POOL || code == VIR_ERR_NO_STORAGE_VOL;
}

// Handle accessors: they read the handle and make no round trip.
std::string name_of(const DomainHandle& h) {
  return virDomainGetName(h.get());
}
std::string name_of(const NetworkHandle& h) {
  return virNetworkGetName(h.get());
}
std::string name_of(const PoolHandle& h) {
  return virStoragePoolGetName(h.get());
}

std::string version_string(unsigned long version) {
  return std::to_string(version / 1000000) + "." + std::to_string(version / 1000 % 1000) + "." +
         std::to_string(version % 1000);
}

// Adds the time its scope takes to one of ObservedHost::phases (from any of a host's threads:
// fetch and parse are then summed over them).
class PhaseTimer {
 public:
  explicit PhaseTimer(double& into) : into_(into), start_(std::chrono::steady_clock::now()) {}
  ~PhaseTimer() {
    static std::mutex mu;
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const std::lock_guard lock(mu);
    into_ += s;
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  double& into_;
  std::chrono::steady_clock::time_point start_;
};

// Calls in flight at once on a host's connection while its objects' XML is fetched. libvirtd
// serves up to max_client_requests (5 by default) calls of one connection side by side and stops
// reading it at that many, keepalive included; so one fewer, on a connection that carries nothing
// else (the plan's: no streams, providers/libvirt/session.h). A host over ssh then costs one round
// trip per kInFlight objects instead of one per object.
constexpr std::size_t kInFlight = 4;

// Runs fn(i) for every i in [0, count), up to kInFlight at once (on the caller's thread alone
// for a few). The first exception stops what has not begun and is rethrown once all have ended.
template <typename Fn>
void concurrently(std::size_t count, const Fn& fn) {
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::exception_ptr first;
  auto worker = [&] {
    for (std::size_t i = next++; i < count; i = next++) {
      try {
        fn(i);
      } catch (...) {
        const std::lock_guard lock(mu);
        if (!first) first = std::current_exception();
        next = count;
      }
    }
  };
  if (count < 2 * kInFlight) {
    worker();
  } else {
    std::vector<std::jthread> threads;
    try {
      for (std::size_t t = 1; t < kInFlight; ++t) threads.emplace_back(worker);
    } catch (const std::system_error&) {  // fewer threads: the ones there (and this) do it all
    }
    worker();
  }  // joined here
  if (first) std::rethrow_exception(first);
}

class HostReader {
 public:
  // `scope` set: fetch only what it names, count the rest (ObservedHost::scoped).
  HostReader(virConnectPtr conn, ObservedHost& out, const ReadScope* scope)
      : conn_(conn), out_(out), scope_(scope) {
    if (scope_) out_.scoped.emplace();
  }
  ~HostReader() { out_.api_calls += calls_; }
  HostReader(const HostReader&) = delete;
  HostReader& operator=(const HostReader&) = delete;

  // Storage before domains: a domain's <disk type='volume'> is resolved to a path from the
  // volumes already read.
  void read_all(bool details) {
    {
      const PhaseTimer timer(out_.phases.facts);
      read_node();
      if (details) read_details();
    }
    read_storage();
    read_networks();
    read_domains();
  }
  // The handles of the volumes read, for give_back.
  std::shared_ptr<ListedVolumes> take_listed() { return std::move(listed_); }

 private:
  // Every libvirt call that reaches the host goes through here, so none goes uncounted.
  template <typename F, typename... Args>
  auto call(F f, Args... args) {
    ++calls_;
    return f(args...);
  }

  [[noreturn]] static void fail(std::string what) {
    throw ReadFailure{std::move(what), last_error().message};
  }

  template <typename Handle, typename ListFn>
  std::vector<Handle> list_all(ListFn list, unsigned flags, const char* what) {
    typename Handle::pointer* raw = nullptr;
    const PhaseTimer timer(out_.phases.list);
    const int count = call(list, conn_, &raw, flags);
    if (count < 0) fail(std::string("listing ") + what);
    return adopt_list<Handle>(raw, count);
  }

  // The names of the objects a flag selects: learns autostart, activity or persistence for every
  // object in one call instead of one call per object.
  template <typename Handle, typename ListFn>
  std::set<std::string> names(ListFn list, unsigned flags, const char* what) {
    std::set<std::string> result;
    for (const auto& handle : list_all<Handle>(list, flags, what)) result.insert(name_of(handle));
    return result;
  }

  // An object's XML, or nullopt if it vanished since it was listed.
  template <typename GetXml, typename Ptr>
  std::optional<std::string> xml_of(GetXml get_xml, Ptr object, unsigned flags,
                                    const std::string& what) {
    const PhaseTimer timer(out_.phases.fetch);
    std::string xml = adopt_string(call(get_xml, object, flags));
    if (!xml.empty()) return xml;
    if (vanished(last_error().code)) return std::nullopt;
    fail("reading " + what);
  }

  template <typename Parsed>
  static Parsed parsed_or_fail(std::optional<Parsed> parsed, const std::string& what) {
    if (!parsed) throw ReadFailure{"reading " + what, "libvirt returned XML kumo cannot read"};
    return std::move(*parsed);
  }

  // parse() of an object's XML, timed as parsing.
  template <typename Parse>
  auto parse(Parse fn, const std::string& what) {
    const PhaseTimer timer(out_.phases.parse);
    return parsed_or_fail(fn(), what);
  }

  void read_node();
  void read_details();
  void read_machine_caps();
  void read_storage();
  void read_volumes(virStoragePoolPtr pool, const std::string& pool_name);
  void read_networks();
  std::map<std::string, int> domain_states(const std::vector<DomainHandle>& domains);
  void read_domains();

  virConnectPtr conn_;
  ObservedHost& out_;
  const ReadScope* scope_;
  std::atomic<int> calls_{0};  // added to out_.api_calls at the end (several threads count)
  std::shared_ptr<ListedVolumes> listed_ = std::make_shared<ListedVolumes>();  // the ones read
};

void HostReader::read_node() {
  virNodeInfo info{};
  if (call(virNodeGetInfo, conn_, &info) < 0) fail("reading node info");
  out_.facts.cpus = static_cast<int>(info.cpus);
  out_.facts.memory = static_cast<std::uint64_t>(info.memory) * 1024;  // KiB
  // 0 is both an answer and the error value. Drivers without per-cell memory data (the test
  // driver on a custom node file) fail here; free memory is advisory, so 0 means "unknown".
  out_.facts.free_memory = call(virNodeGetFreeMemory, conn_);
  if (out_.facts.free_memory == 0) virResetLastError();

  const std::string caps_xml = adopt_string(call(virConnectGetCapabilities, conn_));
  if (caps_xml.empty()) fail("reading capabilities");
  const auto caps = parsed_or_fail(parse_capabilities_xml(caps_xml), "capabilities");
  out_.facts.arch = caps.arch;
  out_.facts.kvm = caps.kvm;
  if (!caps.kvm) out_.facts.kvm_reason = describe_no_kvm(caps.arch, "");
  out_.facts.cpu_model = caps.cpu_model;
  out_.facts.cpu_features = caps.cpu_features;

  out_.facts.hostname = adopt_string(call(virConnectGetHostname, conn_));
  if (out_.facts.hostname.empty()) fail("reading the hostname");
  unsigned long version = 0;
  if (call(virConnectGetLibVersion, conn_, &version) < 0) fail("reading libvirt's version");
  out_.facts.libvirt_version = version_string(version);
  read_machine_caps();
}

// What a UEFI/TPM VM needs of the host, from the domain capabilities of q35 under the virt type
// its VMs get. Advisory: a driver that cannot answer leaves them unknown.
void HostReader::read_machine_caps() {
  const std::string xml =
      adopt_string(call(virConnectGetDomainCapabilities, conn_, nullptr,
                        out_.facts.arch.empty() ? nullptr : out_.facts.arch.c_str(), "q35",
                        out_.facts.kvm ? "kvm" : "qemu", 0u));
  if (xml.empty()) {
    virResetLastError();
    return;
  }
  if (const auto caps = parse_domain_capabilities_xml(xml)) {
    out_.facts.uefi = caps->uefi;
    out_.facts.secure_boot = caps->secure_boot;
    out_.facts.tpm = caps->tpm_emulator;
  }
}

// What only `kumo hosts` shows, in three calls. Advisory: a driver that cannot answer one of them
// leaves that fact unknown, never the host unreachable.
void HostReader::read_details() {
  auto& facts = out_.facts;
  facts.detailed = true;
  if (const char* type = call(virConnectGetType, conn_)) {
    facts.hypervisor = type;  // owned by the connection
  } else {
    virResetLastError();
  }
  unsigned long version = 0;
  if (call(virConnectGetVersion, conn_, &version) == 0 && version > 0) {
    facts.hypervisor_version = version_string(version);
  } else {
    virResetLastError();
  }
  // KVM's domain capabilities: a host without KVM says why in the error; one with it tells, in
  // the host-model CPU its guests get, whether they could run KVM themselves.
  const std::string xml = adopt_string(
      call(virConnectGetDomainCapabilities, conn_, nullptr, nullptr, nullptr, "kvm", 0u));
  if (xml.empty()) {
    const auto error = last_error();
    virResetLastError();
    if (!facts.kvm && error.code != VIR_ERR_NO_SUPPORT)
      facts.kvm_reason = describe_no_kvm(facts.arch, error.message);
    return;
  }
  if (const auto domain_caps = parse_domain_capabilities_xml(xml); domain_caps && facts.kvm)
    facts.nested = domain_caps->nested;
}

void HostReader::read_storage() {
  const auto pools = list_all<PoolHandle>(virConnectListAllStoragePools, 0, "storage pools");
  const auto active = names<PoolHandle>(virConnectListAllStoragePools,
                                        VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE, "storage pools");
  for (const auto& pool : pools) {
    const std::string name = name_of(pool);
    const auto xml = xml_of(virStoragePoolGetXMLDesc, pool.get(), 0, "storage pool " + name);
    if (!xml) continue;
    auto observed = parse([&] { return parse_pool_xml(*xml); }, "storage pool " + name);
    observed.active = active.count(name) > 0;
    // Whether it starts with the host matters only for pools kumo made (one call each).
    if (observed.owner_cluster) {
      int autostart = 0;
      if (call(virStoragePoolGetAutostart, pool.get(), &autostart) < 0) {
        if (vanished(last_error().code)) continue;
        fail("reading autostart of storage pool " + name);
      }
      observed.autostart = autostart != 0;
    }
    // An inactive pool cannot list its volumes; they reappear when it is started.
    if (observed.active) read_volumes(pool.get(), name);
    out_.pools.push_back(std::move(observed));
  }
}

void HostReader::read_volumes(virStoragePoolPtr pool, const std::string& pool_name) {
  virStorageVolPtr* raw = nullptr;
  int count = 0;
  {
    const PhaseTimer timer(out_.phases.list);
    count = call(virStoragePoolListAllVolumes, pool, &raw, 0u);
  }
  if (count < 0) {
    if (vanished(last_error().code)) return;
    fail("listing the volumes of storage pool " + pool_name);
  }
  auto volumes = adopt_list<VolumeHandle>(raw, count);
  // Those a scope leaves out are only counted: room for what is read is made for the others
  // alone (hundreds of volumes per host, most out of a destroy's scope).
  std::vector<std::size_t> wanted;
  wanted.reserve(scope_ ? 0 : volumes.size());
  for (std::size_t i = 0; i < volumes.size(); ++i) {
    if (scope_) {
      const char* name = virStorageVolGetName(volumes[i].get());
      if (!is_bookkeeping_volume(name)) ++out_.scoped->volumes;
      if (!scope_->has_volume(name)) continue;
    }
    wanted.push_back(i);
  }
  // read[j]: what was read of volumes[wanted[j]].
  std::vector<std::optional<ObservedVolume>> read(wanted.size());
  std::vector<std::size_t> fetch;  // the ones whose XML is needed (indexes into wanted)
  for (std::size_t j = 0; j < wanted.size(); ++j) {
    const VolumeHandle& volume = volumes[wanted[j]];
    const std::string name = virStorageVolGetName(volume.get());
    // A serial log and a cloud-init seed (one each per VM kumo made) need no XML: the name says
    // whose it is, the list's reply already holds the key, in a directory pool its path, and what
    // a seed holds is recorded in its VM's domain (its size alone would say nothing). Two round
    // trips saved per VM; such a volume's capacity reads 0.
    const char* key = virStorageVolGetKey(volume.get());
    if ((is_serial_log(name) || is_seed_volume(name)) && key && key[0] == '/') {
      ObservedVolume known;
      known.pool = pool_name;
      known.name = name;
      known.path = key;
      known.format = "raw";
      known.owner = volume_owner(name);
      read[j] = std::move(known);
    } else {
      fetch.push_back(j);
    }
  }
  concurrently(fetch.size(), [&](std::size_t f) {
    const std::size_t j = fetch[f];
    const VolumeHandle& volume = volumes[wanted[j]];
    const std::string what = "volume " + pool_name + "/" + virStorageVolGetName(volume.get());
    const auto xml = xml_of(virStorageVolGetXMLDesc, volume.get(), 0, what);
    if (!xml) return;
    read[j] = parse([&] { return parse_volume_xml(*xml); }, what);
    read[j]->pool = pool_name;
  });
  out_.volumes.reserve(out_.volumes.size() + read.size());
  for (std::size_t j = 0; j < read.size(); ++j) {
    if (!read[j]) continue;
    // The steps that take this connection next act on these through their handles (no lookup).
    listed_->insert_or_assign({pool_name, read[j]->name}, std::move(volumes[wanted[j]]));
    out_.volumes.push_back(std::move(*read[j]));
  }
}

void HostReader::read_networks() {
  const auto networks = list_all<NetworkHandle>(virConnectListAllNetworks, 0, "networks");
  const auto autostart = names<NetworkHandle>(virConnectListAllNetworks,
                                              VIR_CONNECT_LIST_NETWORKS_AUTOSTART, "networks");
  const auto active =
      names<NetworkHandle>(virConnectListAllNetworks, VIR_CONNECT_LIST_NETWORKS_ACTIVE, "networks");
  const auto transient = names<NetworkHandle>(virConnectListAllNetworks,
                                              VIR_CONNECT_LIST_NETWORKS_TRANSIENT, "networks");
  for (const auto& network : networks) {
    const std::string name = name_of(network);
    // The live definition. libvirt's test driver rejects VIR_NETWORK_XML_INACTIVE, and a
    // network's two definitions differ only between a redefine and the restart that applies it.
    const auto xml = xml_of(virNetworkGetXMLDesc, network.get(), 0, "network " + name);
    if (!xml) continue;
    auto observed = parse([&] { return parse_network_xml(*xml); }, "network " + name);
    observed.active = active.count(name) > 0;
    observed.persistent = transient.count(name) == 0;
    observed.autostart = autostart.count(name) > 0;
    out_.networks.push_back(std::move(observed));
  }
}

// The states of `domains` (all of the host's, or those a scope picked) in one call, by name.
std::map<std::string, int> HostReader::domain_states(const std::vector<DomainHandle>& domains) {
  virDomainStatsRecordPtr* raw = nullptr;
  const PhaseTimer timer(out_.phases.list);
  int count = 0;
  if (!scope_) {
    count = call(virConnectGetAllDomainStats, conn_, VIR_DOMAIN_STATS_STATE, &raw, 0u);
  } else if (!domains.empty()) {
    std::vector<virDomainPtr> list;
    for (const auto& d : domains) list.push_back(d.get());
    list.push_back(nullptr);
    count = call(virDomainListGetStats, list.data(), VIR_DOMAIN_STATS_STATE, &raw, 0u);
  }
  if (count < 0) fail("reading domain states");
  const StatsList records(raw);
  std::map<std::string, int> states;
  for (int i = 0; i < count; ++i) {
    const virDomainStatsRecordPtr record = records.get()[i];
    int state = VIR_DOMAIN_NOSTATE;
    if (virTypedParamsGetInt(record->params, record->nparams, "state.state", &state) == 1) {
      states[virDomainGetName(record->dom)] = state;
    }
  }
  return states;
}

void HostReader::read_domains() {
  auto domains = list_all<DomainHandle>(virConnectListAllDomains, 0, "domains");
  if (scope_) {
    out_.scoped->domains = static_cast<int>(domains.size());
    std::erase_if(domains, [&](const DomainHandle& d) { return !scope_->has_domain(name_of(d)); });
  }
  const auto autostart =
      names<DomainHandle>(virConnectListAllDomains, VIR_CONNECT_LIST_DOMAINS_AUTOSTART, "domains");
  const auto transient =
      names<DomainHandle>(virConnectListAllDomains, VIR_CONNECT_LIST_DOMAINS_TRANSIENT, "domains");
  const auto states = domain_states(domains);

  std::map<std::pair<std::string, std::string>, std::string> volume_paths;
  for (const auto& v : out_.volumes) volume_paths[{v.pool, v.name}] = v.path;
  const VolumePathLookup lookup = [&](const std::string& pool, const std::string& volume) {
    const auto it = volume_paths.find({pool, volume});
    return it == volume_paths.end() ? std::string() : it->second;
  };

  std::vector<std::optional<ObservedDomain>> read(domains.size());
  concurrently(domains.size(), [&](std::size_t i) {
    const DomainHandle& domain = domains[i];
    const std::string name = name_of(domain);
    int state = VIR_DOMAIN_NOSTATE;
    if (const auto it = states.find(name); it != states.end()) {
      state = it->second;
    } else if (call(virDomainGetState, domain.get(), &state, nullptr, 0u) < 0) {
      if (vanished(last_error().code)) return;
      fail("reading the state of domain " + name);
    }
    // The persistent definition: redefining a running domain changes only that one, so kumo's
    // metadata (the spec hash) and settings waiting for a reboot are read from it.
    const auto xml =
        xml_of(virDomainGetXMLDesc, domain.get(), VIR_DOMAIN_XML_INACTIVE, "domain " + name);
    if (!xml) return;
    auto observed = parse([&] { return parse_domain_xml(*xml, lookup); }, "domain " + name);
    observed.state = domain_state_name(state);
    observed.active = state != VIR_DOMAIN_SHUTOFF && state != VIR_DOMAIN_NOSTATE;
    observed.persistent = transient.count(name) == 0;
    observed.autostart = autostart.count(name) > 0;
    read[i] = std::move(observed);
  });
  for (auto& d : read) {
    if (d) out_.domains.push_back(std::move(*d));
  }
}

class LibvirtProvider final : public Provider {
 public:
  ObservedHost observe(const HostTarget& host, std::chrono::milliseconds timeout) override {
    return observe_host(host, timeout, false);
  }

  ObservedHost observe_details(const HostTarget& host, std::chrono::milliseconds timeout) override {
    return observe_host(host, timeout, true);
  }

 private:
  static ObservedHost observe_host(const HostTarget& host, std::chrono::milliseconds timeout,
                                   bool details) {
    const auto start = std::chrono::steady_clock::now();
    ObservedHost out;
    out.host = host.name;
    out.uri = host.uri;
    try {
      read(host, timeout, details, out);
    } catch (const ReadFailure& failure) {
      discard_partial(out, host_label(host) + ": " + failure.what + " failed: " + failure.message +
                               " — is libvirtd still running there?");
    } catch (const std::exception& e) {
      discard_partial(out, host_label(host) + ": " + e.what());
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
  }

  static void read(const HostTarget& host, std::chrono::milliseconds timeout, bool details,
                   ObservedHost& out) {
    auto opened = [&] {
      const PhaseTimer timer(out.phases.connect);
      return open_connection(host, timeout);
    }();
    out.api_calls = opened.api_calls;
    if (!opened.conn) {
      out.error = opened.error;
      return;
    }
    HostReader reader(opened.conn.get(), out, host.scope.get());
    reader.read_all(details);
    out.reachable = true;
    // For the steps of an apply (ConnectionReuse), with the handles of the volumes read.
    give_back(host, std::move(opened.conn), reader.take_listed());
  }

  // Half a host must not reach the planner: it would recreate what it did not get to read.
  static void discard_partial(ObservedHost& out, std::string error) {
    out.reachable = false;
    out.error = std::move(error);
    out.facts = {};
    out.domains.clear();
    out.networks.clear();
    out.pools.clear();
    out.volumes.clear();
  }
};

}  // namespace

std::unique_ptr<Provider> make_libvirt_provider() {
  return std::make_unique<LibvirtProvider>();
}

}  // namespace kumo
