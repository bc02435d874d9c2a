#!/usr/bin/python3
"""e2e: moving VMs between hosts on the lab (hv3 over qemu+ssh): live moves (QEMU's memory and
the NBD disk copy over unix sockets in $KUMO_LAB_MIGRATION_DIR, every host's
`migration: {socket_dir: ...}`), cold moves, drained hosts, kill -9 and a lost destination.

The cluster: one NAT network; `mover` (256 MiB, a 1 GiB data disk that cloud-init formats once
and mounts at /srv/data) and `pinned` (256 MiB). Two guest boots, plus one for the cold move.
Tokens are read back after the guest's page cache is dropped, so they come from the disks.

  a. apply: mover on hv1, pinned on hv2; a token on mover's data disk and one on its root disk;
     boot_ids recorded. Bad input that costs no boot: `move: sideways`,
     `migration: {socket_dir: relative/dir}` and `drain: maybe` each fail `kumo validate` and
     `kumo plan` with a file:line error, and nothing changes on any host.
  b. live move hv1 -> hv2 (the pin changed): plan --json has exactly one change (top-level: the
     others are mover's volumes, moving with it), vm.mover, action move, from_host hv1, host hv2,
     disruption live, destroys_data false, attribute host hv1 -> hv2, summary move 1; the human
     plan says `move hv1 -> hv2 (live)`. apply: prepare,
     migrate, commit on hv2, then remove source on hv1. Same boot_id, tokens intact, nothing of
     mover left on hv1, the domain persistent on hv2 with the autostart it had, no socket left in
     the migration directory, status shows it on hv2; plan clean (--detailed-exitcode 0).
  c. kill -9 of apply during a live move hv2 -> hv3 (qemu+ssh) at three points: (1) ~1 s after
     `start ... migrate` (the storage copy), (2) at `ok ... migrate` (the destination defined),
     (3) at `ok ... commit` (before the source is deleted). Where each kill landed is printed
     (a kill may land later). After each: plan --json works; a rerun apply converges: mover
     once, running, on hv3, nothing of it on hv1 or hv2, same boot_id, tokens intact, plan
     clean. Between kills mover moves back to hv2 (a live move from a qemu+ssh source).
  d. hv1's libvirtd stopped (`lab libvirtd hv1 stop`) right after `start ... migrate` of a move
     hv3 -> hv1: apply exits non-zero and names hv1; mover still runs on hv3 (domstate, agent,
     same boot_id, tokens); after `lab libvirtd hv1 start`, a rerun converges on hv1.
  e. drain: mover unpinned (it stays on hv1: plan clean); `drain: true` on hv1: `kumo hosts`
     shows it drained, plan has one change, a live move of mover off hv1; apply; hv1 holds no
     domain and no volume of the cluster; same boot_id. Then pinned is pinned to the drained
     hv1: plan and apply exit 1 naming vm.pinned, hv1 and drain, and nothing changes on any host
     (domains with UUIDs and states, networks, volumes).
  f. cold move (`move: cold` and a new pin): plan says move, disruption restart; apply: shutdown
     on the source, copy, define, start on the destination, remove source; a new boot_id, both
     tokens intact, nothing left on the source, plan clean. pinned never rebooted.
  g. destroy leaves nothing of the cluster on any host.

usage: move_e2e.py path/to/kumo
"""
import copy
import json
import os
import re
import secrets
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from common import (KUMO, LAB, STEP, Kumo, check, check_converged, guest, inventory,  # noqa: E402
                    kill_started, kumo_runner, lab_down, lab_hosts, lab_image, lab_up, main_guarded,
                    plan_json, run, save, summary, timings, virsh, virt_type, workdir)

CLUSTER = "movelab"
VOL_PREFIX = f"kumo_{CLUSTER}_mover_"
MOVER_VOLUMES = {f"{VOL_PREFIX}root.qcow2", f"{VOL_PREFIX}seed.iso", f"{VOL_PREFIX}data-data.qcow2"}
START = re.compile(r"^\s*start\s+(\S+) on (\S+): (.+)$")
# The data disk: an ext4 file system made once (cloud-init's runcmd runs once per instance, and a
# cold move keeps the instance), mounted at /srv/data at every boot.
DATA_RUNCMD = ("d=/dev/disk/by-id/virtio-data; blkid $d >/dev/null || mkfs.ext4 -q -L moverdata $d; "
               "mkdir -p /srv/data; grep -q '^LABEL=moverdata ' /etc/fstab || "
               "echo 'LABEL=moverdata /srv/data ext4 defaults,nofail 0 2' >> /etc/fstab; "
               "findmnt /srv/data >/dev/null || mount /srv/data")
