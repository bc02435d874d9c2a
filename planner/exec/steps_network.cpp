// Network steps: defined (or redefined) whole, or changed live: DHCP and DNS host entries are
// updated in the running network so guests keep their leases and links. Read back after.
// A network kumo makes gets a UUID chosen here, recorded on the host (ownership.h) before the
// network is defined with it: an apply cut short leaves at worst a record of nothing, never a
// network kumo would not recognise as its own.
#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

#include "planner/exec/steps.h"
#include "planner/exec/verify.h"
#include "providers/ownership.h"

namespace kumo::exec {
namespace {

bool same_dhcp(const NetworkDhcpHost& a, const ObservedDhcpHost& b) {
  return a.mac == b.mac && a.ip == b.ip && a.name == b.name;
}

// The host entries to take out of and put into the running network.
NetworkHostsChange host_entries_change(const NetworkSpec& spec, const ObservedNetwork& now) {
  NetworkHostsChange change;
  for (const auto& h : now.dhcp_hosts) {
    if (std::none_of(spec.dhcp_hosts.begin(), spec.dhcp_hosts.end(),
                     [&](const NetworkDhcpHost& w) { return same_dhcp(w, h); }))
      change.dhcp_remove.push_back({h.mac, h.ip, h.name});
  }
  for (const auto& w : spec.dhcp_hosts) {
    if (std::none_of(now.dhcp_hosts.begin(), now.dhcp_hosts.end(),
                     [&](const ObservedDhcpHost& h) { return same_dhcp(w, h); }))
      change.dhcp_add.push_back(w);
  }
  const auto want_dns = dns_entries(spec);
  for (const auto& h : now.dns_hosts) {
    if (std::find(want_dns.begin(), want_dns.end(), h) == want_dns.end())
      change.dns_remove.push_back(h);
  }
  for (const auto& w : want_dns) {
    if (std::find(now.dns_hosts.begin(), now.dns_hosts.end(), w) == now.dns_hosts.end())
      change.dns_add.push_back(w);
  }
  return change;
}

std::vector<std::string> network_differences(const NetworkSpec& spec, const ObservedNetwork& n) {
  std::vector<std::string> diffs;
  auto expect = [&](const std::string& field, const std::string& want, const std::string& got) {
    if (want != got) diffs.push_back(field + " is " + quoted(got) + ", expected " + quoted(want));
  };
  if (!n.active) diffs.push_back("it is not active");
  if (!n.autostart) diffs.push_back("it does not autostart");
  expect("bridge", spec.bridge, n.bridge);
  if (spec.mode == "bridge") return diffs;
  expect("address", spec.address + "/" + std::to_string(spec.prefix),
         n.ip + "/" + std::to_string(n.prefix));
  std::set<std::string> want, got;
  for (const auto& h : spec.dhcp_hosts) want.insert(h.mac + " " + h.ip + " " + h.name);
  for (const auto& h : n.dhcp_hosts) got.insert(h.mac + " " + h.ip + " " + h.name);
  if (want != got) diffs.push_back("its DHCP host entries differ");
  auto want_dns = dns_entries(spec), got_dns = n.dns_hosts;
  auto order = [](const NetworkDnsHost& a, const NetworkDnsHost& b) {
    return a.ip != b.ip ? a.ip < b.ip : a.names < b.names;
  };
  std::sort(want_dns.begin(), want_dns.end(), order);
  std::sort(got_dns.begin(), got_dns.end(), order);
  if (want_dns != got_dns) diffs.push_back("its DNS host entries differ");
  return diffs;
}

void verify_network(ExecContext& ctx, const std::string& host, HostSession& s,
                    const NetworkSpec& spec) {
  const auto n = s.network(spec.name);
  const std::string what = ctx.label(host) + ": network " + spec.name;
  if (!n) throw HostError(what + " is missing right after it was defined");
  const auto diffs = network_differences(spec, *n);
  if (!diffs.empty()) throw HostError(what + " read back differs: " + join(diffs));
}

// A random (version 4) UUID.
std::string new_uuid() {
  std::random_device rd;
  unsigned char b[16];
  for (auto& x : b) x = static_cast<unsigned char>(rd());
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

// Records the network's UUID on the host, then defines it with that UUID.
void define_recorded(ExecContext& ctx, const ResourceChange& c, HostSession& s,
                     const NetworkSpec& wanted) {
  const std::string& host = c.host;
  NetworkSpec spec = wanted;
  spec.uuid = new_uuid();
  const std::string record = network_record_name(ctx.plan().cluster, c.address.name, spec.uuid);
  bool created = false;
  {
    std::lock_guard<std::mutex> lock(ctx.pool_mutex(host));
    created = s.create_volume_exclusive(record, "");
  }
  if (!created)
    throw HostError(ctx.label(host) + ": volume " + record + " exists already; plan again");
  try {
    s.define_network(spec);
  } catch (...) {
    // No network has the UUID: the record would only be left over. (If this fails too, or the
    // run is killed before, the next plan lists the record as left over and removes it.)
    try {
      ctx.delete_volume(host, record);
    } catch (const std::exception&) {
    }
    throw;
  }
}

// Deletes a network verified as this cluster's, then kumo's record of it.
void delete_recorded(ExecContext& ctx, const ResourceChange& c, HostSession& s,
                     const ObservedNetwork& net) {
  s.delete_network(net.name);
  ctx.delete_volume(c.host, network_record_name(ctx.plan().cluster, c.address.name, net.uuid));
}

// Removes kumo's record of a network that was never made, once sure no network has its UUID.
void delete_stale_record(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  HostSession& s = ctx.session(t.host);
  const std::string& uuid = c.observed->uuid;
  const auto net = s.network(c.observed->name);
  if (net && net->uuid == uuid) {
    throw HostError(c.address.str() + " on " + ctx.label(t.host) + ": network " + net->name +
                    " now has the UUID of the record the plan would remove; plan again");
  }
  ctx.delete_volume(t.host, network_record_name(ctx.plan().cluster, c.address.name, uuid));
}

}  // namespace

std::string apply_network(ExecContext& ctx, const Task& t) {
  const ResourceChange& c = *t.change;
  const NetworkSpec& spec = *c.network();
  HostSession& s = ctx.session(c.host);
  if (c.action == Action::Update) {
    if (!verified_network(ctx, c, spec.name))
      throw HostError(ctx.label(c.host) + ": network " + spec.name + " is gone; plan again");
    s.start_network(spec.name, true);
    const auto now = s.network(spec.name);
    if (!now)
      throw HostError(ctx.label(c.host) + ": network " + spec.name + " is gone; plan again");
    const NetworkHostsChange change = host_entries_change(spec, *now);
    if (!change.empty()) s.update_network_hosts(spec.name, change);
  } else {
    if (c.action == Action::Replace) {
      if (const auto old = verified_network(ctx, c, spec.name)) delete_recorded(ctx, c, s, *old);
    } else {
      require_no_network(ctx, c, spec.name);
    }
    define_recorded(ctx, c, s, spec);
  }
  verify_network(ctx, c.host, s, spec);
  return "";
}

std::string delete_network(ExecContext& ctx, const Task& t) {
  if (t.change->observed && t.change->observed->state == kStaleNetworkRecord) {
    delete_stale_record(ctx, t);
    return "";
  }
  const std::string name = t.change->observed_name();
  HostSession& s = ctx.session(t.host);
  if (const auto net = verified_network(ctx, *t.change, name))
    delete_recorded(ctx, *t.change, s, *net);
  if (s.network(name))
    throw HostError(ctx.label(t.host) + ": network " + name + " is still there after deleting it");
  return "";
}

}  // namespace kumo::exec
