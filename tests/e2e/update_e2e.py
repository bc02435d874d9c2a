#!/usr/bin/python3
"""e2e: kumo apply of changes to a running cluster on the lab (hv3 over qemu+ssh).

The cluster is examples/web-cluster.yaml made to run on the lab, as apply_e2e.py makes it, with
web at count 3 (one per host), small guests, api with 1 vCPU and an idempotent runcmd that
formats (once) and mounts its data disk at /srv/data, and without db (it takes part in none of
the changes; leaving it out saves a boot). Then, one change at a time, each followed by
`kumo plan --detailed-exitcode` = 0 (converged):

  1. memory and vCPUs of web raised within the maximums: plan says update/live; no reboot
     (boot_id unchanged), MemTotal grows by about the difference (balloon), nproc = 2;
  2. api's memory raised beyond its maximum (2 x memory): plan says restart; api reboots
     (boot_id changes), has the new memory, /srv/data is mounted again with its file;
  3. api's root disk and data disk grown: `grow` steps; the guest sees the new sizes at once,
     without a reboot, and the file on the data disk is still there; then a second data disk
     (logs) for the running api: plan says live, it is hot-plugged (no reboot) and the guest
     finds it as /dev/disk/by-id/virtio-logs;
  4. dns_hosts added to, then edited in, network front: plan says update/live; every web guest
     resolves www.festival.internal to the new address; a guest pinging another one on the
     same host's front (ICMP, from python3 in the guest: the lab image has no ping) while the
     apply runs loses (almost) no packets; the networks keep their UUIDs;
  5. web's user-data changed with on_user_data_change: ignore: plan has no replace, only the
     seed volumes change; no guest reboots, runcmd does not run again, the seed holds the new
     user-data;
  6. web count 3 -> 2: only web-2 and its volumes are deleted, its DHCP reservation leaves the
     front network live; the other VMs keep their UUIDs and boot_ids;
  7. api's user-data changed: refused while prevent_destroy (plan and apply exit 1, nothing
     changes on any host); after lifting it, api is recreated: new root disk (a marker in the
     old root fs is gone), the new runcmd ran, the data disk and its file are kept;
  8. `--replace vm.web-1`: plan says replace/recreate; apply makes web-1 anew from the image
     (root marker gone, cloud-init ran again, with the user-data of step 5); an unknown address
     is refused, naming it;
  9. shrinking a data disk or the root disk is refused ("cannot shrink", exit 1), nothing changes;
 10. destroy leaves nothing of the cluster on any host.

usage: update_e2e.py path/to/kumo
"""
import os
import re
import secrets
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from common import (LAB, STEP, check, check_converged, guest, inventory, kumo_runner,  # noqa: E402
                    lab_down, lab_hosts, lab_up, main_guarded, plan_json, save, summary,
                    timings, virsh, wait_used_memory, web_cluster, workdir)

CLUSTER = "festival"
GiB = 1 << 30
MiB = 1 << 20


def detailed_inventory(uri):
    """inventory() with the UUIDs of domains and networks and the capacities of the cluster's
    volumes, so that "nothing changed" covers objects made anew under the same name and resized
    volumes."""
    inv = inventory(uri)
    inv["domain_uuids"] = {d: virsh(uri, "domuuid", d).strip() for d in inv["domains"]}
    inv["network_uuids"] = {n: virsh(uri, "net-uuid", n).strip() for n in inv["networks"]}
    inv["capacities"] = {v: vol_capacity(uri, v) for v in inv["volumes"] if CLUSTER in v}
    return inv


def vol_capacity(uri, vol):
    out = virsh(uri, "vol-info", "--bytes", "--pool", "default", vol)
    m = re.search(r"^Capacity:\s*(\d+)", out, re.M)
    return int(m.group(1)) if m else None


def boot_id(uri, dom):
    rc, out = guest(uri, dom, "cat", "/proc/sys/kernel/random/boot_id")
    return out.strip() if rc == 0 else None


def memtotal(uri, dom):
    """MemTotal in bytes, as the guest sees it."""
    rc, out = guest(uri, dom, "cat", "/proc/meminfo")
    m = re.search(r"^MemTotal:\s*(\d+) kB", out, re.M)
    return int(m.group(1)) * 1024 if rc == 0 and m else None


