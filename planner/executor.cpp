#include "planner/executor.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "providers/ownership.h"
#include "providers/seed/seed_iso.h"

namespace kumo {

const char* to_string(StepStatus s) {
  switch (s) {
    case StepStatus::Pending:
      return "pending";
    case StepStatus::Running:
      return "running";
    case StepStatus::Ok:
      return "ok";
    case StepStatus::Failed:
      return "failed";
    case StepStatus::Skipped:
      return "skipped";
  }
  return "?";
}

int ExecResult::count(StepStatus s) const {
  return static_cast<int>(std::count_if(steps.begin(), steps.end(),
                                        [&](const StepOutcome& o) { return o.status == s; }));
}

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

// What a base image looks like on one host, once it is there.
struct BaseImage {
  std::string volume, path, format;
  std::uint64_t virtual_size = 0;
};

// qcow2's header: magic "QFI\xfb", then the virtual size as a big-endian u64 at byte 24.
void read_format(const std::string& head, std::uint64_t raw_size, BaseImage& base) {
  if (head.size() >= 32 && head.compare(0, 4, "QFI\xfb") == 0) {
    base.format = "qcow2";
    base.virtual_size = 0;
    for (int i = 24; i < 32; ++i)
      base.virtual_size = (base.virtual_size << 8) | static_cast<unsigned char>(head[i]);
  } else {
    base.format = "raw";
    base.virtual_size = raw_size;
  }
}

enum class Slot { Normal, Upload, Free };

struct Task {
  std::string id, address, host, what;
  Slot slot = Slot::Normal;
  std::vector<std::size_t> deps;
  std::function<std::string()> run;  // returns a detail for the finished line; throws on failure
  StepStatus status = StepStatus::Pending;
  std::string message;
  double seconds = 0;
};

class Executor {
 public:
  Executor(const Plan& plan, HostConnector& connector, const ImageFetcher& fetch,
           const ExecOptions& options, const ExecListener& listener)
      : plan_(plan), connector_(connector), fetch_(fetch), options_(options), listener_(listener) {
    for (const auto& h : plan.hosts) hosts_[h.name] = &h;
  }

  ExecResult run() {
    t0_ = Clock::now();
    build();
    schedule();
    ExecResult result;
    for (const auto& t : tasks_) {
      result.steps.push_back({t.id, t.address, t.host, t.what, t.status, t.message, t.seconds});
    }
    result.vms = vms_;
    result.seconds = since(t0_);
    return result;
  }

 private:
  // ------------------------------------------------------------------ graph
  std::size_t add(Task t) {
    const std::size_t i = tasks_.size();
    index_[t.id] = i;
    tasks_.push_back(std::move(t));
    return i;
  }

  std::optional<std::size_t> find(const std::string& id) const {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }

  void build() {
    // Children (volumes) of each VM change, by host/parent address.
    std::map<std::string, std::vector<const ResourceChange*>> children;
    for (const auto& c : plan_.changes) {
      if (!c.parent.empty() && c.kind == "volume") children[c.host + "/" + c.parent].push_back(&c);
    }
    for (const auto& im : plan_.images) build_image(im);
    for (const auto& c : plan_.changes) {
      if (c.kind == "network" && c.action != Action::Delete) build_network(c);
    }
    std::map<std::string, std::vector<std::size_t>> vm_deletes;  // host -> tasks
    for (const auto& c : plan_.changes) {
      if (c.kind != "vm") continue;
      const auto& kids = children[c.host + "/" + c.address];
      if (c.action == Action::Delete) {
        vm_deletes[c.host].push_back(build_vm_delete(c, kids));
      } else if (c.action == Action::Create || c.action == Action::Replace) {
        build_vm_create(c, kids, vm_deletes[c.host]);
      } else if (c.action == Action::Update) {
        build_vm_update(c, kids);
      }
    }
    for (const auto& c : plan_.changes) {
      if (c.kind == "volume" && c.parent.empty() && c.action == Action::Delete) {
        Task t = step(c, "delete");
        const std::string name = str(c.observed, "name");
        t.run = [this, host = c.host, name] {
          delete_volume(host, name);
          return std::string();
        };
        add(std::move(t));
      }
      if (c.kind == "network" && c.action == Action::Delete) {
        Task t = step(c, "delete");
        t.deps = vm_deletes[c.host];
        const std::string name = str(c.observed, "name");
        t.run = [this, host = c.host, name] {
          session(host).delete_network(name);
          if (session(host).network(name))
            throw HostError(label(host) + ": network " + name +
                            " is still there after deleting it");
          return std::string();
        };
        add(std::move(t));
      }
    }
  }

  Task step(const ResourceChange& c, const std::string& what) {
    Task t;
    t.id = c.host + "/" + c.address + "/" + what;
    t.address = c.address;
    t.host = c.host;
    t.what = what;
    return t;
  }

  void build_image(const ImagePlan& im) {
    std::optional<std::size_t> fetch;
    if (!im.upload_to.empty()) {
      Task t;
      t.id = "local/image." + im.name + "/fetch";
      t.address = "image." + im.name;
      t.what = im.cached ? "verify cache" : "download";
      t.run = [this, &im, id = t.id] {
        FetchedImage f = fetch_(
            im, [this, id](std::uint64_t done, std::uint64_t total) { progress(id, done, total); });
        if (!im.checksum.empty() && f.checksum != im.checksum) {
          throw HostError("image " + im.name + ": the cache holds " + f.checksum +
                          ", but the plan was made for " + im.checksum + "; plan again");
        }
        std::lock_guard<std::mutex> lock(mu_);
        fetched_[im.name] = f;
        return std::to_string(f.size >> 20) + " MiB, " + f.checksum.substr(0, 19) + "…";
      };
      fetch = add(std::move(t));
    }
    for (const auto& host : im.upload_to) {
      Task t;
      t.id = host + "/image." + im.name + "/upload";
      t.address = "image." + im.name;
      t.host = host;
      t.what = "upload";
      t.slot = Slot::Upload;
      t.deps = {*fetch};
      t.run = [this, &im, host, id = t.id] { return upload_image(im, host, id); };
      add(std::move(t));
    }
    for (const auto& host : im.present_on) {
      Task t;
      t.id = host + "/image." + im.name + "/check";
      t.address = "image." + im.name;
      t.host = host;
      t.what = "check";
      t.run = [this, &im, host] {
        SessionRef s = session(host);
        const auto v = s.volume(im.volume);
        if (!v || !s.volume(image_marker_name(im.volume))) {
          throw HostError(label(host) + ": base image " + im.volume +
                          " is gone since the plan was made; plan again");
        }
        record_base(im.name, host, s, im.volume, *v);
        return std::string("already there");
      };
      add(std::move(t));
    }
  }

