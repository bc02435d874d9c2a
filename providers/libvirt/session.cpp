#include "providers/libvirt/session.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/upload_pump.h"
#include "providers/libvirt/xml_build.h"
#include "providers/libvirt/xml_parse.h"
#include "providers/ownership.h"

namespace kumo {
namespace {

using namespace libvirt;

constexpr std::size_t kUploadChunk = 4u << 20;  // bytes read from the source at a time
// Bytes per stream message: libvirt's own stream payload size (what virStreamSendAll uses).
// Larger messages stall the pipeline over qemu+ssh (bench/images: 4 MiB messages ran at 0.6x the
// throughput of `virsh vol-upload`, 256 KiB ones at 1.2x).
constexpr std::size_t kStreamMessage = 256u << 10;
constexpr std::size_t kDownloadChunk = 256u << 10;  // bytes per virStreamRecv

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

bool is_loopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "::1";
}

// What virDomainInterfaceAddresses hands over: an array and its elements, all the caller's.
class InterfaceList {
 public:
  InterfaceList() = default;
  InterfaceList(const InterfaceList&) = delete;
  InterfaceList& operator=(const InterfaceList&) = delete;
  ~InterfaceList() {
    for (int i = 0; i < count_; ++i) virDomainInterfaceFree(list_[i]);
    std::free(list_);
  }

  // Fills the list from `source`; false when that source cannot answer.
  bool fetch(virDomainPtr domain, unsigned source) {
    count_ = virDomainInterfaceAddresses(domain, &list_, source, 0);
    if (count_ >= 0) return true;
    count_ = 0;
    virResetLastError();
    return false;
  }

  // IPv4 and IPv6 addresses, loopback left out.
  std::vector<std::string> addresses() const {
    std::vector<std::string> out;
    for (int i = 0; i < count_; ++i) {
      const virDomainInterfacePtr iface = list_[i];
      if (iface->name != nullptr && std::string(iface->name) == "lo") continue;
      for (unsigned j = 0; j < iface->naddrs; ++j) {
        if (iface->addrs[j].addr == nullptr) continue;
        const std::string address = iface->addrs[j].addr;
        if (!is_loopback(address)) out.push_back(address);
      }
    }
    return out;
  }

 private:
  virDomainInterfacePtr* list_ = nullptr;
  int count_ = 0;
};

class LibvirtSession final : public HostSession {
 public:
  LibvirtSession(const HostTarget& target, ConnectHandle conn, PoolHandle pool)
      : target_(target),
        label_(host_label(target)),
        conn_(std::move(conn)),
        pool_(std::move(pool)) {}

  const HostTarget& target() const override { return target_; }

  std::string pool_path() override {
    const std::string xml = adopt_string(virStoragePoolGetXMLDesc(pool_.get(), 0));
    if (xml.empty()) fail("reading storage pool " + quoted(target_.pool));
    const auto pool = parse_pool_xml(xml);
    if (!pool) unreadable("storage pool " + quoted(target_.pool));
    // Pools whose target is a directory of files; a logical pool's target is /dev/<vg>.
    const bool directory = pool->type == "dir" || pool->type == "fs" || pool->type == "netfs";
    return directory ? pool->path : "";
  }

  // --- volumes

  std::optional<ObservedVolume> volume(const std::string& name) override {
    const auto vol = find_volume(name);
    if (!vol) return std::nullopt;
    const std::string xml = adopt_string(virStorageVolGetXMLDesc(vol.get(), 0));
    if (xml.empty()) {
      return vanished_or_fail<ObservedVolume>(VIR_ERR_NO_STORAGE_VOL,
                                              "reading " + volume_label(name));
    }
    auto observed = parse_volume_xml(xml);
    if (!observed) unreadable(volume_label(name));
    observed->pool = target_.pool;
    return observed;
  }

  void create_volume(const VolumeSpec& spec) override {
    const VolumeHandle vol(virStorageVolCreateXML(pool_.get(), volume_xml(spec).c_str(), 0));
    if (!vol) fail("creating " + volume_label(spec.name));
  }

