"""What the e2e scripts (plan, apply, update, fault, move) share: running commands and kumo (also
in the background, its output read as it comes), checks and the summary, the lab (up, down,
hosts, image), inventories of the hosts, the guest agent (through `tests/lab/lab exec`), the
cluster file, waiting.

Each script is run as `tests/e2e/X_e2e.py path/to/kumo` and imports this module by name.
"""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

import yaml

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.realpath(os.path.join(HERE, "..", ".."))
LAB = os.path.join(ROOT, "tests", "lab", "lab")
KUMO = os.path.realpath(sys.argv[1])
# A step line of apply's output: status, address, host, what.
STEP = re.compile(r"^\s*(ok|FAILED|skipped)\s+(\S+) on (\S+): (.+)$")
failures = []
timings = {}
started = []          # every background kumo (Kumo below) a test started: killed at teardown


# --- running things, checks, the end of a test ---

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def run(args, check_rc=True, input=None, timeout=None):
    p = subprocess.run(args, capture_output=True, text=True, input=input, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def kumo_runner(*common):
    """kumo(cmd, *extra): `kumo cmd <common> <extra>`, whatever its exit code."""
    def kumo(cmd, *extra, timeout=1500):
        return run([KUMO, cmd, *common, *extra], check_rc=False, timeout=timeout)
    return kumo


def plan_json(kumo, *extra):
    """(the process, its JSON plan or None) of `kumo plan --json`."""
    p = kumo("plan", "--json", *extra)
    try:
        return p, json.loads(p.stdout) if p.returncode == 0 else None
    except ValueError:
        return p, None


def check_converged(kumo, what):
    """`kumo plan --detailed-exitcode` exits 0 (no changes)."""
    p = kumo("plan", "--detailed-exitcode")
    return check(p.returncode == 0, f"{what} (--detailed-exitcode 0; got {p.returncode}: "
                                    f"{(p.stdout + p.stderr)[-600:]})")


class Kumo:
    """A kumo command running in the background; its output lines are collected as they come."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True, bufsize=1)
        started.append(self.p)
        self.pid = self.p.pid
        self.out, self.err = [], []
        self.eof = 0
        self.cv = threading.Condition()
        self.threads = [threading.Thread(target=self._read, args=(s, sink), daemon=True)
                        for s, sink in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.threads:
            t.start()

    def _read(self, stream, sink):
        for line in stream:
            with self.cv:
                sink.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.eof += 1
            self.cv.notify_all()

    def wait_line(self, pred, timeout):
        """The first stderr line (apply's progress) for which pred is true; None if the output
        ended or timed out."""
        deadline = time.monotonic() + timeout
        i = 0
        with self.cv:
            while True:
                while i < len(self.err):
                    if pred(self.err[i]):
                        return self.err[i]
                    i += 1
                if self.eof == 2 or time.monotonic() > deadline:
                    return None
                self.cv.wait(0.2)

    def alive(self):
        return self.p.poll() is None

    def kill9(self):
        """SIGKILL (works on a stopped process too); True if it was still running."""
        was = self.alive()
        if was:
            os.kill(self.pid, signal.SIGKILL)
        self.p.wait()
        for t in self.threads:
            t.join(10)
        return was

    def finish(self, timeout):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"kumo (pid {self.pid}) did not finish in {timeout} s: killing it")
            self.kill9()
        for t in self.threads:
            t.join(10)
        out, err = "\n".join(self.out), "\n".join(self.err)
        print(out[-3000:], err[-1500:])
        return self.p.returncode, out, err


def kill_started():
    """SIGKILL every background kumo still running (only those this test started, by pid)."""
    for p in started:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def main_guarded(main, teardown):
    """main(); an exception is a failure; teardown() in any case."""
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report, then tear down
        failures.append(f"exception: {e}")
        print("FAIL exception:", e, flush=True)
    finally:
        teardown()


def summary():
    """The timings and the failed checks; exits 1 if any."""
    print("timings:", json.dumps(timings))
    if failures:
        print(f"\n{len(failures)} check(s) failed:")
        for f in failures:
            print("  -", f)
        sys.exit(1)
    print("\nall checks passed")


# --- the lab ---

def lab_up():
    """Removes any earlier lab, brings up hv1..hv3 and returns `lab env`."""
    run([LAB, "down"])
    t = time.monotonic()
    print(run([LAB, "up", "3"]).stdout, end="")
    timings["lab_up_s"] = round(time.monotonic() - t, 1)
    return json.loads(run([LAB, "env", "--json"]).stdout)


def lab_down():
    down = run([LAB, "down"], check_rc=False)
    if down.returncode != 0:
        failures.append("lab down failed: " + down.stderr)


def lab_hosts(env):
    """hv1, hv2 over their unix sockets, hv3 over qemu+ssh (the remote path)."""
    return {"hv1": env["KUMO_LAB_HV1_URI"], "hv2": env["KUMO_LAB_HV2_URI"],
            "hv3": env["KUMO_LAB_HV3_SSH_URI"]}


def virt_type(env):
    return env.get("KUMO_LAB_VIRT_TYPE", "qemu")


def lab_image(env):
    """The lab's guest image as an `images:` entry, checked against its SHA256SUMS."""
    return {"path": env["KUMO_LAB_IMAGE"], "checksum_url": "file://" + env["KUMO_LAB_IMAGE_SHA256SUMS"]}


def workdir(prefix):
    """A temporary directory, removed at exit with the image cache kumo keeps in it."""
    work = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, work, True)  # its image cache too: ~130 MB a run
    return work


# --- hosts and guests ---

def virsh(uri, *args, check_rc=True):
    return run(["virsh", "-q", "-c", uri, *args], check_rc=check_rc).stdout


def inventory(uri, running=False):
    """Names of the host's domains (and with running, of its running ones), networks and volumes."""
    names = lambda out: sorted(out.split())
    inv = {"domains": names(virsh(uri, "list", "--all", "--name"))}
    if running:
        inv["running"] = names(virsh(uri, "list", "--state-running", "--name"))
    inv["networks"] = names(virsh(uri, "net-list", "--all", "--name"))
    inv["volumes"] = sorted(l.split()[0] for l in virsh(uri, "vol-list", "default").splitlines() if l.strip())
    return inv


def lock_secrets(uri):
    """kumo's lock records on a host (libvirt secrets of usage volume kumo-lock_*): usage -> UUID."""
    out = {}
    for line in virsh(uri, "secret-list").splitlines():
        words = line.split()
        if len(words) == 3 and words[1] == "volume" and words[2].startswith("kumo-lock_"):
            out[words[2]] = words[0]
    return out


def lock_secret_text(uri, usage):
    """(description, whole XML) of lock record `usage` on a host; ("", "") when there is none."""
    uuid = lock_secrets(uri).get(usage)
    if uuid is None:
        return "", ""
    r = run(["virsh", "-q", "-c", uri, "secret-dumpxml", uuid], check_rc=False)
    if r.returncode != 0:
        return "", ""
    try:
        root = ET.fromstring(r.stdout)
    except ET.ParseError:
        return "", ""
    return root.findtext("description") or "", r.stdout


def guest(uri, dom, *cmd, timeout=60):
    """(exit code, stdout) of cmd in the guest, through its agent."""
    p = run([LAB, "exec", uri, dom, "--timeout", str(timeout), "--", *cmd], check_rc=False,
            timeout=timeout + 60)
    return p.returncode, p.stdout


def poll(fn, done, tries, interval):
    """fn() until done(its value), at most tries times, sleeping interval after each miss; the
    last value."""
    for _ in range(tries):
        value = fn()
        if done(value):
            break
        time.sleep(interval)
    return value


def wait_used_memory(uri, dom, kib):
    """`virsh dominfo` once it shows `Used memory: <kib> KiB`, or after 30 s. libvirt learns the
    balloon's size from rate-limited events, and the balloon gets there in the guest's time."""
    return poll(lambda: virsh(uri, "dominfo", dom),
                lambda out: re.search(rf"^Used memory:\s+{kib} KiB", out, re.M), 60, 0.5)


# --- the cluster file ---

def save(cfg, path):
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)


def web_cluster(env):
    """examples/web-cluster.yaml, made to run on the lab: its virt type and image, no `packages`
    (lab guests have no package mirror), and under TCG a longer wait_timeout."""
    with open(os.path.join(ROOT, "examples", "web-cluster.yaml")) as f:
        cfg = yaml.safe_load(f)
    vt = virt_type(env)
    for h in cfg["hosts"].values():
        h["virt_type"] = vt
    cfg["images"]["debian-12"] = lab_image(env)

    def strip(ci):
        if isinstance(ci, dict):
            ci.pop("packages", None)
    strip(cfg["defaults"].get("cloud_init"))
    for vm in cfg["vms"].values():
        strip(vm.get("cloud_init"))
    if vt == "qemu":  # TCG: four guests on two cores; leave room for a slower CI machine
        cfg["defaults"]["wait_timeout"] = "20m"
    return cfg
