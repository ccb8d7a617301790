"""Does a fresh sweep reproduce committed records? A statistical check, for another machine.

A rerun gives the committed records bit for bit only on the same CPU type and thread count; elsewhere
the last bits of the arithmetic differ and training drifts. ``alseg check-reproduction FRESH COMMITTED``
(:func:`check_reproduction`) therefore compares the two sweeps statistically, on the primary metric
(:func:`~alseg_utils.results.primary_metric` of the committed configuration):

* **seed bands**: for every (method, acquisition function, step), and for the full-data reference,
  the fresh mean over seeds must lie within ``committed mean ± max(BAND_SDS x SE, BAND_FLOOR)``.
  ``SE = s x sqrt(1 / n_fresh + 1 / n_committed)`` is the standard error of the difference of two
  means of independent seeds, with ``s`` the standard deviation over seeds of the committed records,
  *pooled over every point of the method* (``sum (n - 1) s_i^2 / sum (n - 1)``; the reference is a
  method of its own). Only the committed side: the question is whether the fresh sweep is a new draw
  of the committed experiment, and a fresh sweep of another, noisier setting must not widen the
  bands it is tested against. Three seeds estimate one point's spread with 2 degrees of freedom,
  far too few to bound it alone; the method's points share one training procedure and one data split
  per seed, so their spreads are pooled. :data:`BAND_SDS` is 4: a fresh sweep whose runs diverged
  completely (new draws of every seed, as on another CPU) still passes every point of the quick grid
  in 98% of simulated sweeps, where a band of 2 standard deviations of each point would pass 31%
  (``tests/test_reproduction.py`` simulates it). The floor :data:`BAND_FLOOR` (0.02 of the metric)
  keeps points whose seeds agree (one seed, say) from failing on last-bit drift. The price: with 3
  seeds a point detects only a shift of about ``4 x 0.82 s`` (0.10-0.14 F1 on the quick grid); a
  shift of the whole curve moves many points and is caught earlier. Measured on real sweeps
  (``benchmarks/records/reproduction``): two compute threads per job PASS, a 20-epoch ceiling FAILs.
* **paired intervals**: every committed AULC difference (``region − full``, ``superpixel − region``,
  ... per function, :func:`alseg_utils.paired.paired_table`) must have a Student t interval over
  seeds that overlaps the fresh one, or lies at most :data:`INTERVAL_GAP` (0.01) from it, so that
  point intervals (one seed, or seeds that agree) do not fail on drift either; a one-seed interval is
  its mean. The t interval, not the table's percentile bootstrap: over 3 seeds the bootstrap covers
  about 76%, and two bootstrap intervals of new draws of the same 8 differences all overlap in only
  about 70% of simulated sweeps, two t intervals in 96-99%.
* **the same grid**: both sides must hold the same runs (method, function, seed, reference) with the
  same steps; otherwise the check refuses with a :class:`~alseg_utils.errors.RunStateError`.

Runs that diverge completely from one machine to another are new draws of their seeds: the fresh
mean then differs from the committed one by about ``s x sqrt(2 / n)``, which is what the bands are
sized for. A FAIL says that the fresh sweep is not a new draw of the same experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alseg_utils.errors import ConfigError, RunStateError
from alseg_utils.results import HEADLINE_METRICS, load_records, primary_metric, read_run_config, with_method

BAND_SDS = 4.0  # the band's half-width in standard errors of the difference of the two means
BAND_FLOOR = 0.02  # the smallest half-width of a band, in metric units
INTERVAL_GAP = 0.01  # two paired intervals this close (metric units) count as overlapping
MAX_LISTED = 10  # failing items printed before "and N more"
REFERENCE = "reference"  # the method name of the full-data reference runs in the band table


def results_folder(path: str | Path) -> Path:
    """The results folder of a sweep folder (one with ``sweep.json`` and ``results/``), or ``path`` itself.

    Raises:
        RunStateError: ``path`` is not a folder.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunStateError(f"{path}: no such folder; give a sweep folder such as runs/quick or a folder of "
                            "run results")
    return path / "results" if (path / "sweep.json").is_file() and (path / "results").is_dir() else path


