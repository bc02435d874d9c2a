// The libvirt HostSession's parts, for the files that implement it: session.cpp (connecting,
// the pool), session_volumes.cpp, session_networks.cpp, session_domains.cpp (domains and the
// guest agent). Not for use outside providers/libvirt/.
#pragma once

#include "providers/libvirt/session.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
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

namespace kumo::libvirt {

inline constexpr std::size_t kUploadChunk = 4u << 20;  // bytes read from the source at a time
// Bytes per stream message: libvirt's own stream payload size (what virStreamSendAll uses).
// Larger messages stall the pipeline over qemu+ssh (bench/images: 4 MiB messages ran at 0.6x the
// throughput of `virsh vol-upload`, 256 KiB ones at 1.2x).
inline constexpr std::size_t kStreamMessage = 256u << 10;
inline constexpr std::size_t kDownloadChunk = 256u << 10;  // bytes per virStreamRecv

inline std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

// A connection for streams (session.h), and the session's pool on it, looked up on first use.
struct StreamConnection {
  ConnectHandle conn;
  PoolHandle pool;
};
// A session's stream connections not in use; `opened` counts all it opened.
struct StreamConnections {
  std::mutex mu;
  std::vector<StreamConnection> idle;
  std::atomic<int> opened{0};
};

// One stream's connection, for the stream's life (free its stream first): goes back to its
// session's idle ones when the lease ends, unless it died. In line (Streams::InLine), the
// session's own connection and pool, borrowed.
class StreamLease {
 public:
  StreamLease(std::shared_ptr<StreamConnections> home, StreamConnection own)
      : home_(std::move(home)), own_(std::move(own)) {}
  StreamLease(virConnectPtr conn, virStoragePoolPtr pool)
      : borrowed_conn_(conn), borrowed_pool_(pool) {}
  ~StreamLease();
  StreamLease(const StreamLease&) = delete;
  StreamLease& operator=(const StreamLease&) = delete;
  virConnectPtr conn() const { return own_.conn ? own_.conn.get() : borrowed_conn_; }
  // The pool `name` on this connection; null with libvirt's error set when it cannot be found.
  virStoragePoolPtr pool(const std::string& name);

