"""Figures: reliability diagrams, learning curves, uncertainty histograms and selected regions.

Every single-panel helper draws on the Axes it is given (or on a new figure with the project's
seaborn theme when ``ax`` is None) and returns that Axes; the multi-panel figures of the paper
(:func:`curves_by_acquisition`, Fig. 3; :func:`calibration_summary`, Fig. 5) take ``axes=None`` and
return the Figure. None calls ``plt.show()``. :func:`save_figure` writes ``figures/<name>.png`` and
``.pdf`` atomically.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from skimage.color import label2rgb
from skimage.measure import find_contours

from alseg_utils.calibration import ReliabilityBins
from alseg_utils.config import ACQUISITIONS, METHODS, METRICS, STRATEGIES
from alseg_utils.costs import EffortAxis, require_effort
from alseg_utils.results import seed_summary, with_method
from alseg_utils.run_folder import atomic_write_bytes

METRIC_LABELS = dict(zip(METRICS, (
    "F1 score", "Object Dice", "Object Hausdorff (px)", "Dice", "Jaccard index",
    "NLL", "ECE", "Brier score", "Reliability", "Resolution", "Uncertainty",
), strict=True))
"""Axis labels of the metric columns (:data:`alseg_utils.config.METRICS`, in that order)."""

UNCERTAINTY_CMAP = "rocket"
"""Seaborn colour map of uncertainty maps."""

ACQUISITION_LABELS = dict(zip(ACQUISITIONS, ("Random", "VarRatio", "Entropy", "BALD"), strict=True))
"""Panel titles and legend entries of the acquisition functions (:data:`alseg_utils.config.ACQUISITIONS`)."""

_ORDER = {"strategy": STRATEGIES, "method": METHODS, "acquisition": ACQUISITIONS}
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def set_theme(context: Literal["paper", "notebook", "talk", "poster"] = "notebook",
              style: Literal["white", "dark", "whitegrid", "darkgrid", "ticks"] = "whitegrid") -> None:
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
    for x, h, n in zip(centers, heights, b.count, strict=True):
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


def _levels(values: Iterable[Any], column: str | None) -> list[Any]:
    """Distinct values, strategies and functions in the paper's order, any others sorted after."""
    present = set(values)
    known = [v for v in _ORDER.get(column or "", ()) if v in present]
    return known + sorted(present - set(known), key=str)


def _cycle(levels: Sequence[Any], column: str | None, choices: Sequence[Any]) -> dict[Any, Any]:
    """Level -> colour / line style / marker, fixed by the level's place in the paper's order, so
    that "region" (say) looks the same in every figure, whichever levels a figure shows."""
    ranks = list(_ORDER.get(column or "", ()))
    ranks += [v for v in levels if v not in ranks]
    return {v: choices[ranks.index(v) % len(choices)] for v in levels}


def _groups(table: pd.DataFrame, keys: list[str]) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(key column -> value, rows) per group of ``keys``, in the paper's order."""
    if not keys:
        return [({}, table)]
    rank = {k: {v: i for i, v in enumerate(_levels(table[k], k))} for k in keys}
    items = [(dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)), g)
             for key, g in table.groupby(keys, sort=False)]
    return sorted(items, key=lambda item: tuple(rank[k][item[0][k]] for k in keys))


def _runs(df: pd.DataFrame) -> pd.DataFrame:
    """The AL rows of a records table (rows with a true ``reference`` left out)."""
    return df[~df["reference"].eq(True)] if "reference" in df.columns else df


def _curve_table(df: pd.DataFrame, metric: str, keys: list[str], axis: EffortAxis) -> pd.DataFrame:
    """Mean effort ``x`` (% labelled pixels, or clicks) and metric ``mean`` / ``std`` over seeds per ``keys`` + step."""
    df = with_method(df)
    missing = {metric, "step", "labelled_fraction", axis.column, *keys} - set(df.columns)
    if missing:
        raise ValueError(f"learning_curves: the table lacks columns {sorted(missing)}")
    table = seed_summary(df, [metric], by=[*keys, "step"], effort=axis.column)
    return table.assign(x=axis.scale * table["effort"])


