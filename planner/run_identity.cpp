#include "planner/run_identity.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace kumo {
namespace {

// The first line of a small file, without its newline; "" when it cannot be read.
std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

std::string read_link(const std::string& path) {
  std::vector<char> buf(256);
  const ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : "";
}

std::string hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

}  // namespace

std::optional<std::uint64_t> stat_start_time(const std::string& stat) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return std::nullopt;
  }
  if (field.empty() || field.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Machine local_machine(const std::string& root) {
  const std::string base = root.empty() || root.back() == '/' ? root : root + "/";
  Machine m;
  m.hostname = hostname();
  m.machine_id = first_line(base + "etc/machine-id");
  m.boot_id = first_line(base + "proc/sys/kernel/random/boot_id");
  m.pid_ns = read_link(base + "proc/self/ns/pid");
  m.start_time = [base](long pid) -> std::optional<std::uint64_t> {
    if (pid <= 0) return std::nullopt;
    return stat_start_time(first_line(base + "proc/" + std::to_string(pid) + "/stat"));
  };
  return m;
}

void identify(LockHolder& holder, const Machine& here, long pid) {
  holder.machine = here.hostname;
  holder.machine_id = here.machine_id;
  holder.boot_id = here.boot_id;
  holder.pid_ns = here.pid_ns;
  holder.pid = pid;
  const auto started = here.start_time ? here.start_time(pid) : std::nullopt;
  holder.start_time = started.value_or(0);
}

bool holder_is_stale(const LockHolder& holder, const Machine& here) {
  if (holder.pid <= 0 || !here.start_time) return false;
  if (holder.machine_id.empty()) {
    // Written by a kumo from before run identities: the hostname and the pid are all there is.
    return holder.machine == here.hostname && !here.start_time(holder.pid);
  }
  if (here.machine_id.empty() || holder.machine_id != here.machine_id) return false;
  // Another boot of this machine: every process of the holder's boot is gone.
  if (!holder.boot_id.empty() && !here.boot_id.empty() && holder.boot_id != here.boot_id)
    return true;
  // Its pids are not ours to look at (another container on this kernel): never certain.
  if (holder.pid_ns != here.pid_ns) return false;
  const auto started = here.start_time(holder.pid);
  if (!started) return true;
  return holder.start_time != 0 && *started != holder.start_time;
}

}  // namespace kumo
