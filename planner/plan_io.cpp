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

template <typename E>
std::optional<E> enum_from(const std::string& s, std::initializer_list<E> values) {
  for (E v : values) {
    if (s == to_string(v)) return v;
  }
  return std::nullopt;
}

}  // namespace

json plan_to_json(const Plan& plan) {
  json out;
  out["kumo_saved_plan"] = Plan::kFormatVersion;
  out["cluster"] = plan.cluster;
  out["config_file"] = plan.config_file;
  out["fingerprint"] = plan.fingerprint;
  out["warnings"] = plan.warnings;
  out["targets"] = plan.targets;
  out["sensitive_values"] = plan.sensitive_values;
  out["hosts"] = json::array();
  for (const auto& h : plan.hosts) {
    out["hosts"].push_back({{"name", h.name}, {"uri", h.uri}, {"reachable", h.reachable}, {"skipped", h.skipped},
                            {"error", h.error}, {"kvm", h.kvm}, {"virt_type", h.virt_type}, {"domains", h.domains},
                            {"networks", h.networks}, {"volumes", h.volumes}, {"api_calls", h.api_calls},
                            {"seconds", h.seconds}});
  }
  out["changes"] = json::array();
  for (const auto& c : plan.changes) {
    json attrs = json::array();
    for (const auto& a : c.attributes) {
      attrs.push_back({{"name", a.name}, {"before", a.before}, {"after", a.after},
                       {"forces_replacement", a.forces_replacement}, {"sensitive", a.sensitive}, {"drift", a.drift}});
    }
    out["changes"].push_back({{"address", c.address}, {"kind", c.kind}, {"host", c.host}, {"parent", c.parent},
                              {"action", to_string(c.action)}, {"disruption", to_string(c.disruption)},
                              {"destroys_data", c.destroys_data}, {"reason", c.reason}, {"attributes", attrs},
                              {"desired", c.desired}, {"observed", c.observed}});
  }
  return out;
}

std::optional<Plan> plan_from_json(const json& doc, std::string* error) {
  try {
    if (!doc.is_object() || !doc.contains("kumo_saved_plan")) {
      *error = "not a saved kumo plan (make one with kumo plan -o FILE)";
      return std::nullopt;
    }
    if (doc["kumo_saved_plan"] != Plan::kFormatVersion) {
      *error = "saved plan format " + doc["kumo_saved_plan"].dump() + " is not supported by this kumo (format " +
               std::to_string(Plan::kFormatVersion) + "); plan again";
      return std::nullopt;
    }
    Plan p;
    p.cluster = doc.at("cluster");
    p.config_file = doc.at("config_file");
    p.fingerprint = doc.at("fingerprint");
    p.warnings = doc.at("warnings").get<std::vector<std::string>>();
    p.targets = doc.at("targets").get<std::vector<std::string>>();
    p.sensitive_values = doc.at("sensitive_values").get<std::vector<std::string>>();
    for (const auto& h : doc.at("hosts")) {
      HostReport r;
      r.name = h.at("name");
      r.uri = h.at("uri");
      r.reachable = h.at("reachable");
      r.skipped = h.at("skipped");
      r.error = h.at("error");
      r.kvm = h.at("kvm");
      r.virt_type = h.at("virt_type");
      r.domains = h.at("domains");
      r.networks = h.at("networks");
      r.volumes = h.at("volumes");
      r.api_calls = h.at("api_calls");
      r.seconds = h.at("seconds");
      p.hosts.push_back(r);
    }
    for (const auto& c : doc.at("changes")) {
      ResourceChange rc;
      rc.address = c.at("address");
      rc.kind = c.at("kind");
      rc.host = c.at("host");
      rc.parent = c.at("parent");
      auto action = enum_from<Action>(c.at("action"), {Action::NoOp, Action::Create, Action::Update, Action::Replace,
                                                       Action::Delete});
      auto disruption = enum_from<Disruption>(c.at("disruption"), {Disruption::None, Disruption::Live,
                                                                   Disruption::Restart, Disruption::Recreate});
      if (!action || !disruption) {
        *error = "saved plan has an unknown action or disruption in " + rc.address;
        return std::nullopt;
      }
      rc.action = *action;
      rc.disruption = *disruption;
      rc.destroys_data = c.at("destroys_data");
      rc.reason = c.at("reason");
      rc.desired = c.at("desired");
      rc.observed = c.at("observed");
      for (const auto& a : c.at("attributes")) {
        AttributeChange ac;
        ac.name = a.at("name");
        ac.before = a.at("before");
        ac.after = a.at("after");
        ac.forces_replacement = a.at("forces_replacement");
        ac.sensitive = a.at("sensitive");
        ac.drift = a.at("drift");
        rc.attributes.push_back(ac);
      }
      p.changes.push_back(rc);
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
