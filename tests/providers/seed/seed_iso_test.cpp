#include "providers/seed/seed_iso.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <libisofs/libisofs.h>
#include <catch2/catch.hpp>

using kumo::seed::build_iso;
using kumo::seed::build_nocloud_seed;
using kumo::seed::SeedFile;

namespace {

constexpr std::size_t kBlock = 2048;

// ---- Reading an image back with libisofs's own reader, from memory ----------------------------

// An IsoDataSource over a copy of the image bytes. libisofs frees the struct itself (free())
// when the last reference goes, after free_data, so it is calloc()ed here.
int source_open(IsoDataSource*) {
  return ISO_SUCCESS;
}
int source_close(IsoDataSource*) {
  return ISO_SUCCESS;
}
int source_read_block(IsoDataSource* src, uint32_t lba, uint8_t* buffer) {
  const auto* bytes = static_cast<const std::string*>(src->data);
  const std::size_t offset = static_cast<std::size_t>(lba) * kBlock;
  if (offset + kBlock > bytes->size()) return ISO_DATA_SOURCE_FAILURE;
  std::memcpy(buffer, bytes->data() + offset, kBlock);
  return ISO_SUCCESS;
}
void source_free_data(IsoDataSource* src) {
  delete static_cast<std::string*>(src->data);
}

struct SourceUnref {
  void operator()(IsoDataSource* src) const noexcept { iso_data_source_unref(src); }
};
struct ImageUnref {
  void operator()(IsoImage* image) const noexcept { iso_image_unref(image); }
};
struct ReadOptsFree {
  void operator()(IsoReadOpts* opts) const noexcept { iso_read_opts_free(opts); }
};
struct FeaturesFree {
  void operator()(IsoReadImageFeatures* f) const noexcept { iso_read_image_features_destroy(f); }
};
struct IterFree {
  void operator()(IsoDirIter* iter) const noexcept { iso_dir_iter_free(iter); }
};

std::unique_ptr<IsoDataSource, SourceUnref> memory_source(const std::string& iso) {
  auto* src = static_cast<IsoDataSource*>(std::calloc(1, sizeof(IsoDataSource)));
  REQUIRE(src != nullptr);
  src->version = 0;
  src->refcount = 1;
  src->open = source_open;
  src->close = source_close;
  src->read_block = source_read_block;
  src->free_data = source_free_data;
  src->data = new std::string(iso);
  return std::unique_ptr<IsoDataSource, SourceUnref>(src);
}

struct ReadFile {
  std::string content;
  mode_t mode = 0;
  uid_t uid = 1;
  gid_t gid = 1;
  time_t mtime = 1;
};

struct ReadImage {
  std::string volume_id;
  bool rockridge = false;
  bool joliet = false;
  std::map<std::string, ReadFile> files;  // the root's regular files, by name
};

std::string read_stream(IsoStream* stream) {
  REQUIRE(iso_stream_open(stream) >= 0);
  std::string content;
  char buffer[4096];
  for (;;) {
    const int n = iso_stream_read(stream, buffer, sizeof buffer);
    REQUIRE(n >= 0);
    if (n == 0) break;
    content.append(buffer, static_cast<std::size_t>(n));
  }
  iso_stream_close(stream);
  return content;
}

// Imports `iso` with libisofs (Rock Ridge names, or with `joliet_names` the Joliet tree).
// libisofs must be initialized: every caller has built an image with build_iso first. Not to be
// called from several threads at once (build_iso's lock does not cover this reader).
ReadImage read_back(const std::string& iso, bool joliet_names = false) {
  auto src = memory_source(iso);
  IsoImage* raw_image = nullptr;
  REQUIRE(iso_image_new("", &raw_image) >= 0);
  std::unique_ptr<IsoImage, ImageUnref> image(raw_image);
  IsoReadOpts* raw_opts = nullptr;
  REQUIRE(iso_read_opts_new(&raw_opts, 0) >= 0);
  std::unique_ptr<IsoReadOpts, ReadOptsFree> opts(raw_opts);
  if (joliet_names) REQUIRE(iso_read_opts_set_no_rockridge(opts.get(), 1) >= 0);

  IsoReadImageFeatures* raw_features = nullptr;
  const int rc = iso_image_import(image.get(), src.get(), opts.get(), &raw_features);
  INFO("iso_image_import: " << iso_error_to_msg(rc));
  REQUIRE(rc >= 0);
  std::unique_ptr<IsoReadImageFeatures, FeaturesFree> features(raw_features);

  ReadImage out;
  out.volume_id = iso_image_get_volume_id(image.get());
  out.rockridge = iso_read_image_features_has_rockridge(features.get()) != 0;
  out.joliet = iso_read_image_features_has_joliet(features.get()) != 0;

  IsoDirIter* raw_iter = nullptr;
  REQUIRE(iso_dir_get_children(iso_image_get_root(image.get()), &raw_iter) >= 0);
  std::unique_ptr<IsoDirIter, IterFree> iter(raw_iter);
  IsoNode* node = nullptr;
  while (iso_dir_iter_next(iter.get(), &node) == 1) {
    INFO("node " << iso_node_get_name(node));
    REQUIRE(iso_node_get_type(node) == LIBISO_FILE);
    ReadFile file;
    file.content = read_stream(iso_file_get_stream(reinterpret_cast<IsoFile*>(node)));
    file.mode = iso_node_get_permissions(node);
    file.uid = iso_node_get_uid(node);
    file.gid = iso_node_get_gid(node);
    file.mtime = iso_node_get_mtime(node);
    out.files.emplace(iso_node_get_name(node), std::move(file));
  }
  return out;
}

std::map<std::string, std::string> contents(const ReadImage& image) {
  std::map<std::string, std::string> out;
  for (const auto& [name, file] : image.files) out[name] = file.content;
  return out;
}

// ---- blkid --------------------------------------------------------------------------------------

std::string blkid_path() {
  for (const char* p : {"/sbin/blkid", "/usr/sbin/blkid"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return {};
}

// Runs `blkid -p -o value -s <tag> <file>` (fork/exec, no shell); returns its stdout trimmed.
std::string blkid_value(const std::string& blkid, const std::string& tag, const std::string& file) {
  std::vector<std::string> args{blkid, "-p", "-o", "value", "-s", tag, file};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buffer[256];
  ssize_t n;
  while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) out.append(buffer, n);
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("blkid output: " << out);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& bytes) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "kumo-seed-XXXXXX.iso").string();
    const int fd = ::mkstemps(pattern.data(), 4);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = pattern;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

std::string utf8_text() {
  return "h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93 \xE6\x97\xA5\xE6\x9C\xAC\n";
}

std::string big_text() {
  std::string s;
  s.reserve(200 * 1024);
  for (std::size_t i = 0; s.size() < 200 * 1024; ++i) s += "line " + std::to_string(i) + "\n";
  s.resize(200 * 1024);
  return s;
}

}  // namespace

