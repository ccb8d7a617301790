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

from alseg_utils.config import ACQUISITIONS, METRICS, STRATEGIES, RunConfig
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


def load_records(results_dir: str | Path) -> pd.DataFrame:
    """All step records under ``results_dir`` (searched recursively) as one table.

    Args:
        results_dir: a run folder, a sweep's ``results/`` folder, or a sweep folder.

    Returns:
        One row per (run, step) with columns run, strategy, acquisition, seed, step,
        labelled_fraction, reference and the metric columns; scalar fields only.
    """
    rows = []
    for path in sorted(Path(results_dir).rglob(RECORDS_FILE)):
        for rec in RunFolder(path.parent).read_records():
            row = {k: v for k, v in rec.items() if not isinstance(v, (dict, list))}
            row["run"] = str(path.parent.relative_to(results_dir)) if path.parent != Path(results_dir) else "."
            rows.append(row)
    columns = ["run", "strategy", "acquisition", "seed", "step", "labelled_fraction", "reference"]
    if not rows:
        return pd.DataFrame(columns=columns + list(METRIC_COLUMNS))
    df = pd.DataFrame(rows)
    return df.sort_values(["strategy", "acquisition", "seed", "step"]).reset_index(drop=True)


def pixels_to_reach(fractions: Sequence[float], scores: Sequence[float], target: float) -> float:
    """First labelled-pixel fraction at which ``scores`` reaches ``target``.

    Args:
        fractions: labelled fraction at each step, [S], non-decreasing, in [0, 1].
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
) -> pd.DataFrame:
    """Table 1: % of pixels needed to reach each target, mean and std over seeds.

    Args:
        df: records from :func:`load_records` (AL runs; rows with ``reference`` true are the
            full-training-data runs and only serve relative targets).
        targets: metric name -> absolute targets in [0, 1].
        relative_target: also report reaching this fraction of the full-data score (mean over
            reference seeds) for each metric in ``targets``; None to skip.

    Returns:
        One row per (metric, target, strategy, acquisition) with columns mean_pct and std_pct
        (percent of pool pixels, over the seeds that reached it), reached and seeds.
    """
    is_ref = df.get("reference", pd.Series(False, index=df.index)).fillna(False).astype(bool)
    runs, refs = df[~is_ref], df[is_ref]
    rows = []
    for metric, values in targets.items():
        goals = [(f"{v:g}", float(v)) for v in values]
        if relative_target is not None and metric in refs and len(refs):
            full = float(refs[metric].mean())
            goals.append((f"{relative_target:.0%} of full ({relative_target * full:.3f})", relative_target * full))
        for label, goal in goals:
            rows.extend(_table_rows(runs, metric, label, goal))
    return pd.DataFrame(rows)


def _table_rows(runs: pd.DataFrame, metric: str, label: str, goal: float) -> list[dict[str, Any]]:
    rows = []
    for (strategy, acquisition), group in runs.groupby(["strategy", "acquisition"], sort=True):
        needed = [
            pixels_to_reach(g["labelled_fraction"], g[metric], goal)
            for _, g in group.sort_values("step").groupby("seed")
        ]
        got = np.array([n for n in needed if not math.isnan(n)]) * 100.0
        rows.append({
            "metric": metric, "target": label, "strategy": strategy, "acquisition": acquisition,
            "mean_pct": float(got.mean()) if got.size else math.nan,
            "std_pct": float(got.std()) if got.size else math.nan,
            "reached": int(got.size), "seeds": len(needed),
        })
    return rows


def table1_markdown(table: pd.DataFrame) -> str:
    """Render :func:`table1` like the paper: rows metric/target, columns acquisition, cells
    "full (region)", or "full (region; superpixel)" when superpixel runs are present."""
    lines = ["| metric | target | " + " | ".join(ACQUISITIONS) + " |", "|---|---|" + "---|" * len(ACQUISITIONS)]
    for (metric, target), group in table.groupby(["metric", "target"], sort=False):
        cells = [_cell(group, acq) for acq in ACQUISITIONS]
        lines.append(f"| {metric} | {target} | " + " | ".join(cells) + " |")
    lines.append("")
    shown = [s for s in STRATEGIES if s in set(table.get("strategy", []))] or ["full"]
    layout = shown[0] if len(shown) == 1 else f"{shown[0]} ({'; '.join(shown[1:])})"
    lines.append(f"Cells: % labelled pixels to reach the target, {layout.replace('full', 'full image', 1)}, "
                 "mean ± std over seeds; `–` never reached; `[k/n]` when only k of n seeds reached it; "
                 "an empty cell: that function was not in the sweep.")
    return "\n".join(lines) + "\n"


def _cell(group: pd.DataFrame, acquisition: str) -> str:
    parts = {}
    for strategy in STRATEGIES:
        row = group[(group.strategy == strategy) & (group.acquisition == acquisition)]
        if len(row):
            parts[strategy] = _fmt(row.iloc[0])
    first, *rest = list(parts.values()) or [""]
    return f"{first} ({'; '.join(rest)})" if rest else first


def _fmt(row: pd.Series) -> str:
    if row["reached"] == 0:
        return "–"
    text = f"{row['mean_pct']:.1f} ± {row['std_pct']:.1f}"
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
        strategy: "full", "region" or "superpixel".
        acquisition: the acquisition function.
        step: the acquisition step (1 = the first acquisition after the initial training).
        field: "acquired_score" (the acquisition function's pixel score) or "acquired_entropy".

    Returns:
        The values of all acquired pixels, [P] float32 (empty when no such run).
    """
    values = []
    for path in sorted(Path(results_dir).rglob(selection_name(step))):
        recs = RunFolder(path.parents[1]).read_records()
        if recs and recs[0].get("strategy") == strategy and recs[0].get("acquisition") == acquisition \
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
        :data:`~alseg_utils.config.ACQUISITIONS` and :data:`~alseg_utils.config.STRATEGIES`, with the
        acquired pixels over all seeds, the % of them already certain and their median entropy
        (NaN when a run acquired nothing).
    """
    records = load_records(results_dir)
    rows = []
    for acq in [a for a in ACQUISITIONS if a in set(records.acquisition)]:
        for strategy in [s for s in STRATEGIES if s in set(records.strategy)]:
            ent = acquired_uncertainty(results_dir, strategy, acq, step=step, field="acquired_entropy")
            rows.append({"acquisition": acq, "strategy": strategy, "acquired pixels": int(ent.size),
                         "certain (%)": round(100 * float((ent < certain_below).mean()), 1) if ent.size else math.nan,
                         "median entropy": round(float(np.median(ent)), 3) if ent.size else math.nan})
    return pd.DataFrame(rows)


def primary_metric(cfg: RunConfig) -> str:
    """The headline accuracy metric of a configuration: the first of ``eval.targets`` (``"f1"`` if none).

    The shipped params files list F1 first for GlaS and Jaccard first for ISIC, the paper's headline
    metrics; Fig. 1, Fig. 3 and the summary of ``alseg reproduce`` use this one.
    """
    return next(iter(cfg.eval.targets), "f1")


def write_table1(df: pd.DataFrame, cfg: RunConfig, folder: str | Path) -> tuple[Path, Path]:
    """Compute Table 1 for ``cfg``'s targets and write it as ``table1_<name>.csv`` and ``.md`` (atomically).

    Args:
        df: the sweep's records (:func:`load_records`), reference runs included.
        cfg: ``eval.targets``, ``eval.relative_target`` and ``name`` are read.
        folder: where the two files go (created when missing).

    Returns:
        The paths of the CSV and the Markdown file.
    """
    table = table1(df, cfg.eval.targets, relative_target=cfg.eval.relative_target)
    folder = Path(folder)
    csv, md = folder / f"table1_{cfg.name}.csv", folder / f"table1_{cfg.name}.md"
    atomic_write_text(csv, table.round(2).to_csv(index=False))
    atomic_write_text(md, table1_markdown(table))
    return csv, md


def records_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Scalar fields of one run's records as a table (the input of the plot helpers)."""
    return pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, (dict, list))} for r in records])


