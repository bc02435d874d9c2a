#!/usr/bin/python3
"""e2e: kumo apply under faults on the lab (hv3 over qemu+ssh): kill -9, the cluster lock, host loss.

The cluster: node-0..2 (count 3, one per host by anti-affinity), 256 MiB, a 1 GiB data disk each,
one NAT network, wait_for: cloud-init.

  1. crash recovery, as a chain of applies from nothing, each killed with SIGKILL when its
     output shows it reached a point: an image upload, a volume `create`, a seed `upload`, a
     `define`, then (all VMs running) during `wait for cloud-init`. After each kill: the lock
     is left on every host, `kumo plan --json` reads the leftovers without error (and deletes
     no VM of the file), and no object is leaked or duplicated (every kumo_<cluster>_* volume
     belongs to an instance of the file, each instance lives on one host only, nothing unknown
     in the pools). Each next apply takes over the dead run's lock ("stale lock"). A last apply
     converges: plan --detailed-exitcode 0, every VM ready, full inventory, no lock left.
  2. the lock and host loss: after destroy, apply #1 from nothing holds the lock on every host
     (libvirt secret of usage kumo-lock_<cluster>, its description JSON naming user, machine,
     pid, command, since); meanwhile
     plan works, a second apply and a destroy are refused ("locked", user@machine, "pid N",
     "since") and change nothing (no step ran, the lock is still #1's). #1 is killed -9 after a
     `define`; apply #3 takes over its stale lock, and hv3's libvirtd is stopped under it
     (`lab libvirtd hv3 stop`): #3 fails only on hv3 (Failed section), the VMs of hv1 and hv2
     become ready. After `lab libvirtd hv3 start`, a rerun converges (as in 1).
  3. force-unlock: an apply is stopped (SIGSTOP: alive, so its lock is not stale) as soon as its
     lock appears; another apply is refused (no takeover). The lock is then made to name another
     machine (redefined through libvirt, same UUID); an apply is refused naming it;
     apply #8 started with --lock-timeout waits, naming that holder; `kumo force-unlock
     --auto-approve` removes the lock on every host, and once the stopped apply is killed, #8
     takes the lock, plans anew and converges; no lock is left.
  4. lock races: the lock is forged on every host as a stale holder's (this script's pid with
     another start time: a pid reused since), and two applies are started at once: exactly one
     takes it over and applies, the other exits 1 naming it, and the hosts end as one apply
     makes them, no lock or takeover record left. Then an apply (--parallelism 1, three live
     updates) is stopped (SIGSTOP) after its first step, the lock is deleted by hand (virsh
     secret-undefine) and it is continued: it stops before its next change with the error naming the
     host, exit 1; a rerun converges.
  5. destroy leaves nothing of the cluster on any host.

usage: fault_e2e.py path/to/kumo
"""
import json
import os
import pwd
import re
import signal
import socket
import sys
import time
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from common import (KUMO, LAB, STEP, Kumo, check, check_converged, guest, inventory,  # noqa: E402
                    kill_started, kumo_runner, lab_down, lab_hosts, lab_image, lab_up,
                    lock_secret_text, lock_secrets, main_guarded,
                    plan_json, run, save, summary, timings, virsh, virt_type, wait_used_memory,
                    workdir)

CLUSTER = "faultlab"
LOCK = f"kumo-lock_{CLUSTER}"
INSTANCES = ["node-0", "node-1", "node-2"]
# Points of an apply from nothing, in the order they come (per VM), as its output shows them.
STAGES = [("an image upload", re.compile(r"^\s*ok\s+image\.\S+ on \S+: upload\b")),
          ("a volume create", re.compile(r"^\s*ok\s+volume\.\S+ on \S+: create\b")),
          ("a seed upload", re.compile(r"^\s*ok\s+volume\.\S+/seed on \S+: upload\b")),
          ("a define", re.compile(r"^\s*ok\s+vm\.\S+ on \S+: define\b")),
          ("a start", re.compile(r"^\s*ok\s+vm\.\S+ on \S+: start\b"))]


