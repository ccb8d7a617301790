"""Label efficiency: how many labelled pixels each strategy needs to reach a share of the full-data score.

The paper's headline (Table 1, Fig. 1) is a ratio of labelling costs: the % of pixels square regions
need to reach a target score over the % full images need. :func:`label_efficiency` computes, per
acquisition function, the mean (± std over seeds) % of labelled pixels each strategy needed to reach
``relative`` x the full-training-data score (the first step whose test score reaches it, as in
Table 1), and the ratios region / full and superpixel / region. A strategy that never reaches the
target is reported as such, with its best score, never silently dropped; strategies absent from the
records are left out. :func:`headlines` turns the table into one line per ratio.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from alseg_utils.config import STRATEGIES
from alseg_utils.results import pixels_to_reach


def _needed(runs: pd.DataFrame, metric: str, goal: float) -> tuple[float, float, int, int]:
    """Mean and std of % pixels to reach ``goal`` over seeds, with how many seeds reached it."""
    per_seed = [pixels_to_reach(g.sort_values("step")["labelled_fraction"], g.sort_values("step")[metric], goal)
                for _, g in runs.groupby("seed")]
    got = np.array([p for p in per_seed if not math.isnan(p)]) * 100
    if not got.size:
        return math.nan, math.nan, 0, len(per_seed)
    return float(got.mean()), float(got.std()), int(got.size), len(per_seed)


RATIOS = (("region", "full", 0.5), ("superpixel", "region", 0.8))  # (numerator, denominator, target)


def label_efficiency(df: pd.DataFrame, metric: str, relative: float) -> pd.DataFrame:
    """One row per acquisition function: % pixels per strategy present, and the ratios between them.

    Args:
        df: sweep records (:func:`alseg_utils.results.load_records`), reference runs included.
        metric: the accuracy metric (higher is better).
        relative: the fraction of the full-data score to reach.

    Returns:
        Columns acquisition, goal, then per strategy present ``<s>_pct``, ``<s>_std``,
        ``<s>_reached`` (k/n seeds) and ``<s>_best``; then ``region/full`` and
        ``superpixel/region`` where both strategies are present (NaN when either never reached).
    """
    ref = df[df.reference.astype(bool)]
    if ref.empty:
        raise ValueError("no full-training-data reference run in these records (sweep.full_data_reference)")
    goal = relative * float(ref[metric].mean())
    runs = df[~df.reference.astype(bool)]
    present = [s for s in STRATEGIES if s in set(runs.strategy)]
    rows = []
    for acq, group in runs.groupby("acquisition"):
        row = {"acquisition": acq, "goal": round(goal, 4)}
        for strategy in present:
            sub = group[group.strategy == strategy]
            mean, std, k, n = _needed(sub, metric, goal) if len(sub) else (math.nan, math.nan, 0, 0)
            row |= {f"{strategy}_pct": mean, f"{strategy}_std": std, f"{strategy}_reached": f"{k}/{n}",
                    f"{strategy}_best": float(sub[metric].max()) if len(sub) else math.nan}
        for num, den, _ in RATIOS:
            if num in present and den in present:
                row[f"{num}/{den}"] = row[f"{num}_pct"] / row[f"{den}_pct"]
        rows.append(row)
    return pd.DataFrame(rows)


def headlines(table: pd.DataFrame, metric: str, relative: float) -> list[str]:
    """One line per ratio present: its mean over functions where both strategies reached the goal."""
    lines = []
    for num, den, target in RATIOS:
        column = f"{num}/{den}"
        if column not in table:
            continue
        ratios = table[column].dropna()
        if not len(ratios):
            lines.append(f"label efficiency ({metric}, {relative:.0%} of full data): {column}: no function where "
                         "both strategies reached the goal")
            continue
        verdict = f"target <= {target} {'met' if ratios.mean() <= target else 'NOT met'}"
        lines.append(f"label efficiency ({metric}, {relative:.0%} of full data): {column} pixel ratio "
                     f"{ratios.mean():.2f} over {len(ratios)} of {len(table)} functions ({verdict})")
    return lines
