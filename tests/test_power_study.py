"""benchmarks.power_study (validation learning curve) and benchmarks.curve_checks (the design's three checks)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest


def test_images_for_extends_the_initial_set_and_nests_across_sizes() -> None:
    from benchmarks.power_study import images_for

    data = SimpleNamespace(train=list(range(20)), n_initial=5)
    assert images_for(data, 3, seed=0) == [0, 1, 2]
    assert images_for(data, 0, seed=0) == list(range(20)) == images_for(data, 25, seed=0)
    eight, twelve = images_for(data, 8, seed=1), images_for(data, 12, seed=1)
    assert eight[:5] == [0, 1, 2, 3, 4] and len(set(eight)) == 8 and len(set(twelve)) == 12
    assert set(eight) <= set(twelve)  # a larger size of one seed extends the smaller one
    assert images_for(data, 12, seed=1) == twelve != images_for(data, 12, seed=2)


def test_summarise_reports_mean_std_and_share_of_full() -> None:
    from benchmarks.power_study import summarise

    rows = [{"seed": s, "k": k, "val_loss": 1.0, "val_f1": f1, "steps": 10, "seconds": 1.0}
            for s, k, f1 in ((0, 4, 0.2), (1, 4, 0.4), (0, 8, 0.6), (1, 8, 0.6))]
    lines = summarise(rows)
    assert lines[1].split()[0] == "4" and "0.3000 ± 0.1000" in lines[1] and "50%" in lines[1]
    assert "100%" in lines[2]


def _records(step0: float, full: list[float], region: list[float], ref: float) -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        for method, curve in (("full", [step0, *full]), ("region", [step0, *region])):
            for step, f1 in enumerate(curve):
                rows.append({"method": method, "acquisition": "bald", "seed": seed, "step": step, "reference": False,
                             "labelled_fraction": 0.25 * (step + 1), "f1": f1})
        rows.append({"method": "full", "acquisition": "bald", "seed": seed, "step": 0, "reference": True,
                     "labelled_fraction": 1.0, "f1": ref})
    return pd.DataFrame(rows)


def test_curve_checks_pass_on_a_powered_design() -> None:
    from benchmarks.curve_checks import fall_checks, reach_checks, start_check

    df = _records(0.30, [0.40, 0.48, 0.50], [0.45, 0.50, 0.51], ref=0.50)
    assert start_check(df, "f1")[0]
    assert all(ok for ok, _ in fall_checks(df, "f1", ["full", "region"], 0.03))
    reach = dict((line.split(":")[0], ok) for ok, line in reach_checks(df, "f1", ["full", "region"], 0.95))
    assert reach == {"full/bald": True, "region/bald": True}


@pytest.mark.parametrize("step0, region, failing", [
    (0.20, [0.45, 0.50, 0.51], "start"),  # 40% of the full-data score at step 0
    (0.30, [0.25, 0.50, 0.51], "fall"),  # the region curve falls by 0.05
    (0.30, [0.35, 0.40, 0.45], "reach"),  # regions never reach 0.475
])
def test_curve_checks_fail_where_the_design_lacks_power(step0: float, region: list[float], failing: str) -> None:
    from benchmarks.curve_checks import fall_checks, reach_checks, start_check

    df = _records(step0, [0.40, 0.48, 0.50], region, ref=0.50)
    verdicts = {"start": start_check(df, "f1")[0],
                "fall": all(ok for ok, _ in fall_checks(df, "f1", ["full", "region"], 0.03)),
                "reach": all(ok for ok, _ in reach_checks(df, "f1", ["full", "region"], 0.95))}
    assert not verdicts[failing] and sum(verdicts.values()) == 2


def test_ceiling_line_counts_trainings_cut_by_the_ceiling() -> None:
    from benchmarks.curve_checks import ceiling_line

    # 60-epoch ceiling, 15-epoch patience: a plateau stop leaves >= a quarter of the steps after the best
    df = pd.DataFrame({"method": ["full", "full", "full", "region", "full"], "step": [0, 1, 2, 1, 0],
                       "reference": [False, False, False, False, True],
                       "train_iterations": [100, 240, 480, 300, 480], "train_best_iteration": [10, 180, 450, 290, 300]})
    line = ceiling_line(df, 15.0, 60.0)
    assert line.startswith("ceiling: 2/4 trainings") and "full 1/2" in line and "reference 0/1" in line
    assert "region 1/1" in line
    assert "fixed budget" in ceiling_line(df, 0.0, 60.0)


def test_at_least_is_the_binomial_tail() -> None:
    from benchmarks.curve_checks import at_least

    assert at_least(3, 2, 2 / 3) == pytest.approx(20 / 27)
    assert at_least(3, 0, 0.3) == pytest.approx(1.0) and at_least(3, 3, 1.0) == pytest.approx(1.0)
    assert at_least(3, 2, 0.0) == 0.0


def test_reach_power_counts_runs_and_the_chance_of_two_of_three() -> None:
    from benchmarks.curve_checks import last_step_line, reach_power_lines

    df = _records(0.30, [0.40, 0.48, 0.50], [0.35, 0.40, 0.45], ref=0.50)
    df.loc[(df.method == "full") & (df.seed == 2) & (df.step >= 2), "f1"] = 0.44  # seed 2 stays below 0.475
    full, region = reach_power_lines(df, "f1", ["full", "region"], 0.95)
    assert full.startswith("reach rate full: 2/3 runs reach f1 0.475") and "probability 0.74" in full
    assert "all 1 functions with 0.74" in full
    assert region.startswith("reach rate region: 0/3 runs") and "probability 0.00" in region
    # full images' last step labels every image (labelled fraction 1.0): 0.50, 0.50, 0.44
    line = last_step_line(df, "f1", 0.95)
    assert "f1 0.480 ± 0.035 over 3 runs, 2 at or above 0.475" in line and "reference 0.500 ± 0.000" in line
