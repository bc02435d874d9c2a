#include "cli/views/hosts_view.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include "cli/views/apply_view.h"

namespace kumo::views {
namespace {

using oj = nlohmann::ordered_json;

template <typename T>
oj or_null(bool known, const T& value) {
  return known ? oj(value) : oj(nullptr);
}

oj text_or_null(const std::string& text) {
  return text.empty() ? oj(nullptr) : oj(text);
}

oj pool_json(const PoolReport& p) {
  return {{"name", p.name},
          {"found", p.found},
          {"active", p.active},
          {"capacity_bytes", or_null(p.found && p.active, p.capacity)},
          {"free_bytes", or_null(p.found && p.active, p.free)}};
}

oj admit_json(const AdmitReport& a) {
  const HostRoom& r = a.room;
  return {{"vcpus", r.cpus_free()},
          {"memory_bytes", r.memory_free()},
          {"capacity",
           {{"vcpus", static_cast<int>(r.cpu_capacity)}, {"memory_bytes", r.memory_capacity}}},
          {"used", {{"vcpus", r.cpus_used}, {"memory_bytes", r.memory_used}}},
          {"cpu_overcommit", a.cpu_overcommit},
          {"memory_overcommit", a.memory_overcommit}};
}

// Every field of a host, null where an unreachable host cannot say.
oj host_json(const HostInfo& h) {
  const bool up = h.reachable;
  const HostFacts& f = h.facts;
  const bool qemu = f.hypervisor == "QEMU";
  return {{"name", h.name},
          {"uri", h.uri},
          {"reachable", up},
          {"drain", h.drain},
          {"error", up ? oj(nullptr) : oj(h.error)},
          {"hostname", or_null(up, f.hostname)},
          {"arch", up ? text_or_null(f.arch) : nullptr},
          {"libvirt_version", up ? text_or_null(f.libvirt_version) : nullptr},
          {"hypervisor", up ? text_or_null(f.hypervisor) : nullptr},
          {"hypervisor_version", up ? text_or_null(f.hypervisor_version) : nullptr},
          {"qemu_version", up && qemu ? text_or_null(f.hypervisor_version) : nullptr},
          {"kvm", or_null(up, f.kvm)},
          {"kvm_reason", up && !f.kvm ? text_or_null(f.kvm_reason) : nullptr},
          {"virt_type", up ? oj(h.virt_type) : nullptr},
          {"virt_type_error", up ? text_or_null(h.virt_type_error) : nullptr},
          {"cpu_model", up ? text_or_null(f.cpu_model) : nullptr},
          {"cpu_features", or_null(up, f.cpu_features)},
          {"nested", up && f.nested ? oj(*f.nested) : nullptr},
          {"uefi", up && f.uefi ? oj(*f.uefi) : nullptr},
          {"secure_boot", up && f.secure_boot ? oj(*f.secure_boot) : nullptr},
          {"tpm", up && f.tpm ? oj(*f.tpm) : nullptr},
          {"cpus", or_null(up, f.cpus)},
          {"memory_bytes", or_null(up, f.memory)},
          {"memory_free_bytes", or_null(up && f.free_memory > 0, f.free_memory)},
          {"pool", up ? pool_json(h.pool) : nullptr},
          {"vms", or_null(up, h.vms)},
          {"admit", up ? admit_json(h.admit) : nullptr}};
}

// "4", "1.5"
std::string number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
  return out;
}

std::string pool_cell(const PoolReport& p) {
  if (!p.found) return "no pool " + p.name;
  if (!p.active) return p.name + " inactive";
  return human_bytes(p.free) + " of " + human_bytes(p.capacity);
}

std::vector<std::string> table_row(const HostInfo& h) {
  if (!h.reachable) return {h.name, "?", "-", "-", "unreachable", "-", "-", "-"};
  const HostFacts& f = h.facts;
  const std::string memory = f.free_memory > 0
                                 ? human_bytes(f.free_memory) + " of " + human_bytes(f.memory)
                                 : "? of " + human_bytes(f.memory);
  const HostRoom& room = h.admit.room;
  return {h.name,
          f.kvm ? "yes" : "no",
          h.virt_type,
          std::to_string(f.cpus),
          memory,
          pool_cell(h.pool),
          std::to_string(h.vms.size()),
          h.drain
              ? std::string("none (drained)")
              : std::to_string(room.cpus_free()) + " vCPUs, " + human_bytes(room.memory_free())};
}

// `text` in lines of at most `width` columns (words longer than that stay whole), each after
// `indent`.
std::string wrapped(const std::string& text, const std::string& indent, std::size_t width = 100) {
  std::istringstream words(text);
  std::string out, line, word;
  while (words >> word) {
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      out += indent + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += indent + line + "\n";
  return out;
}

// The lines under the table: what did not fit in a column.
std::string host_details(const HostInfo& h) {
  std::string out = h.name + "  " + h.uri + "\n";
  const std::string indent(4, ' ');
  if (h.drain) {
    out += wrapped(
        "drained (drain: true): nothing new is placed here; VMs without a host: pin "
        "move to other hosts",
        indent);
  }
  if (!h.reachable) return out + wrapped("unreachable: " + h.error, indent);
  const HostFacts& f = h.facts;
  std::string versions = "libvirt " + f.libvirt_version;
  if (!f.hypervisor.empty())
    versions +=
        ", " + f.hypervisor + (f.hypervisor_version.empty() ? "" : " " + f.hypervisor_version);
  out += wrapped(versions + "; overcommit: cpu " + number(h.admit.cpu_overcommit) + ", memory " +
                     number(h.admit.memory_overcommit),
                 indent);
  std::string cpu = "CPU " + (f.cpu_model.empty() ? std::string("(no model named)") : f.cpu_model);
  if (!f.cpu_features.empty()) cpu += " (" + join(f.cpu_features, ", ") + ")";
  cpu += "; nested virtualization: ";
  cpu += f.nested ? (*f.nested ? "yes" : "no") : "unknown";
  out += wrapped(cpu, indent);
  auto yes_no = [](const std::optional<bool>& b, const char* missing) {
    return !b   ? std::string("unknown")
           : *b ? std::string("yes")
                : std::string("no (") + missing + ")";
  };
  out += wrapped("machines: UEFI " + yes_no(f.uefi, "install ovmf") + "; secure boot " +
                     yes_no(f.secure_boot, "install ovmf") + "; TPM " +
                     yes_no(f.tpm, "install swtpm, swtpm-tools"),
                 indent);
  if (!f.kvm) out += wrapped("no KVM: " + f.kvm_reason, indent);
  if (!h.virt_type_error.empty()) out += wrapped(h.virt_type_error, indent);
  if (!h.vms.empty()) out += wrapped("VMs: " + join(h.vms, ", "), indent);
  return out;
}

}  // namespace

std::string render_hosts_human(const HostsReport& report) {
  std::vector<std::vector<std::string>> table = {
      {"HOST", "KVM", "VIRT", "CPUS", "MEMORY FREE", "POOL FREE", "VMS", "ADMITS"}};
  for (const auto& h : report.hosts) table.push_back(table_row(h));
  std::string out = aligned(table);
  out +=
      "\nADMITS: the vCPUs and memory placement still gives new VMs, under the host's overcommit\n";
  for (const auto& h : report.hosts) out += "\n" + host_details(h);
  return out;
}

nlohmann::ordered_json render_hosts_json(const HostsReport& report) {
  oj hosts = oj::array();
  for (const auto& h : report.hosts) hosts.push_back(host_json(h));
  return {{"schema_version", kHostsSchemaVersion},
          {"cluster", report.cluster},
          {"hosts", std::move(hosts)}};
}

}  // namespace kumo::views
