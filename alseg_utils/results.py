"""Run records: reading a sweep back, and Table 1.

Every AL run writes ``steps.jsonl`` (one JSON record per acquisition step) in its output folder.
Figure notebooks read only these files (through :func:`load_records`).

The files of a run folder, their names and how they are written and read back (atomic writes; a
damaged file raises one :class:`~alseg_utils.errors.RunStateError` line naming it) belong to
:mod:`alseg_utils.run_folder`; the writers and readers this module used to define are re-exported
here from there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alseg_utils.config import ACQUISITIONS, METHODS, METRICS, SUPERPIXEL_DOMINANT, RunConfig
from alseg_utils.costs import effort_axis, require_effort
from alseg_utils.run_folder import (  # noqa: F401 - the writers and readers are re-exported from here
    CONFIG_ADVICE,
    CONFIG_FILE,
    RECORDS_ADVICE,
    RECORDS_FILE,
    RunFolder,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    damaged_file_error,
    git_commit,
    one_line_reason,
    read_json_file,
    read_npz_file,
    read_records,
    read_run_config_file,
    save_npz,
    selection_name,
    write_records,
)

if TYPE_CHECKING:
    from alseg_utils.calibration import ReliabilityBins

METRIC_COLUMNS = METRICS
"""Metric columns of the per-step table every figure is drawn from (:data:`alseg_utils.config.METRICS`)."""

METHOD_LABELS = dict(zip(METHODS, ("full image", "region", "superpixel", "dominant-class superpixel"), strict=True))
"""Display names of the methods (:data:`alseg_utils.config.METHODS`) in tables and summaries."""


def method_of(record: Mapping[str, Any]) -> str:
    """What a run is reported as: its strategy, or ``"superpixel_dominant"`` for dominant-class superpixels.

    Args:
        record: a step record (or any mapping with ``strategy`` and, from this version on,
            ``superpixel_label``); records without ``superpixel_label`` label by mask.

    Returns:
        One of :data:`~alseg_utils.config.METHODS` for the records alseg writes.
    """
    strategy = str(record.get("strategy"))
    dominant = strategy == "superpixel" and record.get("superpixel_label") == "dominant"
    return SUPERPIXEL_DOMINANT if dominant else strategy


def method_label(method: str) -> str:
    """The display name of a method (:data:`METHOD_LABELS`; unknown names are returned as they are)."""
    return METHOD_LABELS.get(method, method)


def with_method(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``method`` column (:func:`method_of` of each row) when it has none but a ``strategy``.

    Args:
        df: records, e.g. from :func:`records_frame` or made by hand.

    Returns:
        ``df`` itself when it has a ``method`` column or no ``strategy``, else a copy with one.
    """
    if "method" in df.columns or "strategy" not in df.columns:
        return df
    label = df["superpixel_label"] if "superpixel_label" in df.columns else pd.Series("mask", index=df.index)
    dominant = df["strategy"].eq("superpixel") & label.eq("dominant")
    return df.assign(method=df["strategy"].where(~dominant, SUPERPIXEL_DOMINANT))


def load_records(results_dir: str | Path) -> pd.DataFrame:
    """All step records under ``results_dir`` (searched recursively) as one table.

    Args:
        results_dir: a run folder, a sweep's ``results/`` folder, or a sweep folder.

    Returns:
        One row per (run, step) with columns run, strategy, method (:func:`method_of`),
        acquisition, seed, step, labelled_fraction, reference, the cost columns of the records that
        have them (``labelled_polygon_clicks``, ... see :mod:`alseg_utils.costs`) and the metric
        columns; scalar fields only.
    """
    rows = []
    for path in sorted(Path(results_dir).rglob(RECORDS_FILE)):
        for rec in RunFolder(path.parent).read_records():
            row = {k: v for k, v in rec.items() if not isinstance(v, (dict, list))}
            row["run"] = str(path.parent.relative_to(results_dir)) if path.parent != Path(results_dir) else "."
            row["method"] = method_of(rec)
            rows.append(row)
    columns = ["run", "strategy", "method", "acquisition", "seed", "step", "labelled_fraction", "reference"]
    if not rows:
        return pd.DataFrame(columns=columns + list(METRIC_COLUMNS))
    df = pd.DataFrame(rows)
    return df.sort_values(["method", "acquisition", "seed", "step"]).reset_index(drop=True)