  void upload_volume(const std::string& name, std::uint64_t size, const ByteReader& read,
                     const TransferTick& tick) override {
    const VolumeHandle vol(
        virStorageVolCreateXML(pool_.get(), volume_xml({name, size, "raw", "", ""}).c_str(), 0));
    if (!vol) fail("creating " + volume_label(name) + " for an upload");
    const std::string what = "uploading to " + volume_label(name);
    StreamHandle stream;
    // Whatever goes wrong, nothing half-written stays behind: a volume of the right name and
    // size but the wrong content would pass for a finished one. The reader's and the tick's own
    // exceptions come back unchanged once the volume is gone.
    try {
      if (size > 0) {
        stream.reset(virStreamNew(conn_.get(), 0));
        if (!stream) fail(what);
        if (virStorageVolUpload(vol.get(), stream.get(), 0, size, 0) < 0) fail(what);
        virStreamPtr st = stream.get();
        const auto sent = pump_upload(
            size, kUploadChunk, read,
            [st](const char* data, std::size_t n) {
              return virStreamSend(st, data, std::min(n, kStreamMessage));
            },
            tick);
        using Stop = PumpResult::Stop;
        if (sent.stop == Stop::send_failed) fail(what);
        if (sent.stop == Stop::source_overran) {
          fail_because(what, "the source returned more bytes than were asked for");
        }
        if (sent.stop == Stop::source_ended) {
          fail_because(what, "the source ended after " + std::to_string(sent.read) + " of " +
                                 std::to_string(size) + " bytes");
        }
      }
      char extra = 0;
      if (read(&extra, 1) != 0) {
        fail_because(what,
                     "the source holds more than the " + std::to_string(size) + " bytes announced");
      }
      if (stream && virStreamFinish(stream.get()) < 0) fail(what);
    } catch (...) {
      if (stream) virStreamAbort(stream.get());
      virStorageVolDelete(vol.get(), 0);
      virResetLastError();
      throw;
    }
  }

  void delete_volume(const std::string& name) override {
    auto vol = find_volume(name);
    if (!vol) {
      // A file libvirt does not list yet (a serial log written behind its back) shows after a
      // refresh; libvirt refuses two refreshes of one pool at once.
      {
        const std::lock_guard lock(refresh_mutex_);
        if (virStoragePoolRefresh(pool_.get(), 0) < 0) virResetLastError();
      }
      vol = find_volume(name);
      if (!vol) return;
    }
    if (virStorageVolDelete(vol.get(), 0) < 0) {
      vanished_or_fail<void>(VIR_ERR_NO_STORAGE_VOL, "deleting " + volume_label(name));
    }
  }

  void resize_volume(const std::string& name, std::uint64_t capacity) override {
    const auto vol = find_volume(name);
    if (!vol) raise(volume_label(name) + " does not exist (resizing it)");
    if (virStorageVolResize(vol.get(), capacity, 0) < 0) fail("growing " + volume_label(name));
  }

  bool create_volume_exclusive(const std::string& name, const std::string& content) override {
    const VolumeHandle vol(virStorageVolCreateXML(
        pool_.get(), volume_xml({name, content.size(), "raw", "", ""}).c_str(), 0));
    if (!vol) {
      // Drivers word "exists" differently (VIR_ERR_STORAGE_VOL_EXIST, or a plain "operation
      // failed"): whether the volume is there is what counts.
      const auto error = last_error();
      if (find_volume(name)) {
        virResetLastError();
        return false;
      }
      fail_because("creating " + volume_label(name), error.message);
    }
    try {
      const StreamHandle stream(virStreamNew(conn_.get(), 0));
      const std::string what = "writing " + volume_label(name);
      std::string_view rest(content);
      if (!stream || virStorageVolUpload(vol.get(), stream.get(), 0, content.size(), 0) < 0)
        fail(what);
      if (!content.empty() && virStreamSendAll(
                                  stream.get(),
                                  [](virStreamPtr, char* buf, size_t n, void* opaque) -> int {
                                    auto* rest = static_cast<std::string_view*>(opaque);
                                    const std::size_t take = std::min(n, rest->size());
                                    std::memcpy(buf, rest->data(), take);
                                    rest->remove_prefix(take);
                                    return static_cast<int>(take);
                                  },
                                  &rest) < 0) {
        virStreamAbort(stream.get());
        fail(what);
      }
      if (virStreamFinish(stream.get()) < 0) fail(what);
    } catch (...) {
      virStorageVolDelete(vol.get(), 0);
      virResetLastError();
      throw;
    }
    return true;
  }