def _place_legend(ax: Axes, legend: str) -> None:
    """The Axes' legend: best place inside, right of the Axes, or none."""
    if legend == "inside":
        ax.legend(fontsize=8)
    elif legend == "outside":
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def learning_curves(df: pd.DataFrame, metric: str, ax: Axes | None = None, hue: str | None = "acquisition",
                    style: str | None = "method", reference: float | None = None,
                    legend: str = "inside", cost: str = "pixels") -> Axes:
    """Mean over seeds (± one std band) of ``metric`` against the percentage of labelled pixels (or clicks).

    Seeds are matched by acquisition step (:func:`~alseg_utils.results.seed_summary`): each point
    is one step, at the mean labelled fraction of the seeds (x) and the mean score (y); the band
    is mean ± the sample std over seeds (none for one seed). A step's labelled fraction is the
    same for every seed of a full-image run when the pool images have equal size; region and
    superpixel runs (and full-image runs on images of unequal size) label slightly different
    pixel counts per seed, so x is their mean. With a click axis (``cost``), x is the mean running
    count of clicks of the seeds (absolute, not a share).

    Args:
        df: one row per (run, step) with columns ``step``, ``labelled_fraction`` (in [0, 1]),
            ``metric`` and the ``hue`` / ``style`` columns (e.g. method, acquisition, seed; a
            ``method`` column is derived from ``strategy`` when missing), and the click column of
            ``cost``. Rows with a true ``reference`` column are left out.
        metric: the column to plot, e.g. "f1" or "ece".
        ax: where to draw; a new figure when None.
        hue: column whose values get one colour each (None: one colour).
        style: column whose values get one line style each (None: solid lines).
        reference: a score drawn as a dashed horizontal line "Full training data".
        legend: "inside" (best place in the Axes), "outside" (right of the Axes) or "none" (e.g.
            for one legend of the whole figure, :func:`figure_legend`).
        cost: the effort axis (:data:`~alseg_utils.config.EFFORT_AXES`): ``pixels`` (% of pool
            pixels), ``polygon_clicks``, ``dominant_clicks`` or ``clicks`` (as annotated).

    Returns:
        The Axes: one line and one band per (hue, style) group, plus the reference line.

    Raises:
        ValueError: if a needed column is missing, no row is left, or ``legend`` or ``cost`` is unknown.
        RunStateError: a click axis is asked of records that lack it (written before costs were recorded).
    """
    if legend not in ("inside", "outside", "none"):
        raise ValueError(f"legend must be 'inside', 'outside' or 'none', got {legend!r}")
    axis = require_effort(df, cost)
    keys = list(dict.fromkeys(k for k in (hue, style) if k is not None))
    table = _curve_table(df, metric, keys, axis)
    if table.empty:
        raise ValueError(f"learning_curves: no rows to plot for {metric!r}")
    ax = _axes(ax, figsize=(6.0, 4.0))
    colours = _cycle(_levels(table[hue], hue) if hue else [None], hue, sns.color_palette())
    lines = _cycle(_levels(table[style], style) if style else [None], style, _LINESTYLES)
    for values, g in _groups(table, keys):
        h, s = values.get(hue) if hue else None, values.get(style) if style else None
        x = g["x"].to_numpy()  # [steps]
        # "full", not "full / full"
        label = " / ".join(dict.fromkeys(str(v) for v in (h, s) if v is not None)) or metric
        ax.plot(x, g["mean"], color=colours[h], linestyle=lines[s], marker="o", markersize=3, label=label)
        ax.fill_between(x, g["mean"] - g["std"], g["mean"] + g["std"], color=colours[h], alpha=0.2, linewidth=0)
    if reference is not None:
        ax.axhline(float(reference), linestyle="--", color="black", linewidth=1, label="Full training data")
    ax.set(xlabel=axis.label, ylabel=METRIC_LABELS.get(metric, metric))
    _place_legend(ax, legend)
    return ax


