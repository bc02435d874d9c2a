#!/usr/bin/python3
"""e2e: kumo apply / status / destroy of the three-host example on the lab (hv3 over qemu+ssh).

The cluster is examples/web-cluster.yaml with the lab's hosts and image (lab guests have no
package mirror: `packages` are left out, and web's runcmd, which starts nginx, is replaced by one
that leaves a marker). Before kumo runs, a VM and a network are defined by hand on hv1.

  1. plan: the image is to be uploaded to all three hosts;
  2. apply from nothing: every VM reaches cloud-init done; inside each guest (through the guest
     agent) hostname, user, ssh key, write_files, runcmd effects, static addresses are what the
     file says, VMs sharing a host's network resolve each other by name, root disks are qcow2
     overlays on the uploaded base image;
  3. a second plan has no changes (--detailed-exitcode 0); a second apply uploads nothing;
  4. status lists every VM as ready; day two (tests/e2e/day_two.py): kumo ssh by name through
     the hosts, host keys learned from the guests and a forged one refused, kumo console in a
     pty, Ansible through kumo inventory, status --json's addresses by network, bad inputs;
  5. destroy is refused while api has prevent_destroy (nothing changes on any host);
  6. after lifting prevent_destroy, destroy --target vm.web-1 reads only web-1's objects and
     removes exactly its domain and volumes; then destroy leaves nothing of the cluster on any
     host, while the hand-made VM and network (and the base images) are untouched.

usage: apply_e2e.py path/to/kumo
"""
import base64
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from common import (KUMO, check, guest, inventory, kumo_runner, lab_down, lab_hosts,  # noqa: E402
                    lab_up, main_guarded, run, save, summary, timings, virsh, web_cluster, workdir)
from day_two import add_access, check_bad_inputs, check_day_two, check_not_running, ssh_keypair  # noqa: E402


# Leading spaces, YAML's merge key, a tab, CRLF, unicode and trailing newlines: cloud-init in the
# guest must write these bytes exactly.
EXACT = "  leading spaces\n<<\n\ttab: x\r\nunicode \u96f2 \u2713\n- not a list\ntrailing\n\n\n"


def variant(env, work):
    """examples/web-cluster.yaml, made to run on the lab (common.web_cluster), with web's runcmd
    leaving a marker, api pinned to hv2, and the test's own admin key (day two logs in with it)."""
    cfg = web_cluster(env)
    key, pub = ssh_keypair(work)
    cfg["variables"]["admin_key"]["default"] = pub
    add_access(cfg, env, key)
    cfg["vms"]["web"]["cloud_init"]["runcmd"] = [["sh", "-c", "echo festival > /var/tmp/runcmd-done"]]
    # A file whose content YAML can only carry exactly when quoted with care.
    cfg["vms"]["web"]["cloud_init"]["write_files"].append(
        {"path": "/etc/kumo-exact", "content": EXACT})
    # Each host's "front" is its own NAT network: pin api to hv2, where spread places web-1 next
    # to it (db is pinned to hv3, web-0 takes the empty hv1), so that name resolution between
    # two VMs on one network is checked, and every host gets a VM (and the image).
    cfg["vms"]["api"]["host"] = "hv2"
    path = os.path.join(work, "kumo.yaml")
    save(cfg, path)
    return path, cfg


