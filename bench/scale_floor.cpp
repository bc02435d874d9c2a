// The floors for bench/scale: the least any tool must do, through the libvirt API, to read many
// hosts (plan), and to read them and then create (apply) or remove (destroy) a set of VMs. The
// reads are bench/plan_floor.cpp's: open, list every domain, network, pool and volume in bulk,
// fetch each one's XML, one thread per host. A destroy reads as kumo destroy --target does: every
// object listed, networks and pools fetched, but the XML only of the VMs to remove and of their
// volumes (destroy-full: every object's XML, as before 2026-12-03). The writes are the calls that
// make or remove the objects kumo's apply makes, with kumo's default parallelism (10 steps at once
// over all hosts). destroy-locked: destroy, plus what kumo's cluster lock costs on each host
// (see lock_host) before the reads, and its release (the secret undefined) at the end:
//   apply:   per VM, virStorageVolCreateXML (overlay), virStorageVolCreateXML + virStorageVolUpload
//            + stream (seed), virStorageVolCreateXML (the empty serial log), virDomainDefineXML
//   destroy: per VM, virDomainLookupByName + virDomainUndefineFlags, and per volume
//            virStorageVolLookupByName + virStorageVolDelete
// What to write comes from a manifest per host, made by bench/scale from objects kumo made:
//   DIR/N.txt (N: 1-based index of the host's URI), one line per VM:
//     apply:   VM root.xml seed.xml seed.data domain.xml log-volume   (files in DIR)
//     destroy: VM root-volume seed-volume log-volume
//
//   kumo_scale_floor read URI...
//   kumo_scale_floor connect URI...          (open, one call, close: what connecting costs)
//   kumo_scale_floor apply|destroy DIR PARALLELISM URI...
// Prints key=value figures: the whole wall time and its phases (connect, list, fetch: summed over
// hosts; write: wall of the write phase), the number of calls and objects.
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<long> calls{0};
std::atomic<long> objects{0};
std::atomic<long> failures{0};
std::mutex sum_mu;
double connect_s = 0, list_s = 0, fetch_s = 0;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void add(double& acc, double s) {
  std::lock_guard lock(sum_mu);
  acc += s;
}