def _outside_legend(fig: Figure, handles: list[Any], labels: list[str], **kwargs: Any) -> Legend:
    """A figure legend right of the Axes (constrained layout makes room for it)."""
    if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        return fig.legend(handles, labels, loc="outside right upper", **kwargs)
    return fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), **kwargs)


def figure_legend(fig: Figure, title: str | None = None, fontsize: float = 9) -> Legend:
    """One legend for all Axes of ``fig``, right of them (outside the data).

    The labelled artists of every Axes are collected (each label once, in order of first
    appearance) and the Axes' own legends removed. With a constrained layout (as made by
    :func:`subplots`) the Axes shrink to make room; otherwise the legend is anchored at the
    figure's right edge and :func:`save_figure` (``bbox_inches="tight"``) keeps it in.

    Args:
        fig: the figure.
        title: legend title.
        fontsize: font size of the entries.

    Returns:
        The figure legend.

    Raises:
        ValueError: if no Axes has a labelled artist.
    """
    entries: dict[str, Any] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    if not entries:
        raise ValueError("figure_legend: no Axes of the figure has a labelled line or patch")
    return _outside_legend(fig, list(entries.values()), list(entries), title=title, fontsize=fontsize)


def _grid(axes: Any, nrows: int, ncols: int, panel: tuple[float, float]) -> np.ndarray:
    """``axes`` as an [nrows, ncols] array, or the Axes of a new themed figure (room for a legend)."""
    if axes is None:
        _, grid = subplots(nrows, ncols, figsize=(panel[0] * ncols + 1.8, panel[1] * nrows), squeeze=False)
        return grid
    grid = np.asarray(axes, dtype=object)
    grid = grid.reshape(1, -1) if grid.ndim == 1 and nrows == 1 else grid
    if grid.shape != (nrows, ncols):
        raise ValueError(f"axes must be {nrows} x {ncols} Axes (a row per metric), got shape {grid.shape}")
    return grid


def _share_ylim(row: Sequence[Axes]) -> None:
    """One y range for a row of panels (the union of theirs); y labels on the first panel only."""
    lows, highs = zip(*(ax.get_ylim() for ax in row), strict=True)
    for i, ax in enumerate(row):
        ax.set_ylim(min(lows), max(highs))
        if i:
            ax.set_ylabel("")


def _references(reference: float | Mapping[str, float] | None, metrics: list[str]) -> dict[str, float]:
    """Metric -> full-data score from a number (one metric only) or a mapping."""
    if reference is None:
        return {}
    if isinstance(reference, Mapping):
        return {m: float(v) for m, v in reference.items()}
    if len(metrics) != 1:
        raise ValueError("reference: give a mapping metric -> score when plotting several metrics")
    return {metrics[0]: float(reference)}


