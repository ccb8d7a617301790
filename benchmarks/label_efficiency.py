"""Label efficiency: pixels needed by regions vs full images to reach 95% of the full-data score.

Reads a finished sweep (``runs/<name>`` or its ``results/`` folder; run ``alseg sweep`` first) and
prints, per acquisition function and metric, the mean % of labelled pixels each strategy needed to
reach ``relative_target`` x the full-training-data score, and the ratio region / full. Target (the
paper's factor of two): ratio <= 0.5; moonshot <= 0.4. A strategy that never reaches the target is
reported as such, with its best score, never silently dropped.

    python -m benchmarks.label_efficiency runs/quick [--metric f1] [--relative 0.95]

The last line is the headline: the mean ratio over acquisition functions where both strategies
reached the target.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from alseg_utils.results import load_records, pixels_to_reach


def _needed(runs: pd.DataFrame, metric: str, goal: float) -> tuple[float, float, int, int]:
    """Mean and std of % pixels to reach ``goal`` over seeds, with how many seeds reached it."""
    per_seed = [pixels_to_reach(g.sort_values("step")["labelled_fraction"], g.sort_values("step")[metric], goal)
                for _, g in runs.groupby("seed")]
    got = np.array([p for p in per_seed if not math.isnan(p)]) * 100
    if not got.size:
        return math.nan, math.nan, 0, len(per_seed)
    return float(got.mean()), float(got.std()), int(got.size), len(per_seed)


def label_efficiency(df: pd.DataFrame, metric: str, relative: float) -> pd.DataFrame:
    """One row per acquisition function: % pixels for full and region, and their ratio.

    Args:
        df: sweep records (:func:`alseg_utils.results.load_records`), reference runs included.
        metric: the accuracy metric (higher is better).
        relative: the fraction of the full-data score to reach.

    Returns:
        Columns acquisition, full_pct, full_std, region_pct, region_std, reached (k/n per strategy),
        ratio (region / full; NaN when either never reached).
    """
    ref = df[df.reference.astype(bool)]
    if ref.empty:
        raise SystemExit("no full-training-data reference run in this sweep (sweep.full_data_reference)")
    goal = relative * float(ref[metric].mean())
    runs = df[~df.reference.astype(bool)]
    rows = []
    for acq, group in runs.groupby("acquisition"):
        row = {"acquisition": acq, "goal": round(goal, 4)}
        for strategy in ("full", "region"):
            sub = group[group.strategy == strategy]
            mean, std, k, n = _needed(sub, metric, goal) if len(sub) else (math.nan, math.nan, 0, 0)
            row |= {f"{strategy}_pct": mean, f"{strategy}_std": std, f"{strategy}_reached": f"{k}/{n}",
                    f"{strategy}_best": float(sub[metric].max()) if len(sub) else math.nan}
        row["ratio"] = row["region_pct"] / row["full_pct"]
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """Print the label-efficiency table of a sweep and the headline ratio."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.label_efficiency")
    p.add_argument("sweep", help="a sweep folder (runs/<name>) or its results folder")
    p.add_argument("--metric", default="f1")
    p.add_argument("--relative", type=float, default=0.95)
    args = p.parse_args(argv)
    df = load_records(Path(args.sweep))
    if df.empty:
        raise SystemExit(f"no records under {args.sweep}; run `alseg sweep` first")
    table = label_efficiency(df, args.metric, args.relative)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
    ratios = table.ratio.dropna()
    verdict = "target <= 0.5 met" if len(ratios) and ratios.mean() <= 0.5 else "target <= 0.5 NOT met"
    print(f"label efficiency ({args.metric}, {args.relative:.0%} of full data): region/full pixel ratio "
          f"{ratios.mean():.2f} over {len(ratios)} of {len(table)} functions ({verdict})"
          if len(ratios) else
          f"label efficiency ({args.metric}): no function where both strategies reached {args.relative:.0%} of full data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
