#include "planner/plan_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "planner/plan_check.h"
#include "providers/ownership.h"

namespace kumo {

using json = nlohmann::json;

// --- enums as text, refused when unknown (nlohmann's enum macro would quietly take the first)

namespace {

template <typename E, std::size_t N>
E enum_from(const json& j, const std::pair<E, const char*> (&names)[N], const char* what) {
  const std::string text = j.is_string() ? j.get<std::string>() : j.dump();
  for (const auto& [value, name] : names)
    if (text == name) return value;
  throw std::invalid_argument(std::string("unknown ") + what + " " + json(text).dump());
}

constexpr std::pair<Action, const char*> kActions[] = {
    {Action::Create, "create"}, {Action::Update, "update"}, {Action::Replace, "replace"},
    {Action::Delete, "delete"}, {Action::Move, "move"},     {Action::Adopt, "adopt"}};
constexpr std::pair<Disruption, const char*> kDisruptions[] = {{Disruption::None, "none"},
                                                               {Disruption::Live, "live"},
                                                               {Disruption::Restart, "restart"},
                                                               {Disruption::Recreate, "recreate"}};
constexpr std::pair<WaitFor, const char*> kWaits[] = {{WaitFor::None, "none"},
                                                      {WaitFor::Running, "running"},
                                                      {WaitFor::Agent, "agent"},
                                                      {WaitFor::CloudInit, "cloud-init"}};

Address address_from(const json& j) {
  const std::string text = j.get<std::string>();
  auto a = Address::parse(text);
  if (!a) throw std::invalid_argument("bad address " + json(text).dump());
  return *a;
}

// --- attribute values

json value_to_json(const Value& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else {
          return json(x);
        }
      },
      v);
}

Value value_from_json(const json& j) {
  if (j.is_null()) return {};
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer()) return j.get<std::int64_t>();
  if (j.is_string()) return j.get<std::string>();
  if (j.is_array()) return j.get<std::vector<std::string>>();
  if (j.is_object()) return j.get<std::map<std::string, std::string>>();
  throw std::invalid_argument("bad attribute value " + j.dump());
}

json attribute_to_json(const AttributeChange& a) {
  return {{"name", a.name},
          {"before", value_to_json(a.before)},
          {"after", value_to_json(a.after)},
          {"forces_replacement", a.forces_replacement},
          {"sensitive", a.sensitive},
          {"drift", a.drift},
          {"document", a.document}};
}

AttributeChange attribute_from_json(const json& j) {
  AttributeChange a;
  a.name = j.at("name").get<std::string>();
  a.before = value_from_json(j.at("before"));
  a.after = value_from_json(j.at("after"));
  a.forces_replacement = j.at("forces_replacement").get<bool>();
  a.sensitive = j.at("sensitive").get<bool>();
  a.drift = j.at("drift").get<bool>();
  a.document = j.at("document").get<bool>();
  return a;
}

// --- payloads

json vm_to_json(const VmPayload& v) {
  json nics = json::array();
  for (const auto& n : v.nics) {
    nics.push_back({{"network", n.network},
                    {"bridge", n.bridge},
                    {"mac", n.mac},
                    {"direct", n.direct},
                    {"mode", n.mode},
                    {"model", n.model},
                    {"queues", n.queues}});
  }
  json j = {{"name", v.name},
            {"record", json::parse(vm_record_json(v.record))},
            {"spec_hash", v.spec_hash},
            {"cpus", v.cpus},
            {"memory", v.memory},
            {"running", v.running},
            {"autostart", v.autostart},
            {"root_volume", v.root_volume},
            {"seed_volume", v.seed_volume},
            {"data_disks", v.data_disks},
            {"nics", nics},
            {"wait_for", to_string(v.wait_for)},
            {"wait_timeout_s", v.wait_timeout.count()},
            {"adopt_from", v.adopt_from}};
  if (!v.data_disk_pools.empty()) j["data_disk_pools"] = v.data_disk_pools;
  return j;
}

