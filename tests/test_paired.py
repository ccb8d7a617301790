"""Paired comparison over seeds on hand-worked curves: AULC, shared range, bootstrap, seeds needed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alseg_utils.paired import (
    BOOTSTRAP_COVERAGE_3_SEEDS,
    MINUS,
    TABLE_COLUMNS,
    aulc,
    bootstrap_interval,
    paired_lines,
    paired_markdown,
    paired_seeds,
    paired_table,
    reference_goal,
    seeds_needed,
    shared_range,
    summarise,
    t_interval,
)
from alseg_utils.results import load_records, write_records

# ----------------------------------------------------------------------------- the area under a curve


def test_aulc_of_simple_piecewise_linear_curves() -> None:
    assert aulc([0, 1], [0, 1], 0, 1) == pytest.approx(0.5, abs=1e-6)
    assert aulc([0, 0.5, 1], [0, 1, 0], 0, 1) == pytest.approx(0.5, abs=1e-6)  # a tent
    # clipped to [0.25, 0.75]: two trapezoids (0.5 + 1) / 2 * 0.25 each, over a width of 0.5
    assert aulc([0, 0.5, 1], [0, 1, 0], 0.25, 0.75) == pytest.approx(0.75, abs=1e-6)
    assert aulc([0.1, 0.2, 0.4], [0.3, 0.3, 0.3], 0.15, 0.35) == pytest.approx(0.3, abs=1e-6)
    # equal fractions: a vertical step of no area (0 up to 0.5, then 1)
    assert aulc([0, 0.5, 0.5, 1], [0, 0, 1, 1], 0, 1) == pytest.approx(0.5, abs=1e-6)
    # the range ends inside a segment: 0.1 -> 0.5 at 0.2 (value 0.3), (0.1 + 0.3) / 2
    assert aulc([0.0, 0.4], [0.1, 0.5], 0.0, 0.2) == pytest.approx(0.2, abs=1e-6)


def _aulc_dense(f: np.ndarray, s: np.ndarray, lo: float, hi: float) -> float:
    """Slow reference: the curve sampled on a fine grid plus its own knots, integrated by trapezoids."""
    grid = np.unique(np.concatenate([np.linspace(lo, hi, 2001), f[(f > lo) & (f < hi)]]))
    y = np.interp(grid, f, s)
    return float(sum((y[i] + y[i + 1]) / 2 * (grid[i + 1] - grid[i]) for i in range(grid.size - 1)) / (hi - lo))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=8, unique=True),
       st.lists(st.floats(0, 1, allow_nan=False), min_size=8, max_size=8),
       st.floats(0, 1), st.floats(0, 1))
def test_aulc_matches_a_dense_trapezoid_loop(xs: list[float], ys: list[float], u: float, v: float) -> None:
    f = np.sort(np.asarray(xs))
    if f[-1] - f[0] < 1e-3 or np.diff(f).min() < 1e-9:  # knots a denormal apart overflow the dense reference
        return
    s = np.asarray(ys[: f.size])
    lo, hi = sorted((f[0] + u * (f[-1] - f[0]), f[0] + v * (f[-1] - f[0])))
    if hi - lo < 1e-3:
        return
    assert aulc(f, s, lo, hi) == pytest.approx(_aulc_dense(f, s, lo, hi), abs=1e-6)


def test_aulc_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="equal length"):
        aulc([0, 1], [0.5], 0, 1)
    with pytest.raises(ValueError, match="non-decreasing"):
        aulc([0.2, 0.1], [0.5, 0.6], 0.1, 0.2)
    with pytest.raises(ValueError, match=r"inside the curve's \[0.1, 0.3\]"):
        aulc([0.1, 0.3], [0.5, 0.6], 0.0, 0.3)
    with pytest.raises(ValueError, match="non-empty"):
        aulc([0.1, 0.3], [0.5, 0.6], 0.2, 0.2)


def test_shared_range_is_the_overlap_of_the_two_curves() -> None:
    assert shared_range([0.1, 0.3, 0.5], [0.1, 0.2, 0.3]) == (0.1, 0.3)
    assert shared_range([0.2, 0.6], [0.1, 0.4]) == (0.2, 0.4)
    lo, hi = shared_range([0.1, 0.2], [0.3, 0.4])
    assert lo >= hi  # no overlap
    with pytest.raises(ValueError, match="no step"):
        shared_range([], [0.1])


# ----------------------------------------------------------------------------- records


def _records(method: str, seed: int, fractions: list[float], f1: list[float], acquisition: str = "bald") -> list[dict]:
    strategy, label = ("superpixel", "dominant") if method == "superpixel_dominant" else (method, "mask")
    return [{"strategy": strategy, "superpixel_label": label, "acquisition": acquisition, "seed": seed, "step": i,
             "reference": False, "labelled_fraction": fr, "f1": s} for i, (fr, s) in enumerate(zip(fractions, f1))]


FULL = ([0.1, 0.3, 0.5], [0.5, 0.7, 0.9])  # AULC over [0.1, 0.3]: 0.6; reaches 0.855 at 50%
REGION = ([0.1, 0.2, 0.3], [0.5, 0.8, 0.9])  # AULC over [0.1, 0.3]: (0.065 + 0.085) / 0.2 = 0.75; reaches it at 30%


def _frame(region_shift: dict[int, float], seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    """Full and region runs of each seed (region's later steps shifted per seed) and one reference run (F1 0.9)."""
    rows = []
    for seed in seeds:
        rows += _records("full", seed, *FULL)
        shift = region_shift.get(seed, 0.0)
        rows += _records("region", seed, REGION[0], [REGION[1][0]] + [v + shift for v in REGION[1][1:]])
    rows.append({"strategy": "full", "acquisition": "random", "seed": 0, "step": 0, "reference": True,
                 "labelled_fraction": 1.0, "f1": 0.9})
    return pd.DataFrame(rows)


def test_paired_seeds_on_hand_worked_curves() -> None:
    df = _frame({1: 0.02})  # seed 1: region 0.82, 0.92 -> AULC (0.066 + 0.087) / 0.2 = 0.765
    out = paired_seeds(df, "region", "full", "f1", goal=0.855)
    assert out["seed"].tolist() == [0, 1, 2] and set(out["acquisition"]) == {"bald"}
    assert out["range_low"].tolist() == pytest.approx([0.1] * 3) and out["range_high"].tolist() == pytest.approx([0.3] * 3)
    assert out["aulc_a"].tolist() == pytest.approx([0.75, 0.765, 0.75], abs=1e-6)
    assert out["aulc_b"].tolist() == pytest.approx([0.6] * 3, abs=1e-6)
    assert out["aulc_diff"].tolist() == pytest.approx([0.15, 0.165, 0.15], abs=1e-6)
    assert out["reach_diff"].tolist() == pytest.approx([-20.0, -20.0, -20.0], abs=1e-6)  # 30% - 50%
    assert out["reach_a"].tolist() == pytest.approx([30.0] * 3)
    assert math.isnan(paired_seeds(df, "region", "full", "f1")["reach_diff"].iloc[0])  # no goal


def test_paired_seeds_never_reached_and_no_shared_range() -> None:
    df = pd.DataFrame(_records("full", 0, [0.1, 0.2], [0.5, 0.6]) + _records("region", 0, [0.1, 0.2], [0.5, 0.9])
                      + _records("full", 1, [0.3, 0.4], [0.5, 0.6]) + _records("region", 1, [0.1, 0.2], [0.5, 0.9]))
    out = paired_seeds(df, "region", "full", "f1", goal=0.85)
    assert out["reach_a"].tolist() == pytest.approx([20.0, 20.0]) and out["reach_b"].isna().all()
    assert out["reach_diff"].isna().all()
    assert out["aulc_diff"].iloc[0] == pytest.approx(0.7 - 0.55, abs=1e-6)
    assert math.isnan(out["aulc_diff"].iloc[1])  # seed 1: full starts at 0.3, after region ends


def test_paired_seeds_refuses_bad_input() -> None:
    df = _frame({})
    with pytest.raises(ValueError, match="no records"):
        paired_seeds(df.iloc[:0], "region", "full", "f1")
    with pytest.raises(ValueError, match="unknown strategy 'superpixel'; these records hold"):
        paired_seeds(df, "superpixel", "full", "f1")
    with pytest.raises(ValueError, match="two different strategies"):
        paired_seeds(df, "full", "full", "f1")
    with pytest.raises(ValueError, match=r"lack columns \['jaccard'\]"):
        paired_seeds(df, "region", "full", "jaccard")
    mismatched = df[~((df["strategy"] == "region") & (df["seed"] == 2))]
    with pytest.raises(ValueError, match=r"different seeds, \[0, 1\] and \[0, 1, 2\]"):
        paired_seeds(mismatched, "region", "full", "f1")
    other = pd.DataFrame(_records("full", 0, *FULL) + _records("region", 0, *REGION, acquisition="random"))
    with pytest.raises(ValueError, match="share no acquisition function"):
        paired_seeds(other, "region", "full", "f1")


# ----------------------------------------------------------------------------- intervals over seeds


def test_bootstrap_interval_known_answers_and_determinism() -> None:
    assert bootstrap_interval([0.05, 0.05, 0.05]) == pytest.approx((0.05, 0.05), abs=1e-12)
    # two seeds: resampled means are 0 (p = 1/4), 0.5 (1/2) or 1 (1/4): the 2.5% and 97.5% quantiles are 0 and 1
    assert bootstrap_interval([0.0, 1.0]) == pytest.approx((0.0, 1.0), abs=1e-12)
    consistent = [0.10, 0.12, 0.14, 0.11, 0.13]
    low, high = bootstrap_interval(consistent)
    assert 0.10 <= low < np.mean(consistent) < high <= 0.14 and low > 0  # excludes zero
    low, high = bootstrap_interval([-1.0, 1.0, -1.0, 1.0])
    assert low < 0 < high and low == pytest.approx(-high, abs=1e-12)  # symmetric: includes zero
    assert bootstrap_interval(consistent) == bootstrap_interval(consistent)  # a fixed seed: the same interval
    assert all(math.isnan(x) for x in bootstrap_interval([0.3]))  # one seed: no interval
    assert all(math.isnan(x) for x in bootstrap_interval([]))


def test_bootstrap_interval_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="drop the NaN seeds"):
        bootstrap_interval([0.1, math.nan])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        bootstrap_interval([0.1, 0.2], confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples >= 1"):
        bootstrap_interval([0.1, 0.2], n_resamples=0)


def test_t_interval_known_answers_and_bad_input() -> None:
    low, high = t_interval([0.1, 0.2, 0.3])  # mean 0.2, sd 0.1: half-width t(0.975, 2) x 0.1 / sqrt(3) = 0.2484
    assert (low, high) == pytest.approx((0.2 - 0.248414, 0.2 + 0.248414), abs=1e-6)
    assert t_interval([0.05, 0.05]) == pytest.approx((0.05, 0.05))
    assert all(math.isnan(x) for x in t_interval([0.3]))
    with pytest.raises(ValueError, match="drop the NaN seeds"):
        t_interval([0.1, math.nan])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        t_interval([0.1, 0.2], confidence=0.0)


def test_coverage_of_the_two_intervals_at_three_seeds() -> None:
    """The caption's numbers: a 95% bootstrap over 3 seeds covers about 76%, Student's t 95%."""
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 1.0, size=(1000, 3))
    boot = np.mean([lo <= 0 <= hi for lo, hi in (bootstrap_interval(d, n_resamples=2000) for d in draws)])
    t = np.mean([lo <= 0 <= hi for lo, hi in (t_interval(d) for d in draws)])
    assert abs(boot - BOOTSTRAP_COVERAGE_3_SEEDS) < 0.04 and abs(t - 0.95) < 0.02


