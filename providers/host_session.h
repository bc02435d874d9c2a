// The write side of a host: what `kumo apply`, `destroy` and `status` do to one libvirt host.
// Specs are plain values; each provider turns them into its own calls (libvirt builds XML from
// them in providers/libvirt/xml_build.cpp). Every method either succeeds or throws HostError
// with a message that already names the host and the object, so the executor only has to pass
// it on. A session is safe to use from several threads at once.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "providers/observed.h"
#include "providers/provider.h"

namespace kumo {

class HostError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A storage pool kumo makes (hosts.<h>.pools): a directory, or an LVM volume group on devices.
struct PoolSpec {
  std::string name;
  std::string type;                  // dir | logical
  std::string path;                  // dir: the directory
  std::vector<std::string> devices;  // logical: the physical volumes
  std::string cluster;               // marked as this cluster's (ObservedPool::owner_cluster)
  // A delete: kumo's own volumes still in it that go with it (base images and their markers,
  // the cluster's lock and records), the lock last.
  std::vector<std::string> volumes{};
  bool operator==(const PoolSpec&) const = default;
};

struct VolumeSpec {
  std::string name;
  std::uint64_t capacity = 0;  // bytes
  std::string format = "qcow2";
  std::string backing_path;  // a qcow2 overlay on this file ("" for none)
  std::string backing_format;
};

struct NetworkDhcpHost {
  std::string mac, ip, name;
  bool operator==(const NetworkDhcpHost&) const = default;
};

using NetworkDnsHost = ObservedDnsHost;

// Host entries to take out of and put into a running network, live and in its definition.
// Removals go first, so an address can move from one entry to another in one change.
struct NetworkHostsChange {
  std::vector<NetworkDhcpHost> dhcp_remove, dhcp_add;
  std::vector<NetworkDnsHost> dns_remove, dns_add;
  bool empty() const {
    return dhcp_remove.empty() && dhcp_add.empty() && dns_remove.empty() && dns_add.empty();
  }
};

struct NetworkSpec {
  std::string name;     // kumo_<cluster>_<net> (the name is half of the ownership mark)
  std::string uuid;     // "" lets libvirt choose; kumo records the one it gives (ownership.h)
  std::string mode;     // nat | route | isolated | bridge
  std::string bridge;   // the bridge libvirt creates (kb-...), or the host's (mode bridge)
  std::string address;  // the host's address on it, "10.20.0.1" ("" for bridge mode)
  int prefix = 0;
  std::string dhcp_start, dhcp_end;  // "" = no DHCP
  std::vector<NetworkDhcpHost> dhcp_hosts;
  std::vector<NetworkDnsHost> dns_hosts;  // names besides the DHCP hosts' own
  std::string domain;                     // DNS domain ("" = none); VMs' names resolve inside it
  std::optional<int> mtu;
};

// The DNS entries a network serves: every DHCP host and every extra name, each as `name` and, in
// a network with a domain, `name.domain`. Sorted by IP and name so they compare as plain values.
inline std::vector<NetworkDnsHost> dns_entries(const NetworkSpec& spec) {
  std::vector<NetworkDnsHost> out;
  auto add = [&](const std::string& ip, const std::string& name) {
    if (ip.empty() || name.empty()) return;
    NetworkDnsHost h{ip, {name}};
    if (!spec.domain.empty()) h.names.push_back(name + "." + spec.domain);
    out.push_back(std::move(h));
  };
  for (const auto& h : spec.dhcp_hosts) add(h.ip, h.name);
  for (const auto& h : spec.dns_hosts) {
    for (const auto& name : h.names) add(h.ip, name);
  }
  std::sort(out.begin(), out.end(), [](const NetworkDnsHost& a, const NetworkDnsHost& b) {
    return a.ip != b.ip ? a.ip < b.ip : a.names < b.names;
  });
  return out;
}

// The serial a data disk carries: its name, as much as virtio-blk keeps (20 bytes).
inline std::string disk_serial(const std::string& name) {
  return name.substr(0, 20);
}

struct DomainDisk {
  std::string volume;  // in the session's pool, or in `pool`
  std::string format;  // qcow2 | raw
  std::string target;  // vda, vdb...
  bool readonly = false;
  // The guest sees it as /dev/disk/by-id/virtio-<serial> whatever the order it was found in
  // (virtio-blk keeps 20 bytes). "" = none.
  std::string serial;
  // QEMU's host cache: none (O_DIRECT, with Linux native AIO) unless the VM asks for another.
  std::string cache = "none";
  std::string pool{};  // "" = the session's pool
};

struct DomainNic {
  std::string network;  // libvirt network name, or ""
  std::string bridge;   // host bridge when network is ""
  std::string mac;
  std::string direct;  // host interface (macvtap) when network and bridge are ""
  std::string mode;    // macvtap mode: bridge | vepa | private | passthrough
  std::string model = "virtio";
  int queues = 0;  // virtio-net queue pairs (0 or 1: one)
};

struct DomainSpec {
  std::string name;
  std::string uuid;               // "" lets libvirt choose (a moved domain keeps its own)
  std::string virt_type = "kvm";  // kvm: host-passthrough CPU; qemu: TCG, capped tb-cache
  int vcpus = 1;
  std::uint64_t memory = 0;  // bytes
  // What vCPUs and memory can grow to while the guest runs (0: no headroom beyond the above).
  int max_vcpus = 0;
  std::uint64_t max_memory = 0;
  std::vector<DomainDisk> disks;
  std::vector<DomainNic> nics;
  std::string serial_log;  // file the serial console is logged to on the host ("" = none)
  // The machine: "" (BIOS, pc) or "efi" (OVMF, q35: libvirt picks the firmware build from the
  // features asked for). secure_boot turns on SMM and asks for a build with keys enrolled.
  std::string firmware;
  bool secure_boot = false;
  // UEFI: the NVRAM (the firmware's variables) in this file, made by libvirt from the build's
  // template at the first start ("" = libvirt's own place on the host).
  std::string nvram;
  bool tpm = false;  // a TPM 2.0 emulated by swtpm (CRB interface)
  bool autostart = true;
  Ownership owner;  // written into <metadata> at define time
};

// An address a guest has on one of its interfaces.
struct GuestAddress {
  std::string mac;     // the interface's MAC, lower case ("" when the source does not say)
  std::string ip;      // IPv4 or IPv6, never loopback
  std::string source;  // agent | lease
  bool operator==(const GuestAddress&) const = default;
};

inline std::vector<std::string> address_ips(const std::vector<GuestAddress>& addresses) {
  std::vector<std::string> out;
  for (const auto& a : addresses) out.push_back(a.ip);
  return out;
}

// A finished guest-agent `guest-exec`.
struct GuestExecResult {
  int exitcode = -1;
  std::string out, err;
};

struct Transfer {
  std::uint64_t done = 0, total = 0;
};
using TransferTick = std::function<void(const Transfer&)>;

// Reads bytes to upload: fills up to `max` bytes into `buf`, returns how many (0 at the end).
using ByteReader = std::function<std::size_t(char* buf, std::size_t max)>;

// A volume's bytes as stored (a qcow2 file's own bytes, not the guest's view), read through a
// stream: what a cold move copies from one host to another.
class VolumeReader {
 public:
  virtual ~VolumeReader() = default;
  virtual std::uint64_t size() const = 0;  // bytes the volume's file holds
  // Up to `max` bytes; 0 at the end. Throws HostError when the stream fails.
  virtual std::size_t read(char* buf, std::size_t max) = 0;
};

// A live migration to another host, as the executor asks for it.
struct MigrationRequest {
  // The definition the domain gets on the destination (kumo's own form, its UUID kept).
  DomainSpec persistent;
  std::string uri;        // the memory stream: unix:///dir/x.mem, tcp://addr ("" = libvirt's)
  std::string disks_uri;  // the NBD disk copy: unix:///dir/x.nbd, tcp://addr ("" = libvirt's)
  // Targets (vda, vdb) whose storage is copied into the volumes of the same names that the
  // destination's pool already holds (empty ones: an overlay on the same base, data disks).
  std::vector<std::string> copy_disks;
  std::chrono::seconds timeout{1800};
  TransferTick tick;  // bytes processed of the total, as the migration job reports them
};

// Who a domain is, for the checks before a change that needs nothing more (a delete).
struct DomainIdentity {
  std::string uuid;
  std::optional<Ownership> owner;  // kumo's mark in its definition; nullopt: none
};

class HostSession {
 public:
  virtual ~HostSession() = default;

