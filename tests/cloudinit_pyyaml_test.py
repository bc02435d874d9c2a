#!/usr/bin/python3
"""user-data read the way cloud-init reads it: PyYAML's safe_load (YAML 1.1, where "<<", "=",
"yes", "1:20" or "0x1F" mean something else). Generated strings (fixed seed) go into a VM's
write_files, runcmd and packages; `kumo plan --json --show-sensitive` against libvirt's in-process
test:///default driver shows the user-data kumo would write; PyYAML must give each string back
exactly. Nothing is changed anywhere (plan only).

usage: cloudinit_pyyaml_test.py path/to/kumo
"""
import json
import os
import random
import subprocess
import sys
import tempfile

import yaml

kumo = sys.argv[1]
PIECES = ["a", "Z", "0", "7", " ", "  ", "\n", "\r", "\t", "<<", "=", ":", ": ", "#", " #", "-",
          "- ", "'", '"', "\\", "é", "雲", "😀", "true", "yes", "Off", "null", "~", "*", "&", "!",
          "%", "@", "`", "|", ">", "{", "}", "[", "]", ",", "?", "\x01", "\x1b", "\u00a0", ".",
          "0x1F", "1:20", "1e3", "2026-12-01", ".inf", "0o17", "1_000"]
FIXED = ["  leading\n", "a\n\n\n", "no end\nnewline", "crlf\r\n", "\ttab", "<<", "=", "yes",
         "1:20", "0x1F", "2026-12-01", ".nan", "", " ", "\n", "x\n \ny\n", "雲\n"]


def main():
    rng = random.Random(20261201)
    strings = FIXED + ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 10)))
                       for _ in range(400)]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="kumo-pyyaml-") as work:
        image = os.path.join(work, "base.img")
        with open(image, "wb") as f:
            f.write(b"\0" * 4096)
        vms = {}
        for i, s in enumerate(strings):
            vms[f"vm{i}"] = {"image": "base", "wait_for": "none", "running": False, "memory": "64MiB",
                             "cloud_init": {"write_files": [{"path": "/etc/x", "content": s}],
                                            "runcmd": [s], "packages": [s]}}
        # Placement counts every VM: the test driver's one host gets room for all of them.
        cfg = {"cluster": "pyyaml", "hosts": {"t": {"uri": "test:///default",
                                                    "pool": "default-pool",
                                                    "memory_overcommit": 100,
                                                    "cpu_overcommit": 1000}},
               "images": {"base": {"path": image}}, "vms": vms}
        path = os.path.join(work, "kumo.yaml")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, ensure_ascii=False)  # JSON is YAML, every string escaped exactly
        p = subprocess.run([kumo, "plan", "-f", path, "--json", "--show-sensitive",
                            "--cache-dir", os.path.join(work, "cache")],
                           capture_output=True, text=True, timeout=600)
        if p.returncode not in (0, 2):
            print("FAIL kumo plan:", p.returncode, p.stderr[-2000:])
            return 1
        plan = json.loads(p.stdout)
        user_data = {}
        for c in plan["changes"]:
            for a in c["attributes"]:
                if a["name"] == "user_data":
                    user_data[c["address"][3:]] = a["after"]
        for i, s in enumerate(strings):
            ud = user_data.get(f"vm{i}")
            if ud is None:
                print(f"FAIL vm{i}: no user_data in the plan")
                failed += 1
                continue
            try:
                doc = yaml.safe_load(ud)
                got = (doc["write_files"][0]["content"], doc["runcmd"][0], doc["packages"][0])
            except Exception as e:  # noqa: BLE001 - any failure to read it back is the finding
                got = ("<error %s>" % e,) * 3
            if got != (s, s, s):
                failed += 1
                print(f"FAIL vm{i}: {s!r} read back by PyYAML as {got!r}\n{ud}")
    print(f"{len(strings)} strings, {failed} failed" if failed else
          f"all {len(strings)} strings read back exactly by PyYAML")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
