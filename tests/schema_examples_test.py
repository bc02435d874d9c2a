#!/usr/bin/python3
"""Validates every example against `kumo schema` with a real JSON Schema validator, and checks
that the schema rejects a few broken documents (so the schema itself is tested, not just kumo)."""
import glob, json, os, subprocess, sys
import jsonschema, yaml

kumo, src = sys.argv[1], sys.argv[2]
schema = json.loads(subprocess.run([kumo, "schema"], check=True, capture_output=True, text=True).stdout)
validator = jsonschema.Draft202012Validator(schema)
failed = 0
for path in sorted(glob.glob(os.path.join(src, "examples", "*.yaml"))):
    with open(path) as f:
        doc = yaml.safe_load(f)
    errors = list(validator.iter_errors(doc))
    for e in errors:
        print(f"FAIL {path}: {'/'.join(map(str, e.path))}: {e.message}")
    failed += bool(errors)
    print(("ok   " if not errors else "FAIL ") + os.path.basename(path))
bad = {
    "unknown top-level key": {"cluster": "c", "clutser": 1},
    "missing cluster": {"vms": {}},
    "size without unit": {"cluster": "c", "vms": {"web": {"memory": "512"}}},
    "bad network mode": {"cluster": "c", "networks": {"n": {"mode": "bridged"}}},
    "unknown vm key": {"cluster": "c", "vms": {"web": {"memroy": "1GiB"}}},
    "count in defaults": {"cluster": "c", "defaults": {"count": 2}},
}
for name, doc in bad.items():
    ok = not list(validator.iter_errors(doc))
    print(("FAIL " if ok else "ok   ") + "schema rejects " + name)
    failed += ok
print(f"{failed} failed" if failed else "all schema checks passed")
sys.exit(1 if failed else 0)
