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
from matplotlib.collections import PolyCollection  # noqa: E402
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
    assert isinstance(fig, Figure) and len(fig.axes) == 9
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
