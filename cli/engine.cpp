#include "cli/engine.h"

#include <pwd.h>
#include <unistd.h>

#include <ctime>
#include <random>
#include <stdexcept>
#include <thread>

#include "cli/common.h"
#include "planner/run_identity.h"
#include "providers/images/cache.h"
#include "providers/images/fetch.h"
#include "providers/libvirt/connection.h"
#include "providers/libvirt/session.h"

namespace kumo::cli {

void CacheArgs::add_to(CLI::App& cmd) {
  cmd.add_option("--cache-dir", dir,
                 "Local image cache (default: $XDG_CACHE_HOME/kumo/images, ~/.cache/kumo/images)");
}

std::string CacheArgs::resolve(std::string* error) const {
  if (!dir.empty()) return dir;
  std::map<std::string, std::string> env;
  for (const char* key : {"XDG_CACHE_HOME", "HOME"}) {
    if (const char* v = std::getenv(key)) env[key] = v;
  }
  std::string d = images::default_cache_dir(env);
  if (d.empty())
    *error = "no image cache directory: set HOME or XDG_CACHE_HOME, or pass --cache-dir";
  return d;
}

namespace {

// What the environment says about downloads (fetch_options): CA file, stall time.
std::optional<images::FetchOptions> fetch_options(const std::string& cache_dir,
                                                  std::string* error) {
  std::map<std::string, std::string> env;
  for (const char* key : {"CURL_CA_BUNDLE", "SSL_CERT_FILE", "KUMO_DOWNLOAD_STALL_SECONDS"}) {
    if (const char* v = std::getenv(key)) env[key] = v;
  }
  return images::fetch_options(cache_dir, env, error);
}

}  // namespace

ImageResolver make_image_resolver(const std::string& cache_dir) {
  return [cache_dir](const DesiredImage& image) {
    ResolvedImage r;
    const auto options = fetch_options(cache_dir, &r.error);
    if (!options) return r;
    const images::ImageFacts facts = images::describe_image(image.fetch, *options);
    r.checksum = facts.checksum;
    r.cached = facts.cached;
    r.size = facts.size;
    r.error = facts.error;
    return r;
  };
}

ImageFetcher make_image_fetcher(const std::string& cache_dir) {
  return [cache_dir](const ImagePlan& plan, const FetchTick& tick) {
    std::string error;
    auto options = fetch_options(cache_dir, &error);
    if (!options) throw std::runtime_error(error);
    options->on_progress = [tick](const images::FetchProgress& p) {
      if (tick) tick(p.done, p.total);
    };
    const images::FetchResult r = images::fetch_image(plan.fetch, *options);
    if (!r.image) throw std::runtime_error(r.error);
    return FetchedImage{r.image->path, r.image->checksum.str(), r.image->size, r.image->format};
  };
}

std::unique_ptr<HostConnector> make_connector() {
  return make_libvirt_connector();
}

std::unique_ptr<HostConnector> make_lock_connector() {
  return make_libvirt_connector(Streams::InLine, false);
}

std::shared_ptr<void> open_ahead(const std::vector<HostTarget>& hosts, int uses, int parallelism) {
  return std::make_shared<libvirt::OpenAhead>(hosts, uses, parallelism);
}

std::shared_ptr<void> reuse_connections() {
  return std::make_shared<libvirt::ConnectionReuse>();
}

LockHolder lock_holder(const std::string& command) {
  LockHolder h;
  if (const passwd* pw = getpwuid(geteuid())) {
    h.user = pw->pw_name;
  } else if (const char* u = std::getenv("USER")) {
    h.user = u;
  } else {
    h.user = std::to_string(geteuid());
  }
  identify(h, local_machine(), static_cast<long>(getpid()));
  h.command = command;
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char since[32];
  std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
  h.since = since;
  std::random_device rd;
  char token[33];
  std::snprintf(token, sizeof token, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  h.token = token;
  return h;
}

bool lock_is_stale(const LockHolder& holder) {
  return holder_is_stale(holder, local_machine());
}

LockWait lock_waiter(std::chrono::milliseconds limit, const std::string& verb, std::ostream& err) {
  using Clock = std::chrono::steady_clock;
  auto deadline = std::make_shared<std::optional<Clock::time_point>>();
  return [=, &err](const LockHeld& held) {
    const auto now = Clock::now();
    if (!*deadline) {
      *deadline = now + limit;
      if (limit.count() > 0) {
        err << "kumo " << verb << ": waiting up to " << limit.count() / 1000.0
            << " s for the lock: " << held.what() << "\n";
      }
    }
    if (now >= **deadline) return false;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::seconds(1), **deadline - now));
    return true;
  };
}

}  // namespace kumo::cli
