#!/usr/bin/python3
"""e2e: `kumo plan` against real libvirtd hosts of the lab (hv3 reached over qemu+ssh).

Objects are defined by hand with virsh (kumo-owned via kumo's metadata, and unowned ones); the
plan must show the expected creates/updates/deletes, never propose touching what kumo did not
make, fail with a clear message on a name conflict or an unreachable host, and change nothing
on any host (plan is read-only: each host's inventory is compared before and after).
No guest is booted: domains are only defined.

usage: plan_e2e.py path/to/kumo
"""
import json
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from common import (KUMO, LAB, check, failures, lab_hosts, lab_up, main_guarded, run,  # noqa: E402
                    virsh, workdir)


def define(uri, xml, kind="define"):
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
        f.write(xml)
    try:
        virsh(uri, kind, f.name)
    finally:
        os.unlink(f.name)


def inventory(uri):
    """Stricter than common.inventory: vol-list's whole lines (names and paths) and every
    domain's XML, so that "plan changed nothing" covers definitions too."""
    return {
        "domains": sorted(virsh(uri, "list", "--all", "--name").split()),
        "networks": sorted(virsh(uri, "net-list", "--all", "--name").split()),
        "volumes": sorted(virsh(uri, "vol-list", "default").split()),
        "xml": [virsh(uri, "dumpxml", d) for d in sorted(virsh(uri, "list", "--all", "--name").split())],
    }


def domain_xml(name, memory_mib, metadata=""):
    return f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>{memory_mib}</memory>
<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
<metadata>{metadata}</metadata><devices/></domain>"""


def owner(cluster, address, spec):
    spec_xml = json.dumps(spec).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f"<kumo:owner xmlns:kumo='urn:kumo:owner:1'><kumo:cluster>{cluster}</kumo:cluster>"
            f"<kumo:address>{address}</kumo:address><kumo:spec-hash>x</kumo:spec-hash>"
            f"<kumo:spec>{spec_xml}</kumo:spec></kumo:owner>")


def kumo_plan(cfg, *extra):
    return run([KUMO, "plan", "-f", cfg, *extra], check_rc=False)


def main():
    env = lab_up()
    hv1, hv2, hv3 = lab_hosts(env).values()  # hv3: the remote path, qemu+ssh
    work = workdir("kumo-plan-e2e-")
    cfg = os.path.join(work, "kumo.yaml")
    with open(cfg, "w") as f:
        f.write(f"""cluster: fest
hosts:
  hv1: {{uri: "{hv1}", virt_type: qemu}}
  hv2: {{uri: "{hv2}", virt_type: qemu}}
  hv3: {{uri: "{hv3}", virt_type: qemu}}
images:
  deb: {{path: "{env['KUMO_LAB_IMAGE']}"}}
networks:
  front: {{cidr: 10.50.0.0/24, domain: fest.internal}}
vms:
  web: {{count: 2, image: deb, memory: 512MiB, disks: {{data: 1GiB}}}}
