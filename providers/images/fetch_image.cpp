// fetch_image and resolve_checksum (fetch.h): source → checksum → cache hit, or lock, fill a
// part file (download or local copy), verify, commit. The bytes move in transfer.h/file_io.h.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "providers/digest.h"
#include "providers/images/checksum_list.h"
#include "providers/images/fetch.h"
#include "providers/images/file_io.h"
#include "providers/images/source.h"
#include "providers/images/transfer.h"

namespace kumo::images {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kProgressInterval = std::chrono::milliseconds(250);
constexpr std::uint64_t kMaxChecksumListBytes = 16u << 20;

// Byte counts in, FetchProgress out: at most one call per kProgressInterval, then exactly one
// with finished=true. The rate counts only bytes moved by this fetch, not a resumed part.
class ProgressReporter {
 public:
  ProgressReporter(const FetchOptions& options, const std::string& image)
      : sink_(options.on_progress), start_(Clock::now()) {
    last_.image = image;
  }

  void update(std::uint64_t done, std::uint64_t total) {
    if (!baseline_ || done < *baseline_) baseline_ = done;
    last_.done = done;
    last_.total = total;
    if (Clock::now() - last_emit_ >= kProgressInterval) emit();
  }

  // `size` of the image fetched; nullopt after a failure keeps the last counts.
  void finish(std::optional<std::uint64_t> size) {
    if (size) last_.done = last_.total = *size;
    last_.finished = true;
    emit();
  }

 private:
  void emit() {
    if (!sink_) return;
    last_emit_ = Clock::now();
    const double seconds = std::chrono::duration<double>(last_emit_ - start_).count();
    const std::uint64_t moved = last_.done - std::min(last_.done, baseline_.value_or(0));
    last_.bytes_per_s = seconds > 0 ? static_cast<double>(moved) / seconds : 0;
    sink_(last_);
  }

  const std::function<void(const FetchProgress&)>& sink_;
  FetchProgress last_;
  Clock::time_point start_, last_emit_{};
  std::optional<std::uint64_t> baseline_;
};

struct Job {
  const ImageSource& image;
  const FetchOptions& options;
  ResolvedSource source;
  ImageCache cache;
  ProgressReporter& progress;
};

// A part file whose bytes are all in place, with their digest.
struct Filled {
  std::string path;
  std::string hex;
};

std::string prefix(const ImageSource& image) {
  return "image \"" + image.name + "\": ";
}

FetchResult failure(std::string error) {
  return {std::nullopt, std::move(error)};
}

TransferOptions transfer_options(const ImageSource& image, const FetchOptions& options) {
  return {options.retries,
          options.connect_timeout,
          options.low_speed_bytes,
          options.low_speed_time,
          image.ca_bundle ? image.ca_bundle : options.ca_bundle,
          image.max_size};
}

// A cache entry is only handed out if it is the format the image declares.
FetchResult accept(const Job& job, CachedImage cached) {
  std::string error = format_mismatch(job.image, job.source.display, cached.format);
  if (!error.empty()) return failure(std::move(error));
  return {std::move(cached), ""};
}

std::optional<std::string> read_small_file(const std::string& path, std::string* error) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxChecksumListBytes) {
    *error = ec ? ec.message() : "larger than 16 MiB: not a checksum list";
    return std::nullopt;
  }
  std::string text(size, '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) {
    *error = "read failed";
    return std::nullopt;
  }
  return text;
}

// A local file without a checksum is known by its sha256, so a second run finds it cached.
std::optional<Checksum> hash_local(const Job& job, std::string* error) {
  Fd fd(::open(job.source.location.c_str(), O_RDONLY | O_CLOEXEC));
  std::string why = fd ? "" : errno_text(errno);
  Hasher hasher(ChecksumAlgo::Sha256);
  if (!fd || !hash_fd(fd.get(), hasher, nullptr, &why)) {
    *error = prefix(job.image) + "cannot read " + job.source.display + ": " + why;
    return std::nullopt;
  }
  return Checksum{ChecksumAlgo::Sha256, hasher.hex()};
}

