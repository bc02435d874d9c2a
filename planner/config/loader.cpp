#include "planner/config/loader.h"

#include "planner/config/utf8.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "planner/config/load_ssh.h"
#include "planner/config/loader_internal.h"
#include "planner/config/names.h"
#include "planner/config/schema.h"
#include "providers/redact.h"

namespace kumo {
namespace detail {

std::string ctx(const char* kind, const std::string& name) {
  return std::string(kind) + " " + quote(name);
}

}  // namespace detail

namespace {

using detail::ctx;

// Parses YAML text, turning a syntax error into a located diagnostic.
// " (tabs ...)" when a line near the error is indented with a tab, the usual cause.
std::string tab_hint(const std::string& text, int error_line) {
  int line = 0;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = text.find('\n', start);
    if (line >= error_line - 1 && line <= error_line) {
      for (size_t i = start; i < text.size() && i != end && (text[i] == ' ' || text[i] == '\t');
           ++i) {
        if (text[i] == '\t')
          return " (a tab indents line " + std::to_string(line + 1) + "; YAML indents with spaces)";
      }
    }
    if (end == std::string::npos) break;
    start = end + 1;
    ++line;
  }
  return "";
}

// The line (1-based) where a second YAML document starts, or 0. Document markers sit at column
// 0 (inside a block scalar they would be indented), so a line scan finds them. (YAML::LoadAll
// would tell too, but yaml-cpp 0.7's LoadAll can loop forever on some broken input.)
int second_document_line(const std::string& text) {
  bool content = false;
  int line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    ++line_no;
    const bool marker = (line.rfind("---", 0) == 0 || line.rfind("...", 0) == 0) &&
                        (line.size() == 3 || std::isspace(static_cast<unsigned char>(line[3])));
    const auto first = line.find_first_not_of(" \t\r");
    const bool blank = first == std::string::npos || line[first] == '#' || line[0] == '%';
    if (marker && line[0] == '-' && content) return line_no;
    if (marker && line[0] == '.') {
      content = false;
      // Anything after "..." but comments is another document.
      const auto rest = text.find_first_not_of(" \t\r\n", end);
      if (rest != std::string::npos && text[rest] != '#') return line_no + 1;
    } else if (!blank && !marker) {
      content = true;
    } else if (marker) {
      content = true;  // "--- value" or a leading "---": the document has started
    }
    start = end + 1;
  }
  return 0;
}

std::optional<YAML::Node> parse_yaml(const std::string& text, const std::string& file,
                                     Diagnostics& diags) {
  try {
    if (const int line = second_document_line(text)) {
      diags.error({file, line, 1},
                  "only one YAML document is allowed; a second one starts here (after ---)");
      return std::nullopt;
    }
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    diags.error({file, e.mark.line + 1, e.mark.column + 1},
                "YAML syntax error: " + e.msg + tab_hint(text, e.mark.line));
  } catch (const YAML::Exception& e) {
    diags.error({file, 0, 0}, std::string("YAML error: ") + e.what());
  }
  return std::nullopt;
}

// Reads at most kMaxInputBytes: more is surely a mistake (or /dev/zero), and is refused.
std::optional<std::string> read_bounded(std::istream& in, std::string& error) {
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxInputBytes) {
      error = "larger than " + std::to_string(kMaxInputBytes >> 20) + " MiB";
      return std::nullopt;
    }
  }
  return text;
}

std::optional<std::string> read_text(const std::string& path, std::string& error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    error = "is a directory";
    return std::nullopt;
  }
  // A FIFO would block until someone writes to it, a device may never end: regular files only.
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    error = "not a regular file";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  return read_bounded(in, error);
}

struct VariableDecls {
  std::vector<VariableConfig> list;
  std::map<std::string, VariableValue> values;
};

