#include "providers/guest.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace kumo {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string base64_decode(const std::string& b64) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text;
  unsigned int buffer = 0;
  int bits = 0;
  for (char ch : b64) {
    const auto pos = alphabet.find(ch);
    if (pos == std::string::npos) continue;
    buffer = (buffer << 6) | static_cast<unsigned int>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      text += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return text;
}

// A small file of the guest through the agent's file API (no process started in the guest):
// nullopt when it does not exist. Throws HostError when the agent cannot do it at all.
}  // namespace

void ping_agent(HostSession& session, const std::string& domain, std::chrono::seconds timeout) {
  session.agent_command(domain, {{"execute", "guest-ping"}}, timeout);
}

std::optional<std::string> read_guest_file(HostSession& session, const std::string& domain,
                                           const std::string& path) {
  json opened;
  try {
    opened = session.agent_command(
        domain, {{"execute", "guest-file-open"}, {"arguments", {{"path", path}, {"mode", "r"}}}},
        std::chrono::seconds(10));
  } catch (const HostError& e) {
    if (std::string(e.what()).find("No such file") != std::string::npos) return std::nullopt;
    throw;
  }
  const json handle = opened.is_number() ? opened : opened.value("return", json());
  auto close = [&] {
    session.agent_command(domain,
                          {{"execute", "guest-file-close"}, {"arguments", {{"handle", handle}}}},
                          std::chrono::seconds(10));
  };
  std::string text;
  try {
    for (int i = 0; i < 16; ++i) {  // at most 1 MiB
      const json chunk = session.agent_command(
          domain,
          {{"execute", "guest-file-read"}, {"arguments", {{"handle", handle}, {"count", 65536}}}},
          std::chrono::seconds(10));
      text += base64_decode(chunk.value("buf-b64", ""));
      if (chunk.value("eof", true) || chunk.value("count", 0) == 0) break;
    }
  } catch (const HostError&) {
    // The agent keeps a handle open until it is closed: one per failed read would pile up in the
    // guest on every readiness poll.
    try {
      close();
    } catch (const HostError&) {
    }
    throw;
  }
  close();
  return text;
}

namespace {

// `cloud-init status --long` run in the guest: for guests whose agent has no file API.
CloudInitStatus exec_status(HostSession& session, const std::string& domain, bool wait,
                            std::chrono::seconds timeout, std::chrono::milliseconds poll) {
  json args = {{"path", "/usr/bin/cloud-init"},
               {"arg", wait ? json::array({"status", "--wait", "--long"})
                            : json::array({"status", "--long"})},
               {"capture-output", true}};
  const json started = session.agent_command(
      domain, {{"execute", "guest-exec"}, {"arguments", args}}, std::chrono::seconds(10));
  const int pid = started.value("pid", -1);
  if (pid < 0) throw HostError("guest agent of " + domain + " gave no pid for cloud-init status");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const json st = session.agent_command(
        domain, {{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}},
        std::chrono::seconds(10));
    if (st.value("exited", false)) {
      CloudInitStatus out;
      out.exitcode = st.value("exitcode", -1);
      const std::string text = base64_decode(st.value("out-data", ""));
      static const std::regex status_line(R"((^|\n)\.*status:\s*([^\n]+))");
      std::smatch m;
      out.status = std::regex_search(text, m, status_line) ? m[2].str() : "unknown";
      while (!out.status.empty() && std::isspace(static_cast<unsigned char>(out.status.back())))
        out.status.pop_back();
      static const std::regex errors(R"((^|\n)(detail|errors):\s*\n?([^\n]*))");
      if (std::regex_search(text, m, errors)) out.detail = m[3].str();
      if (!out.done() && out.detail.empty()) out.detail = text.substr(0, 400);
      return out;
    }
    if (Clock::now() > deadline) {
      CloudInitStatus out;
      out.status = wait ? "running" : "unknown (no answer in time)";
      return out;
    }
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace

// cloud-init writes /run/cloud-init/result.json when its last stage has finished (in /run: gone
// at every reboot), with the errors of the run: the same file `cloud-init status` reads. Reading
// it through the agent's file API costs the guest nothing, where starting `cloud-init status`
// (Python) in a guest that is still booting slows that boot down, badly under emulation.
CloudInitStatus cloud_init_status(HostSession& session, const std::string& domain, bool wait,
                                  std::chrono::seconds timeout, std::chrono::milliseconds poll) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::optional<std::string> result;
    try {
      result = read_guest_file(session, domain, "/run/cloud-init/result.json");
    } catch (const HostError& e) {
      const std::string what = e.what();
      // An agent that refuses file access (guest-file-* disabled): ask cloud-init itself.
      if (what.find("disabled") != std::string::npos ||
          what.find("not supported") != std::string::npos ||
          what.find("CommandNotFound") != std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now());
        return exec_status(session, domain, wait, std::max(left, std::chrono::seconds(1)), poll);
      }
      throw;
    }
    if (result) {
      CloudInitStatus out;
      const json j = json::parse(*result, nullptr, false);
      const json v1 = j.is_object() ? j.value("v1", json::object()) : json();
      if (!v1.is_object()) {
        out.status = "unknown";
        out.detail = "unreadable /run/cloud-init/result.json: " + result->substr(0, 200);
        return out;
      }
      const json errors = v1.value("errors", json::array());
      if (errors.empty()) {
        out.status = "done";
        out.exitcode = 0;
      } else {
        out.status = "error";
        out.exitcode = 1;
        for (const auto& e : errors) {
          out.detail +=
              (out.detail.empty() ? "" : "; ") + (e.is_string() ? e.get<std::string>() : e.dump());
        }
      }
      return out;
    }
    if (!wait || Clock::now() >= deadline) {
      CloudInitStatus out;
      out.status = "running";
      return out;
    }
    std::this_thread::sleep_for(poll);
  }
}

std::string host_key_of(const std::string& line) {
  std::istringstream in(line);
  std::string type, key;
  in >> type >> key;
  const bool known_type =
      type.rfind("ssh-", 0) == 0 || type.rfind("ecdsa-", 0) == 0 || type.rfind("sk-", 0) == 0;
  if (!known_type || key.size() < 16 ||
      key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
          std::string::npos) {
    return "";
  }
  return type + " " + key;
}

std::vector<std::string> guest_host_keys(HostSession& session, const std::string& domain) {
  std::vector<std::string> keys;
  for (const char* type : {"ed25519", "ecdsa", "rsa"}) {
    const auto text =
        read_guest_file(session, domain, std::string("/etc/ssh/ssh_host_") + type + "_key.pub");
    if (!text) continue;
    if (auto key = host_key_of(*text); !key.empty()) keys.push_back(key);
  }
  return keys;
}

std::vector<std::string> host_keys_from_console(const std::string& console) {
  static const std::string begin = "-----BEGIN SSH HOST KEY KEYS-----";
  static const std::string end = "-----END SSH HOST KEY KEYS-----";
  const auto b = console.rfind(begin);
  if (b == std::string::npos) return {};
  const auto e = console.find(end, b);
  if (e == std::string::npos) return {};  // cut short: trust no half of it
  std::vector<std::string> keys;
  std::istringstream in(console.substr(b + begin.size(), e - b - begin.size()));
  for (std::string line; std::getline(in, line);) {
    if (auto key = host_key_of(line); !key.empty()) keys.push_back(key);
  }
  return keys;
}

}  // namespace kumo