def test_seeds_needed_is_the_smallest_n_whose_t_interval_excludes_zero() -> None:
    # mean 0.2, sd 0.1: n=3 gives t(0.975, 2) 0.1 / sqrt(3) = 0.248 > 0.2, n=4 gives 3.182 x 0.05 = 0.159 < 0.2
    assert seeds_needed([0.1, 0.2, 0.3]) == 4
    assert seeds_needed([-0.1, -0.2, -0.3]) == 4  # the sign does not matter
    assert seeds_needed([0.1, 0.1]) == 2  # no spread
    assert seeds_needed([-1.0, 1.0]) == math.inf  # mean 0: never
    assert seeds_needed([0.0, 1e-3, -1e-3 + 1e-9], max_seeds=50) == math.inf  # more than max_seeds
    assert math.isnan(seeds_needed([0.3]))


def test_summarise_drops_seeds_that_do_not_contribute() -> None:
    s = summarise([0.1, math.nan, 0.1, 0.1])
    assert (s["seeds"], s["of_seeds"], s["excludes_zero"], s["seeds_needed"]) == (3, 4, True, 2)
    assert (s["mean"], s["ci_low"], s["ci_high"]) == pytest.approx((0.1, 0.1, 0.1))
    s = summarise([math.nan, math.nan])
    assert s["seeds"] == 0 and math.isnan(s["mean"]) and not s["excludes_zero"]