  std::string upload_image(const ImagePlan& im, const std::string& host, const std::string& id) {
    FetchedImage f;
    {
      std::lock_guard<std::mutex> lock(mu_);
      f = fetched_.at(im.name);
    }
    const auto colon = f.checksum.find(':');
    const std::string volume = im.volume.empty() ? image_volume_name(f.checksum.substr(0, colon),
                                                                     f.checksum.substr(colon + 1))
                                                 : im.volume;
    SessionRef s = session(host);
    const std::string marker = image_marker_name(volume);
    // An upload cut short has no marker: start over. (Another run may have finished it since.)
    if (s.volume(volume) && s.volume(marker)) {
      record_base(im.name, host, s, volume, *s.volume(volume));
      return "already there";
    }
    delete_volume(host, volume);
    std::ifstream in(f.path, std::ios::binary);
    if (!in) throw HostError("image " + im.name + ": cannot read " + f.path + " from the cache");
    std::uint64_t sent = 0;
    const auto t0 = Clock::now();
    s.upload_volume(
        volume, f.size,
        [&](char* buf, std::size_t max) -> std::size_t {
          in.read(buf, static_cast<std::streamsize>(max));
          return static_cast<std::size_t>(in.gcount());
        },
        [&, id](const Transfer& t) {
          sent = t.done;
          progress(id, t.done, t.total);
        });
    if (sent != f.size && sent != 0) {
      throw HostError(label(host) + ": upload of " + volume + " stopped at " +
                      std::to_string(sent) + " of " + std::to_string(f.size) + " bytes");
    }
    // Read back: the host's copy starts with the same bytes as the verified file.
    std::string local(4096, '\0');
    std::ifstream again(f.path, std::ios::binary);
    again.read(local.data(), static_cast<std::streamsize>(local.size()));
    local.resize(static_cast<std::size_t>(again.gcount()));
    if (s.read_volume(volume, 0, local.size()) != local) {
      throw HostError(label(host) + ": " + volume +
                      " does not hold the image after the upload (read back differs)");
    }
    {
      std::lock_guard<std::mutex> lock(pool_mu(host));
      s.create_volume(VolumeSpec{marker, 0, "raw", "", ""});
    }
    const auto v = s.volume(volume);
    if (!v) throw HostError(label(host) + ": " + volume + " is missing after the upload");
    record_base(im.name, host, s, volume, *v);
    const double secs = since(t0);
    char text[96];
    std::snprintf(text, sizeof text, "%llu MiB in %.2f s (%.0f MiB/s)",
                  static_cast<unsigned long long>(f.size >> 20), secs,
                  static_cast<double>(f.size) / 1048576.0 / std::max(secs, 0.001));
    return text;
  }

  void record_base(const std::string& image, const std::string& host, HostSession& s,
                   const std::string& volume, const ObservedVolume& v) {
    BaseImage b;
    b.volume = volume;
    b.path = v.path;
    read_format(s.read_volume(volume, 0, 32), v.capacity, b);
    std::lock_guard<std::mutex> lock(mu_);
    bases_[image + "@" + host] = b;
  }

  void build_network(const ResourceChange& c) {
    Task t = step(c, c.action == Action::Create    ? "create"
                     : c.action == Action::Replace ? "replace"
                                                   : "update");
    t.run = [this, &c] {
      SessionRef s = session(c.host);
      const NetworkSpec spec = network_spec(c.desired);
      if (c.action == Action::Update) {
        s.start_network(spec.name, true);
        // Host entries change in place: the running guests keep their leases and links.
        const auto now = s.network(spec.name);
        if (!now)
          throw HostError(label(c.host) + ": network " + spec.name + " is gone; plan again");
        NetworkHostsChange change;
        auto same_dhcp = [](const NetworkDhcpHost& a, const ObservedDhcpHost& b) {
          return a.mac == b.mac && a.ip == b.ip && a.name == b.name;
        };
        for (const auto& h : now->dhcp_hosts) {
          if (std::none_of(spec.dhcp_hosts.begin(), spec.dhcp_hosts.end(),
                           [&](const NetworkDhcpHost& w) { return same_dhcp(w, h); }))
            change.dhcp_remove.push_back({h.mac, h.ip, h.name});
        }
        for (const auto& w : spec.dhcp_hosts) {
          if (std::none_of(now->dhcp_hosts.begin(), now->dhcp_hosts.end(),
                           [&](const ObservedDhcpHost& h) { return same_dhcp(w, h); }))
            change.dhcp_add.push_back(w);
        }
        const auto want_dns = dns_entries(spec);
        for (const auto& h : now->dns_hosts) {
          if (std::find(want_dns.begin(), want_dns.end(), h) == want_dns.end())
            change.dns_remove.push_back(h);
        }
        for (const auto& w : want_dns) {
          if (std::find(now->dns_hosts.begin(), now->dns_hosts.end(), w) == now->dns_hosts.end())
            change.dns_add.push_back(w);
        }
        if (!change.empty()) s.update_network_hosts(spec.name, change);
      } else {
        if (c.action == Action::Replace) s.delete_network(spec.name);
        s.define_network(spec);
      }
      verify_network(c.host, s, spec);
      return std::string();
    };
    add(std::move(t));
  }

  NetworkSpec network_spec(const json& d) const {
    NetworkSpec n;
    n.name = str(d, "name");
    n.mode = str(d, "mode");
    n.bridge = str(d, "bridge");
    n.address = str(d, "address");
    n.prefix = d.value("prefix", 0);
    n.dhcp_start = str(d, "dhcp_start");
    n.dhcp_end = str(d, "dhcp_end");
    n.domain = str(d, "domain");
    if (d.contains("mtu") && d["mtu"].is_number()) n.mtu = d["mtu"].get<int>();
    for (const auto& h : d.value("dhcp_hosts", json::array()))
      n.dhcp_hosts.push_back({str(h, "mac"), str(h, "ip"), str(h, "name")});
    const json dns = d.value("dns_hosts", json::object());
    for (const auto& [name, ip] : dns.items()) {
      if (ip.is_string()) n.dns_hosts.push_back({ip.get<std::string>(), {name}});
    }
    return n;
  }