def stage_of(line):
    for i, (_, rx) in enumerate(STAGES):
        if rx.match(line):
            return i
    return None


def parse_lock(text):
    """The lock's JSON, or None."""
    try:
        info = json.loads(text.rstrip("\0 \t\r\n"))
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def step_lines(text):
    return [l for l in text.splitlines() if STEP.match(l)]


def failed_entries(out):
    """The entries of the summary's "Failed:" section ("address on host: what")."""
    m = re.search(r"^Failed:\n(.*?)(?:\n\n|\Z)", out, re.S | re.M)
    return re.findall(r"^  (?! )(.+)$", m.group(1), re.M) if m else []


def config(env, hv, memory="256MiB"):
    vt = virt_type(env)
    return {
        "cluster": CLUSTER,
        "hosts": {h: {"uri": u, "virt_type": vt} for h, u in hv.items()},
        "images": {"debian-12": lab_image(env)},
        "networks": {"front": {"cidr": "10.50.0.0/24", "domain": "fault.internal"}},
        "defaults": {"image": "debian-12", "cpus": 1, "memory": memory, "disk": "4GiB",
                     # TCG: three guests on two cores; leave room for a slower CI machine
                     "wait_timeout": "20m" if vt == "qemu" else "10m"},
        "vms": {"node": {
            "count": 3,
            "networks": [{"network": "front", "ip": "10.50.0.10"}],
            "placement": {"strategy": "spread", "anti_affinity": "node"},
            "disks": {"data": "1GiB"},
            "wait_for": "cloud-init",
            "cloud_init": {"runcmd": [["sh", "-c", "echo converged > /var/tmp/fault-done"]]},
        }},
    }


