"""Day-two checks (issue 16), run by apply_e2e.py on the cluster it booted, so no extra guest
boots: `kumo ssh` by name through the host (a jump from the host's qemu+ssh URI, or
hosts.<h>.ssh_jump), host keys learned from the guest and checked strictly, `kumo console` in a
pty, `kumo inventory` used by real Ansible (a YAML file and the dynamic --list protocol),
`kumo status --json`'s networks and the bad inputs. All guest traffic starts inside the lab
hosts' namespaces: kumo's ssh reaches only the hosts' veth addresses and jumps from there.
"""
import json
import os
import pty
import re
import select
import subprocess
import termios
import time

from common import KUMO, check, guest, inventory, run, save


def ssh_keypair(work):
    key = os.path.join(work, "admin_ed25519")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kumo-e2e-admin", "-f", key])
    with open(key + ".pub") as f:
        return key, f.read().strip()


def add_access(cfg, env, key):
    """ssh: as admin with the test's key. hv3's qemu+ssh URI names its jump; hv1 and hv2 (unix
    sockets) jump through their own sshd: hv1 as a mapping with the lab's key, hv2 as a string,
    its key and known_hosts from the lab's ssh config (/etc/ssh/ssh_config.d/kumo-lab.conf)."""
    cfg["ssh"] = {"user": "admin", "identity_file": key}
    cfg["hosts"]["hv1"]["ssh_jump"] = {"host": env["KUMO_LAB_HV1_ADDR"], "user": "root",
                                       "identity_file": env["KUMO_LAB_SSH_KEY"]}
    cfg["hosts"]["hv2"]["ssh_jump"] = "root@" + env["KUMO_LAB_HV2_ADDR"]


def console_login_prompt(kumo_args, vm, timeout=90):
    """`kumo console vm` in a pty: (saw the login prompt, exit code, terminal restored, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(KUMO, [KUMO, "console", vm, *kumo_args])
    before = termios.tcgetattr(fd)
    out = b""
    deadline = time.monotonic() + timeout
    seen = False
    next_enter = 0.0
    while time.monotonic() < deadline and not seen:
        if time.monotonic() >= next_enter:
            os.write(fd, b"\r")  # getty prints its prompt again on each empty line
            next_enter = time.monotonic() + 5
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
        seen = re.search(rb"login: ", out) is not None
    raw_while_attached = termios.tcgetattr(fd)
    os.write(fd, b"\x1d")  # Ctrl-]
    code = None
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                out += os.read(fd, 4096)
        except OSError:
            pass
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
    if code is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    try:
        after = termios.tcgetattr(fd)
    except termios.error:
        after = None
    os.close(fd)
    raw = not (raw_while_attached[3] & termios.ICANON)
    restored = after is None or (after[3] & termios.ICANON) == (before[3] & termios.ICANON)
    return seen, code, raw and restored, out.decode(errors="replace")


def check_day_two(kumo, common, cfg, hv, placed, work):
    vms = sorted(placed)
    # ssh by name: every VM, whichever host and route (hv1: ssh_jump; hv2, hv3: their URIs).
    for name in vms:
        p = kumo("ssh", name, "--", "hostname", timeout=180)
        check(p.returncode == 0 and p.stdout.strip() == name,
              f"kumo ssh {name} -- hostname prints {name} ({p.returncode}: {p.stdout.strip()!r} "
              f"{p.stderr.strip()[-300:]!r})")
    state = os.path.join(os.environ["XDG_STATE_HOME"], "kumo", cfg["cluster"])
    known = os.path.join(state, "known_hosts")
    with open(known) as f:
        lines = f.read().splitlines()
    check(sorted({l.split()[0] for l in lines}) == sorted(f"{n}.festival.kumo" for n in vms),
          f"known_hosts holds keys for every VM, filed by name ({len(lines)} lines)")
    # The keys are the guests' own: db's recorded ed25519 key is the one in the guest.
    rc, pub = guest(hv[placed["db"]], "db", "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
    check(rc == 0 and " ".join(pub.split()[:2]) in open(known).read(),
          "db's recorded host key is the guest's /etc/ssh/ssh_host_ed25519_key.pub")
    p = kumo("ssh", "db", "--print")
    check(p.returncode == 0 and "StrictHostKeyChecking=yes" in p.stdout
          and "ProxyJump=root@" in p.stdout, f"ssh --print shows strict checking and the jump ({p.stdout.strip()})")
    # The command's exit status is kumo's. As with ssh, the remote user's shell runs the words.
    p = kumo("ssh", "web-0", "--", "exit 7")
    check(p.returncode == 7, f"kumo ssh passes the command's exit status on (got {p.returncode})")

    # A wrong host key is refused, with a clear message.
    good = open(known).read()
    forged = re.sub(r"^(db\.festival\.kumo ssh-ed25519 )\S+",
                    r"\1AAAAC3NzaC1lZDI1NTE5AAAAIBq1z2KJcyrBkYj8r0x0qvWQ2xZyb0t3ZlcXNlTWUyZnE",
                    good, flags=re.M)
    forged = "\n".join(l for l in forged.splitlines() if not l.startswith("db.festival.kumo ecdsa")) + "\n"
    with open(known, "w") as f:
        f.write(forged)
    p = kumo("ssh", "db", "--", "hostname", timeout=180)
    check(p.returncode == 255 and "other than the one kumo learned" in p.stderr
          and "ssh-keygen -f" in p.stderr and p.stdout.strip() == "",
          f"a wrong host key is refused with kumo's message ({p.returncode}: {p.stderr.strip()[-400:]})")
    with open(known, "w") as f:
        f.write(good)

    # Console: the login prompt, Ctrl-] leaves, the terminal is put back; over a unix socket
    # (web-1 on hv2) and over qemu+ssh (db on hv3).
    for vm in ("web-1", "db"):
        seen, code, term_ok, out = console_login_prompt(common, vm)
        check(seen and f"{vm} login:" in out, f"kumo console {vm} (on {placed[vm]}) shows the login prompt ({out[-300:]!r})")
        check(code == 0, f"Ctrl-] leaves kumo console {vm} with exit 0 (got {code})")
        check(term_ok, f"console {vm}: the terminal was raw while attached and is restored afterwards")

    # Ansible through kumo's inventory: a file, and the dynamic protocol.
    aenv = dict(os.environ, ANSIBLE_HOME=os.path.join(work, "ansible"), ANSIBLE_FORCE_COLOR="0",
                ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER="auto_silent")
    i = kumo("inventory")
    inv_path = os.path.join(work, "inventory.yml")
    with open(inv_path, "w") as f:
        f.write(i.stdout)
    check(i.returncode == 0, f"kumo inventory succeeds ({i.stderr.strip()[-300:]})")
    a = subprocess.run(["ansible", "-i", inv_path, "all", "-m", "ping", "-f", "4"], env=aenv,
                       capture_output=True, text=True, timeout=600)
    print(a.stdout[-3000:], a.stderr[-1500:])
    pongs = re.findall(r"^(\S+) \| SUCCESS", a.stdout, re.M)
    check(a.returncode == 0 and sorted(pongs) == vms,
          f"ansible -m ping succeeds on every VM through kumo's inventory ({sorted(pongs)})")
    script = os.path.join(work, "kumo-inventory")
    with open(script, "w") as f:
        args = " ".join(f"'{x}'" for x in common)
        f.write(f"#!/bin/sh\nexec '{KUMO}' inventory {args} \"$@\"\n")
    os.chmod(script, 0o755)
    a = subprocess.run(["ansible", "-i", script, "web", "-m", "command", "-a", "hostname"],
                       env=aenv, capture_output=True, text=True, timeout=600)
    print(a.stdout[-2000:], a.stderr[-1000:])
    got = sorted(re.findall(r"^(\S+) \| CHANGED \| rc=0 >>\n(\S+)", a.stdout, re.M))
    check(a.returncode == 0 and got == [("web-0", "web-0"), ("web-1", "web-1")],
          f"ansible runs a command on group web through the dynamic inventory ({got})")
    lst = json.loads(kumo("inventory", "--list").stdout or "{}")
    check(sorted(lst.get("net_back", {}).get("hosts", [])) == ["api", "db"]
          and "host_hv3" in lst and "db" in lst.get("host_hv3", {}).get("hosts", []),
          f"--list has groups per network and host ({sorted(k for k in lst if k != '_meta')})")

    # hosts --json: what each lab host is; this machine has no usable KVM, and kumo says why.
    h = kumo("hosts", "--json")
    hosts = {x["name"]: x for x in (json.loads(h.stdout or "{}").get("hosts") or [])}
    check(h.returncode == 0 and sorted(hosts) == ["hv1", "hv2", "hv3"] and
          all(x["reachable"] for x in hosts.values()), f"hosts --json reports the three lab hosts ({h.stderr.strip()[-300:]})")
    # The lab hosts share this machine's kernel: without /dev/kvm none of them has KVM.
    no_kvm = not os.path.exists("/dev/kvm")
    vt = cfg["hosts"]["hv1"].get("virt_type", "auto")
    for name, x in sorted(hosts.items()):
        check((x["kvm"] is False if no_kvm else isinstance(x["kvm"], bool))
              and (x["kvm"] or len(x.get("kvm_reason") or "") > 10)
              and x["virt_type"] == (vt if vt != "auto" else ("kvm" if x["kvm"] else "qemu")),
              f"hosts --json: {name}: kvm {x['kvm']} ({x.get('kvm_reason')}), virt_type {x['virt_type']}")
        mine = sorted(n for n, hv_ in placed.items() if hv_ == name)
        check(sorted(x["vms"]) == mine and x["cpus"] > 0 and x["memory_bytes"] > 0
              and x["pool"]["free_bytes"] > 0 and x["admit"]["vcpus"] >= 0,
              f"hosts --json: {name}: its VMs {x['vms']}, room and pool figures")
    h = kumo("hosts")
    check(h.returncode == 0 and "hv3" in h.stdout, "kumo hosts prints its table")

    # status --json: addresses by network.
    st = json.loads(kumo("status", "--json").stdout or "{}")
    db = next((v for v in st.get("vms", []) if v["name"] == "db"), {})
    check(st.get("schema_version") == 1 and
          [(n["network"], n["ip"]) for n in db.get("networks", [])] == [("back", "10.30.0.30")],
          f"status --json: db's addresses by network ({db.get('networks')})")


def check_bad_inputs(kumo, common, cfg, hv, placed, work):
    """Each fails with a clear message, exit 1, and changes nothing on any host."""
    before = {h: inventory(u, running=True) for h, u in hv.items()}
    p = kumo("ssh", "wbe-0", "--", "true")
    check(p.returncode == 1 and 'no VM named "wbe-0"' in p.stderr and "did you mean" in p.stderr,
          f"ssh to an unknown VM: named, with a did-you-mean ({p.stderr.strip()[-300:]})")
    p = kumo("console", "nope")
    check(p.returncode == 1 and 'no VM named "nope"' in p.stderr, f"console of an unknown VM ({p.stderr.strip()[-200:]})")
    # hv1 without its ssh_jump: a unix-socket URI names no machine to jump through.
    no_jump = dict(cfg, hosts=dict(cfg["hosts"], hv1={"uri": cfg["hosts"]["hv1"]["uri"]}))
    path = os.path.join(work, "no-jump.yaml")
    save(no_jump, path)
    on_hv1 = next(n for n, h in sorted(placed.items()) if h == "hv1")
    others = [a for i, a in enumerate(common) if a != "-f" and (i == 0 or common[i - 1] != "-f")]
    p = run([KUMO, "ssh", on_hv1, "-f", path, *others, "--", "true"], check_rc=False)
    check(p.returncode == 1 and "no ssh route in" in p.stderr and "ssh_jump" in p.stderr
          and "no-jump.yaml:" in p.stderr,
          f"a VM behind a unix-socket host without ssh_jump: no route, says what to set ({p.stderr.strip()[-400:]})")
    after = {h: inventory(u, running=True) for h, u in hv.items()}
    check(after == before, "the failed ssh and console calls changed nothing on any host")


def check_not_running(kumo, hv, placed, name):
    """After `virsh destroy`: ssh and console say the VM is not running."""
    run(["virsh", "-q", "-c", hv[placed[name]], "destroy", name])
    p = kumo("ssh", name, "--", "true")
    check(p.returncode == 1 and "is shutoff" in p.stderr and "kumo apply" in p.stderr, f"ssh to a stopped VM says so ({p.stderr.strip()[-300:]})")
    p = kumo("console", name)
    check(p.returncode == 1 and "shutoff" in p.stderr, f"console of a stopped VM says so ({p.stderr.strip()[-200:]})")
