"""kumo lab: isolated libvirt hosts on one machine (library behind tests/lab/lab and smoke-test).

Each lab host hvN is a libvirtd + virtlogd + sshd living in
  * its own network namespace `kumo-hvN` (only link to the root namespace: veth kumo-vN <-> eth0
    with link-local addresses 169.254.77.(4N+1)/30 (root side) and .(4N+2) (host side)), and
  * its own mount namespace in which /run/libvirt, /var/lib/libvirt, /etc/libvirt,
    /var/log/libvirt and /var/cache/libvirt are bind mounts of $KUMO_LAB_DIR/hvN/{run,lib,etc,log,cache}.
The mount namespace is the one `ip netns exec` creates; the daemons keep it alive, so it goes
away by itself when they are killed.  Nothing is routed between namespaces and no daemon listens
on TCP other than sshd on the host side of the veth.

Only the python3 standard library is used; every external command is run with an argument list.
"""
import base64
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
NS_PREFIX = "kumo-hv"            # network namespaces kumo-hv1 ...
VETH_PREFIX = "kumo-v"           # root-side veth kumo-v1 ... (<= 15 chars)
HOST_IF = "eth0"                 # host-side veth name inside the namespace
ADDR_NET = "169.254.77"          # link-local block used by the lab (/30 per host)
MAX_HOSTS = 62
SSH_DROPIN = "/etc/ssh/ssh_config.d/kumo-lab.conf"
DROPIN_MARK = "# kumo-lab: written by tests/lab/lab up, removed by lab down"
MARKER = ".kumo-lab"             # file that proves a directory is a lab directory
# Live migration between lab hosts: QEMU's memory stream and the NBD disk copy go over unix
# sockets in <lab>/migration, a directory every host's mount namespace sees (the lab directory is
# in the root file system, and the hosts' namespaces are rslave copies of it).  A unix socket's
# path holds at most 107 bytes (sun_path is 108 with its NUL): `up` refuses a lab directory that
# leaves less than SOCKET_NAME_ROOM bytes for the socket names in it.
MIGRATION_SUBDIR = "migration"
SUN_PATH_MAX = 107
SOCKET_NAME_ROOM = 64
# Mount points in the root file system the host mount namespaces need.  Created (and recorded in
# created.json) only if missing; `down` removes exactly what `up` created.
BIND_DIRS = [("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"), ("etc", "/etc/libvirt"),
             ("log", "/var/log/libvirt"), ("cache", "/var/cache/libvirt"),
             # TPM emulation (<tpm><backend type='emulator'>): libvirtd writes swtpm's logs to
             # /var/log/swtpm/libvirt/qemu, and swtpm_setup's local CA (EK and platform
             # certificates) keeps its key in /var/lib/swtpm-localca.  The TPM state itself is in
             # /var/lib/libvirt/swtpm/<uuid>, the UEFI NVRAM in /var/lib/libvirt/qemu/nvram.
             ("swtpm-log", "/var/log/swtpm"), ("swtpm-localca", "/var/lib/swtpm-localca"),
             # LVM (the host's volume group, libvirt's logical pools): a copy of /etc/lvm whose
             # lvmlocal.conf shows LVM only the host's loop device (metadata backups and
             # archives stay in the lab), and LVM's run and lock directories
             ("lvm-etc", "/etc/lvm"), ("lvm-run", "/run/lvm"), ("lvm-lock", "/run/lock/lvm")]
# In each host's network namespace: a link that leads nowhere, for macvtap guest NICs
# (<interface type='direct'><source dev='kdummy0' mode='bridge'/>).  A dummy link where the
# kernel has them, else a veth pair whose peer (kdummy0p) has nothing attached.
DUMMY_LINK = "kdummy0"
# In each host: a volume group kumolab_hvN on a loop device backed by a sparse file in the lab
# directory (<lab>/hvN/lvm/pv.img), for libvirt's logical pools.
VG_PREFIX = "kumolab_"
VG_FILE_SIZE = 4 * 2**30
DM_CONTROL = "/dev/mapper/control"      # LVM creates it when missing; /dev is the machine's
HOST_MARKER = ".kumo-lab-host"   # in hvN/run, i.e. /run/libvirt/.kumo-lab-host inside a host
SSHD_PRIVSEP = "/run/sshd"
NETNS_RUN = "/run/netns"
LAB_COMMS = {"libvirtd", "virtlogd", "sshd", "dnsmasq", "virt-ssh-helper", "qemu-system-x86",
             "qemu-system-x86_64", "nc"}
DAEMON_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "HOME": "/root"}
PROBE_MARKERS = ("Welcome to Debian", "Reached target", "systemd[1]: ")
PROBE_FAIL_MARKERS = ("KVM internal error", "Kernel panic")


class LabError(Exception):
    pass