TEST_CASE("seed ISO: primary volume descriptor carries the cidata label", "[seed]") {
  const std::string iso = build_nocloud_seed("#cloud-config\n", "instance-id: web-0\n", "");
  REQUIRE(iso.size() % kBlock == 0);
  REQUIRE(iso.size() >= 18 * kBlock);
  const std::string pvd = iso.substr(16 * kBlock, kBlock);
  CHECK(pvd[0] == '\x01');
  CHECK(pvd.substr(1, 5) == "CD001");
  const std::string label = pvd.substr(40, 32);
  CHECK((label == std::string("cidata") + std::string(26, ' ') ||
         label == std::string("CIDATA") + std::string(26, ' ')));
  // libisofs is told to keep the volume id's case (as genisoimage/cloud-localds do).
  CHECK(label.substr(0, 6) == "cidata");

  const ReadImage image = read_back(iso);
  CHECK(image.volume_id == "cidata");
  CHECK(image.rockridge);
  CHECK(image.joliet);
}

TEST_CASE("seed ISO: blkid reports TYPE=iso9660 and LABEL=cidata", "[seed]") {
  const std::string blkid = blkid_path();
  if (blkid.empty()) {
    WARN("no /sbin/blkid or /usr/sbin/blkid: label not checked with blkid");
    return;
  }
  const TempFile file(
      build_nocloud_seed("#cloud-config\n", "instance-id: web-0\n", "version: 2\n"));
  CHECK(blkid_value(blkid, "TYPE", file.path.string()) == "iso9660");
  CHECK(blkid_value(blkid, "LABEL", file.path.string()) == "cidata");
}