def curves_by_acquisition(df: pd.DataFrame, metrics: str | Sequence[str],
                          reference: float | Mapping[str, float] | None = None, axes: Any = None,
                          cost: str = "pixels") -> Figure:
    """Fig. 3: one panel per acquisition function with the learning curve of each strategy in it.

    Each panel is :func:`learning_curves` of one function with hue and style = method (full,
    region, superpixel, superpixel_dominant): the mean over seeds, matched by step, ± one std band,
    against the % of labelled pixels (or the clicks of ``cost``), and the full-training-data score
    as a dashed line. The panels of one metric share their y range; one legend sits right of the panels.

    Args:
        df: records (:func:`~alseg_utils.results.load_records`); rows with a true
            ``reference`` are left out.
        metrics: the metric column, or several (one row of panels each).
        reference: the full-data score: a number (one metric) or metric -> score; None: no line.
        axes: [len(metrics), functions] Axes to draw on (functions in the paper's order:
            random, varratio, entropy, bald, then others); a new figure when None.
        cost: the effort axis of :func:`learning_curves`.

    Returns:
        The Figure.

    Raises:
        ValueError: if a column is missing, there is no AL run, ``axes`` has the wrong shape, or
            ``reference`` is a number while several metrics are drawn.
        RunStateError: a click axis is asked of records that lack it.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    refs = _references(reference, metrics)
    if "acquisition" not in df.columns:
        raise ValueError("curves_by_acquisition: the table lacks the column 'acquisition'")
    runs = _runs(df)
    acquisitions = _levels(runs["acquisition"].dropna(), "acquisition")
    if not acquisitions or not metrics:
        raise ValueError("curves_by_acquisition: no AL run (or no metric) to plot")
    grid = _grid(axes, len(metrics), len(acquisitions), panel=(4.0, 3.4))
    for row, metric in zip(grid, metrics, strict=True):
        for ax, acquisition in zip(row, acquisitions, strict=True):
            learning_curves(runs[runs["acquisition"] == acquisition], metric, ax=ax, hue="method",
                            style="method", reference=refs.get(metric), legend="none", cost=cost)
            ax.set_title(ACQUISITION_LABELS.get(acquisition, str(acquisition)))
        _share_ylim(row)
    figure_legend(grid[0, 0].figure)
    return grid[0, 0].figure


def _pick_steps(available: Iterable[Any], steps: Sequence[int] | None, max_steps: int) -> list[int]:
    """The steps to show: ``steps`` (checked), or up to ``max_steps`` acquisition steps (> 0, when
    there are any) spread from the first to the last."""
    have = sorted({int(s) for s in available})
    if steps is not None:
        shown = sorted({int(s) for s in steps})
        unknown = sorted(set(shown) - set(have))
        if unknown or not shown:
            raise ValueError(f"calibration_summary: steps {unknown or '[]'} are not in the records "
                             f"(they have steps {have}); pick some of those")
        return shown
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    have = [s for s in have if s > 0] or have  # step 0: the same initial model for every strategy
    picks = np.round(np.linspace(0, len(have) - 1, min(max_steps, len(have)))).astype(int)  # [<= max_steps]
    return [have[i] for i in np.unique(picks)]


def _dodge(n_strategies: int, n_functions: int, width: float = 0.8) -> np.ndarray:
    """x offsets of the (strategy, function) slots of one step: strategy-major, a gap between
    strategies, spanning ``width``; [n_strategies * n_functions]."""
    slots = np.array([s * (n_functions + 1) + a for s in range(n_strategies) for a in range(n_functions)], float)
    span = slots[-1] - slots[0]
    return (slots - span / 2) * (width / span) if span else slots * 0.0


def _dodged_points(ax: Axes, table: pd.DataFrame, steps: list[int], strategies: list[Any],
                   acquisitions: list[Any]) -> None:
    """One error bar (mean ± std) per (strategy, function) and step, dodged around the step's tick."""
    colours = _cycle(acquisitions, "acquisition", sns.color_palette())
    markers = _cycle(strategies, "method", _MARKERS)
    slots = [(s, a) for s in strategies for a in acquisitions]
    where = {step: i for i, step in enumerate(steps)}
    for (s, a), dx in zip(slots, _dodge(len(strategies), len(acquisitions)), strict=True):
        g = table[(table["method"] == s) & (table["acquisition"] == a)]
        if len(g):
            x = g["step"].map(where).to_numpy(dtype=float) + dx  # [steps of the group]
            mean, std = g["mean"].to_numpy(dtype=float), g["std"].to_numpy(dtype=float)  # [steps of the group]
            ax.errorbar(x, mean, yerr=std, fmt=markers[s], color=colours[a], markersize=5,
                        capsize=2, elinewidth=1, label=f"{a} / {s}")
    for i in range(1, len(steps)):
        ax.axvline(i - 0.5, color="0.8", linewidth=0.8)
    ax.grid(False, axis="x")
    ax.set_xlim(-0.5, len(steps) - 0.5)


def _step_ticks(ax: Axes, summary: pd.DataFrame, steps: list[int], strategies: list[Any]) -> None:
    """Tick per step labelled with the step and each strategy's mean % of labelled pixels."""
    pct = 100 * summary.groupby(["step", "method"])["fraction"].mean()
    labels = [f"{step}\n" + "/".join(f"{pct[(step, s)]:.0f}" if (step, s) in pct.index else "–"
                                     for s in strategies) for step in steps]
    ax.set_xticks(range(len(steps)), labels, fontsize=9)
    ax.set_xlabel(f"Acquisition step\n(% labelled pixels: {' / '.join(map(str, strategies))})")