  virtual const HostTarget& target() const = 0;
  virtual std::string pool_path() = 0;  // the directory of the session's pool ("" if not a dir)

  // --- volumes, all in the session's pool
  virtual std::optional<ObservedVolume> volume(const std::string& name) = 0;
  virtual void create_volume(const VolumeSpec& spec) = 0;
  // Creates `name` (raw, exactly `size` bytes) and fills it through the stream API, in chunks
  // of at least 1 MiB. `read` must yield exactly `size` bytes.
  virtual void upload_volume(const std::string& name, std::uint64_t size, const ByteReader& read,
                             const TransferTick& tick) = 0;
  // Up to `length` bytes of a volume's content from `offset` (stream download).
  virtual std::string read_volume(const std::string& name, std::uint64_t offset,
                                  std::size_t length) = 0;
  // Gone already: no error. A file in the pool directory that libvirt does not list yet (a serial
  // log) is found after refreshing the pool.
  virtual void delete_volume(const std::string& name) = 0;
  // Grows a volume that no running domain uses (shrinking is refused before it gets here).
  virtual void resize_volume(const std::string& name, std::uint64_t capacity) = 0;
  // Creates `name` holding `content` only if the pool has no volume of that name: false when it
  // has one (whatever its content). What a lock is made of.
  virtual bool create_volume_exclusive(const std::string& name, const std::string& content) = 0;