 private:
  std::shared_ptr<StreamConnections> home_;
  StreamConnection own_;
  virConnectPtr borrowed_conn_ = nullptr;
  virStoragePoolPtr borrowed_pool_ = nullptr;
};

class LibvirtSession final : public HostSession {
 public:
  LibvirtSession(const HostTarget& target, ConnectHandle conn, PoolHandle pool,
                 Streams streams = Streams::Apart,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : target_(target),
        label_(host_label(target)),
        conn_(std::move(conn)),
        streams_(streams),
        timeout_(timeout),
        pool_(std::move(pool)) {}

  const HostTarget& target() const override { return target_; }

  // Once lent, the connection may carry another's calls: this session's streams go on
  // connections of their own from then on, even in line (session.h: why).
  void lend_connection() override {
    if (virConnectRef(conn_.get()) != 0) return;
    lent_ = true;
    give_back(target_, ConnectHandle(conn_.get(), conn_.get_deleter()));  // closes the ref
  }

  std::string pool_path() override {
    const std::string xml = adopt_string(virStoragePoolGetXMLDesc(kumo_pool(), 0));
    if (xml.empty()) fail("reading storage pool " + quoted(target_.pool));
    const auto pool = parse_pool_xml(xml);
    if (!pool) unreadable("storage pool " + quoted(target_.pool));
    // Pools whose target is a directory of files; a logical pool's target is /dev/<vg>.
    const bool directory = pool->type == "dir" || pool->type == "fs" || pool->type == "netfs";
    return directory ? pool->path : "";
  }

  // --- volumes
  // The handles of the volumes of this session's pool that a read of its connection listed
  // (ListedVolumes): read or deleted through them (known_volume), no lookup first.
  void take_listed(ListedVolumes& listed);
  std::optional<ObservedVolume> volume(const std::string& name) override;
  void create_volume(const VolumeSpec& spec) override;
  void upload_volume(const std::string& name, std::uint64_t size, const ByteReader& read,
                     const TransferTick& tick) override;
  void delete_volume(const std::string& name) override;
  void resize_volume(const std::string& name, std::uint64_t capacity) override;
  bool create_volume_exclusive(const std::string& name, const std::string& content) override;
  // Best effort: diagnostics for a guest that did not come up must never fail on their own.
  std::string tail_pool_file(const std::string& name, std::size_t max_bytes) override;

  // --- the cluster lock's records, as secrets (session_locks.cpp); as volumes when the host
  // has no secret driver (libvirt's test driver)
  bool create_lock_record(const std::string& name, const std::string& text) override;
  std::optional<std::string> read_lock_record(const std::string& name,
                                              std::size_t max_bytes) override;
  std::optional<std::string> lock_record_stamp(const std::string& name) override;
  void delete_lock_record(const std::string& name) override;

  // --- storage pools (session_pools.cpp)
  std::optional<ObservedPool> pool(const std::string& name) override;
  void define_pool(const PoolSpec& spec) override;
  void start_pool(const std::string& name, bool autostart) override;
  void delete_pool(const std::string& name) override;
  std::string read_volume(const std::string& name, std::uint64_t offset,
                          std::size_t length) override;
  // Bytes [offset, offset+length) of a volume (looked up on `lease`) through a stream; on
  // failure, what was read before it, and libvirt's error in *error (code 0: none).
  std::string download(StreamLease& lease, virStorageVolPtr vol, std::uint64_t offset,
                       std::uint64_t length, LibvirtError* error);

  // --- streams (session.cpp)
  // A connection for one stream (session.h): an idle one of the session's, or a new one (within
  // the session's connect timeout; HostError saying `what` when it cannot be opened).
  std::unique_ptr<StreamLease> lease_stream(const std::string& what);
  // Volume `name` of the session's pool, looked up on `lease`'s connection (HostError saying
  // `what` when it is not there or cannot be looked up).
  VolumeHandle stream_volume(StreamLease& lease, const std::string& name, const std::string& what);
  // Connections the session opened for streams (tests).
  int stream_connections_opened() const { return stream_pool_->opened; }

  // --- networks
  std::optional<ObservedNetwork> network(const std::string& name) override;
  void define_network(const NetworkSpec& spec) override;
  void start_network(const std::string& name, bool autostart) override;
  void delete_network(const std::string& name) override;
  void update_network_hosts(const std::string& name, const NetworkHostsChange& change) override;

  // --- domains
  // A domain's XML with its pool volumes resolved to paths.
  std::optional<ObservedDomain> parse_domain(const std::string& xml);
  std::optional<ObservedDomain> domain(const std::string& name) override;
  std::optional<DomainIdentity> domain_identity(const std::string& name) override;
  void define_domain(const DomainSpec& spec) override;
  void start_domain(const std::string& name) override;
  void set_domain_autostart(const std::string& name, bool autostart) override;
  void delete_domain(const std::string& name) override;
  bool delete_domain_if(const std::string& name,
                        const std::function<void(const DomainIdentity&)>& check) override;
  bool shutdown_domain(const std::string& name, std::chrono::seconds timeout) override;
  void set_domain_vcpus(const std::string& name, int vcpus) override;
  void set_domain_memory(const std::string& name, std::uint64_t bytes) override;
  void set_domain_owner(const std::string& name, const Ownership& owner) override;
  void rename_domain(const std::string& name, const std::string& to) override;
  void resize_domain_disk(const std::string& name, const std::string& target,
                          std::uint64_t capacity) override;
  std::vector<ObservedDisk> live_disks(const std::string& name) override;
  void attach_disk(const std::string& name, const DomainDisk& disk) override;

  // --- moves (session_migrate.cpp)
  void migrate_domain(const std::string& name, HostSession& dest,
                      const MigrationRequest& req) override;
  bool resume_after_migration(const std::string& name) override;
  std::unique_ptr<VolumeReader> open_volume(const std::string& name) override;
  virConnectPtr connection() const { return conn_.get(); }
  const std::string& label() const { return label_; }

  // --- the guest agent
  nlohmann::json agent_command(const std::string& domain, const nlohmann::json& command,
                               std::chrono::seconds timeout) override;
  std::vector<GuestAddress> addresses(const std::string& domain) override;

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

  // The secret that is lock record `name`: null when there is none, or when the host has no
  // secret driver (secrets_unsupported_ is then set); HostError when the host did not answer.
  SecretHandle find_lock_secret(const std::string& name);
  // The XML of lock record `name`, through the handle this session made or found it by last
  // (one call; a handle names its secret by UUID, so a record made anew is looked up again);
  // "" when there is none. Not for a host without a secret driver.
  std::string lock_secret_xml(const std::string& name);
  using SharedSecret = std::shared_ptr<virSecret>;
  SharedSecret kept_lock_secret(const std::string& name);  // null: none kept
  void keep_lock_secret(const std::string& name, SecretHandle secret);
  // Drops the handle kept for `name` if it is `which` (any, when null).
  void drop_lock_secret(const std::string& name, const SharedSecret& which = nullptr);
  std::atomic<bool> secrets_unsupported_{false};
  std::mutex lock_secrets_mu_;
  std::map<std::string, SharedSecret> lock_secrets_;

  std::string volume_label(const std::string& name) const {
    return "volume " + name + " in storage pool " + quoted(target_.pool);
  }

  // Lookups: null when the object does not exist, HostError when the host did not answer.
  VolumeHandle find_volume(const std::string& name) const {
    VolumeHandle vol(virStorageVolLookupByName(kumo_pool(), name.c_str()));
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
  // Stops `dom` if it runs, then undefines it (delete_domain's work, on a domain looked up).
  void remove_domain(virDomainPtr dom, const std::string& name);
  // Its UUID and owner mark; nullopt when it went meanwhile.
  std::optional<DomainIdentity> identity_of(virDomainPtr dom, const std::string& name);
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
    virStoragePoolPtr in = pool == target_.pool ? find_kumo_pool() : nullptr;
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
  const Streams streams_;
  std::atomic<bool> lent_{false};
  const std::chrono::milliseconds timeout_;
  const std::shared_ptr<StreamConnections> stream_pool_ = std::make_shared<StreamConnections>();
  // The session's pool, looked up on first use (a pool kumo makes may not exist yet when the
  // session opens): throws HostError, saying what to do, when it is missing or not active.
  virStoragePoolPtr kumo_pool() const;
  virStoragePoolPtr find_kumo_pool() const;             // null when missing
  PoolHandle find_pool(const std::string& name) const;  // null when missing

  mutable std::mutex pool_mutex_;
  mutable PoolHandle pool_;
  mutable std::atomic<bool> pool_active_{false};  // kumo_pool() found it active once
  // Lists files that appeared in the pool behind libvirt's back (serial logs). A refresh reads
  // every file of the pool (a pool of 900 volumes takes a while), and libvirt refuses one while
  // another runs or a volume is being created ("asynchronous jobs running": tried again for a
  // while). Callers that asked while one ran share the next one: a refresh that started after
  // a caller asked serves it. Best effort: a refresh that fails leaves the list as it was.
  void refresh_pool();
  std::mutex refresh_mutex_;
  std::atomic<std::uint64_t> refreshes_started_{0};  // changed under refresh_mutex_

  // Handles of the volumes read through this session (volume()) or listed by the read of its
  // connection (take_listed), by name: read again, or deleted, through them, one call instead
  // of a lookup and the call. libvirt finds a volume handle's volume by its pool's name and its
  // own on every call (the storage driver's virStorageVolDefFromVol), so an old handle answers
  // as a fresh lookup would: "no such volume" once it is gone, the new one's content once it is
  // made again. For the lock's volume, read before every step's change (ClusterLock::verify),
  // and the volumes a destroy deletes. Only calls that tell "no such volume" from a failure go
  // through it (a lookup's "not there" cannot be had from an old handle without a call).
  using SharedVolume = std::shared_ptr<virStorageVol>;
  SharedVolume known_volume(const std::string& name);  // null: never looked up
  SharedVolume remember_volume(const std::string& name, VolumeHandle vol);
  void forget_volume(const std::string& name);  // once deleted
  std::mutex known_mu_;
  std::map<std::string, SharedVolume> known_;
};

}  // namespace kumo::libvirt