def steps(out):
    """The step lines of an apply: [(status, address, host, what)]."""
    res = []
    for line in out.splitlines():
        m = STEP.match(line)
        if m:
            what = re.split(r" \(|: ", m.group(4), maxsplit=1)[0]
            res.append((m.group(1), m.group(2), m.group(3), what))
    return res


def step_whats(out, address):
    return [w for s, a, _, w in steps(out) if a == address and s == "ok"]


# ICMP echo from inside a guest (the lab image has no ping; python3 comes with cloud-init).
# Sends N echo requests every IV seconds, collects the replies as they come (late ones count),
# waits 5 s for stragglers, prints "N packets transmitted, M received" and the lost sequences.
# With a 4th argument, creates that file just before the first request (the test waits for it).
PINGER = r'''
import os, select, socket, struct, sys, time
dst, n, iv = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
if len(sys.argv) > 4:
    open(sys.argv[4], "w").close()
ident = os.getpid() & 0xffff
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    t += t >> 16
    return ~t & 0xffff
got, sent, nxt, last = set(), 0, time.monotonic(), None
while True:
    now = time.monotonic()
    if sent < n and now >= nxt:
        body = b"kumo-e2e" * 4
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, sent)
        s.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, sent) + body, (dst, 0))
        sent, nxt, last = sent + 1, nxt + iv, now
        continue
    if sent >= n and now >= last + 5:
        break
    wait = (nxt - now) if sent < n else (last + 5 - now)
    if select.select([s], [], [], max(0.0, wait))[0]:
        data = s.recv(4096)
        ihl = (data[0] & 15) * 4
        typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if typ == 0 and rid == ident:
            got.add(rseq)
print(f"{n} packets transmitted, {len(got)} received; lost: {sorted(set(range(n)) - got)}")
'''


def ping_stats(out):
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def variant(env, work):
    """examples/web-cluster.yaml, made to run on the lab (common.web_cluster), with web at
    count 3, small guests, an idempotent data-disk runcmd for api, and without db."""
    cfg = web_cluster(env)
    cfg["defaults"]["memory"] = "384MiB"
    web = cfg["vms"]["web"]
    web["count"] = 3
    web["cloud_init"]["runcmd"] = [["sh", "-c", "echo festival > /var/tmp/runcmd-done"]]
    api = cfg["vms"]["api"]
    api["host"] = "hv2"          # next to the web instance spread puts on hv2 (see apply_e2e.py)
    api["cpus"] = 1
    api["memory"] = "512MiB"
    # The example's runcmd formats /dev/vdb unconditionally; when api is made anew (step 7) it
    # must find the kept data disk's file system and only mount it.
    api["cloud_init"]["runcmd"] = [[
        "sh", "-c",
        "blkid -L data >/dev/null || mkfs.ext4 -q -L data /dev/vdb; mkdir -p /srv/data; "
        "grep -q '^LABEL=data ' /etc/fstab || echo 'LABEL=data /srv/data ext4 defaults 0 2' >> /etc/fstab; "
        "findmnt /srv/data >/dev/null || mount /srv/data"]]
    del cfg["vms"]["db"]
    path = os.path.join(work, "kumo.yaml")
    save(cfg, path)
    return path, cfg