VmPayload vm_from_json(const json& j) {
  VmPayload v;
  v.name = j.at("name").get<std::string>();
  auto record = vm_record_from_json(j.at("record").dump());
  if (!record) throw std::invalid_argument("bad VM record");
  v.record = *record;
  v.spec_hash = j.at("spec_hash").get<std::string>();
  v.cpus = j.at("cpus").get<int>();
  v.memory = j.at("memory").get<std::uint64_t>();
  v.running = j.at("running").get<bool>();
  v.autostart = j.at("autostart").get<bool>();
  v.root_volume = j.at("root_volume").get<std::string>();
  v.seed_volume = j.at("seed_volume").get<std::string>();
  v.data_disks = j.at("data_disks").get<std::vector<std::pair<std::string, std::string>>>();
  for (const auto& n : j.at("nics"))
    v.nics.push_back({n.at("network").get<std::string>(), n.at("bridge").get<std::string>(),
                      n.at("mac").get<std::string>(), n.at("direct").get<std::string>(),
                      n.at("mode").get<std::string>(), n.at("model").get<std::string>(),
                      n.at("queues").get<int>()});
  v.wait_for = enum_from(j.at("wait_for"), kWaits, "wait_for");
  v.wait_timeout = std::chrono::seconds(j.at("wait_timeout_s").get<long long>());
  v.adopt_from = j.value("adopt_from", "");
  if (j.contains("data_disk_pools"))
    v.data_disk_pools = j.at("data_disk_pools").get<std::map<std::string, std::string>>();
  return v;
}

json network_to_json(const NetworkSpec& n) {
  json dhcp = json::array(), dns = json::array();
  for (const auto& h : n.dhcp_hosts)
    dhcp.push_back({{"mac", h.mac}, {"ip", h.ip}, {"name", h.name}});
  for (const auto& h : n.dns_hosts) dns.push_back({{"ip", h.ip}, {"names", h.names}});
  return {{"name", n.name},
          {"mode", n.mode},
          {"bridge", n.bridge},
          {"address", n.address},
          {"prefix", n.prefix},
          {"dhcp_start", n.dhcp_start},
          {"dhcp_end", n.dhcp_end},
          {"dhcp_hosts", dhcp},
          {"dns_hosts", dns},
          {"domain", n.domain},
          {"mtu", n.mtu ? json(*n.mtu) : json(nullptr)}};
}

NetworkSpec network_from_json(const json& j) {
  NetworkSpec n;
  n.name = j.at("name").get<std::string>();
  n.mode = j.at("mode").get<std::string>();
  n.bridge = j.at("bridge").get<std::string>();
  n.address = j.at("address").get<std::string>();
  n.prefix = j.at("prefix").get<int>();
  n.dhcp_start = j.at("dhcp_start").get<std::string>();
  n.dhcp_end = j.at("dhcp_end").get<std::string>();
  for (const auto& h : j.at("dhcp_hosts"))
    n.dhcp_hosts.push_back({h.at("mac").get<std::string>(), h.at("ip").get<std::string>(),
                            h.at("name").get<std::string>()});
  for (const auto& h : j.at("dns_hosts"))
    n.dns_hosts.push_back(
        {h.at("ip").get<std::string>(), h.at("names").get<std::vector<std::string>>()});
  n.domain = j.at("domain").get<std::string>();
  if (!j.at("mtu").is_null()) n.mtu = j.at("mtu").get<int>();
  return n;
}

json volume_to_json(const VolumePayload& v) {
  json j = {{"name", v.name},
            {"size", v.size ? json(*v.size) : json(nullptr)},
            {"image", v.image},
            {"base_volume", v.base_volume}};
  if (!v.pool.empty()) j["pool"] = v.pool;
  if (v.seed) {
    j["seed"] = {{"instance_id", v.seed->instance_id},
                 {"user_data", v.seed->user_data},
                 {"meta_data", v.seed->meta_data},
                 {"network_config", v.seed->network_config}};
  }
  return j;
}