def pixels_to_reach(fractions: Sequence[float], scores: Sequence[float], target: float) -> float:
    """First labelled-pixel fraction (or other running effort, e.g. clicks) at which ``scores`` reaches ``target``.

    Args:
        fractions: labelled fraction at each step, [S], non-decreasing, in [0, 1] (or any
            non-decreasing running effort, such as ``labelled_polygon_clicks``).
        scores: metric at each step, [S] (higher is better).
        target: the score to reach.

    Returns:
        The fraction of the first step with ``score >= target``; NaN when never reached.

    Raises:
        ValueError: the two sequences differ in length or fractions decrease.
    """
    f = np.asarray(fractions, dtype=float)
    s = np.asarray(scores, dtype=float)
    if f.shape != s.shape or f.ndim != 1:
        raise ValueError(f"fractions and scores must be 1-D of equal length, got {f.shape} and {s.shape}")
    if np.any(np.diff(f) < -1e-12):
        raise ValueError("fractions must be non-decreasing (one run's steps in order)")
    hit = np.flatnonzero(s >= target)
    return float(f[hit[0]]) if hit.size else math.nan


def table1(
    df: pd.DataFrame,
    targets: Mapping[str, Sequence[float]],
    relative_target: float | None = None,
    cost: str = "pixels",
) -> pd.DataFrame:
    """Table 1: the effort needed to reach each target (% of pixels, or clicks), mean and std over seeds.

    Args:
        df: records from :func:`load_records` (AL runs; rows with ``reference`` true are the
            full-training-data runs and only serve relative targets).
        targets: metric name -> absolute targets in [0, 1].
        relative_target: also report reaching this fraction of the full-data score (mean over
            reference seeds) for each metric in ``targets``; None to skip.
        cost: the effort axis (:data:`~alseg_utils.config.EFFORT_AXES`): ``pixels`` (% of pool
            pixels), ``polygon_clicks``, ``dominant_clicks`` or ``clicks`` (as annotated).

    Returns:
        One row per (metric, target, strategy, acquisition) with columns mean_pct and std_pct
        (percent of pool pixels, over the seeds that reached it; mean_clicks and std_clicks for a
        click axis), reached and seeds. ``strategy`` holds the method (:func:`method_of`).

    Raises:
        ValueError: unknown ``cost``.
        RunStateError: a click axis is asked of records that lack it (written before costs were recorded).
    """
    require_effort(df, cost)
    df = with_method(df)
    is_ref = df.get("reference", pd.Series(False, index=df.index)).fillna(False).astype(bool)
    runs, refs = df[~is_ref], df[is_ref]
    rows = []
    for metric, values in targets.items():
        goals = [(f"{v:g}", float(v)) for v in values]
        if relative_target is not None and metric in refs and len(refs):
            full = float(refs[metric].mean())
            goals.append((f"{relative_target:.0%} of full ({relative_target * full:.3f})", relative_target * full))
        for label, goal in goals:
            rows.extend(_table_rows(runs, metric, label, goal, cost))
    return pd.DataFrame(rows)


def _table_rows(runs: pd.DataFrame, metric: str, label: str, goal: float, cost: str) -> list[dict[str, Any]]:
    axis = effort_axis(cost)
    rows = []
    for (method, acquisition), group in runs.groupby(["method", "acquisition"], sort=True):
        needed = [
            pixels_to_reach(g[axis.column], g[metric], goal)
            for _, g in group.sort_values("step").groupby("seed")
        ]
        got = np.array([n for n in needed if not math.isnan(n)]) * axis.scale
        rows.append({
            "metric": metric, "target": label, "strategy": method, "acquisition": acquisition,
            f"mean_{axis.unit}": float(got.mean()) if got.size else math.nan,
            f"std_{axis.unit}": float(got.std()) if got.size else math.nan,
            "reached": int(got.size), "seeds": len(needed),
        })
    return rows