void fail(const char* what, const std::string& name) {
  const virErrorPtr e = virGetLastError();
  std::fprintf(stderr, "floor: %s %s: %s\n", what, name.c_str(), e && e->message ? e->message : "");
  ++failures;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Vm {
  std::size_t host;
  std::vector<std::string> fields;  // the manifest line after the VM's name
  std::string name;
};

// bench/plan_floor.cpp's read_host, with the time of each phase. `only` set: of the domains and
// volumes, only the XML of these VMs and of their volumes is fetched.
void read_host(virConnectPtr c, const std::vector<Vm>* only = nullptr) {
  auto wanted = [only](const std::string& name, bool volume) {
    if (!only) return true;
    for (const auto& vm : *only) {
      if (!volume && vm.name == name) return true;
      for (const auto& f : vm.fields)
        if (volume && f == name) return true;
    }
    return false;
  };
  double list = 0, fetch = 0;
  auto t = Clock::now();
  virDomainPtr* doms = nullptr;
  const int nd = virConnectListAllDomains(c, &doms, 0);
  ++calls;
  list += since(t);
  t = Clock::now();
  for (int i = 0; i < nd; ++i) {
    if (wanted(virDomainGetName(doms[i]), false)) {
      char* xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
      ++calls;
      std::free(xml);
    }
    virDomainFree(doms[i]);
  }
  std::free(doms);
  fetch += since(t);
  t = Clock::now();
  virNetworkPtr* nets = nullptr;
  const int nn = virConnectListAllNetworks(c, &nets, 0);
  ++calls;
  list += since(t);
  t = Clock::now();
  for (int i = 0; i < nn; ++i) {
    char* xml = virNetworkGetXMLDesc(nets[i], 0);
    ++calls;
    std::free(xml);
    virNetworkFree(nets[i]);
  }
  std::free(nets);
  fetch += since(t);
  t = Clock::now();
  virStoragePoolPtr* pools = nullptr;
  const int np = virConnectListAllStoragePools(c, &pools, 0);
  ++calls;
  list += since(t);
  long nv_total = 0;
  for (int i = 0; i < np; ++i) {
    t = Clock::now();
    char* pxml = virStoragePoolGetXMLDesc(pools[i], 0);
    ++calls;
    std::free(pxml);
    fetch += since(t);
    t = Clock::now();
    virStorageVolPtr* vols = nullptr;
    const int nv = virStoragePoolListAllVolumes(pools[i], &vols, 0);
    ++calls;
    list += since(t);
    t = Clock::now();
    for (int j = 0; j < nv; ++j) {
      // A serial log's and a seed's names say all (kumo's, one each per VM): no XML.
      const std::string name = virStorageVolGetName(vols[j]);
      if (!name.ends_with("_serial.log") && !name.ends_with("_seed.iso") && wanted(name, true)) {
        char* xml = virStorageVolGetXMLDesc(vols[j], 0);
        ++calls;
        std::free(xml);
      }
      virStorageVolFree(vols[j]);
    }
    fetch += since(t);
    nv_total += nv > 0 ? nv : 0;
    std::free(vols);
    virStoragePoolFree(pools[i]);
  }
  std::free(pools);
  if (nd < 0 || nn < 0 || np < 0) fail("reading", virConnectGetURI(c));
  objects += (nd > 0 ? nd : 0) + (nn > 0 ? nn : 0) + (np > 0 ? np : 0) + nv_total;
  add(list_s, list);
  add(fetch_s, fetch);
}

int upload(virConnectPtr c, virStorageVolPtr vol, const std::string& data) {
  virStreamPtr st = virStreamNew(c, 0);
  ++calls;
  int rc = st ? virStorageVolUpload(vol, st, 0, data.size(), 0) : -1;
  ++calls;
  constexpr std::size_t kChunk = 256 * 1024;  // libvirt's stream message size
  for (std::size_t off = 0; rc == 0 && off < data.size();) {
    const std::size_t n = std::min(kChunk, data.size() - off);
    const int sent = virStreamSend(st, data.data() + off, n);
    if (sent < 0) rc = -1;
    off += sent > 0 ? static_cast<std::size_t>(sent) : 0;
  }
  if (rc == 0) rc = virStreamFinish(st);
  if (rc != 0 && st) virStreamAbort(st);
  if (st) virStreamFree(st);
  return rc;
}

void apply_vm(virConnectPtr c, virStoragePoolPtr pool, const std::string& dir, const Vm& vm) {
  const auto& f = vm.fields;  // root.xml seed.xml seed.data domain.xml log-volume
  virStorageVolPtr root = virStorageVolCreateXML(pool, slurp(dir + "/" + f[0]).c_str(), 0);
  ++calls;
  if (!root) return fail("creating the root of", vm.name);
  virStorageVolFree(root);
  virStorageVolPtr seed = virStorageVolCreateXML(pool, slurp(dir + "/" + f[1]).c_str(), 0);
  ++calls;
  if (!seed) return fail("creating the seed of", vm.name);
  if (upload(c, seed, slurp(dir + "/" + f[2])) != 0) fail("uploading the seed of", vm.name);
  virStorageVolFree(seed);
  if (f.size() > 4) {
    const std::string log = "<volume><name>" + f[4] +
                            "</name><capacity unit='bytes'>0</capacity><target><format "
                            "type='raw'/></target></volume>";
    virStorageVolPtr v = virStorageVolCreateXML(pool, log.c_str(), 0);
    ++calls;
    if (!v) return fail("creating the serial log of", vm.name);
    virStorageVolFree(v);
  }
  virDomainPtr dom = virDomainDefineXML(c, slurp(dir + "/" + f[3]).c_str());
  ++calls;
  if (!dom) return fail("defining", vm.name);
  virDomainFree(dom);
}

// What taking kumo's cluster lock costs on a host, as kumo makes it (planner/lock.cpp, on a host
// with a secret driver: providers/libvirt/session_locks.cpp): a secret defined whose description
// says who holds it, then looked up and read twice (its stamp, then whose it is). Returns the
// secret, for the release. (Until 2026-12-04 the lock was a volume written with an upload, after
// which libvirt refreshes the whole pool: 0.26 s more at 3,000 VMs.)
virSecretPtr lock_host(virConnectPtr c) {
  const std::string xml = "<secret ephemeral='no' private='yes'><description>" +
                          std::string(200, 'x') +
                          "</description><usage type='volume'><volume>kumo-lock_floor</volume>"
                          "</usage></secret>";
  virSecretPtr secret = virSecretDefineXML(c, xml.c_str(), 0);
  ++calls;
  if (!secret) {
    fail("making the lock secret on", virConnectGetURI(c));
    return nullptr;
  }
  for (int read = 0; read < 2; ++read) {
    virSecretPtr again = virSecretLookupByUsage(c, VIR_SECRET_USAGE_TYPE_VOLUME, "kumo-lock_floor");
    ++calls;
    char* desc = again ? virSecretGetXMLDesc(again, 0) : nullptr;
    ++calls;
    if (!desc) fail("reading the lock back on", virConnectGetURI(c));
    std::free(desc);
    if (again) virSecretFree(again);
  }
  return secret;
}

void destroy_vm(virConnectPtr c, virStoragePoolPtr pool, const Vm& vm) {
  virDomainPtr dom = virDomainLookupByName(c, vm.name.c_str());
  ++calls;
  if (!dom) return fail("looking up", vm.name);
  constexpr unsigned kFlags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                              VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM |
                              VIR_DOMAIN_UNDEFINE_TPM;
  if (virDomainUndefineFlags(dom, kFlags) < 0) fail("undefining", vm.name);
  ++calls;
  virDomainFree(dom);
  for (const auto& volume : vm.fields) {
    virStorageVolPtr v = virStorageVolLookupByName(pool, volume.c_str());
    ++calls;
    if (!v) {
      fail("looking up volume", volume);
      continue;
    }
    if (virStorageVolDelete(v, 0) < 0) fail("deleting volume", volume);
    ++calls;
    virStorageVolFree(v);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const bool full = mode == "destroy-full";
  const bool locked = mode == "destroy-locked";
  const bool write = mode == "apply" || mode == "destroy" || full || locked;
  const int first_uri = write ? 4 : 2;
  if ((mode != "read" && mode != "connect" && !write) || argc <= first_uri) {
    std::fprintf(
        stderr,
        "usage: %s read|connect URI...\n       %s apply|destroy|destroy-full|destroy-locked DIR "
        "PARALLELISM URI...\n",
        argv[0], argv[0]);
    return 2;
  }
  const std::string dir = write ? argv[2] : "";
  const int parallelism = write ? std::max(1, std::atoi(argv[3])) : 1;
  std::vector<std::string> uris(argv + first_uri, argv + argc);

  // What to write, per host (read before the clock starts).
  std::vector<std::vector<Vm>> per_host(uris.size());
  for (std::size_t h = 0; write && h < uris.size(); ++h) {
    std::ifstream in(dir + "/" + std::to_string(h + 1) + ".txt");
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      Vm vm{h, {}, ""};
      words >> vm.name;
      for (std::string w; words >> w;) vm.fields.push_back(w);
      if (!vm.name.empty()) per_host[h].push_back(vm);
    }
  }
  const bool scoped = mode == "destroy" || locked;
  std::vector<virSecretPtr> locks(uris.size(), nullptr);

  const auto start = Clock::now();
  std::vector<virConnectPtr> conns(uris.size(), nullptr);
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < uris.size(); ++i) {
      threads.emplace_back([&, i] {
        auto t = Clock::now();
        conns[i] = virConnectOpenAuth(uris[i].c_str(), virConnectAuthPtrDefault, 0);
        ++calls;
        add(connect_s, since(t));
        if (!conns[i]) return fail("opening", uris[i]);
        if (locked) locks[i] = lock_host(conns[i]);
        if (mode != "connect") return read_host(conns[i], scoped ? &per_host[i] : nullptr);
        unsigned long version = 0;
        if (virConnectGetLibVersion(conns[i], &version) < 0) fail("asking", uris[i]);
        ++calls;
      });
    }
    for (auto& t : threads) t.join();
  }
  double write_s = 0;
  long vms = 0;
  if (write && failures == 0) {
    // The VMs in round-robin order over the hosts, as kumo's scheduler meets them.
    std::vector<virStoragePoolPtr> pools(uris.size(), nullptr);
    for (std::size_t h = 0; h < uris.size(); ++h) {
      if (!per_host[h].empty()) {
        pools[h] = virStoragePoolLookupByName(conns[h], "default");
        ++calls;
        if (!pools[h]) fail("looking up pool default on", uris[h]);
      }
    }
    std::vector<Vm> order;
    for (std::size_t k = 0;; ++k) {
      bool any = false;
      for (const auto& list : per_host) {
        if (k < list.size()) {
          order.push_back(list[k]);
          any = true;
        }
      }
      if (!any) break;
    }
    vms = static_cast<long>(order.size());
    const auto t = Clock::now();
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < parallelism; ++w) {
      workers.emplace_back([&] {
        for (std::size_t i = next++; i < order.size(); i = next++) {
          const Vm& vm = order[i];
          if (mode == "apply") {
            apply_vm(conns[vm.host], pools[vm.host], dir, vm);
          } else {
            destroy_vm(conns[vm.host], pools[vm.host], vm);
          }
        }
      });
    }
    for (auto& w : workers) w.join();
    write_s = since(t);
    for (auto* p : pools)
      if (p) virStoragePoolFree(p);
  }
  for (auto* v : locks) {  // released: the lock secret undefined
    if (!v) continue;
    if (virSecretUndefine(v) < 0) fail("removing the lock secret", "");
    ++calls;
    virSecretFree(v);
  }
  for (auto* c : conns)
    if (c) virConnectClose(c);
  const double s = since(start);
  if (failures > 0) return 1;
  std::printf(
      "floor_s=%.4f connect_s=%.4f list_s=%.4f fetch_s=%.4f write_s=%.4f calls=%ld objects=%ld "
      "vms=%ld\n",
      s, connect_s, list_s, fetch_s, write_s, calls.load(), objects.load(), vms);
  return 0;
}
