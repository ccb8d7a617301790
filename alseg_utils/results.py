"""Run records: atomic files, reading a sweep back, and Table 1.

Every AL run writes ``steps.jsonl`` (one JSON record per acquisition step) in its output folder.
Figure notebooks read only these files (through :func:`load_records`).

Files alseg wrote are read back through :func:`read_json_file` and :func:`read_npz_file`: a file
that is truncated, overwritten or not what it should hold raises one
:class:`~alseg_utils.errors.RunStateError` line naming the file and what the user can do, never a
raw ``JSONDecodeError`` or ``BadZipFile``. Nothing is deleted or rewritten on the way.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alseg_utils.errors import RunStateError

# Columns of the per-step table every figure is drawn from.
METRIC_COLUMNS = (
    "f1", "object_dice", "object_hausdorff", "dice", "jaccard",
    "nll", "ece", "brier", "reliability", "resolution", "uncertainty",
)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    Args:
        path: destination; its folder is created when missing.
        data: the bytes to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a JSON record")


def one_line_reason(err: BaseException, limit: int = 100) -> str:
    """``"Type: first sentence"`` of an exception's message, cut to ``limit`` characters."""
    first = (str(err).strip().splitlines() or [""])[0].split(". ")[0]
    text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def damaged_file_error(path: str | Path, what: str, err: BaseException | str, advice: str) -> RunStateError:
    """The one-line error for a file alseg wrote that can no longer be read.

    Args:
        path: the file.
        what: what it holds, e.g. ``"the run state"``.
        err: the exception that reading it raised, or a short description of what is wrong.
        advice: what the user can do, e.g. ``"start a new --out folder"``.

    Returns:
        ``RunStateError("<path>: <what> is damaged or truncated (<reason>); <advice>")``, to raise.
    """
    reason = err if isinstance(err, str) else one_line_reason(err)
    return RunStateError(f"{path}: {what} is damaged or truncated ({reason}); {advice}")


def read_json_file(path: str | Path, what: str, advice: str, kind: type = dict) -> Any:
    """Parse a JSON file alseg wrote, checking that it holds a ``kind`` (dict or list).

    Args:
        path: the file; it must exist.
        what: what it holds (named in the error).
        advice: what the user can do when it is damaged.
        kind: the type the top level must have.

    Returns:
        The parsed value.

    Raises:
        RunStateError: the file is missing, unreadable, not JSON (e.g. truncated) or not a ``kind``.
    """
    path = Path(path)
    if not path.is_file():
        raise RunStateError(f"{path}: {what} is missing; {advice}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise damaged_file_error(path, what, err, advice) from None
    if not isinstance(value, kind):
        raise damaged_file_error(path, what, f"a JSON {type(value).__name__}, not a {kind.__name__}", advice)
    return value


def read_npz_file(path: str | Path, what: str, advice: str, keys: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Read every array of a ``.npz`` file alseg wrote (no pickles).

    Args:
        path: the file; it must exist.
        what: what it holds (named in the error).
        advice: what the user can do when it is damaged.
        keys: arrays the file must hold.

    Returns:
        Name -> array, all read into memory.

    Raises:
        RunStateError: the file is missing, truncated, corrupt, not an ``.npz`` or lacks one of ``keys``.
    """
    path = Path(path)
    if not path.is_file():
        raise RunStateError(f"{path}: {what} is missing; {advice}")
    try:
        with open(path, "rb") as fh, np.load(fh) as z:  # own handle: np.load leaks its own on a bad zip
            arrays = {k: z[k] for k in z.files}  # a plain .npy has no context manager: TypeError
    except Exception as err:  # noqa: BLE001 - zipfile, zlib, numpy and OS errors all mean "cannot be read"
        raise damaged_file_error(path, what, err, advice) from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise damaged_file_error(path, what, f"no {missing[0]!r} array", advice)
    return arrays


def git_commit(repo: str | Path | None = None) -> str:
    """The current git commit of the project (``"unknown"`` outside a git checkout)."""
    where = Path(repo) if repo else Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def write_records(run_dir: str | Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write all step records of a run as ``run_dir/steps.jsonl`` (atomic rewrite).

    Args:
        run_dir: the run's output folder.
        records: one mapping per finished step, in step order.

    Returns:
        The path written.
    """
    path = Path(run_dir) / "steps.jsonl"
    lines = [json.dumps(r, sort_keys=True, default=_jsonable) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


RECORDS_ADVICE = ("its records are also in the run's state.json: rerun the run's `alseg run` command with "
                  "--recover to write it again, or move the run folder out of the results")


def read_records(run_dir: str | Path, advice: str = RECORDS_ADVICE) -> list[dict[str, Any]]:
    """Read ``run_dir/steps.jsonl`` (empty list when the run has no finished step).

    Args:
        run_dir: the run folder.
        advice: what the user can do when the file is damaged (part of the error).

    Raises:
        RunStateError: a line is not a JSON record (a truncated or edited file), or the steps do
            not count 0, 1, 2, ...
    """
    path = Path(run_dir) / "steps.jsonl"
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise damaged_file_error(path, "the step record file", err, advice) from None
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            reason = f"line {n}: {one_line_reason(err)}"
            raise damaged_file_error(path, "the step record file", reason, advice) from None
        if not isinstance(rec, dict) or rec.get("step") != len(records):
            raise damaged_file_error(path, "the step record file", f"line {n} is not the record of step {len(records)}",
                                     advice)
        records.append(rec)
    return records


def load_records(results_dir: str | Path) -> pd.DataFrame:
    """All step records under ``results_dir`` (searched recursively) as one table.

    Args:
        results_dir: a run folder, a sweep's ``results/`` folder, or a sweep folder.

    Returns:
        One row per (run, step) with columns run, strategy, acquisition, seed, step,
        labelled_fraction, reference and the metric columns; scalar fields only.
    """
    rows = []
    for path in sorted(Path(results_dir).rglob("steps.jsonl")):
        for rec in read_records(path.parent):
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
    targets: dict[str, Sequence[float]],
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
    lines = ["| metric | target | " + " | ".join(_ACQ) + " |", "|---|---|" + "---|" * len(_ACQ)]
    for (metric, target), group in table.groupby(["metric", "target"], sort=False):
        cells = [_cell(group, acq) for acq in _ACQ]
        lines.append(f"| {metric} | {target} | " + " | ".join(cells) + " |")
    lines.append("")
    shown = [s for s in _STRATEGIES if s in set(table.get("strategy", []))] or ["full"]
    layout = shown[0] if len(shown) == 1 else f"{shown[0]} ({'; '.join(shown[1:])})"
    lines.append(f"Cells: % labelled pixels to reach the target, {layout.replace('full', 'full image', 1)}, "
                 "mean ± std over seeds; `–` never reached; `[k/n]` when only k of n seeds reached it; "
                 "an empty cell: that function was not in the sweep.")
    return "\n".join(lines) + "\n"


_ACQ = ("random", "varratio", "entropy", "bald")
_STRATEGIES = ("full", "region", "superpixel")


def _cell(group: pd.DataFrame, acquisition: str) -> str:
    parts = {}
    for strategy in _STRATEGIES:
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


def reliability_from_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
    """The reliability bins stored in a record: confidence, accuracy and count per bin, [B] each."""
    bins = record["reliability_bins"]
    return {k: np.asarray(bins[k], dtype=float) for k in ("confidence", "accuracy", "count")}


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
    for path in sorted(Path(results_dir).rglob(f"step_{step:03d}.npz")):
        recs = read_records(path.parents[1])
        if recs and recs[0].get("strategy") == strategy and recs[0].get("acquisition") == acquisition \
                and not recs[0].get("reference"):
            values.append(read_npz_file(path, "a step's selection", "restore it, or move the run folder out of "
                                        "the results", keys=(field,))[field])
    return np.concatenate(values) if values else np.zeros(0, np.float32)


def records_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Scalar fields of one run's records as a table (the input of the plot helpers)."""
    return pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, (dict, list))} for r in records])


