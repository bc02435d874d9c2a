#!/usr/bin/env python3
"""The engine's shape (ARCHITECTURE.md), checked on the tree:
- no source file under cli/, planner/, providers/ is over 600 lines;
- the plan and the executor hold no JSON (no nlohmann in their files);
- nothing in the engine after `expand` takes the ClusterConfig (only planner/config/ and
  planner/desired.*);
- no Catch2 test name holds ';' (ctest would split it and run nothing).
Function sizes (no function over 100 lines, the JSON Schema table aside) are checked with
`scripts/check-structure`, which runs clang-tidy (minutes, so not part of this test).

  tests/structure_test.py SOURCE_DIR
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
problems = []


def sources(*dirs):
    for d in dirs:
        for base, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith((".cpp", ".h")):
                    yield os.path.relpath(os.path.join(base, f), root)


for path in sources("cli", "planner", "providers"):
    n = sum(1 for _ in open(os.path.join(root, path), encoding="utf-8"))
    if n > 600:
        problems.append(f"{path}: {n} lines (over 600: split it)")

plan_and_executor = ["planner/action.h", "planner/address.h", "planner/address.cpp", "planner/change.h",
                     "planner/plan.h", "planner/plan.cpp", "planner/executor.h", "planner/executor.cpp"]
plan_and_executor += [p for p in sources("planner/exec")]
for path in plan_and_executor:
    text = open(os.path.join(root, path), encoding="utf-8").read()
    if re.search(r"nlohmann|json", text):
        problems.append(f"{path}: mentions JSON (the plan and the executor hold none)")

# (The CLI loads the file, and expands it before anything else sees it.)
for path in sources("planner"):
    if path.startswith("planner/config/") or path.startswith("planner/desired."):
        continue
    text = open(os.path.join(root, path), encoding="utf-8").read()
    for m in re.finditer(r"^.*\bClusterConfig\b.*$", text, re.M):
        problems.append(f"{path}: takes ClusterConfig after expand: {m.group(0).strip()}")

# ctest cuts a Catch2 test name at ';' (a CMake list separator): such a test runs under a name
# that selects nothing, and "passes" whatever its checks say.
for base, _, files in os.walk(os.path.join(root, "tests")):
    for f in files:
        if f.endswith(".cpp"):
            path = os.path.join(base, f)
            for m in re.finditer(r'TEST_CASE\("((?:[^"\\]|\\.)*)"', open(path, encoding="utf-8").read()):
                if ";" in m.group(1):
                    problems.append(f"{os.path.relpath(path, root)}: test name with ';' (ctest would not "
                                    f"run it): {m.group(1)}")

for p in problems:
    print(p)
print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
sys.exit(1 if problems else 0)