def _summary_legend(fig: Figure, strategies: list[Any], acquisitions: list[Any]) -> Legend:
    """Legend of :func:`calibration_summary`: marker = strategy, colour = function, with headers."""
    colours = _cycle(acquisitions, "acquisition", sns.color_palette())
    markers = _cycle(strategies, "method", _MARKERS)
    header = Line2D([], [], linestyle="none")
    handles = [header] + [Line2D([], [], linestyle="none", marker=markers[s], color="0.35") for s in strategies]
    handles += [header] + [Line2D([], [], linestyle="none", marker="o", color=colours[a]) for a in acquisitions]
    labels = ["Strategy", *map(str, strategies),
              "Acquisition", *(ACQUISITION_LABELS.get(a, str(a)) for a in acquisitions)]
    legend = _outside_legend(fig, handles, labels, fontsize=9)
    for text in (legend.get_texts()[0], legend.get_texts()[len(strategies) + 1]):
        text.set_fontweight("bold")
    return legend


def calibration_summary(df: pd.DataFrame, metrics: Sequence[str] = ("nll", "ece", "brier"),
                        steps: Sequence[int] | None = None, max_steps: int = 4, axes: Any = None) -> Figure:
    """Fig. 5: calibration of every acquisition function and strategy at a few acquisition steps.

    One panel per metric. At each chosen step there is one point per (strategy, function), grouped
    by strategy (marker) and coloured by function: the mean over seeds with a ± one std error bar
    (sample std; :func:`~alseg_utils.results.seed_summary` matches seeds by step). A step labels
    fewer pixels with regions than with full images, so each tick also gives the mean % of
    labelled pixels of every strategy. One legend sits right of the panels.

    Args:
        df: records (:func:`~alseg_utils.results.load_records`); rows with a true
            ``reference`` are left out.
        metrics: metric columns, one panel each (for the three defaults lower is better).
        steps: the acquisition steps to show; None: up to ``max_steps`` steps spread evenly from
            the first to the last acquisition step in the records. Step 0 (before any acquisition,
            the same initial model for every strategy and function of a seed) is picked only when
            it is the only step; pass it in ``steps`` to show it.
        max_steps: how many steps to pick when ``steps`` is None, >= 1.
        axes: ``len(metrics)`` Axes to draw on; a new figure when None.

    Returns:
        The Figure.

    Raises:
        ValueError: if a column is missing, no AL run has these metrics, a step of ``steps`` is
            not in the records, ``max_steps < 1`` or ``axes`` has the wrong length.
    """
    metrics = list(metrics)
    summary = seed_summary(df, metrics, by=("method", "acquisition", "step"))
    if summary.empty:
        raise ValueError(f"calibration_summary: no AL run with {metrics} in the records")
    shown = _pick_steps(summary["step"], steps, max_steps)
    summary = summary[summary["step"].isin(shown)]
    grid = _grid(axes, 1, len(metrics), panel=(4.2, 3.6))
    strategies = _levels(summary["method"], "method")
    acquisitions = _levels(summary["acquisition"], "acquisition")
    for ax, metric in zip(grid[0], metrics, strict=True):
        _dodged_points(ax, summary[summary["metric"] == metric], shown, strategies, acquisitions)
        _step_ticks(ax, summary, shown, strategies)
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    _summary_legend(grid[0, 0].figure, strategies, acquisitions)
    return grid[0, 0].figure


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
    for colour, (name, v) in zip(sns.color_palette(n_colors=len(data)), data.items(), strict=True):
        # the stub asks int | Sequence[float] | str; Axes.hist takes any array of edges
        ax.hist(v, bins=edges, density=True, histtype="stepfilled", alpha=0.45, color=colour,  # type: ignore[arg-type]
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
        path = out_dir / f"{name}.{ext}"
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths
