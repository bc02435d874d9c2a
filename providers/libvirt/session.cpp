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
    // The pool is looked up on first use: a pool this apply makes may not exist yet.
    PoolHandle handle(virStoragePoolLookupByName(opened.conn.get(), host.pool.c_str()));
    if (!handle) virResetLastError();
    return std::make_unique<LibvirtSession>(host, std::move(opened.conn), std::move(handle));
  }
};

}  // namespace
}  // namespace libvirt

std::unique_ptr<HostConnector> make_libvirt_connector() {
  return std::make_unique<libvirt::LibvirtConnector>();
}

}  // namespace kumo
