#include "planner/plan_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kumo {
namespace {

using json = nlohmann::json;

}  // namespace

NLOHMANN_JSON_SERIALIZE_ENUM(Action, {{Action::NoOp, "no-op"},
                                      {Action::Create, "create"},
                                      {Action::Update, "update"},
                                      {Action::Replace, "replace"},
                                      {Action::Delete, "delete"}})
NLOHMANN_JSON_SERIALIZE_ENUM(Disruption, {{Disruption::None, "none"},
                                          {Disruption::Live, "live"},
                                          {Disruption::Restart, "restart"},
                                          {Disruption::Recreate, "recreate"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ImagePlan, name, source, fetch, checksum, volume, cached, size,
                                   upload_to, present_on, partial_on)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(HostReport, name, uri, pool, reachable, skipped, error, kvm,
                                   virt_type, domains, networks, volumes, api_calls, seconds)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AttributeChange, name, before, after, forces_replacement,
                                   sensitive, drift)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ResourceChange, address, kind, host, parent, action, disruption,
                                   destroys_data, attributes, reason, desired, observed)

json plan_to_json(const Plan& plan) {
  return {{"kumo_saved_plan", Plan::kFormatVersion},
          {"cluster", plan.cluster},
          {"config_file", plan.config_file},
          {"fingerprint", plan.fingerprint},
          {"warnings", plan.warnings},
          {"targets", plan.targets},
          {"sensitive_values", plan.sensitive_values},
          {"hosts", plan.hosts},
          {"changes", plan.changes},
          {"images", plan.images}};
}

json image_config_to_json(const ImageConfig& image) {
  json j = {{"name", image.name},
            {"checksum_none", image.checksum_none},
            {"format", to_string(image.format)}};
  if (image.url) j["url"] = *image.url;
  if (image.path) j["path"] = *image.path;
  if (image.checksum) j["checksum"] = image.checksum->str();
  if (image.checksum_url) j["checksum_url"] = *image.checksum_url;
  if (image.ca_bundle) j["ca_bundle"] = *image.ca_bundle;
  return j;
}

std::optional<ImageConfig> image_config_from_json(const json& j, std::string* error) {
  try {
    ImageConfig c;
    c.name = j.at("name").get<std::string>();
    c.checksum_none = j.value("checksum_none", false);
    const std::string format = j.value("format", "auto");
    c.format = format == "qcow2" ? ImageFormat::Qcow2
               : format == "raw" ? ImageFormat::Raw
                                 : ImageFormat::Auto;
    if (j.contains("url")) c.url = j["url"].get<std::string>();
    if (j.contains("path")) c.path = j["path"].get<std::string>();
    if (j.contains("checksum_url")) c.checksum_url = j["checksum_url"].get<std::string>();
    if (j.contains("ca_bundle")) c.ca_bundle = j["ca_bundle"].get<std::string>();
    if (j.contains("checksum")) {
      const std::string text = j["checksum"].get<std::string>();
      const auto colon = text.find(':');
      const std::string algo = text.substr(0, colon);
      if (colon == std::string::npos || (algo != "sha256" && algo != "sha512")) {
        *error = "image " + c.name + ": bad checksum " + text;
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
  try {
    if (!doc.is_object() || !doc.contains("kumo_saved_plan")) {
      *error = "not a saved kumo plan (make one with kumo plan -o FILE)";
      return std::nullopt;
    }
    if (doc["kumo_saved_plan"] != Plan::kFormatVersion) {
      *error = "saved plan format " + doc["kumo_saved_plan"].dump() +
               " is not supported by this kumo (format " + std::to_string(Plan::kFormatVersion) +
               "); plan again";
      return std::nullopt;
    }
    Plan p;
    doc.at("cluster").get_to(p.cluster);
    doc.at("config_file").get_to(p.config_file);
    doc.at("fingerprint").get_to(p.fingerprint);
    doc.at("warnings").get_to(p.warnings);
    doc.at("targets").get_to(p.targets);
    doc.at("sensitive_values").get_to(p.sensitive_values);
    doc.at("hosts").get_to(p.hosts);
    doc.at("changes").get_to(p.changes);
    if (doc.contains("images")) doc.at("images").get_to(p.images);
    // The enum macros turn an unknown string into the first value (no-op): refuse instead.
    for (const auto& rc : doc["changes"]) {
      const std::string action = rc.value("action", "");
      if (action != "create" && action != "update" && action != "replace" && action != "delete") {
        *error = "saved plan is damaged: unknown action " + json(action).dump() + " for " +
                 rc.value("address", "?");
        return std::nullopt;
      }
    }
    return p;
  } catch (const json::exception& e) {
    *error = std::string("saved plan is damaged: ") + e.what();
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
