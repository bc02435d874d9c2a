#!/usr/bin/python3
"""e2e: the CI examples' kumo commands, on the lab, in the order CI runs them.

The commands are read from examples/ci/github-actions.yml (tests/ci_examples.py checks that
gitlab-ci.yml has the very same lines) and run with bash, as CI runs them, with $KUMO_CONFIG,
$KUMO_PLAN and a sensitive variable from the environment (a CI secret). The pull request's job:
validate (0), plan --json --detailed-exitcode -o (2: changes; the JSON parses; the saved plan is
0600), show --markdown of the saved plan (names the changes, shows the cloud-config with the
secret masked); the merge's job: apply of the saved plan (0); then a
plan changes nothing (0). Staleness: a second pull request is planned, a host is changed by hand
after that, and apply of its saved plan exits 1 ("stale") with nothing changed on any host.

No guest boots (CI time is scarce): a network on both hosts and a VM that is defined, not
started (`running: false`). Hosts are reached over their unix sockets only. ~25 s.

usage: ci_e2e.py path/to/kumo
"""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))
from ci_examples import kumo_commands  # noqa: E402
from common import (KUMO, LAB, ROOT, check, failures, main_guarded, run, summary,  # noqa: E402
                    timings, virsh, workdir)

SECRET = "s3cret-from-ci-4711"
EXAMPLE = os.path.join(ROOT, "examples", "ci", "github-actions.yml")


def config(env, extra_network=False):
    hv1, hv2 = env["KUMO_LAB_HV1_URI"], env["KUMO_LAB_HV2_URI"]
    back = "  back: {mode: isolated, cidr: 10.61.0.0/24, dhcp: false}\n" if extra_network else ""
    return f"""cluster: ci
variables:
  admin_password: {{sensitive: true}}     # from the CI's secrets: KUMO_VAR_admin_password
hosts:
  hv1: {{uri: "{hv1}", virt_type: qemu}}
  hv2: {{uri: "{hv2}", virt_type: qemu}}
images:
  deb: {{path: "{env['KUMO_LAB_IMAGE']}", checksum_url: "file://{env['KUMO_LAB_IMAGE_SHA256SUMS']}"}}
networks:
  front: {{cidr: 10.60.0.0/24, domain: ci.internal}}
{back}vms:
  builder:
    host: hv2
    image: deb
    memory: 256MiB
    running: false
    wait_for: none
    cloud_init:
      write_files:
        - {{path: /etc/ci-admin, permissions: "0600", content: "${{var.admin_password}}\\n"}}
"""


def inventory(uri):
    """Domains (and which run), networks (and their autostart), volumes of a host."""
    nets = virsh(uri, "net-list", "--all", "--name").split()
    return {"domains": sorted(virsh(uri, "list", "--all", "--name").split()),
            "running": sorted(virsh(uri, "list", "--state-running", "--name").split()),
            "networks": {n: virsh(uri, "net-info", n) for n in nets},
            "volumes": sorted(virsh(uri, "vol-list", "default").split())}


class CI:
    """Runs an example's kumo lines as CI does: bash, in the job's directory, kumo on PATH."""

    def __init__(self, work, cfg):
        self.commands = kumo_commands(EXAMPLE)
        bindir = os.path.join(work, "bin")
        os.makedirs(bindir)
        os.symlink(KUMO, os.path.join(bindir, "kumo"))
        self.env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"], KUMO_CONFIG=cfg,
                        KUMO_PLAN="kumo.plan", KUMO_VAR_admin_password=SECRET,
                        XDG_CACHE_HOME=os.path.join(work, "cache"), HOME=work)
        self.dir = work

    def __call__(self, role):
        line = self.commands[role]
        t = time.monotonic()
        p = subprocess.run(["bash", "-c", line], cwd=self.dir, env=self.env, capture_output=True,
                           text=True, timeout=600)
        key = role + "_s" if role + "_s" not in timings else role + "_again_s"
        timings[key] = round(time.monotonic() - t, 1)
        print(f"$ {line}  -> {p.returncode}", flush=True)
        return p

    def file(self, name):
        path = os.path.join(self.dir, name)
        return open(path).read() if os.path.exists(path) else ""