# ----------------------------------------------------------------------------- the table and its text


def test_paired_table_rows_and_lines() -> None:
    df = _frame({1: 0.02})
    assert reference_goal(df, "f1", 0.95) == pytest.approx(0.855) and math.isnan(reference_goal(df, "f1", None))
    table = paired_table(df, "f1", relative_target=0.95)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["quantity"].tolist() == ["aulc", "pixels_to_reach"]  # superpixel pairs: not in these records
    aulc_row = table.iloc[0]
    assert aulc_row["comparison"] == f"region {MINUS} full" and aulc_row["mean"] == pytest.approx(0.155, abs=1e-6)
    assert 0.15 - 1e-9 <= aulc_row["ci_low"] < aulc_row["ci_high"] <= 0.165 + 1e-9 and aulc_row["excludes_zero"]
    assert aulc_row["t_low"] < aulc_row["ci_low"] and aulc_row["t_high"] > aulc_row["ci_high"]  # t: wider
    lines = paired_lines(table, 0.95)
    assert lines[0].startswith(f"bald      region {MINUS} full AULC f1 +0.155 [95% bootstrap +0.15")
    assert lines[0].endswith("over 3 seeds (bootstrap excludes 0, t excludes 0; seeds needed: 2)")
    assert lines[1] == (f"bald      region {MINUS} full % pixels to reach 95% of full f1 (0.855) -20.0 "
                        "[95% bootstrap -20.0, -20.0; t -20.0, -20.0] over 3 seeds (bootstrap excludes 0, "
                        "t excludes 0; seeds needed: 2)")
    assert len(paired_table(df, "f1")) == 1  # no relative target: AULC only


