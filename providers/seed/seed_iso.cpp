#include "providers/seed/seed_iso.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>

// libisofs.h needs uint8_t/uint32_t declared before it is included, and declares struct
// burn_source (libburn's interface, which its image writer implements) only on request.
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>

namespace kumo::seed {
namespace {

constexpr std::size_t kBlockSize = 2048;
// Every timestamp in the image (nodes, directory records, Rock Ridge TF entries, the volume
// descriptors of ECMA-119 and Joliet) is this one: 1970-01-01 00:00:00 UTC.
constexpr time_t kEpoch = 0;
// iso_write_opts_set_pvd_times' vol_uuid: YYYYMMDDhhmmsscc, recorded verbatim with a GMT zone as
// the volume creation and modification times. It also fixes what libisofs calls "now" for the
// write (ecma119_determine_now_time), which it would otherwise take from time(NULL).
constexpr char kVolumeUuid[] = "1970010100000000";
constexpr mode_t kFileMode = 0444;
constexpr mode_t kDirMode = 0555;
// Rock Ridge names are limited to 255 bytes; the Joliet volume id to 16 UCS-2 characters.
constexpr std::size_t kMaxNameBytes = 255;
constexpr std::size_t kMaxVolumeIdChars = 16;

struct ImageUnref {
  void operator()(IsoImage* image) const noexcept { iso_image_unref(image); }
};
struct WriteOptsFree {
  void operator()(IsoWriteOpts* opts) const noexcept { iso_write_opts_free(opts); }
};
struct StreamUnref {
  void operator()(IsoStream* stream) const noexcept { iso_stream_unref(stream); }
};
struct MallocFree {
  void operator()(unsigned char* p) const noexcept { std::free(p); }
};
// iso_image_create_burn_source calloc()s the burn_source; its owner calls free_data, which stops
// and joins the writer thread if it is still running and drops the writer's image reference,
// then frees the struct itself (what libburn's burn_source_free does).
struct BurnSourceFree {
  void operator()(burn_source* source) const noexcept {
    if (source->free_data != nullptr) source->free_data(source);
    std::free(source);
  }
};

using ImageHandle = std::unique_ptr<IsoImage, ImageUnref>;
using WriteOptsHandle = std::unique_ptr<IsoWriteOpts, WriteOptsFree>;
using StreamHandle = std::unique_ptr<IsoStream, StreamUnref>;
using MallocBuffer = std::unique_ptr<unsigned char, MallocFree>;
using BurnSourceHandle = std::unique_ptr<burn_source, BurnSourceFree>;

// libisofs is process-global state: initialized once, never iso_finish()ed (another thread may
// still be building). Bit 0 of iso_init_with_flag keeps it from calling setlocale() on the whole
// process; the charset of names is set to UTF-8 explicitly instead, so the output does not
// depend on the environment's locale. Messages are queued (and drained by every build, see
// take_messages) instead of being printed on stderr: errors reach the caller as exceptions.
void init_libisofs() {
  const int rc = iso_init_with_flag(1);
  if (rc < 0) {
    throw std::runtime_error(std::string("seed ISO: cannot initialize libisofs: ") +
                             iso_error_to_msg(rc));
  }
  char utf8[] = "UTF-8";
  iso_set_local_charset(utf8, 0);
  char queue[] = "SORRY", print[] = "NEVER", prefix[] = "libisofs: ";
  iso_set_msgs_severities(queue, print, prefix);
}

std::once_flag g_init_once;
// libisofs does not promise that separate images can be built concurrently, and it cannot: it
// hands out memory stream serial numbers and image ids from unsynchronized global counters, and
// its message queue is global. So builds are serialized (the write thread of each build has
// ended before the lock is released); a seed is a few KiB and takes about a millisecond.
std::mutex g_build_mutex;

// Drains libisofs's message queue; returns the texts of this build's messages ("; "-joined).
std::string take_messages() {
  std::string texts;
  char text[ISO_MSGS_MESSAGE_LEN];
  char severity[80];
  char all[] = "ALL";
  int code = 0, image_id = 0;
  while (iso_obtain_msgs(all, &code, &image_id, text, severity) == 1) {
    if (!texts.empty()) texts += "; ";
    texts += text;
  }
  return texts;
}

[[noreturn]] void fail(const std::string& what, int rc) {
  std::string message = "seed ISO: " + what + ": " + iso_error_to_msg(rc);
  const std::string details = take_messages();
  if (!details.empty() && details != iso_error_to_msg(rc)) message += " (" + details + ")";
  throw std::runtime_error(message);
}

void check(int rc, const std::string& what) {
  if (rc < 0) fail(what, rc);
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF): the names'
// charset, which libisofs converts to UCS-2 for the Joliet tree.
bool is_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += len;
  }
  return true;
}