def table1_markdown(table: pd.DataFrame, cost: str = "pixels") -> str:
    """Render :func:`table1` like the paper: rows metric/target, columns acquisition, cells
    "full (region)", or "full (region; superpixel; ...)" for every other method present.

    Args:
        table: what :func:`table1` returned.
        cost: the effort axis it was computed in (``table1``'s ``cost``).

    Raises:
        ValueError: ``table`` was computed in another effort unit than ``cost``'s.
    """
    axis = effort_axis(cost)
    if len(table) and f"mean_{axis.unit}" not in table.columns:
        raise ValueError(f"table1_markdown: the table has no mean_{axis.unit} column; pass the cost table1 used")
    lines = ["| metric | target | " + " | ".join(ACQUISITIONS) + " |", "|---|---|" + "---|" * len(ACQUISITIONS)]
    for (metric, target), group in table.groupby(["metric", "target"], sort=False):
        cells = [_cell(group, acq, axis.unit) for acq in ACQUISITIONS]
        lines.append(f"| {metric} | {target} | " + " | ".join(cells) + " |")
    lines.append("")
    shown = [method_label(m) for m in METHODS if m in set(table.get("strategy", []))] or [method_label("full")]
    layout = shown[0] if len(shown) == 1 else f"{shown[0]} ({'; '.join(shown[1:])})"
    lines.append(f"Cells: {axis.caption} to reach the target, {layout}, "
                 "mean ± std over seeds; `–` never reached; `[k/n]` when only k of n seeds reached it; "
                 "an empty cell: that function was not in the sweep.")
    return "\n".join(lines) + "\n"


def _cell(group: pd.DataFrame, acquisition: str, unit: str) -> str:
    parts = {}
    for method in METHODS:
        row = group[(group.strategy == method) & (group.acquisition == acquisition)]
        if len(row):
            parts[method] = _fmt(row.iloc[0], unit)
    first, *rest = list(parts.values()) or [""]
    return f"{first} ({'; '.join(rest)})" if rest else first


def _fmt(row: pd.Series, unit: str) -> str:
    if row["reached"] == 0:
        return "–"
    decimals = 1 if unit == "pct" else 0  # % of pixels to one decimal, clicks whole
    text = f"{row[f'mean_{unit}']:.{decimals}f} ± {row[f'std_{unit}']:.{decimals}f}"
    return text if row["reached"] == row["seeds"] else f"{text} [{row['reached']}/{row['seeds']}]"


def steps_table(records: Sequence[dict[str, Any]], columns: Sequence[str] = (
        "step", "labelled_fraction", "f1", "object_dice", "dice", "jaccard", "nll", "ece", "brier"),
        decimals: int = 3) -> pd.DataFrame:
    """One run's records as a rounded table (what notebooks display).

    Args:
        records: the run's step records.
        columns: which fields to show, in order.
        decimals: rounding of float columns.

    Returns:
        One row per step.
    """
    df = pd.DataFrame([{c: r.get(c) for c in columns} for r in records], columns=list(columns))
    return df.round(decimals)


def reliability_from_record(record: dict[str, Any]) -> ReliabilityBins:
    """The reliability bins stored in a step record (its ``reliability_bins`` entry).

    Args:
        record: one step record, as :func:`read_records` returns it.

    Returns:
        :meth:`alseg_utils.calibration.ReliabilityBins.from_record` of it: edges [B + 1], and
        confidence, accuracy (NaN where a bin is empty) and count [B].

    Raises:
        ValueError: the record holds no complete ``reliability_bins`` entry.
    """
    from alseg_utils.calibration import ReliabilityBins  # torch; not needed by the rest of this module

    return ReliabilityBins.from_record(record)


def acquired_uncertainty(results_dir: str | Path, strategy: str, acquisition: str, step: int = 1,
                         field: str = "acquired_score") -> np.ndarray:
    """Uncertainty of the pixels acquired at ``step`` by every seed of one strategy/function (Fig. 4).

    Args:
        results_dir: a sweep's results folder (one sub-folder per run).
        strategy: the method (:func:`method_of`): "full", "region", "superpixel" or "superpixel_dominant".
        acquisition: the acquisition function.
        step: the acquisition step (1 = the first acquisition after the initial training).
        field: "acquired_score" (the acquisition function's pixel score) or "acquired_entropy".

    Returns:
        The values of all acquired pixels, [P] float32 (empty when no such run).
    """
    values = []
    for path in sorted(Path(results_dir).rglob(selection_name(step))):
        recs = RunFolder(path.parents[1]).read_records()
        if recs and method_of(recs[0]) == strategy and recs[0].get("acquisition") == acquisition \
                and not recs[0].get("reference"):
            values.append(read_npz_file(path, "a step's selection", "restore it, or move the run folder out of "
                                        "the results", keys=(field,))[field])
    return np.concatenate(values) if values else np.zeros(0, np.float32)