  // --- the cluster lock's records (planner/lock.h): small texts, one per name, made exclusively.
  // By default each is a volume of the session's pool holding its text (lock_record.cpp): any
  // host with a pool can keep one. A libvirt host with a secret driver keeps them as secrets
  // instead (session_locks.cpp): writing a volume's content makes libvirt re-read the whole pool
  // it is in, which takes a while and holds that pool meanwhile, with hundreds of volumes there.
  // Makes `name` holding `text` only if no record of that name exists: false when one does.
  virtual bool create_lock_record(const std::string& name, const std::string& text);
  // Up to `max_bytes` of its text; nullopt when there is no such record. HostError when it
  // cannot be read (it may have been removed between the look and the read).
  virtual std::optional<std::string> read_lock_record(const std::string& name,
                                                      std::size_t max_bytes);
  // A mark that changes whenever the record is made anew or rewritten ("" when the host gives
  // none); nullopt when there is no such record.
  virtual std::optional<std::string> lock_record_stamp(const std::string& name);
  // Gone already: no error.
  virtual void delete_lock_record(const std::string& name);
  // The last `max_bytes` of a file in the pool directory that libvirt may not list yet (a
  // serial log): "" when there is none.
  virtual std::string tail_pool_file(const std::string& name, std::size_t max_bytes) = 0;

  // --- storage pools, by name (any pool of the host, not only the session's)
  virtual std::optional<ObservedPool> pool(const std::string& name) = 0;
  // Defines the pool marked as spec.cluster's, builds it (mkdir; pvcreate + vgcreate), starts it
  // and sets it to autostart. The definition goes again when a later step fails.
  virtual void define_pool(const PoolSpec& spec) = 0;
  virtual void start_pool(const std::string& name, bool autostart) = 0;
  // Stops it, deletes what the build made (rmdir; vgremove + pvremove) and undefines it.
  virtual void delete_pool(const std::string& name) = 0;

  // --- networks
  virtual std::optional<ObservedNetwork> network(const std::string& name) = 0;
  virtual void define_network(const NetworkSpec& spec) = 0;  // defines, starts, autostarts
  virtual void start_network(const std::string& name, bool autostart) = 0;
  virtual void delete_network(const std::string& name) = 0;  // stops and undefines
  // DHCP and DNS host entries, changed in the running network and in its definition at once
  // (virNetworkUpdate): guests keep their connectivity.
  virtual void update_network_hosts(const std::string& name, const NetworkHostsChange& change) = 0;