def main():
    env = lab_up()
    hv = lab_hosts(env)
    work = workdir("kumo-update-e2e-")
    cfg_path, cfg = variant(env, work)
    cache = os.path.join(work, "cache")
    vars_ = [f"--var=hv1={hv['hv1']}", f"--var=hv2={hv['hv2']}", f"--var=hv3={hv['hv3']}"]
    common = ["-f", cfg_path, "--cache-dir", cache, *vars_]
    kumo = kumo_runner(*common)

    def apply(label, *extra):
        t = time.monotonic()
        a = kumo("apply", "--auto-approve", *extra)
        timings[label + "_s"] = round(time.monotonic() - t, 1)
        print(a.stdout[-3000:], a.stderr[-1500:])
        check(a.returncode == 0 and "Apply complete" in a.stdout,
              f"{label}: apply succeeds ({timings[label + '_s']} s; exit {a.returncode}: {a.stderr.strip()[-300:]})")
        return a

    def converged(label):
        check_converged(kumo, f"{label}: plan afterwards has no changes")

    def all_inventories():
        return {h: detailed_inventory(u) for h, u in hv.items()}

    # 0. the cluster
    p, plan = plan_json(kumo)
    check(plan is not None, f"plan exits 0 ({p.stderr.strip()[-300:]})")
    placed = {c["address"][3:]: c["host"] for c in (plan or {"changes": []})["changes"] if c["kind"] == "vm"}
    print("placement:", placed)
    webs = ["web-0", "web-1", "web-2"]
    if not check(sorted(placed) == sorted(webs + ["api"]) and len({placed[w] for w in webs}) == 3
                 and placed["api"] == "hv2", f"web-0..2 on three hosts, api on hv2 ({placed})"):
        return
    U = lambda vm: hv[placed[vm]]
    apply("apply_from_nothing")
    for vm in placed:
        rc, out = guest(U(vm), vm, "hostname")
        check(rc == 0 and out.strip() == vm, f"{vm} on {placed[vm]} answers through the agent (hostname {out.strip()!r})")
    rc, out = guest(U("api"), "api", "findmnt", "-n", "-o", "SOURCE,FSTYPE", "/srv/data")
    check(rc == 0 and "ext4" in out, f"api: runcmd made and mounted /srv/data on its data disk ({out.strip()})")
    data_token = secrets.token_hex(8)
    rc, _ = guest(U("api"), "api", "sh", "-c", f"echo {data_token} > /srv/data/marker && sync")
    check(rc == 0, "api: wrote a file on the data disk")
    # the lab image has no resolver manager: point each guest on front at its network's DNS
    for vm in placed:
        guest(U(vm), vm, "sh", "-c", "echo 'nameserver 10.20.0.1' > /etc/resolv.conf")
    converged("after the first apply")
    boots = {vm: boot_id(U(vm), vm) for vm in placed}
    print("boot ids:", boots)
    check(all(boots.values()), f"every guest's boot_id read through the agent ({boots})")

    # 1. live: memory 384 MiB -> 640 MiB and 1 -> 2 vCPUs for web (maximums 768 MiB and 2)
    mem_before = {w: memtotal(U(w), w) for w in webs}
    cfg["vms"]["web"]["memory"] = "640MiB"
    cfg["vms"]["web"]["cpus"] = 2
    save(cfg, cfg_path)
    p, plan = plan_json(kumo)
    ch = {c["address"]: c for c in (plan or {"changes": []})["changes"]}
    for w in webs:
        c = ch.get("vm." + w, {})
        names = sorted(a["name"] for a in c.get("attributes", []))
        check(c.get("action") == "update" and c.get("disruption") == "live" and "memory" in names and "cpus" in names,
              f"plan: vm.{w} update, live, memory and cpus ({c.get('action')}, {c.get('disruption')}, {names})")
    check(set(ch) == {"vm." + w for w in webs}, f"plan: nothing else changes ({sorted(ch)})")
    a = apply("live_memory_cpus")
    for w in webs:
        whats = step_whats(a.stderr, "vm." + w)
        check("update" in whats and "start" not in whats and "shutdown" not in whats,
              f"{w}: updated in place, neither shut down nor started ({whats})")
        check(boot_id(U(w), w) == boots[w], f"{w}: not rebooted (same boot_id)")
        grown = None
        for _ in range(30):          # the balloon deflates in the guest's own time
            m = memtotal(U(w), w)
            if m and mem_before[w] and m - mem_before[w] >= 0.75 * 256 * MiB:
                grown = m - mem_before[w]
                break
            time.sleep(2)
        check(grown is not None and grown <= 1.25 * 256 * MiB,
              f"{w}: MemTotal grew by about 256 MiB ({mem_before[w]} -> {memtotal(U(w), w)} bytes)")
        n = None
        for _ in range(15):
            rc, out = guest(U(w), w, "nproc")
            n = out.strip()
            if n == "2":
                break
            time.sleep(2)
        check(n == "2", f"{w}: 2 vCPUs online in the guest (nproc {n})")
        dom = wait_used_memory(U(w), w, 655360)
        check(re.search(r"^Used memory:\s+655360 KiB", dom, re.M) is not None,
              f"{w}: libvirt's current memory is 640 MiB ({re.findall(r'memory:.*', dom)})")
    converged("live memory/cpus")

    # 2. restart: api memory 512 MiB -> 1280 MiB, beyond its maximum of 1 GiB
    cfg["vms"]["api"]["memory"] = "1280MiB"
    save(cfg, cfg_path)
    p, plan = plan_json(kumo)
    ch = {c["address"]: c for c in (plan or {"changes": []})["changes"]}
    c = ch.get("vm.api", {})
    check(c.get("action") == "update" and c.get("disruption") == "restart",
          f"plan: vm.api update, restart ({c.get('action')}, {c.get('disruption')}; {c.get('reason')})")
    check(set(ch) == {"vm.api"}, f"plan: only vm.api changes ({sorted(ch)})")
    a = apply("restart_beyond_max")
    whats = step_whats(a.stderr, "vm.api")
    check("shutdown" in whats and "start" in whats, f"api: shut down and started again ({whats})")
    b = boot_id(U("api"), "api")
    check(b is not None and b != boots["api"], "api: rebooted (new boot_id)")
    boots["api"] = b
    for _ in range(15):              # the balloon takes it down from the new maximum
        m = memtotal(U("api"), "api")
        if m is not None and 0.85 * 1280 * MiB <= m <= 1280 * MiB:
            break
        time.sleep(2)
    check(m is not None and 0.85 * 1280 * MiB <= m <= 1280 * MiB, f"api: MemTotal is about 1280 MiB ({m})")
    rc, out = guest(U("api"), "api", "cat", "/srv/data/marker")
    check(rc == 0 and out.strip() == data_token, "api: /srv/data mounted again after the restart, file intact")
    converged("restart")

    # 3. grow api's root disk 10 -> 11 GiB and data disk 20 -> 21 GiB, live
    cfg["vms"]["api"]["disk"] = "11GiB"
    cfg["vms"]["api"]["disks"]["data"] = "21GiB"
    save(cfg, cfg_path)
    p, plan = plan_json(kumo)
    ch = {c["address"]: c for c in (plan or {"changes": []})["changes"]}
    for addr in ("volume.api/root", "volume.api/data/data"):
        c = ch.get(addr, {})
        check(c.get("action") == "update" and not c.get("destroys_data"),
              f"plan: {addr} update, destroys no data ({c.get('action')}, {c.get('disruption')})")
    check(all(c["action"] == "update" for c in ch.values()), f"plan: nothing replaced ({sorted((k, c['action']) for k, c in ch.items())})")
    a = apply("grow")
    for addr in ("volume.api/root", "volume.api/data/data"):
        check("grow" in step_whats(a.stderr, addr), f"apply: {addr}: grow ({step_whats(a.stderr, addr)})")
    rc, dev = guest(U("api"), "api", "blkid", "-L", "data")
    dev = dev.strip() or "/dev/vdb"
    for d, want in (("/dev/vda", 11 * GiB), (dev, 21 * GiB)):
        size = None
        for _ in range(10):
            rc, out = guest(U("api"), "api", "blockdev", "--getsize64", d)
            size = int(out) if rc == 0 and out.strip().isdigit() else None
            if size == want:
                break
            time.sleep(1)
        check(size == want, f"api: the guest sees {d} at {want // GiB} GiB without a reboot ({size})")
    check(boot_id(U("api"), "api") == boots["api"], "api: not rebooted by the grow")
    rc, out = guest(U("api"), "api", "cat", "/srv/data/marker")
    check(rc == 0 and out.strip() == data_token, "api: the file on the data disk is still there")
    check(vol_capacity(hv["hv2"], "kumo_festival_api_data-data.qcow2") == 21 * GiB, "hv2: data volume is 21 GiB")
    converged("grow")

    # 3b. a second data disk for the running api: hot-plugged, no reboot
    cfg["vms"]["api"]["disks"]["logs"] = "1GiB"
    save(cfg, cfg_path)
    p, plan = plan_json(kumo)
    ch = {c["address"]: c for c in (plan or {"changes": []})["changes"]}
    c = ch.get("volume.api/data/logs", {})
    check(c.get("action") == "create" and c.get("disruption") == "live" and "virtio-logs" in c.get("reason", ""),
          f"plan: volume.api/data/logs create, live, hot-plugged ({c.get('action')}, {c.get('disruption')}, {c.get('reason')})")
    c = ch.get("vm.api", {})
    check(c.get("action") == "update" and c.get("disruption") == "live",
          f"plan: vm.api update, live ({c.get('action')}, {c.get('disruption')})")
    check(set(ch) == {"vm.api", "volume.api/data/logs"}, f"plan: nothing else changes ({sorted(ch)})")
    a = apply("hot_plug_disk")
    whats = step_whats(a.stderr, "vm.api")
    check("update" in whats and "shutdown" not in whats and "start" not in whats,
          f"api: updated in place, neither shut down nor started ({whats})")
    size = None
    for _ in range(30):
        rc, out = guest(U("api"), "api", "blockdev", "--getsize64", "/dev/disk/by-id/virtio-logs")
        size = int(out) if rc == 0 and out.strip().isdigit() else None
        if size == 1 * GiB:
            break
        time.sleep(1)
    check(size == 1 * GiB, f"api: the guest sees the new disk as /dev/disk/by-id/virtio-logs, 1 GiB ({size})")
    check(boot_id(U("api"), "api") == boots["api"], "api: not rebooted by the new disk")
    rc, out = guest(U("api"), "api", "cat", "/srv/data/marker")
    check(rc == 0 and out.strip() == data_token, "api: /srv/data still mounted, file intact")
    converged("hot-plug")

    # 4. dns_hosts on front: add, then edit, live, while a guest pings another one
    pair = next(((x, y) for x in placed for y in placed if x != y and placed[x] == placed[y]), None)
    front_ip = {"web-0": "10.20.0.10", "web-1": "10.20.0.11", "web-2": "10.20.0.12", "api": "10.20.0.20"}
    check(pair is not None, f"two VMs share one host's front network ({pair})")
    if pair:
        rc, out = guest(U(pair[0]), pair[0], "python3", "-c", PINGER, front_ip[pair[1]], "5", "0.3", timeout=30)
        sent, got = ping_stats(out)
        check(sent == 5 and got >= 4, f"baseline: {pair[0]} pings {pair[1]} ({out.strip()})")
    rc, out = guest(U("web-0"), "web-0", "getent", "hosts", "www.festival.internal")
    check(rc != 0, f"before: www.festival.internal does not resolve ({out.strip()})")
    net_uuids = {h: virsh(u, "net-uuid", f"kumo_{CLUSTER}_front").strip() for h, u in hv.items()}
    for label, hosts_map, ip in (("dns_hosts add", {"www": "10.20.0.99"}, "10.20.0.99"),
                                 ("dns_hosts edit", {"www": "10.20.0.98", "assets": "10.20.0.97"}, "10.20.0.98")):
        cfg["networks"]["front"]["dns_hosts"] = hosts_map
        save(cfg, cfg_path)
        p, plan = plan_json(kumo)
        ch = (plan or {"changes": []})["changes"]
        fronts = [c for c in ch if c["address"] == "network.front"]
        check(sorted(c["host"] for c in fronts) == ["hv1", "hv2", "hv3"]
              and all(c["action"] == "update" and c["disruption"] == "live" for c in fronts),
              f"plan ({label}): network.front update, live, on hv1..hv3 ({[(c['host'], c['action'], c['disruption']) for c in fronts]})")
        check(len(ch) == len(fronts), f"plan ({label}): nothing else changes ({[c['address'] for c in ch]})")
        pinger = None
        n, iv = 150, 0.3
        if pair:
            marker = "/run/kumo-pinger-" + label.replace(" ", "-")
            pinger = subprocess.Popen([LAB, "exec", U(pair[0]), pair[0], "--timeout", str(int(n * iv) + 60), "--",
                                       "python3", "-c", PINGER, front_ip[pair[1]], str(n), str(iv), marker],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            t_ping = time.monotonic()
            for _ in range(60):      # the guest (starved under TCG) has started pinging
                if guest(U(pair[0]), pair[0], "test", "-e", marker)[0] == 0:
                    t_ping = time.monotonic()
                    break
                time.sleep(0.5)
        t0 = time.monotonic()
        a = apply(label.replace(" ", "_"))
        t1 = time.monotonic()
        if pinger:
            out, err = pinger.communicate(timeout=n * iv + 120)
            sent, got = ping_stats(out)
            check(t1 - t_ping < n * iv - 1,
                  f"{label}: the apply ran while the ping ran (apply {t0 - t_ping:.1f}..{t1 - t_ping:.1f} s, ping {n * iv:.0f} s)")
            check(sent == n and got >= n - 2,
                  f"{label}: {pair[0]} pinging {pair[1]} on {placed[pair[0]]}'s front lost at most 2 packets ({out.strip()} {err.strip()[-200:]})")
        check(any(w == "update" for s, ad, _, w in steps(a.stderr) if ad == "network.front"),
              f"{label}: network.front: update step ({[x for x in steps(a.stderr) if x[1] == 'network.front']})")
        for w in webs:
            for _ in range(10):      # dnsmasq reloads its hosts on SIGHUP, in its own time
                rc, out = guest(U(w), w, "getent", "ahostsv4", "www.festival.internal")
                addrs = sorted({l.split()[0] for l in out.splitlines() if l.strip()})
                if rc == 0 and addrs == [ip]:
                    break
                time.sleep(1)
            check(rc == 0 and addrs == [ip], f"{label}: {w} on {placed[w]} resolves www.festival.internal to {ip} only ({addrs})")
        if label == "dns_hosts edit":
            rc, out = guest(U("web-1"), "web-1", "getent", "hosts", "assets.festival.internal")
            check(rc == 0 and "10.20.0.97" in out, f"{label}: assets.festival.internal resolves to 10.20.0.97 ({out.strip()})")
        now = {h: virsh(u, "net-uuid", f"kumo_{CLUSTER}_front").strip() for h, u in hv.items()}
        check(now == net_uuids, f"{label}: the front networks were updated, not made anew (same UUIDs)")
        converged(label)
    check(all(boot_id(U(vm), vm) == boots[vm] for vm in placed), "no guest rebooted for the network changes")

    # 5. web's user-data changes with on_user_data_change: ignore: only the seeds are rewritten
    v2 = "festival-v2-" + secrets.token_hex(4)
    cfg["vms"]["web"]["lifecycle"] = {"on_user_data_change": "ignore"}
    cfg["vms"]["web"]["cloud_init"]["runcmd"] = [["sh", "-c", f"echo {v2} > /var/tmp/runcmd-done"]]
    save(cfg, cfg_path)
    p, plan = plan_json(kumo)
    ch = (plan or {"changes": []})["changes"]
    print("plan (ignore):", [(c["address"], c["host"], c["action"], c["disruption"]) for c in ch])
    # The seed volume itself is replaced (a new ISO); nothing else is made anew or deleted.
    check(len(ch) > 0 and not any(c["action"] in ("replace", "delete", "create") for c in ch
                                  if not c["address"].endswith("/seed")),
          f"plan (ignore): updates only, only seeds replaced ({[(c['address'], c['action']) for c in ch]})")
    check(sorted(c["address"] for c in ch if c["kind"] == "volume") == sorted(f"volume.{w}/seed" for w in webs),
          "plan (ignore): the three web seed volumes change")
    check(all(c["disruption"] in ("none", "live") for c in ch), "plan (ignore): no restart or recreate")
    apply("user_data_ignore")
    for w in webs:
        check(boot_id(U(w), w) == boots[w], f"{w}: not rebooted")
        rc, out = guest(U(w), w, "cat", "/var/tmp/runcmd-done")
        check(out.strip() == "festival", f"{w}: runcmd did not run again ({out.strip()})")
    seed = os.path.join(work, "web-1-seed")
    virsh(U("web-1"), "vol-download", "--pool", "default", f"kumo_{CLUSTER}_web-1_seed.iso", seed)
    with open(seed, "rb") as f:
        check(v2.encode() in f.read(), "web-1's seed volume holds the new user-data")
    converged("user-data, ignore")

    # 6. count 3 -> 2: web-2 goes, with its volumes and its DHCP reservation; nothing else moves
    h2 = placed["web-2"]
    net_xml = virsh(hv[h2], "net-dumpxml", f"kumo_{CLUSTER}_front")
    check("ip='10.20.0.12'" in net_xml, f"before: web-2's reservation 10.20.0.12 is in front's DHCP hosts on {h2}")
    before = all_inventories()
    cfg["vms"]["web"]["count"] = 2
    save(cfg, cfg_path)
    p, plan = plan_json(kumo)
    ch = (plan or {"changes": []})["changes"]
    print("plan (count 2):", [(c["address"], c["host"], c["action"], c["disruption"]) for c in ch])
    deletes = sorted(c["address"] for c in ch if c["action"] == "delete")
    check("vm.web-2" in deletes and all("web-2" in d for d in deletes),
          f"plan: deletes vm.web-2 and only what is web-2's ({deletes})")
    others = [c for c in ch if c["action"] != "delete"]
    check(all(c["address"] == "network.front" and c["action"] == "update" and c["disruption"] == "live" for c in others)
          and any(c["host"] == h2 for c in others),
          f"plan: besides, only a live update of network.front on {h2} ({[(c['address'], c['host'], c['action'], c['disruption']) for c in others]})")
    apply("count_3_to_2")
    after = all_inventories()
    left = [n for n in after[h2]["domains"] + after[h2]["volumes"] if "web-2" in n]
    check(left == [], f"{h2}: nothing of web-2 is left ({left})")
    for h in hv:
        gone = {k: sorted(set(before[h][k]) - set(after[h][k])) for k in ("domains", "networks", "volumes")}
        expect = {k: sorted(n for n in before[h][k] if "web-2" in n) for k in ("domains", "networks", "volumes")}
        check(gone == expect, f"{h}: exactly web-2's objects went ({gone})")
        for d, u in after[h]["domain_uuids"].items():
            check(before[h]["domain_uuids"].get(d) == u, f"{h}: {d} kept its UUID")
        check(after[h]["network_uuids"] == before[h]["network_uuids"], f"{h}: networks kept their UUIDs")
        kept = {v: c for v, c in before[h]["capacities"].items() if "web-2" not in v}
        check(after[h]["capacities"] == kept, f"{h}: the other volumes are as they were")
        # (as an attribute: the DHCP range starts at 10.20.0.128)
        check("ip='10.20.0.12'" not in virsh(hv[h], "net-dumpxml", f"kumo_{CLUSTER}_front"),
              f"{h}: web-2's DHCP reservation 10.20.0.12 is not in front")
    del placed["web-2"]
    webs.remove("web-2")
    check(all(boot_id(U(vm), vm) == boots[vm] for vm in placed), "no other guest rebooted")
    converged("count 3 -> 2")

    # 7. api's user-data: refused while prevent_destroy, then api is made anew
    root_token = secrets.token_hex(8)
    guest(U("api"), "api", "sh", "-c", f"echo {root_token} > /var/tmp/root-marker && sync")
    cfg["vms"]["api"]["cloud_init"]["runcmd"].append(["sh", "-c", "echo api-v2 > /var/tmp/api-v2"])
    save(cfg, cfg_path)
    before = all_inventories()
    p = kumo("plan")
    check(p.returncode == 1 and "prevent_destroy" in p.stderr, f"plan refuses to replace api: prevent_destroy ({p.stderr.strip()[-300:]})")
    a = kumo("apply", "--auto-approve")
    check(a.returncode == 1 and "prevent_destroy" in a.stderr, f"apply refuses to replace api: prevent_destroy ({a.stderr.strip()[-300:]})")
    check(all_inventories() == before, "the refused apply changed nothing on any host (names, UUIDs, sizes)")
    check(boot_id(U("api"), "api") == boots["api"], "api still runs its boot")
    cfg["vms"]["api"]["lifecycle"]["prevent_destroy"] = False
    save(cfg, cfg_path)
    p, plan = plan_json(kumo)
    ch = {c["address"]: c for c in (plan or {"changes": []})["changes"]}
    c = ch.get("vm.api", {})
    check(c.get("action") == "replace" and c.get("disruption") == "recreate",
          f"plan: vm.api replace, recreate ({c.get('action')}, {c.get('disruption')})")
    data = ch.get("volume.api/data/data")
    check(not c.get("destroys_data") and (data is None or data["action"] not in ("delete", "replace")),
          f"plan: api's data disk is kept ({data and data['action']})")
    apply("recreate_api")
    b = boot_id(U("api"), "api")
    check(b is not None and b != boots["api"], "api: booted anew")
    boots["api"] = b
    rc, out = guest(U("api"), "api", "cat", "/var/tmp/api-v2")
    check(rc == 0 and out.strip() == "api-v2", "api: the new runcmd ran")
    rc, out = guest(U("api"), "api", "cat", "/var/tmp/root-marker")
    check(rc != 0, f"api: a new root disk (the old root's marker is gone: {out.strip()!r})")
    rc, out = guest(U("api"), "api", "cat", "/srv/data/marker")
    check(rc == 0 and out.strip() == data_token, "api: the data disk was kept and reattached (file intact)")
    check(vol_capacity(hv["hv2"], "kumo_festival_api_data-data.qcow2") == 21 * GiB, "api: the data disk kept its 21 GiB")
    rc, out = guest(U("api"), "api", "blockdev", "--getsize64", "/dev/disk/by-id/virtio-logs")
    check(rc == 0 and out.strip() == str(GiB), f"api: the hot-plugged disk is in its definition too ({out.strip()})")
    converged("recreate api")

    # 8. --replace vm.web-1
    root_token = secrets.token_hex(8)
    guest(U("web-1"), "web-1", "sh", "-c", f"echo {root_token} > /var/tmp/root-marker && sync")
    before = all_inventories()
    p, plan = plan_json(kumo, "--replace", "vm.web-1")
    ch = (plan or {"changes": []})["changes"]
    vmch = [c for c in ch if c["kind"] == "vm"]
    check([(c["address"], c["action"], c["disruption"]) for c in vmch] == [("vm.web-1", "replace", "recreate")],
          f"plan --replace vm.web-1: web-1 replace, recreate, no other VM ({[(c['address'], c['action']) for c in vmch]})")
    for cmd in ("plan", "apply"):
        r = kumo(cmd, "--replace", "vm.nope", *(["--auto-approve"] if cmd == "apply" else []))
        check(r.returncode == 1 and "vm.nope" in r.stderr, f"{cmd} --replace vm.nope: refused, naming it ({r.stderr.strip()[-200:]})")
    check(all_inventories() == before, "the refused --replace changed nothing")
    apply("replace_web_1", "--replace", "vm.web-1")
    b = boot_id(U("web-1"), "web-1")
    check(b is not None and b != boots["web-1"], "web-1: booted anew")
    boots["web-1"] = b
    rc, out = guest(U("web-1"), "web-1", "cat", "/var/tmp/root-marker")
    check(rc != 0, "web-1: a new root disk from the image (marker gone)")
    rc, out = guest(U("web-1"), "web-1", "cat", "/var/tmp/runcmd-done")
    check(out.strip() == v2, f"web-1: cloud-init ran again, with the current user-data ({out.strip()})")
    rc, out = guest(U("web-1"), "web-1", "hostname")
    check(out.strip() == "web-1", "web-1: hostname web-1")
    check(boot_id(U("web-0"), "web-0") == boots["web-0"] and boot_id(U("api"), "api") == boots["api"],
          "web-0 and api were not touched")
    converged("--replace vm.web-1")

    # 9. shrinking is refused
    before = all_inventories()
    cfg["vms"]["api"]["disks"]["data"] = "20GiB"
    save(cfg, cfg_path)
    for cmd in ("plan", "apply"):
        r = kumo(cmd, *(["--auto-approve"] if cmd == "apply" else []))
        check(r.returncode == 1 and "cannot shrink" in r.stdout + r.stderr,
              f"{cmd}: shrinking api's data disk is refused ({r.stderr.strip()[-300:]})")
    cfg["vms"]["api"]["disks"]["data"] = "21GiB"
    cfg["vms"]["api"]["disk"] = "10GiB"
    save(cfg, cfg_path)
    r = kumo("plan")
    check(r.returncode == 1 and "cannot shrink" in r.stdout + r.stderr,
          f"plan: shrinking api's root disk is refused ({r.stderr.strip()[-300:]})")
    check(all_inventories() == before, "the refused shrinks changed nothing on any host")
    cfg["vms"]["api"]["disk"] = "11GiB"
    save(cfg, cfg_path)
    converged("shrink refused")

    # 10. destroy
    d = kumo("destroy", "--auto-approve")
    print(d.stdout[-2000:], d.stderr[-1000:])
    check(d.returncode == 0 and "Destroy complete" in d.stdout, "destroy succeeds")
    for h, u in hv.items():
        inv = inventory(u)
        left = [n for n in inv["domains"] + inv["networks"] + inv["volumes"] if CLUSTER in n]
        check(left == [], f"{h}: nothing of cluster {CLUSTER} is left, lock included ({left})")


if __name__ == "__main__":
    t_all = time.monotonic()
    main_guarded(main, lab_down)
    timings["total_s"] = round(time.monotonic() - t_all, 1)
    summary()
