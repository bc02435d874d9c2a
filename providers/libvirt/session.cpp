#include "providers/libvirt/session_impl.h"

namespace kumo {
namespace libvirt {
namespace {

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
}  // namespace libvirt

std::unique_ptr<HostConnector> make_libvirt_connector() {
  return std::make_unique<libvirt::LibvirtConnector>();
}

}  // namespace kumo
