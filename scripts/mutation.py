"""Mutation testing of the modules that guard user data and results (issue 23), with mutmut.

    python scripts/mutation.py [GROUP ...] [--max-children 2] [--json mutation.json]

Each group names the modules mutmut mutates and the test files that own them (``GROUPS``; no name: all).
A group runs in a scratch copy of the working tree, ``.mutation/<group>/`` (git-ignored), whose ``pyproject.toml``
gets the group's ``[tool.mutmut]`` section (``only_mutate``, the test selection), so the repository is never
touched and each group fits 2 cores. The copy is kept: a second run re-uses mutmut's results and re-tests only
mutants of changed code (an interrupted run resumes).
mutmut runs, per mutant, only the tests that executed the mutated function (its coverage pass), with a
timeout of 15 x their normal time.

Prints, and writes to ``--json``, per module: mutants, killed, survived (with their names: ``mutmut show
NAME`` in the scratch copy prints the diff), timeouts, and the score killed / (killed + survived); a mutant no
test reaches counts as survived ("no tests"). The photographs the tests read: ``$HUESCALE_TEST_DATA``, else
``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SF = "tests/test_safety_files.py::"
TR = "tests/test_train.py::"
GROUPS: dict[str, tuple[list[str], list[str]]] = {  # name -> (modules to mutate, their own tests)
    "redact": (["src/huescale/redact.py"], ["tests/test_safety_files.py", "tests/test_tracking.py"]),
    "atomic": (["src/huescale/atomic.py", "src/huescale/locks.py"],
               [SF + "test_stale_temporaries_of_dead_processes_are_removed_live_ones_kept",
                SF + "test_every_writer_uses_the_durable_atomic_write", "tests/test_concurrency.py"]),
    "archives": (["src/huescale/data/archives.py"],
                 ["tests/test_download_robust.py", "tests/test_download.py", "tests/test_sources.py"]),
    "checkpoint": (["src/huescale/training/checkpoint.py"],
                   [TR + "test_corrupt_checkpoint_is_named",
                    TR + "test_resume_after_interruption_gives_identical_weights",
                    TR + "test_corrupt_state_falls_back_to_previous_good_one", "tests/test_shipped.py"]),
    "paths": (["src/huescale/inference/paths.py"],
              [SF + "test_colorize_never_overwrites_or_loses_photographs",
               SF + "test_overwrite_replaces_only_earlier_outputs_never_a_photograph_beside_a_glob",
               SF + "test_out_naming_an_existing_file_or_an_empty_input_folder_fails_clearly", "tests/test_infer.py"]),
    "validation": (["src/huescale/validation.py"], ["tests/test_config.py"]),
}
ALSO_COPY = [".dvc", ".dvcignore", ".gitignore", "README.md", "CONTRIBUTING.md", "benchmarks", "docs", "dvc.yaml",
             "flows", "grids", "params", "params.yaml", "requirements.lock", "scripts", "stages"]
STATUS = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>[\w ]+)$")


def scratch_copy(dst: Path, modules: list[str], tests: list[str]) -> None:
    """The working tree (tracked and untracked, not ignored files) copied over ``dst``, with ``[tool.mutmut]``
    appended to its ``pyproject.toml``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    section = ("\n[tool.mutmut]\n"
               f"source_paths = [\"src\"]\n"
               f"only_mutate = {json.dumps(modules)}\n"
               f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
               "pytest_add_cli_args = [\"-p\", \"no:randomly\", \"-q\", \"-x\", \"-m\", \"not slow\"]\n"
               "process_isolation = \"forkserver\"\n"  # torch is not fork-safe after pytest's first run
               # the tests read the project beside them (params, profiles, dvc.yaml, stage scripts, the lock)
               f"also_copy = {json.dumps(ALSO_COPY)}\n")
    with open(dst / "pyproject.toml", "a") as f:
        f.write(section)