def acquired_certainty(results_dir: str | Path, step: int = 1, certain_below: float = 0.1) -> pd.DataFrame:
    """How uncertain the pixels each strategy and function sent to the oracle were (Fig. 4, as a table).

    Args:
        results_dir: a sweep's results folder (one sub-folder per run).
        step: the acquisition step (1 = the first acquisition after the initial training).
        certain_below: predictive entropy (nats) under which an acquired pixel counts as already certain.

    Returns:
        One row per (acquisition function, strategy) present, in the order of
        :data:`~alseg_utils.config.ACQUISITIONS` and :data:`~alseg_utils.config.METHODS` (``strategy``
        holds the method, :func:`method_of`), with the acquired pixels over all seeds, the % of them
        already certain and their median entropy (NaN when a run acquired nothing).
    """
    records = load_records(results_dir)
    rows = []
    for acq in [a for a in ACQUISITIONS if a in set(records.acquisition)]:
        for strategy in [s for s in METHODS if s in set(records.method)]:
            ent = acquired_uncertainty(results_dir, strategy, acq, step=step, field="acquired_entropy")
            rows.append({"acquisition": acq, "strategy": strategy, "acquired pixels": int(ent.size),
                         "certain (%)": round(100 * float((ent < certain_below).mean()), 1) if ent.size else math.nan,
                         "median entropy": round(float(np.median(ent)), 3) if ent.size else math.nan})
    return pd.DataFrame(rows)


HEADLINE_METRICS = ("f1", "jaccard")  # the paper's headline metrics: object F1 (GlaS), Jaccard (ISIC)


def primary_metric(cfg: RunConfig) -> str:
    """The headline accuracy metric of a configuration, which Fig. 1, Fig. 3 and ``alseg reproduce`` show.

    The first of :data:`HEADLINE_METRICS` among ``eval.targets`` (F1 for the GlaS files, Jaccard for the
    ISIC ones), else the first target, else ``"f1"``. Not the order of ``eval.targets`` alone: a run's
    ``config.json`` is written with sorted keys, which would put ``dice`` first.
    """
    targets = list(cfg.eval.targets)
    return next((m for m in HEADLINE_METRICS if m in targets), targets[0] if targets else "f1")


def write_table1(df: pd.DataFrame, cfg: RunConfig, folder: str | Path, cost: str = "pixels") -> tuple[Path, Path]:
    """Compute Table 1 for ``cfg``'s targets and write it as ``table1_<name>.csv`` and ``.md`` (atomically).

    With the pixel axis, the paired differences over seeds (:func:`alseg_utils.paired.paired_table` on
    :func:`primary_metric`, with ``eval.relative_target``) follow Table 1 as a section of the Markdown
    file and go to ``table1_<name>_paired.csv`` beside it (header only when no pair of methods is in
    the records; the section says why when the pairs cannot be formed, e.g. seeds differ).

    Args:
        df: the sweep's records (:func:`load_records`), reference runs included.
        cfg: ``eval.targets``, ``eval.relative_target`` and ``name`` are read.
        folder: where the files go (created when missing).
        cost: the effort axis (:func:`table1`); a click axis writes ``table1_<name>_<cost>.csv`` / ``.md``
            (without the paired section).

    Returns:
        The paths of the CSV and the Markdown file of Table 1.

    Raises:
        RunStateError: a click axis is asked of records that lack it.
    """
    table = table1(df, cfg.eval.targets, relative_target=cfg.eval.relative_target, cost=cost)
    folder = Path(folder)
    stem = f"table1_{cfg.name}" if cost == "pixels" else f"table1_{cfg.name}_{cost}"
    csv, md = folder / f"{stem}.csv", folder / f"{stem}.md"
    text = table1_markdown(table, cost)
    if cost == "pixels":
        paired, section = _paired_section(df, cfg)
        atomic_write_text(folder / f"{stem}_paired.csv", paired.round(4).to_csv(index=False))
        text += f"\n{section}" if section else ""
    atomic_write_text(csv, table.round(2).to_csv(index=False))
    atomic_write_text(md, text)
    return csv, md