# A live move's step lines, in order (what a kill -9 may have reached).
LIVE_POINTS = [("ok", "prepare"), ("start", "migrate"), ("ok", "migrate"), ("start", "commit"),
               ("ok", "commit"), ("start", "remove source"), ("ok", "remove source")]


def config(env, hv):
    vt = virt_type(env)
    mig = {"socket_dir": env["KUMO_LAB_MIGRATION_DIR"]}
    wait = {"wait_for": "cloud-init", "wait_timeout": "20m" if vt == "qemu" else "10m"}
    return {
        "cluster": CLUSTER,
        "hosts": {h: {"uri": u, "virt_type": vt, "migration": dict(mig)} for h, u in hv.items()},
        "images": {"debian-12": lab_image(env)},
        "networks": {"front": {"cidr": "10.52.0.0/24", "domain": "move.internal"}},
        "defaults": {"image": "debian-12", "cpus": 1, "memory": "256MiB", "disk": "3GiB"},
        "vms": {
            "mover": {"host": "hv1", "networks": [{"network": "front"}], "disks": {"data": "1GiB"},
                      **wait, "cloud_init": {"runcmd": [["sh", "-c", DATA_RUNCMD]]}},
            "pinned": {"host": "hv2", "networks": [{"network": "front"}], **wait},
        },
    }


def steps(text):
    """The step lines of an apply: [(status, address, host, what)], start lines included."""
    res = []
    for line in text.splitlines():
        m, st = STEP.match(line), START.match(line)
        if m:
            status, addr, host, rest = m.groups()
        elif st:
            status, (addr, host, rest) = "start", st.groups()
        else:
            continue
        res.append((status, addr, host, re.split(r" \(|: ", rest, maxsplit=1)[0]))
    return res


def host_texts(text, names):
    """kumo hosts' human output cut per host: its table row and its paragraph."""
    res = {n: "" for n in names}
    cur = None
    for line in text.splitlines():
        w = line.split()
        if w and w[0] in names:
            cur = w[0]
        elif not line.startswith(" "):
            cur = None
        if cur:
            res[cur] += line + "\n"
    return res


def mover_steps(text, status="ok"):
    """(host, what) of mover's step lines with that status, in order."""
    return [(h, w) for s, a, h, w in steps(text) if a == "vm.mover" and s == status]


def step_seconds(text, host, what):
    m = re.search(rf"^\s*ok\s+vm\.mover on {host}: {re.escape(what)} \(([\d.]+) s\)", text, re.M)
    return float(m.group(1)) if m else None


def last_point(text):
    """The index in LIVE_POINTS of the last of a live move's step lines the output shows (-1: none)."""
    last = -1
    for s, a, h, w in steps(text):
        if a == "vm.mover" and (s, w) in LIVE_POINTS:
            last = max(last, LIVE_POINTS.index((s, w)))
    return last