def load_side(path: str | Path, which: str) -> pd.DataFrame:
    """The step records of one side of the check, with a ``method`` column.

    Args:
        path: a sweep folder or a results folder.
        which: ``"fresh"`` or ``"committed"`` (for the error message).

    Raises:
        RunStateError: no such folder, or no ``steps.jsonl`` under it.
    """
    records = load_records(results_folder(path))
    if not len(records):
        raise RunStateError(f"{path}: no run records (steps.jsonl) under it; give the {which} sweep folder "
                            "or its results folder")
    return with_method(records)


def _is_reference(records: pd.DataFrame) -> pd.Series:
    """Which rows are of full-data reference runs (``reference`` true), [rows] bool."""
    return records["reference"].eq(True) if "reference" in records.columns else pd.Series(False, index=records.index)


def run_grid(records: pd.DataFrame) -> dict[str, tuple[int, ...]]:
    """Run (``method/acquisition/s<seed>``, or ``reference/s<seed>``) -> its steps, in order."""
    seed = "/s" + records["seed"].astype(str)
    key = (REFERENCE + seed).where(_is_reference(records),
                                   records["method"].astype(str) + "/" + records["acquisition"].astype(str) + seed)
    return {k: tuple(sorted(int(s) for s in g)) for k, g in records["step"].groupby(key, sort=True)}


def _listed(names: list[str], limit: int = 4) -> str:
    """The first ``limit`` names, then ``and N more``."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_same_grid(fresh: pd.DataFrame, committed: pd.DataFrame) -> None:
    """Refuse two sweeps that do not hold the same runs with the same steps.

    Raises:
        RunStateError: one line naming the runs only one side holds, or whose steps differ.
    """
    f, c = run_grid(fresh), run_grid(committed)
    parts = []
    if only := sorted(set(c) - set(f)):
        parts.append(f"only committed: {_listed(only)}")
    if only := sorted(set(f) - set(c)):
        parts.append(f"only fresh: {_listed(only)}")
    if steps := sorted(k for k in set(f) & set(c) if f[k] != c[k]):
        parts.append(f"other steps: {_listed([f'{k} (fresh {len(f[k])}, committed {len(c[k])})' for k in steps])}")
    if parts:
        raise RunStateError("the fresh and committed records hold different runs (" + "; ".join(parts) + "); run "
                            "the fresh sweep with the committed params file and seeds")


def reproduction_metric(committed: str | Path, records: pd.DataFrame) -> str:
    """The committed sweep's primary metric: from its ``config.json``, else the first headline metric it holds.

    Raises:
        RunStateError: no config and no values of :data:`~alseg_utils.results.HEADLINE_METRICS`.
    """
    from alseg_utils.config import config_from_dict

    try:
        return primary_metric(config_from_dict(read_run_config(results_folder(committed))))
    except (FileNotFoundError, ConfigError):  # records without a config, or of an older config: by the values
        pass
    for metric in HEADLINE_METRICS:
        if metric in records.columns and records[metric].notna().any():
            return metric
    raise RunStateError(f"{committed}: no config.json and no {' or '.join(HEADLINE_METRICS)} values; pass --metric")


def _point_stats(records: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std (ddof=1, 0 for one seed) and seeds of ``metric`` per (method, acquisition, step); reference apart."""
    ref = _is_reference(records)
    keyed = records.assign(method=records["method"].where(~ref, REFERENCE), value=records[metric].astype(float))
    out = keyed.groupby(["method", "acquisition", "step"], sort=True)["value"].agg(["mean", "std", "count"])
    return out.assign(std=out["std"].fillna(0.0))


