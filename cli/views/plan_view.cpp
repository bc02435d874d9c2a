#include "cli/views/plan_view.h"

#include "cli/views/apply_view.h"
#include "planner/config/sensitive.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <sstream>
#include <variant>

#include "planner/textdiff.h"
#include "providers/redact.h"

namespace kumo::views {
namespace {

const char* kReset = "\033[0m";

const char* colour_of(Action a) {
  switch (a) {
    case Action::Create:
      return "\033[32m";
    case Action::Update:
      return "\033[33m";
    case Action::Replace:
      return "\033[35m";
    case Action::Delete:
      return "\033[31m";
    case Action::Move:
      return "\033[36m";
    case Action::Adopt:
      return "\033[34m";
    case Action::NoOp:
      return "";
  }
  return "";
}

std::string value_text(const Value& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return "(none)";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return x;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string out = "[";
          for (size_t i = 0; i < x.size(); ++i) out += (i ? ", " : "") + x[i];
          return out + "]";
        } else {
          return nlohmann::json(x).dump();
        }
      },
      v);
}

nlohmann::ordered_json value_json(const Value& v) {
  return std::visit(
      [](const auto& x) -> nlohmann::ordered_json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else {
          return nlohmann::ordered_json(x);
        }
      },
      v);
}

bool absent(const Value& v) {
  return std::holds_alternative<std::monostate>(v);
}

std::string attribute_value(const AttributeChange& a, const Value& v, const ViewOptions& o,
                            const std::string& indent) {
  if (a.sensitive && !o.show_sensitive) return kSensitiveMask;
  std::string s = value_text(v);
  if (s.find('\n') != std::string::npos) {
    // Multi-line values (documents) are indented under the attribute.
    std::string out = "|\n";
    std::istringstream in(s);
    std::string line;
    while (std::getline(in, line)) out += indent + "    " + line + "\n";
    out.pop_back();
    return out;
  }
  return s;
}

// The attribute as the view shows it: with --show-sensitive, a document's new text is the one
// the seed will hold, unmasked (the recorded text before stays masked: that is all kumo keeps).
AttributeChange revealed(const Plan& plan, const ResourceChange& c, const AttributeChange& a,
                         const ViewOptions& o) {
  if (!a.document || !o.show_sensitive || absent(a.after)) return a;
  for (const auto& x : plan.changes) {
    if (x.host != c.host || !x.parent || *x.parent != c.address || !x.volume() || !x.volume()->seed)
      continue;
    AttributeChange out = a;
    const SeedDocs& docs = *x.volume()->seed;
    out.after = Value(a.name == "network_config" ? docs.network_config : docs.user_data);
    return out;
  }
  return a;
}

// A changed document's unified diff ("" when only masked values changed); nullopt for other
// attributes and for documents shown whole (new, or not recorded before).
std::optional<std::string> document_diff(const ResourceChange& c, const AttributeChange& a) {
  if (!a.document || c.action == Action::Create || absent(a.before) || absent(a.after))
    return std::nullopt;
  return unified_diff(value_text(a.before), value_text(a.after));
}