VolumePayload volume_from_json(const json& j) {
  VolumePayload v;
  v.name = j.at("name").get<std::string>();
  if (!j.at("size").is_null()) v.size = j.at("size").get<std::uint64_t>();
  v.image = j.at("image").get<std::string>();
  v.base_volume = j.at("base_volume").get<std::string>();
  v.pool = j.value("pool", "");
  if (j.contains("seed")) {
    const json& s = j["seed"];
    v.seed =
        SeedDocs{s.at("instance_id").get<std::string>(), s.at("user_data").get<std::string>(),
                 s.at("meta_data").get<std::string>(), s.at("network_config").get<std::string>()};
  }
  return v;
}

json desired_to_json(const Desired& d) {
  if (const auto* v = std::get_if<VmPayload>(&d)) return vm_to_json(*v);
  if (const auto* n = std::get_if<NetworkSpec>(&d)) return network_to_json(*n);
  if (const auto* v = std::get_if<VolumePayload>(&d)) return volume_to_json(*v);
  if (const auto* p = std::get_if<PoolSpec>(&d)) {
    return {{"name", p->name},
            {"type", p->type},
            {"path", p->path},
            {"devices", p->devices},
            {"cluster", p->cluster}};
  }
  return nullptr;
}

Desired desired_from_json(ResourceKind kind, const json& j) {
  if (j.is_null()) return {};
  switch (kind) {
    case ResourceKind::Vm:
      return vm_from_json(j);
    case ResourceKind::Network:
      return network_from_json(j);
    case ResourceKind::Volume:
      return volume_from_json(j);
    case ResourceKind::Pool:
      return PoolSpec{j.at("name").get<std::string>(), j.at("type").get<std::string>(),
                      j.at("path").get<std::string>(),
                      j.at("devices").get<std::vector<std::string>>(),
                      j.at("cluster").get<std::string>()};
    case ResourceKind::Image:
      break;
  }
  throw std::invalid_argument("an image is no change of its own");
}

// --- changes

json change_to_json(const ResourceChange& c) {
  json attrs = json::array();
  for (const auto& a : c.attributes) attrs.push_back(attribute_to_json(a));
  json observed = nullptr;
  if (c.observed) {
    observed = {{"name", c.observed->name},
                {"uuid", c.observed->uuid},
                {"host", c.observed->host},
                {"state", c.observed->state},
                {"size", c.observed->size}};
    if (!c.observed->pool.empty()) observed["pool"] = c.observed->pool;
  }
  return {{"address", c.address.str()},
          {"host", c.host},
          {"parent", c.parent ? json(c.parent->str()) : json(nullptr)},
          {"action", to_string(c.action)},
          {"disruption", to_string(c.disruption)},
          {"destroys_data", c.destroys_data},
          {"attributes", attrs},
          {"reason", c.reason},
          {"desired", desired_to_json(c.desired)},
          {"observed", observed},
          {"steps",
           {{"remove_old", c.steps.remove_old},
            {"shutdown", c.steps.shutdown},
            {"start", c.steps.start},
            {"wait_ready", c.steps.wait_ready},
            {"frees_room", c.steps.frees_room},
            {"live", c.steps.live},
            {"remove_dest_copy", c.steps.remove_dest_copy}}}};
}

ResourceChange change_from_json(const json& j) {
  ResourceChange c;
  c.address = address_from(j.at("address"));
  c.host = j.at("host").get<std::string>();
  if (!j.at("parent").is_null()) c.parent = address_from(j.at("parent"));
  c.action = enum_from(j.at("action"), kActions, "action");
  c.disruption = enum_from(j.at("disruption"), kDisruptions, "disruption");
  c.destroys_data = j.at("destroys_data").get<bool>();
  for (const auto& a : j.at("attributes")) c.attributes.push_back(attribute_from_json(a));
  c.reason = j.at("reason").get<std::string>();
  c.desired = desired_from_json(c.address.kind, j.at("desired"));
  if (const json& o = j.at("observed"); !o.is_null()) {
    c.observed = ObservedRef{o.at("name").get<std::string>(),   o.at("uuid").get<std::string>(),
                             o.at("host").get<std::string>(),   o.at("state").get<std::string>(),
                             o.at("size").get<std::uint64_t>(), o.value("pool", "")};
  }
  const json& s = j.at("steps");
  c.steps = VmSteps{s.at("remove_old").get<bool>(),    s.at("shutdown").get<bool>(),
                    s.at("start").get<bool>(),         s.at("wait_ready").get<bool>(),
                    s.at("frees_room").get<bool>(),    s.value("live", false),
                    s.value("remove_dest_copy", false)};
  return c;
}