def pooled_std(stats: pd.DataFrame) -> pd.Series:
    """Per method: the standard deviation over seeds pooled over its points, ``sum (n-1) s^2 / sum (n-1)``.

    Args:
        stats: rows of :func:`_point_stats` (of one or both sides), index (method, acquisition, step).

    Returns:
        One value per method (0 where no point has two seeds).
    """
    dof = (stats["count"] - 1).clip(lower=0)
    ss = (dof * stats["std"] ** 2).groupby(level="method").sum()
    n = dof.groupby(level="method").sum()
    return (ss / n.where(n > 0)).fillna(0.0) ** 0.5


def seed_bands(fresh: pd.DataFrame, committed: pd.DataFrame, metric: str, band_sds: float = BAND_SDS,
               floor: float = BAND_FLOOR) -> pd.DataFrame:
    """Every mean-curve point (and the reference): fresh and committed mean, the band, and whether it holds.

    Args:
        fresh: the fresh records (:func:`load_side`), the same grid as ``committed``.
        committed: the committed records.
        metric: the score column compared.
        band_sds: the half-width in standard errors of the difference of the two means.
        floor: the smallest half-width.

    Returns:
        One row per (method, acquisition, step), method ``reference`` for the full-data runs, with
        fresh_mean, committed_mean, fresh_std, committed_std, pooled_std (of the method's committed points),
        half_width and within (NaN on both sides counts as within, on one side as outside).
    """
    c, f = _point_stats(committed, metric), _point_stats(fresh, metric)
    out = pd.DataFrame({"committed_mean": c["mean"], "committed_std": c["std"], "committed_n": c["count"]}).join(
        pd.DataFrame({"fresh_mean": f["mean"], "fresh_std": f["std"], "fresh_n": f["count"]}), how="outer")
    pooled = pooled_std(c)  # the committed experiment's noise: a noisier other setting does not widen it
    out["pooled_std"] = pooled.reindex(out.index.get_level_values("method")).to_numpy()
    se = out["pooled_std"] * (1 / out["committed_n"] + 1 / out["fresh_n"]) ** 0.5
    half = (band_sds * se).fillna(0.0).clip(lower=floor)
    gap = (out["fresh_mean"] - out["committed_mean"]).abs()
    both_nan = out["fresh_mean"].isna() & out["committed_mean"].isna()
    out = out.drop(columns=["committed_n", "fresh_n"])
    return out.assign(half_width=half, within=(gap <= half) | both_nan).reset_index()


def _aulc_intervals(records: pd.DataFrame, metric: str, which: str) -> pd.DataFrame:
    """(comparison, acquisition) -> low, high of the AULC t interval (the mean for one seed) of one side."""
    from alseg_utils.paired import paired_table

    try:
        table = paired_table(records, metric)
    except ValueError as err:
        raise RunStateError(f"the {which} records: {err}") from None
    low, high = table["t_low"].fillna(table["mean"]), table["t_high"].fillna(table["mean"])
    return pd.DataFrame({"comparison": table["comparison"], "acquisition": table["acquisition"],
                         "low": low, "high": high})


def interval_overlaps(fresh: pd.DataFrame, committed: pd.DataFrame, metric: str,
                      gap: float = INTERVAL_GAP) -> pd.DataFrame:
    """Every paired AULC interval of both sides, and whether they overlap (at most ``gap`` apart).

    Returns:
        One row per (comparison, acquisition) with committed_low / committed_high, fresh_low /
        fresh_high and overlap (NaN on both sides, no shared range, counts as overlapping).
    """
    c, f = _aulc_intervals(committed, metric, "committed"), _aulc_intervals(fresh, metric, "fresh")
    out = c.merge(f, on=["comparison", "acquisition"], how="outer", suffixes=("_committed", "_fresh"))
    out = out.rename(columns={"low_committed": "committed_low", "high_committed": "committed_high",
                              "low_fresh": "fresh_low", "high_fresh": "fresh_high"})
    near = (out["committed_low"] - gap <= out["fresh_high"]) & (out["fresh_low"] - gap <= out["committed_high"])
    both_nan = out["committed_low"].isna() & out["fresh_low"].isna()
    return out.assign(overlap=near | both_nan)


