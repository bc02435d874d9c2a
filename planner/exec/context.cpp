#include "planner/exec/context.h"

#include "planner/bounded.h"

#include <algorithm>

namespace kumo::exec {

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

void EventSink::emit(const ExecEvent& e) {
  if (!listener_) return;
  std::lock_guard<std::mutex> lock(mu_);
  listener_(e);
}

namespace {

// One of a semaphore's places, held for the life of the Turn.
class Turn {
 public:
  explicit Turn(std::counting_semaphore<>& places) : places_(places) { places_.acquire(); }
  ~Turn() { places_.release(); }
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;

 private:
  std::counting_semaphore<>& places_;
};

ExecEvent event_of(const Task& t, ExecEvent::Kind kind) {
  ExecEvent e;
  e.kind = kind;
  e.step = t.id;
  e.address = t.address;
  e.host = t.host;
  e.what = t.what;
  return e;
}

}  // namespace

void EventSink::task_event(const Task& t, ExecEvent::Kind kind, StepStatus status,
                           const std::string& message, double seconds) {
  ExecEvent e = event_of(t, kind);
  e.status = status;
  e.message = message;
  e.seconds = seconds;
  emit(e);
}

void EventSink::progress(const Task& t, std::uint64_t done, std::uint64_t total) {
  ExecEvent e = event_of(t, ExecEvent::Kind::Progress);
  e.done = done;
  e.total = total;
  emit(e);
}

void EventSink::status(const Task& t, const std::string& message) {
  ExecEvent e = event_of(t, ExecEvent::Kind::Progress);
  e.message = message;
  emit(e);
}

ExecContext::~ExecContext() {
  std::vector<HostState*> states;
  for (auto& [name, state] : hosts_) states.push_back(state.get());
  bounded_for(states.size(), std::max(1, options_.connections),
              [&](std::size_t i) { states[i]->session.reset(); });
}

ExecContext::ExecContext(const Plan& plan, HostConnector& connector, const ImageFetcher& fetch,
                         const ExecOptions& options, EventSink& sink)
    : plan_(plan),
      connector_(connector),
      fetch_(fetch),
      options_(options),
      sink_(sink),
      t0_(Clock::now()),
      connecting_(std::max(options.connections, 1)) {}

ExecContext::HostState& ExecContext::host_state(const std::string& host) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& p = hosts_[host];
  if (!p) p = std::make_unique<HostState>();
  return *p;
}

HostSession& ExecContext::session(const std::string& host, const std::string& pool) {
  const HostReport* report = plan_.find_host(host);
  HostTarget target = report ? report->target() : HostTarget{host, "", "default"};
  const bool own_pool = !pool.empty() && pool != target.pool;
  HostState& h = host_state(own_pool ? host + "\n" + pool : host);
  std::lock_guard<std::mutex> lock(h.mu);
  if (!h.tried) {
    h.tried = true;
    if (own_pool) target.pool = pool;
    try {
      const Turn turn(connecting_);
      h.session = connector_.connect(target, options_.connect_timeout);
    } catch (const HostError& e) {
      h.error = e.what();
    }
  }
  if (!h.session) throw HostError(h.error.empty() ? "host " + host + ": not connected" : h.error);
  return *h.session;
}

std::mutex& ExecContext::pool_mutex(const std::string& host, const std::string& pool) {
  const HostReport* report = plan_.find_host(host);
  const bool own_pool = !pool.empty() && (!report || pool != report->pool);
  return host_state(own_pool ? host + "\n" + pool : host).pool;
}

void ExecContext::delete_volume(const std::string& host, const std::string& name,
                                const std::string& pool) {
  // Not under pool_mutex: deletes of one pool run side by side, and the session itself waits
  // out a create for the refresh a delete may need.
  session(host, pool).delete_volume(name);
}

std::string ExecContext::disk_format(const std::string& host, const std::string& pool) {
  if (pool.empty()) return "qcow2";
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = formats_.find(host + "/" + pool); it != formats_.end()) return it->second;
  }
  const auto p = session(host).pool(pool);
  const std::string format = p && p->type == "logical" ? "raw" : "qcow2";
  std::lock_guard<std::mutex> lock(mu_);
  formats_[host + "/" + pool] = format;
  return format;
}

std::string ExecContext::label(const std::string& host) const {
  const HostReport* report = plan_.find_host(host);
  return "host " + host + (report ? " (" + report->shown_uri() + ")" : "");
}

std::string ExecContext::virt_type(const std::string& host) const {
  const HostReport* report = plan_.find_host(host);
  return report && !report->virt_type.empty() ? report->virt_type : "qemu";
}

void ExecContext::set_fetched(const std::string& image, const FetchedImage& f) {
  std::lock_guard<std::mutex> lock(mu_);
  fetched_[image] = f;
}

FetchedImage ExecContext::fetched(const std::string& image) {
  std::lock_guard<std::mutex> lock(mu_);
  return fetched_.at(image);
}

namespace {

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

}  // namespace

void ExecContext::record_base(const std::string& image, const std::string& host, HostSession& s,
                              const std::string& volume, const ObservedVolume& v) {
  BaseImage b;
  b.volume = volume;
  b.path = v.path;
  read_format(s.read_volume(volume, 0, 32), v.capacity, b);
  std::lock_guard<std::mutex> lock(mu_);
  bases_[image + "@" + host] = b;
}

std::optional<BaseImage> ExecContext::base(const std::string& image, const std::string& host) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = bases_.find(image + "@" + host);
  if (it == bases_.end()) return std::nullopt;
  return it->second;
}

void ExecContext::vm_ready(const VmOutcome& out) {
  std::lock_guard<std::mutex> lock(mu_);
  vms_.push_back(out);
}

std::vector<VmOutcome> ExecContext::ready_vms() {
  std::lock_guard<std::mutex> lock(mu_);
  return vms_;
}

}  // namespace kumo::exec
