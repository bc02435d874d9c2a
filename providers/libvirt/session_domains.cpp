// The libvirt session's domains and their guest agents.
#include "providers/libvirt/session_impl.h"

#include <algorithm>
#include <cctype>

namespace kumo::libvirt {
namespace {

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
  std::vector<GuestAddress> addresses(const char* source) const {
    std::vector<GuestAddress> out;
    for (int i = 0; i < count_; ++i) {
      const virDomainInterfacePtr iface = list_[i];
      if (iface->name != nullptr && std::string(iface->name) == "lo") continue;
      std::string mac = iface->hwaddr != nullptr ? iface->hwaddr : "";
      std::transform(mac.begin(), mac.end(), mac.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      for (unsigned j = 0; j < iface->naddrs; ++j) {
        if (iface->addrs[j].addr == nullptr) continue;
        const std::string address = iface->addrs[j].addr;
        if (!is_loopback(address)) out.push_back({mac, address, source});
      }
    }
    return out;
  }

 private:
  virDomainInterfacePtr* list_ = nullptr;
  int count_ = 0;
};

}  // namespace

// A domain's XML with its pool volumes resolved to paths.
std::optional<ObservedDomain> LibvirtSession::parse_domain(const std::string& xml) {
  return parse_domain_xml(
      xml, [this](const std::string& pool, const std::string& v) { return volume_path(pool, v); });
}

std::optional<ObservedDomain> LibvirtSession::domain(const std::string& name) {
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

// One call: the persistent definition (where domain() reads the owner mark too); the UUID comes
// with the handle.
std::optional<DomainIdentity> LibvirtSession::identity_of(virDomainPtr dom,
                                                          const std::string& name) {
  const std::string xml = adopt_string(virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE));
  if (xml.empty())
    return vanished_or_fail<DomainIdentity>(VIR_ERR_NO_DOMAIN, "reading domain " + name);
  const auto parsed = parse_domain_xml(xml);  // no lookup: disk paths stay unresolved
  if (!parsed) unreadable("domain " + name);
  return DomainIdentity{parsed->uuid, parsed->owner};
}

std::optional<DomainIdentity> LibvirtSession::domain_identity(const std::string& name) {
  const auto dom = find_domain(name);
  return dom ? identity_of(dom.get(), name) : std::nullopt;
}

bool LibvirtSession::delete_domain_if(const std::string& name,
                                      const std::function<void(const DomainIdentity&)>& check) {
  const auto dom = find_domain(name);
  const auto id = dom ? identity_of(dom.get(), name) : std::nullopt;
  if (!id) return false;
  check(*id);
  remove_domain(dom.get(), name);
  return true;
}

void LibvirtSession::define_domain(const DomainSpec& spec) {
  // Redefining keeps the domain's UUID: libvirt refuses a definition of an existing name
  // under another one (and a definition without one gets a random one).
  std::string uuid = spec.uuid;
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

void LibvirtSession::start_domain(const std::string& name) {
  const auto dom = need_domain(name, "starting");
  const int active = virDomainIsActive(dom.get());
  if (active < 0) fail("starting domain " + name);
  if (active == 0 && virDomainCreate(dom.get()) < 0) fail("starting domain " + name);
}

void LibvirtSession::set_domain_autostart(const std::string& name, bool autostart) {
  const auto dom = need_domain(name, "setting autostart of");
  set_autostart(virDomainGetAutostart, virDomainSetAutostart, dom.get(), autostart,
                "domain " + name);
}

void LibvirtSession::delete_domain(const std::string& name) {
  if (const auto dom = find_domain(name)) remove_domain(dom.get(), name);
}

void LibvirtSession::remove_domain(virDomainPtr dom, const std::string& name) {
  const std::string what = "deleting domain " + name;
  // The lookup told whether it ran (its ID; -1 when not): no call to ask. One started since is
  // left defined and running by the undefine below (libvirt keeps it, transient), which the
  // caller's check afterwards finds.
  const bool active = virDomainGetID(dom) != static_cast<unsigned>(-1);
  if (active && virDomainDestroy(dom) < 0) {
    const int code = last_error().code;
    if (code == VIR_ERR_NO_DOMAIN) return virResetLastError();
    if (code != VIR_ERR_OPERATION_INVALID) fail(what + " (stopping it)");  // not "not running"
  }
  // A transient domain is gone once stopped: undefining it then finds no domain (or, stopped
  // by someone else and still there, one that cannot be undefined), which is done too.
  // The NVRAM file and the TPM's state go with the domain (a move keeps the UUID, and so would
  // find a stale TPM state on a host it comes back to).
  constexpr unsigned kFlags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                              VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM |
                              VIR_DOMAIN_UNDEFINE_TPM;
  if (virDomainUndefineFlags(dom, kFlags) == 0) return;
  int code = last_error().code;
  // Drivers that do not know a flag (the test driver rejects _NVRAM) undefine without them.
  if (code == VIR_ERR_INVALID_ARG || code == VIR_ERR_NO_SUPPORT) {
    if (virDomainUndefine(dom) == 0) return;
    code = last_error().code;
  }
  if (code == VIR_ERR_OPERATION_INVALID && active && virDomainIsPersistent(dom) == 0)
    return virResetLastError();  // transient, and stopped above
  vanished_or_fail<void>(VIR_ERR_NO_DOMAIN, what);
}

bool LibvirtSession::shutdown_domain(const std::string& name, std::chrono::seconds timeout) {
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

void LibvirtSession::set_domain_vcpus(const std::string& name, int vcpus) {
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

void LibvirtSession::set_domain_memory(const std::string& name, std::uint64_t bytes) {
  const auto dom = need_domain(name, "setting memory of");
  const std::string what = "setting the memory of domain " + name;
  const int active = virDomainIsActive(dom.get());
  if (active < 0) fail(what);
  const unsigned long kib = bytes / 1024;
  if (active == 1 && virDomainSetMemoryFlags(dom.get(), kib, VIR_DOMAIN_AFFECT_LIVE) < 0)
    fail(what);
  if (virDomainSetMemoryFlags(dom.get(), kib, VIR_DOMAIN_AFFECT_CONFIG) < 0) fail(what);
}

void LibvirtSession::set_domain_owner(const std::string& name, const Ownership& owner) {
  const auto dom = need_domain(name, "marking");
  const std::string what = "writing kumo's metadata of domain " + name;
  const int active = virDomainIsActive(dom.get());
  if (active < 0) fail(what);
  // The element without its namespace declaration: libvirt adds it from `uri`.
  const std::string xml = owner_metadata_xml(owner, /*with_namespace=*/false);
  for (unsigned flags :
       {active == 1 ? unsigned{VIR_DOMAIN_AFFECT_LIVE} : 0u, unsigned{VIR_DOMAIN_AFFECT_CONFIG}}) {
    if (flags == 0) continue;
    if (virDomainSetMetadata(dom.get(), VIR_DOMAIN_METADATA_ELEMENT, xml.c_str(), kOwnerPrefix,
                             kOwnerNamespace, flags) < 0)
      fail(what);
  }
}

void LibvirtSession::rename_domain(const std::string& name, const std::string& to) {
  const auto dom = need_domain(name, "renaming");
  if (virDomainRename(dom.get(), to.c_str(), 0) < 0) fail("renaming domain " + name + " to " + to);
}

void LibvirtSession::resize_domain_disk(const std::string& name, const std::string& target,
                                        std::uint64_t capacity) {
  const auto dom = need_domain(name, "growing a disk of");
  if (virDomainBlockResize(dom.get(), target.c_str(), capacity, VIR_DOMAIN_BLOCK_RESIZE_BYTES) <
      0) {
    fail("growing disk " + target + " of domain " + name);
  }
}

std::vector<ObservedDisk> LibvirtSession::live_disks(const std::string& name) {
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

void LibvirtSession::attach_disk(const std::string& name, const DomainDisk& disk) {
  const auto dom = need_domain(name, "attaching a disk to");
  const std::string xml = disk_xml(disk, target_.pool);
  if (virDomainAttachDeviceFlags(dom.get(), xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) < 0)
    fail("hot-plugging volume " + disk.volume + " as " + disk.target + " into domain " + name);
}

nlohmann::json LibvirtSession::agent_command(const std::string& domain,
                                             const nlohmann::json& command,
                                             std::chrono::seconds timeout) {
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

std::vector<GuestAddress> LibvirtSession::addresses(const std::string& domain) {
  const auto dom = find_domain(domain);
  if (!dom) return {};
  const std::pair<unsigned, const char*> sources[] = {
      {VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, "agent"},
      {VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, "lease"}};
  for (const auto& [source, name] : sources) {
    InterfaceList list;
    if (!list.fetch(dom.get(), source)) continue;
    auto found = list.addresses(name);
    if (!found.empty()) return found;
  }
  return {};
}

}  // namespace kumo::libvirt