json host_to_json(const HostReport& h) {
  json j = {{"name", h.name},
            {"uri", h.uri},
            {"uri_sensitive", h.uri_sensitive},
            {"pool", h.pool},
            {"reachable", h.reachable},
            {"skipped", h.skipped},
            {"error", h.error},
            {"kvm", h.kvm},
            {"virt_type", h.virt_type},
            {"domains", h.domains},
            {"networks", h.networks},
            {"volumes", h.volumes},
            {"api_calls", h.api_calls},
            {"seconds", h.seconds},
            {"drain", h.drain},
            {"migration_socket_dir", h.migration_socket_dir},
            {"migration_address", h.migration_address}};
  if (h.scoped) j["scoped"] = true;
  return j;
}

HostReport host_from_json(const json& j) {
  HostReport h;
  j.at("name").get_to(h.name);
  j.at("uri").get_to(h.uri);
  j.at("uri_sensitive").get_to(h.uri_sensitive);
  j.at("pool").get_to(h.pool);
  j.at("reachable").get_to(h.reachable);
  j.at("skipped").get_to(h.skipped);
  j.at("error").get_to(h.error);
  j.at("kvm").get_to(h.kvm);
  j.at("virt_type").get_to(h.virt_type);
  j.at("domains").get_to(h.domains);
  j.at("networks").get_to(h.networks);
  j.at("volumes").get_to(h.volumes);
  j.at("api_calls").get_to(h.api_calls);
  j.at("seconds").get_to(h.seconds);
  h.drain = j.value("drain", false);
  h.migration_socket_dir = j.value("migration_socket_dir", std::string());
  h.migration_address = j.value("migration_address", std::string());
  h.scoped = j.value("scoped", false);
  return h;
}

json image_to_json(const ImagePlan& im) {
  return {{"name", im.name},
          {"source", im.source},
          {"fetch", image_source_to_json(im.fetch)},
          {"checksum", im.checksum},
          {"volume", im.volume},
          {"cached", im.cached},
          {"size", im.size},
          {"upload_to", im.upload_to},
          {"present_on", im.present_on},
          {"partial_on", im.partial_on}};
}

ImagePlan image_from_json(const json& j) {
  ImagePlan im;
  j.at("name").get_to(im.name);
  j.at("source").get_to(im.source);
  std::string error;
  auto fetch = image_source_from_json(j.at("fetch"), &error);
  if (!fetch) throw std::invalid_argument(error);
  im.fetch = *fetch;
  j.at("checksum").get_to(im.checksum);
  j.at("volume").get_to(im.volume);
  j.at("cached").get_to(im.cached);
  j.at("size").get_to(im.size);
  j.at("upload_to").get_to(im.upload_to);
  j.at("present_on").get_to(im.present_on);
  j.at("partial_on").get_to(im.partial_on);
  // A checksum names a volume and a cache file: hex digits only, nothing that reads as a path.
  if (!im.checksum.empty() && !is_checksum_text(im.checksum))
    throw std::invalid_argument("image " + im.name + ": bad checksum " + json(im.checksum).dump());
  return im;
}

}  // namespace

json plan_to_json(const Plan& plan) {
  json hosts = json::array(), changes = json::array(), images = json::array();
  for (const auto& h : plan.hosts) hosts.push_back(host_to_json(h));
  for (const auto& c : plan.changes) changes.push_back(change_to_json(c));
  for (const auto& im : plan.images) images.push_back(image_to_json(im));
  return {{"kumo_saved_plan", kSavedPlanVersion},
          {"cluster", plan.cluster},
          {"config_file", plan.config_file},
          {"fingerprint", plan.fingerprint},
          {"warnings", plan.warnings},
          {"targets", plan.targets},
          {"destroy", plan.destroy},
          {"hosts", hosts},
          {"changes", changes},
          {"images", images}};
}