def main():
    env = lab_up()
    hv = lab_hosts(env)
    # The secrets' directories as the root namespace sees them (hvN/etc is /etc/libvirt of hvN):
    # polling the files there catches the lock within milliseconds, without a libvirt call.
    secret_dirs = {h: os.path.join(env[f"KUMO_LAB_{h.upper()}_DIR"], "etc", "secrets") for h in hv}

    def lock_on_disk(h):
        """The lock's JSON as hvN's secret driver saved it, or None."""
        try:
            names = os.listdir(secret_dirs[h])
        except OSError:
            return None
        for n in names:
            if not n.endswith(".xml"):
                continue
            try:
                root = ET.parse(os.path.join(secret_dirs[h], n)).getroot()
            except (OSError, ET.ParseError):
                continue
            if root.findtext("usage/volume") == LOCK:
                return parse_lock(root.findtext("description") or "")
        return None
    work = workdir("kumo-fault-e2e-")
    cfg_path = os.path.join(work, "kumo.yaml")
    cfg = config(env, hv)
    save(cfg, cfg_path)
    cache = os.path.join(work, "cache")
    common = ["-f", cfg_path, "--cache-dir", cache]
    holder = f"{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"

    kumo = kumo_runner(*common)

    def apply_bg():
        return Kumo([KUMO, "apply", *common, "--auto-approve"])

    def lock_volumes():
        """Hosts that have the lock (its secret, asked through libvirt)."""
        return sorted(h for h, u in hv.items() if LOCK in lock_secrets(u))

    def read_lock(h, raw=False):
        """The lock's JSON on host h, read through libvirt ({} if none), and with raw the
        secret's XML too; retried for a few seconds, in case it is being replaced."""
        for _ in range(20):
            text, xml = lock_secret_text(hv[h], LOCK)
            info = parse_lock(text)
            if info is not None:
                return (info, xml) if raw else info
            time.sleep(0.25)
        return ({}, "") if raw else {}

    def running_instances():
        return sum(len([d for d in virsh(u, "list", "--state-running", "--name").split() if d in INSTANCES])
                   for u in hv.values())

    def audit(final):
        """Problems of the hosts' inventories: objects kumo_<cluster>_* of no instance in the file,
        an instance's objects on two hosts, unknown volumes, networks or domains; when final, also
        anything missing, not running, or the lock still there."""
        problems, where = [], {}
        for h, u in hv.items():
            inv = inventory(u, running=True)
            for d in inv["domains"]:
                if d not in INSTANCES:
                    problems.append(f"{h}: unknown domain {d}")
                else:
                    where.setdefault(d, set()).add(h)
                    if final and d not in inv["running"]:
                        problems.append(f"{h}: {d} is not running")
            for n in inv["networks"]:
                if n != f"kumo_{CLUSTER}_front":
                    problems.append(f"{h}: unknown network {n}")
            if final and f"kumo_{CLUSTER}_front" not in inv["networks"]:
                problems.append(f"{h}: network front is missing")
            if final and LOCK in lock_secrets(u):
                problems.append(f"{h}: the lock is still there")
            images, records = [], []
            for v in inv["volumes"]:
                m = re.fullmatch(rf"kumo_{CLUSTER}_([a-z0-9-]+)_(root\.qcow2|seed\.iso|serial\.log|data-[a-z0-9_-]+\.qcow2)", v)
                if v.startswith("kumo-image_"):
                    images.append(v)
                elif v.startswith(f"kumo-net_{CLUSTER}_"):
                    records.append(v[len(f"kumo-net_{CLUSTER}_"):])  # kumo made <network>_<uuid>
                elif not m:
                    problems.append(f"{h}: unknown volume {v}")
                elif m.group(1) not in INSTANCES:
                    problems.append(f"{h}: volume {v} of no instance in the file (leaked)")
                else:
                    where.setdefault(m.group(1), set()).add(h)
            # The front network is recorded as kumo's, and that is the only record: a kill between
            # making a record and defining its network leaves a record of nothing, which the next
            # apply removes.
            if final and f"kumo_{CLUSTER}_front" in inv["networks"]:
                uuid = virsh(u, "net-uuid", f"kumo_{CLUSTER}_front").strip()
                if records != [f"front_{uuid}"]:
                    problems.append(f"{h}: the records of networks are not exactly network front "
                                    f"({uuid}): {records}")
            if final and not (len(images) == 2 and images[1] == images[0] + ".done"):
                problems.append(f"{h}: base image volumes are not one image and its marker: {images}")
            if final:
                for i in INSTANCES:
                    if h in where.get(i, ()):
                        for v in (f"kumo_{CLUSTER}_{i}_root.qcow2", f"kumo_{CLUSTER}_{i}_seed.iso",
                                  f"kumo_{CLUSTER}_{i}_data-data.qcow2"):
                            if v not in inv["volumes"]:
                                problems.append(f"{h}: {v} is missing")
                        if i not in inv["domains"]:
                            problems.append(f"{h}: domain {i} is missing")
        for i, hs in where.items():
            if len(hs) > 1:
                problems.append(f"{i} has objects on {sorted(hs)} (duplicated)")
        if final:
            for i in INSTANCES:
                if i not in where:
                    problems.append(f"{i} is nowhere")
        return problems, {i: sorted(hs)[0] for i, hs in where.items()}

    def after_kill(label):
        check(lock_volumes() == sorted(hv), f"{label}: the killed apply left its lock on every host")
        p, plan = plan_json(kumo)
        ok = check(plan is not None, f"{label}: plan --json reads the leftovers without error ({p.stderr.strip()[-300:]})")
        if ok:
            ch = plan["changes"]
            print(f"{label}: plan:", [(c["address"], c["host"], c["action"]) for c in ch])
            check(all(h["reachable"] for h in plan["hosts"]), f"{label}: plan: every host reachable")
            bad = [c["address"] for c in ch if c["action"] == "delete" and c["address"].startswith("vm.")]
            check(bad == [], f"{label}: plan deletes no VM of the file ({bad})")
            check(not any("lock" in c["address"] for c in ch), f"{label}: plan does not show the lock as a change")
        problems, _ = audit(final=False)
        check(problems == [], f"{label}: nothing leaked or duplicated on the hosts ({problems})")

    def converged(label):
        check_converged(kumo, f"{label}: plan has no changes")
        s = kumo("status", "--json")
        try:
            st = json.loads(s.stdout) if s.returncode == 0 else {"vms": []}
        except ValueError:
            st = {"vms": []}
        check(sorted(v["name"] for v in st["vms"] if v["ready"]) == INSTANCES,
              f"{label}: status: every VM ready ({[(v['name'], v.get('ready_detail')) for v in st['vms']]})")
        problems, placed = audit(final=True)
        check(problems == [], f"{label}: full inventory: each VM once, with its volumes, nothing leaked, no lock ({problems})")
        for i, h in sorted(placed.items()):
            rc, out = guest(hv[h], i, "cat", "/var/tmp/fault-done")
            check(rc == 0 and out.strip() == "converged", f"{label}: {i} on {h}: cloud-init ran its runcmd")
        return placed

    # 1. crash recovery: a chain of applies, each killed at a later point
    p = kumo("plan", "--json")
    check(p.returncode == 0, f"plan exits 0 ({p.stderr.strip()[-300:]})")
    t = time.monotonic()
    killed_before = False
    for label, k in (("run A", 0), ("run B", 1), ("run C", 2), ("run D", 3)):
        a = apply_bg()
        line = a.wait_line(lambda l: (stage_of(l) if stage_of(l) is not None else -1) >= k, timeout=900)
        was_alive = a.kill9()
        rc, out, err = a.finish(10)
        at = stage_of(line) if line else None
        check(line is not None and was_alive,
              f"{label}: killed -9 at {STAGES[k][0]} (at: {line!r}{'' if at == k else ', a later point'})")
        if killed_before:
            check("stale lock" in out + err, f"{label}: took over the lock of the killed run (\"stale lock\")")
        after_kill(label)
        killed_before = was_alive
    # run E: killed while it waits for cloud-init (every VM running, none reported ready)
    a = apply_bg()
    deadline = time.monotonic() + 600
    all_running = False
    while time.monotonic() < deadline and a.alive():
        if running_instances() == len(INSTANCES):
            all_running = True
            break
        time.sleep(1)
    # Kill at once: on a fast (KVM) host a guest can be ready seconds after it starts. At least
    # one VM must still be unreported; under TCG none is (~100 s to cloud-init done).
    # Only finished waits count: apply without a terminal also prints each step's start.
    waited = [l for l in a.err if re.match(r"^\s*ok\s+vm\.\S+ on \S+: wait for cloud-init", l)]
    was_alive = a.kill9()
    rc, out, err = a.finish(10)
    check(all_running and was_alive and len(waited) < len(INSTANCES),
          f"run E: killed -9 during wait for cloud-init (all VMs running: {all_running}; reported: {waited})")
    check("stale lock" in out + err, "run E: took over the lock of the killed run (\"stale lock\")")
    after_kill("run E")
    timings["killed_runs_s"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    r = kumo("apply", "--auto-approve")
    timings["recovery_apply_s"] = round(time.monotonic() - t, 1)
    print(r.stdout[-3000:], r.stderr[-1500:])
    check(r.returncode == 0 and "Apply complete" in r.stdout,
          f"run F converges ({timings['recovery_apply_s']} s; exit {r.returncode}: {r.stderr.strip()[-300:]})")
    check("stale lock" in r.stdout + r.stderr, "run F: took over the lock of the killed run (\"stale lock\")")
    converged("crash recovery")

    # 2. the lock, then host loss
    d = kumo("destroy", "--auto-approve")
    check(d.returncode == 0 and "Destroy complete" in d.stdout, f"destroy succeeds ({d.stderr.strip()[-300:]})")
    problems, placed = audit(final=False)
    check(placed == {} and lock_volumes() == [], f"after destroy nothing of the cluster is left, no lock ({placed}, {problems})")
    t = time.monotonic()
    a1 = apply_bg()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and a1.alive() and not all(lock_on_disk(h) for h in hv):
        time.sleep(0.05)
    check(lock_volumes() == sorted(hv), "apply #1 holds the lock on every host (secret " + LOCK + " on each)")
    info = read_lock("hv3")
    check(str(info.get("pid")) == str(a1.pid) and info.get("user") and info.get("machine") and "apply" in str(info.get("command"))
          and info.get("since"), f"the lock on hv3 (read over qemu+ssh) names user, machine, pid {a1.pid}, command, since ({info})")
    p, plan = plan_json(kumo)
    check(plan is not None and not any("lock" in c["address"] for c in plan["changes"]),
          f"plan works while apply #1 holds the lock, and does not show the lock ({p.stderr.strip()[-300:]})")
    for cmd in ("apply", "destroy"):
        r = kumo(cmd, "--auto-approve")
        msg = r.stdout + r.stderr
        check(r.returncode == 1 and "locked" in msg and holder in msg and f"pid {a1.pid}" in msg and "since" in msg,
              f"a second {cmd} is refused: locked, by {holder}, pid {a1.pid}, since ({r.stderr.strip()[-300:]})")
        check(step_lines(r.stderr) == [], f"the refused {cmd} ran no step ({step_lines(r.stderr)})")
        check(str(read_lock("hv1").get("pid")) == str(a1.pid) and a1.alive(), f"the refused {cmd} left apply #1 and its lock alone")
    line = a1.wait_line(lambda l: (stage_of(l) if stage_of(l) is not None else -1) >= 3, timeout=600)
    was_alive = a1.kill9()
    a1.finish(10)
    check(line is not None and was_alive, f"apply #1 killed -9 after a define ({line!r})")
    after_kill("apply #1")
    a3 = apply_bg()
    first = a3.wait_line(lambda l: STEP.match(l) is not None, timeout=120)
    print("host loss after:", repr(first))
    check(first is not None, "apply #3 took the lock, planned and ran a first step before hv3 is lost")
    s = run([LAB, "libvirtd", "hv3", "stop"], check_rc=False)
    print(s.stdout, s.stderr)
    check(s.returncode == 0 and a3.alive(), f"hv3's libvirtd stopped while apply #3 runs ({s.stdout.strip()} {s.stderr.strip()})")
    r = run(["virsh", "-q", "-c", hv["hv3"], "uri"], check_rc=False, timeout=60)
    check(r.returncode != 0, "hv3 no longer answers over qemu+ssh")
    rc, out, err = a3.finish(1500)
    timings["lock_and_host_loss_s"] = round(time.monotonic() - t, 1)
    failed = failed_entries(out)
    check(rc != 0 and "Apply failed" in out, f"apply #3: Apply failed (exit {rc})")
    check(failed != [] and all(" on hv3:" in f for f in failed), f"apply #3: only hv3's steps failed ({failed})")
    check("stale lock" in out + err, "apply #3 took over the killed apply #1's lock (\"stale lock\")")
    check(not any(m.group(1) == "FAILED" and m.group(3) != "hv3" for m in map(STEP.match, step_lines(err))),
          "apply #3: no step of hv1 or hv2 failed")
    for h in ("hv1", "hv2"):
        doms = [d for d in inventory(hv[h])["domains"] if d in INSTANCES]
        check(len(doms) == 1, f"{h} has its VM ({doms})")
        for dname in doms:
            check(re.search(rf"^\s*ok\s+vm\.{dname} on {h}: wait for cloud-init", err, re.M) is not None,
                  f"apply #3: vm.{dname} on {h} finished ready")
            w = run([LAB, "wait-ready", hv[h], dname, "--timeout", "60"], check_rc=False, timeout=200)
            check(w.returncode == 0, f"{dname} on {h}: cloud-init done (agent)")
    s = run([LAB, "libvirtd", "hv3", "start"], check_rc=False)
    print(s.stdout, s.stderr)
    check(s.returncode == 0, f"hv3's libvirtd started again ({s.stdout.strip()} {s.stderr.strip()})")
    r = run(["virsh", "-q", "-c", hv["hv3"], "uri"], check_rc=False, timeout=60)
    check(r.returncode == 0, "hv3 answers over qemu+ssh again")
    t = time.monotonic()
    r = kumo("apply", "--auto-approve")
    timings["after_host_loss_apply_s"] = round(time.monotonic() - t, 1)
    print(r.stdout[-3000:], r.stderr[-1500:])
    check(r.returncode == 0 and "Apply complete" in r.stdout,
          f"after hv3 is back, apply converges ({timings['after_host_loss_apply_s']} s; {r.stderr.strip()[-300:]})")
    placed = converged("host loss")

    # 3. force-unlock. Apply #5 is stopped (SIGSTOP) as soon as its lock appears: a holder alive
    # on this machine, which is not stale. Then its lock is made to name another machine (same
    # JSON, "machine": "x", padded with spaces to the same length), the case force-unlock is for.
    cfg["defaults"]["memory"] = "320MiB"           # a live change: something for apply to do
    save(cfg, cfg_path)
    a5 = apply_bg()
    caught = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and a5.alive():
        got = [str((lock_on_disk(h) or {}).get("pid")) == str(a5.pid) for h in hv]
        # Every host's lock taken.
        if all(got):
            os.kill(a5.pid, signal.SIGSTOP)
            caught = a5.alive()
            break
        time.sleep(0.002)
    held = lock_volumes()
    waiter = None
    print("locked by the stopped apply #5 on:", held)
    if check(caught and held != [], f"apply #5 stopped (SIGSTOP) while it holds the lock ({held})"):
        r = kumo("apply", "--auto-approve")
        msg = r.stdout + r.stderr
        check(r.returncode == 1 and "locked" in msg and f"pid {a5.pid}" in msg and "stale lock" not in msg
              and step_lines(r.stderr) == [],
              f"apply #6 is refused: the lock of a live process here is not stale (pid {a5.pid}) ({r.stderr.strip()[-300:]})")
        other = socket.gethostname() != "x"
        for h in held:
            info, xml = read_lock(h, raw=True)
            info["machine"] = "x"
            if "machine_id" in info:              # another machine is another machine id
                info["machine_id"] = "f" * len(info["machine_id"])
            root = ET.fromstring(xml)
            root.find("description").text = json.dumps(info, separators=(",", ":"))
            path = os.path.join(work, f"lock-{h}-other.xml")
            ET.ElementTree(root).write(path)      # the same UUID: the secret is redefined
            virsh(hv[h], "secret-define", path)
        info = read_lock(held[0])
        check(other and info.get("machine") == "x", f"the lock now names another machine ({info})")
        r = kumo("apply", "--auto-approve")
        msg = r.stdout + r.stderr
        check(r.returncode == 1 and "locked" in msg and holder.split("@")[0] + "@x" in msg and "stale lock" not in msg
              and step_lines(r.stderr) == [],
              f"apply #7 is refused: locked from another machine ({r.stderr.strip()[-300:]})")
        # Apply #8 waits for the lock (--lock-timeout), saying for whom; once force-unlock lets it
        # go, it takes it and plans anew (its first read, made while refused, is not used).
        waiter = Kumo([KUMO, "apply", *common, "--auto-approve", "--lock-timeout", "10m"])
        said = waiter.wait_line(lambda l: "waiting up to" in l, timeout=120)
        check(said is not None and holder.split("@")[0] + "@x" in said and step_lines("\n".join(waiter.err)) == [],
              f"apply #8 waits for the lock, naming its holder, and changes nothing meanwhile ({said!r})")
        t = time.monotonic()
        f = run([KUMO, "force-unlock", "-f", cfg_path, "--auto-approve"], check_rc=False)
        print(f.stdout, f.stderr)
        check(f.returncode == 0, f"force-unlock succeeds ({f.stderr.strip()[-300:]})")
    a5.kill9()
    a5.finish(10)
    if waiter is not None:
        rc, out, err = waiter.finish(1500)
        timings["after_force_unlock_apply_s"] = round(time.monotonic() - t, 1)
        check(rc == 0 and "Apply complete" in out and "stale lock" not in out + err,
              f"after force-unlock, the waiting apply #8 takes the lock and applies ({err.strip()[-300:]})")
    else:
        t = time.monotonic()
        r = kumo("apply", "--auto-approve")
        timings["after_force_unlock_apply_s"] = round(time.monotonic() - t, 1)
        print(r.stdout[-2000:], r.stderr[-1000:])
        check(r.returncode == 0 and "Apply complete" in r.stdout and "stale lock" not in r.stdout + r.stderr
              and not re.search(r"\blocked\b", r.stdout + r.stderr),
              f"after force-unlock, apply runs without meeting a lock ({r.stderr.strip()[-300:]})")
    check(lock_volumes() == [], "no lock is left after the apply that followed force-unlock")
    for i, h in placed.items():
        # The balloon reaches its new size on the guest's time: give it a moment.
        dom = wait_used_memory(hv[h], i, 327680)
        check(re.search(r"^Used memory:\s+327680 KiB", dom, re.M) is not None, f"{i}: memory is 320 MiB now")
    converged("force-unlock")

    # 4. lock races
    lock_races(kumo, cfg, cfg_path, common, hv, work, lock_volumes, read_lock, audit)

    # 5. destroy
    d = kumo("destroy", "--auto-approve")
    check(d.returncode == 0 and "Destroy complete" in d.stdout, f"destroy succeeds ({d.stderr.strip()[-300:]})")
    for h, u in hv.items():
        inv = inventory(u)
        left = [n for n in inv["domains"] + inv["networks"] + inv["volumes"] + list(lock_secrets(u))
                if CLUSTER in n]
        check(left == [], f"{h}: nothing of cluster {CLUSTER} is left, lock included ({left})")


def first_line(path):
    with open(path) as f:
        return f.readline().strip()


def forge_stale_lock(hv, work):
    """Writes on every host a lock of this script's pid as if it had started at another time (a
    pid reused since its holder died): stale by its run identity. Returns its JSON."""
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])     # field 22
    holder = {"user": pwd.getpwuid(os.geteuid()).pw_name, "machine": socket.gethostname(),
              "command": "kumo apply", "pid": os.getpid(), "since": "2026-01-01T00:00:00Z",
              "token": os.urandom(16).hex(), "machine_id": first_line("/etc/machine-id"),
              "boot_id": first_line("/proc/sys/kernel/random/boot_id"),
              "pid_ns": os.readlink("/proc/self/ns/pid"), "start_time": start + 1}
    root = ET.fromstring("<secret ephemeral='no' private='yes'><description/>"
                         "<usage type='volume'><volume/></usage></secret>")
    root.find("description").text = json.dumps(holder)
    root.find("usage/volume").text = LOCK
    path = os.path.join(work, "stale-lock.xml")
    ET.ElementTree(root).write(path)
    for u in hv.values():
        virsh(u, "secret-define", path)
    return holder