TEST_CASE("seed ISO: files read back with exact names, contents and attributes", "[seed]") {
  const std::string user_data = "#cloud-config\nhostname: web-0\n" + utf8_text();
  const std::string meta_data = "";  // empty content
  const std::string network_config = big_text();
  const std::string iso = build_nocloud_seed(user_data, meta_data, network_config);
  CHECK(iso.size() > 200 * 1024);

  const ReadImage image = read_back(iso);
  const std::map<std::string, std::string> expected{
      {"user-data", user_data}, {"meta-data", meta_data}, {"network-config", network_config}};
  CHECK(contents(image) == expected);
  for (const auto& [name, file] : image.files) {
    INFO(name);
    CHECK(file.mode == 0444);
    CHECK(file.uid == 0);
    CHECK(file.gid == 0);
    CHECK(file.mtime == 0);
  }

  // The Joliet tree keeps the names' case and dashes too.
  const ReadImage joliet = read_back(iso, true);
  CHECK(contents(joliet) == expected);
}

TEST_CASE("seed ISO: arbitrary files and volume id", "[seed]") {
  const std::vector<SeedFile> files{
      {"vendor-data", "#cloud-config\n"},
      {"Mixed_Case.txt", utf8_text()},
      {"caf\xC3\xA9-\xE2\x9C\x93", "non-ASCII name"},
      {"a-rather-long-file-name-that-ecma119-alone-would-mangle.yaml", "x"}};
  const std::string iso = build_iso(files, "config-2");
  CHECK(iso.substr(16 * kBlock + 40, 8) == "config-2");
  const ReadImage image = read_back(iso);
  CHECK(image.volume_id == "config-2");
  std::map<std::string, std::string> expected;
  for (const auto& f : files) expected[f.name] = f.content;
  CHECK(contents(image) == expected);
  CHECK(contents(read_back(iso, true)) == expected);
  CHECK(contents(read_back(build_iso({}))).empty());
}

TEST_CASE("seed ISO: output is deterministic", "[seed]") {
  const std::string a = build_nocloud_seed("#cloud-config\n", "instance-id: a\n", "version: 2\n");
  const std::string b = build_nocloud_seed("#cloud-config\n", "instance-id: a\n", "version: 2\n");
  CHECK(a == b);
  const std::string c = build_nocloud_seed("#cloud-config\n", "instance-id: b\n", "version: 2\n");
  CHECK(a.size() == c.size());
  CHECK(a != c);
  CHECK(build_iso({{"meta-data", "x"}}, "cidata") != build_iso({{"meta-data", "x"}}, "CIDATA"));
  // No wall-clock time anywhere: the volume descriptor times are the fixed epoch.
  CHECK(a.substr(16 * kBlock + 813, 16) == "1970010100000000");
  CHECK(a.substr(16 * kBlock + 830, 16) == "1970010100000000");
}