def main():
    env = lab_up()
    hv = lab_hosts(env)
    work = workdir("kumo-apply-e2e-")
    os.environ["XDG_STATE_HOME"] = os.path.join(work, "state")  # kumo's known_hosts, ssh_config
    cfg_path, cfg = variant(env, work)
    cache = os.path.join(work, "cache")
    vars_ = [f"--var=hv1={hv['hv1']}", f"--var=hv2={hv['hv2']}", f"--var=hv3={hv['hv3']}"]
    common = ["-f", cfg_path, "--cache-dir", cache, *vars_]
    kumo = kumo_runner(*common)

    # Objects kumo did not make, defined by hand before kumo runs.
    with open(os.path.join(work, "hand-net.xml"), "w") as f:
        f.write("<network><name>handmade-net</name><bridge name='hand0'/>"
                "<ip address='10.99.0.1' prefix='24'/></network>")
    virsh(hv["hv1"], "net-define", os.path.join(work, "hand-net.xml"))
    with open(os.path.join(work, "hand-vm.xml"), "w") as f:
        f.write("<domain type='qemu'><name>handmade-vm</name><memory unit='MiB'>64</memory>"
                "<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>")
    virsh(hv["hv1"], "define", os.path.join(work, "hand-vm.xml"))

    # 1. plan
    p = kumo("plan", "--json")
    check(p.returncode == 0, f"plan exits 0 ({p.stderr.strip()[-300:]})")
    plan = json.loads(p.stdout) if p.returncode == 0 else {"images": [], "changes": []}
    img = plan["images"][0] if plan.get("images") else {}
    check(sorted(img.get("upload_to", [])) == ["hv1", "hv2", "hv3"],
          f"plan: image debian-12 is uploaded to hv1, hv2, hv3 (got {img.get('upload_to')})")
    placed = {c["address"][3:]: c["host"] for c in plan["changes"] if c["kind"] == "vm"}
    print("placement:", placed)
    human = kumo("plan").stdout
    check(re.search(r"image\.debian-12: .*upload to hv1, hv2, hv3", human) is not None,
          "plan (human) says: image.debian-12 ... upload to hv1, hv2, hv3")

    saved = os.path.join(work, "before.plan")
    check(kumo("plan", "-q", "-o", saved).returncode == 0, "plan -o saves the plan")
    inv0 = {h: inventory(u) for h, u in hv.items()}
    r = run([KUMO, "apply", *common], check_rc=False, input="")
    check(r.returncode == 1 and "--auto-approve" in r.stderr,
          f"apply without a terminal and without --auto-approve refuses ({r.stderr.strip()[-200:]})")
    check({h: inventory(u) for h, u in hv.items()} == inv0, "the refused apply changed nothing on any host")

    # 2. apply from nothing
    t = time.monotonic()
    a = kumo("apply", "--auto-approve")
    timings["apply_s"] = round(time.monotonic() - t, 1)
    print(a.stdout[-4000:], a.stderr[-2000:])
    check(a.returncode == 0 and "Apply complete" in a.stdout, f"apply from nothing succeeds ({timings['apply_s']} s)")
    uploads = re.findall(r"ok\s+image\.debian-12 on (hv\d): upload", a.stderr)
    check(sorted(uploads) == ["hv1", "hv2", "hv3"], f"the image was uploaded once to each host (got {uploads})")

    vms = {"web-0": ("web", ["10.20.0.10"]), "web-1": ("web", ["10.20.0.11"]),
           "api": ("api", ["10.20.0.20", "10.30.0.20"]), "db": ("db", ["10.30.0.30"])}
    key = cfg["variables"]["admin_key"]["default"]
    for name, (group, ips) in vms.items():
        host = placed.get(name)
        if not check(host is not None, f"{name} was placed"):
            continue
        uri = hv[host]
        rc, out = guest(uri, name, "hostname")
        check(out.strip() == name, f"{name} on {host}: hostname is {name} (got {out.strip()!r})")
        rc, out = guest(uri, name, "id", "-nG", "admin")
        check(rc == 0 and "sudo" in out.split(), f"{name}: user admin exists, in group sudo ({out.strip()})")
        rc, out = guest(uri, name, "cat", "/home/admin/.ssh/authorized_keys")
        check(key in out, f"{name}: admin's authorized_keys holds the admin key")
        rc, out = guest(uri, name, "ip", "-4", "-o", "addr")
        for ip in ips:
            check(f" {ip}/" in out, f"{name}: has its static address {ip}")
        if group == "web":
            rc, out = guest(uri, name, "cat", "/var/www/html/index.html")
            check(out == "<h1>Festival</h1>\n", f"{name}: write_files wrote index.html")
            rc, out = guest(uri, name, "base64", "-w0", "/etc/kumo-exact")
            got = base64.b64decode(out.strip() or "") if rc == 0 else b""
            check(got == EXACT.encode(), f"{name}: write_files wrote /etc/kumo-exact byte for byte "
                                         f"(got {got!r})")
            rc, out = guest(uri, name, "cat", "/var/tmp/runcmd-done")
            check(out.strip() == "festival", f"{name}: runcmd ran")
        if group == "api":
            rc, out = guest(uri, name, "findmnt", "-n", "-o", "SOURCE,FSTYPE", "/srv/data")
            check(rc == 0 and "ext4" in out, f"api: runcmd made and mounted /srv/data on its data disk ({out.strip()})")
        root = virsh(uri, "vol-dumpxml", "--pool", "default", f"kumo_festival_{name}_root.qcow2")
        check(re.search(r"<backingStore>\s*<path>[^<]*kumo-image_sha256-", root) is not None,
              f"{name}: root disk is a qcow2 overlay on the host's base image volume")
    # Name resolution between VMs that share a host's front network (the one with DHCP/DNS).
    front = {"web-0": "10.20.0.10", "web-1": "10.20.0.11", "api": "10.20.0.20"}
    pairs = [(x, y) for x in front for y in front if x != y and placed.get(x) and placed.get(x) == placed.get(y)]
    print("VM pairs on one host's front network:", pairs)
    check(len(pairs) > 0, "at least two VMs share one host's front network")
    for x, y in pairs:
        # The lab image has no resolver manager (no systemd-resolved/resolvconf) to take the DNS
        # server from DHCP: point the guest at its network's DNS (the host side, .1) by hand.
        guest(hv[placed[x]], x, "sh", "-c", "echo 'nameserver 10.20.0.1' > /etc/resolv.conf")
        rc, out = guest(hv[placed[x]], x, "getent", "hosts", f"{y}.festival.internal")
        check(rc == 0 and front[y] in out, f"{x} resolves {y}.festival.internal to {front[y]} ({out.strip()})")

    # 3. idempotence
    p = kumo("plan", "--detailed-exitcode")
    check(p.returncode == 0, f"second plan: no changes, exit 0 with --detailed-exitcode (got {p.returncode}: {p.stdout[-800:]})")
    a2 = kumo("apply", "--auto-approve")
    check(a2.returncode == 0 and "upload" not in a2.stdout + a2.stderr, "second apply changes nothing and uploads nothing")

    r = run([KUMO, "apply", "--cache-dir", cache, saved], check_rc=False)
    check(r.returncode == 1 and "stale" in r.stderr,
          f"the plan saved before the apply is refused as stale ({r.stderr.strip()[-200:]})")

    # 4. status
    s = kumo("status", "--json")
    st = json.loads(s.stdout) if s.returncode == 0 else {"vms": []}
    check(sorted(v["name"] for v in st["vms"] if v["ready"]) == sorted(vms),
          f"status: all four VMs ready ({[(v['name'], v['ready_detail']) for v in st['vms']]})")

    # Day two, on the cluster as it is
    t = time.monotonic()
    check_day_two(kumo, common, cfg, hv, placed, work)
    check_bad_inputs(kumo, common, cfg, hv, placed, work)
    timings["day_two_s"] = round(time.monotonic() - t, 1)

    # 5. destroy is refused while api has prevent_destroy; nothing changes
    before = {h: inventory(u) for h, u in hv.items()}
    d = kumo("destroy", "--auto-approve")
    check(d.returncode == 1 and "prevent_destroy" in d.stderr, f"destroy refused: api has prevent_destroy ({d.stderr.strip()[-300:]})")
    check({h: inventory(u) for h, u in hv.items()} == before, "the refused destroy changed nothing on any host")

    # 6. lift prevent_destroy, then destroy
    cfg["vms"]["api"]["lifecycle"]["prevent_destroy"] = False
    save(cfg, cfg_path)
    saved = os.path.join(work, "lift.plan")
    check(kumo("plan", "-q", "-o", saved).returncode == 0, "plan -o saves the prevent_destroy change")
    a3 = run([KUMO, "apply", "--cache-dir", cache, saved], check_rc=False)
    check(a3.returncode == 0 and "Apply complete" in a3.stdout,
          f"apply PLANFILE records prevent_destroy: false ({a3.stdout[-300:]} {a3.stderr[-300:]})")
    check_not_running(kumo, hv, placed, "web-1")
    # destroy --target reads only the target's objects and removes exactly those
    before = {h: inventory(u) for h, u in hv.items()}
    d = kumo("destroy", "--target", "vm.web-1", "--auto-approve")
    check(d.returncode == 0 and "Destroy complete" in d.stdout and "the targets' read in" in d.stdout,
          f"destroy --target vm.web-1 reads only its objects ({d.stdout[-800:]} {d.stderr[-300:]})")
    after = {h: inventory(u) for h, u in hv.items()}
    gone = {h: [sorted(set(before[h][k]) - set(after[h][k])) for k in ("domains", "networks", "volumes")]
            for h in hv}
    check(gone[placed["web-1"]][0] == ["web-1"] and gone[placed["web-1"]][1] == []
          and gone[placed["web-1"]][2] and all("_web-1_" in v for v in gone[placed["web-1"]][2])
          and all(g == [[], [], []] for h, g in gone.items() if h != placed["web-1"]),
          f"destroy --target removed web-1's domain and volumes and nothing else ({gone})")
    d = kumo("destroy", "--auto-approve")
    print(d.stdout[-2000:], d.stderr[-1000:])
    check(d.returncode == 0 and "Destroy complete" in d.stdout, "destroy succeeds")
    for h, u in hv.items():
        inv = inventory(u)
        left = [n for n in inv["domains"] + inv["networks"] + inv["volumes"] if "festival" in n]
        check(left == [], f"{h}: nothing of cluster festival is left ({left})")
        check(any(v.startswith("kumo-image_") for v in inv["volumes"]), f"{h}: the base image stays")
    after = inventory(hv["hv1"])
    check("handmade-vm" in after["domains"] and "handmade-net" in after["networks"],
          "the hand-made VM and network on hv1 are untouched")
    p = kumo("plan", "--json")
    creates = [c["address"] for c in json.loads(p.stdout)["changes"] if c["kind"] == "vm" and c["action"] == "create"] \
        if p.returncode == 0 else []
    check(sorted(creates) == sorted("vm." + n for n in vms), f"after destroy, plan creates every VM again ({creates})")

    # 7. kumo images: the base image on every host, backing nothing now; prune removes it
    i = kumo("images", "--json")
    imgs = json.loads(i.stdout) if i.returncode == 0 else {"hosts": [], "cache": []}
    check(sorted(h["host"] for h in imgs["hosts"] if h["complete"] and not h["used_by"]) == ["hv1", "hv2", "hv3"],
          f"images: a complete, unused base image on each host ({imgs['hosts']})")
    check(len(imgs["cache"]) == 1, "images: one image in the local cache")
    i = kumo("images", "prune", "--dry-run")
    check(i.returncode == 0 and i.stdout.count("would remove kumo-image_") == 3, "images prune --dry-run names 3 host images")
    check(all(any(v.startswith("kumo-image_") for v in inventory(u)["volumes"]) for u in hv.values()),
          "--dry-run removed nothing")
    i = kumo("images", "prune", "--keep-cache")
    check(i.returncode == 0, f"images prune succeeds ({i.stderr.strip()[-200:]})")
    check(not any(v.startswith("kumo-image_") for u in hv.values() for v in inventory(u)["volumes"]),
          "prune removed the base image (and its marker) from every host")
    check(len(os.listdir(os.path.join(cache, "sha256"))) == 2, "--keep-cache kept the local cache")


if __name__ == "__main__":
    main_guarded(main, lab_down)
    summary()