@dataclass
class ReproductionCheck:
    """What :func:`check_reproduction` found.

    Attributes:
        metric: the score compared.
        bands: :func:`seed_bands`.
        intervals: :func:`interval_overlaps`.
    """

    metric: str
    bands: pd.DataFrame
    intervals: pd.DataFrame

    @property
    def passed(self) -> bool:
        """Every point within its band and every paired interval overlapping."""
        return bool(self.bands["within"].all() and self.intervals["overlap"].all())

    def lines(self, max_listed: int = MAX_LISTED) -> list[str]:
        """One line per failing item (at most ``max_listed``, then ``and N more``), then the verdict."""
        failing = [_band_line(r) for r in self.bands[~self.bands["within"]].itertuples()]
        failing += [_interval_line(r, self.metric) for r in self.intervals[~self.intervals["overlap"]].itertuples()]
        more = [f"  and {len(failing) - max_listed} more"] if len(failing) > max_listed else []
        shown = failing[:max_listed] + more
        return shown + [self.verdict()]

    def verdict(self) -> str:
        """``reproduction check: PASS — 64/64 mean-curve points within the committed seed bands, 8/8 ...``."""
        n, m = len(self.bands), len(self.intervals)
        inside, overlap = int(self.bands["within"].sum()), int(self.intervals["overlap"].sum())
        if self.passed:
            pairs = f"{overlap}/{m} paired intervals overlap" if m else "no pair of methods to compare"
            return f"reproduction check: PASS \N{EM DASH} {inside}/{n} mean-curve points within the committed " \
                   f"seed bands, {pairs}"
        return f"reproduction check: FAIL \N{EM DASH} {n - inside}/{n} mean-curve points outside the committed " \
               f"seed bands, {m - overlap}/{m} paired intervals do not overlap"


def _band_line(row: Any) -> str:
    run = REFERENCE if row.method == REFERENCE else f"{row.method}/{row.acquisition}"
    where = f"{run} step {row.step}"
    return f"  {where}: fresh mean {row.fresh_mean:.3f} outside the committed {row.committed_mean:.3f} " \
           f"\N{PLUS-MINUS SIGN} {row.half_width:.3f}"


def _interval_line(row: Any, metric: str) -> str:
    return f"  {row.comparison} {row.acquisition} AULC {metric}: fresh [{row.fresh_low:+.3f}, {row.fresh_high:+.3f}] " \
           f"does not overlap the committed [{row.committed_low:+.3f}, {row.committed_high:+.3f}]"


def check_reproduction(fresh: str | Path, committed: str | Path, metric: str | None = None) -> ReproductionCheck:
    """Compare a fresh sweep with committed records: seed bands of the mean curves and paired intervals.

    Args:
        fresh: the fresh sweep folder (``runs/<name>``) or its results folder.
        committed: the committed records (e.g. ``notebooks/example_results/quick``) or a sweep folder.
        metric: the score compared; None: :func:`reproduction_metric` of the committed side.

    Returns:
        The check; :meth:`ReproductionCheck.lines` says what failed and gives the verdict.

    Raises:
        RunStateError: a folder is missing or holds no records, the two grids differ, the metric is
            missing on a side, or a side's methods were run with different seeds.
    """
    new, old = load_side(fresh, "fresh"), load_side(committed, "committed")
    check_same_grid(new, old)
    metric = metric or reproduction_metric(committed, old)
    for which, records in (("fresh", new), ("committed", old)):
        if metric not in records.columns or records[metric].isna().all():
            raise RunStateError(f"the {which} records have no {metric!r} values; pass --metric with a metric both hold")
    return ReproductionCheck(metric, seed_bands(new, old, metric), interval_overlaps(new, old, metric))
