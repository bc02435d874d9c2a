#!/usr/bin/python3
"""e2e: storage pools kumo makes, on the lab's hv3 (over qemu+ssh): a dir pool that is the host's
pool (images, disks), a second dir pool for a data disk, and a logical pool (a volume
group on hv3's loop device). One guest boot.

  1. Bad input that costs no boot, each a plan error at file:line naming the pool, and nothing
     changes on any host (domains, networks, volumes, pools): the host's pool: unknown; a data
     disk's pool: unknown; hv3's existing pool `default` listed under pools: (kumo never takes
     over a pool it did not make); a dir pool without path (validate).
  2. hv3's lab volume group is removed through libvirt (a logical pool defined on it by hand,
     pool-delete, undefine): its loop device is blank, as a new disk would be.
  3. apply: hv3 has `pool: kpool` and pools kpool (dir), kdata (dir) and klvm (logical on the
     loop device); `pooled` (BIOS, 384 MiB) on hv3 has a data disk `logs` in kdata. The plan
     shows pool.hv3/kpool, pool.hv3/kdata, pool.hv3/klvm create; apply locks hv3 from the start
     (the lock is a libvirt secret, no volume of kpool: no pool made ahead of the plan, and no
     lock left after); cloud-init done in the guest, /dev/disk/by-id/virtio-logs there. On hv3: the
     three pools active and autostarted, marked <vendor name='kumo'/> <product
     name='cluster:poollab'/>; klvm is the volume group `klvm` on the device; pooled's root and
     seed in kpool (its directory), logs in kdata; the base image in kpool; `default` unchanged
     (same XML, same volumes). Plan clean.
  4. Drift: klvm stopped and its autostart cleared by hand (virsh): plan shows pool.hv3/klvm
     update (active, autostart), apply starts it, plan clean.
  5. A path changed in the file: plan error naming what kumo made; nothing changes.
  6. A volume made by hand in kdata: destroy removes pooled, its volumes, kpool (with the base
     image) and klvm (vgremove, pvremove: the device blank again), and keeps kdata
     with a warning naming the volume. kpool's directory is gone. Taking kdata out after the
     hand-made volume is deleted: the next destroy removes it too, hv3 locked throughout.

usage: pools_e2e.py path/to/kumo
"""
import json
import os
import re
import sys
import time

import yaml

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from common import (KUMO, check, check_converged, guest, inventory, kill_started,  # noqa: E402
                    lab_down, lab_hosts, lab_image, lab_up, lock_secrets, main_guarded, plan_json, run, save,
                    summary, timings, virsh, virt_type, workdir)

CLUSTER = "poollab"


def config(env, hv):
    d = env["KUMO_LAB_HV3_DIR"]
    vt = virt_type(env)
    return {
        "cluster": CLUSTER,
        "hosts": {
            "hv1": {"uri": hv["hv1"], "virt_type": vt},
            "hv3": {"uri": hv["hv3"], "virt_type": vt, "pool": "kpool",
                    "pools": {"kpool": {"type": "dir", "path": f"{d}/kumo-kpool"},
                              "kdata": {"type": "dir", "path": f"{d}/kumo-kdata"},
                              "klvm": {"type": "logical",
                                       "devices": [env["KUMO_LAB_HV3_VG_DEVICE"]]}}},
        },
        "images": {"debian-12": lab_image(env)},
        "networks": {"front": {"cidr": "10.57.0.0/24", "hosts": ["hv3"]}},
        "vms": {"pooled": {"image": "debian-12", "host": "hv3", "memory": "384MiB",
                           "networks": ["front"],
                           "disks": {"logs": {"size": "64MiB", "pool": "kdata"}},
                           "wait_for": "cloud-init",
                           "wait_timeout": "20m" if vt == "qemu" else "10m"}},
    }