def module_of(mutant: str, modules: list[str]) -> str:
    """The module file of mutant ``huescale.redact.x_redact__mutmut_3`` among ``modules``."""
    for m in modules:
        dotted = m.removeprefix("src/").removesuffix(".py").replace("/", ".")
        if mutant.startswith(dotted + "."):
            return m
    return "?"


def statuses(mutmut: str, work: Path, env: dict) -> dict[str, str]:
    """Mutant name -> mutmut's status (``killed``, ``survived``, ``no tests``, ``timeout``, ...) in ``work``."""
    res = subprocess.run([mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True)
    return {hit["name"]: hit["status"].strip() for hit in map(STATUS.match, res.stdout.splitlines()) if hit}


def run_group(name: str, max_children: int, recheck: bool = False) -> dict:
    """Run mutmut on group ``name`` in a scratch copy; returns its per-module counts and surviving mutants.
    ``recheck``: run the surviving mutants of earlier runs again (mutmut keeps a mutant's result while its code
    is unchanged, even when a test was added to kill it)."""
    modules, tests = GROUPS[name]
    env = dict(os.environ)
    env.setdefault("HUESCALE_TEST_DATA", str(ROOT.parent / "shared" / "data"))
    work = ROOT / ".mutation" / name  # kept: mutmut's cache makes a second run resume (only changed mutants rerun)
    work.mkdir(parents=True, exist_ok=True)
    scratch_copy(work, modules, tests)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    t0, c0 = time.perf_counter(), os.times()
    print(f"mutation: group {name}: mutmut's progress in {work / 'mutmut.log'}", file=sys.stderr, flush=True)
    with open(work / "mutmut.log", "w") as logf:
        again = [m for m, st in statuses(mutmut, work, env).items() if st in ("survived", "no tests")] \
            if recheck and (work / "mutants").is_dir() else []
        for names in ([], again) if again else ([],):
            run = subprocess.run([mutmut, "run", "--max-children", str(max_children), *names], cwd=work, env=env,
                                 stdout=logf, stderr=subprocess.STDOUT)
    wall, c1 = time.perf_counter() - t0, os.times()
    per: dict[str, Counter] = {m: Counter() for m in modules}
    survived: dict[str, list[str]] = {m: [] for m in modules}
    for mutant, status in statuses(mutmut, work, env).items():
        mod = module_of(mutant, modules)
        per.setdefault(mod, Counter())[status] += 1
        if status in ("survived", "no tests"):
            survived.setdefault(mod, []).append(mutant)
    if run.returncode and not any(per.values()):
        raise RuntimeError(f"mutmut failed on group {name}: see {work / 'mutmut.log'}")
    out = {"tests": tests, "wall_s": round(wall, 1),
           "cpu_s": round((c1.children_user - c0.children_user) + (c1.children_system - c0.children_system), 1),
           "modules": {}}
    for mod, c in per.items():
        killed, alive = c["killed"], c["survived"] + c["no tests"]
        out["modules"][mod] = {"mutants": sum(c.values()), "killed": killed, "survived": c["survived"],
                               "no_tests": c["no tests"], "timeout": c["timeout"],
                               "other": {k: v for k, v in c.items()
                                         if k not in ("killed", "survived", "no tests", "timeout")},
                               "score": round(killed / (killed + alive), 3) if killed + alive else None,
                               "surviving": survived.get(mod, [])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("groups", nargs="*", choices=[*GROUPS, []], help="groups to run (default: all)")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--recheck", action="store_true",
                    help="run earlier runs' surviving mutants again (after adding tests that should kill them)")
    args = ap.parse_args()
    results = {"host_load_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "groups": {}}
    for g in args.groups or list(GROUPS):
        results["groups"][g] = run_group(g, args.max_children, args.recheck)
        for mod, r in results["groups"][g]["modules"].items():
            print(f"{mod}: {r['killed']}/{r['mutants']} killed, {r['survived']} survived, {r['no_tests']} no tests, "
                  f"{r['timeout']} timeout, score {r['score']}", file=sys.stderr, flush=True)
    text = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
