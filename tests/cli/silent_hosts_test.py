#!/usr/bin/python3
"""Hundreds of hosts that accept TCP and never answer, under the default 1024 file descriptors:
kumo plan, apply and force-unlock each end with exit 1 (not a signal) within a bounded time, and
name every host with its timeout or with why it was not tried.

The hosts are one listener on 127.0.0.1 in this process that accepts every connection and never
says a word (libvirt then waits for an answer forever).

usage: silent_hosts_test.py KUMO"""
import atexit
import shutil
import os, re, resource, socket, subprocess, sys, tempfile, threading, time

kumo = sys.argv[1]
HOSTS = 300  # and twice as many for plan
TIMEOUT = 1  # --timeout, seconds
DEADLINE = 120  # seconds one command may take at most

# The listener keeps every connection it accepts: it needs more than kumo's 1024 descriptors.
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
port = listener.getsockname()[1]
accepted, accepted_lock = [], threading.Lock()


def accept_forever():
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:  # out of descriptors: what is queued stays as silent as what is accepted
            time.sleep(0.05)
            continue
        with accepted_lock:
            accepted.append(conn)


def forget_connections():
    with accepted_lock:
        for c in accepted:
            c.close()
        accepted.clear()


threading.Thread(target=accept_forever, daemon=True).start()

work = tempfile.mkdtemp(prefix="kumo-silent-hosts-")
atexit.register(shutil.rmtree, work, ignore_errors=True)  # also when a check raises


def cluster_file(count):
    """A kumo.yaml of `count` hosts, all this listener, and no VMs; returns (path, host names)."""
    names = [f"silent-{i:03d}" for i in range(count)]
    path = os.path.join(work, f"kumo-{count}.yaml")
    with open(path, "w") as f:
        f.write("cluster: silent\nhosts:\n")
        for n in names:
            f.write(f'  {n}: {{uri: "qemu+tcp://127.0.0.1:{port}/system"}}\n')
    return path, names


def limit_descriptors():
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def run(config, *args):
    cmd = [kumo, *args, "-f", config, "--timeout", str(TIMEOUT)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "NO_COLOR": "1"}
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=DEADLINE,
                           preexec_fn=limit_descriptors, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        forget_connections()
        return None, f"still running after {DEADLINE}s", (e.stderr or b"").decode(errors="replace")
    seconds = time.monotonic() - start
    forget_connections()
    return p.returncode, f"{seconds:.1f}s", p.stderr


failed = 0


def check(what, ok, detail=""):
    global failed
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else ": " + detail))
    failed += not ok


timed_out = f"timed out after {TIMEOUT}s"
runs = [(HOSTS, ["plan"]), (HOSTS, ["apply", "--auto-approve"]),
        (HOSTS, ["force-unlock", "--auto-approve"]), (2 * HOSTS, ["plan"])]
for count, args in runs:
    config, names = cluster_file(count)
    label = f"kumo {' '.join(args)} ({count} hosts)"
    rc, took, err = run(config, *args)
    check(f"{label}: ends with exit 1 ({took})", rc == 1,
          f"exit {rc} (negative: killed by signal {-rc if rc and rc < 0 else ''}); stderr "
          f"ends: {err[-600:]}")
    check(f"{label}: no crash, no internal error",
          "internal error" not in err and "GLib" not in err and "Too many open files" not in err,
          err[-600:])
    unnamed = []
    for n in names:
        lines = [l for l in err.splitlines() if re.search(rf"\bhost {n}\b", l)]
        if not any(timed_out in l or "not tried" in l for l in lines):
            unnamed.append(n)
    check(f"{label}: every host named with its timeout or why it was not tried", not unnamed,
          f"{len(unnamed)} not, e.g. {unnamed[:3]}; stderr ends: {err[-600:]}")
    check(f"{label}: some hosts really timed out", timed_out in err, err[-600:])

print(f"{failed} failed" if failed else "all silent-host checks passed")
sys.exit(1 if failed else 0)