# ----------------------------------------------------------------------------- small helpers
def log(msg):
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def run(args, check=True, timeout=None, input=None, env=None, capture=True):
    """Run a command (argument list, never a shell string).  Returns CompletedProcess (text)."""
    try:
        r = subprocess.run(args, input=input, text=True, timeout=timeout, env=env,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE if capture else None,
                           stderr=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {shlex.join(args)}") from e
    except FileNotFoundError as e:
        raise LabError(f"command not found: {args[0]}") from e
    if check and r.returncode != 0:
        err = (r.stderr or "").strip() or (r.stdout or "").strip()
        raise LabError(f"failed ({r.returncode}): {shlex.join(args)}: {err}")
    return r


def lab_dir():
    return os.path.abspath(os.environ.get("KUMO_LAB_DIR", "/var/tmp/kumo-lab"))


def cache_dir():
    return os.path.abspath(os.environ.get("KUMO_LAB_CACHE", "/var/cache/kumo-lab"))


def host_addrs(n):
    base = 4 * n
    return f"{ADDR_NET}.{base + 1}", f"{ADDR_NET}.{base + 2}"


def write_file(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def proc_netns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def proc_mntns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def in_lab_host_mountns(pid):
    """True if the process lives in a lab host's mount namespace (its /run/libvirt is a lab dir;
    /proc/PID/root resolves paths in the process's own mount namespace)."""
    try:
        return os.path.exists(f"/proc/{pid}/root/run/libvirt/{HOST_MARKER}")
    except OSError:
        return False


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def mountinfo():
    """[(mount_point, fstype, source)] of the root mount namespace (this process)."""
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mp = left.split()[4].encode().decode("unicode_escape")
            fs = right.split()
            res.append((mp, fs[0] if fs else "", fs[1] if len(fs) > 1 else ""))
    return res


@contextlib.contextmanager
def lab_lock():
    os.makedirs(cache_dir(), exist_ok=True)
    with open(os.path.join(cache_dir(), "lab.lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another lab command holds the lock, waiting ...")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def catch_signals():
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _raise_interrupt)


def ignore_signals():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)


# ----------------------------------------------------------------------------- image
def image_path(build=True):
    """Path of the cached guest image; builds it (tests/lab/build-image) when missing."""
    exe = os.path.join(HERE, "build-image")
    env = dict(os.environ, KUMO_LAB_CACHE=cache_dir())
    if not build:
        h = run([exe, "--hash"], env=env).stdout.strip()
        return os.path.join(cache_dir(), "images", f"{h}.qcow2")
    r = subprocess.run([exe], stdout=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise LabError(f"guest image build failed (exit {r.returncode}); see messages above")
    path = r.stdout.strip().splitlines()[-1]
    ensure_sha256sums(path)
    return path


def ensure_sha256sums(image):
    """<image>.SHA256SUMS in sha256sum(1) format, listing the image's file name (what kumo's
    checksum_url expects).  The cached image is immutable, so an existing file is kept."""
    sums = image + ".SHA256SUMS"
    if not os.path.exists(sums):
        h = hashlib.sha256()
        with open(image, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        write_file(sums, f"{h.hexdigest()}  {os.path.basename(image)}\n")
    return sums


# ----------------------------------------------------------------------------- virsh / agent
def virsh(uri, *args, check=True, timeout=60, input=None):
    return run(["virsh", "-q", "-c", uri, *args], check=check, timeout=timeout, input=input)


def agent(uri, domain, command, arguments=None, timeout=10):
    """One guest-agent command through libvirt; returns the 'return' member."""
    cmd = {"execute": command}
    if arguments is not None:
        cmd["arguments"] = arguments
    # A guest starved of CPU (TCG, just after a boot, hot-plug or balloon change) can miss one
    # reply. Asking again is safe for every command but guest-exec, which would run twice.
    attempts = 1 if command == "guest-exec" else 3
    for attempt in range(attempts):
        r = virsh(uri, "qemu-agent-command", domain, json.dumps(cmd), "--timeout", str(timeout),
                  timeout=timeout + 30, check=attempt == attempts - 1)
        if r.returncode == 0:
            return json.loads(r.stdout)["return"]
        time.sleep(1)


def guest_interfaces(uri, domain):
    """{interface name: [addresses]} as the guest agent reports them, loopback left out."""
    return {i["name"]: [a["ip-address"] for a in i.get("ip-addresses", [])]
            for i in agent(uri, domain, "guest-network-get-interfaces") if i.get("name") != "lo"}


def agent_exec(uri, domain, argv, timeout=120, poll=0.5):
    """Run argv in the guest through the agent; returns (exitcode, stdout, stderr)."""
    pid = agent(uri, domain, "guest-exec",
                {"path": argv[0], "arg": argv[1:], "capture-output": True})["pid"]
    deadline = time.monotonic() + timeout
    while True:
        st = agent(uri, domain, "guest-exec-status", {"pid": pid})
        if st.get("exited"):
            dec = lambda k: base64.b64decode(st.get(k, "")).decode(errors="replace")
            return st.get("exitcode", -1 if "signal" in st else 0), dec("out-data"), dec("err-data")
        if time.monotonic() > deadline:
            raise LabError(f"guest-exec {argv} in {domain} did not finish in {timeout}s")
        time.sleep(poll)


def domain_xml_tree(uri, domain):
    return ET.fromstring(virsh(uri, "dumpxml", domain).stdout)


def serial_log_path(uri, domain, state=None):
    """Root-namespace path of the domain's serial log (file serial or <log file=...>), or None."""
    try:
        root = domain_xml_tree(uri, domain)
    except (LabError, ET.ParseError):
        return None
    path = None
    for ser in root.iter("serial"):
        lg = ser.find("log")
        src = ser.find("source")
        if lg is not None and lg.get("file"):
            path = lg.get("file")
        elif ser.get("type") == "file" and src is not None and src.get("path"):
            path = src.get("path")
        if path:
            break
    if not path:
        return None
    return map_host_path(uri, path, state)


def host_of_uri(uri, state):
    if not state:
        return None
    for h in state.get("hosts", []):
        if uri in (h["uri"], h["ssh_uri"], h["libssh_uri"]) or h["socket"] in uri or \
                re.search(r"@" + re.escape(h["addr"]) + r"[/:]", uri):
            return h
    return None


def map_host_path(uri, path, state=None):
    """Translate a path as seen inside a lab host (e.g. /var/log/libvirt/...) to the root ns."""
    h = host_of_uri(uri, state if state is not None else read_json(os.path.join(lab_dir(), "state.json")))
    if h:
        for sub, inside in BIND_DIRS:
            if path == inside or path.startswith(inside + "/"):
                return os.path.join(h["dir"], sub) + path[len(inside):]
    return path


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    data = data.replace("\r", "")
    return "\n".join(data.splitlines()[-lines:])


def wait_ready(uri, domain, timeout=600, poll=1.0, state=None):
    """Wait until cloud-init finished in the guest, asked through the guest agent only.

    Returns a dict (the agent's view).  'ready' is True when cloud-init reports 'done'."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    res = {"uri": uri, "domain": domain, "ready": False}
    agent_up = first_up = None
    pid = None
    last_err = dead = ""
    while time.monotonic() < deadline:
        try:
            if agent_up is None:
                agent(uri, domain, "guest-ping", timeout=2)
                agent_up = time.monotonic() - t0
            if pid is None:
                pid = agent(uri, domain, "guest-exec",
                            {"path": "/usr/bin/cloud-init", "arg": ["status", "--wait", "--long"],
                             "capture-output": True})["pid"]
            st = agent(uri, domain, "guest-exec-status", {"pid": pid})
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
                m = re.search(r"^status:\s*(\S+)", out, re.M)
                res["cloud_init"] = {"status": m.group(1) if m else "unknown",
                                     "exitcode": st.get("exitcode"),
                                     "output": re.sub(r"^\.*\n?", "", out).strip()}
                res["ready"] = res["cloud_init"]["status"] == "done" and st.get("exitcode") == 0
                break
        except (LabError, KeyError, ValueError) as e:
            # agent not up yet, or restarted (guest rebooted): start over from guest-ping
            last_err = str(e)
            if agent_up is not None and first_up is None:
                first_up = agent_up
            agent_up, pid = None, None
            st = virsh(uri, "domstate", domain, check=False, timeout=30)
            state_now = st.stdout.strip() if st.returncode == 0 else ""
            if state_now and state_now not in ("running", "paused", "in shutdown"):
                dead = f"domain is {state_now}"
                break
        time.sleep(poll)
    res["elapsed_s"] = round(time.monotonic() - t0, 1)
    if first_up is not None or agent_up is not None:
        res["agent_up_s"] = round(first_up if first_up is not None else agent_up, 1)
    if "cloud_init" not in res:
        res["error"] = dead or (f"timeout after {timeout}s" + (f" (last error: {last_err})" if last_err else ""))
        res["timed_out"] = not dead
    else:
        for key, cmd in (("hostname", "guest-get-host-name"), ("os", "guest-get-osinfo"),
                         ("interfaces", None)):
            try:
                if key == "interfaces":
                    v = guest_interfaces(uri, domain)
                else:
                    v = agent(uri, domain, cmd)
                if key == "hostname":
                    v = v.get("host-name")
                res[key] = v
            except (LabError, KeyError, ValueError) as e:
                res[key + "_error"] = str(e)
    if not res["ready"]:
        p = serial_log_path(uri, domain, state)
        res["serial_log"] = p
        res["serial_tail"] = tail(p) if p else "(no serial log file configured)"
    return res


# ----------------------------------------------------------------------------- guest helpers
def make_seed(path, meta_data, user_data, network_config=None):
    """NoCloud seed as a small vfat image labelled CIDATA (no mkisofs needed)."""
    if os.path.exists(path):
        os.unlink(path)
    run(["mkfs.vfat", "-n", "CIDATA", "-C", path, "1024"])
    with tempfile.TemporaryDirectory() as d:
        files = [("meta-data", meta_data), ("user-data", user_data)]
        if network_config is not None:
            files.append(("network-config", network_config))
        for name, text in files:
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
            run(["mcopy", "-o", "-i", path, os.path.join(d, name), "::" + name],
                env=dict(DAEMON_ENV, MTOOLS_SKIP_CHECK="1"))


def domain_xml(name, disk_vol, seed_vol, virt_type="qemu", memory_mib=256, vcpus=1,
               network=None, pool="default", tb_cache_mib=128):
    """Plain libvirt domain XML for a lab guest: overlay + seed volumes from `pool`, serial log
    (virtlogd) at /var/log/libvirt/qemu/<name>-serial.log, guest agent channel."""
    d = ET.Element("domain", type=virt_type)
    ET.SubElement(d, "name").text = name
    ET.SubElement(d, "memory", unit="MiB").text = str(memory_mib)
    ET.SubElement(d, "vcpu").text = str(vcpus)
    os_ = ET.SubElement(d, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_, "boot", dev="hd")
    feat = ET.SubElement(d, "features")
    ET.SubElement(feat, "acpi")
    ET.SubElement(feat, "apic")
    if virt_type == "qemu" and tb_cache_mib:
        tcg = ET.SubElement(feat, "tcg")
        ET.SubElement(tcg, "tb-cache", unit="MiB").text = str(tb_cache_mib)
    ET.SubElement(d, "clock", offset="utc")
    ET.SubElement(d, "on_crash").text = "destroy"
    dev = ET.SubElement(d, "devices")
    for vol, fmt, target, ro in ((disk_vol, "qcow2", "vda", False), (seed_vol, "raw", "vdb", True)):
        if not vol:
            continue
        disk = ET.SubElement(dev, "disk", type="volume", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type=fmt)
        ET.SubElement(disk, "source", pool=pool, volume=vol)
        ET.SubElement(disk, "target", dev=target, bus="virtio")
        if ro:
            ET.SubElement(disk, "readonly")
    if network:
        iface = ET.SubElement(dev, "interface", type="network")
        ET.SubElement(iface, "source", network=network)
        ET.SubElement(iface, "model", type="virtio")
    ser = ET.SubElement(dev, "serial", type="pty")
    ET.SubElement(ser, "log", file=f"/var/log/libvirt/qemu/{name}-serial.log", append="off")
    ET.SubElement(ser, "target", port="0")
    con = ET.SubElement(dev, "console", type="pty")
    ET.SubElement(con, "target", type="serial", port="0")
    ch = ET.SubElement(dev, "channel", type="unix")
    ET.SubElement(ch, "target", type="virtio", name="org.qemu.guest_agent.0")
    rng = ET.SubElement(dev, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    ET.SubElement(dev, "memballoon", model="none")
    return ET.tostring(d, encoding="unicode")


def overlay_xml(vol, image, size):
    """Volume XML: qcow2 overlay whose backing store is `image` (a path that need not belong to
    any storage pool; the lab's image cache is visible inside every lab host)."""
    v = ET.Element("volume")
    ET.SubElement(v, "name").text = vol
    ET.SubElement(v, "capacity").text = str(size)
    t = ET.SubElement(v, "target")
    ET.SubElement(t, "format", type="qcow2")
    b = ET.SubElement(v, "backingStore")
    ET.SubElement(b, "path").text = image
    ET.SubElement(b, "format", type="qcow2")
    return ET.tostring(v, encoding="unicode")


def create_overlay(uri, vol, image, size="2G", workdir=None):
    size = {"K": 2**10, "M": 2**20, "G": 2**30}.get(str(size)[-1:].upper(), 1) * int(str(size).rstrip("KMGkmg"))
    with tempfile.NamedTemporaryFile("w", suffix=".xml", dir=workdir) as f:
        f.write(overlay_xml(vol, image, size))
        f.flush()
        virsh(uri, "vol-create", "default", f.name)


def create_guest(uri, name, image, virt_type, meta_data, user_data, network=None,
                 memory_mib=256, disk_size="2G", workdir=None):
    """Overlay volume on `image` + uploaded seed volume in pool 'default', then define."""
    with tempfile.TemporaryDirectory(dir=workdir) as d:
        create_overlay(uri, f"{name}.qcow2", image, disk_size, d)
        seed = os.path.join(d, "seed.img")
        make_seed(seed, meta_data, user_data)
        virsh(uri, "vol-create-as", "default", f"{name}-seed.img", str(os.path.getsize(seed)),
              "--format", "raw")
        virsh(uri, "vol-upload", "--pool", "default", f"{name}-seed.img", seed, timeout=120)
        xmlf = os.path.join(d, "domain.xml")
        with open(xmlf, "w") as f:
            f.write(domain_xml(name, f"{name}.qcow2", f"{name}-seed.img", virt_type=virt_type,
                               memory_mib=memory_mib, network=network))
        virsh(uri, "define", xmlf)


def net_xml(name, bridge, cidr_prefix="10.77.0"):
    n = ET.Element("network")
    ET.SubElement(n, "name").text = name
    ET.SubElement(n, "bridge", name=bridge, stp="off")
    ip = ET.SubElement(n, "ip", address=f"{cidr_prefix}.1", netmask="255.255.255.0")
    dh = ET.SubElement(ip, "dhcp")
    ET.SubElement(dh, "range", start=f"{cidr_prefix}.10", end=f"{cidr_prefix}.200")
    return ET.tostring(n, encoding="unicode")


def host_account_files():
    """/etc/passwd and /etc/group for a host's mount namespace.  libvirtd's QEMU driver resolves
    its compiled-in user 'libvirt-qemu' at start even when qemu.conf says user = "root", and
    that account only exists where libvirt-daemon-system is installed (which would also start a
    libvirtd in the root namespace).  The lab adds the account to private copies instead of
    touching the machine's files.  Root's login shell there is /bin/sh: the machine's own
    ~/.bashrc (which Debian's bash sources for every ssh command) should not slow down or
    change what runs on a lab host."""
    with open("/etc/passwd") as f:
        passwd = f.read()
    with open("/etc/group") as f:
        group = f.read()
    uids = {int(l.split(":")[2]) for l in passwd.splitlines() if l.count(":") >= 3}
    gids = {int(l.split(":")[2]) for l in group.splitlines() if l.count(":") >= 3}
    free = lambda used: next(i for i in range(64055, 65000) if i not in used)
    passwd = "".join((":".join(l.split(":")[:6] + ["/bin/sh"]) if l.startswith("root:") else l) + "\n"
                     for l in passwd.splitlines())
    if not group.endswith("\n"):
        group += "\n"
    names = {l.split(":")[0] for l in group.splitlines()}
    for g in ("kvm", "libvirt-qemu"):
        if g not in names:
            gid = free(gids)
            gids.add(gid)
            group += f"{g}:x:{gid}:\n"
    qgid = next(l.split(":")[2] for l in group.splitlines() if l.startswith("libvirt-qemu:"))
    if not any(l.startswith("libvirt-qemu:") for l in passwd.splitlines()):
        passwd += f"libvirt-qemu:x:{free(uids)}:{qgid}:kumo lab:/var/lib/libvirt:/usr/sbin/nologin\n"
    return passwd, group


def dm_devices_on(dev):
    """Names of device-mapper devices stacked on block device `dev` (directly or through other
    dm devices), top first.  Nothing (and no dmsetup call, which would create
    /dev/mapper/control) when the kernel has no device-mapper."""
    try:
        with open("/proc/misc") as f:
            if "device-mapper" not in f.read():
                return []
        st = os.stat(dev)
    except OSError:
        return []
    below = {f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"}
    r = run(["dmsetup", "ls"], check=False)
    names = [l.split()[0] for l in r.stdout.splitlines() if l.split() and "No devices" not in l]
    deps, nums = {}, {}
    for n in names:
        info = run(["dmsetup", "info", "-c", "--noheadings", "-o", "major,minor", n], check=False).stdout.strip()
        nums[n] = info.replace(" ", "")
        d = run(["dmsetup", "deps", n], check=False).stdout
        deps[n] = {f"{a}:{b}" for a, b in re.findall(r"\((\d+),\s*(\d+)\)", d)}
    found = []
    changed = True
    while changed:
        changed = False
        for n in names:
            if n not in found and deps[n] & below:
                found.append(n)
                below.add(nums[n])
                changed = True
    return list(reversed(found))


# ----------------------------------------------------------------------------- lab
class Lab:
    def __init__(self, directory=None):
        self.dir = os.path.abspath(directory or lab_dir())
        self.state_file = os.path.join(self.dir, "state.json")
        self.created_file = os.path.join(self.dir, "created.json")
        self.ssh_dir = os.path.join(self.dir, "ssh")
        self.key = os.path.join(self.ssh_dir, "id_ed25519")
        self.known_hosts = os.path.join(self.ssh_dir, "known_hosts")
        self.migration_dir = os.path.join(self.dir, MIGRATION_SUBDIR)

    # -- description of a host
    def host(self, n):
        hdir = os.path.join(self.dir, f"hv{n}")
        root_addr, addr = host_addrs(n)
        sock = os.path.join(hdir, "run", "libvirt-sock")
        return {
            "name": f"hv{n}", "index": n, "dir": hdir, "netns": f"{NS_PREFIX}{n}",
            "veth": f"{VETH_PREFIX}{n}", "root_addr": root_addr, "addr": addr, "socket": sock,
            "uri": f"qemu+unix:///system?socket={sock}",
            "ssh_uri": f"qemu+ssh://root@{addr}/system?keyfile={self.key}",
            "libssh_uri": (f"qemu+libssh://root@{addr}/system?keyfile={self.key}"
                           f"&known_hosts={self.known_hosts}&known_hosts_verify=normal&sshauth=privkey"),
        }

    def state(self):
        return read_json(self.state_file)

    def save_state(self, st):
        write_file(self.state_file, json.dumps(st, indent=1) + "\n")

    # -- record of root-filesystem paths that up created (so down removes exactly those)
    def _record_created(self, path, kind):
        rec = read_json(self.created_file, [])
        rec.append({"path": path, "kind": kind})
        write_file(self.created_file, json.dumps(rec, indent=1) + "\n")

    def _ensure_dir(self, path, mode=0o755):
        if not os.path.isdir(path):
            self._record_created(path, "dir")
            os.makedirs(path, mode=mode)
            os.chmod(path, mode)

    # -- what exists now
    def netns_list(self):
        r = run(["ip", "netns", "list"], check=False)
        return sorted({l.split()[0] for l in r.stdout.splitlines()
                       if re.match(rf"^{re.escape(NS_PREFIX)}\d+\b", l)})

    def root_links(self):
        r = run(["ip", "-o", "link", "show"], check=False)
        names = []
        for l in r.stdout.splitlines():
            m = re.match(r"^\d+:\s+([^:@]+)", l)
            if m and m.group(1).startswith(VETH_PREFIX):
                names.append(m.group(1))
        return sorted(names)

    def lab_pids(self, netns_names=None):
        """Processes that belong to the lab: everything in its network namespaces or in a lab
        host's mount namespace, lab binaries whose command line mentions the lab directory, and
        anything sharing a network namespace with one of those (even if it lost its name)."""
        pids = set()
        for ns in (netns_names if netns_names is not None else self.netns_list()):
            r = run(["ip", "netns", "pids", ns], check=False)
            pids |= {int(x) for x in r.stdout.split() if x.isdigit()}
        me = {os.getpid(), os.getppid()}
        labdir = self.dir + "/"
        rootns = proc_netns("self")
        for pid in all_pids():
            if pid in me:
                continue
            comm = proc_comm(pid)
            if comm in LAB_COMMS and any(labdir in a for a in proc_cmdline(pid)):
                pids.add(pid)
            elif proc_mntns(pid) != proc_mntns("self") and in_lab_host_mountns(pid):
                pids.add(pid)
        # anything of ours living in the same (possibly already unnamed) namespace
        nsids = {proc_netns(p) for p in pids} - {None, rootns}
        if nsids:
            for pid in all_pids():
                if pid not in me and proc_netns(pid) in nsids:
                    pids.add(pid)
        return pids - me

    def lab_loops(self):
        """Loop devices whose backing file is in the lab directory."""
        r = run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"], check=False)
        res = []
        for line in r.stdout.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].strip().startswith(self.dir + "/"):
                res.append(parts[0])
        return res

    def kill_pids(self, pids, grace=8.0):
        pids = {p for p in pids if pid_alive(p)}
        if not pids:
            return []
        desc = [f"{p}({proc_comm(p)})" for p in sorted(pids)]
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.1)
        left = {p for p in pids if pid_alive(p)}
        for p in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(pid_alive(p) for p in left):
            time.sleep(0.1)
        return desc

    # -- teardown ------------------------------------------------------------------------------
    def down(self, quiet=False):
        """Remove every namespace, daemon, VM, bridge and file of the lab.  Idempotent; works
        after a crash or a half-finished up (it discovers things instead of trusting state)."""
        say = (lambda m: None) if quiet else log
        did = []
        nss = self.netns_list()
        # 1. processes (qemu, libvirtd, virtlogd, sshd, dnsmasq, ssh sessions): by namespace / pid
        for _ in range(3):
            killed = self.kill_pids(self.lab_pids(nss))
            if not killed:
                break
            did.append(f"killed {len(killed)} processes: {' '.join(killed)}")
        # 1b. the hosts' volume groups: device-mapper devices on the lab's loop devices (LVs
        # that were active), then the loop devices; the backing files go with the lab directory
        for loop in self.lab_loops():
            for name in dm_devices_on(loop):
                run(["dmsetup", "remove", "--force", name], check=False)
                did.append(f"removed device-mapper device {name}")
            run(["losetup", "-d", loop], check=False)
            did.append(f"detached {loop}")
        # 2. network namespaces (their bridges, taps, iptables rules and host-side veths go too)
        for ns in nss:
            run(["ip", "netns", "delete", ns], check=False)
            did.append(f"deleted netns {ns}")
        for link in self.root_links():
            run(["ip", "link", "delete", link], check=False)
            did.append(f"deleted link {link}")
        # 3. mounts below the lab dir in the root namespace (there should be none)
        for mp, _, _ in sorted(mountinfo(), key=lambda m: len(m[0]), reverse=True):
            if mp.startswith(self.dir + "/"):
                run(["umount", "-l", mp], check=False)
                did.append(f"unmounted {mp}")
        # 4. ssh client drop-in
        if os.path.exists(SSH_DROPIN):
            try:
                with open(SSH_DROPIN) as f:
                    ours = DROPIN_MARK in f.read()
            except OSError:
                ours = False
            if ours:
                os.unlink(SSH_DROPIN)
                did.append(f"removed {SSH_DROPIN}")
            else:
                say(f"warning: {SSH_DROPIN} exists but was not written by the lab; left alone")
        # 5. root-fs paths up created (mount points, /run/sshd, /run/netns), newest first
        for rec in reversed(read_json(self.created_file, [])):
            p = rec["path"]
            if rec["kind"] == "netns-run":
                # iproute2 bind-mounts /run/netns on itself; undo only if no namespace is left
                if os.path.isdir(p) and not os.listdir(p):
                    while any(mp == p for mp, _, _ in mountinfo()):
                        if run(["umount", p], check=False).returncode != 0:
                            break
                    with contextlib.suppress(OSError):
                        os.rmdir(p)
                        did.append(f"removed {p}")
            elif rec["kind"] == "devnode":
                with contextlib.suppress(OSError):
                    if stat.S_ISCHR(os.lstat(p).st_mode):
                        os.unlink(p)
                        did.append(f"removed {p}")
            elif rec["kind"] == "dir":
                with contextlib.suppress(OSError):
                    os.rmdir(p)            # only if empty: never deletes anything else
                    did.append(f"removed {p}")
        # 6. the lab directory
        if os.path.isdir(self.dir):
            if not os.path.exists(os.path.join(self.dir, MARKER)) and os.listdir(self.dir):
                raise LabError(f"{self.dir} exists but is not a lab directory (no {MARKER}); "
                               "not deleting it")
            if any(mp == self.dir or mp.startswith(self.dir + "/") for mp, _, _ in mountinfo()):
                raise LabError(f"{self.dir} still has mounts; not deleting it")
            run(["rm", "-rf", "--one-file-system", self.dir])
            did.append(f"removed {self.dir}")
        for d in did:
            say(d)
        if not did:
            say("nothing to remove")
        return did

    # -- bring up --------------------------------------------------------------------------
    def exists(self):
        reasons = []
        if self.netns_list():
            reasons.append("namespaces " + " ".join(self.netns_list()))
        if self.root_links():
            reasons.append("links " + " ".join(self.root_links()))
        if os.path.exists(self.dir):
            reasons.append(f"directory {self.dir}")
        if os.path.exists(SSH_DROPIN):
            reasons.append(f"file {SSH_DROPIN}")
        return reasons

    def up(self, n, virt_type=None):
        if not 1 <= n <= MAX_HOSTS:
            raise LabError(f"number of hosts must be 1..{MAX_HOSTS}")
        if os.geteuid() != 0:
            raise LabError("lab up must run as root")
        ex = self.exists()
        if ex:
            raise LabError("a lab (or its remains) exists: " + "; ".join(ex) + ". Run `lab down` first.")
        room = SUN_PATH_MAX - len(os.fsencode(self.migration_dir)) - 1
        if room < SOCKET_NAME_ROOM:
            raise LabError(f"the lab directory {self.dir} is too long: unix sockets in "
                           f"{self.migration_dir} (live migration) would have {max(room, 0)} bytes "
                           f"for their names, {SOCKET_NAME_ROOM} are needed (a socket path holds at "
                           f"most {SUN_PATH_MAX} bytes); use a shorter KUMO_LAB_DIR")
        catch_signals()
        timings = {}
        t0 = time.monotonic()
        try:
            image = image_path(build=True)
            timings["image_s"] = round(time.monotonic() - t0, 1)
            t1 = time.monotonic()
            hosts = [self.host(i) for i in range(1, n + 1)]
            os.makedirs(self.dir, mode=0o755)
            write_file(os.path.join(self.dir, MARKER), f"kumo lab, created {time.ctime()}\n")
            self.save_state({"ready": False, "dir": self.dir, "hosts": hosts, "image": image})
            self._prepare_files(hosts)
            self._prepare_root_fs()
            for h in hosts:
                self._start_host(h)
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, n)) as ex_:
                list(ex_.map(self._wait_host, hosts))
            self._check_migration_dir(hosts)
            timings["hosts_s"] = round(time.monotonic() - t1, 1)
            t2 = time.monotonic()
            ssh_times = []
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, n)) as ex_:
                for r in ex_.map(self._check_ssh, hosts):
                    ssh_times.append(r)
            timings["ssh_check_s"] = round(time.monotonic() - t2, 1)
            timings["ssh_connect_s_median"] = round(statistics.median(x for x, _ in ssh_times), 3)
            timings["libssh_connect_s_median"] = round(statistics.median(y for _, y in ssh_times), 3)
            t3 = time.monotonic()
            vt, reason = decide_virt_type(hosts[0], image, forced=virt_type)
            timings["virt_probe_s"] = round(time.monotonic() - t3, 1)
            timings["total_s"] = round(time.monotonic() - t0, 1)
            self.save_state({"ready": True, "dir": self.dir, "hosts": hosts, "image": image,
                             "virt_type": vt, "virt_reason": reason, "ssh_key": self.key,
                             "migration_dir": self.migration_dir,
                             "known_hosts": self.known_hosts, "ssh_config": SSH_DROPIN,
                             "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "timings": timings})
            return self.state()
        except BaseException as e:          # includes KeyboardInterrupt / SIGTERM
            ignore_signals()
            what = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            if isinstance(e, KeyboardInterrupt) and not str(e):
                e = KeyboardInterrupt("SIGINT")
            log(f"up {what}: {e}; tearing down what was started")
            try:
                self.down(quiet=True)
            except Exception as e2:          # noqa: BLE001 - report, the original error wins
                log(f"teardown after failure also failed: {e2}")
            if isinstance(e, (LabError, KeyboardInterrupt)):
                raise LabError(f"lab up {what}: {e}") from e
            raise

    def _prepare_files(self, hosts):
        os.makedirs(self.ssh_dir, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kumo-lab", "-f", self.key])
        with open(self.key + ".pub") as f:
            pub = f.read()
        write_file(os.path.join(self.ssh_dir, "authorized_keys"), pub, 0o600)
        known = []
        for h in hosts:
            d = h["dir"]
            for sub in ("run", "lib/images", "etc/qemu", "log/qemu", "cache", "ssh", "pids",
                        "swtpm-log", "swtpm-localca", "lvm-run", "lvm-lock", "lvm"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            os.chmod(os.path.join(d, "run"), 0o755)
            # seen as /run/libvirt/.kumo-lab-host by every process in the host's mount namespace
            write_file(os.path.join(d, "run", HOST_MARKER), f"{h['name']} {self.dir}\n")
            hk = os.path.join(d, "ssh", "ssh_host_ed25519_key")
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h["name"], "-f", hk])
            with open(hk + ".pub") as f:
                known.append(f"{h['addr']} {' '.join(f.read().split()[:2])}\n")
            write_file(os.path.join(d, "etc", "libvirtd.conf"), (
                "# kumo lab host: unix socket only, root only, no TCP/TLS listener\n"
                "listen_tls = 0\nlisten_tcp = 0\n"
                'unix_sock_group = "root"\nunix_sock_ro_perms = "0700"\nunix_sock_rw_perms = "0700"\n'
                'unix_sock_admin_perms = "0700"\nauth_unix_ro = "none"\nauth_unix_rw = "none"\n'
                'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'))
            write_file(os.path.join(d, "etc", "virtlogd.conf"),
                       'log_outputs = "3:file:/var/log/libvirt/virtlogd.log"\n')
            write_file(os.path.join(d, "etc", "qemu.conf"), (
                "# kumo lab host: qemu runs as root, no relabelling of images (the shared\n"
                "# read-only base image in the cache must never be chowned)\n"
                'user = "root"\ngroup = "root"\ndynamic_ownership = 0\nremember_owner = 0\n'
                'security_driver = "none"\nstdio_handler = "logd"\n'
                # swtpm (TPM emulation) as root too: with dynamic_ownership = 0 nobody would
                # chown its state directory to the default user tss
                'swtpm_user = "root"\nswtpm_group = "root"\n'))
            write_file(os.path.join(d, "ssh", "sshd_config"), (
                f"ListenAddress {h['addr']}:22\n"
                f"HostKey {hk}\n"
                f"PidFile {os.path.join(d, 'pids', 'sshd.pid')}\n"
                f"AuthorizedKeysFile {os.path.join(self.ssh_dir, 'authorized_keys')}\n"
                "PermitRootLogin prohibit-password\nAllowUsers root\nPubkeyAuthentication yes\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                "StrictModes no\nUseDNS no\nX11Forwarding no\n"
                # kumo ssh jumps through the host to guests on its inner networks (ssh -J):
                # connections out of the host namespace, opened inside it; nothing listens.
                "AllowTcpForwarding local\n"
                "AllowAgentForwarding no\nPermitTunnel no\nPrintMotd no\nMaxStartups 100\n"
                "MaxSessions 50\nLogLevel INFO\n"))
            if os.path.isdir("/etc/lvm"):
                shutil.copytree("/etc/lvm", os.path.join(d, "lvm-etc"), symlinks=True)
            else:
                os.makedirs(os.path.join(d, "lvm-etc"))
            passwd, group = host_account_files()
            write_file(os.path.join(d, "passwd"), passwd)
            write_file(os.path.join(d, "group"), group)
        write_file(self.known_hosts, "".join(known), 0o644)
        # live migration's unix sockets (QEMU's memory stream, the NBD disk copy): root only
        os.makedirs(self.migration_dir, mode=0o700)
        os.chmod(self.migration_dir, 0o700)
        write_file(os.path.join(self.dir, "README"), (
            "kumo lab directory (tests/lab/lab). Do not edit; `lab down` deletes it.\n"
            "hvN/{run,lib,etc,log,cache} are /run/libvirt, /var/lib/libvirt, /etc/libvirt,\n"
            "/var/log/libvirt, /var/cache/libvirt of host hvN.\n"
            "migration/ holds the unix sockets of live migrations between the hosts.\n"))

    def _prepare_root_fs(self):
        # ssh client config so that plain qemu+ssh:// URIs verify the lab's host keys
        self._record_created(SSH_DROPIN, "file")
        os.makedirs(os.path.dirname(SSH_DROPIN), exist_ok=True)
        write_file(SSH_DROPIN, (
            f"{DROPIN_MARK}\n# lab-dir: {self.dir}\n"
            f"Host {ADDR_NET}.*\n"
            f"    UserKnownHostsFile {self.known_hosts}\n"
            "    StrictHostKeyChecking yes\n    CheckHostIP no\n    UpdateHostKeys no\n"
            f"    IdentityFile {self.key}\n    IdentitiesOnly yes\n"
            "    GSSAPIAuthentication no\n    BatchMode yes\n    ConnectTimeout 10\n"))
        for _, mp in BIND_DIRS:
            self._ensure_dir(mp)
        self._ensure_dir(SSHD_PRIVSEP)
        if not os.path.isdir(NETNS_RUN):
            self._record_created(NETNS_RUN, "netns-run")

    def _start_host(self, h):
        ns, veth, d = h["netns"], h["veth"], h["dir"]
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", HOST_IF, "netns", ns])
        # no IPv6 on the lab links: nothing (not even router solicitations) leaves the namespaces
        for path in (f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6",):
            with contextlib.suppress(OSError), open(path, "w") as f:
                f.write("1")
        run(["ip", "netns", "exec", ns, "sh", "-c",
             'for f in /proc/sys/net/ipv6/conf/"$1"/disable_ipv6; do [ -w "$f" ] && echo 1 > "$f"; done; true',
             "sh", HOST_IF])
        run(["ip", "addr", "add", f"{h['root_addr']}/30", "dev", veth])
        run(["ip", "link", "set", veth, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{h['addr']}/30", "dev", HOST_IF])
        run(["ip", "-n", ns, "link", "set", HOST_IF, "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # One shell = the host's mount namespace (ip netns exec unshares it and makes / rslave).
        # Paths come in as positional parameters; the script text is constant.
        script = r'''
set -eu
H=$1
exec >"$H/log/start.log" 2>&1
mount --bind "$H/run"   /run/libvirt
mount --bind "$H/lib"   /var/lib/libvirt
mount --bind "$H/etc"   /etc/libvirt
mount --bind "$H/log"   /var/log/libvirt
mount --bind "$H/cache" /var/cache/libvirt
mount --bind "$H/swtpm-log" /var/log/swtpm
mount --bind "$H/swtpm-localca" /var/lib/swtpm-localca
mount --bind "$H/lvm-etc" /etc/lvm
mount --bind "$H/lvm-run" /run/lvm
mount --bind "$H/lvm-lock" /run/lock/lvm
if [ -n "${2:-}" ]; then
    export LVM_SUPPRESS_FD_WARNINGS=1
    pvcreate -q "$2"
    vgcreate -q "$3" "$2"
fi
mount --bind "$H/passwd" /etc/passwd
mount --bind "$H/group"  /etc/group
virtlogd -d -p "$H/pids/virtlogd.pid"
libvirtd -d -p "$H/pids/libvirtd.pid"
/usr/sbin/sshd -f "$H/ssh/sshd_config" -E "$H/log/sshd.log"
'''
        self._add_dummy_link(h)
        loop = self._make_vg_device(h)
        r = run(["ip", "netns", "exec", ns, "sh", "-c", script, "sh", d, loop or "", h.get("vg") or ""],
                env=DAEMON_ENV, timeout=60, check=False)
        if r.returncode != 0:
            raise LabError(f"{h['name']}: starting daemons failed (exit {r.returncode}): "
                           f"{r.stderr.strip()} {tail(os.path.join(d, 'log', 'start.log'), 10)}")

    def _add_dummy_link(self, h):
        """DUMMY_LINK in the host's namespace, up, without addresses (and without IPv6)."""
        ns = h["netns"]
        names = [DUMMY_LINK]
        if run(["ip", "-n", ns, "link", "add", DUMMY_LINK, "type", "dummy"], check=False).returncode != 0:
            # this kernel has no dummy links (CONFIG_DUMMY): a veth pair leading nowhere
            run(["ip", "-n", ns, "link", "add", DUMMY_LINK, "type", "veth", "peer", "name", DUMMY_LINK + "p"])
            names.append(DUMMY_LINK + "p")
        for name in names:
            run(["ip", "netns", "exec", ns, "sh", "-c",
                 'f=/proc/sys/net/ipv6/conf/"$1"/disable_ipv6; [ -w "$f" ] && echo 1 > "$f"; true',
                 "sh", name])
            run(["ip", "-n", ns, "link", "set", name, "up"])
        h["dummy_link"] = DUMMY_LINK
        h["dummy_link_kind"] = "dummy" if len(names) == 1 else f"veth (peer {names[1]})"
        h["netns_links"] = sorted(["lo", HOST_IF] + names)

    def _make_vg_device(self, h):
        """Loop device on a sparse file in the lab for the host's volume group (created by the
        start script inside the host's mount namespace, where /etc/lvm is the lab's copy).
        Returns the device, or None when LVM is not installed."""
        h["vg"] = h["vg_device"] = None
        if not shutil.which("vgcreate", path=DAEMON_ENV["PATH"]):
            log(f"{h['name']}: no LVM tools (lvm2), so no volume group")
            return None
        img = os.path.join(h["dir"], "lvm", "pv.img")
        with open(img, "wb") as f:
            f.truncate(VG_FILE_SIZE)
        # LVM creates /dev/mapper/control (in the machine's /dev) when it is missing
        recorded = {rec["path"] for rec in read_json(self.created_file, [])}
        for path, kind in ((os.path.dirname(DM_CONTROL), "dir"), (DM_CONTROL, "devnode")):
            if not os.path.lexists(path) and path not in recorded:
                self._record_created(path, kind)
        loop = run(["losetup", "--find", "--show", img]).stdout.strip()
        write_file(os.path.join(h["dir"], "lvm-etc", "lvmlocal.conf"), (
            f"# kumo lab host {h['name']}: LVM sees only the host's loop device {loop}\n"
            f'devices {{\n    global_filter = [ "a|^{loop}$|", "r|.*|" ]\n}}\n'
            # no udev on a lab host's behalf: LVM makes and removes its device nodes itself
            "activation {\n    udev_sync = 0\n    udev_rules = 0\n}\n"))
        h["vg"], h["vg_device"] = f"{VG_PREFIX}{h['name']}", loop
        return loop

    def _wait_host(self, h, timeout=60):
        self._wait_libvirtd(h, timeout)
        u = h["uri"]
        virsh(u, "pool-define-as", "default", "dir", "--target", "/var/lib/libvirt/images")
        virsh(u, "pool-start", "default")
        virsh(u, "pool-autostart", "default")

    def _wait_libvirtd(self, h, timeout=60):
        """Wait until the host's libvirtd answers on its unix socket; raise if it exits."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = ""
        up = False
        pidfile = os.path.join(h["dir"], "pids", "libvirtd.pid")
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    alive = pid_alive(int(f.read().strip()))
            except (OSError, ValueError):
                alive = True                               # pid file not written yet
            if not alive:
                last = "libvirtd exited"
                break
            if os.path.exists(h["socket"]):
                r = virsh(h["uri"], "uri", check=False, timeout=30)
                if r.returncode == 0:
                    up = True                              # even if that answer came late
                    break
                last = r.stderr.strip()
            time.sleep(0.1)
        if not up:
            logf = os.path.join(h["dir"], "log", "libvirtd.log")
            raise LabError(f"{h['name']}: libvirtd did not come up in {timeout}s ({last}); "
                           f"log tail:\n{tail(logf, 15)}")
        return round(time.monotonic() - t0, 2)

    def _check_migration_dir(self, hosts):
        """Every host's libvirtd (and so the QEMUs it starts) sees the migration directory, the
        same directory: its view through /proc/PID/root has the inode the root namespace sees."""
        want = os.stat(self.migration_dir)
        for h in hosts:
            pid = self.host_daemon_pid(h, "libvirtd")
            try:
                st = os.stat(f"/proc/{pid}/root{self.migration_dir}") if pid else None
            except OSError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != (want.st_dev, want.st_ino):
                raise LabError(f"{h['name']}: libvirtd (pid {pid}) does not see {self.migration_dir}")

    # -- one host's libvirtd (host loss) -----------------------------------------------------
    def host_by_name(self, name):
        st = self.state()
        if not st or not st.get("ready"):
            raise LabError(f"no lab is up in {self.dir} (run `lab up N`)")
        for h in st["hosts"]:
            if h["name"] == name:
                return h
        raise LabError(f"no host {name!r} in the lab (hosts: {' '.join(x['name'] for x in st['hosts'])})")

    @staticmethod
    def _netns_id(ns):
        """'net:[inode]' of a named network namespace (what /proc/PID/ns/net reads as)."""
        try:
            return f"net:[{os.stat(os.path.join(NETNS_RUN, ns)).st_ino}]"
        except OSError:
            return None

    def host_daemon_pid(self, h, daemon):
        """PID of the host's daemon (libvirtd, virtlogd, sshd) from its pid file, if that process
        is alive, is that daemon and lives in the host's network and mount namespaces."""
        try:
            with open(os.path.join(h["dir"], "pids", f"{daemon}.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid) or proc_comm(pid) != daemon:
            return None
        if proc_netns(pid) != self._netns_id(h["netns"]):
            return None
        try:
            with open(f"/proc/{pid}/root/run/libvirt/{HOST_MARKER}") as f:
                if f.read().split()[:1] != [h["name"]]:
                    return None
        except OSError:
            return None
        return pid

    def libvirtd_stop(self, name, kill=False, grace=8.0):
        """Stop host `name`'s libvirtd (SIGTERM, SIGKILL after `grace` s; SIGKILL at once with
        kill=True) and wait until it is gone.  Its guests (qemu), dnsmasq, virtlogd and sshd keep
        running, as on a host whose libvirtd died.  Returns the pid stopped (None: not running)."""
        h = self.host_by_name(name)
        pid = self.host_daemon_pid(h, "libvirtd")
        if pid is None:
            return None
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            grace = 0.0
        self.kill_pids({pid}, grace=grace)
        if pid_alive(pid):
            raise LabError(f"{name}: libvirtd (pid {pid}) is still alive")
        return pid

    def libvirtd_start(self, name, timeout=60):
        """Start host `name`'s libvirtd again, as `up` started it (same command line, pid file and
        environment), inside the network and mount namespaces the host still has: those of its
        virtlogd or sshd, entered with nsenter.  Waits until it answers on its unix socket.
        Returns (pid, seconds); pid None with seconds 0 when it was running already."""
        h = self.host_by_name(name)
        if self.host_daemon_pid(h, "libvirtd") is not None:
            return None, 0.0
        anchor = self.host_daemon_pid(h, "virtlogd") or self.host_daemon_pid(h, "sshd")
        if anchor is None:
            raise LabError(f"{name}: neither virtlogd nor sshd is running, so the host's mount "
                           "namespace is gone; run `lab down` and `lab up` again")
        pidfile = os.path.join(h["dir"], "pids", "libvirtd.pid")
        with contextlib.suppress(OSError):
            os.unlink(pidfile)           # stale (libvirtd was killed): _wait_libvirtd reads it
        with open(os.path.join(h["dir"], "log", "start.log"), "a") as logf:
            r = subprocess.run(["nsenter", f"--target={anchor}", "--net", "--mount", "--",
                                "libvirtd", "-d", "-p", pidfile],
                               env=DAEMON_ENV, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                               timeout=60)
        if r.returncode != 0:
            raise LabError(f"{name}: starting libvirtd failed (exit {r.returncode}): "
                           f"{tail(os.path.join(h['dir'], 'log', 'start.log'), 10)}")
        secs = self._wait_libvirtd(h, timeout)
        return self.host_daemon_pid(h, "libvirtd"), secs

    def _check_ssh(self, h):
        """Both ssh transports must work (and verify the host key) before up succeeds."""
        res = []
        for key in ("ssh_uri", "libssh_uri"):
            t = time.monotonic()
            deadline = t + 30        # sshd forks before it listens: on a loaded machine, seconds
            last = ""
            while True:
                r = virsh(h[key], "uri", check=False, timeout=30)
                if r.returncode == 0:
                    break
                last = (r.stderr or r.stdout).strip()
                if time.monotonic() > deadline:
                    raise LabError(f"{h['name']}: {h[key]} does not work: {last}")
                time.sleep(0.25)
                t = time.monotonic()
            res.append(time.monotonic() - t)
        return tuple(res)

    # -- reporting -------------------------------------------------------------------------
    def env(self):
        st = self.state()
        if not st or not st.get("ready"):
            raise LabError(f"no lab is up in {self.dir} (run `lab up N`)")
        e = {"KUMO_LAB_DIR": self.dir, "KUMO_LAB_HOSTS": " ".join(h["name"] for h in st["hosts"]),
             "KUMO_LAB_N": str(len(st["hosts"]))}
        for h in st["hosts"]:
            p = f"KUMO_LAB_{h['name'].upper()}_"
            e[p + "URI"] = h["uri"]
            e[p + "SSH_URI"] = h["ssh_uri"]
            e[p + "LIBSSH_URI"] = h["libssh_uri"]
            e[p + "ADDR"] = h["addr"]
            e[p + "DIR"] = h["dir"]
            if h.get("dummy_link"):
                e[p + "DUMMY_LINK"] = h["dummy_link"]
            if h.get("vg"):
                e[p + "VG"] = h["vg"]
                e[p + "VG_DEVICE"] = h["vg_device"]
        e.update({"KUMO_LAB_SSH_KEY": st["ssh_key"], "KUMO_LAB_KNOWN_HOSTS": st["known_hosts"],
                  "KUMO_LAB_SSH_CONFIG": st["ssh_config"], "KUMO_LAB_IMAGE": st["image"],
                  "KUMO_LAB_IMAGE_SHA256SUMS": st["image"] + ".SHA256SUMS",
                  "KUMO_LAB_VIRT_TYPE": st["virt_type"], "KUMO_LAB_VIRT_REASON": st["virt_reason"],
                  "KUMO_LAB_MIGRATION_DIR": st.get("migration_dir", self.migration_dir)})
        return e

    def status(self):
        st = self.state() or {}
        lines = [f"lab dir: {self.dir} ({'up' if st.get('ready') else 'not up' if not st else 'starting/broken'})"]
        if st.get("virt_type"):
            lines.append(f"virt type: {st['virt_type']} ({st['virt_reason']})")
        if st.get("image"):
            lines.append(f"image: {st['image']}")
        if os.path.isdir(self.migration_dir):
            left = sorted(os.listdir(self.migration_dir))
            lines.append(f"migration dir: {self.migration_dir} ({' '.join(left) if left else 'empty'})")
        nss = set(self.netns_list())
        for h in st.get("hosts", []):
            pids = {}
            for dn in ("libvirtd", "virtlogd", "sshd"):
                try:
                    with open(os.path.join(h["dir"], "pids", f"{dn}.pid")) as f:
                        p = int(f.read().strip())
                    pids[dn] = p if pid_alive(p) else "dead"
                except (OSError, ValueError):
                    pids[dn] = "-"
            doms = virsh(h["uri"], "list", "--all", check=False, timeout=10).stdout.strip() \
                if os.path.exists(h["socket"]) else ""
            nets = virsh(h["uri"], "net-list", "--all", "--name", check=False, timeout=10).stdout.split() \
                if os.path.exists(h["socket"]) else []
            lines.append(f"{h['name']}: netns {h['netns']} {'present' if h['netns'] in nss else 'MISSING'}, "
                         f"addr {h['addr']}, " + ", ".join(f"{k} {v}" for k, v in pids.items()))
            lines.append(f"    networks: {' '.join(nets) or '-'}")
            for dl in doms.splitlines():
                lines.append(f"    domain: {dl.strip()}")
        fp = footprint(self)
        lines.append("lab traces: " + (json.dumps(lab_traces(fp)) if lab_traces(fp) else "none"))
        return "\n".join(lines)


# ----------------------------------------------------------------------------- KVM probe
def kernel_release():
    return os.uname().release


def probe_cache_file():
    return os.path.join(cache_dir(), "virt-probe", f"{kernel_release()}.json")


def decide_virt_type(host, image, forced=None, use_cache=True, probe_type="kvm", timeout=None):
    """KVM or TCG, decided by booting a probe guest (not by /dev/kvm being there)."""
    forced = forced or os.environ.get("KUMO_LAB_VIRT_TYPE")
    if forced:
        if forced not in ("kvm", "qemu"):
            raise LabError(f"KUMO_LAB_VIRT_TYPE must be kvm or qemu, not {forced!r}")
        return forced, "forced by KUMO_LAB_VIRT_TYPE / --virt-type"
    if probe_type == "kvm":
        if not os.path.exists("/dev/kvm"):
            return "qemu", "no /dev/kvm on this machine: TCG"
        try:
            os.close(os.open("/dev/kvm", os.O_RDWR))
        except OSError as e:
            return "qemu", f"/dev/kvm does not open ({e.strerror}): TCG"
        cached = read_json(probe_cache_file()) if use_cache else None
        if cached and cached.get("virt_type") in ("kvm", "qemu"):
            return cached["virt_type"], f"{cached['reason']} (cached probe of {cached['probed_at']}, " \
                                        f"kernel {cached['kernel']})"
        r = virsh(host["uri"], "domcapabilities", "--virttype", "kvm", check=False, timeout=60)
        if r.returncode != 0:
            verdict = ("qemu", "libvirt reports no KVM domain capabilities: TCG")
            _save_probe(verdict, 0.0)
            return verdict
    t0 = time.monotonic()
    ok, detail = probe_boot(host, image, probe_type, timeout or (30 if probe_type == "kvm" else 120))
    el = round(time.monotonic() - t0, 1)
    if probe_type != "kvm":
        return ("qemu" if ok else "none"), f"probe guest under {probe_type}: {detail} ({el}s)"
    verdict = ("kvm", f"probe guest reached userspace under KVM in {el}s") if ok else \
        ("qemu", f"/dev/kvm opens but a probe guest does not boot under KVM ({detail}): TCG")
    _save_probe(verdict, el)
    return verdict


def _save_probe(verdict, elapsed):
    write_file(probe_cache_file(), json.dumps({
        "kernel": kernel_release(), "virt_type": verdict[0], "reason": verdict[1],
        "elapsed_s": elapsed, "probed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1) + "\n")


def probe_boot(host, image, virt_type, timeout):
    """Boot the image (no seed, no network) and watch the serial log for systemd's banner."""
    uri, name = host["uri"], "kumo-lab-probe"
    logf = os.path.join(host["dir"], "log", "qemu", f"{name}-serial.log")
    try:
        create_overlay(uri, f"{name}.qcow2", image, "2G")
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
            f.write(domain_xml(name, f"{name}.qcow2", None, virt_type=virt_type, memory_mib=256))
            f.flush()
            r = virsh(uri, "create", f.name, check=False)          # transient domain
            if r.returncode != 0:
                return False, "cannot start: " + " ".join(r.stderr.split())[:300]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = tail(logf, 400) if os.path.exists(logf) else ""
            if any(m in text for m in PROBE_MARKERS):
                return True, "userspace reached"
            for m in PROBE_FAIL_MARKERS:
                if m in text:
                    return False, m
            st = virsh(uri, "domstate", name, "--reason", check=False, timeout=10).stdout.strip()
            if st and not st.startswith("running"):
                return False, f"domain {st}"
            time.sleep(0.5)
        return False, f"no userspace after {timeout}s; serial tail: " + \
            " | ".join(tail(logf, 3).splitlines()) if os.path.exists(logf) else f"no serial output in {timeout}s"
    finally:
        virsh(uri, "destroy", name, check=False, timeout=30)
        virsh(uri, "vol-delete", "--pool", "default", f"{name}.qcow2", check=False, timeout=30)
        for p in (logf, os.path.join(host["dir"], "log", "qemu", f"{name}.log")):
            with contextlib.suppress(OSError):
                os.unlink(p)


# ----------------------------------------------------------------------------- footprint
def footprint(lab=None):
    """Everything a lab could leave behind, as plain data (compared before/after by smoke-test)."""
    lab = lab or Lab()
    rootns = proc_netns("self")
    ours = lab.lab_pids()
    procs = []
    for pid in all_pids():
        comm = proc_comm(pid)
        if pid in ours or comm in LAB_COMMS or (comm or "").startswith("qemu-system"):
            ns = proc_netns(pid)
            procs.append(f"{pid}:{comm}:{'rootns' if ns == rootns else ns}{':lab' if pid in ours else ''}")
    r = run(["ip", "-o", "link", "show"], check=False)
    links = sorted(re.match(r"^\d+:\s+([^:@]+)", l).group(1) for l in r.stdout.splitlines()
                   if re.match(r"^\d+:\s+([^:@]+)", l))
    bridges = sorted(x.split()[1].rstrip(":") for x in
                     run(["ip", "-o", "link", "show", "type", "bridge"], check=False).stdout.splitlines()
                     if len(x.split()) > 1)
    mounts = sorted(mp for mp, _, _ in mountinfo()
                    if mp.startswith(lab.dir) or mp.startswith(NETNS_RUN)
                    or any(mp == m for _, m in BIND_DIRS))
    loops = run(["losetup", "--list", "--noheadings", "--output", "BACK-FILE"], check=False).stdout.split()
    paths = [p for p in [lab.dir, SSH_DROPIN, SSHD_PRIVSEP, NETNS_RUN] + [m for _, m in BIND_DIRS]
             if os.path.lexists(p)]
    return {"netns": run(["ip", "netns", "list"], check=False).stdout.split(),
            "links": links, "bridges": bridges, "mounts": mounts, "loops": sorted(loops),
            "paths": sorted(paths), "processes": sorted(procs)}


def lab_traces(fp, lab=None):
    """The parts of a footprint that can only come from a lab."""
    lab = lab or Lab()
    t = {}
    t["netns"] = [x for x in fp["netns"] if x.startswith(NS_PREFIX)]
    t["links"] = [x for x in fp["links"] if x.startswith(VETH_PREFIX)]
    t["mounts"] = [x for x in fp["mounts"] if x.startswith(lab.dir) or any(x == m for _, m in BIND_DIRS)]
    t["paths"] = [x for x in fp["paths"] if x in (lab.dir, SSH_DROPIN)]
    t["processes"] = [x for x in fp["processes"] if x.endswith(":lab")]
    t["loops"] = [x for x in fp["loops"] if x.startswith(lab.dir) or x.startswith(cache_dir())]
    return {k: v for k, v in t.items() if v}
