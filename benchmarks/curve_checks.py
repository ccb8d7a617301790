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


def _goal(df: pd.DataFrame, metric: str, relative: float) -> float:
    """``relative`` x the mean full-data score."""
    return relative * float(df[df.reference.astype(bool)][metric].mean())


def pixels_needed(df: pd.DataFrame, metric: str, methods: list[str], goal: float) -> dict[tuple[str, str], list[float]]:
    """Per (method, function): each seed's labelled share when its curve first reaches ``goal`` (NaN: never)."""
    runs = df[df.method.isin(methods) & ~df.reference.astype(bool)].sort_values("step")
    return {(method, acq): [pixels_to_reach(g.labelled_fraction, g[metric], goal) for _, g in group.groupby("seed")]
            for (method, acq), group in runs.groupby(["method", "acquisition"])}


def reach_checks(df: pd.DataFrame, metric: str, methods: list[str], relative: float) -> list[tuple[bool, str]]:
    """Per method and function: seeds reaching ``relative`` x the mean full-data score."""
    goal = _goal(df, metric, relative)
    out = []
    for (method, acq), needed in pixels_needed(df, metric, methods, goal).items():
        got = [100 * n for n in needed if not math.isnan(n)]
        pct = f"{sum(got) / len(got):.1f}% of the pixels" if got else "never"
        out.append((3 * len(got) >= 2 * len(needed),
                    f"{method}/{acq}: {len(got)}/{len(needed)} seeds reach {metric} {goal:.3f}, mean {pct}"))
    return out


def at_least(n: int, k: int, rate: float) -> float:
    """Probability of at least ``k`` successes in ``n`` independent trials of success ``rate``."""
    return sum(math.comb(n, i) * rate ** i * (1 - rate) ** (n - i) for i in range(k, n + 1))


def reach_power_lines(df: pd.DataFrame, metric: str, methods: list[str], relative: float) -> list[str]:
    """Per method: its reach rate and the chance that check 3 holds on a new draw at that rate."""
    goal = _goal(df, metric, relative)
    needed = pixels_needed(df, metric, methods, goal)
    out = []
    for method in methods:
        per_function = [n for (m, _), n in needed.items() if m == method]
        if not per_function:
            continue
        runs = [n for seeds in per_function for n in seeds]
        reached = sum(not math.isnan(n) for n in runs)
        seeds = min(len(n) for n in per_function)
        rate, k = reached / len(runs), math.ceil(2 * seeds / 3)
        one = at_least(seeds, k, rate)
        out.append(f"reach rate {method}: {reached}/{len(runs)} runs reach {metric} {goal:.3f}; at that rate one "
                   f"function reaches it in >= {k} of {seeds} seeds with probability {one:.2f}, all "
                   f"{len(per_function)} functions with {one ** len(per_function):.2f} (runs taken as independent)")
    return out


def last_step_line(df: pd.DataFrame, metric: str, relative: float) -> str:
    """Full-image runs' last step (every AL image labelled, like the reference): its spread and the line."""
    ref = df[df.reference.astype(bool)][metric]
    goal = _goal(df, metric, relative)
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
