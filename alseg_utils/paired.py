"""Paired comparison of two strategies over seeds: learning-curve areas and pixels to reach, with intervals.

Every run of one seed starts from the same initial model, so two strategies (methods,
:func:`~alseg_utils.results.method_of`) run with the same seed and acquisition function form a pair.
For each pair this module computes two differences, ``a − b``:

* **AULC**: the area under the learning curve (primary metric against the labelled fraction of pool
  pixels) of each method over the range of fractions both curves cover, from the larger of the two
  first fractions to the smaller of the two last ones, on the piecewise-linear curves (trapezoids),
  divided by the range's width: the mean score over the shared range (:func:`aulc`).
* **pixels to reach**: the % of pool pixels each method needed to reach ``relative_target`` x the
  full-data reference score (the first step that reached it, as in Table 1), over the seeds where
  both reached it.

Over seeds, :func:`summarise` gives the mean difference, a percentile bootstrap interval that
resamples seeds with replacement (:func:`bootstrap_interval`, a fixed seeded generator, so the
numbers are the same on every call), Student's t interval (:func:`t_interval`) and how many seeds a
t interval would need to exclude zero at the observed effect and spread (:func:`seeds_needed`).

The two intervals differ most where seeds are few. With 3 seeds, a 95% percentile bootstrap interval
covers the true mean of normal differences in only about 76% of draws (it cannot reach beyond the
smallest and largest seed), Student's t interval in 95% (:data:`BOOTSTRAP_COVERAGE_3_SEEDS`,
``tests/test_paired.py`` measures both). Both are reported; the t interval is the one a claim of
"excludes zero" at 95% can rest on. :func:`paired_table` does this for every pair of
:data:`PAIRS` present and every acquisition function; :func:`paired_lines` and
:func:`paired_markdown` render it for ``alseg reproduce`` and Table 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from alseg_utils.config import ACQUISITIONS, METHODS, SUPERPIXEL_DOMINANT
from alseg_utils.results import pixels_to_reach, with_method

PAIRS: tuple[tuple[str, str], ...] = (("region", "full"), ("superpixel", "region"), (SUPERPIXEL_DOMINANT, "region"))
"""(a, b): the differences ``a − b`` reported when both methods are in the records."""

CONFIDENCE = 0.95  # two-sided level of the intervals and of the seeds-needed rule
BOOTSTRAP_COVERAGE_3_SEEDS = 0.76  # simulated coverage of the 95% percentile bootstrap over 3 normal seeds
N_RESAMPLES = 10_000  # bootstrap resamples of the seeds
BOOTSTRAP_SEED = 0  # seed of the bootstrap's numpy Generator: the same interval on every call
MAX_SEEDS = 10_000  # seeds_needed searches n up to this; beyond it reports inf
MINUS = "\N{MINUS SIGN}"  # in "region − full"

TABLE_COLUMNS = ("comparison", "method_a", "method_b", "acquisition", "quantity", "metric", "mean", "ci_low",
                 "ci_high", "t_low", "t_high", "seeds", "of_seeds", "excludes_zero", "t_excludes_zero",
                 "seeds_needed", "range_low", "range_high", "goal", "reached_a", "reached_b")
"""Columns of :func:`paired_table`."""


def aulc(fractions: npt.ArrayLike, scores: npt.ArrayLike, lo: float, hi: float) -> float:
    """Mean score of a piecewise-linear learning curve over ``[lo, hi]`` (area / width, trapezoids).

    Args:
        fractions: labelled fraction at each step, [S], non-decreasing (equal fractions make a
            vertical step of the curve, of no area).
        scores: metric at each step, [S].
        lo: start of the range, >= ``fractions[0]``.
        hi: end of the range, > ``lo`` and <= ``fractions[-1]``.

    Returns:
        The area under the curve between ``lo`` and ``hi``, divided by ``hi - lo``.

    Raises:
        ValueError: shapes differ, fractions decrease, or the curve does not cover ``lo < hi``.
    """
    f, s = np.asarray(fractions, dtype=float), np.asarray(scores, dtype=float)
    if f.ndim != 1 or f.shape != s.shape:
        raise ValueError(f"aulc: fractions and scores must be 1-D of equal length, got {f.shape} and {s.shape}")
    if np.any(np.diff(f) < 0):
        raise ValueError("aulc: fractions must be non-decreasing (one run's steps in order)")
    if not (f.size and f[0] <= lo < hi <= f[-1]):
        span = f"[{f[0]:g}, {f[-1]:g}]" if f.size else "nothing"
        raise ValueError(f"aulc: the range [{lo:g}, {hi:g}] must be non-empty and inside the curve's {span}")
    x0, x1, y0, y1 = f[:-1], f[1:], s[:-1], s[1:]  # segments, [S - 1] each
    a, b = np.clip(x0, lo, hi), np.clip(x1, lo, hi)  # the segments clipped to the range, [S - 1]
    keep = b > a  # segments of some width inside the range
    x0, x1, y0, y1, a, b = x0[keep], x1[keep], y0[keep], y1[keep], a[keep], b[keep]
    ya = y0 + (a - x0) / (x1 - x0) * (y1 - y0)  # position along the segment in [0, 1]: no overflow
    yb = y0 + (b - x0) / (x1 - x0) * (y1 - y0)
    return float(np.sum((ya + yb) / 2 * (b - a)) / (hi - lo))


def shared_range(fractions_a: npt.ArrayLike, fractions_b: npt.ArrayLike) -> tuple[float, float]:
    """The labelled-fraction range both curves cover: (larger first fraction, smaller last fraction).

    Args:
        fractions_a: one run's labelled fractions, [S_a], non-decreasing, non-empty.
        fractions_b: the other run's, [S_b].

    Returns:
        ``(lo, hi)``; ``lo >= hi`` when the curves share no range.

    Raises:
        ValueError: a curve has no step.
    """
    fa, fb = np.asarray(fractions_a, dtype=float).ravel(), np.asarray(fractions_b, dtype=float).ravel()
    if not fa.size or not fb.size:
        raise ValueError("shared_range: a curve has no step; pass the labelled fractions of both runs")
    return max(float(fa[0]), float(fb[0])), min(float(fa[-1]), float(fb[-1]))


def _curves(runs: pd.DataFrame, metric: str) -> dict[Any, tuple[np.ndarray, np.ndarray]]:
    """Seed -> (labelled fractions [S], scores [S]) of one method and function, steps in order, NaN scores dropped."""
    out = {}
    for seed, g in runs.dropna(subset=[metric]).sort_values("step").groupby("seed", sort=True):
        out[seed] = (g["labelled_fraction"].to_numpy(float), g[metric].to_numpy(float))
    return out


def _pair_row(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
              goal: float) -> dict[str, float]:
    """AULCs of two runs over their shared range and the % pixels each needed to reach ``goal`` (NaN: not)."""
    lo, hi = shared_range(a[0], b[0])
    area_a, area_b = (aulc(*a, lo, hi), aulc(*b, lo, hi)) if lo < hi else (math.nan, math.nan)
    reach_a, reach_b = (100 * pixels_to_reach(c[0].tolist(), c[1].tolist(), goal) if not math.isnan(goal)
                        else math.nan for c in (a, b))
    return {"range_low": lo, "range_high": hi, "aulc_a": area_a, "aulc_b": area_b, "aulc_diff": area_a - area_b,
            "reach_a": reach_a, "reach_b": reach_b, "reach_diff": reach_a - reach_b}


def _check_pair(df: pd.DataFrame, method_a: str, method_b: str, metric: str) -> pd.DataFrame:
    """The AL (non-reference) rows of ``df`` with a ``method`` column, after checking the inputs."""
    if not len(df):
        raise ValueError("paired comparison: no records; load a sweep's results with load_records")
    missing = {"acquisition", "seed", "step", "labelled_fraction", metric} - set(df.columns)
    if missing or not {"method", "strategy"} & set(df.columns):
        raise ValueError(f"paired comparison: the records lack columns {sorted(missing) or ['method']}; "
                         "load them with load_records")
    runs = with_method(df)
    runs = runs[~runs["reference"].eq(True)] if "reference" in runs.columns else runs
    for method in (method_a, method_b):
        if method not in set(runs["method"]):
            raise ValueError(f"paired comparison: unknown strategy {method!r}; these records hold "
                             f"{sorted(set(runs['method']))}")
    if method_a == method_b:
        raise ValueError(f"paired comparison: compare two different strategies, got {method_a!r} twice")
    return runs


def paired_seeds(df: pd.DataFrame, method_a: str, method_b: str, metric: str,
                 goal: float = math.nan) -> pd.DataFrame:
    """Per acquisition function and seed: both methods' AULC and pixels to reach ``goal``, and ``a − b``.

    Args:
        df: records (:func:`~alseg_utils.results.load_records`); reference rows are left out.
        method_a: the first method (:data:`~alseg_utils.config.METHODS`), e.g. ``"region"``.
        method_b: the method it is compared with, e.g. ``"full"``.
        metric: the score column (higher is better), e.g. ``"f1"``.
        goal: the score to reach (e.g. 0.95 x the full-data score); NaN: no pixels-to-reach columns.

    Returns:
        One row per (acquisition, seed), functions both methods ran, with range_low and range_high
        (the shared range of labelled fractions), aulc_a, aulc_b, aulc_diff (NaN when the range is
        empty), reach_a, reach_b and reach_diff (% of pool pixels; NaN where a method never reached it).

    Raises:
        ValueError: no records, a missing column, a method not in the records, the same method twice,
            no function both ran, or the two methods were run with different seeds for one function.
    """
    runs = _check_pair(df, method_a, method_b, metric)
    rows = []
    shared = [acq for acq in _ordered(runs["acquisition"]) if {method_a, method_b} <= set(
        runs.loc[runs["acquisition"] == acq, "method"])]
    if not shared:
        raise ValueError(f"paired comparison: {method_a} and {method_b} share no acquisition function")
    for acq in shared:
        one = runs[runs["acquisition"] == acq]
        a, b = (_curves(one[one["method"] == m], metric) for m in (method_a, method_b))
        if set(a) != set(b):
            raise ValueError(f"paired comparison: {method_a} and {method_b} ({acq}) were run with different seeds, "
                             f"{sorted(a)} and {sorted(b)}; compare the runs of one sweep")
        rows += [{"acquisition": acq, "seed": seed, **_pair_row(a[seed], b[seed], goal)} for seed in sorted(a)]
    return pd.DataFrame(rows)


def _ordered(values: pd.Series) -> list[str]:
    """The distinct acquisition functions in ``values``: those of ACQUISITIONS in its order, then any other."""
    present = set(values)
    return [a for a in ACQUISITIONS if a in present] + sorted(present - set(ACQUISITIONS))


def bootstrap_interval(values: npt.ArrayLike, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: resample the values (seeds) with replacement.

    Args:
        values: one paired difference per seed, [n], finite.
        confidence: two-sided level, in (0, 1).
        n_resamples: bootstrap resamples.
        seed: seed of the ``numpy.random.Generator``; the same inputs give the same interval.

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than two values.

    Raises:
        ValueError: ``values`` is not 1-D or holds NaN, or ``confidence`` / ``n_resamples`` is out of range.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or np.isnan(v).any():
        raise ValueError("bootstrap_interval: pass one finite difference per seed (drop the NaN seeds first)")
    if not 0 < confidence < 1 or n_resamples < 1:
        raise ValueError(f"bootstrap_interval: confidence must be in (0, 1) and n_resamples >= 1, "
                         f"got {confidence} and {n_resamples}")
    if v.size < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, v.size, size=(n_resamples, v.size))  # [R, n]
    means = v[idx].mean(axis=1)  # [R]
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def t_interval(values: npt.ArrayLike, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval of the mean over seeds: ``mean ± t((1 + confidence) / 2, n - 1) x sd / sqrt(n)``.

    Args:
        values: one paired difference per seed, [n], finite.
        confidence: two-sided level, in (0, 1).

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than two values; the mean twice when all agree.

    Raises:
        ValueError: ``values`` is not 1-D or holds NaN, or ``confidence`` is out of range.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or np.isnan(v).any():
        raise ValueError("t_interval: pass one finite difference per seed (drop the NaN seeds first)")
    if not 0 < confidence < 1:
        raise ValueError(f"t_interval: confidence must be in (0, 1), got {confidence}")
    if v.size < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean()) - half, float(v.mean()) + half


def seeds_needed(values: npt.ArrayLike, confidence: float = CONFIDENCE, max_seeds: int = MAX_SEEDS) -> float:
    """How many seeds a two-sided interval needs to exclude zero at the observed effect and spread.

    The smallest n >= 2 with ``t_{(1+confidence)/2, n-1} * sd / sqrt(n) < |mean|``, where mean and sd
    (ddof=1) are those of ``values``. It assumes the paired differences of new seeds are independent
    and normal with this mean and sd (a planning number, not a guarantee: with few seeds both are
    rough). The percentile bootstrap interval of :func:`bootstrap_interval` is narrower than this
    t interval for small n, so it may exclude zero with fewer seeds.

    Args:
        values: one paired difference per seed, [n], finite.
        confidence: two-sided level, in (0, 1).
        max_seeds: the largest n searched.

    Returns:
        n as a float; ``inf`` when the mean is 0 or more than ``max_seeds`` seeds would be needed;
        NaN with fewer than two values (no spread to go on).
    """
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return math.nan
    mean, sd = abs(float(v.mean())), float(v.std(ddof=1))
    if mean == 0:
        return math.inf
    n = np.arange(2, max_seeds + 1)  # [max_seeds - 1]
    ok = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / np.sqrt(n) < mean
    return float(n[np.argmax(ok)]) if ok.any() else math.inf


def summarise(differences: npt.ArrayLike) -> dict[str, Any]:
    """Mean, both intervals, whether each excludes 0, and seeds needed of per-seed differences (NaN seeds dropped).

    Args:
        differences: one paired difference per seed, [n]; NaN where a seed does not contribute.

    Returns:
        mean, ci_low / ci_high (bootstrap), t_low / t_high (Student's t), seeds (that contributed),
        of_seeds (n), excludes_zero (bootstrap), t_excludes_zero, seeds_needed.
    """
    d = np.asarray(differences, dtype=float)
    v = d[~np.isnan(d)]
    low, high = bootstrap_interval(v)
    t_low, t_high = t_interval(v)
    return {"mean": float(v.mean()) if v.size else math.nan, "ci_low": low, "ci_high": high,
            "t_low": t_low, "t_high": t_high, "seeds": int(v.size), "of_seeds": int(d.size),
            "excludes_zero": bool(low > 0 or high < 0), "t_excludes_zero": bool(t_low > 0 or t_high < 0),
            "seeds_needed": seeds_needed(v)}


def reference_goal(df: pd.DataFrame, metric: str, relative_target: float | None) -> float:
    """``relative_target`` x the mean full-data reference score; NaN without reference rows or target."""
    if relative_target is None or "reference" not in df.columns or metric not in df.columns:
        return math.nan
    ref = df.loc[df["reference"].eq(True), metric].dropna()
    return relative_target * float(ref.mean()) if len(ref) else math.nan


def paired_table(df: pd.DataFrame, metric: str, relative_target: float | None = None,
                 pairs: Sequence[tuple[str, str]] = PAIRS) -> pd.DataFrame:
    """Every pair of ``pairs`` whose two methods are in the records, per function: the paired differences.

    Args:
        df: a sweep's records (:func:`~alseg_utils.results.load_records`), reference runs included.
        metric: the score column, e.g. :func:`~alseg_utils.results.primary_metric` of the sweep.
        relative_target: also the pixels to reach this share of the mean reference score; None: AULC only.
        pairs: (a, b) methods of :data:`~alseg_utils.config.METHODS`; reported as ``a − b``.

    Returns:
        :data:`TABLE_COLUMNS`: one row per (function, pair, quantity) in the order of
        :data:`~alseg_utils.config.ACQUISITIONS`, ``pairs``, then quantity ``aulc`` (mean score over
        the shared range; range_low / range_high its mean over seeds) and ``pixels_to_reach``
        (percentage points of pool pixels; ``goal`` the score to reach; reached_a / reached_b how many
        seeds of each method reached it), with :func:`summarise`'s fields.

    Raises:
        ValueError: a method of ``pairs`` is not one of METHODS, or :func:`paired_seeds` refuses a pair.
    """
    unknown = sorted({m for pair in pairs for m in pair} - set(METHODS))
    if unknown:
        raise ValueError(f"paired_table: unknown strategies {unknown}; use names of {list(METHODS)}")
    present = set(with_method(df)["method"]) if len(df) else set()
    goal = reference_goal(df, metric, relative_target)
    rows = []
    for a, b in [p for p in pairs if set(p) <= present]:
        for acq, g in paired_seeds(df, a, b, metric, goal).groupby("acquisition", sort=False):
            rows += _summary_rows(g, {"comparison": f"{a} {MINUS} {b}", "method_a": a, "method_b": b,
                                      "acquisition": acq, "metric": metric}, goal)
    order = {acq: i for i, acq in enumerate(ACQUISITIONS)}
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).astype({"reached_a": "Int64", "reached_b": "Int64"})
    return table.sort_values("acquisition", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _summary_rows(per_seed: pd.DataFrame, base: dict[str, Any], goal: float) -> list[dict[str, Any]]:
    """The AULC row (and the pixels-to-reach row when ``goal`` is set) of one pair and function."""
    rows = [{**base, "quantity": "aulc", **summarise(per_seed["aulc_diff"]), "goal": math.nan,
             "range_low": float(per_seed["range_low"].mean()), "range_high": float(per_seed["range_high"].mean()),
             "reached_a": pd.NA, "reached_b": pd.NA}]
    if not math.isnan(goal):
        rows.append({**base, "quantity": "pixels_to_reach", **summarise(per_seed["reach_diff"]), "goal": goal,
                     "range_low": math.nan, "range_high": math.nan,
                     "reached_a": int(per_seed["reach_a"].notna().sum()),
                     "reached_b": int(per_seed["reach_b"].notna().sum())})
    return rows


def _interval_text(row: pd.Series, number: str) -> str:
    """``+0.052 [95% bootstrap +0.021, +0.080; t -0.010, +0.114] over 3 seeds (bootstrap excludes 0, t includes 0;
    seeds needed: 5)``."""
    pixels = row["quantity"] == "pixels_to_reach"
    reached = (f" (reached by {row['method_a']} in {row['reached_a']}/{row['of_seeds']}, "
               f"{row['method_b']} in {row['reached_b']}/{row['of_seeds']})") if pixels else ""
    if row["seeds"] == 0:
        return ("no seed where both reached it" if pixels else "no shared range") + reached
    noun = "seed" if row["of_seeds"] == 1 else "seeds"
    over = f"{row['seeds']} {noun}" if row["seeds"] == row["of_seeds"] else \
        f"{row['seeds']} of {row['of_seeds']} {noun}"
    over += reached if row["seeds"] < row["of_seeds"] else ""
    if row["seeds"] < 2:
        return f"{number.format(row['mean'])} over {over} (one seed: no interval)"
    verdict = "excludes" if row["excludes_zero"] else "includes"
    t_verdict = "excludes" if row["t_excludes_zero"] else "includes"
    return (f"{number.format(row['mean'])} [{CONFIDENCE:.0%} bootstrap {number.format(row['ci_low'])}, "
            f"{number.format(row['ci_high'])}; t {number.format(row['t_low'])}, {number.format(row['t_high'])}] "
            f"over {over} (bootstrap {verdict} 0, t {t_verdict} 0; "
            f"seeds needed: {_needed_text(row['seeds_needed'])})")


def _needed_text(needed: float) -> str:
    """``3``, ``> 10000`` (inf) or ``–`` (NaN: fewer than two seeds)."""
    return "–" if math.isnan(needed) else f"> {MAX_SEEDS}" if math.isinf(needed) else f"{needed:.0f}"


def quantity_label(row: pd.Series, relative_target: float | None = None) -> str:
    """What a row of :func:`paired_table` measures: ``AULC f1`` or ``% pixels to reach 95% of full f1 (0.462)``."""
    if row["quantity"] == "aulc":
        return f"AULC {row['metric']}"
    share = f"{relative_target:.0%} of full " if relative_target is not None else ""
    return f"% pixels to reach {share}{row['metric']} ({row['goal']:.3f})"


def paired_lines(table: pd.DataFrame, relative_target: float | None = None) -> list[str]:
    """One line per row of :func:`paired_table`, e.g. ``bald      region − full AULC f1 +0.052
    [95% bootstrap +0.021, +0.080; t -0.010, +0.114] over 3 seeds (bootstrap excludes 0, t includes 0;
    seeds needed: 5)`` (one line).

    Args:
        table: what :func:`paired_table` returned.
        relative_target: its share of the full-data score (for the text of pixels-to-reach rows).
    """
    lines = []
    for _, row in table.iterrows():
        number = "{:+.3f}" if row["quantity"] == "aulc" else "{:+.1f}"
        lines.append(f"{row['acquisition']:<9} {row['comparison']} {quantity_label(row, relative_target)} "
                     + _interval_text(row, number))
    return lines


def paired_markdown(table: pd.DataFrame, relative_target: float | None = None) -> str:
    """:func:`paired_table` as a Markdown section (heading, table, caption); empty when the table is.

    Args:
        table: what :func:`paired_table` returned.
        relative_target: its share of the full-data score (for the text of pixels-to-reach rows).
    """
    if not len(table):
        return ""
    lines = ["### Paired differences over seeds", "",
             "| acquisition | comparison | quantity | mean | 95% bootstrap CI | 95% t CI | seeds | excludes 0 "
             "(bootstrap / t) | seeds needed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        number = "{:+.3f}" if row["quantity"] == "aulc" else "{:+.1f}"
        ci = "–" if row["seeds"] < 2 else f"[{number.format(row['ci_low'])}, {number.format(row['ci_high'])}]"
        t_ci = "–" if row["seeds"] < 2 else f"[{number.format(row['t_low'])}, {number.format(row['t_high'])}]"
        mean = number.format(row["mean"]) if row["seeds"] else "–"
        needed = _needed_text(row["seeds_needed"])
        excl = "–" if row["seeds"] < 2 else \
            f"{'yes' if row['excludes_zero'] else 'no'} / {'yes' if row['t_excludes_zero'] else 'no'}"
        lines.append(f"| {row['acquisition']} | {row['comparison']} | {quantity_label(row, relative_target)} | {mean} "
                     f"| {ci} | {t_ci} | {row['seeds']}/{row['of_seeds']} | {excl} | {needed} |")
    lines += ["", CAPTION]
    return "\n".join(lines) + "\n"


CAPTION = (f"Differences a {MINUS} b paired by seed. AULC: the mean score over the range of labelled pixel "
           "fractions both curves cover (trapezoids on the piecewise-linear curves); % pixels to reach: the "
           "difference in percentage points of pool pixels, over the seeds where both methods reached the "
           f"target. Bootstrap CI: percentile bootstrap over seeds ({N_RESAMPLES} resamples, fixed seed); with 3 "
           f"seeds its nominal {CONFIDENCE:.0%} covers about {BOOTSTRAP_COVERAGE_3_SEEDS:.0%} (simulated, normal "
           "differences). t CI: mean ± t(0.975, n-1) x sd / sqrt(n), 95% at any n. "
           "Seeds needed: the smallest n with t(0.975, n-1) x sd / sqrt(n) < |mean| at the observed mean and sd.")
"""The caption under :func:`paired_markdown`'s table."""
