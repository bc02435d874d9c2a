// Waiting until a VM is ready as its wait_for says: running, its agent answering, or cloud-init
// done (read through the agent). Diagnostics on failure: cloud-init's own words and the last
// lines of the serial console.
#include <thread>

#include "planner/exec/steps.h"
#include "planner/exec/verify.h"
#include "providers/guest.h"
#include "providers/ownership.h"

namespace kumo::exec {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::string line;
  for (char ch : text) {
    if (ch == '\n') {
      if (!line.empty()) out.push_back(line);
      line.clear();
    } else if (ch != '\r' && (static_cast<unsigned char>(ch) >= 32 || ch == '\t')) {
      line += ch;
    }
  }
  if (!line.empty()) out.push_back(line);
  return out;
}

struct Waited {
  bool ready = false;
  std::string last = "no answer yet";  // what was seen last, for the error
  std::string detail;                  // cloud-init's status when done
};

// Asks until ready, a final failure, or the deadline.
Waited poll_ready(ExecContext& ctx, const Task& t, Clock::time_point deadline) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  HostSession& s = ctx.session(c.host);
  Waited w;
  w.ready = vm.wait_for == WaitFor::None;
  while (!w.ready && Clock::now() < deadline) {
    const auto dom = s.domain(vm.name);
    if (!dom)
      throw HostError(ctx.label(c.host) + ": domain " + vm.name + " vanished while waiting");
    if (!dom->active) {
      w.last = "the domain stopped (" + dom->state + ")";
      break;
    }
    if (vm.wait_for == WaitFor::Running) {
      w.ready = true;
      break;
    }
    try {
      ping_agent(s, vm.name, std::chrono::seconds(2));
      if (vm.wait_for == WaitFor::Agent) {
        w.ready = true;
        break;
      }
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now());
      const CloudInitStatus st = cloud_init_status(
          s, vm.name, true, std::max(left, std::chrono::seconds(1)), ctx.options().poll);
      if (st.done()) {
        w.ready = true;
        w.detail = st.status;
        break;
      }
      if (st.status == "error" || st.status == "degraded done" || st.status == "disabled") {
        w.last = "cloud-init finished with status " + quoted(st.status) +
                 (st.detail.empty() ? "" : ": " + st.detail);
        break;
      }
      w.last = "cloud-init status " + quoted(st.status);
    } catch (const HostError& e) {
      w.last = e.what();  // the agent is not up yet, or the guest rebooted: ask again
    }
    ctx.sink().status(t,
                      w.last.rfind("cloud-init", 0) == 0 ? w.last : "no answer from the agent yet");
    std::this_thread::sleep_for(ctx.options().poll);
  }
  return w;
}

}  // namespace

std::string wait_vm(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const VmPayload& vm = *c.vm();
  const std::string wait_for = to_string(vm.wait_for);
  const auto start = Clock::now();
  HostSession& s = ctx.session(c.host);
  const Waited w = poll_ready(ctx, t, start + vm.wait_timeout);
  if (!w.ready) {
    std::string tail = s.tail_pool_file(serial_log_name(ctx.plan().cluster, vm.name), 2048);
    std::string msg = ctx.label(c.host) + ": " + c.address.str() + " is not ready (" + wait_for +
                      ") after " + std::to_string(static_cast<int>(since(start))) + " s: " + w.last;
    if (!tail.empty()) {
      auto lines = split_lines(tail);
      if (lines.size() > 12) lines.erase(lines.begin(), lines.end() - 12);
      msg += "\n  serial console (last lines):";
      for (const auto& l : lines) msg += "\n    " + l;
    }
    throw HostError(msg);
  }
  // Seen ready: recorded on the domain, so an interrupted apply is told from a finished one.
  require_our_domain(ctx, c, vm.name);  // never marks a domain that is not this VM
  // A moved copy stays marked unverified until the move commits (steps_move.cpp).
  const std::string moving_from =
      c.action == Action::Move && c.observed ? c.observed->host : std::string();
  s.set_domain_owner(vm.name, Ownership{ctx.plan().cluster, c.address.str(), vm.spec_hash,
                                        vm.record, true, moving_from});
  VmOutcome out;
  out.address = c.address.str();
  out.host = c.host;
  for (int i = 0; i < 10; ++i) {
    out.addresses = address_ips(s.addresses(vm.name));
    if (!out.addresses.empty() || vm.wait_for == WaitFor::None || vm.wait_for == WaitFor::Running)
      break;
    std::this_thread::sleep_for(ctx.options().poll);
  }
  out.ready = true;
  out.seconds = since(ctx.started());
  ctx.vm_ready(out);
  std::string result = w.detail.empty() ? wait_for : "cloud-init " + w.detail;
  if (!out.addresses.empty()) result += ", " + join(out.addresses);
  return result;
}

}  // namespace kumo::exec