std::optional<Filled> copy_local(const Job& job, const std::string& key, ChecksumAlgo algo,
                                 std::string* error) {
  struct stat st {};
  const std::uint64_t total =
      ::stat(job.source.location.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  const std::string part = job.cache.part_path(key);
  Hasher hasher(algo);
  const auto tick = [&](std::uint64_t done) { job.progress.update(done, total); };
  if (!copy_hashing(job.source.location, part, hasher, tick, error)) {
    ::unlink(part.c_str());
    *error = prefix(job.image) + *error;
    return std::nullopt;
  }
  return Filled{part, hasher.hex()};
}

// Unverified downloads (checksum: none) never resume: nothing could tell a splice of two
// versions of the file from the real thing.
std::optional<Filled> download_part(const Job& job, const std::string& key,
                                    const std::optional<Checksum>& checksum, std::string* error) {
  const ChecksumAlgo algo = checksum ? checksum->algo : ChecksumAlgo::Sha256;
  auto part = PartFile::open(job.cache.part_path(key), algo, checksum.has_value(), error);
  if (!part) {
    *error = prefix(job.image) + *error;
    return std::nullopt;
  }
  // A part that is already whole: an earlier run stopped between download and commit.
  const bool whole = checksum && part->size() > 0 && part->hasher().hex() == checksum->hex;
  const auto tick = [&](std::uint64_t done, std::uint64_t total) {
    job.progress.update(done, total);
  };
  if (!whole) {
    const TransferResult r = download(job.source.location, *part, checksum.has_value(),
                                      transfer_options(job.image, job.options), tick);
    if (!r.ok) {  // keep what we have for the next run to resume, if it can
      if (!checksum || part->size() == 0 || r.discard) ::unlink(part->path().c_str());
      *error = prefix(job.image) + "cannot download " + job.source.display + ": " + r.error;
      return std::nullopt;
    }
  }
  if (!part->sync()) {
    *error = prefix(job.image) + "cannot write " + part->path() + ": " + errno_text(errno);
    return std::nullopt;
  }
  return Filled{part->path(), part->hasher().hex()};
}

// Under the lock: fill the part, check it, move it into the cache.
FetchResult fill_and_commit(const Job& job, const std::string& key,
                            const std::optional<Checksum>& checksum) {
  std::string error;
  const bool remote = job.source.kind == SourceKind::Http;
  auto filled = remote ? download_part(job, key, checksum, &error)
                       : copy_local(job, key, checksum->algo, &error);  // local: hashed by now
  if (!filled) return failure(error);
  if (checksum && filled->hex != checksum->hex) {
    ::unlink(filled->path.c_str());
    return failure(prefix(job.image) + "checksum mismatch for " + job.source.display +
                   ": expected " + checksum->str() + ", got " +
                   Checksum{checksum->algo, filled->hex}.str() + " (the " +
                   (remote ? "download" : "copy") + " was discarded)");
  }
  const Checksum actual = checksum.value_or(Checksum{ChecksumAlgo::Sha256, filled->hex});
  auto committed = job.cache.commit(filled->path, actual, job.source.display, &error);
  if (!committed) return failure(prefix(job.image) + error);
  return accept(job, std::move(*committed));
}

FetchResult fetch(const ImageSource& image, const FetchOptions& options,
                  ProgressReporter& progress) {
  std::string error;
  auto source = resolve_source(image, &error);
  if (!source) return failure(error);
  if (options.cache_dir.empty()) {
    return failure(prefix(image) +
                   "no image cache directory (neither XDG_CACHE_HOME nor HOME is set)");
  }
  const Job job{image, options, std::move(*source), ImageCache(options.cache_dir), progress};
  auto checksum = resolve_checksum(image, options, &error);
  if (!error.empty()) return failure(error);
  if (!checksum && job.source.kind == SourceKind::Local) checksum = hash_local(job, &error);
  if (!error.empty()) return failure(error);
  if (checksum) {
    if (auto hit = find_cached(image, *checksum, options.cache_dir)) return accept(job, *hit);
  }
  if (!job.cache.prepare(&error)) return failure(prefix(image) + error);
  const std::string key = checksum ? checksum->hex : "url-" + sha256_hex(job.source.display);
  const FileLock lock = FileLock::acquire(job.cache.lock_path(key), &error);
  if (!lock) return failure(prefix(image) + error);
  if (checksum) {  // fetched by another thread or process while we waited for the lock?
    if (auto hit = find_cached(image, *checksum, options.cache_dir)) return accept(job, *hit);
  }
  return fill_and_commit(job, key, checksum);
}

}  // namespace

std::optional<FetchOptions> fetch_options(const std::string& cache_dir,
                                          const std::map<std::string, std::string>& env,
                                          std::string* error) {
  FetchOptions options;
  options.cache_dir = cache_dir;
  // As the curl tool reads them: CURL_CA_BUNDLE first, then SSL_CERT_FILE.
  for (const char* key : {"CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
    const auto it = env.find(key);
    if (it != env.end() && !it->second.empty()) {
      options.ca_bundle = it->second;
      break;
    }
  }
  if (const auto it = env.find("KUMO_DOWNLOAD_STALL_SECONDS"); it != env.end()) {
    const std::string& text = it->second;
    const bool digits =
        !text.empty() && text.size() <= 6 &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stol(text) == 0) {
      *error = "KUMO_DOWNLOAD_STALL_SECONDS: \"" + text.substr(0, 40) +
               "\" is not a number of seconds (1 to 999999); unset it for the default " +
               std::to_string(options.low_speed_time.count()) + " s";
      return std::nullopt;
    }
    options.low_speed_time = std::chrono::seconds(std::stol(text));
  }
  return options;
}

FetchResult fetch_image(const ImageSource& image, const FetchOptions& options) {
  ProgressReporter progress(options, image.name);
  FetchResult result = fetch(image, options, progress);
  progress.finish(result.image ? std::optional(result.image->size) : std::nullopt);
  return result;
}

std::optional<Checksum> resolve_checksum(const ImageSource& image, const FetchOptions& options,
                                         std::string* error) {
  error->clear();
  if (image.checksum) return image.checksum;
  if (!image.checksum_url) return std::nullopt;  // checksum: none, or a local file
  const auto source = resolve_source(image, error);
  if (!source) return std::nullopt;
  const std::string& url = *image.checksum_url;
  const std::string display = redact_url(url);
  std::string text, why;
  if (is_file_url(url)) {
    const auto path = path_of_file_url(url);
    auto read = path ? read_small_file(*path, &why) : std::nullopt;
    if (!path) why = "not a local file";
    if (!read) {
      *error = prefix(image) + "cannot read checksum list " + display + ": " + why;
      return std::nullopt;
    }
    text = std::move(*read);
  } else if (const auto r = download_text(url, transfer_options(image, options), &text); !r.ok) {
    *error = prefix(image) + "cannot download checksum list " + display + ": " + r.error;
    return std::nullopt;
  }
  return checksum_for(text, source->file_name, image.name, display, error);
}

ImageFacts describe_image(const ImageSource& image, const FetchOptions& options) {
  ImageFacts facts;
  std::string error;
  const auto source = resolve_source(image, &error);
  if (!source) {
    facts.error = prefix(image) + error;
    return facts;
  }
  facts.checksum = resolve_checksum(image, options, &error);
  if (!error.empty()) {
    facts.error = error;
    return facts;
  }
  if (!facts.checksum && source->kind == SourceKind::Local && !image.checksum_none) {
    ImageCache cache(options.cache_dir);
    ProgressReporter quiet(FetchOptions{}, image.name);
    Job job{image, options, *source, cache, quiet};
    facts.checksum = hash_local(job, &error);
    if (!facts.checksum) {
      facts.error = error;
      return facts;
    }
  }
  if (facts.checksum) {
    if (auto hit = find_cached(image, *facts.checksum, options.cache_dir)) {
      facts.cached = true;
      facts.size = hit->size;
      return facts;
    }
  }
  if (source->kind == SourceKind::Local) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(source->location, ec);
    if (ec) {
      facts.error = prefix(image) + "cannot read " + source->display + ": " + ec.message();
      return facts;
    }
    facts.size = size;
  } else if (auto length = content_length(source->location, transfer_options(image, options))) {
    facts.size = *length;
    if (image.max_size > 0 && *length > image.max_size) {
      facts.error = prefix(image) + source->display + " is " + size_text(*length) +
                    ", more than max_size (" + size_text(image.max_size) +
                    "); raise max_size if that is right";
    }
  }
  return facts;
}

}  // namespace kumo::images