def main():
    env = lab_up()
    hv = lab_hosts(env)                         # kumo's URIs: hv3 over qemu+ssh
    insp = {h: env[f"KUMO_LAB_{h.upper()}_URI"] for h in hv}   # the test's own looks: unix sockets
    mig_dir = env.get("KUMO_LAB_MIGRATION_DIR", "")
    check(bool(mig_dir) and os.path.isdir(mig_dir) and (os.stat(mig_dir).st_mode & 0o777) == 0o700,
          f"lab env: KUMO_LAB_MIGRATION_DIR is a 0700 directory ({mig_dir!r})")
    work = workdir("kumo-move-e2e-")
    cfg_path = os.path.join(work, "kumo.yaml")
    cfg = config(env, hv)
    save(cfg, cfg_path)
    common = ["-f", cfg_path, "--cache-dir", os.path.join(work, "cache")]
    kumo = kumo_runner(*common)

    def apply(label, expect_ok=True):
        t = time.monotonic()
        a = kumo("apply", "--auto-approve")
        timings[label + "_s"] = round(time.monotonic() - t, 1)
        print(a.stdout[-3000:], a.stderr[-2500:])
        if expect_ok:
            check(a.returncode == 0 and "Apply complete" in a.stdout,
                  f"{label}: apply succeeds ({timings[label + '_s']} s; exit {a.returncode}: {a.stderr.strip()[-300:]})")
        return a

    def pin(vm, host):
        if host is None:
            cfg["vms"][vm].pop("host", None)
        else:
            cfg["vms"][vm]["host"] = host
        save(cfg, cfg_path)

    def copies():
        """{host: (mover's domain state or None, its volumes)} for each host holding any of it."""
        res = {}
        for h, u in insp.items():
            inv = inventory(u)
            vols = sorted(v for v in inv["volumes"] if v.startswith(VOL_PREFIX))
            state = (virsh(u, "domstate", "mover", check_rc=False).strip() or "?") if "mover" in inv["domains"] else None
            if state or vols:
                res[h] = (state, vols)
        return res

    def all_inventories():
        """Every host's domains (UUID and state), networks and volumes: "nothing changed". The
        pools are refreshed first: a file that appeared in a pool's directory by itself (the
        serial log virtlogd writes) is listed once someone refreshes the pool, as kumo's
        plan does."""
        res = {}
        for h, u in insp.items():
            virsh(u, "pool-refresh", "default")
            inv = inventory(u, running=True)
            inv["domain_uuids"] = {d: virsh(u, "domuuid", d).strip() for d in inv["domains"]}
            res[h] = inv
        return res

    def boot_id(host, dom="mover"):
        rc, out = guest(insp[host], dom, "cat", "/proc/sys/kernel/random/boot_id")
        return out.strip() if rc == 0 else None

    def tokens(host):
        """mover's two tokens, read from its disks (the page cache dropped first)."""
        rc, out = guest(insp[host], "mover", "sh", "-c",
                        "sync; echo 3 > /proc/sys/vm/drop_caches; cat /srv/data/token /var/tmp/root-token")
        return out.split() if rc == 0 else None

    def only_on(label, host):
        c = copies()
        check(list(c) == [host] and c[host][0] == "running" and MOVER_VOLUMES <= set(c[host][1]),
              f"{label}: mover once, running on {host} with its volumes, nothing of it elsewhere ({c})")
        return c

    def same_guest(label, host):
        b = boot_id(host)
        check(b is not None and b == boots["mover"], f"{label}: mover did not reboot (same boot_id {b})")
        t = tokens(host)
        check(t == want_tokens, f"{label}: tokens on the data disk and the root disk intact ({t})")

    def converged(label, host, live=True):
        only_on(label, host)
        if live:
            same_guest(label, host)
        check_converged(kumo, f"{label}: plan has no changes")

    def plan_move(label, src, dst, disruption):
        """plan --json: exactly one change (top-level; volumes count with their VM), mover's move
        from src to dst; its volumes' entries move (or, for a seed made anew, create) with it."""
        p, plan = plan_json(kumo)
        ch = (plan or {"changes": []})["changes"]
        print(f"{label}: plan:", [(c["address"], c.get("from_host"), c["host"], c["action"], c["disruption"]) for c in ch])
        check(plan is not None, f"{label}: plan --json exits 0 ({p.stderr.strip()[-300:]})")
        top = [c for c in ch if not c.get("parent")]
        c = top[0] if len(top) == 1 else {}
        attrs = {a["name"]: a for a in c.get("attributes", [])}
        check(len(top) == 1 and c.get("address") == "vm.mover" and c.get("kind") == "vm" and c.get("action") == "move"
              and c.get("from_host") == src and (c.get("host") == dst if dst else c.get("host") not in (src, None))
              and c.get("disruption") == disruption and c.get("destroys_data") is False,
              f"{label}: plan has exactly one change: vm.mover move {src} -> {dst or 'another host'} ({disruption}), "
              f"no data destroyed ({[(x['address'], x['action'], x.get('from_host'), x['host'], x['disruption'], x['destroys_data']) for x in top]})")
        vols = [x for x in ch if x.get("parent")]
        check(all(x.get("parent") == "vm.mover" and x["kind"] == "volume" and x["action"] in ("move", "create")
                  and x["host"] == c.get("host") and not x["destroys_data"] for x in vols)
              and "volume.mover/data/data" in [x["address"] for x in vols if x["action"] == "move"],
              f"{label}: the rest are mover's volumes moving with it (the data disk among them), none destroyed "
              f"({[(x['address'], x['action'], x['host']) for x in vols]})")
        h = attrs.get("host", {})
        check(h.get("before") == src and h.get("after") == c.get("host"),
              f"{label}: attribute host {src} -> {c.get('host')} ({h.get('before')} -> {h.get('after')})")
        check((plan or {}).get("summary", {}).get("move") == 1, f"{label}: summary counts 1 move ({(plan or {}).get('summary')})")
        return c.get("host")

    # a. the cluster
    t_a = time.monotonic()
    a = apply("a_apply")
    placed = {c_h: [d for d in inventory(u)["domains"] if d in ("mover", "pinned")] for c_h, u in insp.items()}
    check(placed == {"hv1": ["mover"], "hv2": ["pinned"], "hv3": []}, f"mover on hv1, pinned on hv2 ({placed})")
    rc, out = guest(insp["hv1"], "mover", "findmnt", "-n", "-o", "SOURCE,FSTYPE", "/srv/data")
    check(rc == 0 and "ext4" in out, f"mover: cloud-init made and mounted /srv/data on its data disk ({out.strip()})")
    want_tokens = [secrets.token_hex(8), secrets.token_hex(8)]
    rc, _ = guest(insp["hv1"], "mover", "sh", "-c",
                  f"echo {want_tokens[0]} > /srv/data/token && echo {want_tokens[1]} > /var/tmp/root-token && sync")
    check(rc == 0, "mover: tokens written on its data disk and its root disk")
    boots = {"mover": boot_id("hv1"), "pinned": boot_id("hv2", "pinned")}
    check(all(boots.values()), f"boot_ids read through the agent ({boots})")
    check(tokens("hv1") == want_tokens, "mover: tokens read back from the disks")
    check_converged(kumo, "after the first apply: plan has no changes")
    bad_input(cfg, work, all_inventories)
    timings["scenario_a_s"] = round(time.monotonic() - t_a, 1)

    # b. live move hv1 -> hv2
    t_b = time.monotonic()
    autostart = re.search(r"^Autostart:\s*(\S+)", virsh(insp["hv1"], "dominfo", "mover"), re.M)
    pin("mover", "hv2")
    plan_move("b", "hv1", "hv2", "live")
    p = kumo("plan", "--no-color")
    check(re.search(r"->\s+vm\.mover\s+move hv1 -> hv2 \(live\)", p.stdout) is not None,
          f"b: the human plan says `-> vm.mover  move hv1 -> hv2 (live)` ({[l for l in p.stdout.splitlines() if 'mover' in l]})")
    a = apply("b_live_move")
    done = mover_steps(a.stderr)
    check([x for x in done if x[1] in ("prepare", "migrate", "commit", "remove source", "shutdown", "start")]
          == [("hv2", "prepare"), ("hv2", "migrate"), ("hv2", "commit"), ("hv1", "remove source")],
          f"b: steps prepare, migrate, commit on hv2, then remove source on hv1, no shutdown or start ({done})")
    timings["b_migrate_step_s"] = step_seconds(a.stderr, "hv2", "migrate")
    waiting = [l for l in a.stderr.splitlines() if re.match(r"^\s*waiting\s+vm\.mover on hv2: migrate", l)]
    print(f"b: migrate took {timings['b_migrate_step_s']} s; progress lines: {waiting[:6]}")
    converged("b", "hv2")
    info = virsh(insp["hv2"], "dominfo", "mover")
    now = re.search(r"^Autostart:\s*(\S+)", info, re.M)
    check(re.search(r"^Persistent:\s*yes", info, re.M) is not None and autostart is not None and now is not None
          and now.group(1) == autostart.group(1),
          f"b: mover is persistent on hv2, autostart {autostart and autostart.group(1)} as before "
          f"({now and now.group(1)})")
    check(os.listdir(mig_dir) == [], f"b: no socket left in the migration directory ({os.listdir(mig_dir)})")
    s = kumo("status", "--json")
    try:
        vms = {v["name"]: v for v in json.loads(s.stdout)["vms"]} if s.returncode == 0 else {}
    except ValueError:
        vms = {}
    check(vms.get("mover", {}).get("host") == "hv2" and vms.get("mover", {}).get("ready") is True,
          f"b: status: mover on hv2, ready ({vms.get('mover')})")
    timings["scenario_b_s"] = round(time.monotonic() - t_b, 1)

    # c. kill -9 at three points of a live move to hv3 (qemu+ssh)
    t_c = time.monotonic()
    kills = [("(1) during the storage copy", ("start", "migrate"), 1.0),
             ("(2) after the destination is defined", ("ok", "migrate"), 0),
             ("(3) before the source is deleted", ("ok", "commit"), 0)]
    for i, (label, (status, what), delay) in enumerate(kills, 1):
        if i > 1:
            pin("mover", "hv2")
            apply(f"c{i}_move_back_to_hv2")
            converged(f"c{i}: back on hv2", "hv2")
        pin("mover", "hv3")
        k = Kumo([KUMO, "apply", *common, "--auto-approve"])
        line = k.wait_line(lambda l: re.match(rf"^\s*{status}\s+vm\.mover on hv3: {what}\b", l) is not None, timeout=900)
        if line is not None and delay:
            time.sleep(delay)
        was_alive = k.kill9()
        _, out, err = k.finish(10)
        target = LIVE_POINTS.index((status, what))
        landed = last_point(err)
        where = " ".join(LIVE_POINTS[landed]) if landed >= 0 else "before prepare"
        timings[f"c{i}_killed_at_s"] = round(time.monotonic() - t_c, 1)   # into scenario c
        check(line is not None and was_alive,
              f"c{i}: apply killed -9 {label} (at {line!r}; the last step line before the kill: "
              f"{where}{', a later point' if landed > target else ''})")
        print(f"c{i}: after the kill: {copies()}; migration dir: {os.listdir(mig_dir)}")
        for h in ("hv2", "hv3"):
            j = virsh(insp[h], "domjobinfo", "mover", check_rc=False).strip()
            print(f"c{i}: {h} domjobinfo: {j.splitlines()[:3]}")
        p, plan = plan_json(kumo)
        check(plan is not None, f"c{i}: plan --json works after the kill ({p.stderr.strip()[-300:]})")
        print(f"c{i}: plan:", [(c["address"], c.get("from_host"), c["host"], c["action"], c["disruption"])
                               for c in (plan or {"changes": []})["changes"]])
        apply(f"c{i}_rerun")
        converged(f"c{i}: after the rerun", "hv3")
    timings["scenario_c_s"] = round(time.monotonic() - t_c, 1)

    # d. the destination's libvirtd stopped mid-move (hv3 -> hv1)
    t_d = time.monotonic()
    pin("mover", "hv1")
    k = Kumo([KUMO, "apply", *common, "--auto-approve"])
    line = k.wait_line(lambda l: re.match(r"^\s*start\s+vm\.mover on hv1: migrate\b", l) is not None, timeout=900)
    s = run([LAB, "libvirtd", "hv1", "stop"], check_rc=False)
    print(s.stdout, s.stderr)
    check(line is not None and s.returncode == 0, f"d: hv1's libvirtd stopped right after {line!r} ({s.stdout.strip()})")
    rc, out, err = k.finish(900)
    timings["d_failed_apply_s"] = round(time.monotonic() - t_d, 1)
    failed = [(h, w) for st, a_, h, w in steps(err) if st == "FAILED"]
    summary_failed = re.search(r"^Failed:\n(.*?)(?:\n\n|\Z)", out, re.S | re.M)
    check(rc not in (0, None) and "Apply complete" not in out, f"d: apply exits non-zero ({rc})")
    check(("hv1" in (summary_failed.group(1) if summary_failed else "")) or any(h == "hv1" for h, _ in failed),
          f"d: the failure names hv1 ({failed}; {summary_failed.group(1).strip()[:300] if summary_failed else 'no Failed section'})")
    st = virsh(insp["hv3"], "domstate", "mover", check_rc=False).strip()
    check(st == "running", f"d: mover still runs on hv3 (domstate {st!r})")
    same_guest("d: on hv3 while hv1 is down", "hv3")
    s = run([LAB, "libvirtd", "hv1", "start"], check_rc=False)
    print(s.stdout, s.stderr)
    check(s.returncode == 0, f"d: hv1's libvirtd started again ({s.stdout.strip()} {s.stderr.strip()})")
    print(f"d: after hv1 is back: {copies()}; migration dir: {os.listdir(mig_dir)}")
    p, plan = plan_json(kumo)
    check(plan is not None, f"d: plan --json works ({p.stderr.strip()[-300:]})")
    print("d: plan:", [(c["address"], c.get("from_host"), c["host"], c["action"], c["disruption"])
                       for c in (plan or {"changes": []})["changes"]])
    apply("d_rerun")
    converged("d: after the rerun", "hv1")
    timings["scenario_d_s"] = round(time.monotonic() - t_d, 1)

    # e. drain
    t_e = time.monotonic()
    pin("mover", None)
    check_converged(kumo, "e: mover unpinned stays where it is (plan has no changes)")
    cfg["hosts"]["hv1"]["drain"] = True
    save(cfg, cfg_path)
    h = kumo("hosts", "--json")
    try:
        drains = {x["name"]: x.get("drain") for x in json.loads(h.stdout)["hosts"]}
    except (ValueError, KeyError):
        drains = {}
    check(drains == {"hv1": True, "hv2": False, "hv3": False}, f"e: kumo hosts --json: drain on hv1 only ({drains})")
    h = kumo("hosts", "--no-color")
    texts = host_texts(h.stdout, list(hv))
    check("drained" in texts["hv1"] and "drained" not in texts["hv2"] + texts["hv3"],
          f"e: kumo hosts shows hv1 drained, only hv1 ({[l for l in h.stdout.splitlines() if 'drain' in l]})")
    dst = plan_move("e", "hv1", None, "live")
    a = apply("e_drain")
    check(("hv1", "remove source") in mover_steps(a.stderr) and ("hv1", "migrate") not in mover_steps(a.stderr),
          f"e: mover migrated off hv1 ({mover_steps(a.stderr)})")
    if dst not in ("hv2", "hv3"):
        dst = next(iter(copies()), "hv2")
    converged(f"e: drained off hv1 onto {dst}", dst)
    inv = inventory(insp["hv1"])
    left = [d for d in inv["domains"] if d in ("mover", "pinned")] + [v for v in inv["volumes"] if v.startswith(f"kumo_{CLUSTER}_")]
    check(left == [], f"e: hv1 holds no domain and no volume of the cluster ({left}; still there: networks "
                      f"{inv['networks']}, kumo's other volumes {[v for v in inv['volumes'] if v.startswith('kumo')]})")
    before = all_inventories()
    pin("pinned", "hv1")
    for cmd in ("plan", "apply"):
        r = kumo(cmd, *(["--auto-approve"] if cmd == "apply" else []))
        msg = r.stdout + r.stderr
        check(r.returncode == 1 and "vm.pinned" in msg and "hv1" in msg and "drain" in msg
              and not [l for l in r.stderr.splitlines() if STEP.match(l) or START.match(l)],
              f"e: {cmd} with pinned pinned to the drained hv1 exits 1 naming vm.pinned, hv1 and drain, "
              f"and runs no step (exit {r.returncode}: {msg.strip()[-300:]})")
    after = all_inventories()
    check(after == before, f"e: nothing changed on any host (domains, UUIDs, states, networks, volumes) "
                           f"({inventory_diff(before, after)})")
    pin("pinned", "hv2")
    check_converged(kumo, "e: pinned back on hv2: plan has no changes")
    timings["scenario_e_s"] = round(time.monotonic() - t_e, 1)

    # f. cold move
    t_f = time.monotonic()
    src = dst
    dst = "hv3" if src == "hv2" else "hv2"
    cfg["vms"]["mover"]["move"] = "cold"
    pin("mover", dst)
    plan_move("f", src, dst, "restart")
    a = apply("f_cold_move")
    done = mover_steps(a.stderr)
    whats = [w for _, w in done]
    check((src, "shutdown") in done and done[-1:] == [(src, "remove source")]
          and (dst, "copy") in done and done.index((src, "shutdown")) < done.index((dst, "copy"))
          and all(w in whats for w in ("prepare", "copy", "define", "start", "commit")) and "migrate" not in whats
          and all(hh == dst for hh, w in done if w in ("prepare", "copy", "define", "start", "commit")),
          f"f: steps shutdown on {src}, then copy; prepare, define, start, commit on {dst}; remove source on {src} last ({done})")
    timings["f_copy_step_s"] = step_seconds(a.stderr, dst, "copy")
    converged(f"f: cold move {src} -> {dst}", dst, live=False)
    b = boot_id(dst)
    check(b is not None and b != boots["mover"], f"f: mover booted again on {dst} (new boot_id)")
    check(tokens(dst) == want_tokens, f"f: tokens on the data disk and the root disk intact ({tokens(dst)})")
    check(boot_id("hv2", "pinned") == boots["pinned"], "pinned never rebooted")
    timings["scenario_f_s"] = round(time.monotonic() - t_f, 1)

    left = sorted(os.listdir(mig_dir))
    print(f"NOTE sockets left in the migration directory by the killed and failed migrations: {left}")

    # g. destroy
    t_g = time.monotonic()
    d = kumo("destroy", "--auto-approve")
    print(d.stdout[-2000:], d.stderr[-1000:])
    check(d.returncode == 0 and "Destroy complete" in d.stdout, f"g: destroy succeeds ({d.stderr.strip()[-300:]})")
    for h, u in insp.items():
        inv = inventory(u)
        left = [n for n in inv["domains"] if n in ("mover", "pinned")] + \
               [n for n in inv["networks"] + inv["volumes"] if CLUSTER in n]
        check(left == [], f"g: {h}: nothing of cluster {CLUSTER} is left ({left})")
    timings["scenario_g_s"] = round(time.monotonic() - t_g, 1)