  void verify_network(const std::string& host, HostSession& s, const NetworkSpec& spec) {
    const auto n = s.network(spec.name);
    const std::string what = label(host) + ": network " + spec.name;
    if (!n) throw HostError(what + " is missing right after it was defined");
    std::vector<std::string> diffs;
    auto expect = [&](const std::string& field, const std::string& want, const std::string& got) {
      if (want != got) diffs.push_back(field + " is " + quoted(got) + ", expected " + quoted(want));
    };
    if (!n->active) diffs.push_back("it is not active");
    if (!n->autostart) diffs.push_back("it does not autostart");
    expect("bridge", spec.bridge, n->bridge);
    if (spec.mode != "bridge") {
      expect("address", spec.address + "/" + std::to_string(spec.prefix),
             n->ip + "/" + std::to_string(n->prefix));
      std::set<std::string> want, got;
      for (const auto& h : spec.dhcp_hosts) want.insert(h.mac + " " + h.ip + " " + h.name);
      for (const auto& h : n->dhcp_hosts) got.insert(h.mac + " " + h.ip + " " + h.name);
      if (want != got) diffs.push_back("its DHCP host entries differ");
      auto want_dns = dns_entries(spec), got_dns = n->dns_hosts;
      auto order = [](const NetworkDnsHost& a, const NetworkDnsHost& b) {
        return a.ip != b.ip ? a.ip < b.ip : a.names < b.names;
      };
      std::sort(want_dns.begin(), want_dns.end(), order);
      std::sort(got_dns.begin(), got_dns.end(), order);
      if (want_dns != got_dns) diffs.push_back("its DNS host entries differ");
    }
    if (!diffs.empty()) throw HostError(what + " read back differs: " + join(diffs));
  }

  std::size_t build_vm_delete(const ResourceChange& c,
                              const std::vector<const ResourceChange*>& kids) {
    Task t = step(c, "delete");
    const std::string name = str(c.observed, "name");
    const std::string instance = c.address.substr(3);
    t.run = [this, host = c.host, name, instance] {
      SessionRef s = session(host);
      s.delete_domain(name);
      if (s.domain(name))
        throw HostError(label(host) + ": domain " + name + " is still there after deleting it");
      delete_volume(host, serial_log_name(plan_.cluster, instance));
      return std::string();
    };
    const std::size_t dom = add(std::move(t));
    for (const ResourceChange* k : kids) {
      if (k->action != Action::Delete) continue;
      Task v = step(*k, "delete");
      v.deps = {dom};
      const std::string vname = str(k->observed, "name");
      v.run = [this, host = k->host, vname] {
        delete_volume(host, vname);
        return std::string();
      };
      add(std::move(v));
    }
    return dom;
  }

  void build_vm_create(const ResourceChange& c, const std::vector<const ResourceChange*>& kids,
                       const std::vector<std::size_t>& host_deletes) {
    (void)host_deletes;
    const json& d = c.desired;
    const std::string name = str(d, "name");
    std::vector<std::size_t> pre;
    // Replaced in place: the old domain goes first (it holds the root disk and the name).
    if (c.action == Action::Replace && !c.observed.contains("host")) {
      Task t = step(c, "remove old");
      t.run = [this, host = c.host, name] {
        session(host).delete_domain(name);
        return std::string();
      };
      pre.push_back(add(std::move(t)));
    }
    std::vector<std::size_t> before_define;
    for (const ResourceChange* k : kids) {
      const std::string role = k->address.substr(k->address.find('/') + 1);
      if (k->action == Action::Delete) {
        Task v = step(*k, "delete");
        v.deps = pre;
        const std::string vname = str(k->observed, "name");
        v.run = [this, host = k->host, vname] {
          delete_volume(host, vname);
          return std::string();
        };
        before_define.push_back(add(std::move(v)));
        continue;
      }
      if (k->action == Action::Update) {
        Task v = step(*k, "grow");
        v.deps = pre;  // the old domain is gone: the volume is resized on its own
        v.run = [this, k, name] { return grow_disk(*k, name); };
        before_define.push_back(add(std::move(v)));
        continue;
      }
      const bool replace = k->action == Action::Replace;
      if (role == "root") {
        Task v = step(*k, "create");
        v.deps = pre;
        const std::string image = str(k->desired, "image");
        if (auto img = image_step(image, k->host)) v.deps.push_back(*img);
        v.run = [this, k, image, replace] { return create_root(*k, image, replace); };
        before_define.push_back(add(std::move(v)));
      } else if (role == "seed") {
        Task v = step(*k, "upload");
        v.deps = pre;
        v.slot = Slot::Upload;
        v.run = [this, k, replace] { return upload_seed(*k, replace); };
        before_define.push_back(add(std::move(v)));
      } else {
        Task v = step(*k, "create");
        v.deps = pre;
        v.run = [this, k] { return create_data_disk(*k); };
        before_define.push_back(add(std::move(v)));
      }
    }
    Task def = step(c, "define");
    def.deps = before_define;
    def.deps.insert(def.deps.end(), pre.begin(), pre.end());
    for (const auto& n : d.value("libvirt_networks", json::array())) {
      const std::string net = str(n, "network");
      if (net.empty()) continue;
      for (const char* verb : {"create", "replace", "update"}) {
        const auto owner = network_owner(net);
        if (!owner) continue;
        if (auto i = find(c.host + "/" + owner->address + "/" + verb)) def.deps.push_back(*i);
      }
    }
    def.run = [this, &c] { return define_vm(c); };
    const std::size_t defined = add(std::move(def));
    if (!d.value("running", true)) return;
    add_wait(c, add_start(c, name, defined));
  }

  // Starts the domain (after `after`) and checks that it runs.
  std::size_t add_start(const ResourceChange& c, const std::string& name, std::size_t after) {
    Task start = step(c, "start");
    start.deps = {after};
    start.run = [this, host = c.host, name] {
      SessionRef s = session(host);
      s.start_domain(name);
      const auto dom = s.domain(name);
      if (!dom || !dom->active)
        throw HostError(label(host) + ": domain " + name + " is not running after starting it");
      return std::string();
    };
    return add(std::move(start));
  }