def main():
    t0 = time.monotonic()
    run([LAB, "down"])
    print(run([LAB, "up", "2"]).stdout, end="")
    timings["lab_up_s"] = round(time.monotonic() - t0, 1)
    env = json.loads(run([LAB, "env", "--json"]).stdout)
    hv1, hv2 = env["KUMO_LAB_HV1_URI"], env["KUMO_LAB_HV2_URI"]
    work = workdir("kumo-ci-e2e-")
    cfg = os.path.join(work, "kumo.yaml")
    with open(cfg, "w") as f:
        f.write(config(env))
    ci = CI(work, cfg)
    print("commands from", os.path.relpath(EXAMPLE, ROOT), json.dumps(ci.commands, indent=1))

    # The pull request's job.
    p = ci("version")
    check(p.returncode == 0 and p.stdout.startswith("kumo "), f"kumo --version ({p.stdout.strip()})")
    p = ci("validate")
    check(p.returncode == 0, f"validate exits 0 ({p.stdout.strip()} {p.stderr.strip()[:300]})")
    p = ci("plan_json")
    check(p.returncode == 2, f"plan --json --detailed-exitcode -o exits 2: changes (got {p.returncode}: "
                             f"{p.stderr.strip()[:300]})")
    try:
        plan = json.loads(ci.file("plan.json"))
    except ValueError as e:
        plan = {}
        check(False, f"plan.json parses ({e})")
    addresses = {(c["address"], c["host"]) for c in plan.get("changes", [])}
    check({("network.front", "hv1"), ("network.front", "hv2"), ("vm.builder", "hv2")} <= addresses,
          f"plan.json has the network on both hosts and the VM on hv2 ({sorted(addresses)})")
    saved = os.path.join(work, "kumo.plan")
    check(os.path.exists(saved) and os.stat(saved).st_mode & 0o777 == 0o600, "the saved plan is there, 0600")
    p = ci("show_markdown")
    md = ci.file("plan.md")
    check(p.returncode == 0 and md.strip(), f"show --markdown exits 0 with a comment ({p.stderr.strip()[:300]})")
    check("`network.front`" in md and "`vm.builder`" in md and "Plan: 3 to add" in md,
          f"the comment names the changes ({md[:400]})")
    check(SECRET not in md and SECRET not in ci.file("plan.json"),
          "the secret is in neither the comment nor plan.json")
    check("/etc/ci-admin" in md and "(sensitive)" in md,
          "the comment shows the cloud-config, the secret's value masked")

    # The merge's job: the saved plan, applied.
    p = ci("apply")
    check(p.returncode == 0, f"apply of the saved plan exits 0 ({(p.stdout + p.stderr).strip()[-600:]})")
    after = {u: inventory(u) for u in (hv1, hv2)}
    check("builder" in after[hv2]["domains"] and not after[hv2]["running"],
          f"builder is defined on hv2 and not running ({after[hv2]['domains']}, {after[hv2]['running']})")
    front = [n for n in after[hv1]["networks"] if n.startswith("kumo_ci_front")]
    check(len(front) == 1 and all(front[0] in after[u]["networks"] for u in (hv1, hv2)),
          f"network front is on both hosts ({front})")
    p = subprocess.run([KUMO, "plan", "-f", cfg, "--detailed-exitcode"], env=ci.env, capture_output=True,
                       text=True, timeout=600)
    check(p.returncode == 0, f"plan after apply exits 0: nothing to change (got {p.returncode}: "
                             f"{(p.stdout + p.stderr).strip()[-400:]})")

    # A second pull request (a network more) is planned; then someone changes hv1 by hand.
    with open(cfg, "w") as f:
        f.write(config(env, extra_network=True))
    os.unlink(saved)
    p = ci("plan_json")
    check(p.returncode == 2, f"the second pull request's plan exits 2 (got {p.returncode})")
    if front:
        virsh(hv1, "net-autostart", front[0], "--disable")
    before = {u: inventory(u) for u in (hv1, hv2)}
    p = ci("apply")
    check(p.returncode == 1, f"apply of the now stale plan exits 1 (got {p.returncode})")
    check("stale" in p.stderr and "nothing was changed" in p.stderr,
          f"and says it is stale and changed nothing ({p.stderr.strip()[:300]})")
    check({u: inventory(u) for u in (hv1, hv2)} == before, "nothing changed on either host (virsh)")
    timings["total_s"] = round(time.monotonic() - t0, 1)


def teardown():
    run([LAB, "down"], check_rc=False)
    clean = run([LAB, "check-clean"], check_rc=False)
    check(clean.returncode == 0, f"lab left nothing behind ({clean.stdout.strip()})")


if __name__ == "__main__":
    main_guarded(main, teardown)
    summary()
