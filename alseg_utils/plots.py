"""Figures: reliability diagrams, learning curves, uncertainty histograms and selected regions.

Every helper draws on the Axes it is given (or on a new figure with the project's seaborn theme
when ``ax`` is None) and returns that Axes; none calls ``plt.show()``. :func:`save_figure` writes
``figures/<name>.png`` and ``.pdf`` atomically.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from skimage.color import label2rgb
from skimage.measure import find_contours

from alseg_utils.calibration import ReliabilityBins

METRIC_LABELS = {
    "f1": "F1 score", "object_dice": "Object Dice", "object_hausdorff": "Object Hausdorff (px)",
    "dice": "Dice", "jaccard": "Jaccard index", "nll": "NLL", "ece": "ECE", "brier": "Brier score",
    "reliability": "Reliability", "resolution": "Resolution", "uncertainty": "Uncertainty",
}
"""Axis labels of the metric columns."""

UNCERTAINTY_CMAP = "rocket"
"""Seaborn colour map of uncertainty maps."""

_LINESTYLES = ("-", "--", ":", "-.")


def set_theme(context: str = "notebook", style: str = "whitegrid") -> None:
    """Apply the project's seaborn theme (called for every new figure the helpers create).

    Args:
        context: seaborn context ("paper", "notebook", "talk", "poster").
        style: seaborn style.
    """
    sns.set_theme(context=context, style=style, palette="deep")


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (5.0, 4.0),
             squeeze: bool = True) -> tuple[Figure, Any]:
    """A themed figure with a grid of Axes (``plt.subplots`` after :func:`set_theme`).

    Args:
        nrows: rows of Axes.
        ncols: columns of Axes.
        figsize: figure size in inches.
        squeeze: as in ``plt.subplots``.

    Returns:
        The figure and its Axes (one Axes, or an array of them).
    """
    set_theme()
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=squeeze, constrained_layout=True)
    return fig, axes


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    """``ax`` itself, or the Axes of a new themed figure."""
    if ax is not None:
        return ax
    set_theme()
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _compact(n: int) -> str:
    """Short count label: 950, 1.2k, 3.4M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return str(int(n))


def reliability_diagram(bins: ReliabilityBins | Mapping[str, Any], ax: Axes | None = None,
                        title: str | None = None) -> Axes:
    """Accuracy per confidence bin against the diagonal, with bin counts and the ECE in the title.

    Args:
        bins: :class:`~alseg_utils.calibration.ReliabilityBins` or a record mapping with
            ``confidence``, ``accuracy`` and ``count`` lists (see ``ReliabilityBins.from_record``).
        ax: where to draw; a new figure when None.
        title: prefix of the title; the ECE is always appended.

    Returns:
        The Axes: one bar per bin (height 0 for empty bins), the dashed diagonal and one count
        label per non-empty bin.
    """
    b = ReliabilityBins.from_record(bins)
    ax = _axes(ax)
    centers = (b.edges[:-1] + b.edges[1:]) / 2  # [K]
    heights = np.nan_to_num(b.accuracy, nan=0.0)  # [K]
    ax.bar(centers, heights, width=np.diff(b.edges), color=sns.color_palette()[0], edgecolor="black",
           linewidth=0.6, label="Accuracy")
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.3", label="Perfect calibration")
    for x, h, n in zip(centers, heights, b.count):
        if n > 0:
            ax.annotate(_compact(int(n)), (x, h), xytext=(0, 2), textcoords="offset points", ha="center",
                        va="bottom", rotation=90, fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1.15), xlabel="Confidence", ylabel="Accuracy")
    ece_text = f"ECE = {b.ece:.4f}"
    ax.set_title(f"{title} ({ece_text})" if title else ece_text)
    ax.legend(loc="upper left")
    return ax