  // Waits (outside the parallelism limits) until the VM is ready as its wait_for says.
  void add_wait(const ResourceChange& c, std::size_t after) {
    const std::string wait_for = c.desired.value("wait_for", "cloud-init");
    Task wait = step(c, wait_for == "none" ? "ready" : "wait for " + wait_for);
    wait.deps = {after};
    wait.slot = Slot::Free;
    wait.run = [this, &c] { return wait_ready(c); };
    add(std::move(wait));
  }

  // An existing VM changes in place. Live when the plan says so: vCPUs and memory within the
  // domain's maximums, disks grown under the running guest, seed updated. "restart" changes
  // (beyond the maximums, a data disk added or removed) shut the guest down gracefully first,
  // and start it again once the definition has changed.
  void build_vm_update(const ResourceChange& c, const std::vector<const ResourceChange*>& kids) {
    const json& d = c.desired;
    const std::string name = str(d, "name");
    const bool want_running = d.value("running", true);
    const bool restart = c.disruption == Disruption::Restart && want_running;
    bool start = restart, wait_only = false;
    for (const auto& a : c.attributes) {
      if (a.name == "running" && a.after == true) start = true;
      if (a.name == "ready") wait_only = true;
    }
    std::vector<std::size_t> pre;
    if (restart) {
      Task t = step(c, "shutdown");
      t.run = [this, host = c.host, name]() -> std::string {
        const bool graceful = session(host).shutdown_domain(name, options_.shutdown_timeout);
        return graceful ? ""
                        : "forced off: the guest did not power off within " +
                              std::to_string(options_.shutdown_timeout.count()) + " s";
      };
      pre.push_back(add(std::move(t)));
    }
    std::vector<std::size_t> before = pre;
    for (const ResourceChange* k : kids) {
      const std::string role = k->address.substr(k->address.find('/') + 1);
      if (role == "seed" && (k->action == Action::Replace || k->action == Action::Create)) {
        Task v = step(*k, "upload");
        v.deps = pre;
        v.slot = Slot::Upload;
        v.run = [this, k] { return upload_seed(*k, k->action == Action::Replace); };
        before.push_back(add(std::move(v)));
      } else if (k->action == Action::Update) {
        Task v = step(*k, "grow");
        v.deps = pre;
        v.run = [this, k, name] { return grow_disk(*k, name); };
        before.push_back(add(std::move(v)));
      } else if (k->action == Action::Create && role.rfind("data/", 0) == 0) {
        Task v = step(*k, "create");
        v.deps = pre;
        v.run = [this, k] { return create_data_disk(*k); };
        before.push_back(add(std::move(v)));
      } else {
        Task v = step(*k, to_string(k->action));
        v.run = [this, k]() -> std::string {
          throw HostError(label(k->host) + ": " + k->address + ": " + to_string(k->action) +
                          " of this disk of an existing VM is not something kumo does in place; "
                          "use kumo apply --replace " +
                          k->parent);
        };
        before.push_back(add(std::move(v)));
      }
    }
    Task t = step(c, "update");
    t.deps = before;
    t.run = [this, &c, name, restart] { return update_vm(c, name, restart); };
    const std::size_t updated = add(std::move(t));
    if (start) {
      add_wait(c, add_start(c, name, updated));
    } else if (wait_only) {
      add_wait(c, updated);
    }
  }

  std::string update_vm(const ResourceChange& c, const std::string& name, bool restarted) {
    SessionRef s = session(c.host);
    const auto dom = s.domain(name);
    if (!dom) throw HostError(label(c.host) + ": domain " + name + " is gone; plan again");
    const json& d = c.desired;
    const int cpus = d.value("cpus", 1);
    const std::uint64_t memory = d.value("memory", std::uint64_t{0});
    std::vector<std::string> done;
    if (dom->active && !restarted && d.value("running", true)) {
      // Live: only within what the running domain can grow to, as the plan promised.
      if (cpus != dom->vcpus) {
        if (cpus > dom->max_vcpus) {
          throw HostError(label(c.host) + ": " + c.address + ": " + std::to_string(cpus) +
                          " vCPUs are more than the running domain can take (" +
                          std::to_string(dom->max_vcpus) + "); plan again");
        }
        s.set_domain_vcpus(name, cpus);
        done.push_back("vCPUs " + std::to_string(dom->vcpus) + " -> " + std::to_string(cpus));
      }
      if (memory != dom->memory) {
        if (memory > dom->max_memory) {
          throw HostError(label(c.host) + ": " + c.address + ": memory " +
                          std::to_string(memory >> 20) +
                          " MiB is more than the running domain can take (" +
                          std::to_string(dom->max_memory >> 20) + " MiB); plan again");
        }
        s.set_domain_memory(name, memory);
        done.push_back("memory " + std::to_string(dom->memory >> 20) + " -> " +
                       std::to_string(memory >> 20) + " MiB");
      }
      const bool resized = !done.empty();
      hot_plug_data_disks(c, name, done);
      // The definition keeps the running domain's maximums (they only change with a restart),
      // and whether the guest was seen ready.
      define_vm(c, dom->max_vcpus, dom->max_memory, dom->owner && dom->owner->ready);
      if (resized) {
        const auto now = s.domain(name);
        if (!now || now->vcpus != cpus || now->memory != memory) {
          throw HostError(label(c.host) + ": domain " + name +
                          " read back differs after the live change: " +
                          (now ? std::to_string(now->vcpus) + " vCPUs, " +
                                     std::to_string(now->memory >> 20) + " MiB"
                               : std::string("it is gone")));
        }
      }
      return done.empty() ? std::string() : "live: " + join(done);
    }
    if (dom->active && !d.value("running", true)) {
      const bool graceful = s.shutdown_domain(name, options_.shutdown_timeout);
      done.push_back(graceful ? "shut down"
                              : "forced off after " +
                                    std::to_string(options_.shutdown_timeout.count()) + " s");
    }
    define_vm(c);
    return join(done);
  }