def test_paired_table_of_written_records_with_superpixels(tmp_path) -> None:
    for seed in (0, 1):
        write_records(tmp_path / f"full-bald-s{seed}", _records("full", seed, *FULL))
        write_records(tmp_path / f"region-bald-s{seed}", _records("region", seed, *REGION))
        write_records(tmp_path / f"superpixel_dominant-bald-s{seed}",
                      _records("superpixel_dominant", seed, [0.1, 0.2, 0.3], [0.5, 0.9 - 0.1 * seed, 0.9]))
    table = paired_table(load_records(tmp_path), "f1", relative_target=0.95)  # no reference run: AULC only
    assert table["comparison"].tolist() == [f"region {MINUS} full", f"superpixel_dominant {MINUS} region"]
    # dominant seed 0: (0.07 + 0.09) / 0.2 = 0.8, seed 1: 0.75, minus region's 0.75
    assert table["mean"].tolist() == pytest.approx([0.15, 0.025], abs=1e-6)
    assert table["seeds_needed"].iloc[0] == 2 and not table["excludes_zero"].iloc[1]
    with pytest.raises(ValueError, match=r"unknown strategies \['patch'\]"):
        paired_table(load_records(tmp_path), "f1", pairs=[("patch", "full")])


def test_paired_lines_with_one_seed_and_unreached_targets() -> None:
    df = pd.DataFrame(_records("full", 0, [0.1, 0.2], [0.5, 0.6]) + _records("region", 0, [0.1, 0.2], [0.5, 0.7])
                      + [{"strategy": "full", "acquisition": "random", "seed": 0, "step": 0, "reference": True,
                          "labelled_fraction": 1.0, "f1": 0.9}])
    lines = paired_lines(paired_table(df, "f1", 0.95), 0.95)
    assert lines[0].endswith("AULC f1 +0.050 over 1 seed (one seed: no interval)")
    assert lines[1].endswith("no seed where both reached it (reached by region in 0/1, full in 0/1)")


def test_paired_markdown_section() -> None:
    table = paired_table(_frame({1: 0.02}), "f1", relative_target=0.95)
    md = paired_markdown(table, 0.95)
    assert md.startswith("### Paired differences over seeds\n")
    assert f"| bald | region {MINUS} full | AULC f1 | +0.155 | [+0.150, +0.165] | [+0.133, +0.177] | 3/3 | yes / yes " \
           "| 2 |" in md
    assert f"| bald | region {MINUS} full | % pixels to reach 95% of full f1 (0.855) | -20.0 |" in md
    assert "percentile bootstrap over seeds (10000 resamples" in md and "covers about 76%" in md
    assert paired_markdown(table.iloc[:0]) == ""