def pools(uri):
    """name -> {active, autostart, xml} of every pool of a host."""
    out = {}
    for name in virsh(uri, "pool-list", "--all", "--name").split():
        info = virsh(uri, "pool-info", name)
        field = lambda k: next((l.split(":", 1)[1].strip() for l in info.splitlines()
                                if l.startswith(k + ":")), "")
        out[name] = {"active": field("State") == "running", "autostart": field("Autostart") == "yes",
                     "xml": virsh(uri, "pool-dumpxml", name)}
    return out


def volumes(uri, pool):
    return sorted(l.split()[0] for l in virsh(uri, "vol-list", pool, check_rc=False).splitlines()
                  if l.strip())


def state(hv):
    """Everything the bad-input steps must leave as it was (a pool's definition without its
    sizes, which follow the file system it is on)."""
    sizes = re.compile(r"<(capacity|allocation|available)[^>]*>\d+</\1>")
    return {h: {**inventory(u), "pools": {n: (p["active"], sizes.sub("", p["xml"]))
                                          for n, p in pools(u).items()}}
            for h, u in hv.items()}


def located(r, path, line, words):
    msg = r.stdout + r.stderr
    return r.returncode == 1 and f"{os.path.basename(path)}:{line}:" in msg and all(w in msg for w in words)


def line_of(text, marker):
    hits = [i for i, l in enumerate(text.splitlines(), 1) if marker in l]
    assert len(hits) == 1, f"{marker!r} on lines {hits}"
    return hits[0]


def step_bad_input(env, hv, work, cfg):
    before = state(hv)
    bad = os.path.join(work, "bad.yaml")
    cases = []
    c = json.loads(json.dumps(cfg))
    c["hosts"]["hv3"]["pool"] = "knope"
    cases.append(("the host's pool unknown", c, "pool: knope",
                  ["hosts.hv3: unknown pool \"knope\"", "kpool"]))
    c = json.loads(json.dumps(cfg))
    c["vms"]["pooled"]["disks"]["logs"]["pool"] = "kmissing"
    cases.append(("a data disk's pool unknown", c, "pool: kmissing",
                  ["vm.pooled: data disk \"logs\": unknown pool \"kmissing\" on host \"hv3\""]))
    c = json.loads(json.dumps(cfg))
    c["hosts"]["hv3"]["pools"]["default"] = {"type": "dir", "path": "/var/lib/libvirt/images"}
    cases.append(("a pool kumo did not make under pools:", c, "default:",
                  ["pool.hv3/default", "kumo did not make, and kumo never changes it"]))
    for label, c, marker, words in cases:
        text = yaml.safe_dump(c, sort_keys=False)
        with open(bad, "w") as f:
            f.write(text)
        for cmd in (["plan"], ["apply", "--auto-approve"]):
            r = run([KUMO, *cmd, "-f", bad, "--cache-dir", os.path.join(work, "cache")], check_rc=False)
            check(located(r, bad, line_of(text, marker), words),
                  f"{label}: {cmd[0]} fails at bad.yaml:{line_of(text, marker)} naming {words} "
                  f"(exit {r.returncode}: {(r.stdout + r.stderr).strip()[-500:]})")
    c = json.loads(json.dumps(cfg))
    del c["hosts"]["hv3"]["pools"]["kdata"]["path"]
    text = yaml.safe_dump(c, sort_keys=False)
    with open(bad, "w") as f:
        f.write(text)
    r = run([KUMO, "validate", "-f", bad], check_rc=False)
    check(located(r, bad, line_of(text, "kdata:"), ["a dir pool needs path:"]),
          f"a dir pool without path: validate fails, located ({(r.stdout + r.stderr).strip()[-300:]})")
    after = state(hv)
    check(after == before, "bad input changed nothing on any host (domains, networks, volumes, "
                           f"pools) {'' if after == before else (before, after)}")


