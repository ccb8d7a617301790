"""Wall time of the README's main job (quick sweep + report) and of the test suite on this machine.

    python -m benchmarks.reproduce_time [--params params/quick.yaml] [--workers 2] [--skip-tests]

Runs into a temporary sweep folder (nothing in runs/ or figures/ is touched) and prints the core
count, the load average before starting, and the wall time of each part; the last line is the
headline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str]) -> float:
    """Run ``cmd`` in the repository root and return its wall time in seconds (raises on failure)."""
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Time the main job and (unless skipped) the test suite; print the figures."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.reproduce_time")
    p.add_argument("--params", default="params/quick.yaml")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--skip-tests", action="store_true")
    args = p.parse_args(argv)
    alseg = str(Path(sys.executable).with_name("alseg"))
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        sweep = _timed([alseg, "sweep", args.params, "--out", f"{tmp}/sweep", "--workers", str(args.workers)])
        report = _timed([alseg, "report", f"{tmp}/sweep", "--figures", f"{tmp}/figures"])
    print(f"sweep {sweep / 60:.1f} min, report {report / 60:.1f} min")
    tests = float("nan")
    if not args.skip_tests:
        tests = _timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        tests += _timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "notebooks",
                         "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"])
    print(f"main job {(sweep + report) / 60:.1f} min on {os.cpu_count()} cores "
          f"({args.workers} workers); test suite {tests / 60:.1f} min" if tests == tests else
          f"main job {(sweep + report) / 60:.1f} min on {os.cpu_count()} cores ({args.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