def read_run_records(results_dir: str | Path, strategy: str, acquisition: str, seed: int) -> list[dict[str, Any]]:
    """The records of the (non-reference) run with this strategy, function and seed.

    Raises:
        FileNotFoundError: no such run under ``results_dir``.
    """
    for path in sorted(Path(results_dir).rglob(RECORDS_FILE)):
        recs = RunFolder(path.parent).read_records()
        if recs and not recs[0].get("reference") and (recs[0].get("strategy"), recs[0].get("acquisition"),
                                                      recs[0].get("seed")) == (strategy, acquisition, seed):
            return recs
    raise FileNotFoundError(f"no {strategy}/{acquisition}/seed {seed} run under {results_dir}")


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
                 by: Sequence[str] = ("strategy", "acquisition", "step")) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each metric per group (what the figures draw).

    Groups are formed by ``by`` (by default one acquisition step of one strategy and function),
    so the seeds of a group are matched by step, not by labelled fraction: region runs of
    different seeds label slightly different pixel counts at the same step, and full-image runs
    do too when the images differ in size. ``fraction`` is the mean labelled fraction of the
    group and ``fraction_std`` its spread over seeds.

    Args:
        df: records from :func:`load_records`; rows with a true ``reference`` are left out.
        metrics: metric columns to summarise, e.g. ``("nll", "ece", "brier")``.
        by: grouping columns.

    Returns:
        One row per (group, metric), sorted, with the ``by`` columns and ``metric``, ``mean``,
        ``std`` (sample std, ddof=1; 0 for a single seed), ``seeds`` (rows averaged; NaN values
        are dropped first), ``fraction`` and ``fraction_std`` (labelled fraction, in [0, 1]).

    Raises:
        ValueError: if a column of ``metrics``, ``by`` or ``labelled_fraction`` is missing.
    """
    missing = {*metrics, *by, "labelled_fraction"} - set(df.columns)
    if missing:
        raise ValueError(f"seed_summary: the records lack columns {sorted(missing)}; load them with load_records")
    runs = df[~df["reference"].eq(True)] if "reference" in df.columns else df
    long = runs.melt(id_vars=[*by, "labelled_fraction"], value_vars=list(metrics), var_name="metric")
    long = long.dropna(subset=["value"]).astype({"value": float, "labelled_fraction": float})
    out = long.groupby([*by, "metric"], sort=True).agg(
        mean=("value", "mean"), std=("value", "std"), seeds=("value", "size"),
        fraction=("labelled_fraction", "mean"), fraction_std=("labelled_fraction", "std")).reset_index()
    out[["std", "fraction_std"]] = out[["std", "fraction_std"]].fillna(0.0)  # one seed: no spread
    return out