def confidence_histogram(bins: ReliabilityBins | Mapping[str, Any], ax: Axes | None = None) -> Axes:
    """Fraction of pixels per confidence bin, with the mean confidence and the accuracy marked.

    Args:
        bins: reliability bins or a record mapping (as for :func:`reliability_diagram`).
        ax: where to draw; a new figure when None.

    Returns:
        The Axes: one bar per bin (heights sum to 1) and two vertical lines.

    Raises:
        ValueError: if every bin is empty.
    """
    b = ReliabilityBins.from_record(bins)
    total = int(b.count.sum())
    if total == 0:
        raise ValueError("every confidence bin is empty: nothing to plot")
    ax = _axes(ax)
    centers = (b.edges[:-1] + b.edges[1:]) / 2  # [K]
    ax.bar(centers, b.count / total, width=np.diff(b.edges), color=sns.color_palette()[0], edgecolor="black",
           linewidth=0.6)
    full = b.count > 0
    mean_conf = float((b.confidence[full] * b.count[full]).sum() / total)
    accuracy = float((b.accuracy[full] * b.count[full]).sum() / total)
    ax.axvline(mean_conf, linestyle="--", color="0.2", label=f"Mean confidence {mean_conf:.3f}")
    ax.axvline(accuracy, linestyle=":", color=sns.color_palette()[3], label=f"Accuracy {accuracy:.3f}")
    ax.set(xlim=(0, 1), xlabel="Confidence", ylabel="Fraction of pixels")
    ax.legend(loc="upper left")
    return ax


def _curve_table(df: pd.DataFrame, metric: str, keys: list[str]) -> pd.DataFrame:
    """Mean labelled fraction and metric mean/std over seeds per ``keys`` + step."""
    missing = {metric, "step", "labelled_fraction", *keys} - set(df.columns)
    if missing:
        raise ValueError(f"learning_curves: the table lacks columns {sorted(missing)}")
    if "reference" in df.columns:  # full-data reference runs are drawn from ``reference``
        df = df[~df["reference"].fillna(False).astype(bool)]
    table = df.groupby([*keys, "step"], sort=True).agg(
        x=("labelled_fraction", "mean"), mean=(metric, "mean"), std=(metric, "std")).reset_index()
    table["std"] = table["std"].fillna(0.0)  # one seed: no band
    return table


