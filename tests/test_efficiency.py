"""Label efficiency in pixels and in clicks on hand-made curves with known ratios."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from alseg_utils.efficiency import headlines, label_efficiency
from alseg_utils.errors import RunStateError

# per method: (labelled fraction, clicks as annotated, F1) at steps 0, 1, 2 (two seeds alike)
CURVES = {
    ("full", "mask"): [(0.1, 300, 0.5), (0.3, 900, 0.8), (0.5, 1500, 0.9)],
    ("region", "mask"): [(0.1, 300, 0.5), (0.2, 600, 0.86), (0.3, 900, 0.9)],
    ("superpixel", "mask"): [(0.1, 300, 0.5), (0.15, 1200, 0.86), (0.2, 1800, 0.9)],
    ("superpixel", "dominant"): [(0.1, 300, 0.5), (0.3, 420, 0.86), (0.4, 480, 0.9)],
}


def _records(with_clicks: bool = True) -> pd.DataFrame:
    rows = []
    for (strategy, label), points in CURVES.items():
        for seed in (0, 1):
            for step, (fraction, clicks, f1) in enumerate(points):
                row = {"strategy": strategy, "superpixel_label": label, "acquisition": "bald", "seed": seed,
                       "step": step, "labelled_fraction": fraction, "f1": f1, "reference": False}
                if with_clicks:
                    row |= {"labelled_clicks": clicks, "labelled_polygon_clicks": clicks + 10 * step,
                            "labelled_dominant_clicks": 3 + 20 * step}
                rows.append(row)
    rows.append({"strategy": "full", "superpixel_label": "mask", "acquisition": "random", "seed": 0, "step": 0,
                 "labelled_fraction": 1.0, "f1": 0.9, "reference": True})  # goal 0.95 * 0.9 = 0.855
    return pd.DataFrame(rows)


def test_pixels_as_before_with_dominant_superpixels_apart() -> None:
    row = label_efficiency(_records(), "f1", 0.95).iloc[0]
    assert (row["full_pct"], row["region_pct"], row["superpixel_pct"]) == pytest.approx((50.0, 20.0, 15.0))
    assert row["superpixel_dominant_pct"] == pytest.approx(30.0) and row["superpixel_dominant_reached"] == "2/2"
    assert row["region/full"] == pytest.approx(0.4) and row["superpixel/region"] == pytest.approx(0.75)
    assert row["superpixel_dominant/region"] == pytest.approx(1.5)


def test_ratios_in_clicks_are_ratios_of_the_clicks_needed() -> None:
    table = label_efficiency(_records(), "f1", 0.95, cost="clicks")
    row = table.iloc[0]
    assert "region_pct" not in table.columns
    assert (row["full_clicks"], row["region_clicks"], row["superpixel_clicks"], row["superpixel_dominant_clicks"]) \
        == (1500, 600, 1200, 420)
    assert row["region/full"] == pytest.approx(0.4) and row["superpixel/region"] == pytest.approx(2.0)
    assert row["superpixel_dominant/region"] == pytest.approx(0.7)
    lines = headlines(table, "f1", 0.95, cost="clicks")
    assert "region/full click ratio 0.40" in lines[0] and "target <= 0.5 met" in lines[0]
    assert "superpixel/region click ratio 2.00" in lines[1] and "target <= 0.8 NOT met" in lines[1]
    assert "superpixel_dominant/region click ratio 0.70 over 1 of 1 functions" in lines[2]
    assert "target" not in lines[2]  # no claim to check
    polygon = label_efficiency(_records(), "f1", 0.95, cost="polygon_clicks").iloc[0]
    assert polygon["full_clicks"] == 1520 and polygon["region/full"] == pytest.approx(610 / 1520)
    assert "polygon-click ratio" in headlines(label_efficiency(_records(), "f1", 0.95, cost="polygon_clicks"),
                                              "f1", 0.95, cost="polygon_clicks")[0]


def test_never_reached_and_old_records() -> None:
    df = _records()
    df.loc[(df.strategy == "full") & ~df.reference, "f1"] = 0.6  # full images never reach the goal
    row = label_efficiency(df, "f1", 0.95, cost="dominant_clicks").iloc[0]
    assert row["full_reached"] == "0/2" and math.isnan(row["full_clicks"]) and math.isnan(row["region/full"])
    assert row["region_clicks"] == 23  # 3 + 20 at step 1
    old = _records(with_clicks=False)
    assert label_efficiency(old, "f1", 0.95).iloc[0]["region_pct"] == pytest.approx(20.0)
    with pytest.raises(RunStateError, match="'labelled_clicks'"):
        label_efficiency(old, "f1", 0.95, cost="clicks")


def test_benchmark_prints_the_table_and_headlines_in_clicks(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.label_efficiency import main

    from alseg_utils.results import write_records

    df = _records()
    df["run"] = (df.strategy + "-" + df.superpixel_label).where(~df.reference, "reference")
    for (run, seed), group in df.groupby(["run", "seed"]):
        write_records(tmp_path / "results" / f"{run}-s{seed}", group.drop(columns="run").dropna(axis=1).to_dict("records"))
    assert main([str(tmp_path / "results"), "--cost", "clicks"]) == 0
    out = capsys.readouterr().out
    assert "region_clicks" in out and "superpixel_dominant/region click ratio 0.70" in out
    assert main([str(tmp_path / "results")]) == 0
    assert "region/full pixel ratio 0.40" in capsys.readouterr().out
    old = _records(with_clicks=False)
    old["run"] = (old.strategy + "-" + old.superpixel_label).where(~old.reference, "reference")
    for (run, seed), group in old.groupby(["run", "seed"]):
        write_records(tmp_path / "old" / f"{run}-s{seed}", group.drop(columns="run").to_dict("records"))
    with pytest.raises(SystemExit, match="label_efficiency: error: .*'labelled_clicks'"):
        main([str(tmp_path / "old"), "--cost", "clicks"])