void validate(const std::vector<SeedFile>& files, const std::string& volume_id) {
  if (volume_id.empty() || volume_id.size() > kMaxVolumeIdChars) {
    throw std::runtime_error("seed ISO: volume id \"" + volume_id + "\" must be 1 to " +
                             std::to_string(kMaxVolumeIdChars) + " characters");
  }
  for (const char c : volume_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) {
      throw std::runtime_error("seed ISO: volume id \"" + volume_id +
                               "\" may hold only ASCII letters, digits, '-', '_' and '.'");
    }
  }
  std::set<std::string> seen;
  for (const auto& file : files) {
    const std::string& name = file.name;
    if (name.empty()) throw std::runtime_error("seed ISO: a file name is empty");
    if (name.find('/') != std::string::npos) {
      throw std::runtime_error("seed ISO: file name \"" + name +
                               "\" contains '/' (files go at the root, no directories)");
    }
    if (name.find('\0') != std::string::npos) {
      throw std::runtime_error("seed ISO: a file name contains a NUL character");
    }
    if (name == "." || name == "..") {
      throw std::runtime_error("seed ISO: \"" + name + "\" is not a valid file name");
    }
    if (!is_utf8(name)) {
      throw std::runtime_error("seed ISO: a file name is not valid UTF-8");
    }
    if (name.size() > kMaxNameBytes) {
      throw std::runtime_error("seed ISO: file name \"" + name.substr(0, 32) +
                               "...\" is longer than " + std::to_string(kMaxNameBytes) + " bytes");
    }
    if (!seen.insert(name).second) {
      throw std::runtime_error("seed ISO: file name \"" + name + "\" appears twice");
    }
  }
}

void set_fixed_attributes(IsoNode* node, mode_t mode) {
  iso_node_set_permissions(node, mode);
  iso_node_set_uid(node, 0);
  iso_node_set_gid(node, 0);
  iso_node_set_atime(node, kEpoch);
  iso_node_set_mtime(node, kEpoch);
  iso_node_set_ctime(node, kEpoch);
}

void add_file(IsoImage* image, IsoDir* root, const SeedFile& file) {
  // iso_memory_stream_new takes a malloc'ed buffer (never NULL, even for empty content) and
  // frees it when the stream dies, but only once it succeeded: until then the buffer is ours.
  MallocBuffer buffer(
      static_cast<unsigned char*>(std::malloc(file.content.empty() ? 1 : file.content.size())));
  if (!buffer) throw std::bad_alloc();
  if (!file.content.empty()) std::memcpy(buffer.get(), file.content.data(), file.content.size());

  IsoStream* raw_stream = nullptr;
  check(iso_memory_stream_new(buffer.get(), file.content.size(), &raw_stream),
        "cannot create a stream for \"" + file.name + "\"");
  buffer.release();
  StreamHandle stream(raw_stream);

  // On success the new file node takes over our stream reference; on failure it is still ours.
  IsoFile* node = nullptr;
  check(iso_image_add_new_file(image, root, file.name.c_str(), stream.get(), &node),
        "cannot add \"" + file.name + "\"");
  stream.release();
  set_fixed_attributes(reinterpret_cast<IsoNode*>(node), kFileMode);
}

