// The floor for bench/plan: the least any tool must do to know a host's state through the libvirt
// API: open, list every domain, network, pool and volume in bulk, fetch each one's XML. Hosts are
// read in parallel, one thread each, like kumo does. Prints seconds and the number of calls.
//   kumo_plan_floor URI [URI...]
#include <libvirt/libvirt.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<long> calls{0};
std::atomic<long> objects{0};

void read_host(const std::string& uri, bool& ok) {
  virConnectPtr c = virConnectOpenAuth(uri.c_str(), virConnectAuthPtrDefault, 0);
  ++calls;
  if (!c) return;
  virDomainPtr* doms = nullptr;
  const int nd = virConnectListAllDomains(c, &doms, 0);
  ++calls;
  for (int i = 0; i < nd; ++i) {
    char* xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
    ++calls;
    std::free(xml);
    virDomainFree(doms[i]);
  }
  std::free(doms);
  virNetworkPtr* nets = nullptr;
  const int nn = virConnectListAllNetworks(c, &nets, 0);
  ++calls;
  for (int i = 0; i < nn; ++i) {
    char* xml = virNetworkGetXMLDesc(nets[i], 0);
    ++calls;
    std::free(xml);
    virNetworkFree(nets[i]);
  }
  std::free(nets);
  virStoragePoolPtr* pools = nullptr;
  const int np = virConnectListAllStoragePools(c, &pools, 0);
  ++calls;
  long nv_total = 0;
  for (int i = 0; i < np; ++i) {
    char* pxml = virStoragePoolGetXMLDesc(pools[i], 0);
    ++calls;
    std::free(pxml);
    virStorageVolPtr* vols = nullptr;
    const int nv = virStoragePoolListAllVolumes(pools[i], &vols, 0);
    ++calls;
    for (int j = 0; j < nv; ++j) {
      // A serial log's and a seed's names say all (kumo's, one each per VM): no XML.
      const std::string name = virStorageVolGetName(vols[j]);
      if (!name.ends_with("_serial.log") && !name.ends_with("_seed.iso")) {
        char* xml = virStorageVolGetXMLDesc(vols[j], 0);
        ++calls;
        std::free(xml);
      }
      virStorageVolFree(vols[j]);
    }
    nv_total += nv > 0 ? nv : 0;
    std::free(vols);
    virStoragePoolFree(pools[i]);
  }
  std::free(pools);
  objects += (nd > 0 ? nd : 0) + (nn > 0 ? nn : 0) + (np > 0 ? np : 0) + nv_total;
  virConnectClose(c);
  ok = nd >= 0 && nn >= 0 && np >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s URI [URI...]\n", argv[0]);
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<char> ok(static_cast<size_t>(argc), 0);
  for (int i = 1; i < argc; ++i) {
    threads.emplace_back([&, i] {
      bool good = false;
      read_host(argv[i], good);
      ok[static_cast<size_t>(i)] = good;
    });
  }
  for (auto& t : threads) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int i = 1; i < argc; ++i) {
    if (!ok[static_cast<size_t>(i)]) {
      std::fprintf(stderr, "floor: cannot read %s\n", argv[i]);
      return 1;
    }
  }
  std::printf("floor_s=%.4f calls=%ld objects=%ld\n", s, calls.load(), objects.load());
  return 0;
}
