#!/usr/bin/env python3
"""The CI examples (examples/ci/github-actions.yml, examples/ci/gitlab-ci.yml) are real:
- both are valid YAML with the shape their CI expects (GitHub: `on` pull_request and push to
  main, jobs `plan` and `apply` whose steps each `run` or `uses` an action pinned to a version;
  GitLab: stages that exist, rules, `kumo-plan` on merge requests, `kumo-apply` on the default
  branch, artifacts);
- every shell script in them passes `bash -n`;
- both run the same kumo commands: every line that starts with `kumo` is one of validate,
  plan --json (-o: saved), show --markdown (the saved plan), apply (and --version), identical in
  both files.
tests/e2e/ci_e2e.py runs those lines (taken from here, `kumo_commands()`) on the lab.

  tests/ci_examples.py SOURCE_DIR        (ctest unit.ci_examples)
"""
import os
import subprocess
import sys

import yaml

ROLES = ("version", "validate", "plan_json", "show_markdown", "apply")


def examples_dir(root):
    return os.path.join(root, "examples", "ci")


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def github_scripts(doc):
    """[(job, script)] of every `run:` in job order."""
    return [(name, step["run"]) for name, job in doc["jobs"].items()
            for step in job["steps"] if "run" in step]


def gitlab_jobs(doc):
    return {k: v for k, v in doc.items()
            if isinstance(v, dict) and "script" in v and not k.startswith(".")}


def gitlab_scripts(doc):
    """[(job, script)]: the default before_script, then each job's script items as one script."""
    out = [("default", "\n".join(doc.get("default", {}).get("before_script", [])))]
    out += [(name, "\n".join(job["script"])) for name, job in gitlab_jobs(doc).items()]
    return out


def role(line):
    words = line.split()
    if words[1:2] == ["--version"]:
        return "version"
    if words[1:2] == ["validate"]:
        return "validate"
    if words[1:2] == ["plan"] and "--json" in words:
        return "plan_json"
    if words[1:2] == ["show"] and "--markdown" in words:
        return "show_markdown"
    if words[1:2] == ["apply"]:
        return "apply"
    return None


def kumo_commands(path):
    """{role: the shell line} of the kumo lines of a CI example; raises ValueError when a kumo line
    has no role, or one role has two different lines."""
    doc = load(path)
    scripts = github_scripts(doc) if "jobs" in doc else gitlab_scripts(doc)
    found = {}
    for _, script in scripts:
        for line in script.splitlines():
            line = line.strip()
            if line.split()[:1] != ["kumo"]:
                continue
            r = role(line)
            if r is None:
                raise ValueError(f"{path}: a kumo command the tests do not know: {line}")
            if found.get(r, line) != line:
                raise ValueError(f"{path}: two different {r} commands: {found[r]!r} and {line!r}")
            found[r] = line
    return found


def main(root):
    problems = []

    def check(cond, what):
        if not cond:
            problems.append(what)

    gh_path = os.path.join(examples_dir(root), "github-actions.yml")
    gl_path = os.path.join(examples_dir(root), "gitlab-ci.yml")
    gh, gl = load(gh_path), load(gl_path)

    # GitHub Actions. PyYAML (YAML 1.1) reads the key `on` as True.
    on = gh.get("on", gh.get(True)) or {}
    check("pull_request" in on, "github: runs on pull_request")
    check(on.get("push", {}).get("branches") == ["main"], "github: runs on push to main")
    check(set(gh.get("jobs", {})) == {"plan", "apply"}, "github: jobs plan and apply")
    for name, job in gh.get("jobs", {}).items():
        check("runs-on" in job and "if" in job, f"github: job {name} has runs-on and if")
        for i, step in enumerate(job.get("steps", [])):
            check(("run" in step) != ("uses" in step), f"github: {name} step {i}: exactly one of run, uses")
            if "uses" in step:
                check("@v" in step["uses"], f"github: {name} step {i}: {step['uses']} pinned to a version")
    check(gh["jobs"]["plan"].get("permissions", {}).get("pull-requests") == "write",
          "github: plan may write the pull request's comment")
    check(gh["jobs"]["apply"].get("concurrency", {}).get("cancel-in-progress") is False,
          "github: applies queue, never cancel one another")

    # GitLab CI/CD.
    jobs = gitlab_jobs(gl)
    check(set(jobs) == {"kumo-plan", "kumo-apply"}, f"gitlab: jobs kumo-plan and kumo-apply ({set(jobs)})")
    for name, job in jobs.items():
        check(job.get("stage") in gl.get("stages", []), f"gitlab: {name}'s stage is declared")
        check(isinstance(job.get("rules"), list), f"gitlab: {name} has rules")
        check(all(isinstance(item, str) for item in job["script"]), f"gitlab: {name}'s script is strings")
    check("merge_request_event" in str(jobs.get("kumo-plan", {}).get("rules")), "gitlab: plan on merge requests")
    check("CI_DEFAULT_BRANCH" in str(jobs.get("kumo-apply", {}).get("rules")), "gitlab: apply on the default branch")
    check(jobs.get("kumo-plan", {}).get("artifacts", {}).get("when") == "always",
          "gitlab: the plan's artifacts are kept also when the plan fails")
    check(jobs.get("kumo-apply", {}).get("resource_group"), "gitlab: one apply at a time")

    # Every script is bash.
    for path, scripts in ((gh_path, github_scripts(gh)), (gl_path, gitlab_scripts(gl))):
        for job, script in scripts:
            p = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
            check(p.returncode == 0, f"{os.path.basename(path)}: {job}: bash -n: {p.stderr.strip()}")

    # The same kumo commands in both.
    try:
        a, b = kumo_commands(gh_path), kumo_commands(gl_path)
        check(set(a) == set(ROLES), f"github: kumo commands {sorted(a)} are {sorted(ROLES)}")
        check(a == b, f"github and gitlab run the same kumo commands:\n  {a}\n  {b}")
    except ValueError as e:
        check(False, str(e))

    for p in problems:
        print("FAIL", p)
    print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")))