WriteOptsHandle make_write_options() {
  IsoWriteOpts* raw = nullptr;
  check(iso_write_opts_new(&raw, 1), "cannot create write options");  // 1: ISO level 3 + RR
  WriteOptsHandle opts(raw);
  check(iso_write_opts_set_rockridge(opts.get(), 1), "cannot enable Rock Ridge");
  check(iso_write_opts_set_joliet(opts.get(), 1), "cannot enable Joliet");
  // Keep the volume id as given ("cidata", not "CIDATA") in the primary volume descriptor too, as
  // genisoimage/cloud-localds do; the Joliet descriptor keeps it anyway.
  check(iso_write_opts_set_relaxed_vol_atts(opts.get(), 1), "cannot keep the volume id's case");
  check(iso_write_opts_set_always_gmt(opts.get(), 1), "cannot record times in GMT");
  // Reproducibility: modes, owners and all timestamps fixed whatever the nodes say, directory
  // records carrying that fixed mtime (in the ECMA-119 and Joliet trees) instead of the write
  // time, and fixed volume descriptor times.
  check(iso_write_opts_set_replace_mode(opts.get(), 2, 2, 2, 2), "cannot set replace mode");
  check(iso_write_opts_set_default_dir_mode(opts.get(), kDirMode), "cannot set directory mode");
  check(iso_write_opts_set_default_file_mode(opts.get(), kFileMode), "cannot set file mode");
  check(iso_write_opts_set_default_uid(opts.get(), 0), "cannot set uid");
  check(iso_write_opts_set_default_gid(opts.get(), 0), "cannot set gid");
  check(iso_write_opts_set_replace_timestamps(opts.get(), 2), "cannot replace timestamps");
  check(iso_write_opts_set_default_timestamp(opts.get(), kEpoch), "cannot set the timestamp");
  check(iso_write_opts_set_dir_rec_mtime(opts.get(), 7), "cannot record directory mtimes");
  char uuid[sizeof kVolumeUuid];
  std::memcpy(uuid, kVolumeUuid, sizeof kVolumeUuid);
  check(iso_write_opts_set_pvd_times(opts.get(), kEpoch, kEpoch, kEpoch, kEpoch, uuid),
        "cannot set volume times");
  return opts;
}

std::string write_image(IsoImage* image, IsoWriteOpts* opts) {
  burn_source* raw = nullptr;
  check(iso_image_create_burn_source(image, opts, &raw), "cannot start writing the image");
  BurnSourceHandle source(raw);

  const off_t size = source->get_size(source.get());
  std::string out;
  if (size > 0) out.reserve(static_cast<std::size_t>(size));
  unsigned char block[kBlockSize];
  for (;;) {
    const int n = source->read_xt != nullptr
                      ? source->read_xt(source.get(), block, static_cast<int>(kBlockSize))
                      : source->read(source.get(), block, static_cast<int>(kBlockSize));
    if (n == 0) break;
    if (n < 0) fail("cannot write the image", ISO_BUF_READ_ERROR);
    out.append(reinterpret_cast<const char*>(block), static_cast<std::size_t>(n));
  }
  if (size > 0 && out.size() != static_cast<std::size_t>(size)) {
    throw std::runtime_error("seed ISO: libisofs produced " + std::to_string(out.size()) +
                             " bytes, announced " + std::to_string(size));
  }
  return out;
}

}  // namespace

std::string build_iso(const std::vector<SeedFile>& files, const std::string& volume_id) {
  validate(files, volume_id);

  std::lock_guard lock(g_build_mutex);
  std::call_once(g_init_once, init_libisofs);
  take_messages();  // Whatever an earlier failure left behind is not this build's.

  IsoImage* raw_image = nullptr;
  check(iso_image_new(volume_id.c_str(), &raw_image), "cannot create the image");
  ImageHandle image(raw_image);
  iso_image_set_volume_id(image.get(), volume_id.c_str());

  IsoDir* root = iso_image_get_root(image.get());
  set_fixed_attributes(reinterpret_cast<IsoNode*>(root), kDirMode);
  for (const auto& file : files) add_file(image.get(), root, file);

  const WriteOptsHandle opts = make_write_options();
  std::string iso = write_image(image.get(), opts.get());
  take_messages();
  return iso;
}

std::string build_nocloud_seed(const std::string& user_data, const std::string& meta_data,
                               const std::string& network_config) {
  std::vector<SeedFile> files{{"user-data", user_data}, {"meta-data", meta_data}};
  if (!network_config.empty()) files.push_back({"network-config", network_config});
  return build_iso(files);
}

}  // namespace kumo::seed
