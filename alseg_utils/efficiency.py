"""Label efficiency: how much labelling effort each strategy needs to reach a share of the full-data score.

The paper's headline (Table 1, Fig. 1) is a ratio of labelling costs: the % of pixels square regions
need to reach a target score over the % full images need. :func:`label_efficiency` computes, per
acquisition function, the mean (± std over seeds) effort each method (:func:`~alseg_utils.results.method_of`:
a strategy, or dominant-class superpixels) needed to reach ``relative`` x the full-training-data
score (the first step whose test score reaches it, as in Table 1), and the ratios region / full,
superpixel / region and superpixel_dominant / region. Effort is counted in one of the effort axes
(:func:`~alseg_utils.costs.effort_axis`): % of labelled pixels (the paper), or clicks (polygon
clicks, dominant-class clicks, or the clicks as each run was annotated); a ratio in clicks is the
ratio of the clicks each method needs to reach the target. A method that never reaches the target
is reported as such, with its best score, never silently dropped; methods absent from the
records are left out. :func:`headlines` turns the table into one line per ratio.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from alseg_utils.config import METHODS, SUPERPIXEL_DOMINANT
from alseg_utils.costs import EffortAxis, require_effort
from alseg_utils.results import pixels_to_reach, with_method


def _needed(runs: pd.DataFrame, metric: str, goal: float, axis: EffortAxis) -> tuple[float, float, int, int]:
    """Mean and std of the effort (% pixels or clicks) to reach ``goal`` over seeds, with how many seeds reached it."""
    per_seed = [pixels_to_reach(g.sort_values("step")[axis.column], g.sort_values("step")[metric], goal)
                for _, g in runs.groupby("seed")]
    got = np.array([p for p in per_seed if not math.isnan(p)]) * axis.scale
    if not got.size:
        return math.nan, math.nan, 0, len(per_seed)
    return float(got.mean()), float(got.std()), int(got.size), len(per_seed)


RATIOS = (("region", "full", 0.5), ("superpixel", "region", 0.8), (SUPERPIXEL_DOMINANT, "region", None))
"""(numerator, denominator, target): the claims checked (region/full <= 0.5, the paper; superpixel/region
<= 0.8, issue 10); ``None``: a ratio reported without a claim."""


def label_efficiency(df: pd.DataFrame, metric: str, relative: float, cost: str = "pixels") -> pd.DataFrame:
    """One row per acquisition function: the effort per method present, and the ratios between them.

    Args:
        df: sweep records (:func:`alseg_utils.results.load_records`), reference runs included.
        metric: the accuracy metric (higher is better).
        relative: the fraction of the full-data score to reach.
        cost: the effort axis (:data:`~alseg_utils.config.EFFORT_AXES`): ``pixels`` (% of pool
            pixels), ``polygon_clicks``, ``dominant_clicks`` or ``clicks`` (as annotated).

    Returns:
        Columns acquisition, goal, then per method present ``<m>_pct`` (pixels; ``<m>_clicks`` for a
        click axis), ``<m>_std``, ``<m>_reached`` (k/n seeds) and ``<m>_best``; then the ratios of
        :data:`RATIOS` whose two methods are present (NaN when either never reached).

    Raises:
        ValueError: no reference run, or unknown ``cost``.
        RunStateError: a click axis is asked of records that lack it (written before costs were recorded).
    """
    axis = require_effort(df, cost)
    df = with_method(df)
    ref = df[df.reference.astype(bool)]
    if ref.empty:
        raise ValueError("no full-training-data reference run in these records (sweep.full_data_reference)")
    goal = relative * float(ref[metric].mean())
    runs = df[~df.reference.astype(bool)]
    present = [m for m in METHODS if m in set(runs.method)]
    rows = []
    for acq, group in runs.groupby("acquisition"):
        row = {"acquisition": acq, "goal": round(goal, 4)}
        for method in present:
            sub = group[group.method == method]
            mean, std, k, n = _needed(sub, metric, goal, axis) if len(sub) else (math.nan, math.nan, 0, 0)
            row |= {f"{method}_{axis.unit}": mean, f"{method}_std": std, f"{method}_reached": f"{k}/{n}",
                    f"{method}_best": float(sub[metric].max()) if len(sub) else math.nan}
        for num, den, _ in RATIOS:
            if num in present and den in present:
                row[f"{num}/{den}"] = row[f"{num}_{axis.unit}"] / row[f"{den}_{axis.unit}"]
        rows.append(row)
    return pd.DataFrame(rows)


_RATIO_WORDS = {"pixels": "pixel", "polygon_clicks": "polygon-click", "dominant_clicks": "dominant-click",
                "clicks": "click"}


def headlines(table: pd.DataFrame, metric: str, relative: float, cost: str = "pixels") -> list[str]:
    """One line per ratio present: its mean over functions where both methods reached the goal.

    Args:
        table: what :func:`label_efficiency` returned.
        metric: its metric (for the text).
        relative: its share of the full-data score (for the text).
        cost: the effort axis it was computed in (for the text).
    """
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
        verdict = "" if target is None else \
            f" (target <= {target} {'met' if ratios.mean() <= target else 'NOT met'})"
        lines.append(f"label efficiency ({metric}, {relative:.0%} of full data): {column} "
                     f"{_RATIO_WORDS.get(cost, cost)} ratio {ratios.mean():.2f} over {len(ratios)} of "
                     f"{len(table)} functions{verdict}")
    return lines