def blank_device(env, hv):
    """hv3's lab VG removed through libvirt: its loop device holds nothing, as a new disk."""
    vg, dev = env["KUMO_LAB_HV3_VG"], env["KUMO_LAB_HV3_VG_DEVICE"]
    xml = os.path.join(workdir("kumo-pools-vg-"), "vg.xml")
    with open(xml, "w") as f:
        f.write(f"<pool type='logical'><name>labvg</name><source><device path='{dev}'/>"
                f"<name>{vg}</name><format type='lvm2'/></source>"
                f"<target><path>/dev/{vg}</path></target></pool>")
    virsh(hv["hv3"], "pool-define", xml)
    virsh(hv["hv3"], "pool-delete", "labvg")
    virsh(hv["hv3"], "pool-undefine", "labvg")
    check("labvg" not in pools(hv["hv3"]), f"hv3's lab volume group {vg} removed from {dev}")


def step_apply(env, hv, kumo, cfg):
    u = hv["hv3"]
    default_before = (pools(u)["default"]["xml"], volumes(u, "default"))
    p, plan = plan_json(kumo)
    made = sorted(c["address"] for c in (plan or {}).get("changes", [])
                  if c["kind"] == "pool" and c["action"] == "create")
    check(made == ["pool.hv3/kdata", "pool.hv3/klvm", "pool.hv3/kpool"],
          f"plan creates the three pools ({made}; {p.stderr.strip()[-300:]})")
    t = time.monotonic()
    a = kumo("apply", "--auto-approve")
    timings["apply_s"] = round(time.monotonic() - t, 1)
    print(a.stdout[-3000:], a.stderr[-2500:])
    if not check(a.returncode == 0 and "Apply complete" in a.stdout,
                 f"apply succeeds ({timings['apply_s']} s; {a.stderr.strip()[-500:]})"):
        return False
    check('made storage pool "kpool" on hv3 first' not in a.stderr and lock_secrets(u) == {},
          "apply locked hv3 before making its pools (no pool made ahead of the plan), lock released"
          f" ({lock_secrets(u)})")
    ps = pools(u)
    for name in ("kpool", "kdata", "klvm"):
        p = ps.get(name, {})
        check(p.get("active") and p.get("autostart") and "<vendor name='kumo'/>" in p.get("xml", "")
              and f"<product name='cluster:{CLUSTER}'/>" in p.get("xml", ""),
              f"{name}: active, autostarted, marked as kumo's for cluster {CLUSTER}")
    check(f"<device path='{env['KUMO_LAB_HV3_VG_DEVICE']}'/>" in ps.get("klvm", {}).get("xml", "")
          and "<name>klvm</name>" in ps.get("klvm", {}).get("xml", ""),
          "klvm is the volume group klvm on hv3's loop device")
    kp, kd = volumes(u, "kpool"), volumes(u, "kdata")
    check(f"kumo_{CLUSTER}_pooled_root.qcow2" in kp and f"kumo_{CLUSTER}_pooled_seed.iso" in kp
          and any(v.startswith("kumo-image_") for v in kp) and f"kumo-lock_{CLUSTER}" not in kp,
          f"pooled's root and seed and the base image are in kpool, the lock released ({kp})")
    check(kd == [f"kumo_{CLUSTER}_pooled_data-logs.qcow2"], f"the logs disk is in kdata ({kd})")
    xml = virsh(u, "dumpxml", "pooled")
    check("pool='kdata'" in xml and "pool='kpool'" in xml, "pooled's disks name kpool and kdata")
    rc, out = guest(u, "pooled", "ls", "/dev/disk/by-id/")
    check(rc == 0 and "virtio-logs" in out, f"the logs disk is in the guest ({out.strip()[:200]})")
    check((pools(u)["default"]["xml"], volumes(u, "default")) == default_before,
          "hv3's pool default (not kumo's) unchanged")
    check_converged(kumo, "plan clean after apply")
    return True


def step_drift(hv, kumo):
    u = hv["hv3"]
    virsh(u, "pool-autostart", "klvm", "--disable")
    virsh(u, "pool-destroy", "klvm")
    p, plan = plan_json(kumo)
    ch = [(c["address"], c["action"], sorted(a["name"] for a in c["attributes"]))
          for c in (plan or {}).get("changes", [])]
    check(ch == [("pool.hv3/klvm", "update", ["active", "autostart"])],
          f"a stopped pool of kumo's: plan starts it again ({ch})")
    a = kumo("apply", "--auto-approve")
    k = pools(u).get("klvm", {})
    check(a.returncode == 0 and k.get("active") and k.get("autostart"),
          f"apply started klvm again, autostarted ({a.stderr.strip()[-300:]})")
    check_converged(kumo, "plan clean after the drift is undone")