TEST_CASE("seed ISO: network-config only when given", "[seed]") {
  const ReadImage without =
      read_back(build_nocloud_seed("#cloud-config\n", "instance-id: x\n", ""));
  CHECK(contents(without) == std::map<std::string, std::string>{{"user-data", "#cloud-config\n"},
                                                                {"meta-data", "instance-id: x\n"}});
  const ReadImage with = read_back(build_nocloud_seed("#cloud-config\n", "instance-id: x\n", "v"));
  CHECK(with.files.count("network-config") == 1);
}

TEST_CASE("seed ISO: invalid names and volume ids are rejected", "[seed]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(build_iso({{"", "x"}}), std::runtime_error);
  CHECK_THROWS_WITH(build_iso({{"", "x"}}), Contains("empty"));
  CHECK_THROWS_AS(build_iso({{"a/b", "x"}}), std::runtime_error);
  CHECK_THROWS_WITH(build_iso({{"a/b", "x"}}), Contains("a/b") && Contains("'/'"));
  CHECK_THROWS_WITH(build_iso({{"/", "x"}}), Contains("'/'"));
  CHECK_THROWS_WITH(build_iso({{"..", "x"}}), Contains("not a valid file name"));
  CHECK_THROWS_WITH(build_iso({{std::string("a\0b", 3), "x"}}), Contains("NUL"));
  CHECK_THROWS_WITH(build_iso({{std::string(256, 'n'), "x"}}), Contains("255 bytes"));
  CHECK_THROWS_WITH(build_iso({{"\xff\xfe", "x"}}), Contains("UTF-8"));
  CHECK_THROWS_WITH(build_iso({{"caf\xc3", "x"}}), Contains("UTF-8"));
  CHECK_THROWS_WITH(build_iso({{"\xc0\xaf", "x"}}), Contains("UTF-8"));      // overlong '/'
  CHECK_THROWS_WITH(build_iso({{"\xed\xa0\x80", "x"}}), Contains("UTF-8"));  // a surrogate
  CHECK_THROWS_WITH(build_iso({{"meta-data", "x"}, {"meta-data", "y"}}), Contains("twice"));
  CHECK_THROWS_WITH(build_iso({{"meta-data", "x"}}, ""), Contains("volume id"));
  CHECK_THROWS_WITH(build_iso({{"meta-data", "x"}}, "cidata cidata x"), Contains("volume id"));
  CHECK_THROWS_WITH(build_iso({{"meta-data", "x"}}, std::string(17, 'c')), Contains("volume id"));
  // A failed build leaves nothing behind that breaks the next one.
  CHECK(contents(read_back(build_iso({{"meta-data", "x"}}))) ==
        std::map<std::string, std::string>{{"meta-data", "x"}});
}

TEST_CASE("seed ISO: concurrent builds from 8 threads", "[seed]") {
  constexpr int kThreads = 8;
  constexpr int kRounds = 4;
  auto input = [](int t, int r) {
    return std::vector<std::string>{
        "#cloud-config\nhostname: vm-" + std::to_string(t) + "\n",
        "instance-id: vm-" + std::to_string(t) + "-" + std::to_string(r) + "\n",
        t % 2 == 0 ? "version: 2\n" : ""};
  };
  std::vector<std::vector<std::string>> results(kThreads, std::vector<std::string>(kRounds));
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int r = 0; r < kRounds; ++r) {
          const auto in = input(t, r);
          results[t][r] = build_nocloud_seed(in[0], in[1], in[2]);
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();

  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t);
    CHECK(errors[t].empty());
    for (int r = 0; r < kRounds; ++r) {
      const auto in = input(t, r);
      // Byte-identical to a build of the same input on this thread...
      CHECK(results[t][r] == build_nocloud_seed(in[0], in[1], in[2]));
      // ...and holding the right files.
      std::map<std::string, std::string> expected{{"user-data", in[0]}, {"meta-data", in[1]}};
      if (!in[2].empty()) expected["network-config"] = in[2];
      CHECK(contents(read_back(results[t][r])) == expected);
    }
  }
}
