#include "planner/cloudinit.h"

#include "planner/config/sensitive.h"

#include <yaml-cpp/yaml.h>

namespace kumo {
namespace {

// A literal block (|) gives back exactly its text only when the text is printable lines that
// end in one newline, and the first line does not start with a space (yaml-cpp writes no
// indentation indicator). File contents that are such lines read best that way.
bool literal_exact(const std::string& s) {
  if (s.size() < 2 || s.back() != '\n' || s[s.size() - 2] == '\n') return false;
  if (s[0] == ' ' || s[0] == '\t' || s[0] == '\n') return false;
  for (unsigned char c : s) {
    if (c == '\n' || c == '\t') continue;
    if (c < 0x20 || c == 0x7f) return false;  // \r and other controls: escaped instead
  }
  // A line of only spaces or tabs may be read as an empty line: escaped instead.
  size_t start = 0;
  while (start < s.size()) {
    const size_t end = s.find('\n', start);
    const std::string line = s.substr(start, end - start);
    if (!line.empty() && line.find_first_not_of(" \t") == std::string::npos) return false;
    start = end + 1;
  }
  return true;
}

// A string YAML would read as another type (YAML 1.1 too: cloud-init reads with PyYAML).
bool looks_typed(const std::string& s) {
  if (s.empty()) return true;
  static const char* words[] = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"};
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* w : words) {
    if (lower == w) return true;
  }
  const char c = s[0];
  return std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.';
}

// A one-line string yaml-cpp could write plain but that would not read back as itself: YAML 1.1's
// merge and value keys ("<<", "="), whitespace at either end, control characters.
bool plain_inexact(const std::string& s) {
  if (s == "<<" || s == "=") return true;
  if (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t') return true;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Multi-line text as a literal block when that is exact, else double-quoted (escapes are
// exact); one-line text plain when that is exact, else double-quoted. The common cases are
// written as before, so documents (and the hashes kumo records) do not change for them.
void emit_string(YAML::Emitter& out, const std::string& s) {
  if (s.find('\n') != std::string::npos) {
    if (literal_exact(s)) {
      out << YAML::Literal << s;
    } else {
      out << YAML::DoubleQuoted << s;
    }
  } else if (looks_typed(s) || plain_inexact(s)) {
    out << YAML::DoubleQuoted << s;
  } else {
    out << s;
  }
}

void emit(YAML::Emitter& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (auto& [k, item] : v.items()) {
        out << YAML::Key;
        emit_string(out, k);
        out << YAML::Value;
        emit(out, item);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : v) emit(out, item);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      emit_string(out, v.get_ref<const std::string&>());
      break;
    case nlohmann::json::value_t::boolean:
      out << v.get<bool>();
      break;
    case nlohmann::json::value_t::number_integer:
      out << v.get<long long>();
      break;
    case nlohmann::json::value_t::number_unsigned:
      out << v.get<unsigned long long>();
      break;
    case nlohmann::json::value_t::number_float:
      out << v.get<double>();
      break;
    default:
      out << YAML::Null;
  }
}

// YAML document (a #cloud-config the user wrote) -> JSON, keeping YAML 1.2 core types.
nlohmann::json from_yaml(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = from_yaml(it->second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& item : n) a.push_back(from_yaml(item));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() != "?") return s;
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      if (s == "null" || s == "~") return nullptr;
      if (!(s.size() > 1 && s[0] == '0')) {
        try {
          size_t used = 0;
          long long i = std::stoll(s, &used);
          if (used == s.size()) return i;
        } catch (const std::exception&) {
        }
      }
      return s;
    }
    default:
      return nullptr;
  }
}

void append(nlohmann::json& doc, const char* key, const nlohmann::json& items) {
  if (items.empty()) return;
  if (!doc.contains(key) || !doc[key].is_array()) doc[key] = nlohmann::json::array();
  for (const auto& i : items) doc[key].push_back(i);
}

}  // namespace

std::string to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

std::string render_user_data(const CloudInitConfig& ci) {
  const bool cloud_config = !ci.user_data || ci.user_data->rfind("#cloud-config", 0) == 0;
  if (!cloud_config) return *ci.user_data;  // a script or MIME document, used as-is
  nlohmann::json doc = nlohmann::json::object();
  if (ci.user_data) {
    const YAML::Node parsed = YAML::Load(*ci.user_data);  // validated when loaded
    if (parsed.IsMap()) doc = from_yaml(parsed);
  }
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : ci.ssh_authorized_keys) keys.push_back(k);
  append(doc, "ssh_authorized_keys", keys);
  nlohmann::json packages = nlohmann::json::array();
  for (const auto& p : ci.packages) packages.push_back(p);
  append(doc, "packages", packages);
  append(doc, "runcmd", ci.runcmd);
  append(doc, "write_files", ci.write_files);
  append(doc, "users", ci.users);
  if (doc.empty()) return "#cloud-config\n{}\n";
  return "#cloud-config\n" + to_yaml(doc);
}

std::string render_user_data_shown(const CloudInitConfig& shown) {
  try {
    return render_user_data(shown);
  } catch (const std::exception&) {
    return shown.user_data.value_or("");
  }
}

std::string render_meta_data(const std::string& instance_id, const std::string& hostname) {
  return to_yaml({{"instance-id", instance_id}, {"local-hostname", hostname}});
}

std::string render_network_config(const CloudInitConfig& ci,
                                  const std::vector<std::string>& dhcp_macs,
                                  const std::vector<StaticAddress>& statics, bool masked) {
  if (!ci.network_config.is_null()) return to_yaml(ci.network_config);
  if (statics.empty()) return "";
  auto show = [&](const std::string& text) { return masked ? kSensitiveMask : text; };
  nlohmann::json ethernets = nlohmann::json::object();
  int n = 0;
  for (const auto& s : statics) {
    nlohmann::json eth = {
        {"match", {{"macaddress", show(s.mac)}}},
        {"addresses", nlohmann::json::array({show(s.ip.str() + "/" + std::to_string(s.prefix))})}};
    if (s.gateway) {
      eth["routes"] = nlohmann::json::array({{{"to", "default"}, {"via", show(s.gateway->str())}}});
    }
    if (s.dns) {
      eth["nameservers"] = {{"addresses", nlohmann::json::array({show(s.dns->str())})}};
      if (s.search_domain)
        eth["nameservers"]["search"] = nlohmann::json::array({show(*s.search_domain)});
    }
    ethernets["nic" + std::to_string(n++)] = eth;
  }
  for (const auto& mac : dhcp_macs) {
    ethernets["nic" + std::to_string(n++)] = {{"match", {{"macaddress", show(mac)}}},
                                              {"dhcp4", true}};
  }
  return to_yaml({{"version", 2}, {"ethernets", ethernets}});
}

}  // namespace kumo