""")

    # 1. Empty hosts: everything is created; placement spreads web-0, web-1.
    p = kumo_plan(cfg, "--json", "--detailed-exitcode")
    check(p.returncode == 2, f"plan on empty hosts exits 2 with --detailed-exitcode (got {p.returncode}: {p.stderr.strip()})")
    plan = json.loads(p.stdout) if p.stdout else {"changes": [], "hosts": []}
    by = {(c["address"], c["host"]): c for c in plan["changes"]}
    check(("vm.web-0", "hv1") in by and ("vm.web-1", "hv2") in by, "web-0 -> hv1, web-1 -> hv2 (spread)")
    check(all(("network.front", h) in by for h in ("hv1", "hv2", "hv3")), "network front planned on all three hosts")
    check(plan.get("summary", {}).get("add") == 5, f"summary: 5 to add (got {plan.get('summary')})")
    check(all(h["reachable"] and h["api_calls"] > 0 for h in plan["hosts"]), "all three hosts read (hv3 over ssh)")
    saved = os.path.join(work, "plan.saved")
    run([KUMO, "plan", "-q", "-f", cfg, "-o", saved], check_rc=False)
    spec = json.load(open(saved))
    web1 = next(c for c in spec["changes"] if c["address"] == "vm.web-1")["desired"]["record"]
    check(oct(os.stat(saved).st_mode & 0o777) == "0o600", "saved plan is private (0600)")

    # 2. Hand-made objects: kumo's (via metadata / reserved names) and others'.
    keys = ["image", "image_id", "cpus", "memory", "disk", "data_disks", "nics", "autostart", "group",
            "prevent_destroy", "instance_id", "user_data_sha256", "network_config_sha256"]
    recorded = {k: web1[k] for k in keys}
    define(hv2, domain_xml("web-1", 256, owner("fest", "vm.web-1", recorded)))    # ours, memory drifted
    define(hv3, domain_xml("zombie", 128, owner("fest", "vm.zombie", {})))         # ours, not in the file
    virsh(hv3, "vol-create-as", "default", "kumo_fest_zombie_root.qcow2", "1M", "--format", "qcow2")
    define(hv1, domain_xml("legacy", 128))                                          # not ours
    define(hv1, domain_xml("other-0", 128, owner("other", "vm.other-0", {})))      # another cluster's
    define(hv1, "<network><name>handmade</name><bridge name='hm0'/><ip address='192.168.77.1' "
                "netmask='255.255.255.0'/></network>", "net-define")
    # kumo's reserved network name, made by hand: without kumo's record of making it
    # (kumo-net_fest_stray_<uuid>) it is not kumo's, and no plan deletes it.
    define(hv1, "<network><name>kumo_fest_stray</name><bridge name='kst0'/></network>", "net-define")
    virsh(hv1, "vol-create-as", "default", "keepme.qcow2", "1M", "--format", "qcow2")
    virsh(hv1, "vol-create-as", "default", "kumo_other_x_root.qcow2", "1M", "--format", "qcow2")
    before = {u: inventory(u) for u in (hv1, hv2, hv3)}

    p = kumo_plan(cfg, "--json", "--detailed-exitcode")
    check(p.returncode == 2, f"plan with hand-made objects exits 2 (got {p.returncode}: {p.stderr.strip()})")
    plan = json.loads(p.stdout) if p.stdout else {"changes": []}
    by = {(c["address"], c["host"]): c for c in plan["changes"]}
    w1 = by.get(("vm.web-1", "hv2"), {})
    mem = next((a for a in w1.get("attributes", []) if a["name"] == "memory"), {})
    check(w1.get("action") == "update", f"vm.web-1 (kumo's, on hv2) is updated, not recreated (got {w1.get('action')})")
    check(mem.get("before") == "256 MiB" and mem.get("after") == "512 MiB" and mem.get("drift"),
          f"memory drift 256 MiB -> 512 MiB is shown as drift ({mem})")
    z = by.get(("vm.zombie", "hv3"), {})
    check(z.get("action") == "delete", "vm.zombie (kumo's, not in the file) is deleted on hv3 (over ssh)")
    check(by.get(("volume.zombie/root", "hv3"), {}).get("action") == "delete", "its root volume goes with it")
    touched = [c["address"] for c in plan["changes"]
               if any(s in c["address"] for s in ("legacy", "other", "handmade", "keepme", "stray"))]
    check(not touched, f"nothing kumo did not make is in the plan ({touched})")
    check(plan.get("summary", {}).get("destroy") == 1, f"exactly one destroy (got {plan.get('summary')})")
    human = kumo_plan(cfg)
    check("Plan: 4 to add, 1 to change, 0 to replace, 1 to destroy." in human.stdout,
          "human plan ends with the summary line")

    # 3. Names kumo needs, held by domains it did not make. An unpinned VM is placed elsewhere;
    #    a pinned one fails the plan, naming host and domain.
    define(hv1, domain_xml("web-0", 128))
    define(hv3, domain_xml("web-0", 128))
    p = kumo_plan(cfg, "--json")
    j = json.loads(p.stdout) if p.returncode == 0 else {"changes": []}
    hosts = [c["host"] for c in j["changes"] if c["address"] == "vm.web-0"]
    check(hosts == ["hv2"], f"unpinned web-0 avoids the hosts where the name is taken (placed on {hosts})")
    pinned = os.path.join(work, "pinned.yaml")
    with open(cfg) as f, open(pinned, "w") as g:
        g.write(f.read().replace("web: {count: 2,", "web: {host: hv1, count: 2,"))
    p = kumo_plan(pinned)
    check(p.returncode == 1, "a VM pinned to hv1, where an unowned web-0 holds its name, fails the plan (exit 1)")
    check('host "hv1": a domain named "web-0" already exists and kumo did not make it' in p.stderr,
          f"the error names the host and the domain ({p.stderr.strip()[:300]})")
    check("nothing was changed on any host" in p.stderr, "and says nothing was changed")
    virsh(hv1, "undefine", "web-0")
    virsh(hv3, "undefine", "web-0")
    before = {u: inventory(u) for u in (hv1, hv2, hv3)}

    # 4. An unreachable host: fails by default, named; --skip-unreachable plans the others.
    bad = os.path.join(work, "bad.yaml")
    with open(cfg) as f, open(bad, "w") as g:
        g.write(f.read().replace(hv3, "qemu+unix:///system?socket=/nonexistent/kumo-e2e.sock"))
    p = run([KUMO, "plan", "-f", bad, "--timeout", "3"], check_rc=False)
    check(p.returncode == 1 and "host hv3 (qemu+unix:///system?socket=/nonexistent/kumo-e2e.sock)" in p.stderr,
          f"unreachable hv3 fails the plan and is named ({p.stderr.strip()[:200]})")
    p = run([KUMO, "plan", "-f", bad, "--timeout", "3", "--skip-unreachable", "--json"], check_rc=False)
    j = json.loads(p.stdout) if p.returncode == 0 else {}
    check(any("hv3" in w and "NOT looked at" in w for w in j.get("warnings", [])),
          "--skip-unreachable plans the others and says loudly which host was not looked at")

    # 5. A broken file: located error, no host contacted, nothing changed.
    broken = os.path.join(work, "broken.yaml")
    with open(cfg) as f, open(broken, "w") as g:
        g.write(f.read().replace("memory: 512MiB", "memory: 512"))
    p = kumo_plan(broken)
    check(p.returncode == 1 and "broken.yaml:11:" in p.stderr and "has no unit" in p.stderr,
          f"bad input gives a located error ({p.stderr.strip()[:160]})")

    after = {u: inventory(u) for u in (hv1, hv2, hv3)}
    check(after == before, "kumo plan changed nothing on any host")

    forged_plans(cfg, work, hv1, hv3)


def kumo_apply_saved(path):
    return run([KUMO, "apply", path], check_rc=False)


def forged_plans(cfg, work, hv1, hv3):
    """6. Saved plans are checked, not trusted: a saved plan edited to delete a domain kumo did
    not make is refused, naming it, and the domain survives. No guest boots: the plans only
    delete: the file below has no VMs, so the saved plan deletes kumo's web-1 (hv2) and zombie
    (hv3); the forged plans keep only zombie's changes."""
    empty = os.path.join(work, "empty.yaml")
    with open(cfg) as f, open(empty, "w") as g:
        g.write(f.read().split("images:")[0])
    saved = os.path.join(work, "zombie.plan")
    p = run([KUMO, "plan", "-q", "-f", empty, "-o", saved], check_rc=False)
    check(p.returncode == 0, f"plan -o of the deletes saved ({p.stderr.strip()[:200]})")
    doc = json.load(open(saved))
    check({c["action"] for c in doc["changes"]} == {"delete"} and not doc["images"]
          and "vm.zombie" in [c["address"] for c in doc["changes"]],
          f"the saved plan only deletes, vm.zombie among them ({[c['address'] for c in doc['changes']]})")
    doc["changes"] = [c for c in doc["changes"] if "zombie" in c["address"]]
    legacy_uuid = virsh(hv1, "domuuid", "legacy").strip()

    def write(name, edit):
        forged = json.loads(json.dumps(doc))
        edit(forged)
        path = os.path.join(work, name)
        with open(path, "w") as f:
            json.dump(forged, f)
        os.chmod(path, 0o600)
        return path

    # The delete pointed at hv1's "legacy" (no kumo metadata), consistently: address, host, name
    # and UUID. Only the apply's own look at the domain can tell.
    def at_legacy(forged):
        zombie = forged["changes"][0]
        zombie.update(address="vm.legacy", host="hv1")
        zombie["observed"].update(name="legacy", uuid=legacy_uuid)
    p = kumo_apply_saved(write("forged.plan", at_legacy))
    out = p.stdout + p.stderr
    check(p.returncode == 1, f"apply of the forged plan exits 1 (got {p.returncode})")
    check("vm.legacy on host hv1" in out and "the domain legacy there is not this cluster's (no kumo metadata)" in out
          and "refused" in out, f"the refusal names the object and the host ({out.strip()[-400:]})")
    check("legacy" in virsh(hv1, "list", "--all", "--name").split(), "the foreign domain legacy survives (virsh)")
    check("zombie" in virsh(hv3, "list", "--all", "--name").split(), "and vm.zombie, not in the forged plan, too")

    # Only the name edited: the plan contradicts itself and is refused on loading.
    def name_only(forged):
        forged["changes"][0]["observed"]["name"] = "legacy"
    p = kumo_apply_saved(write("renamed.plan", name_only))
    check(p.returncode == 1 and "saved plan is damaged" in p.stderr and "legacy" in p.stderr,
          f"a delete whose domain is not its address is refused on loading ({p.stderr.strip()[:300]})")

    # A path where a name belongs (the image cache, a host's pool): refused on loading.
    def path_name(forged):
        forged["changes"][1]["observed"]["name"] = "../../etc/passwd"
    p = kumo_apply_saved(write("path.plan", path_name))
    check(p.returncode == 1 and "saved plan is damaged" in p.stderr,
          f"a volume name that is a path is refused on loading ({p.stderr.strip()[:300]})")

    # The target made foreign on the host since the plan was saved (undefined, then defined again
    # without kumo's metadata): the hosts changed, the saved plan is refused, the domain stays.
    xml = virsh(hv3, "dumpxml", "zombie")
    virsh(hv3, "undefine", "zombie")
    define(hv3, domain_xml("zombie", 128))
    p = kumo_apply_saved(write("zombie-only.plan", lambda forged: None))
    check(p.returncode == 1 and "stale" in p.stderr,
          f"the saved plan is refused once its target became foreign ({p.stderr.strip()[:300]})")
    check("zombie" in virsh(hv3, "list", "--all", "--name").split(), "the now foreign zombie survives (virsh)")
    virsh(hv3, "undefine", "zombie")
    define(hv3, xml)


def teardown():
    run([LAB, "down"], check_rc=False)
    clean = run([LAB, "check-clean"], check_rc=False)
    check(clean.returncode == 0, f"lab left nothing behind ({clean.stdout.strip()})")


if __name__ == "__main__":
    main_guarded(main, teardown)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    sys.exit(1 if failures else 0)