  // Best effort: diagnostics for a guest that did not come up must never fail on their own.
  std::string tail_pool_file(const std::string& name, std::size_t max_bytes) override {
    {
      // libvirt lists a file that appeared behind its back (a serial log) only after a refresh.
      // It refuses to refresh a pool twice at once, so this session's threads take turns.
      const std::lock_guard lock(refresh_mutex_);
      if (virStoragePoolRefresh(pool_.get(), 0) < 0) virResetLastError();
    }
    const VolumeHandle vol(virStorageVolLookupByName(pool_.get(), name.c_str()));
    virStorageVolInfo info{};
    if (!vol || max_bytes == 0 || virStorageVolGetInfo(vol.get(), &info) < 0) {
      virResetLastError();
      return "";
    }
    const std::uint64_t size = info.capacity;
    const std::uint64_t offset = size > max_bytes ? size - max_bytes : 0;
    if (size == offset) return "";
    std::string out = download(vol.get(), offset, size - offset);
    virResetLastError();
    if (out.size() > max_bytes) out.erase(0, out.size() - max_bytes);
    return out;
  }

  std::string read_volume(const std::string& name, std::uint64_t offset,
                          std::size_t length) override {
    const auto vol = find_volume(name);
    if (!vol) fail_because("reading " + volume_label(name), "it does not exist");
    virStorageVolInfo info{};
    if (virStorageVolGetInfo(vol.get(), &info) < 0) fail("reading " + volume_label(name));
    // Sparse raw files report their size as capacity; never ask past it.
    const std::uint64_t size = std::max<std::uint64_t>(info.capacity, info.allocation);
    if (offset >= size || length == 0) return "";
    const std::uint64_t want = std::min<std::uint64_t>(length, size - offset);
    std::string out = download(vol.get(), offset, want);
    if (out.size() < want && virGetLastErrorCode() != VIR_ERR_OK)
      fail("reading " + volume_label(name));
    return out;
  }

  // Bytes [offset, offset+length) of a volume through a stream; fewer on failure (the libvirt
  // error is left set for the caller).
  std::string download(virStorageVolPtr vol, std::uint64_t offset, std::uint64_t length) {
    const StreamHandle stream(virStreamNew(conn_.get(), 0));
    if (!stream || virStorageVolDownload(vol, stream.get(), offset, length, 0) < 0) return "";
    std::string out;
    std::vector<char> buf(kDownloadChunk);
    for (;;) {
      const int got = virStreamRecv(stream.get(), buf.data(), buf.size());
      if (got == 0) break;
      if (got == -2) continue;  // only a non-blocking stream says "try again"
      if (got < 0) {
        virStreamAbort(stream.get());
        return out;
      }
      out.append(buf.data(), static_cast<std::size_t>(got));
    }
    virStreamFinish(stream.get());
    return out;
  }

  // --- networks

  std::optional<ObservedNetwork> network(const std::string& name) override {
    const auto net = find_network(name);
    if (!net) return std::nullopt;
    const std::string what = "reading network " + name;
    const std::string xml = adopt_string(virNetworkGetXMLDesc(net.get(), 0));
    if (xml.empty()) return vanished_or_fail<ObservedNetwork>(VIR_ERR_NO_NETWORK, what);
    auto observed = parse_network_xml(xml);
    if (!observed) unreadable("network " + name);
    const int active = virNetworkIsActive(net.get());
    const int persistent = virNetworkIsPersistent(net.get());
    int autostart = 0;
    if (active < 0 || persistent < 0 || virNetworkGetAutostart(net.get(), &autostart) < 0) {
      return vanished_or_fail<ObservedNetwork>(VIR_ERR_NO_NETWORK, what);
    }
    observed->active = active == 1;
    observed->persistent = persistent == 1;
    observed->autostart = autostart != 0;
    return observed;
  }