def learning_curves(df: pd.DataFrame, metric: str, ax: Axes | None = None, hue: str | None = "acquisition",
                    style: str | None = "strategy", reference: float | None = None) -> Axes:
    """Mean over seeds (± std band) of ``metric`` against the percentage of labelled pixels.

    Args:
        df: one row per (run, step) with columns ``step``, ``labelled_fraction`` (in [0, 1]),
            ``metric`` and the ``hue`` / ``style`` columns (e.g. strategy, acquisition, seed).
            Rows with a true ``reference`` column are left out.
        metric: the column to plot, e.g. "f1" or "ece".
        ax: where to draw; a new figure when None.
        hue: column whose values get one colour each (None: one colour).
        style: column whose values get one line style each (None: solid lines).
        reference: a score drawn as a dashed horizontal line "Full training data".

    Returns:
        The Axes: one line and one band per (hue, style) group, plus the reference line.

    Raises:
        ValueError: if a needed column is missing or no row is left.
    """
    keys = list(dict.fromkeys(k for k in (hue, style) if k is not None))
    table = _curve_table(df, metric, keys)
    if table.empty:
        raise ValueError(f"learning_curves: no rows to plot for {metric!r}")
    ax = _axes(ax, figsize=(6.0, 4.0))
    hues = sorted(table[hue].unique()) if hue else [None]
    styles = sorted(table[style].unique()) if style else [None]
    colours = dict(zip(hues, sns.color_palette(n_colors=len(hues))))
    lines = {s: _LINESTYLES[i % len(_LINESTYLES)] for i, s in enumerate(styles)}
    groups = table.groupby(keys, sort=True) if keys else [((), table)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        values = dict(zip(keys, key))
        h, s = values.get(hue) if hue else None, values.get(style) if style else None
        x = 100 * g["x"].to_numpy()  # [steps]
        label = " / ".join(dict.fromkeys(str(v) for v in (h, s) if v is not None)) or metric  # "full", not "full / full"
        ax.plot(x, g["mean"], color=colours[h], linestyle=lines[s], marker="o", markersize=3, label=label)
        ax.fill_between(x, g["mean"] - g["std"], g["mean"] + g["std"], color=colours[h], alpha=0.2, linewidth=0)
    if reference is not None:
        ax.axhline(float(reference), linestyle="--", color="black", linewidth=1, label="Full training data")
    ax.set(xlabel="% labelled pixels", ylabel=METRIC_LABELS.get(metric, metric))
    ax.legend(fontsize=8)
    return ax


def uncertainty_histogram(values_by_group: Mapping[str, np.ndarray], ax: Axes | None = None, bins: int = 30) -> Axes:
    """Density-normalised distributions of the uncertainty of acquired pixels (paper Fig. 4).

    Args:
        values_by_group: group name -> uncertainty values, any shape (flattened), e.g.
            ``{"full image": ..., "region": ...}``. Empty groups are skipped.
        ax: where to draw; a new figure when None.
        bins: number of bins, shared by all groups.

    Returns:
        The Axes: one filled step histogram (area 1) per non-empty group.

    Raises:
        ValueError: if there is no value at all, or a value is NaN or inf.
    """
    data = {name: np.asarray(v, dtype=float).ravel() for name, v in values_by_group.items()}
    data = {name: v for name, v in data.items() if v.size}
    if not data:
        raise ValueError("uncertainty_histogram: every group is empty")
    if not all(np.isfinite(v).all() for v in data.values()):
        raise ValueError("uncertainty_histogram: values contain NaN or inf")
    edges = np.histogram_bin_edges(np.concatenate(list(data.values())), bins=bins)  # [bins + 1]
    ax = _axes(ax)
    for colour, (name, v) in zip(sns.color_palette(n_colors=len(data)), data.items()):
        ax.hist(v, bins=edges, density=True, histtype="stepfilled", alpha=0.45, color=colour,
                edgecolor=colour, label=name)
    ax.set(xlabel="Uncertainty of acquired pixels", ylabel="Density")
    ax.legend()
    return ax


def _region_box(region: Any) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a tuple or of an object with those attributes."""
    if all(hasattr(region, a) for a in ("top", "left", "height", "width")):
        return int(region.top), int(region.left), int(region.height), int(region.width)
    top, left, height, width = region
    return int(top), int(left), int(height), int(width)


def show_selection(image: np.ndarray, regions: Sequence[Any], pseudo_label: np.ndarray | None = None,
                   uncertainty: np.ndarray | None = None, ax: Axes | None = None,
                   superpixels: np.ndarray | None = None) -> Axes:
    """An image with its selected regions outlined, the pseudo-label contour and the uncertainty.

    Args:
        image: RGB image, [H, W, 3], uint8 in [0, 255] or float in [0, 1] (or grey [H, W]).
        regions: (top, left, height, width) tuples, or objects with those attributes (Region).
        pseudo_label: model prediction, [H, W], non-zero = object; its contour is drawn.
        uncertainty: per-pixel scores, [H, W], >= 0; overlaid semi-transparently.
        ax: where to draw; a new figure when None.
        superpixels: chosen superpixels, int [H, W]: a segment id on their pixels, -1 elsewhere;
            each segment is outlined like a region.

    Returns:
        The Axes: the image, one rectangle per region, the contour lines.

    Raises:
        ValueError: if a map's shape differs from the image's [H, W].
    """
    img = np.asarray(image)
    for name, extra in (("pseudo_label", pseudo_label), ("uncertainty", uncertainty), ("superpixels", superpixels)):
        if extra is not None and np.shape(extra) != img.shape[:2]:
            raise ValueError(f"{name} shape {np.shape(extra)} does not match the image {img.shape[:2]}")
    ax = _axes(ax)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    if uncertainty is not None:
        ax.imshow(uncertainty, cmap=UNCERTAINTY_CMAP, alpha=0.45)
    colour = sns.color_palette()[2]
    for region in regions:
        top, left, height, width = _region_box(region)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor=colour, linewidth=2))
    if superpixels is not None:
        ids = np.asarray(superpixels)
        for segment in np.unique(ids[ids >= 0]):
            padded = np.pad((ids == segment).astype(float), 1)  # closed outlines at the image border
            for c in find_contours(padded, 0.5):  # [L, 2] (row, col), shifted by the padding
                ax.plot(c[:, 1] - 1, c[:, 0] - 1, color=colour, linewidth=2)
    if pseudo_label is not None:
        for c in find_contours((np.asarray(pseudo_label) != 0).astype(float), 0.5):  # [L, 2] (row, col)
            ax.plot(c[:, 1], c[:, 0], color=sns.color_palette()[1], linewidth=1)
    ax.set_axis_off()
    return ax


def show_uncertainty(uncertainty: np.ndarray, ax: Axes | None = None, label: str = "Uncertainty") -> Axes:
    """An uncertainty map with a colour bar.

    Args:
        uncertainty: per-pixel scores, [H, W], >= 0.
        ax: where to draw; a new figure when None.
        label: colour-bar label.

    Returns:
        The Axes of the map (the colour bar gets its own Axes in the same figure).

    Raises:
        ValueError: if the map is not 2-D.
    """
    values = np.asarray(uncertainty)
    if values.ndim != 2:
        raise ValueError(f"uncertainty must be an [H, W] map, got shape {values.shape}")
    ax = _axes(ax)
    im = ax.imshow(values, cmap=UNCERTAINTY_CMAP)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set_axis_off()
    return ax


def show_examples(images: Sequence[np.ndarray] | np.ndarray, masks: Sequence[np.ndarray] | np.ndarray,
                  contours: Sequence[np.ndarray] | np.ndarray, n: int = 4) -> Figure:
    """A 3 x n grid: images, their instance masks overlaid, and their contour targets.

    Args:
        images: RGB images, [N, H, W, 3] uint8 (or a list of them).
        masks: instance or binary masks, [N, H, W], 0 = background.
        contours: contour targets, [N, H, W], bool.
        n: number of examples (the first ``n``).

    Returns:
        The Figure.

    Raises:
        ValueError: if the three inputs have different lengths or ``n < 1``.
    """
    if not len(images) == len(masks) == len(contours):
        raise ValueError("show_examples: images, masks and contours must have the same length")
    n = min(n, len(images))
    if n < 1:
        raise ValueError("show_examples: nothing to show (n < 1 or no image)")
    set_theme(style="white")
    fig, axes = plt.subplots(3, n, figsize=(3.0 * n, 7.0), squeeze=False)
    for k in range(n):
        img = np.asarray(images[k])
        axes[0, k].imshow(img)
        axes[0, k].set_title(f"example {k}")
        axes[1, k].imshow(label2rgb(np.asarray(masks[k]), image=img, bg_label=0, alpha=0.4))
        axes[2, k].imshow(np.asarray(contours[k]), cmap="gray")
    for row, name in enumerate(("image", "mask", "contour target")):
        axes[row, 0].set_ylabel(name)
    for a in axes.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, name: str, folder: str | Path = "figures") -> list[Path]:
    """Write ``folder/name.png`` (150 dpi) and ``folder/name.pdf``, each atomically.

    Args:
        fig: the figure (e.g. ``ax.figure``).
        name: file stem, without folder or extension.
        folder: destination folder, created when missing.

    Returns:
        The two written paths, PNG first.

    Raises:
        ValueError: if ``name`` is empty or contains a folder.
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"figure name must be a plain file stem like 'fig1_f1', got {name!r}")
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=150, bbox_inches="tight", metadata=metadata)
        paths.append(_atomic_write(out_dir / f"{name}.{ext}", buffer.getvalue()))
    return paths


def _atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; figures are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