def _paired_section(df: pd.DataFrame, cfg: RunConfig) -> tuple[pd.DataFrame, str]:
    """The paired table of ``cfg``'s primary metric and its Markdown section (a line saying why when refused)."""
    from alseg_utils.paired import TABLE_COLUMNS, paired_markdown, paired_table

    relative = cfg.eval.relative_target
    try:
        paired = paired_table(df, primary_metric(cfg), relative_target=relative)
    except ValueError as err:
        return pd.DataFrame(columns=list(TABLE_COLUMNS)), f"### Paired differences over seeds\n\nNot computed: {err}\n"
    return paired, paired_markdown(paired, relative)


def records_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Scalar fields of one run's records as a table (the input of the plot helpers), with ``method``."""
    return with_method(pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, (dict, list))}
                                     for r in records]))


def read_run_records(results_dir: str | Path, strategy: str, acquisition: str, seed: int) -> list[dict[str, Any]]:
    """The records of the (non-reference) run with this strategy (a method, :func:`method_of`), function and seed.

    Raises:
        FileNotFoundError: no such run under ``results_dir``.
    """
    for path in sorted(Path(results_dir).rglob(RECORDS_FILE)):
        recs = RunFolder(path.parent).read_records()
        if recs and not recs[0].get("reference") and (method_of(recs[0]), recs[0].get("acquisition"),
                                                      recs[0].get("seed")) == (strategy, acquisition, seed):
            return recs
    raise FileNotFoundError(f"no {strategy}/{acquisition}/seed {seed} run under {results_dir}")


def initial_record(results_dir: str | Path) -> dict[str, Any]:
    """The step-0 record of the first seed's AL runs (Fig. E.1): full images with BALD when there, else the first run.

    Every run of a seed starts from the same initial model (trained once per seed), so any of them
    gives the same step 0; a sweep of one strategy only (e.g. ``quick_dominant.yaml``) has no
    full-image run.

    Raises:
        FileNotFoundError: no AL (non-reference) run under ``results_dir``.
    """
    runs = load_records(results_dir)
    runs = runs[~runs.reference.astype(bool)]
    if not len(runs):
        raise FileNotFoundError(f"no active-learning run under {results_dir}")
    runs = runs[runs.seed == runs.seed.min()]
    prefer = runs[(runs.method == "full") & (runs.acquisition == "bald")]
    run = (prefer if len(prefer) else runs).iloc[0]
    return RunFolder(Path(results_dir) / str(run.run)).read_records()[0]  # with the dict fields load_records drops


def read_run_config(results_dir: str | Path) -> dict[str, Any]:
    """The configuration (as a plain mapping) stored with the first run under ``results_dir``.

    Raises:
        FileNotFoundError: no run folder (``config.json``) under ``results_dir``.
    """
    for path in sorted(Path(results_dir).rglob(CONFIG_FILE)):
        cfg = RunFolder(path.parent).read_config()["config"]
        cfg.pop("source", None)
        return cfg
    raise FileNotFoundError(f"no run (config.json) under {results_dir}")


def check_results(results_dir: str | Path) -> int:
    """Read every run record under ``results_dir`` once, so that a damaged one stops a report early.

    Args:
        results_dir: a sweep folder, a results folder or a run folder.

    Returns:
        The number of run folders (``steps.jsonl`` files) found.

    Raises:
        RunStateError: a ``steps.jsonl``, ``config.json`` or step-1 selection that cannot be read,
            named with what to do.
    """
    root = Path(results_dir)
    runs = sorted(root.rglob(RECORDS_FILE))
    for path in runs:
        RunFolder(path.parent).read_records()
    for path in sorted(root.rglob(CONFIG_FILE)):
        RunFolder(path.parent).read_config()
    for path in sorted(root.rglob(selection_name(1))):  # what Fig. 4 reads
        read_npz_file(path, "a step's selection", "restore it, or move the run folder out of the results")
    return len(runs)