json image_source_to_json(const images::ImageSource& image) {
  json j = {{"name", image.name},
            {"checksum_none", image.checksum_none},
            {"format", to_string(image.format)}};
  if (image.url) j["url"] = *image.url;
  if (image.path) j["path"] = *image.path;
  if (image.checksum) j["checksum"] = image.checksum->str();
  if (image.checksum_url) j["checksum_url"] = *image.checksum_url;
  if (image.ca_bundle) j["ca_bundle"] = *image.ca_bundle;
  j["max_size"] = image.max_size;
  return j;
}

std::optional<images::ImageSource> image_source_from_json(const json& j, std::string* error) {
  try {
    images::ImageSource c;
    c.name = j.at("name").get<std::string>();
    c.checksum_none = j.value("checksum_none", false);
    const std::string format = j.value("format", "auto");
    if (format != "qcow2" && format != "raw" && format != "auto") {
      *error = "image " + c.name + ": unknown format " + json(format).dump();
      return std::nullopt;
    }
    c.format = format == "qcow2" ? images::ImageFormat::Qcow2
               : format == "raw" ? images::ImageFormat::Raw
                                 : images::ImageFormat::Auto;
    if (j.contains("url")) c.url = j["url"].get<std::string>();
    if (j.contains("path")) c.path = j["path"].get<std::string>();
    if (j.contains("checksum_url")) c.checksum_url = j["checksum_url"].get<std::string>();
    if (j.contains("ca_bundle")) c.ca_bundle = j["ca_bundle"].get<std::string>();
    c.max_size = j.value("max_size", images::kDefaultMaxImageSize);
    if (j.contains("checksum")) {
      const std::string text = j["checksum"].get<std::string>();
      const auto colon = text.find(':');
      const std::string algo = text.substr(0, colon);
      if (!is_checksum_text(text)) {
        *error = "image " + c.name + ": bad checksum " + json(text).dump();
        return std::nullopt;
      }
      c.checksum = Checksum{algo == "sha256" ? ChecksumAlgo::Sha256 : ChecksumAlgo::Sha512,
                            text.substr(colon + 1)};
    }
    return c;
  } catch (const json::exception& e) {
    *error = std::string("image fetch instructions are damaged: ") + e.what();
    return std::nullopt;
  }
}

std::optional<Plan> plan_from_json(const json& doc, std::string* error) {
  if (!doc.is_object() || !doc.contains("kumo_saved_plan")) {
    *error = "not a saved kumo plan (make one with kumo plan -o FILE)";
    return std::nullopt;
  }
  if (doc["kumo_saved_plan"] != kSavedPlanVersion) {
    *error = "saved plan format " + doc["kumo_saved_plan"].dump() +
             " is not supported by this kumo (format " + std::to_string(kSavedPlanVersion) +
             "); plan again";
    return std::nullopt;
  }
  std::string where = "";
  try {
    Plan p;
    doc.at("cluster").get_to(p.cluster);
    doc.at("config_file").get_to(p.config_file);
    doc.at("fingerprint").get_to(p.fingerprint);
    doc.at("warnings").get_to(p.warnings);
    doc.at("targets").get_to(p.targets);
    doc.at("destroy").get_to(p.destroy);
    for (const auto& h : doc.at("hosts")) p.hosts.push_back(host_from_json(h));
    for (const auto& c : doc.at("changes")) {
      where = " (change " + c.value("address", json("?")).dump() + ")";
      p.changes.push_back(change_from_json(c));
    }
    where = "";
    for (const auto& im : doc.at("images")) p.images.push_back(image_from_json(im));
    check_plan_fields(p);
    return p;
  } catch (const std::exception& e) {
    *error = std::string("saved plan is damaged") + where + ": " + e.what();
    return std::nullopt;
  }
}

bool save_plan(const Plan& plan, const std::string& path, std::string* error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  ::fchmod(fd, 0600);  // also when the file existed with wider permissions
  const std::string text = plan_to_json(plan).dump(1) + "\n";
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = "cannot write " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

std::optional<Plan> load_plan(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded()) {
    *error = path + " is not JSON: not a saved kumo plan";
    return std::nullopt;
  }
  return plan_from_json(doc, error);
}

}  // namespace kumo
