"""Batch runner: every strategy x acquisition x seed of a params file, one notebook run per job.

``alseg sweep params/<file>.yaml`` expands the ``sweep`` section of a params file into jobs
(:func:`expand_jobs`) and executes notebook 01 (full-image AL, and the full-data reference) or 02
(region AL: square windows, superpixels, or ``superpixel_dominant``: superpixels labelled with one
class each) once per job through papermill (:func:`run_job`). The sweep
folder ``runs/<name>/`` holds, per job, the executed notebook ``<job>.ipynb`` (the record of that run,
with the error in it when the job failed), a ``<job>.done`` marker written only after success, and the job's results
under ``results/<job>/``. A rerun skips jobs that have a marker, so an interrupted or partly failed
sweep resumes where it stopped (delete a marker to run its job again). ``sweep.json`` records the
plan and the configuration fingerprint; a folder made for another configuration is refused.

Jobs run inline (``workers=1``), in a local process pool (``workers > 1``), or as Ray tasks on an
existing cluster or a local Ray instance (``executor="ray"``); nothing here schedules jobs itself.
``alseg report`` (:func:`run_report`) then runs notebooks 03-05 on the results.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import alseg_utils
from alseg_utils.config import EFFORT_AXES, METHODS, SUPERPIXEL_DOMINANT, RunConfig, load_config
from alseg_utils.errors import AlsegError, ConfigError, RunStateError
from alseg_utils.notebooks import run_papermill
from alseg_utils.results import atomic_write_text

__all__ = [
    "FULL_NOTEBOOK", "REGION_NOTEBOOK", "REPORT_NOTEBOOKS", "Job", "JobOutcome", "atomic_write_text",
    "check_job_configs", "default_notebooks_dir", "expand_jobs", "format_summary", "run_job", "run_report", "run_sweep",
]

FULL_NOTEBOOK = "01_full_image_al.ipynb"  # strategy "full" and the full-data reference
REGION_NOTEBOOK = "02_region_al.ipynb"  # strategies "region", "superpixel" and "superpixel_dominant"
REPORT_NOTEBOOKS = ("03_calibration.ipynb", "04_uncertainty_histograms.ipynb", "05_results.ipynb")
JOB_PARAMETERS = ("params_file", "strategy", "acquisition", "seed", "out_dir",
                  "full_data_reference", "steps", "progress")  # what every job notebook must declare
REPORT_PARAMETERS = ("results_dir", "figures_dir")  # what every report notebook must declare
COST_NOTEBOOK = "05_results.ipynb"  # the report notebook that takes the effort axis (parameter `cost`)
MAX_ERROR_CHARS = 300  # one-line errors are cut to this length


@dataclass(frozen=True)
class Job:
    """One notebook execution of a sweep.

    Attributes:
        name: unique within the sweep, e.g. ``"region-bald-s0"`` or ``"reference-s1"``.
        notebook: file name of the notebook it runs (:data:`FULL_NOTEBOOK` or
            :data:`REGION_NOTEBOOK`).
        parameters: papermill parameters: ``params_file`` and ``out_dir`` (absolute path strings),
            ``strategy``, ``acquisition``, ``seed``, ``full_data_reference``, ``steps`` (-1 = the
            params file's ``active.steps``; the notebooks' own default is shorter) and ``progress``.
    """

    name: str
    notebook: str
    parameters: dict[str, Any] = field(hash=False)


@dataclass
class JobOutcome:
    """What happened to one job in one call of :func:`run_sweep` or :func:`run_job`.

    Attributes:
        job: the job.
        status: ``"done"`` (ran and succeeded), ``"skipped"`` (finished by an earlier call) or
            ``"failed"``.
        error: one line saying what went wrong (empty unless failed).
        seconds: wall time spent on the job by this call (0 when skipped).
    """

    job: Job
    status: str
    error: str = ""
    seconds: float = 0.0


def expand_jobs(cfg: RunConfig, params_file: str | Path, sweep_dir: str | Path) -> list[Job]:
    """Expand ``cfg.sweep`` into jobs: strategies x acquisitions x seeds (+ references).

    A strategy is any name of :data:`~alseg_utils.config.METHODS`: ``superpixel_dominant`` jobs
    (``superpixel_dominant-<function>-s<seed>``) run notebook 02 with that strategy name, which the
    config reads as strategy ``superpixel`` with ``superpixel_label: dominant``.

    Seeds vary slowest, so a sweep cut short has complete comparisons for its first seeds. Each seed
    starts with its full-data reference job (``"reference-s{seed}"``: notebook 01, strategy
    ``"full"``, acquisition ``"random"``) when ``cfg.sweep.full_data_reference`` is set.

    Args:
        cfg: the validated configuration of the sweep.
        params_file: the params file every job reads (made absolute).
        sweep_dir: the sweep folder; job ``j`` writes its results to ``sweep_dir/results/j``.

    Returns:
        The jobs, names unique.
    """
    params = str(Path(params_file).resolve())
    results = Path(sweep_dir).resolve() / "results"
    jobs = []
    for seed in cfg.sweep.seeds:
        if cfg.sweep.full_data_reference:
            jobs.append(_make_job(f"reference-s{seed}", "full", "random", seed, params, results, True))
        for strategy in cfg.sweep.strategies:
            for acquisition in cfg.sweep.acquisitions:
                name = f"{strategy}-{acquisition}-s{seed}"
                jobs.append(_make_job(name, strategy, acquisition, seed, params, results, False))
    return jobs


def check_job_configs(params_file: str | Path, cfg: RunConfig) -> None:
    """Load each strategy's job config as its notebook will, and check it runs what its name says.

    A params file that sets ``active.superpixel_label: dominant`` itself would turn every
    ``superpixel`` job into a dominant-class one (and fail the other strategies' jobs), so it is
    refused here, before any job runs.

    Raises:
        ConfigError: a job's config is invalid, or a job would run another method than its name.
    """
    for strategy in cfg.sweep.strategies:
        try:
            job = load_config(params_file, {"active.strategy": strategy})
        except ConfigError as err:
            raise ConfigError(f"{err} (in the sweep's {strategy!r} jobs)") from None
        if job.active.method_name() != strategy:
            raise ConfigError(f"{params_file}: sweep.strategies: the {strategy!r} jobs would run "
                              f"{job.active.method_name()!r} (active.superpixel_label: dominant applies to every "
                              f"job); leave superpixel_label at mask and list {SUPERPIXEL_DOMINANT} in "
                              "sweep.strategies")


def _make_job(name: str, strategy: str, acquisition: str, seed: int, params_file: str,
              results: Path, reference: bool) -> Job:
    notebook = FULL_NOTEBOOK if strategy == "full" else REGION_NOTEBOOK
    parameters = {"params_file": params_file, "strategy": strategy, "acquisition": acquisition,
                  "seed": seed, "out_dir": str(results / name), "full_data_reference": reference,
                  "steps": -1, "progress": False}
    return Job(name=name, notebook=notebook, parameters=parameters)


def _done_marker(sweep_dir: Path, job: Job) -> Path:
    return sweep_dir / f"{job.name}.done"


def _executed_notebook(sweep_dir: Path, job: Job) -> Path:
    return sweep_dir / f"{job.name}.ipynb"


def _one_line_error(err: BaseException) -> str:
    """``"Type: first line of the message"``, with the cell for notebook errors, cut to length."""
    import papermill

    if isinstance(err, papermill.PapermillExecutionError):
        first = (str(err.evalue).strip().splitlines() or [""])[0]
        text = f"{err.ename}: {first} (in cell [{err.exec_count}])"
    else:
        first = (str(err).strip().splitlines() or [""])[0]
        text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _execute(notebook: Path, output: Path, parameters: dict[str, Any], cwd: Path,
             kernel_name: str | None) -> str:
    """Run ``notebook`` into ``output``; return ``""`` or the one-line error, never raise.

    Through :func:`alseg_utils.notebooks.run_papermill`: papermill writes ``output`` as cells run,
    so a failed notebook keeps its error in place.
    """
    try:
        run_papermill(notebook, output, parameters, cwd=cwd, kernel_name=kernel_name)
    except Exception as err:  # noqa: BLE001 - any failure is recorded, never raised
        return _one_line_error(err)
    return ""


def run_job(job: Job, notebooks_dir: str | Path, sweep_dir: str | Path,
            kernel_name: str | None = None) -> JobOutcome:
    """Execute one job's notebook with papermill, unless an earlier call finished it.

    The executed notebook is written to ``sweep_dir/<job>.ipynb`` as papermill goes, so a failed
    job's notebook keeps the error. Only after success is ``sweep_dir/<job>.done`` written
    (atomically; JSON with the seconds taken and the finish time).

    Args:
        job: the job to run.
        notebooks_dir: folder holding ``job.notebook``; the kernel's working directory.
        sweep_dir: the sweep folder (created when missing).
        kernel_name: Jupyter kernel to run; ``None`` uses the one named in the notebook.

    Returns:
        The outcome: ``"skipped"`` when the marker exists, else ``"done"`` or ``"failed"`` with a
        one-line error. Exceptions of the notebook or of papermill are caught, never raised.
    """
    sweep_dir = Path(sweep_dir)
    marker = _done_marker(sweep_dir, job)
    if marker.exists():
        return JobOutcome(job, "skipped")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    error = _execute(Path(notebooks_dir) / job.notebook, _executed_notebook(sweep_dir, job),
                     job.parameters, Path(notebooks_dir), kernel_name)
    if error:
        return JobOutcome(job, "failed", error, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(marker, json.dumps({"seconds": round(seconds, 3), "finished": finished}) + "\n")
    return JobOutcome(job, "done", "", seconds)


def _repo_root() -> Path:
    return Path(alseg_utils.__file__).resolve().parents[1]


def default_notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the source checkout this package was installed from.

    Returns:
        Its path.

    Raises:
        AlsegError: there is no such folder (e.g. a non-editable install).
    """
    path = _repo_root() / "notebooks"
    if not path.is_dir():
        raise AlsegError(f"notebooks folder not found at {path}: install alseg from a source checkout "
                         "(pip install -e .) or pass the folder that holds the notebooks")
    return path


def _check_notebooks(notebooks_dir: Path, names: Iterable[str], required: Iterable[str]) -> None:
    """Raise :class:`AlsegError` unless each notebook exists and declares the ``required`` parameters."""
    import papermill

    for name in sorted(set(names)):
        path = notebooks_dir / name
        if not path.is_file():
            raise AlsegError(f"{path}: notebook not found; pass the folder that holds {name}")
        try:
            declared = papermill.inspect_notebook(str(path))
        except Exception as err:  # noqa: BLE001 - papermill raises many types for unreadable notebooks
            raise AlsegError(f"{path}: cannot read its parameters ({_one_line_error(err)})") from None
        missing = [p for p in required if p not in declared]
        if missing:
            raise AlsegError(f"{path}: its cell tagged 'parameters' must assign {', '.join(missing)}")


def _prepare_sweep_dir(sweep_dir: Path, cfg: RunConfig, params_file: Path, jobs: list[Job]) -> None:
    """Write ``sweep.json``, refusing a folder made for a configuration with another fingerprint.

    The fingerprint leaves out the ``sweep`` section, so adding seeds or acquisition functions to
    a params file extends its sweep folder instead of refusing it.
    """
    record_path = sweep_dir / "sweep.json"
    fingerprint = cfg.fingerprint()
    if record_path.exists():
        try:
            old = json.loads(record_path.read_text()).get("fingerprint")
        except (json.JSONDecodeError, AttributeError):
            raise RunStateError(f"{record_path}: unreadable; delete it to adopt this folder") from None
        if old != fingerprint:
            raise RunStateError(
                f"{sweep_dir}: holds a sweep of another configuration (fingerprint {old}, "
                f"{params_file.name} now gives {fingerprint}); use a new --out folder or delete it")
    record = {"name": cfg.name, "params_file": str(params_file.resolve()), "fingerprint": fingerprint,
              "jobs": [{"name": j.name, "notebook": j.notebook, "parameters": j.parameters} for j in jobs]}
    atomic_write_text(record_path, json.dumps(record, indent=1) + "\n")


OnOutcome = Callable[[JobOutcome], None]  # called once per finished job (drives the progress bar)


def _run_inline(jobs: list[Job], notebooks_dir: Path, sweep_dir: Path, kernel_name: str | None,
                report: OnOutcome) -> None:
    for job in jobs:
        report(run_job(job, notebooks_dir, sweep_dir, kernel_name))


def _run_pool(jobs: list[Job], notebooks_dir: Path, sweep_dir: Path, kernel_name: str | None,
              report: OnOutcome, workers: int) -> None:
    """Run jobs in ``workers`` spawned processes (spawn: no forked zmq or tqdm threads)."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context)
    try:
        futures = {pool.submit(run_job, job, notebooks_dir, sweep_dir, kernel_name): job for job in jobs}
        for future in as_completed(futures):
            try:
                report(future.result())
            except Exception as err:  # noqa: BLE001 - a dead worker process fails its job only
                report(JobOutcome(futures[future], "failed", _one_line_error(err)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AlsegError('the Ray executor needs Ray: pip install "alseg[ray]"') from None
    return ray


def _run_ray(jobs: list[Job], notebooks_dir: Path, sweep_dir: Path, kernel_name: str | None,
             report: OnOutcome, address: str | None, gpus_per_job: float) -> None:
    """Run each job as a Ray task asking for ``gpus_per_job`` GPUs; connect or start Ray as needed.

    Ray is initialised only when it is not already (``address=None`` starts a local instance) and
    shut down only when this call initialised it. Workers must be able to import ``alseg_utils``
    and see the same paths (a shared file system on a cluster).
    """
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address)
    try:
        task = ray.remote(num_gpus=gpus_per_job)(run_job)
        refs = {task.remote(job, notebooks_dir, sweep_dir, kernel_name): job for job in jobs}
        pending = list(refs)
        while pending:
            (ready,), pending = ray.wait(pending, num_returns=1)
            try:
                report(ray.get(ready))
            except Exception as err:  # noqa: BLE001 - a lost worker or node fails its job only
                report(JobOutcome(refs[ready], "failed", _one_line_error(err)))
    finally:
        if started:
            ray.shutdown()


def format_summary(outcomes: list[JobOutcome], sweep_dir: str | Path) -> str:
    """A fixed-width table of outcomes: status, seconds, job name, and the error of failed jobs.

    Args:
        outcomes: one per job, in the order to print.
        sweep_dir: the sweep folder (named in the header and in the pointer to failed notebooks).

    Returns:
        The table, lines joined by newlines, ending with a count per status.
    """
    lines = [f"sweep {sweep_dir}:"]
    for o in outcomes:
        line = f"  {o.status:<8} {o.seconds:8.1f} s  {o.job.name}"
        if o.status == "failed":
            line += f"  {o.error}  (see {_executed_notebook(Path(sweep_dir), o.job).name})"
        lines.append(line)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    lines.append(f"{len(outcomes)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def _share_cores(workers: int) -> None:
    """Give each local worker's kernel its share of the cores (unless the user set a thread count).

    Without this every kernel starts one compute thread per core, and ``workers`` kernels on the
    same cores spin against each other (2-3x slower on a loaded 2-core machine).
    """
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, threads)


def run_sweep(params_file: str | Path, sweep_dir: str | Path | None = None,
              notebooks_dir: str | Path | None = None, workers: int = 1, executor: str = "local",
              address: str | None = None, kernel_name: str | None = None,
              progress: bool = True) -> list[JobOutcome]:
    """Run every job of a params file's sweep that has not finished yet, then print a summary.

    Args:
        params_file: the params YAML file; its ``sweep`` section says what to expand.
        sweep_dir: the sweep folder; default ``runs/<name>`` under the current directory.
        notebooks_dir: folder with notebooks 01 and 02; default :func:`default_notebooks_dir`.
        workers: local processes running jobs at once; 1 runs them inline. Ray ignores it (it
            schedules by the resources each task asks for).
        executor: ``"local"`` or ``"ray"``.
        address: Ray cluster address (``executor="ray"``); ``None`` starts a local Ray instance
            unless Ray is already initialised in this process.
        kernel_name: Jupyter kernel for the notebooks; ``None`` uses the one they name.
        progress: show a progress bar over jobs.

    Returns:
        One outcome per job, in job order. Failed jobs do not raise.

    Raises:
        ConfigError: bad params file (or a job's config: :func:`check_job_configs`), ``workers < 1``,
            unknown executor, or ``address`` without Ray.
        RunStateError: ``sweep_dir`` belongs to a sweep of another configuration.
        AlsegError: notebooks missing or not declaring the job parameters; Ray not installed.
    """
    _check_executor(workers, executor, address)
    if executor == "ray":
        _import_ray()  # fail before any work when Ray is missing
    params_file = Path(params_file)
    cfg = load_config(params_file)
    check_job_configs(params_file, cfg)
    sweep_dir = Path(sweep_dir or Path("runs") / cfg.name).resolve()
    notebooks_dir = Path(notebooks_dir).resolve() if notebooks_dir else default_notebooks_dir()
    jobs = expand_jobs(cfg, params_file, sweep_dir)
    _check_notebooks(notebooks_dir, (j.notebook for j in jobs), JOB_PARAMETERS)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _prepare_sweep_dir(sweep_dir, cfg, params_file, jobs)
    outcomes = {j.name: JobOutcome(j, "skipped") for j in jobs if _done_marker(sweep_dir, j).exists()}
    todo = [j for j in jobs if j.name not in outcomes]
    if executor == "local":
        _share_cores(workers)
    with tqdm(total=len(jobs), initial=len(outcomes), desc=f"sweep {cfg.name}", unit="job",
              disable=not progress) as bar:
        def report(outcome: JobOutcome) -> None:
            outcomes[outcome.job.name] = outcome
            bar.update(1)
            bar.set_postfix(failed=sum(o.status == "failed" for o in outcomes.values()))

        if executor == "ray" and todo:
            _run_ray(todo, notebooks_dir, sweep_dir, kernel_name, report, address, cfg.sweep.gpus_per_job)
        elif workers > 1 and todo:
            _run_pool(todo, notebooks_dir, sweep_dir, kernel_name, report, workers)
        else:
            _run_inline(todo, notebooks_dir, sweep_dir, kernel_name, report)
    ordered = [outcomes[j.name] for j in jobs]
    print(format_summary(ordered, sweep_dir))
    return ordered


def reproduction_summary(sweep_dir: str | Path, figures_dir: str | Path, seconds: float) -> str:
    """What ``alseg reproduce`` prints last: the time it took, where its outputs are, the headline.

    The headline is the paper's: the % of labelled pixels square regions (and superpixels) need to
    reach ``eval.relative_target`` x the full-training-data score, and full images need, per
    acquisition function (:func:`alseg_utils.efficiency.label_efficiency`), on the first metric of
    ``eval.targets`` (F1 for GlaS, Jaccard for ISIC in the shipped params files). When the records
    count clicks (:mod:`alseg_utils.costs`), the same follows in clicks as each run was annotated.
    Before the headline, per acquisition function, the paired differences over seeds of
    :func:`alseg_utils.paired.paired_table` (``region − full`` and ``superpixel − region``, and
    ``superpixel_dominant − region`` when present: AULC and pixels to reach, with their intervals).

    Args:
        sweep_dir: the finished sweep folder (its ``sweep.json`` names the params file).
        figures_dir: where the report wrote figures and Table 1.
        seconds: wall time of the whole reproduction.

    Returns:
        A few lines of text.
    """
    from alseg_utils.efficiency import label_efficiency
    from alseg_utils.results import load_records, primary_metric

    sweep_dir, figures_dir = Path(sweep_dir), Path(figures_dir)
    cfg = load_config(json.loads((sweep_dir / "sweep.json").read_text())["params_file"])
    n_jobs = len(list(sweep_dir.glob("*.done")))
    lines = [f"alseg reproduce {cfg.name}: {n_jobs} jobs and the report in {seconds / 60:.1f} min",
             f"  figures and Table 1 (table1_{cfg.name}.md / .csv): {figures_dir}"]
    metric, relative = primary_metric(cfg), cfg.eval.relative_target
    records = load_records(sweep_dir / "results")
    lines += _paired_summary(records, metric, relative)
    try:
        table = label_efficiency(records, metric, relative)
    except (ValueError, KeyError) as err:
        return "\n".join(lines + [f"  no headline: {err}"])
    lines.append(f"  % labelled pixels to reach {relative:.0%} of the full-data {metric} "
                 "(mean over seeds [seeds that reached it]; region/full < 1: regions need fewer pixels):")
    lines += _efficiency_rows(table, "pct", "{:.1f}")
    try:
        clicks = label_efficiency(records, metric, relative, cost="clicks")
    except RunStateError:  # records written before clicks were counted: pixels only
        return "\n".join(lines)
    lines.append(f"  clicks (as annotated) to reach {relative:.0%} of the full-data {metric}:")
    return "\n".join(lines + _efficiency_rows(clicks, "clicks", "{:.0f}"))


def _paired_summary(records: Any, metric: str, relative: float) -> list[str]:
    """:func:`alseg_utils.paired.paired_table` as a heading and one line per row (nothing when no pair is present)."""
    from alseg_utils.paired import MINUS, paired_lines, paired_table

    try:
        table = paired_table(records, metric, relative_target=relative)
    except ValueError as err:
        return [f"  no paired differences: {err}"]
    if not len(table):
        return []
    heading = (f"  paired differences over seeds, a {MINUS} b (AULC: mean {metric} over the labelled-pixel range "
               "both cover; 95% percentile bootstrap over seeds; seeds needed for a t interval to exclude 0):")
    return [heading] + [f"    {line}" for line in paired_lines(table, relative)]


def _efficiency_rows(table: Any, unit: str, number: str) -> list[str]:
    """One line per acquisition function of a label-efficiency table: each method's effort, then the ratios."""
    from alseg_utils.efficiency import RATIOS

    lines = []
    for _, row in table.iterrows():
        cells = [f"{m} {number.format(row[f'{m}_{unit}'])} [{row[f'{m}_reached']}]" for m in METHODS
                 if f"{m}_{unit}" in row]
        ratios = [f"{r} {row[r]:.2f}" for r in (f"{num}/{den}" for num, den, _ in RATIOS)
                  if r in row and row[r] == row[r]]
        lines.append(f"    {row['acquisition']:<9} " + ", ".join(cells) + ("; " + ", ".join(ratios) if ratios else ""))
    return lines


def _check_executor(workers: int, executor: str, address: str | None) -> None:
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor {executor!r} is not one of local, ray")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    if address is not None and executor != "ray":
        raise ConfigError("a cluster address only applies to the Ray executor (--executor ray)")


def _report_dirs(path: Path) -> tuple[Path, Path]:
    """(results folder, folder for executed report notebooks) of a sweep or a results folder."""
    if not path.is_dir():
        raise RunStateError(f"{path}: no such folder; give a sweep folder such as runs/quick "
                            "or a folder of run results")
    if (path / "sweep.json").is_file() and (path / "results").is_dir():
        return path / "results", path / "report"
    return path, path / "report"


def run_report(results_dir: str | Path, figures_dir: str | Path | None = None,
               notebooks_dir: str | Path | None = None,
               kernel_name: str | None = None, cost: str = "pixels") -> list[Path]:
    """Run notebooks 03-05 on a sweep's results: figures and Table 1.

    Every notebook runs even when an earlier one fails; the failures are raised together at the end.
    A ``cost`` other than pixels goes to :data:`COST_NOTEBOOK` (Fig. 1, Fig. 3 and Table 1 in that
    effort axis, written beside the pixel ones with a ``_<cost>`` suffix).

    Args:
        results_dir: a sweep folder (with ``sweep.json`` and ``results/``) or a folder of run
            results; the notebooks get the results folder as ``results_dir``.
        figures_dir: where the notebooks write figures (``figures_dir``); default the checkout's
            ``figures/``.
        notebooks_dir: folder with the report notebooks; default :func:`default_notebooks_dir`.
        kernel_name: Jupyter kernel; ``None`` uses the one the notebooks name.
        cost: the effort axis of :data:`~alseg_utils.config.EFFORT_AXES` (pixels, polygon_clicks,
            dominant_clicks or clicks as annotated).

    Returns:
        The executed notebooks, in ``<results_dir>/report/`` (``<sweep>/report/`` for a sweep).

    Raises:
        ConfigError: unknown ``cost``.
        RunStateError: ``results_dir`` does not exist.
        AlsegError: a notebook is missing or failed (named, with where its executed copy is).
    """
    if cost not in EFFORT_AXES:
        raise ConfigError(f"cost {cost!r} is not one of {', '.join(EFFORT_AXES)}")
    results, report_dir = _report_dirs(Path(results_dir).resolve())
    notebooks_dir = Path(notebooks_dir).resolve() if notebooks_dir else default_notebooks_dir()
    figures = Path(figures_dir).resolve() if figures_dir else _repo_root() / "figures"
    _check_notebooks(notebooks_dir, REPORT_NOTEBOOKS, REPORT_PARAMETERS)
    if cost != "pixels":  # the default run passes no cost, as before
        _check_notebooks(notebooks_dir, [COST_NOTEBOOK], ("cost",))
    report_dir.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    parameters = {"results_dir": str(results), "figures_dir": str(figures)}
    executed, failures = [], []
    for name in REPORT_NOTEBOOKS:
        output = report_dir / name
        given = {**parameters, "cost": cost} if name == COST_NOTEBOOK and cost != "pixels" else parameters
        error = _execute(notebooks_dir / name, output, given, notebooks_dir, kernel_name)
        if error:
            failures.append(f"{name} failed ({error}); its executed copy is {output}")
        executed.append(output)
    if failures:
        raise AlsegError("; ".join(failures))
    return executed