  // Data disks the running domain does not have yet are plugged into it (the definition gets
  // them from define_vm). Each takes the first target free in the running domain: the guest
  // finds it by its serial, /dev/disk/by-id/virtio-<name>, whatever name it gets until the next
  // boot. Read back: every data volume is in the running domain afterwards.
  void hot_plug_data_disks(const ResourceChange& c, const std::string& name,
                           std::vector<std::string>& done) {
    const json data = c.desired.value("data_disk_volumes", json::object());
    if (data.empty()) return;
    SessionRef s = session(c.host);
    const auto running = s.live_disks(name);
    std::set<std::string> used, paths;
    for (const auto& r : running) {
      used.insert(r.target);
      paths.insert(r.path);
    }
    std::vector<std::string> plugged;
    for (const auto& [disk, volume] : data.items()) {
      const std::string vname = volume.get<std::string>();
      const auto v = s.volume(vname);
      if (!v) throw HostError(label(c.host) + ": volume " + vname + " is gone; plan again");
      if (paths.count(v->path)) continue;
      std::string target;
      for (char l = 'b'; l <= 'z' && target.empty(); ++l) {
        if (!used.count(std::string("vd") + l)) target = std::string("vd") + l;
      }
      if (target.empty()) {
        throw HostError(label(c.host) + ": domain " + name + " has no free disk name left for " +
                        vname + "; it is attached at the next restart (kumo apply --replace " +
                        c.address + ")");
      }
      s.attach_disk(name, DomainDisk{vname, "qcow2", target, false, disk_serial(disk)});
      used.insert(target);
      plugged.push_back(v->path);
      done.push_back("disk " + disk + " hot-plugged as " + target);
    }
    if (plugged.empty()) return;
    std::set<std::string> now;
    for (const auto& r : s.live_disks(name)) now.insert(r.path);
    for (const auto& p : plugged) {
      if (!now.count(p)) {
        throw HostError(label(c.host) + ": domain " + name + " does not show " + p +
                        " after hot-plugging it");
      }
    }
  }

  // Grows a volume in place: through the running domain (the guest sees the new size at once),
  // or the volume itself when nothing runs on it.
  std::string grow_disk(const ResourceChange& k, const std::string& domain) {
    const std::string vname = str(k.desired, "name");
    const std::uint64_t size = k.desired.value("size", std::uint64_t{0});
    SessionRef s = session(k.host);
    const auto vol = s.volume(vname);
    if (!vol) throw HostError(label(k.host) + ": volume " + vname + " is gone; plan again");
    if (vol->capacity > size) {
      throw HostError(label(k.host) + ": volume " + vname + " is larger than planned (" +
                      std::to_string(vol->capacity) + " bytes); kumo never shrinks; plan again");
    }
    std::string how = "volume resized";
    if (vol->capacity < size) {
      const auto dom = s.domain(domain);
      std::string target;
      if (dom && dom->active) {
        // The target it runs under: a hot-plugged disk's may differ from its definition's.
        for (const auto& disk : s.live_disks(domain)) {
          if (disk.path == vol->path) target = disk.target;
        }
      }
      if (!target.empty()) {
        s.resize_domain_disk(domain, target, size);
        how = "live, " + target + " in the running guest";
      } else {
        std::lock_guard<std::mutex> lock(pool_mu(k.host));
        s.resize_volume(vname, size);
      }
    }
    const auto after = s.volume(vname);
    if (!after || after->capacity != size) {
      throw HostError(label(k.host) + ": volume " + vname + " read back with " +
                      (after ? std::to_string(after->capacity) : std::string("nothing")) +
                      " bytes after growing it to " + std::to_string(size));
    }
    return how;
  }

  std::string create_data_disk(const ResourceChange& k) {
    const std::string vname = str(k.desired, "name");
    const std::uint64_t size = k.desired.value("size", std::uint64_t{0});
    {
      std::lock_guard<std::mutex> lock(pool_mu(k.host));
      session(k.host).create_volume(VolumeSpec{vname, size, "qcow2", "", ""});
    }
    const auto v = session(k.host).volume(vname);
    if (!v || v->capacity != size) {
      throw HostError(label(k.host) + ": volume " + vname +
                      (v ? " read back with the wrong size" : " is missing after creating it"));
    }
    return std::string();
  }

  std::optional<std::size_t> image_step(const std::string& image, const std::string& host) {
    for (const char* verb : {"upload", "check"}) {
      if (auto i = find(host + "/image." + image + "/" + verb)) return i;
    }
    return std::nullopt;
  }

  std::string create_root(const ResourceChange& k, const std::string& image, bool replace) {
    const std::string vname = str(k.desired, "name");
    BaseImage base;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = bases_.find(image + "@" + k.host);
      if (it == bases_.end()) {
        throw HostError(label(k.host) + ": " + k.address + ": the plan has no base image " +
                        quoted(image) + " for this host; plan again");
      }
      base = it->second;
    }
    std::uint64_t size = base.virtual_size;
    if (k.desired.contains("size") && k.desired["size"].is_number())
      size = std::max(size, k.desired["size"].get<std::uint64_t>());
    SessionRef s = session(k.host);
    {
      std::lock_guard<std::mutex> lock(pool_mu(k.host));
      if (replace) s.delete_volume(vname);
      s.create_volume(VolumeSpec{vname, size, "qcow2", base.path, base.format});
    }
    const auto v = s.volume(vname);
    if (!v) throw HostError(label(k.host) + ": volume " + vname + " is missing after creating it");
    if (v->capacity < size || (!v->backing_path.empty() && v->backing_path != base.path)) {
      throw HostError(label(k.host) + ": volume " + vname + " read back differs: " +
                      std::to_string(v->capacity) + " bytes backed by " + quoted(v->backing_path) +
                      ", expected " + std::to_string(size) + " bytes backed by " + base.path);
    }
    return "overlay on " + base.volume.substr(0, 24) + "…";
  }

  std::string upload_seed(const ResourceChange& k, bool replace) {
    const std::string vname = str(k.desired, "name");
    const std::string iso = seed::build_nocloud_seed(
        str(k.desired, "user_data"), str(k.desired, "meta_data"), str(k.desired, "network_config"));
    SessionRef s = session(k.host);
    if (replace) {
      std::lock_guard<std::mutex> lock(pool_mu(k.host));
      s.delete_volume(vname);
    }
    std::size_t pos = 0;
    s.upload_volume(vname, iso.size(),
                    [&](char* buf, std::size_t max) {
                      const std::size_t n = std::min(max, iso.size() - pos);
                      std::memcpy(buf, iso.data() + pos, n);
                      pos += n;
                      return n;
                    },
                    {});
    // ISO 9660's volume descriptor ("CD001" at byte 32769) says the seed is really there.
    if (s.read_volume(vname, 32769, 5) != "CD001") {
      throw HostError(label(k.host) + ": seed volume " + vname +
                      " does not hold the cloud-init ISO after the upload");
    }
    return std::to_string(iso.size() / 1024) + " KiB";
  }