def inventory_diff(before, after):
    """What differs between two all_inventories(): {host: {key: (before, after)}}."""
    return {h: {k: (before[h].get(k), after[h].get(k)) for k in set(before[h]) | set(after[h])
                if before[h].get(k) != after[h].get(k)}
            for h in before if before[h] != after.get(h)}


def bad_input(cfg, work, all_inventories):
    """Each of three bad values fails validate and plan with a file:line error; nothing changes."""
    before = all_inventories()
    path = os.path.join(work, "bad.yaml")
    cases = [("move: sideways", lambda c: c["vms"]["mover"].__setitem__("move", "sideways"), "move"),
             ("migration: {socket_dir: relative/dir}",
              lambda c: c["hosts"]["hv2"]["migration"].__setitem__("socket_dir", "relative/dir"), "socket_dir"),
             ("drain: maybe", lambda c: c["hosts"]["hv3"].__setitem__("drain", "maybe"), "drain")]
    for label, mutate, key in cases:
        bad = copy.deepcopy(cfg)
        mutate(bad)
        save(bad, path)
        value = label.rstrip("}").split(": ")[-1]
        with open(path) as f:
            line = next(i for i, l in enumerate(f, 1) if re.match(rf"^\s*{key}: {re.escape(value)}$", l))
        for cmd in ("validate", "plan"):
            r = run([KUMO, cmd, "-f", path, *(["--cache-dir", os.path.join(work, "cache")] if cmd == "plan" else [])],
                    check_rc=False)
            msg = r.stdout + r.stderr
            check(r.returncode == 1 and re.search(rf"bad\.yaml:{line}:\d+: error", msg) is not None and key in msg,
                  f"bad input: {cmd} refuses {label} with a file:line error (bad.yaml:{line}; exit {r.returncode}: "
                  f"{msg.strip()[-300:]})")
    after = all_inventories()
    check(after == before, f"bad input: nothing changed on any host ({inventory_diff(before, after)})")


def teardown():
    kill_started()                # only the kumo processes this test started, by pid
    lab_down()


if __name__ == "__main__":
    t_all = time.monotonic()
    main_guarded(main, teardown)
    timings["total_s"] = round(time.monotonic() - t_all, 1)
    summary()
