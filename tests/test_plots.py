"""Tests of alseg_utils.plots: each helper returns an Axes with the expected artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from alseg_utils import calibration as cal  # noqa: E402
from alseg_utils import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def some_bins(n_bins: int = 10) -> cal.ReliabilityBins:
    rng = np.random.default_rng(0)
    p = rng.random((4, 1, 16, 16)) ** 0.3  # [N, 1, H, W], mostly confident
    probs = np.concatenate([1 - p, p], 1)  # [N, 2, H, W]
    target = (rng.random((4, 16, 16)) < 0.7).astype(np.uint8)
    return cal.reliability_bins(probs, target, n_bins=n_bins)


def polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def test_reliability_diagram_artists() -> None:
    bins = some_bins(10)
    ax = plots.reliability_diagram(bins, title="step 0")
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 10
    np.testing.assert_allclose([b.get_height() for b in bars], np.nan_to_num(bins.accuracy))
    assert any(list(line.get_xdata()) == [0, 1] and list(line.get_ydata()) == [0, 1] for line in ax.lines)
    assert f"{bins.ece:.4f}" in ax.get_title() and ax.get_title().startswith("step 0")
    assert len(ax.texts) == int((bins.count > 0).sum())  # one count label per non-empty bin


def test_reliability_diagram_accepts_record_and_given_axes() -> None:
    bins = some_bins(5)
    record = {"confidence": bins.confidence.tolist(), "accuracy": bins.accuracy.tolist(),
              "count": bins.count.tolist()}
    _, ax = plt.subplots()
    assert plots.reliability_diagram(record, ax=ax) is ax
    assert len(ax.patches) == 5 and "ECE" in ax.get_title()


def test_confidence_histogram_fractions_sum_to_one() -> None:
    bins = some_bins(15)
    ax = plots.confidence_histogram(bins)
    assert len(ax.patches) == 15
    assert sum(p.get_height() for p in ax.patches) == pytest.approx(1.0)
    assert len(ax.lines) == 2  # mean confidence and accuracy
    empty = cal.ReliabilityBins(np.linspace(0, 1, 3), np.full(2, np.nan), np.full(2, np.nan), np.zeros(2, int))
    with pytest.raises(ValueError, match="empty"):
        plots.confidence_histogram(empty)


def curves_frame() -> pd.DataFrame:
    rows = []
    for strategy in ("full", "region"):
        for acquisition in ("random", "bald"):
            for seed in range(3):
                for step in range(4):
                    rows.append({"strategy": strategy, "acquisition": acquisition, "seed": seed, "step": step,
                                 "labelled_fraction": 0.1 * (step + 1) + 0.001 * seed,
                                 "f1": 0.5 + 0.1 * step + 0.01 * seed, "reference": False})
    rows.append({"strategy": "full", "acquisition": "all", "seed": 0, "step": 0, "labelled_fraction": 1.0,
                 "f1": 0.9, "reference": True})
    return pd.DataFrame(rows)


def test_learning_curves_mean_band_and_reference() -> None:
    ax = plots.learning_curves(curves_frame(), "f1", reference=0.9)
    curves = [line for line in ax.lines if line.get_label() != "Full training data"]
    assert len(curves) == 4  # 2 acquisition x 2 strategy; the reference run is left out
    np.testing.assert_allclose(curves[0].get_xdata(), 100 * (0.1 * np.arange(1, 5) + 0.001))
    np.testing.assert_allclose(curves[0].get_ydata(), 0.5 + 0.1 * np.arange(4) + 0.01)  # mean of seeds
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 4  # std bands
    ref = [line for line in ax.lines if line.get_label() == "Full training data"]
    assert len(ref) == 1 and list(ref[0].get_ydata()) == [0.9, 0.9] and ref[0].get_linestyle() == "--"
    assert ax.get_xlabel() == "% labelled pixels"
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"bald / full", "random / region"}
    same = plots.learning_curves(curves_frame(), "f1", hue="strategy", style="strategy")
    assert {t.get_text() for t in same.get_legend().get_texts()} == {"full", "region"}  # not "full / full"


def test_learning_curves_single_seed_and_missing_column() -> None:
    df = curves_frame()
    ax = plots.learning_curves(df[df.seed == 0], "f1", hue=None, style="strategy")
    assert len(ax.lines) == 2
    with pytest.raises(ValueError, match="ece"):
        plots.learning_curves(df, "ece")


def test_uncertainty_histogram_is_density() -> None:
    rng = np.random.default_rng(0)
    groups = {"full image": rng.random(500) * 0.2, "region": rng.random(300), "none": np.zeros(0)}
    ax = plots.uncertainty_histogram(groups, bins=20)
    assert len(ax.patches) == 2  # the empty group is skipped
    for patch in ax.patches:
        assert polygon_area(patch.get_xy()) == pytest.approx(1.0, rel=1e-6)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["full image", "region"]
    with pytest.raises(ValueError, match="NaN"):
        plots.uncertainty_histogram({"a": np.array([np.nan, 1.0])})
    with pytest.raises(ValueError, match="empty"):
        plots.uncertainty_histogram({"a": np.zeros(0)})


class Region(NamedTuple):
    image: int
    top: int
    left: int
    height: int
    width: int


def test_show_selection_regions_and_contour() -> None:
    image = np.full((40, 50, 3), 200, dtype=np.uint8)
    pseudo = np.zeros((40, 50), dtype=np.int64)
    pseudo[10:20, 10:30] = 1
    regions = [(0, 0, 10, 10), Region(0, 20, 30, 15, 15)]
    ax = plots.show_selection(image, regions, pseudo_label=pseudo, uncertainty=np.random.default_rng(0).random((40, 50)))
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 2 and rects[1].get_xy() == (29.5, 19.5) and rects[1].get_width() == 15
    assert len(ax.lines) == 1  # one closed contour
    assert len(ax.images) == 2  # image and uncertainty overlay
    with pytest.raises(ValueError, match="does not match"):
        plots.show_selection(image, regions, pseudo_label=np.zeros((4, 4)))


def test_show_selection_outlines_each_superpixel() -> None:
    image = np.full((40, 50, 3), 200, dtype=np.uint8)
    chosen = np.full((40, 50), -1, dtype=np.int32)
    chosen[0:10, 0:10] = 3  # touches the image border: still one closed outline
    chosen[10:20, 0:10] = 7  # adjacent to segment 3: outlined separately
    ax = plots.show_selection(image, [], superpixels=chosen)
    assert len(ax.lines) == 2 and not ax.patches
    for line in ax.lines:
        x, y = line.get_data()
        assert (x[0], y[0]) == (x[-1], y[-1]) and x.min() >= -0.5 and y.min() >= -0.5
    with pytest.raises(ValueError, match="superpixels shape"):
        plots.show_selection(image, [], superpixels=np.zeros((4, 4), dtype=np.int32))


def test_show_uncertainty_has_colorbar() -> None:
    ax = plots.show_uncertainty(np.random.default_rng(0).random((12, 9)))
    assert len(ax.images) == 1 and len(ax.figure.axes) == 2  # the map and its colour bar
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        plots.show_uncertainty(np.zeros((2, 3, 4)))


def test_show_examples_grid() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (3, 16, 20, 3), dtype=np.uint8)
    masks = rng.integers(0, 3, (3, 16, 20))
    contours = rng.random((3, 16, 20)) < 0.1
    fig = plots.show_examples(images, masks, contours, n=5)  # only 3 available
    assert isinstance(fig, Figure) and len(fig.axes) == 9  # rows image / mask / contour, one column per example
    for k in range(3):
        image_ax, mask_ax, contour_ax = fig.axes[k], fig.axes[3 + k], fig.axes[6 + k]
        assert image_ax.get_title() == f"example {k}"
        np.testing.assert_array_equal(image_ax.images[0].get_array(), images[k])
        assert mask_ax.images[0].get_array().shape == (16, 20, 3)  # the masks overlaid on the image
        np.testing.assert_array_equal(contour_ax.images[0].get_array(), contours[k])
    assert [fig.axes[3 * row].get_ylabel() for row in range(3)] == ["image", "mask", "contour target"]
    with pytest.raises(ValueError, match="same length"):
        plots.show_examples(images, masks[:2], contours)


def test_save_figure_writes_png_and_pdf(tmp_path: Path) -> None:
    ax = plots.reliability_diagram(some_bins())
    folder = tmp_path / "nested" / "figures"
    paths = plots.save_figure(ax.figure, "reliability", folder=folder)
    assert paths == [folder / "reliability.png", folder / "reliability.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in folder.iterdir()) == ["reliability.pdf", "reliability.png"]  # no temp left
    with pytest.raises(ValueError, match="file stem"):
        plots.save_figure(ax.figure, "sub/name", folder=folder)


def test_learning_curves_band_is_sample_std_and_colours_follow_paper_order() -> None:
    df = curves_frame()
    ax = plots.learning_curves(df[df.acquisition == "random"], "f1", hue="strategy", style="strategy", legend="none")
    assert ax.get_legend() is None
    band = [c for c in ax.collections if isinstance(c, PolyCollection)][0].get_paths()[0].vertices  # [V, 2]
    at_first = band[np.isclose(band[:, 0], 100 * 0.101)]  # seeds' x 10.0, 10.1, 10.2 % -> mean
    np.testing.assert_allclose([at_first[:, 1].min(), at_first[:, 1].max()], [0.51 - 0.01, 0.51 + 0.01])  # ddof=1
    no_full = plots.learning_curves(df[df.strategy == "region"], "f1", hue="strategy", style="strategy")
    region = [line for line in no_full.lines if line.get_label() == "region"][0]
    assert region.get_color() == sns.color_palette()[1] and region.get_linestyle() == "--"  # as next to "full"
    out = plots.learning_curves(df, "f1", legend="outside")
    assert out.get_legend().get_bbox_to_anchor().x0 > out.get_window_extent().x1  # right of the data
    with pytest.raises(ValueError, match="legend must be"):
        plots.learning_curves(df, "f1", legend="above")


def test_figure_legend_one_entry_per_label_outside_the_axes() -> None:
    fig, axes = plots.subplots(1, 2)
    for ax, offset in zip(axes, (0.0, 1.0)):
        ax.plot([0, 1], [offset, offset], label="full")
        ax.plot([0, 1], [offset, offset + 1], label=f"only {offset:g}")
        ax.legend()
    legend = plots.figure_legend(fig, title="Strategy")
    assert [t.get_text() for t in legend.get_texts()] == ["full", "only 0", "only 1"]
    assert all(ax.get_legend() is None for ax in axes) and fig.legends == [legend]
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= max(ax.get_window_extent().x1 for ax in axes)
    plain, ax = plt.subplots()  # no constrained layout: anchored at the figure's right edge
    ax.plot([0, 1], label="a")
    assert plots.figure_legend(plain).get_bbox_to_anchor().x0 == pytest.approx(plain.bbox.x1)
    with pytest.raises(ValueError, match="no Axes"):
        plots.figure_legend(plt.subplots()[0])


def acquisition_frame() -> pd.DataFrame:
    """3 seeds of full / region / superpixel x random / bald, 3 steps; f1 encodes every key."""
    rows = []
    for s, strategy in enumerate(("superpixel", "full", "region")):  # not in the paper's order on purpose
        for a, acquisition in enumerate(("bald", "random")):
            for seed in range(3):
                for step in range(3):
                    rows.append({"strategy": strategy, "acquisition": acquisition, "seed": seed, "step": step,
                                 "labelled_fraction": (0.2 if strategy == "full" else 0.1) * (step + 1),
                                 "f1": 0.1 * step + 0.01 * a + 0.001 * s + 0.02 * seed,
                                 "dice": 0.5 + 0.1 * step, "reference": False})
    rows.append({"strategy": "full", "acquisition": "random", "seed": 0, "step": 0, "labelled_fraction": 1.0,
                 "f1": 9.0, "dice": 9.0, "reference": True})
    return pd.DataFrame(rows)


def test_curves_by_acquisition_one_panel_per_function() -> None:
    df = acquisition_frame()
    fig = plots.curves_by_acquisition(df, "f1", reference=0.75)
    assert [ax.get_title() for ax in fig.axes] == ["Random", "BALD"]  # the paper's order
    for ax, a in zip(fig.axes, (1, 0)):
        curves = [line for line in ax.lines if line.get_label() != "Full training data"]
        assert [c.get_label() for c in curves] == ["full", "region", "superpixel"]
        for curve, s in zip(curves, (1, 2, 0)):  # mean over the 3 seeds of this function and strategy
            np.testing.assert_allclose(curve.get_ydata(), 0.1 * np.arange(3) + 0.01 * a + 0.001 * s + 0.02)
        np.testing.assert_allclose(curves[0].get_xdata(), [20, 40, 60])
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 3
        assert [line.get_ydata()[0] for line in ax.lines if line.get_label() == "Full training data"] == [0.75]
        assert ax.get_legend() is None and ax.get_ylim() == fig.axes[0].get_ylim()  # shared y range
    assert fig.axes[0].get_ylabel() == "F1 score" and fig.axes[1].get_ylabel() == ""
    assert len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["full", "region", "superpixel",
                                                                   "Full training data"]


def test_curves_by_acquisition_rows_of_metrics_and_errors() -> None:
    df = acquisition_frame()
    fig = plots.curves_by_acquisition(df, ["f1", "dice"], reference={"dice": 0.8})
    assert len(fig.axes) == 4
    assert [ax.get_ylabel() for ax in fig.axes] == ["F1 score", "", "Dice", ""]
    assert sum(line.get_label() == "Full training data" for ax in fig.axes for line in ax.lines) == 2  # dice row
    with pytest.raises(ValueError, match="mapping"):
        plots.curves_by_acquisition(df, ["f1", "dice"], reference=0.8)
    with pytest.raises(ValueError, match="2 x 2"):
        plots.curves_by_acquisition(df, ["f1", "dice"], axes=plt.subplots(1, 2)[1])
    with pytest.raises(ValueError, match="no AL run"):
        plots.curves_by_acquisition(df[df.reference], "f1")


def calibration_frame() -> pd.DataFrame:
    """3 seeds of full / region x random / bald, steps 0-3, metrics that encode every key."""
    rows = []
    for s, strategy in enumerate(("full", "region")):
        for a, acquisition in enumerate(("bald", "random")):
            for seed in range(3):
                for step in range(4):
                    base = 1.0 + step + 0.1 * a + 0.01 * s + 0.5 * seed
                    rows.append({"strategy": strategy, "acquisition": acquisition, "seed": seed, "step": step,
                                 "labelled_fraction": (0.2 if strategy == "full" else 0.1) * (step + 1) + 0.001 * seed,
                                 "nll": base, "ece": base / 10, "brier": base / 100, "reference": False})
    rows.append({"strategy": "full", "acquisition": "random", "seed": 0, "step": 1, "labelled_fraction": 1.0,
                 "nll": 99.0, "ece": 99.0, "brier": 99.0, "reference": True})
    return pd.DataFrame(rows)


def test_calibration_summary_points_are_seed_means_from_the_records() -> None:
    fig = plots.calibration_summary(calibration_frame(), steps=[3, 1])
    assert len(fig.axes) == 3
    assert [ax.get_ylabel() for ax in fig.axes] == ["NLL", "ECE", "Brier score"]
    for ax, scale in zip(fig.axes, (1, 10, 100)):
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert [b.get_label() for b in bars] == ["random / full", "bald / full", "random / region", "bald / region"]
        for bar, (a, s) in zip(bars, ((1, 0), (0, 0), (1, 1), (0, 1))):
            line = bar.lines[0]
            np.testing.assert_allclose(line.get_ydata(), (1.0 + np.array([1, 3]) + 0.1 * a + 0.01 * s + 0.5) / scale)
            x = line.get_xdata()
            assert x[1] - x[0] == pytest.approx(1.0) and -0.5 < x[0] < 0.5  # steps 1, 3 at ticks 0, 1
            segments = bar.lines[2][0].get_segments()  # [steps] vertical error bars
            np.testing.assert_allclose([seg[1, 1] - seg[0, 1] for seg in segments], 2 * 0.5 / scale)  # 2 std, ddof=1
        xs = [bar.lines[0].get_xdata()[0] for bar in bars]
        assert xs == sorted(xs)  # full's points left of region's
        assert ax.get_ylim()[1] < 99 / scale  # the reference run is left out
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1\n40/20", "3\n80/40"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["Strategy", "full", "region", "Acquisition", "Random", "BALD"]


def test_calibration_summary_default_steps_and_errors() -> None:
    df = calibration_frame()

    def steps_of(fig: Figure) -> list[str]:
        return [t.get_text().split("\n")[0] for t in fig.axes[0].get_xticklabels()]

    assert steps_of(plots.calibration_summary(df, max_steps=2)) == ["1", "3"]  # step 0 left out
    assert steps_of(plots.calibration_summary(df)) == ["1", "2", "3"]
    assert steps_of(plots.calibration_summary(df[df.step == 0])) == ["0"]
    _, axes = plots.subplots(1, 2)
    assert plots.calibration_summary(df, metrics=("ece", "brier"), axes=axes) is axes[0].figure
    with pytest.raises(ValueError, match=r"steps \[7\] are not in the records"):
        plots.calibration_summary(df, steps=[1, 7])
    with pytest.raises(ValueError, match="max_steps"):
        plots.calibration_summary(df, max_steps=0)
    with pytest.raises(ValueError, match="reliability"):
        plots.calibration_summary(df, metrics=("nll", "reliability"))
    with pytest.raises(ValueError, match="1 x 3"):
        plots.calibration_summary(df, axes=axes)


def test_curves_in_clicks_and_dominant_superpixels_as_their_own_method() -> None:
    from alseg_utils.errors import RunStateError

    df = acquisition_frame()
    df["labelled_polygon_clicks"] = 100 * (df["step"] + 1) + 10 * df["seed"]  # seeds 0, 1, 2: mean + 10
    dominant = df[df.strategy == "superpixel"].assign(superpixel_label="dominant", f1=lambda d: d.f1 + 0.5)
    df = pd.concat([df.assign(superpixel_label="mask"), dominant], ignore_index=True)
    ax = plots.learning_curves(df[df.acquisition == "bald"], "f1", hue="method", style="method",
                               cost="polygon_clicks")
    assert ax.get_xlabel() == "Labelled polygon clicks"
    curves = {line.get_label(): line for line in ax.lines}
    assert list(curves) == ["full", "region", "superpixel", "superpixel_dominant"]
    np.testing.assert_allclose(curves["region"].get_xdata(), [110, 210, 310])  # absolute counts, not %
    np.testing.assert_allclose(curves["superpixel_dominant"].get_ydata() - curves["superpixel"].get_ydata(), 0.5)
    fig = plots.curves_by_acquisition(df, "f1", cost="polygon_clicks")
    assert all(a.get_xlabel() == "Labelled polygon clicks" for a in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["full", "region", "superpixel",
                                                                   "superpixel_dominant"]
    assert plots.learning_curves(df, "f1").get_xlabel() == "% labelled pixels"  # the default is unchanged
    with pytest.raises(RunStateError, match="'labelled_clicks'"):
        plots.learning_curves(df, "f1", cost="clicks")
    with pytest.raises(ValueError, match="cost must be one of"):
        plots.curves_by_acquisition(df, "f1", cost="seconds")