VariableDecls load_variable_decls(Reader& r, const YAML::Node& node) {
  VariableDecls out;
  auto entries = r.named_mapping(node, "variables");
  if (!entries) return out;
  for (auto& [name, v, name_at] : *entries) {
    VariableConfig var;
    var.name = name;
    var.location = r.loc(name_at);
    const std::string where = ctx("variable", name);
    if (auto bad = check_name(name)) r.error(name_at, where + ": " + *bad);
    if (auto fields = r.mapping(v, where, schema_keys("variable"))) {
      for (auto& [k, f, k_at] : *fields) {
        if (k == "default") {
          if (f.IsScalar()) {
            var.default_value = f.Scalar();
          } else if (!f.IsNull()) {
            r.error(f, where + ": default: expected a value, got " + Reader::type_name(f));
          }
        } else if (k == "description") {
          if (f.IsScalar()) {
            var.description = f.Scalar();  // shown as written, never expanded
          } else if (!f.IsNull()) {
            r.error(f, where + ": description: expected text, got " + Reader::type_name(f));
          }
        } else if (k == "sensitive") {
          if (auto b = r.boolean(f, where + ": sensitive")) var.sensitive = *b;
        }
      }
    }
    out.values[name] = {var.default_value, var.sensitive};
    out.list.push_back(std::move(var));
  }
  return out;
}

// Precedence, lowest first: default, KUMO_VAR_<name>, --var-file (in order), -var (in order).
void apply_variable_values(VariableDecls& decls, const LoadOptions& options,
                           const std::string& config_file, Diagnostics& diags) {
  std::vector<std::string> names;
  for (auto& v : decls.list) names.push_back(v.name);
  auto undeclared = [&](const std::string& name) {
    return "no variable " + quote(name) + " is declared in " + config_file +
           did_you_mean(name, names);
  };
  for (auto& [name, value] : decls.values) {
    auto it = options.environment.find("KUMO_VAR_" + name);
    if (it != options.environment.end()) value.value = it->second;
  }
  for (const auto& file : options.var_files) {
    std::string err;
    auto text = read_text(file, err);
    if (!text) {
      diags.error({file, 0, 0}, "cannot read variables file: " + err);
      continue;
    }
    auto root = parse_yaml(*text, file, diags);
    if (!root) continue;
    Interpolator none({}, ".", "");
    Reader r(file, diags, none);
    auto entries = r.named_mapping(*root, "variables file");
    if (!entries) continue;
    for (auto& [name, v, name_at] : *entries) {
      auto it = decls.values.find(name);
      if (it == decls.values.end()) {
        r.error(v, undeclared(name));
      } else if (!v.IsScalar()) {
        r.error(v, ctx("variable", name) + ": expected a value, got " + Reader::type_name(v));
      } else {
        it->second.value = v.Scalar();
      }
    }
  }
  for (const auto& [name, value] : options.vars) {
    auto it = decls.values.find(name);
    if (it == decls.values.end()) {
      diags.error({}, "-var " + name + "=...: " + undeclared(name));
    } else {
      it->second.value = value;
    }
  }
}

}  // namespace