std::string plural(int n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string headline(const ResourceChange& c) {
  std::string what = to_string(c.action);
  if (c.action == Action::Move) {
    what += " " + (c.observed ? c.observed->host : std::string("?")) + " -> " + c.host;
    if (c.top_level())
      what += c.steps.live                          ? " (live)"
              : c.disruption == Disruption::Restart ? " (restart)"
                                                    : " (cold, not running)";
  } else if (c.action == Action::Adopt) {
    const VmPayload* vm = c.vm();
    what += vm && !vm->adopt_from.empty() && vm->adopt_from != vm->name
                ? " domain " + vm->adopt_from + " (renamed, no interruption)"
                : " (no interruption)";
  } else if (c.kind() == ResourceKind::Volume) {
    if (c.disruption == Disruption::Live) what += " (live)";
  } else if (c.action == Action::Update || c.action == Action::Replace) {
    what += " (" +
            std::string(c.disruption == Disruption::None ? "no interruption"
                                                         : to_string(c.disruption)) +
            ")";
  }
  if (c.destroys_data) what += ", DESTROYS DATA";
  return what;
}

void render_change(std::ostringstream& out, const Plan& plan, const ResourceChange& c,
                   const ViewOptions& o, const std::string& indent, bool documents) {
  const std::string sym = symbol(c.action);
  const std::string col = o.colour ? colour_of(c.action) : "";
  const std::string reset = o.colour ? kReset : "";
  out << indent << col << sym << " " << c.address.str() << reset << "  " << headline(c) << "\n";
  const std::string sub = indent + std::string(sym.size() + 1, ' ');
  if (!c.reason.empty()) out << sub << "# " << c.reason << "\n";
  size_t width = 0;
  for (const auto& a : c.attributes) width = std::max(width, a.name.size());
  for (const auto& original : c.attributes) {
    const AttributeChange a = revealed(plan, c, original, o);
    out << sub << a.name << ":" << std::string(width - a.name.size() + 1, ' ');
    if (a.document && !documents) {
      out << "(shown below)" << (a.forces_replacement ? "  # forces replacement" : "") << "\n";
      continue;
    }
    if (const auto diff = document_diff(c, a)) {
      // A document that changed: its unified diff, each line under the attribute.
      out << (diff->empty() ? "(changed only in values from sensitive variables)"
                            : "(unified diff)");
      if (a.forces_replacement) out << "  # forces replacement";
      out << "\n";
      std::istringstream lines(*diff);
      std::string line;
      while (std::getline(lines, line)) {
        const char* col = !o.colour || line.empty() ? ""
                          : line[0] == '+'          ? "\033[32m"
                          : line[0] == '-'          ? "\033[31m"
                          : line[0] == '@'          ? "\033[36m"
                                                    : "";
        out << sub << "    " << col << line << (*col ? kReset : "") << "\n";
      }
      continue;
    }
    if (c.action == Action::Create || absent(a.before)) {
      out << attribute_value(a, a.after, o, sub);
    } else if (absent(a.after)) {
      out << attribute_value(a, a.before, o, sub) << " -> (removed)";
    } else {
      out << attribute_value(a, a.before, o, sub) << " -> " << attribute_value(a, a.after, o, sub);
    }
    if (a.forces_replacement) out << "  # forces replacement";
    if (a.drift) out << "  # drift: changed outside kumo";
    out << "\n";
  }
}

std::string join_names(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

std::string image_line(const ImagePlan& im) {
  std::string line = "image." + im.name + ": ";
  if (!im.needed()) return line + "on every host that needs it (" + join_names(im.present_on) + ")";
  const std::string size = im.size ? human_bytes(im.size) + " " : "";
  const bool local = im.fetch.path || (im.fetch.url && im.fetch.url->rfind("file://", 0) == 0);
  if (local) {
    line += "local file " + size + "(" + im.source + ");";
  } else {
    line += im.cached ? "cached " + size + "locally;" : "download " + size + "(not cached) and";
  }
  // Unverified images are named by their content: whether a host holds one is known once read.
  line += (im.volume.empty() ? " upload, unless already there, to " : " upload to ") +
          join_names(im.upload_to);
  if (!im.present_on.empty()) {
    line +=
        " (" + join_names(im.present_on) + (im.present_on.size() == 1 ? " has" : " have") + " it)";
  }
  if (!im.partial_on.empty()) line += "; redoes a cut-short upload on " + join_names(im.partial_on);
  if (!im.verified()) line += "; NOT VERIFIED (checksum: none)";
  return line;
}

std::string summary_line(const Plan& plan) {
  if (!plan.has_changes() && plan.destroy) {
    return "Nothing to destroy: the hosts looked at hold nothing of cluster " + plan.cluster +
           (plan.targets.empty() ? std::string() : " among the targets") + ".";
  }
  if (!plan.has_changes()) return "No changes. Live state matches " + plan.config_file + ".";
  const auto s = plan.summary();
  return "Plan: " + std::to_string(s.add) + " to add, " + std::to_string(s.change) +
         " to change, " + std::to_string(s.replace) + " to replace, " +
         (s.move ? std::to_string(s.move) + " to move, " : std::string()) +
         (s.adopt ? std::to_string(s.adopt) + " to adopt, " : std::string()) +
         std::to_string(s.destroy) + " to destroy.";
}

namespace {

std::string render_human(const Plan& plan, const ViewOptions& o, bool documents) {
  std::ostringstream out;
  out << "kumo plan: cluster " << plan.cluster << " (" << plan.config_file << ")\n";
  for (const auto& h : plan.hosts) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.2f s", h.seconds);
    out << "  host " << h.name << ": ";
    if (!h.reachable) {
      out << (h.skipped ? "NOT LOOKED AT (unreachable, skipped)" : "unreachable") << "\n";
    } else {
      out << h.virt_type << ", " << plural(h.domains, "domain") << ", "
          << plural(h.networks, "network") << ", " << plural(h.volumes, "volume")
          << (h.scoped ? ", the targets' read in " : ", read in ") << secs << "\n";
    }
  }
  if (!plan.targets.empty()) {
    out << "  targets:";
    for (const auto& t : plan.targets) out << " " << t;
    out << " (and what they depend on)\n";
  }
  for (const auto& w : plan.warnings) {
    out << (o.colour ? "\033[1;33mwarning:\033[0m " : "warning: ") << w << "\n";
  }
  if (!plan.images.empty()) out << "\n";
  for (const auto& im : plan.images) out << "  " << image_line(im) << "\n";
  // Grouped by host, in the file's host order; within a host, in the order they will happen.
  for (const auto& h : plan.hosts) {
    bool first = true;
    for (const auto& c : plan.changes) {
      if (c.host != h.name) continue;
      if (first) out << "\nhost " << h.name << " (" << h.shown_uri() << ")\n";
      first = false;
      render_change(out, plan, c, o, !c.parent || *c.parent == c.address ? "  " : "      ",
                    documents);
    }
  }
  out << "\n" << summary_line(plan) << "\n";
  return out.str();
}

// The cloud-init documents of a markdown plan, each in a diff block: a new document as added
// lines, a changed one as its unified diff. VMs with the same change share one block.
std::string markdown_documents(const Plan& plan, const ViewOptions& o) {
  struct Block {
    std::vector<std::string> addresses;
    std::string title, body;
  };
  std::vector<Block> blocks;
  for (const auto& c : plan.changes) {
    for (const auto& original : c.attributes) {
      if (!original.document) continue;
      const AttributeChange a = revealed(plan, c, original, o);
      std::string body;
      std::string what = a.name;
      if (const auto diff = document_diff(c, a)) {
        body = diff->empty() ? "  (changed only in values from sensitive variables)\n" : *diff;
      } else {
        std::istringstream lines(absent(a.after) ? std::string() : value_text(a.after));
        std::string line;
        while (std::getline(lines, line)) body += "+" + line + "\n";
        what += c.action == Action::Create ? "" : " (not recorded before: shown whole)";
      }
      if (a.forces_replacement) what += ", forces replacement";
      auto same = std::find_if(blocks.begin(), blocks.end(),
                               [&](const Block& b) { return b.title == what && b.body == body; });
      if (same == blocks.end()) {
        blocks.push_back({{}, what, body});
        same = blocks.end() - 1;
      }
      same->addresses.push_back(c.address.str() + " on " + c.host);
    }
  }
  if (blocks.empty()) return "";
  std::ostringstream out;
  out << "#### cloud-init\n\n";
  for (const auto& b : blocks) {
    std::string who;
    for (const auto& a : b.addresses) who += (who.empty() ? "" : ", ") + ("<code>" + a + "</code>");
    // A fence longer than any run of backticks in the document, so none can end it early.
    std::size_t run = 0, longest = 0;
    for (char ch : b.body) longest = std::max(longest, run = ch == '`' ? run + 1 : 0);
    const std::string fence(std::max<std::size_t>(3, longest + 1), '`');
    out << "<details open><summary>" << who << ": " << b.title << "</summary>\n\n"
        << fence << "diff\n"
        << b.body << fence << "\n\n</details>\n\n";
  }
  return out.str();
}

}  // namespace

std::string render_human(const Plan& plan, const ViewOptions& o) {
  return render_human(plan, o, true);
}

nlohmann::ordered_json render_json(const Plan& plan, const ViewOptions& o) {
  using oj = nlohmann::ordered_json;
  oj out;
  out["format_version"] = Plan::kFormatVersion;
  out["cluster"] = plan.cluster;
  out["config_file"] = plan.config_file;
  out["fingerprint"] = plan.fingerprint;
  const auto s = plan.summary();
  out["summary"] = {{"add", s.add},
                    {"change", s.change},
                    {"replace", s.replace},
                    {"destroy", s.destroy},
                    {"move", s.move},
                    {"adopt", s.adopt},
                    {"has_changes", plan.has_changes()}};
  out["hosts"] = oj::array();
  for (const auto& h : plan.hosts) {
    out["hosts"].push_back({{"name", h.name},
                            {"uri", h.shown_uri()},
                            {"reachable", h.reachable},
                            {"skipped", h.skipped},
                            {"error", h.error},
                            {"virt_type", h.virt_type},
                            {"kvm", h.kvm},
                            {"domains", h.domains},
                            {"networks", h.networks},
                            {"volumes", h.volumes},
                            {"api_calls", h.api_calls},
                            {"seconds", h.seconds}});
    if (h.scoped) out["hosts"].back()["scoped"] = true;
  }
  out["warnings"] = plan.warnings;
  out["targets"] = plan.targets;
  out["destroy"] = plan.destroy;
  out["changes"] = oj::array();
  for (const auto& c : plan.changes) {
    oj attrs = oj::array();
    for (const auto& original : c.attributes) {
      const AttributeChange a = revealed(plan, c, original, o);
      const bool hide = a.sensitive && !o.show_sensitive;
      oj attr = {{"name", a.name},
                 {"before", hide && !absent(a.before) ? oj(kSensitiveMask) : value_json(a.before)},
                 {"after", hide && !absent(a.after) ? oj(kSensitiveMask) : value_json(a.after)},
                 {"forces_replacement", a.forces_replacement},
                 {"sensitive", a.sensitive},
                 {"drift", a.drift},
                 {"document", a.document}};
      if (a.document) {
        const auto diff = document_diff(c, a);
        attr["diff"] = diff ? oj(*diff) : oj(nullptr);
      }
      attrs.push_back(std::move(attr));
    }
    out["changes"].push_back(
        {{"address", c.address.str()},
         {"kind", to_string(c.kind())},
         {"host", c.host},
         {"from_host", c.action == Action::Move && c.observed ? oj(c.observed->host) : oj(nullptr)},
         {"parent", c.parent ? oj(c.parent->str()) : oj(nullptr)},
         {"action", to_string(c.action)},
         {"disruption", to_string(c.disruption)},
         {"destroys_data", c.destroys_data},
         {"drift", std::any_of(c.attributes.begin(), c.attributes.end(),
                               [](const AttributeChange& a) { return a.drift; })},
         {"reason", c.reason},
         {"attributes", attrs}});
  }
  out["images"] = oj::array();
  for (const auto& im : plan.images) {
    out["images"].push_back({{"name", im.name},
                             {"source", im.source},
                             {"checksum", im.checksum.empty() ? oj(nullptr) : oj(im.checksum)},
                             {"volume", im.volume},
                             {"cached", im.cached},
                             {"size", im.size},
                             {"upload_to", im.upload_to},
                             {"present_on", im.present_on},
                             {"partial_on", im.partial_on}});
  }
  return out;
}

std::string render_markdown(const Plan& plan, const ViewOptions& o) {
  ViewOptions plain = o;
  plain.colour = false;
  std::ostringstream out;
  out << "### kumo plan: `" << plan.cluster << "`\n\n";
  out << "**" << summary_line(plan) << "**\n\n";
  for (const auto& w : plan.warnings) out << "> :warning: " << w << "\n";
  if (!plan.warnings.empty()) out << "\n";
  for (const auto& im : plan.images)
    out << "- `image." << im.name << "`: " << image_line(im).substr(8 + im.name.size()) << "\n";
  if (!plan.images.empty()) out << "\n";
  if (plan.has_changes()) {
    out << "| | resource | host | action | disruption |\n|---|---|---|---|---|\n";
    for (const auto& c : plan.changes) {
      if (c.parent) continue;
      out << "| `" << symbol(c.action) << "` | `" << c.address.str() << "` | " << c.host << " | "
          << to_string(c.action) << (c.destroys_data ? " **(destroys data)**" : "") << " | "
          << to_string(c.disruption) << " |\n";
    }
    out << "\n";
  }
  // In a diff block, GitHub colours lines by their first character: move each symbol there.
  out << markdown_documents(plan, o);
  std::istringstream human(render_human(plan, plain, false));
  std::string line, body;
  while (std::getline(human, line)) {
    const auto first = line.find_first_not_of(' ');
    if (first != std::string::npos && first > 0 && line.size() > first + 1 &&
        (line.compare(first, 2, "+ ") == 0 || line.compare(first, 2, "- ") == 0 ||
         line.compare(first, 2, "~ ") == 0 || line.compare(first, 4, "-/+ ") == 0)) {
      const char mark = line[first] == '~' ? '!' : line[first];
      line = std::string(1, mark) + line.substr(1);
    }
    body += line + "\n";
  }
  out << "<details><summary>Full plan</summary>\n\n```diff\n" << body << "```\n\n</details>\n";
  return out.str();
}

}  // namespace kumo::views
