"""How long the tests take, tier by tier, in a fresh clone: the figures behind docs/development.md's tables.

    python benchmarks/bench_tests.py                          # both tiers of HEAD; the 30 slowest tests
    python benchmarks/bench_tests.py --tiers fast --top 50
    python benchmarks/bench_tests.py --tiers fast --pytest-args tests/test_stats.py    # a part of the suite

Clones this repository's commit (``--ref``, default HEAD: committed work only) into a temporary folder and runs
each tier there as the README's test command and CI run it (``python -m pytest``; ``python -m pytest -m slow``),
with this Python and its installed packages, the clone's own code first on the import path. It prints each
tier's wall time and its number of tests, then the slowest tests: seconds (pytest's, set-up and tear-down
included) and tier. Extra pytest arguments (``--pytest-args``, such as ``-n 0`` or a test file) go to every tier.
Nothing is asserted: these are figures to read. The tests find their data as they do in this checkout:
``$PERSONALIZATION_GYM_DATA``, else this checkout's ``../shared/data`` (the clone has nothing beside it), else the
user cache.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

DATA_ENV_VAR = "PERSONALIZATION_GYM_DATA"
TIERS = {"fast": [], "slow": ["-m", "slow"]}  # the README's command, and the slow tier as .ci/run runs it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiers", nargs="+", choices=list(TIERS), default=list(TIERS), help="default: both")
    parser.add_argument("--top", type=int, default=30, help="how many of the slowest tests to list (default 30)")
    parser.add_argument("--ref", default="HEAD", help="the commit to clone (default HEAD)")
    parser.add_argument("--pytest-args", default="", help="more pytest arguments for every tier, as one string")
    args = parser.parse_args(argv)
    if args.top < 0:
        parser.error(f"--top must be an integer >= 0, got {args.top}")
    project = Path(__file__).resolve().parent.parent
    found = subprocess.run(["git", "-C", str(project), "rev-parse", "--verify", "--quiet", f"{args.ref}^{{commit}}"],
                           capture_output=True, text=True)  # fmt: skip
    if found.returncode != 0:
        parser.error(f"--ref {args.ref} is not a commit of the git checkout {project}")
    commit = found.stdout.strip()

    with tempfile.TemporaryDirectory(prefix="bench-tests-") as scratch:
        clone = Path(scratch) / "project"
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(project), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", commit], check=True)
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(clone), os.environ.get("PYTHONPATH", "")])}
        shared = project.parent / "shared" / "data"  # the clone has nothing beside it: point it at this checkout's
        if not environment.get(DATA_ENV_VAR) and shared.is_dir():
            environment[DATA_ENV_VAR] = str(shared)
        where = subprocess.run([sys.executable, "-c", "import sb3_entropy; print(sb3_entropy.__file__)"],
                               cwd=clone, env=environment, capture_output=True, text=True, check=True)  # fmt: skip
        if not Path(where.stdout.strip()).is_relative_to(clone):
            parser.error(f"the clone's code is not the one imported ({where.stdout.strip()}): uninstall the other copy")
        print(f"Tests of {commit[:12]} in a fresh clone, {os.cpu_count()} cores, Python {sys.version.split()[0]}")

        durations: list[tuple[float, str, str]] = []
        for tier in args.tiers:
            report = Path(scratch) / f"{tier}.xml"
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                       *TIERS[tier], *shlex.split(args.pytest_args)]  # fmt: skip
            start = time.perf_counter()
            result = subprocess.run(command, cwd=clone, env=environment, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            cases = ElementTree.parse(report).getroot().iter("testcase") if report.is_file() else []
            times = [(float(case.get("time", 0)), _test_id(case)) for case in cases]
            summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1].strip("= ")
            print(f"{tier} tier: {seconds:.1f} s wall, {len(times)} tests, {sum(t for t, _ in times):.1f} s of test "
                  f"time; pytest: {summary} (exit status {result.returncode})")  # fmt: skip
            durations += [(time_, name, tier) for time_, name in times]

    print(f"\n{'seconds':>8}  {'tier':<4}  test")
    for time_, name, tier in sorted(durations, reverse=True)[: args.top]:
        print(f"{time_:>8.2f}  {tier:<4}  {name}")
    return 0


def _test_id(case: ElementTree.Element) -> str:
    """pytest's id of a JUnit test case: tests.test_study and test_x[1] -> tests/test_study.py::test_x[1]."""
    return f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"


if __name__ == "__main__":
    sys.exit(main())