def lock_races(kumo, cfg, cfg_path, common, hv, work, lock_volumes, read_lock, audit):
    def lock_leftovers():
        return [f"{h}: {v}" for h, u in hv.items()
                for v in list(lock_secrets(u)) + inventory(u)["volumes"] if v.startswith(LOCK)]

    # Two applies at once on a stale lock: exactly one wins.
    cfg["defaults"]["memory"] = "352MiB"           # a live change on every VM
    save(cfg, cfg_path)
    stale = forge_stale_lock(hv, work)
    check(lock_volumes() == sorted(hv) and read_lock("hv1").get("token") == stale["token"],
          "a stale lock (this script's pid, another start time) is on every host")
    t = time.monotonic()
    racers = [Kumo([KUMO, "apply", *common, "--auto-approve"]) for _ in range(2)]
    results = [r.finish(900) for r in racers]
    timings["stale_lock_race_s"] = round(time.monotonic() - t, 1)
    won = [i for i, r in enumerate(results) if r[0] == 0]
    if check(len(won) == 1, f"two applies at once on a stale lock: exactly one proceeds (exits {[r[0] for r in results]})"):
        winner, (_, wout, werr) = racers[won[0]], results[won[0]]
        _, _, lerr = results[1 - won[0]]
        check("Apply complete" in wout and "took over a stale lock" in werr and f"pid {stale['pid']}" in werr,
              f"the winner took over the stale lock and applied ({werr.strip()[-300:]})")
        check(results[1 - won[0]][0] == 1 and "is locked on host hv1 by" in lerr and f"pid {winner.pid}," in lerr
              and step_lines(lerr) == [],
              f"the other exits 1 naming the winner (pid {winner.pid}) and ran no step ({lerr.strip()[-300:]})")
    check(lock_leftovers() == [], f"no lock or takeover record is left ({lock_leftovers()})")
    check_converged(kumo, "after the race the hosts are as one apply makes them: plan has no changes")
    problems, _ = audit(final=True)
    check(problems == [], f"after the race: full inventory, nothing duplicated ({problems})")

    # The lock deleted by hand mid-apply: the apply stops before its next change.
    cfg["defaults"]["memory"] = "384MiB"
    save(cfg, cfg_path)
    a = Kumo([KUMO, "apply", *common, "--auto-approve", "--parallelism", "1"])
    line = a.wait_line(lambda l: re.match(r"^\s*ok\s+vm\.\S+ on \S+: update\b", l) is not None, timeout=300)
    stopped = line is not None and a.alive()
    if stopped:
        os.kill(a.pid, signal.SIGSTOP)
    for u in hv.values():
        uuid = lock_secrets(u).get(LOCK)
        if uuid:
            virsh(u, "secret-undefine", uuid, check_rc=False)
    deleted = lock_volumes() == []
    if stopped:
        os.kill(a.pid, signal.SIGCONT)
    check(stopped and deleted, f"the lock deleted by hand (virsh secret-undefine) after the apply's first change ({line!r})")
    rc, out, err = a.finish(600)
    m = re.search(r'the lock of cluster "faultlab" on host (hv\d) was removed while this apply held it '
                  r'\(kumo force-unlock\?\); stopped before update vm\.(\S+) on (hv\d)', err)
    check(rc == 1 and m is not None and m.group(1) == m.group(3) and "Apply complete" not in out,
          f"the apply stops before its next change, naming the host: exit {rc} ({err.strip()[-400:]})")
    if m:
        p, plan = plan_json(kumo)
        pending = [c["address"] for c in plan["changes"]] if plan else []
        check(f"vm.{m.group(2)}" in pending, f"vm.{m.group(2)} was not changed after the lock went ({pending})")
    check(lock_leftovers() == [], f"no lock is left ({lock_leftovers()})")
    r = kumo("apply", "--auto-approve")
    check(r.returncode == 0 and "Apply complete" in r.stdout, f"a rerun finishes the apply ({r.stderr.strip()[-300:]})")
    check_converged(kumo, "after the rerun plan has no changes")


def teardown():
    kill_started()                # only the kumo processes this test started, by pid
    lab_down()


if __name__ == "__main__":
    t_all = time.monotonic()
    main_guarded(main, teardown)
    timings["total_s"] = round(time.monotonic() - t_all, 1)
    summary()