  // Defines (or redefines) the VM as the plan describes it. A new definition gets room to grow
  // live: twice its vCPUs and memory (kHeadroom); a running domain's maximums are passed in
  // (they only change with a restart).
  Ownership owner_of(const ResourceChange& c, bool ready) const {
    const json& d = c.desired;
    return Ownership{plan_.cluster, c.address, str(d, "spec_hash"), d.value("spec", json()), ready};
  }

  std::string define_vm(const ResourceChange& c, int max_vcpus = 0, std::uint64_t max_memory = 0,
                        bool ready = false) {
    const json& d = c.desired;
    const std::string host = c.host;
    SessionRef s = session(host);
    DomainSpec spec;
    spec.name = str(d, "name");
    auto h = hosts_.find(host);
    spec.virt_type =
        h != hosts_.end() && !h->second->virt_type.empty() ? h->second->virt_type : "qemu";
    spec.vcpus = d.value("cpus", 1);
    spec.memory = d.value("memory", std::uint64_t{0});
    spec.max_vcpus = max_vcpus > 0 ? max_vcpus : spec.vcpus * kHeadroom;
    spec.max_memory = max_memory > 0 ? max_memory : spec.memory * kHeadroom;
    spec.autostart = d.value("autostart", true);
    // Root first, then the data disks in name order (the first is /dev/vdb, as people expect),
    // the cloud-init seed last.
    spec.disks.push_back({str(d, "root_volume"), "qcow2", "vda", false, ""});
    char letter = 'b';
    const json data_disks = d.value("data_disk_volumes", json::object());
    for (const auto& [disk, volume] : data_disks.items()) {
      spec.disks.push_back({volume.get<std::string>(), "qcow2", std::string("vd") + letter, false,
                            disk_serial(disk)});
      ++letter;
    }
    spec.disks.push_back({str(d, "seed_volume"), "raw", std::string("vd") + letter, true, ""});
    const json nics = d.value("nics", json::array());
    const json nets = d.value("libvirt_networks", json::array());
    for (std::size_t i = 0; i < nics.size() && i < nets.size(); ++i)
      spec.nics.push_back({str(nets[i], "network"), str(nets[i], "bridge"), str(nics[i], "mac")});
    const std::string dir = s.pool_path();
    if (!dir.empty()) spec.serial_log = dir + "/" + serial_log_name(plan_.cluster, spec.name);
    spec.owner = owner_of(c, ready);
    s.define_domain(spec);
    // Read back: the metadata, sizes and NICs are what the plan says.
    const auto dom = s.domain(spec.name);
    const std::string what = label(host) + ": domain " + spec.name;
    if (!dom) throw HostError(what + " is missing right after it was defined");
    std::vector<std::string> diffs;
    if (!dom->owner || dom->owner->cluster != plan_.cluster || dom->owner->address != c.address ||
        dom->owner->spec_hash != spec.owner.spec_hash)
      diffs.push_back("its kumo metadata");
    if (dom->vcpus != spec.vcpus || dom->max_vcpus != std::max(spec.vcpus, spec.max_vcpus))
      diffs.push_back("vCPUs");
    if (dom->memory != spec.memory || dom->max_memory != std::max(spec.memory, spec.max_memory))
      diffs.push_back("memory");
    std::vector<std::string> want_macs, got_macs;
    for (const auto& n : spec.nics) want_macs.push_back(n.mac);
    for (const auto& n : dom->nics) got_macs.push_back(n.mac);
    if (want_macs != got_macs) diffs.push_back("NICs");
    if (dom->disks.size() != spec.disks.size()) diffs.push_back("disks");
    if (!diffs.empty()) throw HostError(what + " read back differs: " + join(diffs));
    return std::string();
  }