  // --- domains
  virtual std::optional<ObservedDomain> domain(const std::string& name) = 0;
  // The domain's UUID and owner mark only, read with fewer calls than domain() (no disk paths,
  // state or autostart): what deleting it must check first. nullopt: no such domain.
  virtual std::optional<DomainIdentity> domain_identity(const std::string& name) {
    auto dom = domain(name);
    if (!dom) return std::nullopt;
    return DomainIdentity{dom->uuid, dom->owner};
  }
  virtual void define_domain(const DomainSpec& spec) = 0;
  virtual void start_domain(const std::string& name) = 0;
  virtual void set_domain_autostart(const std::string& name, bool autostart) = 0;
  // Stops (forcefully) if running, then undefines. Gone already: no error.
  virtual void delete_domain(const std::string& name) = 0;
  // delete_domain once `check` has accepted the domain's identity, read on the same lookup (a
  // checked delete costs no second one). `check` throws to refuse: the domain is left as it is.
  // False, `check` not called, when there is no such domain.
  virtual bool delete_domain_if(const std::string& name,
                                const std::function<void(const DomainIdentity&)>& check) {
    const auto id = domain_identity(name);
    if (!id) return false;
    check(*id);
    delete_domain(name);
    return true;
  }
  // A graceful shutdown request (the guest agent if it answers, else the ACPI power button),
  // repeated until the guest powers off or `timeout` is over, then forced off.
  // Returns false when it had to be forced. Not running: nothing, true.
  virtual bool shutdown_domain(const std::string& name, std::chrono::seconds timeout) = 0;
  // vCPUs and memory of a running domain, within its maximums, live and in its definition.
  // New vCPUs are also brought online in the guest through its agent when it answers.
  virtual void set_domain_vcpus(const std::string& name, int vcpus) = 0;
  virtual void set_domain_memory(const std::string& name, std::uint64_t bytes) = 0;
  // Rewrites kumo's mark in the domain's <metadata> (live and in its definition).
  // virDomainRename: only a domain that is shut off.
  virtual void rename_domain(const std::string& name, const std::string& to) = 0;
  virtual void set_domain_owner(const std::string& name, const Ownership& owner) = 0;
  // Grows the disk `target` (vdb) of a running domain, the guest sees the new size at once.
  virtual void resize_domain_disk(const std::string& name, const std::string& target,
                                  std::uint64_t capacity) = 0;
  // The disks of the running domain as it runs now (a hot-plugged disk keeps the target it was
  // plugged under until the next boot, which may differ from its target in the definition).
  // Not running: empty.
  virtual std::vector<ObservedDisk> live_disks(const std::string& name) = 0;
  // Hot-plugs a disk into the running domain (live only: the definition is written by
  // define_domain). `disk.target` must be free in live_disks().
  virtual void attach_disk(const std::string& name, const DomainDisk& disk) = 0;

  // --- moves between hosts
  // Moves the running domain `name` live to `dest` (a session of the same kind to another
  // host). On success it runs there, persistent as req.persistent, and is gone from here. On a
  // failure or past req.timeout the migration is aborted: the domain keeps running here, and
  // the error names the host that failed.
  virtual void migrate_domain(const std::string& name, HostSession& dest,
                              const MigrationRequest& req) = 0;
  // Resumes a domain that a migration left paused (its apply was killed at the end of one).
  // True when it did; a domain paused for any other reason is left alone.
  virtual bool resume_after_migration(const std::string& name) = 0;
  // The bytes of a volume in the session's pool, as stored.
  virtual std::unique_ptr<VolumeReader> open_volume(const std::string& name) = 0;

  // --- the guest agent; throws HostError when the agent does not answer
  virtual nlohmann::json agent_command(const std::string& domain, const nlohmann::json& command,
                                       std::chrono::seconds timeout) = 0;
  // Addresses of the guest's interfaces (not loopback): from the agent, else DHCP leases.
  // Neither answers (no agent, no lease yet): empty.
  virtual std::vector<GuestAddress> addresses(const std::string& domain) = 0;

  // --- sharing
  // Offers this session's connection, which its owner leaves idle from now until it is done
  // with the others, to the next open of its host (the lock's, to the plan's reads and then the
  // steps of kumo apply: one connection instead of three; providers/libvirt/connection.h,
  // ConnectionReuse). The connection stays this session's as well. The default offers nothing.
  virtual void lend_connection() {}
};

class HostConnector {
 public:
  virtual ~HostConnector() = default;
  // Opens a session (throws HostError naming the host when it cannot).
  virtual std::unique_ptr<HostSession> connect(const HostTarget& host,
                                               std::chrono::milliseconds timeout) = 0;
};

}  // namespace kumo