def step_fixed(env, hv, work, cfg):
    before = state(hv)
    c = json.loads(json.dumps(cfg))
    c["hosts"]["hv3"]["pools"]["kdata"]["path"] = env["KUMO_LAB_HV3_DIR"] + "/kumo-elsewhere"
    bad = os.path.join(work, "moved.yaml")
    text = yaml.safe_dump(c, sort_keys=False)
    with open(bad, "w") as f:
        f.write(text)
    r = run([KUMO, "plan", "-f", bad, "--cache-dir", os.path.join(work, "cache")], check_rc=False)
    check(located(r, bad, line_of(text, "kdata:"),
                  ["pool.hv3/kdata: kumo made this pool as dir on", "are fixed"]),
          f"a new path for kdata: plan error naming what kumo made ({(r.stdout + r.stderr)[-300:]})")
    check(state(hv) == before, "nothing changed")


def step_destroy(env, hv, kumo):
    u = hv["hv3"]
    virsh(u, "vol-create-as", "kdata", "handmade.img", "1M", check_rc=False)
    d = kumo("destroy", "--auto-approve")
    print(d.stdout[-2500:], d.stderr[-1500:])
    left = pools(u)
    check(d.returncode == 0 and "pooled" not in inventory(u)["domains"],
          f"destroy succeeds ({d.stderr.strip()[-300:]})")
    check("kpool" not in left and "klvm" not in left, f"kpool and klvm removed ({sorted(left)})")
    check("kdata" in left and volumes(u, "kdata") == ["handmade.img"],
          f"kdata kept with only the hand-made volume ({volumes(u, 'kdata')})")
    check("pool.hv3/kdata: kumo made this pool but keeps it" in d.stdout + d.stderr
          and "handmade.img" in d.stdout + d.stderr, "destroy warned why kdata stays")
    kp = os.path.join(env["KUMO_LAB_HV3_DIR"], "kumo-kpool")
    check(not os.path.exists(kp), f"kpool's directory is gone ({kp})")
    vg = run(["pvs", "--noheadings", env["KUMO_LAB_HV3_VG_DEVICE"]], check_rc=False)
    print("pvs:", vg.returncode, vg.stdout, vg.stderr)
    virsh(u, "vol-delete", "handmade.img", "--pool", "kdata", check_rc=False)
    d = kumo("destroy", "--auto-approve")
    print(d.stdout[-1500:], d.stderr[-1500:])
    check(d.returncode == 0 and "kdata" not in pools(u) and "so it is not locked" not in d.stderr
          and lock_secrets(u) == {},
          "once emptied, destroy removes kdata too (hv3 locked though kpool is gone; lock released)")
    check(not any(n.startswith("k") for n in pools(u)), f"no pool of kumo's left ({sorted(pools(u))})")


def main():
    env = lab_up()
    hv = lab_hosts(env)
    work = workdir("kumo-pools-e2e-")
    cfg = config(env, hv)
    path = os.path.join(work, "kumo.yaml")
    save(cfg, path)
    kumo = lambda *a: run([KUMO, *a, "-f", path, "--cache-dir", os.path.join(work, "cache")],
                          check_rc=False)
    step_bad_input(env, {"hv1": hv["hv1"], "hv3": hv["hv3"]}, work, cfg)
    blank_device(env, hv)
    if step_apply(env, hv, kumo, cfg):
        step_drift(hv, kumo)
        step_fixed(env, {"hv1": hv["hv1"], "hv3": hv["hv3"]}, work, cfg)
    step_destroy(env, hv, kumo)


def teardown():
    kill_started()
    lab_down()
    summary()


if __name__ == "__main__":
    main_guarded(main, teardown)