  std::string wait_ready(const ResourceChange& c) {
    const std::string name = str(c.desired, "name");
    const std::string wait_for = c.desired.value("wait_for", "cloud-init");
    const auto timeout = std::chrono::seconds(c.desired.value("wait_timeout_s", 600));
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    SessionRef s = session(c.host);
    VmOutcome out;
    out.address = c.address;
    out.host = c.host;
    std::string last = "no answer yet";
    std::string detail;
    bool ready = wait_for == "none";
    while (!ready && Clock::now() < deadline) {
      const auto dom = s.domain(name);
      if (!dom) throw HostError(label(c.host) + ": domain " + name + " vanished while waiting");
      if (!dom->active) {
        last = "the domain stopped (" + dom->state + ")";
        break;
      }
      if (wait_for == "running") {
        ready = true;
        break;
      }
      try {
        s.agent_command(name, {{"execute", "guest-ping"}}, std::chrono::seconds(2));
        if (wait_for == "agent") {
          ready = true;
          break;
        }
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now());
        const CloudInitStatus st = cloud_init_status(
            s, name, true, std::max(left, std::chrono::seconds(1)), options_.poll);
        if (st.done()) {
          ready = true;
          detail = st.status;
          break;
        }
        if (st.status == "error" || st.status == "degraded done" || st.status == "disabled") {
          last = "cloud-init finished with status " + quoted(st.status) +
                 (st.detail.empty() ? "" : ": " + st.detail);
          break;
        }
        last = "cloud-init status " + quoted(st.status);
      } catch (const HostError& e) {
        last = e.what();  // the agent is not up yet, or the guest rebooted: ask again
      }
      std::this_thread::sleep_for(options_.poll);
    }
    if (!ready) {
      std::string tail = s.tail_pool_file(serial_log_name(plan_.cluster, name), 2048);
      std::string msg = label(c.host) + ": " + c.address + " is not ready (" + wait_for +
                        ") after " + std::to_string(static_cast<int>(since(start))) + " s: " + last;
      if (!tail.empty()) {
        auto lines = split_lines(tail);
        if (lines.size() > 12) lines.erase(lines.begin(), lines.end() - 12);
        msg += "\n  serial console (last lines):";
        for (const auto& l : lines) msg += "\n    " + l;
      }
      throw HostError(msg);
    }
    // Seen ready: recorded on the domain, so an interrupted apply is told from a finished one.
    s.set_domain_owner(name, owner_of(c, true));
    for (int i = 0; i < 10; ++i) {
      out.addresses = s.addresses(name);
      if (!out.addresses.empty() || wait_for == "none" || wait_for == "running") break;
      std::this_thread::sleep_for(options_.poll);
    }
    out.ready = true;
    out.seconds = since(t0_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      vms_.push_back(out);
    }
    std::string result = detail.empty() ? wait_for : "cloud-init " + detail;
    if (!out.addresses.empty()) result += ", " + join(out.addresses);
    return result;
  }

  static std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    std::string line;
    for (char ch : text) {
      if (ch == '\n') {
        if (!line.empty()) out.push_back(line);
        line.clear();
      } else if (ch != '\r' && (static_cast<unsigned char>(ch) >= 32 || ch == '\t')) {
        line += ch;
      }
    }
    if (!line.empty()) out.push_back(line);
    return out;
  }

  void delete_volume(const std::string& host, const std::string& name) {
    SessionRef s = session(host);
    std::lock_guard<std::mutex> lock(pool_mu(host));
    s.delete_volume(name);
  }

  // ------------------------------------------------------------------ sessions
  // A session with the host it belongs to; the reference stays valid for the whole run.
  using SessionRef = HostSession&;

  struct HostState {
    std::mutex mu;
    std::unique_ptr<HostSession> session;
    std::string error;
    bool tried = false;
    std::mutex pool;
  };

  HostState& host_state(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& p = host_states_[host];
    if (!p) p = std::make_unique<HostState>();
    return *p;
  }

  HostSession& session(const std::string& host) {
    HostState& h = host_state(host);
    std::lock_guard<std::mutex> lock(h.mu);
    if (!h.tried) {
      h.tried = true;
      HostTarget target{host, "", "default"};
      if (auto it = hosts_.find(host); it != hosts_.end()) {
        target.uri = it->second->uri;
        target.pool = it->second->pool;
      }
      try {
        h.session = connector_.connect(target, options_.connect_timeout);
      } catch (const HostError& e) {
        h.error = e.what();
      }
    }
    if (!h.session) throw HostError(h.error.empty() ? "host " + host + ": not connected" : h.error);
    return *h.session;
  }

  std::mutex& pool_mu(const std::string& host) { return host_state(host).pool; }

  std::string label(const std::string& host) const {
    auto it = hosts_.find(host);
    return "host " + host + (it != hosts_.end() ? " (" + it->second->uri + ")" : "");
  }

  static std::string quoted(const std::string& s) { return "\"" + s + "\""; }
  static std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
  }

  // ------------------------------------------------------------------ scheduling
  void emit(const ExecEvent& e) {
    if (!listener_) return;
    std::lock_guard<std::mutex> lock(emit_mu_);
    listener_(e);
  }

  void progress(const std::string& id, std::uint64_t done, std::uint64_t total) {
    const Task& t = tasks_[index_.at(id)];
    ExecEvent e;
    e.kind = ExecEvent::Kind::Progress;
    e.step = t.id;
    e.address = t.address;
    e.host = t.host;
    e.what = t.what;
    e.done = done;
    e.total = total;
    emit(e);
  }

  void finished(Task& t) {
    ExecEvent e;
    e.kind = ExecEvent::Kind::Finished;
    e.step = t.id;
    e.address = t.address;
    e.host = t.host;
    e.what = t.what;
    e.status = t.status;
    e.message = t.message;
    e.seconds = t.seconds;
    emit(e);
  }

  bool fits(const Task& t) const {
    if (t.slot == Slot::Free) return true;
    if (running_ >= options_.parallelism) return false;
    if (!t.host.empty()) {
      auto it = running_host_.find(t.host);
      if (it != running_host_.end() && it->second >= options_.per_host) return false;
      if (t.slot == Slot::Upload) {
        auto u = uploads_host_.find(t.host);
        if (u != uploads_host_.end() && u->second >= options_.uploads_per_host) return false;
      }
    }
    return true;
  }

  void account(const Task& t, int delta) {
    if (t.slot == Slot::Free) return;
    running_ += delta;
    if (!t.host.empty()) {
      running_host_[t.host] += delta;
      if (t.slot == Slot::Upload) uploads_host_[t.host] += delta;
    }
  }

  void schedule() {
    std::vector<std::thread> threads;
    std::unique_lock<std::mutex> lock(sched_mu_);
    for (;;) {
      bool progressed = true;
      while (progressed) {
        progressed = false;
        for (auto& t : tasks_) {
          if (t.status != StepStatus::Pending) continue;
          bool ready = true;
          const Task* blocker = nullptr;
          for (std::size_t dep : t.deps) {
            const Task& d = tasks_[dep];
            if (d.status == StepStatus::Failed || d.status == StepStatus::Skipped) {
              blocker = &d;
              break;
            }
            if (d.status != StepStatus::Ok) ready = false;
          }
          if (blocker) {
            t.status = StepStatus::Skipped;
            t.message = "skipped: " + blocker->what + " " + blocker->address +
                        (blocker->host.empty() ? "" : " on " + blocker->host) +
                        (blocker->status == StepStatus::Failed ? " failed" : " was skipped");
            finished(t);
            progressed = true;
            continue;
          }
          if (!ready || !fits(t)) continue;
          t.status = StepStatus::Running;
          account(t, +1);
          ExecEvent e;
          e.kind = ExecEvent::Kind::Started;
          e.step = t.id;
          e.address = t.address;
          e.host = t.host;
          e.what = t.what;
          emit(e);
          threads.emplace_back([this, &t] { run_task(t); });
          progressed = true;
        }
      }
      const bool all_done = std::all_of(tasks_.begin(), tasks_.end(), [](const Task& t) {
        return t.status != StepStatus::Pending && t.status != StepStatus::Running;
      });
      if (all_done) break;
      cv_.wait(lock);
    }
    lock.unlock();
    for (auto& th : threads) th.join();
  }

  void run_task(Task& t) {
    const auto start = Clock::now();
    StepStatus status = StepStatus::Ok;
    std::string message;
    try {
      message = t.run();
    } catch (const std::exception& e) {
      status = StepStatus::Failed;
      message = e.what();
    }
    std::lock_guard<std::mutex> lock(sched_mu_);
    t.seconds = since(start);
    t.status = status;
    t.message = message;
    account(t, -1);
    finished(t);
    cv_.notify_all();
  }

  const Plan& plan_;
  HostConnector& connector_;
  const ImageFetcher& fetch_;
  const ExecOptions& options_;
  const ExecListener& listener_;
  Clock::time_point t0_;
  std::map<std::string, const HostReport*> hosts_;

  std::vector<Task> tasks_;
  std::map<std::string, std::size_t> index_;

  std::mutex mu_;  // guards the maps below and host_states_
  std::map<std::string, std::unique_ptr<HostState>> host_states_;
  std::map<std::string, FetchedImage> fetched_;
  std::map<std::string, BaseImage> bases_;
  std::vector<VmOutcome> vms_;

  std::mutex sched_mu_;
  std::condition_variable cv_;
  int running_ = 0;
  std::map<std::string, int> running_host_, uploads_host_;
  std::mutex emit_mu_;
};

}  // namespace