def copy_records(results_dir: str | Path, dest: str | Path, selection_steps: Sequence[int] = (1,),
                 selection_fields: Sequence[str] | None = None) -> list[Path]:
    """Copy what the figure notebooks read (records, configs, selections) from a sweep's runs.

    Models and label stores are left behind. Used to ship ``notebooks/example_results``.

    Args:
        results_dir: a sweep's results folder (one sub-folder per run).
        dest: where the copy goes (same sub-folder names).
        selection_steps: the steps whose acquired-pixel arrays are copied (Fig. 4 uses step 1).
        selection_fields: keep only these arrays of each selection file (e.g. ``("acquired_score",
            "acquired_entropy")``, what Fig. 4 reads); None copies the files whole.

    Returns:
        The files written.
    """
    src, out = Path(results_dir), Path(dest)
    written = []
    patterns = [RECORDS_FILE, CONFIG_FILE] + [selection_name(s) for s in selection_steps]
    for pattern in patterns:
        for path in sorted(src.glob(f"*/{pattern}")):
            target = out / path.relative_to(src)
            if selection_fields is not None and path.suffix == ".npz":
                with np.load(path) as z:
                    kept = {k: z[k] for k in selection_fields if k in z.files}
                save_npz(target, kept)
            else:
                atomic_write_bytes(target, path.read_bytes())
            written.append(target)
    return written


def seed_summary(df: pd.DataFrame, metrics: Sequence[str],
                 by: Sequence[str] = ("method", "acquisition", "step"), effort: str | None = None) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each metric per group (what the figures draw).

    Groups are formed by ``by`` (by default one acquisition step of one method and function),
    so the seeds of a group are matched by step, not by labelled fraction: region runs of
    different seeds label slightly different pixel counts at the same step, and full-image runs
    do too when the images differ in size. ``fraction`` is the mean labelled fraction of the
    group and ``fraction_std`` its spread over seeds.

    Args:
        df: records from :func:`load_records`; rows with a true ``reference`` are left out. A
            ``method`` column (:func:`method_of`) is added when ``by`` asks for one and ``df`` has none.
        metrics: metric columns to summarise, e.g. ``("nll", "ece", "brier")``.
        by: grouping columns.
        effort: also average this running-effort column (e.g. ``labelled_polygon_clicks``) per group.

    Returns:
        One row per (group, metric), sorted, with the ``by`` columns and ``metric``, ``mean``,
        ``std`` (sample std, ddof=1; 0 for a single seed), ``seeds`` (rows averaged; NaN values
        are dropped first), ``fraction`` and ``fraction_std`` (labelled fraction, in [0, 1]), and
        with ``effort``: ``effort`` and ``effort_std`` (its mean and std over the seeds).

    Raises:
        ValueError: if a column of ``metrics``, ``by``, ``effort`` or ``labelled_fraction`` is missing.
    """
    df = with_method(df) if "method" in by else df
    extra = [effort] if effort is not None and effort != "labelled_fraction" else []
    missing = {*metrics, *by, "labelled_fraction", *extra} - set(df.columns)
    if missing:
        raise ValueError(f"seed_summary: the records lack columns {sorted(missing)}; load them with load_records")
    runs = df[~df["reference"].eq(True)] if "reference" in df.columns else df
    long = runs.melt(id_vars=[*by, "labelled_fraction", *extra], value_vars=list(metrics), var_name="metric")
    long = long.dropna(subset=["value"]).astype({"value": float, "labelled_fraction": float,
                                                 **dict.fromkeys(extra, float)})
    spread = {"effort": (effort, "mean"), "effort_std": (effort, "std")} if effort is not None else {}
    out = long.groupby([*by, "metric"], sort=True).agg(
        mean=("value", "mean"), std=("value", "std"), seeds=("value", "size"),
        fraction=("labelled_fraction", "mean"), fraction_std=("labelled_fraction", "std"), **spread).reset_index()
    stds = ["std", "fraction_std", *(["effort_std"] if spread else [])]
    out[stds] = out[stds].fillna(0.0)  # one seed: no spread
    return out