  void define_network(const NetworkSpec& spec) override {
    const NetworkHandle net(virNetworkDefineXML(conn_.get(), network_xml(spec).c_str()));
    if (!net) fail("defining network " + spec.name);
    if (virNetworkCreate(net.get()) < 0) fail("starting network " + spec.name);
    if (virNetworkSetAutostart(net.get(), 1) < 0) {
      fail("setting network " + spec.name + " to start with the host");
    }
  }

  void start_network(const std::string& name, bool autostart) override {
    const auto net = need_network(name, "starting");
    const int active = virNetworkIsActive(net.get());
    if (active < 0) fail("starting network " + name);
    if (active == 0 && virNetworkCreate(net.get()) < 0) fail("starting network " + name);
    set_autostart(virNetworkGetAutostart, virNetworkSetAutostart, net.get(), autostart,
                  "network " + name);
  }

  void delete_network(const std::string& name) override {
    const auto net = find_network(name);
    if (!net) return;
    const std::string what = "deleting network " + name;
    const int persistent = virNetworkIsPersistent(net.get());
    const int active = virNetworkIsActive(net.get());
    if (persistent < 0 || active < 0) return vanished_or_fail<void>(VIR_ERR_NO_NETWORK, what);
    if (active == 1 && virNetworkDestroy(net.get()) < 0) {
      const int code = last_error().code;
      if (code == VIR_ERR_NO_NETWORK) return;
      if (code != VIR_ERR_OPERATION_INVALID) fail(what + " (stopping it)");  // not "not active"
    }
    if (persistent == 0) return;  // a transient network is gone once stopped
    if (virNetworkUndefine(net.get()) < 0) vanished_or_fail<void>(VIR_ERR_NO_NETWORK, what);
  }

  void update_network_hosts(const std::string& name, const NetworkHostsChange& change) override {
    const auto net = need_network(name, "updating host entries of");
    const int active = virNetworkIsActive(net.get());
    if (active < 0) fail("updating network " + name);
    const unsigned flags =
        VIR_NETWORK_UPDATE_AFFECT_CONFIG | (active == 1 ? VIR_NETWORK_UPDATE_AFFECT_LIVE : 0);
    auto update = [&](unsigned command, unsigned section, const std::string& xml,
                      const std::string& what) {
      if (virNetworkUpdate(net.get(), command, section, -1, xml.c_str(), flags) < 0) {
        fail(what + " network " + name);
      }
    };
    for (const auto& h : change.dns_remove) {
      update(VIR_NETWORK_UPDATE_COMMAND_DELETE, VIR_NETWORK_SECTION_DNS_HOST, dns_host_xml(h),
             "removing DNS name " + (h.names.empty() ? h.ip : h.names.front()) + " from");
    }
    for (const auto& h : change.dhcp_remove) {
      update(VIR_NETWORK_UPDATE_COMMAND_DELETE, VIR_NETWORK_SECTION_IP_DHCP_HOST, dhcp_host_xml(h),
             "removing the DHCP entry of " + h.mac + " from");
    }
    for (const auto& h : change.dhcp_add) {
      update(VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST,
             dhcp_host_xml(h), "adding a DHCP entry " + h.mac + " " + h.ip + " to");
    }
    for (const auto& h : change.dns_add) {
      update(VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_DNS_HOST, dns_host_xml(h),
             "adding DNS name " + (h.names.empty() ? h.ip : h.names.front()) + " to");
    }
  }

  // --- domains

  // A domain's XML with its pool volumes resolved to paths.
  std::optional<ObservedDomain> parse_domain(const std::string& xml) {
    return parse_domain_xml(xml, [this](const std::string& pool, const std::string& v) {
      return volume_path(pool, v);
    });
  }

  std::optional<ObservedDomain> domain(const std::string& name) override {
    const auto dom = find_domain(name);
    if (!dom) return std::nullopt;
    const std::string what = "reading domain " + name;
    int state = VIR_DOMAIN_NOSTATE;
    if (virDomainGetState(dom.get(), &state, nullptr, 0) < 0) {
      return vanished_or_fail<ObservedDomain>(VIR_ERR_NO_DOMAIN, what);
    }
    // The persistent definition, as observe() reads it: kumo's metadata and settings waiting
    // for a reboot live there.
    const std::string xml = adopt_string(virDomainGetXMLDesc(dom.get(), VIR_DOMAIN_XML_INACTIVE));
    if (xml.empty()) return vanished_or_fail<ObservedDomain>(VIR_ERR_NO_DOMAIN, what);
    // parse_domain_xml reads the owner mark from <metadata> too.
    auto observed = parse_domain(xml);
    if (!observed) unreadable("domain " + name);
    const int active = virDomainIsActive(dom.get());
    const int persistent = virDomainIsPersistent(dom.get());
    int autostart = 0;
    if (active < 0 || persistent < 0 || virDomainGetAutostart(dom.get(), &autostart) < 0) {
      return vanished_or_fail<ObservedDomain>(VIR_ERR_NO_DOMAIN, what);
    }
    observed->state = domain_state_name(state);
    observed->active = active == 1;
    observed->persistent = persistent == 1;
    observed->autostart = autostart != 0;
    return observed;
  }

  void define_domain(const DomainSpec& spec) override {
    // Redefining keeps the domain's UUID: libvirt refuses a definition of an existing name
    // under another one (and a definition without one gets a random one).
    std::string uuid;
    if (const auto existing = find_domain(spec.name)) {
      char buf[VIR_UUID_STRING_BUFLEN] = {};
      if (virDomainGetUUIDString(existing.get(), buf) < 0) fail("defining domain " + spec.name);
      uuid = buf;
    }
    const std::string xml = domain_xml(spec, target_.pool, uuid);
    const DomainHandle dom(virDomainDefineXML(conn_.get(), xml.c_str()));
    if (!dom) fail("defining domain " + spec.name);
    set_autostart(virDomainGetAutostart, virDomainSetAutostart, dom.get(), spec.autostart,
                  "domain " + spec.name);
  }

  void start_domain(const std::string& name) override {
    const auto dom = need_domain(name, "starting");
    const int active = virDomainIsActive(dom.get());
    if (active < 0) fail("starting domain " + name);
    if (active == 0 && virDomainCreate(dom.get()) < 0) fail("starting domain " + name);
  }

  void set_domain_autostart(const std::string& name, bool autostart) override {
    const auto dom = need_domain(name, "setting autostart of");
    set_autostart(virDomainGetAutostart, virDomainSetAutostart, dom.get(), autostart,
                  "domain " + name);
  }

  void delete_domain(const std::string& name) override {
    const auto dom = find_domain(name);
    if (!dom) return;
    const std::string what = "deleting domain " + name;
    const int persistent = virDomainIsPersistent(dom.get());
    const int active = virDomainIsActive(dom.get());
    if (persistent < 0 || active < 0) return vanished_or_fail<void>(VIR_ERR_NO_DOMAIN, what);
    if (active == 1 && virDomainDestroy(dom.get()) < 0) {
      const int code = last_error().code;
      if (code == VIR_ERR_NO_DOMAIN) return;
      if (code != VIR_ERR_OPERATION_INVALID) fail(what + " (stopping it)");  // not "not running"
    }
    if (persistent == 0) return;  // a transient domain is gone once stopped
    constexpr unsigned kFlags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;
    if (virDomainUndefineFlags(dom.get(), kFlags) == 0) return;
    const int code = last_error().code;
    // Drivers that do not know a flag (the test driver rejects _NVRAM) undefine without them.
    if (code != VIR_ERR_INVALID_ARG && code != VIR_ERR_NO_SUPPORT) {
      return vanished_or_fail<void>(VIR_ERR_NO_DOMAIN, what);
    }
    if (virDomainUndefine(dom.get()) < 0) vanished_or_fail<void>(VIR_ERR_NO_DOMAIN, what);
  }

  bool shutdown_domain(const std::string& name, std::chrono::seconds timeout) override {
    const auto dom = need_domain(name, "shutting down");
    const std::string what = "shutting down domain " + name;
    auto active = [&] {
      const int a = virDomainIsActive(dom.get());
      if (a < 0) fail(what);
      return a == 1;
    };
    if (!active()) return true;
    // A guest that ignores the power button (or has not booted far enough to see it) is
    // forced off once the timeout is over; the request is repeated meanwhile.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto next_press = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < deadline) {
      if (std::chrono::steady_clock::now() >= next_press) {
        if (virDomainShutdown(dom.get()) < 0) {
          if (!active()) return true;
          virResetLastError();
        }
        next_press = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      }
      if (!active()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (virDomainDestroy(dom.get()) < 0 && active()) fail(what + " (forcing it off)");
    return false;
  }

  void set_domain_vcpus(const std::string& name, int vcpus) override {
    const auto dom = need_domain(name, "setting vCPUs of");
    const std::string what = "setting domain " + name + " to " + std::to_string(vcpus) + " vCPUs";
    const int active = virDomainIsActive(dom.get());
    if (active < 0) fail(what);
    // Live first, then the definition (some drivers refuse both flags in one call).
    const auto n = static_cast<unsigned>(vcpus);
    if (active == 1 && virDomainSetVcpusFlags(dom.get(), n, VIR_DOMAIN_AFFECT_LIVE) < 0) fail(what);
    if (virDomainSetVcpusFlags(dom.get(), n, VIR_DOMAIN_AFFECT_CONFIG) < 0) fail(what);
    // Plugged vCPUs start offline in most guests: the agent brings them online. A guest without
    // an agent keeps them for its own udev rules; not an error.
    // The guest sees a plugged vCPU a moment after the plug (an ACPI event it handles on its
    // own time): asked too early, the agent does not know it yet. Ask again for a while.
    if (active == 1) {
      for (int attempt = 0; attempt < 30; ++attempt) {
        if (virDomainSetVcpusFlags(dom.get(), n, VIR_DOMAIN_VCPU_GUEST) == 0) break;
        const int code = last_error().code;
        virResetLastError();
        if (code == VIR_ERR_AGENT_UNRESPONSIVE || code == VIR_ERR_NO_SUPPORT) break;  // no agent
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
  }

  void set_domain_memory(const std::string& name, std::uint64_t bytes) override {
    const auto dom = need_domain(name, "setting memory of");
    const std::string what = "setting the memory of domain " + name;
    const int active = virDomainIsActive(dom.get());
    if (active < 0) fail(what);
    const unsigned long kib = bytes / 1024;
    if (active == 1 && virDomainSetMemoryFlags(dom.get(), kib, VIR_DOMAIN_AFFECT_LIVE) < 0)
      fail(what);
    if (virDomainSetMemoryFlags(dom.get(), kib, VIR_DOMAIN_AFFECT_CONFIG) < 0) fail(what);
  }

  void set_domain_owner(const std::string& name, const Ownership& owner) override {
    const auto dom = need_domain(name, "marking");
    const std::string what = "writing kumo's metadata of domain " + name;
    const int active = virDomainIsActive(dom.get());
    if (active < 0) fail(what);
    // The element without its namespace declaration: libvirt adds it from `uri`.
    const std::string xml = owner_metadata_xml(owner, /*with_namespace=*/false);
    for (unsigned flags : {active == 1 ? unsigned{VIR_DOMAIN_AFFECT_LIVE} : 0u,
                           unsigned{VIR_DOMAIN_AFFECT_CONFIG}}) {
      if (flags == 0) continue;
      if (virDomainSetMetadata(dom.get(), VIR_DOMAIN_METADATA_ELEMENT, xml.c_str(), kOwnerPrefix,
                               kOwnerNamespace, flags) < 0)
        fail(what);
    }
  }

  void resize_domain_disk(const std::string& name, const std::string& target,
                          std::uint64_t capacity) override {
    const auto dom = need_domain(name, "growing a disk of");
    if (virDomainBlockResize(dom.get(), target.c_str(), capacity, VIR_DOMAIN_BLOCK_RESIZE_BYTES) <
        0) {
      fail("growing disk " + target + " of domain " + name);
    }
  }

  std::vector<ObservedDisk> live_disks(const std::string& name) override {
    const auto dom = need_domain(name, "reading the disks of");
    const std::string what = "reading the running disks of domain " + name;
    const int active = virDomainIsActive(dom.get());
    if (active < 0) fail(what);
    if (active == 0) return {};
    const std::string xml = adopt_string(virDomainGetXMLDesc(dom.get(), 0));
    if (xml.empty()) fail(what);
    auto observed = parse_domain(xml);
    if (!observed) unreadable("domain " + name);
    return observed->disks;
  }

  void attach_disk(const std::string& name, const DomainDisk& disk) override {
    const auto dom = need_domain(name, "attaching a disk to");
    const std::string xml = disk_xml(disk, target_.pool);
    if (virDomainAttachDeviceFlags(dom.get(), xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) < 0)
      fail("hot-plugging volume " + disk.volume + " as " + disk.target + " into domain " + name);
  }

  // --- the guest agent

  nlohmann::json agent_command(const std::string& domain, const nlohmann::json& command,
                               std::chrono::seconds timeout) override {
    const std::string agent = "guest agent of " + domain;
    const auto dom = find_domain(domain);
    if (!dom) raise(agent + " did not answer: domain " + domain + " does not exist");
    // libvirt's timeout is an int of seconds in which 0 and negative values mean "do not wait"
    // and "wait forever": always a real wait, of at least a second.
    const int seconds = static_cast<int>(
        std::clamp<std::chrono::seconds::rep>(timeout.count(), 1, std::numeric_limits<int>::max()));
    const std::string reply =
        adopt_string(virDomainQemuAgentCommand(dom.get(), command.dump().c_str(), seconds, 0));
    if (reply.empty()) raise(agent + " did not answer: " + last_error().message);
    // libvirt turns the agent's own errors into the failure above; a reply is {"return": ...}.
    const auto parsed = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("return")) {
      raise(agent + " answered what kumo cannot read: " + reply);
    }
    return parsed["return"];
  }

  std::vector<std::string> addresses(const std::string& domain) override {
    const auto dom = find_domain(domain);
    if (!dom) return {};
    for (const unsigned source :
         {VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE}) {
      InterfaceList list;
      if (!list.fetch(dom.get(), source)) continue;
      auto found = list.addresses();
      if (!found.empty()) return found;
    }
    return {};
  }

 private:
  // "host hv1 (uri): <what> failed: <libvirt's message>". libvirt keeps one error per thread:
  // it is read here, before any other libvirt call can replace it.
  [[noreturn]] void fail(const std::string& what) const {
    fail_because(what, last_error().message);
  }
  [[noreturn]] void fail_because(const std::string& what, const std::string& why) const {
    raise(what + " failed: " + why);
  }
  [[noreturn]] void raise(const std::string& message) const {
    throw HostError(label_ + ": " + message);
  }
  [[noreturn]] void unreadable(const std::string& object) const {
    fail_because("reading " + object, "libvirt returned XML kumo cannot read");
  }

  // After a failed call on an object looked up a moment ago: either it vanished meanwhile (the
  // answer is "not there", which for a deletion means done), or the call really failed.
  template <typename T>
  std::conditional_t<std::is_void_v<T>, void, std::optional<T>> vanished_or_fail(
      int gone_code, const std::string& what) const {
    if (last_error().code != gone_code) fail(what);
    virResetLastError();
    if constexpr (!std::is_void_v<T>) return std::nullopt;
  }

  std::string volume_label(const std::string& name) const {
    return "volume " + name + " in storage pool " + quoted(target_.pool);
  }

  // Lookups: null when the object does not exist, HostError when the host did not answer.
  VolumeHandle find_volume(const std::string& name) const {
    VolumeHandle vol(virStorageVolLookupByName(pool_.get(), name.c_str()));
    if (!vol && last_error().code != VIR_ERR_NO_STORAGE_VOL) {
      fail("looking up " + volume_label(name));
    }
    return vol;
  }
  NetworkHandle find_network(const std::string& name) const {
    NetworkHandle net(virNetworkLookupByName(conn_.get(), name.c_str()));
    if (!net && last_error().code != VIR_ERR_NO_NETWORK) fail("looking up network " + name);
    return net;
  }
  DomainHandle find_domain(const std::string& name) const {
    DomainHandle dom(virDomainLookupByName(conn_.get(), name.c_str()));
    if (!dom && last_error().code != VIR_ERR_NO_DOMAIN) fail("looking up domain " + name);
    return dom;
  }
  NetworkHandle need_network(const std::string& name, const std::string& doing) const {
    auto net = find_network(name);
    if (!net) {
      fail_because(doing + " network " + name,
                   "no such network — was it deleted outside kumo? `kumo apply` defines it again");
    }
    return net;
  }
  DomainHandle need_domain(const std::string& name, const std::string& doing) const {
    auto dom = find_domain(name);
    if (!dom) {
      fail_because(doing + " domain " + name,
                   "no such domain — was it deleted outside kumo? `kumo apply` defines it again");
    }
    return dom;
  }

  // Sets autostart only when it differs: libvirt refuses to set it at all on a transient object.
  template <typename Get, typename Set, typename Ptr>
  void set_autostart(Get get, Set set, Ptr object, bool wanted, const std::string& what) const {
    int current = 0;
    if (get(object, &current) < 0) fail("reading autostart of " + what);
    if ((current != 0) == wanted) return;
    if (set(object, wanted ? 1 : 0) < 0) {
      fail(std::string(wanted ? "setting " : "clearing ") + "autostart of " + what);
    }
  }

  // The path of a volume a domain's disk names: "" when it cannot be found (parse_domain_xml
  // then reads "<pool>/<volume>").
  std::string volume_path(const std::string& pool, const std::string& volume) const {
    PoolHandle other;
    virStoragePoolPtr in = pool_.get();
    if (pool != target_.pool) {
      other.reset(virStoragePoolLookupByName(conn_.get(), pool.c_str()));
      in = other.get();
    }
    const VolumeHandle vol(in != nullptr ? virStorageVolLookupByName(in, volume.c_str()) : nullptr);
    std::string path = vol ? adopt_string(virStorageVolGetPath(vol.get())) : "";
    if (path.empty()) virResetLastError();
    return path;
  }

  const HostTarget target_;
  const std::string label_;
  const ConnectHandle conn_;
  const PoolHandle pool_;
  std::mutex refresh_mutex_;
};

class LibvirtConnector final : public HostConnector {
 public:
  std::unique_ptr<HostSession> connect(const HostTarget& host,
                                       std::chrono::milliseconds timeout) override {
    auto opened = open_connection(host, timeout);
    if (!opened.conn) throw HostError(opened.error);
    const std::string label = host_label(host) + ": ";
    const std::string pool = "storage pool " + quoted(host.pool);
    PoolHandle handle(virStoragePoolLookupByName(opened.conn.get(), host.pool.c_str()));
    if (!handle) {
      const auto error = last_error();
      if (error.code == VIR_ERR_NO_STORAGE_POOL) {
        throw HostError(label + pool + " not found — create it or set pool: in kumo.yaml");
      }
      throw HostError(label + "looking up " + pool + " failed: " + error.message);
    }
    const int active = virStoragePoolIsActive(handle.get());
    if (active < 0) {
      throw HostError(label + "reading " + pool + " failed: " + last_error().message);
    }
    if (active == 0) {
      throw HostError(label + pool + " is not active — start it (virsh pool-start " + host.pool +
                      "; virsh pool-autostart " + host.pool + ") or set pool: in kumo.yaml");
    }
    return std::make_unique<LibvirtSession>(host, std::move(opened.conn), std::move(handle));
  }
};

}  // namespace

std::unique_ptr<HostConnector> make_libvirt_connector() {
  return std::make_unique<LibvirtConnector>();
}

}  // namespace kumo
