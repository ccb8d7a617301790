"""Does a sweep have the power to show the paper's result? Three checks on its records.

1. **Start above the floor:** the mean step-0 score over seeds is at least half the mean
   full-training-data score.
2. **Curves that do not fall:** the largest fall of each method's mean curve (over acquisition
   functions and seeds) from one step to the next, against a tolerance (0.03).
3. **Reach the line:** per method and acquisition function, how many seeds reach
   ``--relative`` (0.95) x the mean full-data score within their steps (at least 2 of 3 wanted).

It also reports, without a verdict, how likely check 3 is to hold on a new draw of the same design:
per method, the share ``r`` of its runs (function x seed) that reach the line, the probability
that one function reaches it in at least 2 of 3 seeds when every run reaches with probability
``r``, and that all functions of the method do (runs taken as independent, although runs of one
seed share their step-0 model); and the spread of the last step of full-image runs, which trains
on the same images as the reference. Then how many trainings of steps >= 1 (and the references)
ended at their ceiling (``train.epochs``) before their validation plateau stop
(``train.patience_epochs``):
a training that stopped on its plateau has ``iterations - best_iteration >= patience steps`` with
``iterations <= ceiling``, one cut by the ceiling has fewer steps since its best than
``patience / epochs`` of its steps.

    python -m benchmarks.curve_checks notebooks/example_results/quick [--metric f1] [--relative 0.95]
        [--fall 0.03] [--methods full region]

Exit status 0 when every check holds, 1 otherwise. Reads records only (test scores, reported; no
setting is chosen on them).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from alseg_utils.results import load_records, pixels_to_reach, read_run_config


def start_check(df: pd.DataFrame, metric: str) -> tuple[bool, str]:
    """Mean step-0 score against half the mean full-data score."""
    runs, ref = df[~df.reference.astype(bool)], df[df.reference.astype(bool)]
    start = float(runs[runs.step == 0].groupby("seed")[metric].first().mean())
    full = float(ref[metric].mean())
    ok = start >= 0.5 * full
    return ok, f"step 0: mean {metric} {start:.3f}, {start / full:.0%} of the full-data {full:.3f} (at least 50%)"


def fall_checks(df: pd.DataFrame, metric: str, methods: list[str], tolerance: float) -> list[tuple[bool, str]]:
    """Per method: the largest step-to-step fall of its mean curve over functions and seeds."""
    out = []
    for method in methods:
        curve = df[(df.method == method) & ~df.reference.astype(bool)].groupby("step")[metric].mean()
        drops = -curve.diff().dropna()
        worst = float(drops.max()) if len(drops) else 0.0
        text = " -> ".join(f"{v:.3f}" for v in curve)
        out.append((worst <= tolerance, f"{method}: mean {metric} {text}; largest fall {max(worst, 0.0):.3f} "
                                        f"(at most {tolerance})"))
    return out


def reach_checks(df: pd.DataFrame, metric: str, methods: list[str], relative: float) -> list[tuple[bool, str]]:
    """Per method and function: seeds reaching ``relative`` x the mean full-data score."""
    goal = relative * float(df[df.reference.astype(bool)][metric].mean())
    out = []
    for (method, acq), group in df[df.method.isin(methods) & ~df.reference.astype(bool)].groupby(
            ["method", "acquisition"]):
        needed = [pixels_to_reach(g.labelled_fraction, g[metric], goal) for _, g in
                  group.sort_values("step").groupby("seed")]
        got = [100 * n for n in needed if not math.isnan(n)]
        pct = f"{sum(got) / len(got):.1f}% of the pixels" if got else "never"
        out.append((3 * len(got) >= 2 * len(needed),
                    f"{method}/{acq}: {len(got)}/{len(needed)} seeds reach {metric} {goal:.3f}, mean {pct}"))
    return out


def _runs_reaching(df: pd.DataFrame, metric: str, method: str, goal: float) -> tuple[int, int, int]:
    """Runs of ``method`` that reach ``goal``, its runs, and its seeds per function (the fewest)."""
    runs = df[(df.method == method) & ~df.reference.astype(bool)]
    reached, total = 0, 0
    for _, g in runs.sort_values("step").groupby(["acquisition", "seed"]):
        total += 1
        reached += not math.isnan(pixels_to_reach(g.labelled_fraction, g[metric], goal))
    seeds = int(runs.groupby("acquisition").seed.nunique().min()) if total else 0
    return reached, total, seeds


def at_least(n: int, k: int, rate: float) -> float:
    """Probability of at least ``k`` successes in ``n`` independent trials of success ``rate``."""
    return sum(math.comb(n, i) * rate ** i * (1 - rate) ** (n - i) for i in range(k, n + 1))


def reach_power_lines(df: pd.DataFrame, metric: str, methods: list[str], relative: float) -> list[str]:
    """Per method: its reach rate and the chance that check 3 holds on a new draw at that rate."""
    goal = relative * float(df[df.reference.astype(bool)][metric].mean())
    out = []
    for method in methods:
        reached, total, seeds = _runs_reaching(df, metric, method, goal)
        if not total:
            continue
        rate, k = reached / total, math.ceil(2 * seeds / 3)
        functions = df[(df.method == method) & ~df.reference.astype(bool)].acquisition.nunique()
        one = at_least(seeds, k, rate)
        out.append(f"reach rate {method}: {reached}/{total} runs reach {metric} {goal:.3f}; at that rate one function "
                   f"reaches it in >= {k} of {seeds} seeds with probability {one:.2f}, all {functions} functions "
                   f"with {one ** functions:.2f} (runs taken as independent)")
    return out


def last_step_line(df: pd.DataFrame, metric: str, relative: float) -> str:
    """Full-image runs' last step (every AL image labelled, like the reference): its spread and the line."""
    ref = df[df.reference.astype(bool)][metric]
    goal = relative * float(ref.mean())
    full = df[(df.method == "full") & ~df.reference.astype(bool)]
    if full.empty:
        return "last step: no full-image runs"
    last = full[full.labelled_fraction >= 1.0].groupby(["acquisition", "seed"])[metric].last()
    if last.empty:
        return "last step: no full-image run labels every AL image"
    return (f"last step of full images (all AL images labelled, as the reference): {metric} {last.mean():.3f} ± "
            f"{last.std(ddof=1) if len(last) > 1 else 0.0:.3f} over {len(last)} runs, {int((last >= goal).sum())} "
            f"at or above {goal:.3f}; reference {ref.mean():.3f} ± {ref.std(ddof=1) if len(ref) > 1 else 0.0:.3f} "
            f"over {len(ref)} seeds")