namespace {

std::string base64_decode(const std::string& b64) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text;
  unsigned int buffer = 0;
  int bits = 0;
  for (char ch : b64) {
    const auto pos = alphabet.find(ch);
    if (pos == std::string::npos) continue;
    buffer = (buffer << 6) | static_cast<unsigned int>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      text += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return text;
}

// A small file of the guest through the agent's file API (no process started in the guest):
// nullopt when it does not exist. Throws HostError when the agent cannot do it at all.
std::optional<std::string> read_guest_file(HostSession& session, const std::string& domain,
                                           const std::string& path) {
  json opened;
  try {
    opened = session.agent_command(
        domain, {{"execute", "guest-file-open"}, {"arguments", {{"path", path}, {"mode", "r"}}}},
        std::chrono::seconds(10));
  } catch (const HostError& e) {
    if (std::string(e.what()).find("No such file") != std::string::npos) return std::nullopt;
    throw;
  }
  const json handle = opened.is_number() ? opened : opened.value("return", json());
  std::string text;
  for (int i = 0; i < 16; ++i) {  // at most 1 MiB
    const json chunk = session.agent_command(
        domain,
        {{"execute", "guest-file-read"}, {"arguments", {{"handle", handle}, {"count", 65536}}}},
        std::chrono::seconds(10));
    text += base64_decode(chunk.value("buf-b64", ""));
    if (chunk.value("eof", true) || chunk.value("count", 0) == 0) break;
  }
  session.agent_command(domain,
                        {{"execute", "guest-file-close"}, {"arguments", {{"handle", handle}}}},
                        std::chrono::seconds(10));
  return text;
}

// `cloud-init status --long` run in the guest: for guests whose agent has no file API.
CloudInitStatus exec_status(HostSession& session, const std::string& domain, bool wait,
                            std::chrono::seconds timeout, std::chrono::milliseconds poll) {
  json args = {{"path", "/usr/bin/cloud-init"},
               {"arg", wait ? json::array({"status", "--wait", "--long"})
                            : json::array({"status", "--long"})},
               {"capture-output", true}};
  const json started = session.agent_command(
      domain, {{"execute", "guest-exec"}, {"arguments", args}}, std::chrono::seconds(10));
  const int pid = started.value("pid", -1);
  if (pid < 0) throw HostError("guest agent of " + domain + " gave no pid for cloud-init status");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const json st = session.agent_command(
        domain, {{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}},
        std::chrono::seconds(10));
    if (st.value("exited", false)) {
      CloudInitStatus out;
      out.exitcode = st.value("exitcode", -1);
      const std::string text = base64_decode(st.value("out-data", ""));
      static const std::regex status_line(R"((^|\n)\.*status:\s*([^\n]+))");
      std::smatch m;
      out.status = std::regex_search(text, m, status_line) ? m[2].str() : "unknown";
      while (!out.status.empty() && std::isspace(static_cast<unsigned char>(out.status.back())))
        out.status.pop_back();
      static const std::regex errors(R"((^|\n)(detail|errors):\s*\n?([^\n]*))");
      if (std::regex_search(text, m, errors)) out.detail = m[3].str();
      if (!out.done() && out.detail.empty()) out.detail = text.substr(0, 400);
      return out;
    }
    if (Clock::now() > deadline) {
      CloudInitStatus out;
      out.status = wait ? "running" : "unknown (no answer in time)";
      return out;
    }
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace

// cloud-init writes /run/cloud-init/result.json when its last stage has finished (in /run: gone
// at every reboot), with the errors of the run: the same file `cloud-init status` reads. Reading
// it through the agent's file API costs the guest nothing, where starting `cloud-init status`
// (Python) in a guest that is still booting slows that boot down, badly under emulation.
CloudInitStatus cloud_init_status(HostSession& session, const std::string& domain, bool wait,
                                  std::chrono::seconds timeout, std::chrono::milliseconds poll) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::optional<std::string> result;
    try {
      result = read_guest_file(session, domain, "/run/cloud-init/result.json");
    } catch (const HostError& e) {
      const std::string what = e.what();
      // An agent that refuses file access (guest-file-* disabled): ask cloud-init itself.
      if (what.find("disabled") != std::string::npos ||
          what.find("not supported") != std::string::npos ||
          what.find("CommandNotFound") != std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now());
        return exec_status(session, domain, wait, std::max(left, std::chrono::seconds(1)), poll);
      }
      throw;
    }
    if (result) {
      CloudInitStatus out;
      const json j = json::parse(*result, nullptr, false);
      const json v1 = j.is_object() ? j.value("v1", json::object()) : json();
      if (!v1.is_object()) {
        out.status = "unknown";
        out.detail = "unreadable /run/cloud-init/result.json: " + result->substr(0, 200);
        return out;
      }
      const json errors = v1.value("errors", json::array());
      if (errors.empty()) {
        out.status = "done";
        out.exitcode = 0;
      } else {
        out.status = "error";
        out.exitcode = 1;
        for (const auto& e : errors) {
          out.detail +=
              (out.detail.empty() ? "" : "; ") + (e.is_string() ? e.get<std::string>() : e.dump());
        }
      }
      return out;
    }
    if (!wait || Clock::now() >= deadline) {
      CloudInitStatus out;
      out.status = "running";
      return out;
    }
    std::this_thread::sleep_for(poll);
  }
}

ExecResult execute(const Plan& plan, HostConnector& connector, const ImageFetcher& fetch,
                   const ExecOptions& options, const ExecListener& listener) {
  return Executor(plan, connector, fetch, options, listener).run();
}

}  // namespace kumo
