// RAII for libvirt's C handles. Private to providers/libvirt/: it is the one header that includes
// <libvirt/libvirt.h>, and nothing outside this folder includes it.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <libvirt/libvirt.h>

namespace kumo::libvirt {

struct ConnectCloser {
  void operator()(virConnectPtr c) const noexcept { virConnectClose(c); }
  // What else the connection holds until it is closed: its place in the process's descriptor
  // budget (connection.h), given back after the close, when the handle goes.
  std::shared_ptr<void> budget_slot;
};
struct DomainFreer {
  void operator()(virDomainPtr d) const noexcept { virDomainFree(d); }
};
struct NetworkFreer {
  void operator()(virNetworkPtr n) const noexcept { virNetworkFree(n); }
};
struct PoolFreer {
  void operator()(virStoragePoolPtr p) const noexcept { virStoragePoolFree(p); }
};
struct VolumeFreer {
  void operator()(virStorageVolPtr v) const noexcept { virStorageVolFree(v); }
};
struct SecretFreer {
  void operator()(virSecretPtr s) const noexcept { virSecretFree(s); }
};
struct StreamFreer {
  void operator()(virStreamPtr s) const noexcept { virStreamFree(s); }
};
struct StatsListFreer {
  void operator()(virDomainStatsRecordPtr* list) const noexcept {
    virDomainStatsRecordListFree(list);
  }
};

using ConnectHandle = std::unique_ptr<virConnect, ConnectCloser>;
using DomainHandle = std::unique_ptr<virDomain, DomainFreer>;
using NetworkHandle = std::unique_ptr<virNetwork, NetworkFreer>;
using PoolHandle = std::unique_ptr<virStoragePool, PoolFreer>;
using VolumeHandle = std::unique_ptr<virStorageVol, VolumeFreer>;
using StreamHandle = std::unique_ptr<virStream, StreamFreer>;
using SecretHandle = std::unique_ptr<virSecret, SecretFreer>;
// virConnectGetAllDomainStats returns a NULL-terminated array freed in one call.
using StatsList = std::unique_ptr<virDomainStatsRecordPtr, StatsListFreer>;

// virConnectListAll* hand over an array the caller must free() and `count` handles it must free
// one by one. Takes ownership of both; a negative count (an error) yields an empty list.
template <typename Handle>
std::vector<Handle> adopt_list(typename Handle::pointer* array, int count) {
  std::vector<Handle> handles;
  if (array == nullptr) return handles;
  handles.reserve(count > 0 ? static_cast<std::size_t>(count) : 0);
  for (int i = 0; i < count; ++i) handles.emplace_back(array[i]);
  std::free(array);
  return handles;
}

// Strings such as XML descriptions are malloc'ed by libvirt and owned by the caller.
inline std::string adopt_string(char* text) {
  if (text == nullptr) return {};
  std::string copy = text;
  std::free(text);
  return copy;
}

}  // namespace kumo::libvirt