def ceiling_line(df: pd.DataFrame, patience_epochs: float, epochs: float) -> str:
    """How many trainings (steps >= 1 and references) per method ended at their ceiling before a plateau."""
    if patience_epochs <= 0 or epochs <= 0:
        return "ceiling: trainings run a fixed budget (no plateau stop)"
    reference = df.reference.astype(bool)
    trained = df[(df.step > 0) | reference].assign(method=df.method.where(~reference, "reference"))
    since_best = (trained.train_iterations - trained.train_best_iteration) / trained.train_iterations
    cut = since_best < patience_epochs / epochs
    parts = [f"{method} {int(c.sum())}/{len(c)}" for method, c in cut.groupby(trained.method)]
    return (f"ceiling: {int(cut.sum())}/{len(cut)} trainings ended at {epochs:g} epochs before their "
            f"{patience_epochs:g}-epoch plateau stop ({', '.join(parts)})")


def main(argv: list[str] | None = None) -> int:
    """Print the three checks of a sweep's records; exit 1 when one fails."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.curve_checks")
    p.add_argument("records", type=Path, help="a sweep folder or a folder of run records")
    p.add_argument("--metric", default="f1")
    p.add_argument("--relative", type=float, default=0.95)
    p.add_argument("--fall", type=float, default=0.03)
    p.add_argument("--methods", nargs="+", default=["full", "region"])
    args = p.parse_args(argv)
    df = load_records(args.records)
    if df.empty or not df.reference.astype(bool).any():
        raise SystemExit(f"{args.records}: no run records with a full-data reference; run `alseg sweep` first")
    checks = [start_check(df, args.metric), *fall_checks(df, args.metric, args.methods, args.fall),
              *reach_checks(df, args.metric, args.methods, args.relative)]
    for ok, line in checks:
        print(("ok    " if ok else "FAIL  ") + line)
    for line in [*reach_power_lines(df, args.metric, args.methods, args.relative),
                 last_step_line(df, args.metric, args.relative)]:
        print("info  " + line)
    train = read_run_config(args.records)["train"]
    print("info  " + ceiling_line(df, float(train["patience_epochs"]), float(train["epochs"])))
    failed = sum(not ok for ok, _ in checks)
    print(f"curve checks: {len(checks) - failed}/{len(checks)} hold")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