def read_run_records(results_dir: str | Path, strategy: str, acquisition: str, seed: int) -> list[dict[str, Any]]:
    """The records of the (non-reference) run with this strategy, function and seed.

    Raises:
        FileNotFoundError: no such run under ``results_dir``.
    """
    for path in sorted(Path(results_dir).rglob("steps.jsonl")):
        recs = read_records(path.parent)
        if recs and not recs[0].get("reference") and (recs[0].get("strategy"), recs[0].get("acquisition"),
                                                      recs[0].get("seed")) == (strategy, acquisition, seed):
            return recs
    raise FileNotFoundError(f"no {strategy}/{acquisition}/seed {seed} run under {results_dir}")


def read_run_config(results_dir: str | Path) -> dict[str, Any]:
    """The configuration (as a plain mapping) stored with the first run under ``results_dir``.

    Raises:
        FileNotFoundError: no run folder (``config.json``) under ``results_dir``.
    """
    for path in sorted(Path(results_dir).rglob("config.json")):
        cfg = read_run_config_file(path)["config"]
        cfg.pop("source", None)
        return cfg
    raise FileNotFoundError(f"no run (config.json) under {results_dir}")


CONFIG_ADVICE = "restore it from a copy, or move the run folder out of the results (its records stay as they are)"


def read_run_config_file(path: str | Path, advice: str = CONFIG_ADVICE) -> dict[str, Any]:
    """A run folder's ``config.json``: ``fingerprint``, ``config`` (a mapping), ``git_commit``.

    Raises:
        RunStateError: the file is missing, not JSON, or lacks its ``fingerprint`` or ``config``.
    """
    stored = read_json_file(path, "the run's configuration record", advice)
    if not isinstance(stored.get("config"), dict) or not isinstance(stored.get("fingerprint"), str):
        raise damaged_file_error(path, "the run's configuration record", "no fingerprint or config", advice)
    return stored


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
    runs = sorted(root.rglob("steps.jsonl"))
    for path in runs:
        read_records(path.parent)
    for path in sorted(root.rglob("config.json")):
        read_run_config_file(path)
    for path in sorted(root.rglob("selections/step_001.npz")):  # what Fig. 4 reads
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
    patterns = ["steps.jsonl", "config.json"] + [f"selections/step_{s:03d}.npz" for s in selection_steps]
    for pattern in patterns:
        for path in sorted(src.glob(f"*/{pattern}")):
            target = out / path.relative_to(src)
            if selection_fields is not None and path.suffix == ".npz":
                with np.load(path) as z:
                    kept = {k: z[k] for k in selection_fields if k in z.files}
                buf = io.BytesIO()
                np.savez_compressed(buf, **kept)
                atomic_write_bytes(target, buf.getvalue())
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
