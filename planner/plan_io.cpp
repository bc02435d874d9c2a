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
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(HostReport, name, uri, reachable, skipped, error, kvm, virt_type,
                                   domains, networks, volumes, api_calls, seconds)
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
          {"changes", plan.changes}};
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
