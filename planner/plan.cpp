#include "planner/plan.h"

#include "planner/config/sensitive.h"
#include "providers/redact.h"

namespace kumo {

const char* to_string(Action a) {
  switch (a) {
    case Action::NoOp:
      return "no-op";
    case Action::Create:
      return "create";
    case Action::Update:
      return "update";
    case Action::Replace:
      return "replace";
    case Action::Delete:
      return "delete";
    case Action::Move:
      return "move";
    case Action::Adopt:
      return "adopt";
  }
  return "?";
}

const char* symbol(Action a) {
  switch (a) {
    case Action::NoOp:
      return " ";
    case Action::Create:
      return "+";
    case Action::Update:
      return "~";
    case Action::Replace:
      return "-/+";
    case Action::Delete:
      return "-";
    case Action::Move:
      return "->";
    case Action::Adopt:
      return "<=";
  }
  return "?";
}

const char* to_string(Disruption d) {
  switch (d) {
    case Disruption::None:
      return "none";
    case Disruption::Live:
      return "live";
    case Disruption::Restart:
      return "restart";
    case Disruption::Recreate:
      return "recreate";
  }
  return "?";
}

PlanSummary Plan::summary() const {
  PlanSummary s;
  for (const auto& c : changes) {
    if (c.parent) continue;
    switch (c.action) {
      case Action::Create:
        ++s.add;
        break;
      case Action::Update:
        ++s.change;
        break;
      case Action::Replace:
        ++s.replace;
        break;
      case Action::Delete:
        ++s.destroy;
        break;
      case Action::Move:
        ++s.move;
        break;
      case Action::Adopt:
        ++s.adopt;
        break;
      case Action::NoOp:
        break;
    }
  }
  return s;
}

const HostReport* Plan::find_host(const std::string& name) const {
  for (const auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

std::string HostReport::shown_uri() const {
  return uri_sensitive ? kSensitiveMask : redact_host_uri(uri);
}

}  // namespace kumo