namespace detail {

bool load_hosts(Reader& r, const YAML::Node& node, const LoadOptions& options, ClusterConfig& cfg) {
  if (!node.IsDefined() || node.IsNull()) {
    auto it = options.environment.find("LIBVIRT_DEFAULT_URI");
    HostConfig local;
    local.name = "local";
    local.uri =
        it != options.environment.end() && !it->second.empty() ? it->second : "qemu:///system";
    cfg.hosts.push_back(local);
    cfg.hosts_implicit = true;
    return true;
  }
  auto entries = r.named_mapping(node, "hosts");
  if (!entries) return false;
  if (entries->empty())
    r.error(node, "hosts: at least one host is needed (or leave hosts: out for a local one)");
  for (auto& [name, h, name_at] : *entries) {
    HostConfig host;
    host.name = name;
    host.location = r.loc(name_at);
    host.pool_location = host.location;
    const std::string where = ctx("host", name);
    if (auto bad = check_name(name)) r.error(name_at, where + ": " + *bad);
    auto fields = r.mapping(h, where, schema_keys("host"));
    if (fields) {
      bool has_uri = false;
      for (auto& [k, f, k_at] : *fields) {
        const auto marked = r.mark(host.sensitive, k);
        if (k == "uri") {
          has_uri = true;
          if (auto s = r.string(f, where + ": uri")) {
            const auto sep = s->find("://");
            bool ok = sep != std::string::npos && sep > 0;
            for (size_t i = 0; ok && i < sep; ++i) {
              const char c = (*s)[i];
              ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+';
            }
            if (!ok) {
              r.error(
                  f,
                  where + ": uri: " + r.shown(*s) +
                      " is not a libvirt URI (e.g. qemu:///system or qemu+ssh://root@hv1/system)");
            }
            host.uri = *s;
          }
        } else if (k == "pool") {
          if (auto s = r.string(f, where + ": pool")) {
            r.refuse_sensitive(f, where + ": pool");
            if (s->empty()) r.error(f, where + ": pool: must not be empty");
            host.pool = *s;
            host.pool_location = r.loc(f);
          }
        } else if (k == "pools") {
          detail::load_pools(r, f, where, host);
        } else if (k == "virt_type") {
          if (auto v = r.choice<VirtType>(
                  f, where + ": virt_type",
                  {{"auto", VirtType::Auto}, {"kvm", VirtType::Kvm}, {"qemu", VirtType::Qemu}})) {
            host.virt_type = *v;
          }
        } else if (k == "cpu_overcommit") {
          if (auto d = r.number(f, where + ": cpu_overcommit", 0)) host.cpu_overcommit = *d;
        } else if (k == "memory_overcommit") {
          if (auto d = r.number(f, where + ": memory_overcommit", 0)) host.memory_overcommit = *d;
        } else if (k == "ssh_jump") {
          host.ssh_jump = detail::load_ssh_jump(r, f, where);
        } else if (k == "drain") {
          if (auto b = r.boolean(f, where + ": drain")) host.drain = *b;
        } else if (k == "migration") {
          detail::load_migration(r, f, where + ": migration", host.migration);
        }
      }
      if (!has_uri)
        r.error(name_at, where + ": missing required key \"uri\" (e.g. uri: qemu+ssh://root@" +
                             name + "/system)");
    }
    cfg.hosts.push_back(std::move(host));
  }
  return true;
}

namespace {

bool is_hex(const std::string& s) {
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void load_checksum(Reader& r, const YAML::Node& f, const std::string& where, ImageConfig& img) {
  auto s = r.string(f, where + ": checksum");
  if (!s) return;
  if (*s == "none") {
    img.checksum_none = true;
    return;
  }
  const auto colon = s->find(':');
  const std::string algo = colon == std::string::npos ? "" : s->substr(0, colon);
  std::string hex = colon == std::string::npos ? *s : s->substr(colon + 1);
  for (auto& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t want = 0;
  if (algo == "sha256") want = 64;
  if (algo == "sha512") want = 128;
  if (want == 0) {
    r.error(f,
            where + ": checksum: " + r.shown(*s) + " must be sha256:<hex>, sha512:<hex> or none");
    return;
  }
  if (!is_hex(hex)) {
    r.error(f, where + ": checksum: the " + algo +
                   " value has characters that are not hex digits (0-9, a-f)");
    return;
  }
  if (hex.size() != want) {
    r.error(f, where + ": checksum: a " + algo + " checksum is " + std::to_string(want) +
                   " hex digits, got " + std::to_string(hex.size()));
    return;
  }
  img.checksum = Checksum{algo == "sha256" ? ChecksumAlgo::Sha256 : ChecksumAlgo::Sha512, hex};
}

bool url_scheme_ok(const std::string& url, bool allow_file) {
  return url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0 ||
         (allow_file && url.rfind("file://", 0) == 0);
}

}  // namespace

bool load_images(Reader& r, const YAML::Node& node, ClusterConfig& cfg) {
  auto entries = r.named_mapping(node, "images");
  if (!entries) return false;
  for (auto& [name, n, name_at] : *entries) {
    ImageConfig img;
    img.name = name;
    img.location = r.loc(name_at);
    const std::string where = ctx("image", name);
    if (auto bad = check_name(name)) r.error(name_at, where + ": " + *bad);
    auto fields = r.mapping(n, where, schema_keys("image"));
    if (!fields) {
      cfg.images.push_back(std::move(img));
      continue;
    }
    YAML::Node checksum_node(YAML::NodeType::Undefined),
        checksum_url_node(YAML::NodeType::Undefined);
    for (auto& [k, f, k_at] : *fields) {
      const auto marked = r.mark(img.sensitive, k);
      if (k == "url") {
        if (auto s = r.string(f, where + ": url")) {
          const auto colon = s->find(':');
          const bool scheme_like = colon != std::string::npos && colon > 1 &&
                                   s->find('/') > colon;  // "https:/x", "ftp:x" (not "./a:b")
          if (s->find("://") == std::string::npos && scheme_like) {
            r.error(f, where + ": url: " + r.shown(redact_url(*s)) +
                           " looks like a URL but has no \"://\"");
          } else if (s->find("://") == std::string::npos && !s->empty()) {
            img.path = r.interpolator().resolve_path(*s);  // a plain path is a local file
          } else if (!url_scheme_ok(*s, true)) {
            r.error(f, where + ": url: " + r.shown(redact_url(*s)) +
                           " must be https://, http://, file:// or a local path");
          } else {
            img.url = *s;
          }
        }
      } else if (k == "path") {
        if (auto s = r.string(f, where + ": path")) {
          if (s->empty()) {
            r.error(f, where + ": path: must not be empty");
          } else {
            img.path = r.interpolator().resolve_path(*s);
          }
        }
      } else if (k == "checksum") {
        checksum_node.reset(f);
        load_checksum(r, f, where, img);
      } else if (k == "checksum_url") {
        checksum_url_node.reset(f);
        if (auto s = r.string(f, where + ": checksum_url")) {
          if (!url_scheme_ok(*s, true)) {
            r.error(f, where + ": checksum_url: " + r.shown(redact_url(*s)) +
                           " must start with https://, http:// or file://");
          }
          img.checksum_url = *s;
        }
      } else if (k == "format") {
        if (auto v =
                r.choice<ImageFormat>(f, where + ": format",
                                      {{"qcow2", ImageFormat::Qcow2}, {"raw", ImageFormat::Raw}})) {
          img.format = *v;
        }
      } else if (k == "ca_bundle") {
        if (auto s = r.string(f, where + ": ca_bundle"))
          img.ca_bundle = r.interpolator().resolve_path(*s);
      } else if (k == "max_size") {
        if (auto v = r.size(f, where + ": max_size")) img.max_size = *v;
      }
    }
    const bool has_url = n["url"].IsDefined(), has_path = n["path"].IsDefined();
    if (has_url && has_path) {
      r.error(n["path"], where + ": set either url or path, not both");
    } else if (!has_url && !has_path) {
      r.error(name_at, where + ": missing url or path (where to get the image)");
    }
    if (checksum_node.IsDefined() && checksum_url_node.IsDefined()) {
      r.error(checksum_url_node, where + ": set either checksum or checksum_url, not both");
    }
    const bool downloaded = img.url && img.url->rfind("file://", 0) != 0;
    if (downloaded && !checksum_node.IsDefined() && !checksum_url_node.IsDefined()) {
      r.error(name_at,
              where +
                  ": a downloaded image needs a checksum: set checksum: sha256:<hex>, "
                  "checksum_url: <SHA256SUMS url>, or checksum: none to skip verification");
    }
    if (img.checksum_none) {
      r.warning(checksum_node, where + ": checksum: none: the image will not be verified");
    }
    if (img.checksum_url && img.checksum_url->rfind("http://", 0) == 0) {
      r.warning(checksum_url_node,
                where + ": checksum_url: " + quote(redact_url(*img.checksum_url)) +
                    " is plain http: anyone on the way can change the list and the image "
                    "together, so the image is not really verified (use https)");
    }
    if (img.ca_bundle && (!img.url || img.url->rfind("https://", 0) != 0)) {
      r.error(n["ca_bundle"], where + ": ca_bundle is only used with an https:// url");
    }
    cfg.images.push_back(std::move(img));
  }
  return true;
}

}  // namespace detail

namespace {
LoadResult load_unguarded(const std::string& text, const std::string& file,
                          const std::string& base_dir, const LoadOptions& options) {
  LoadResult result;
  Diagnostics& diags = result.diagnostics;
  auto root = parse_yaml(text, file, diags);
  if (!root) return result;
  if (!root->IsMap()) {
    diags.error({file, 1, 1},
                root->IsNull()
                    ? "the file is empty (it needs at least cluster: <name>)"
                    : "expected a mapping at the top level (cluster:, hosts:, vms:, ...)");
    return result;
  }

  ClusterConfig cfg;
  cfg.file = file;
  cfg.base_dir = base_dir;
  auto home_it = options.environment.find("HOME");
  const std::string home = home_it == options.environment.end() ? "" : home_it->second;

  // Variables first: everything else may refer to them.
  Interpolator plain({}, base_dir, home);
  Reader decl_reader(file, diags, plain);
  const YAML::Node& top = *root;
  auto top_entries = decl_reader.mapping(top, "top level", schema_keys(""));
  VariableDecls decls = load_variable_decls(decl_reader, top["variables"]);
  apply_variable_values(decls, options, file, diags);
  cfg.variables = decls.list;

  Interpolator interp(decls.values, base_dir, home);
  Reader r(file, diags, interp);

  if (!top["cluster"].IsDefined()) {
    diags.error({file, 1, 1},
                "missing required key \"cluster\" (the cluster's name, e.g. cluster: festival)");
  } else if (auto name = r.string(top["cluster"], "cluster")) {
    r.refuse_sensitive(top["cluster"], "cluster");
    if (auto bad = check_hostname(*name)) {
      r.error(top["cluster"], "cluster: " + *bad);
    }
    cfg.name = *name;
  }
  detail::Sections sections;
  sections.hosts = detail::load_hosts(r, top["hosts"], options, cfg);
  sections.images = detail::load_images(r, top["images"], cfg);
  sections.networks = detail::load_networks(r, top["networks"], sections, cfg);
  if (top["ssh"].IsDefined()) detail::load_ssh(r, top["ssh"], "ssh", cfg.ssh);
  detail::load_vms(r, top["vms"], top["defaults"], sections, cfg);
  (void)top_entries;  // reported unknown/duplicate top-level keys; sections are read by name
  detail::validate_cluster(cfg, diags);

  if (!diags.has_errors()) result.config = std::move(cfg);
  return result;
}
}  // namespace

LoadResult load_config_text(const std::string& raw, const std::string& file,
                            const std::string& base_dir, const LoadOptions& options) {
  // A UTF-8 byte order mark is no content; bytes that are no UTF-8 are a located error.
  const std::string text = raw.rfind("\xEF\xBB\xBF", 0) == 0 ? raw.substr(3) : raw;
  if (const auto bad = first_invalid_utf8(text)) {
    LoadResult result;
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(text[bad->offset]));
    result.diagnostics.error(
        {file, bad->line, bad->column},
        std::string("not UTF-8 text (byte ") + byte + "); save the file as UTF-8");
    return result;
  }
  try {
    return load_unguarded(text, file, base_dir, options);
  } catch (const std::exception& e) {
    // A bug in kumo, not in the file; the fuzz target treats this message as a failure.
    LoadResult result;
    result.diagnostics.error({file, 0, 0},
                             std::string(kInternalErrorPrefix) + e.what() +
                                 " (this is a bug in kumo; please report it with the file)");
    return result;
  }
}

LoadResult load_config(const std::string& path, const LoadOptions& options) {
  if (path == "-") {
    std::string err;
    auto text = read_bounded(std::cin, err);
    if (!text) {
      LoadResult result;
      result.diagnostics.error({"<stdin>", 0, 0}, "cannot read the cluster file: " + err);
      return result;
    }
    return load_config_text(*text, "<stdin>", std::filesystem::current_path().string(), options);
  }
  std::string err;
  auto text = read_text(path, err);
  if (!text) {
    LoadResult result;
    result.diagnostics.error(
        {path, 0, 0}, "cannot read the cluster file: " + err +
                          (err == std::strerror(ENOENT) ? " (use -f FILE to name another)" : ""));
    return result;
  }
  auto base = std::filesystem::absolute(path).parent_path().string();
  return load_config_text(*text, path, base, options);
}

}  // namespace kumo
