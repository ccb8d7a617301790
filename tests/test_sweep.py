"""Tests of alseg_utils.sweep: job expansion, resume, failure records, executors, report.

The notebooks run here are the fixtures in ``tests/fixtures/sweep/`` (named like the real ones):
a job notebook writes ``job.json`` (its parameters, working directory and Python executable) and
appends its name to ``runs.txt`` in its ``out_dir``, then fails when a file ``fail-<job>`` sits next
to the params file. A report notebook lists the run folders into ``<figures_dir>/<notebook>.txt``
and fails when ``fail-<notebook>`` is in the results folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

import alseg_utils
from alseg_utils import sweep
from alseg_utils.config import config_from_dict
from alseg_utils.errors import AlsegError, ConfigError, RunStateError
from alseg_utils.sweep import Job, JobOutcome, expand_jobs, format_summary, run_report, run_sweep

FIXTURES = Path(__file__).parent / "fixtures" / "sweep"
KERNEL = "python3"


def tiny_config(**sweep_section: Any) -> dict[str, Any]:
    """A valid params mapping with small images and the given ``sweep`` section."""
    return {"name": "tiny", "data": {"image_size": [64, 64]}, "active": {"region_size": 16},
            "train": {"crop_size": []}, "sweep": sweep_section}


def write_params(folder: Path, raw: dict[str, Any]) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def read_job(sweep_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((sweep_dir / "results" / name / "job.json").read_text())


def runs_of(sweep_dir: Path, name: str) -> int:
    return len((sweep_dir / "results" / name / "runs.txt").read_text().splitlines())


def statuses(outcomes: list[JobOutcome]) -> dict[str, str]:
    return {o.job.name: o.status for o in outcomes}


def test_expand_jobs_counts_names_and_parameters(tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_config(strategies=["full", "region"], acquisitions=["random", "bald"],
                                       seeds=[0, 1], full_data_reference=True))
    params = tmp_path / "p.yaml"
    jobs = expand_jobs(cfg, params, tmp_path / "sweep")
    names = [j.name for j in jobs]
    assert len(jobs) == 2 * 2 * 2 + 2
    assert names[:5] == ["reference-s0", "full-random-s0", "full-bald-s0", "region-random-s0",
                         "region-bald-s0"]
    assert names[5] == "reference-s1" and len(set(names)) == len(names)
    by_name = {j.name: j for j in jobs}
    region = by_name["region-bald-s1"]
    assert region.notebook == "02_region_al.ipynb"
    assert region.parameters == {
        "params_file": str(params.resolve()), "strategy": "region", "acquisition": "bald", "seed": 1,
        "out_dir": str((tmp_path / "sweep" / "results" / "region-bald-s1").resolve()),
        "full_data_reference": False, "steps": -1, "progress": False}
    ref = by_name["reference-s1"]
    assert ref.notebook == "01_full_image_al.ipynb" and ref.parameters["full_data_reference"] is True
    assert (ref.parameters["strategy"], ref.parameters["acquisition"]) == ("full", "random")
    assert by_name["full-bald-s0"].notebook == "01_full_image_al.ipynb"


def test_expand_jobs_without_reference(tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_config(strategies=["region"], acquisitions=["entropy", "varratio", "bald"],
                                       seeds=[3], full_data_reference=False))
    jobs = expand_jobs(cfg, tmp_path / "p.yaml", tmp_path)
    assert [j.name for j in jobs] == ["region-entropy-s3", "region-varratio-s3", "region-bald-s3"]
    assert not any(j.parameters["full_data_reference"] for j in jobs)


def test_sweep_records_a_failing_job_and_a_rerun_resumes(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    params = write_params(tmp_path, tiny_config(strategies=["full", "region"], acquisitions=["random"],
                                                seeds=[0], full_data_reference=True))
    (tmp_path / "fail-region-random-s0").touch()
    out = tmp_path / "runs" / "tiny"
    outcomes = run_sweep(params, out, FIXTURES, kernel_name=KERNEL, progress=False)

    assert statuses(outcomes) == {"reference-s0": "done", "full-random-s0": "done",
                                  "region-random-s0": "failed"}
    failed = outcomes[2]
    assert failed.error == "RuntimeError: fixture failure of region-random-s0 (in cell [3])"
    assert not (out / "region-random-s0.done").exists()
    executed = nbformat.read(out / "region-random-s0.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert [e.ename for e in errors] == ["RuntimeError"]
    for name in ("reference-s0", "full-random-s0"):
        assert json.loads((out / f"{name}.done").read_text())["seconds"] > 0
        assert (out / f"{name}.ipynb").is_file()
    job = read_job(out, "reference-s0")
    assert job["notebook"] == "01_full_image_al" and job["full_data_reference"] is True
    assert job["progress"] is False and read_job(out, "region-random-s0")["notebook"] == "02_region_al"
    assert job["cwd"] == str(FIXTURES.resolve())
    assert Path(job["executable"]).resolve() == Path(sys.executable).resolve()  # the venv's kernel
    summary = capsys.readouterr().out
    assert "failed" in summary and "fixture failure of region-random-s0" in summary
    assert "3 jobs: 2 done, 0 skipped, 1 failed" in summary

    (tmp_path / "fail-region-random-s0").unlink()
    again = run_sweep(params, out, FIXTURES, kernel_name=KERNEL, progress=False)
    assert statuses(again) == {"reference-s0": "skipped", "full-random-s0": "skipped",
                               "region-random-s0": "done"}
    assert [runs_of(out, n) for n in ("reference-s0", "full-random-s0", "region-random-s0")] == [1, 1, 2]
    assert (out / "region-random-s0.done").is_file()


def test_process_pool_runs_jobs_with_progress_bar(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    params = write_params(tmp_path, tiny_config(strategies=["region"], acquisitions=["random", "bald"],
                                                seeds=[0], full_data_reference=False))
    outcomes = run_sweep(params, tmp_path / "sweep", FIXTURES, workers=2, kernel_name=KERNEL)
    assert statuses(outcomes) == {"region-random-s0": "done", "region-bald-s0": "done"}
    assert read_job(tmp_path / "sweep", "region-bald-s0")["acquisition"] == "bald"
    assert "2/2" in capsys.readouterr().err  # the tqdm bar reached the end


@pytest.mark.slow  # starting a local Ray instance takes 15-45 s on 2 CPU cores
def test_ray_executor_with_a_local_instance(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    params = write_params(tmp_path, tiny_config(strategies=["full"], acquisitions=["random", "entropy"],
                                                seeds=[1], full_data_reference=False))
    try:
        ray.init(num_cpus=2, include_dashboard=False)
        outcomes = run_sweep(params, tmp_path / "sweep", FIXTURES, executor="ray", kernel_name=KERNEL,
                             progress=False)
        assert ray.is_initialized()  # run_sweep leaves alone a Ray it did not start
    finally:
        ray.shutdown()
    assert statuses(outcomes) == {"full-random-s1": "done", "full-entropy-s1": "done"}
    assert read_job(tmp_path / "sweep", "full-entropy-s1")["acquisition"] == "entropy"
    assert (tmp_path / "sweep" / "full-random-s1.done").is_file()


class FakeRef:
    """A Ray object ref stand-in: hashable, holds the task's result."""

    def __init__(self, outcome: JobOutcome) -> None:
        self.outcome = outcome


class FakeRay:
    """Stands in for the ``ray`` module: records calls, "runs" tasks as done without papermill."""

    def __init__(self, initialised: bool) -> None:
        self.initialised = initialised
        self.calls: list[tuple[str, Any]] = []

    def is_initialized(self) -> bool:
        return self.initialised

    def init(self, address: str | None = None) -> None:
        self.calls.append(("init", address))
        self.initialised = True

    def shutdown(self) -> None:
        self.calls.append(("shutdown", None))
        self.initialised = False

    def remote(self, **options: Any) -> Any:
        self.calls.append(("remote", options))

        def wrap(fn: Any) -> Any:
            self.calls.append(("function", fn))
            task = type("Task", (), {})()
            task.remote = lambda job, *rest: FakeRef(JobOutcome(job, "done"))
            return task
        return wrap

    def wait(self, refs: list[Any], num_returns: int) -> tuple[list[Any], list[Any]]:
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: FakeRef) -> JobOutcome:
        return ref.outcome


@pytest.mark.parametrize("initialised", [False, True])
def test_ray_executor_inits_and_shuts_down_only_its_own_instance(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, initialised: bool) -> None:
    fake = FakeRay(initialised)
    monkeypatch.setitem(sys.modules, "ray", fake)
    params = write_params(tmp_path, tiny_config(strategies=["region"], acquisitions=["bald"], seeds=[0, 1],
                                                full_data_reference=False, gpus_per_job=0.5))
    outcomes = run_sweep(params, tmp_path / "sweep", FIXTURES, executor="ray", address="ray://head:10001",
                         progress=False)
    assert statuses(outcomes) == {"region-bald-s0": "done", "region-bald-s1": "done"}
    expected = [("remote", {"num_gpus": 0.5}), ("function", sweep.run_job)]
    if not initialised:
        expected = [("init", "ray://head:10001"), *expected, ("shutdown", None)]
    assert fake.calls == expected


def test_missing_ray_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    params = write_params(tmp_path, tiny_config(seeds=[0]))
    with pytest.raises(AlsegError, match=r'pip install "alseg\[ray\]"'):
        run_sweep(params, tmp_path / "sweep", FIXTURES, executor="ray", progress=False)


def test_finished_jobs_are_skipped_and_a_changed_config_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("papermill was called\nwith a second line")

    monkeypatch.setattr(papermill, "execute_notebook", broken)
    raw = tiny_config(strategies=["full"], acquisitions=["random", "bald"], seeds=[0],
                      full_data_reference=False)
    params = write_params(tmp_path, raw)
    out = tmp_path / "sweep"
    out.mkdir()
    for name in ("full-random-s0", "full-bald-s0"):
        (out / f"{name}.done").write_text("{}")
    assert statuses(run_sweep(params, out, FIXTURES, progress=False)) == {
        "full-random-s0": "skipped", "full-bald-s0": "skipped"}

    raw["sweep"]["seeds"] = [0, 1]  # the sweep section may grow: the folder is extended
    outcomes = run_sweep(write_params(tmp_path, raw), out, FIXTURES, progress=False)
    assert [o.status for o in outcomes] == ["skipped", "skipped", "failed", "failed"]
    assert outcomes[2].error == "OSError: papermill was called"
    assert [j["name"] for j in json.loads((out / "sweep.json").read_text())["jobs"]][-1] == "full-bald-s1"

    raw["train"]["iterations"] = 7  # results would change: the old folder is refused
    with pytest.raises(RunStateError, match="another configuration.*new --out folder or delete it"):
        run_sweep(write_params(tmp_path, raw), out, FIXTURES, progress=False)


def test_run_report_runs_the_report_notebooks(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "runs" / "tiny"
    for name in ("region-bald-s0", "full-random-s0"):
        (sweep_dir / "results" / name).mkdir(parents=True)
    (sweep_dir / "sweep.json").write_text("{}")
    figures = tmp_path / "figs"
    paths = run_report(sweep_dir, figures, FIXTURES, kernel_name=KERNEL)
    names = ("03_calibration", "04_uncertainty_histograms", "05_results")
    assert paths == [sweep_dir / "report" / f"{n}.ipynb" for n in names]
    assert all(p.is_file() for p in paths)
    for name in names:  # the notebooks got the sweep's results folder
        assert (figures / f"{name}.txt").read_text() == "full-random-s0\nregion-bald-s0"

    (sweep_dir / "results" / "fail-04_uncertainty_histograms").touch()
    (figures / "05_results.txt").unlink()
    message = (r"04_uncertainty_histograms.ipynb failed \(ValueError: fixture report failure of "
               r"04_uncertainty_histograms .*\); its executed copy is .*report/04_uncertainty_histograms")
    with pytest.raises(AlsegError, match=message):
        run_report(sweep_dir, figures, FIXTURES, kernel_name=KERNEL)
    assert (figures / "05_results.txt").is_file()  # later notebooks still ran


def test_run_report_on_a_results_folder_and_a_missing_one(tmp_path: Path) -> None:
    with pytest.raises(RunStateError, match="no such folder"):
        run_report(tmp_path / "nope", tmp_path / "figs", FIXTURES)
    assert sweep._report_dirs(tmp_path) == (tmp_path, tmp_path / "report")


def test_notebooks_must_exist_and_declare_the_job_parameters(tmp_path: Path) -> None:
    params = write_params(tmp_path, tiny_config(strategies=["region"], acquisitions=["bald"], seeds=[0],
                                                full_data_reference=False))
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    with pytest.raises(AlsegError, match="02_region_al.ipynb: notebook not found"):
        run_sweep(params, tmp_path / "sweep", notebooks, progress=False)
    nb = nbformat.read(FIXTURES / "02_region_al.ipynb", as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("progress: bool = True  # progress bars", "")
    nbformat.write(nb, notebooks / "02_region_al.ipynb")
    with pytest.raises(AlsegError, match="'parameters' must assign progress"):
        run_sweep(params, tmp_path / "sweep", notebooks, progress=False)
    assert not (tmp_path / "sweep").exists()  # nothing written before the checks pass


def test_default_notebooks_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo = Path(alseg_utils.__file__).resolve().parents[1]
    if (repo / "notebooks").is_dir():
        assert sweep.default_notebooks_dir() == repo / "notebooks"
    monkeypatch.setattr(alseg_utils, "__file__", str(tmp_path / "site" / "alseg_utils" / "__init__.py"))
    with pytest.raises(AlsegError, match="notebooks folder not found.*pip install -e"):
        sweep.default_notebooks_dir()


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": 0}, "workers must be an integer >= 1"),
    ({"workers": 2.0}, "workers must be an integer >= 1"),
    ({"executor": "slurm"}, "'slurm' is not one of local, ray"),
    ({"address": "ray://head:10001"}, "only applies to the Ray executor"),
])
def test_bad_executor_options(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_sweep(tmp_path / "never-read.yaml", tmp_path, FIXTURES, **kwargs)


def test_format_summary() -> None:
    def job(name: str) -> Job:
        return Job(name=name, notebook="02_region_al.ipynb", parameters={})

    outcomes = [JobOutcome(job("region-bald-s0"), "done", "", 12.34),
                JobOutcome(job("region-random-s0"), "skipped"),
                JobOutcome(job("region-entropy-s0"), "failed", "ValueError: bad (in cell [4])", 1.0)]
    assert format_summary(outcomes, "runs/q") == "\n".join([
        "sweep runs/q:",
        "  done         12.3 s  region-bald-s0",
        "  skipped       0.0 s  region-random-s0",
        "  failed        1.0 s  region-entropy-s0  ValueError: bad (in cell [4])"
        "  (see region-entropy-s0.ipynb)",
        "3 jobs: 1 done, 1 skipped, 1 failed",
    ])


def test_one_line_error_is_cut() -> None:
    assert sweep._one_line_error(KeyError()) == "KeyError"
    long = sweep._one_line_error(ValueError("x" * 1000 + "\nmore"))
    assert len(long) == sweep.MAX_ERROR_CHARS and long.startswith("ValueError: xxx") and long.endswith("...")


def test_reproduction_summary_names_time_figures_and_headline(tmp_path: Path) -> None:
    params = write_params(tmp_path, tiny_config())
    sweep_dir = tmp_path / "sweep"
    curves = {"full": [(0.1, 0, 0.5), (0.3, 0, 0.8), (0.5, 0, 0.9)],
              "region": [(0.1, 0, 0.5), (0.2, 0, 0.86), (0.3, 0, 0.9)]}
    _write_curves(sweep_dir, curves, clicks=False)
    (sweep_dir / "sweep.json").write_text(json.dumps({"params_file": str(params)}))
    text = sweep.reproduction_summary(sweep_dir, tmp_path / "figs", 754.0)
    lines = text.splitlines()
    assert "4 jobs and the report in 12.6 min" in lines[0] and str(tmp_path / "figs") in lines[1]
    # goal 0.95 * 0.9 = 0.855: full needs 50%, regions 20% (both seeds): ratio 0.40
    assert "full 50.0 [2/2], region 20.0 [2/2]; region/full 0.40" in lines[-1]


def test_reproduction_summary_carries_the_paired_differences(tmp_path: Path) -> None:
    params = write_params(tmp_path, tiny_config())
    curves = {"full": [(0.1, 0, 0.5), (0.3, 0, 0.8), (0.5, 0, 0.9)],
              "region": [(0.1, 0, 0.5), (0.2, 0, 0.86), (0.3, 0, 0.9)]}
    _write_curves(tmp_path / "sweep", curves, clicks=False)
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({"params_file": str(params)}))
    lines = sweep.reproduction_summary(tmp_path / "sweep", tmp_path / "figs", 60.0).splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("  paired differences over seeds"))
    # over [0.1, 0.3]: region (0.068 + 0.088) / 0.2 = 0.78, full 0.65; to reach 0.855: 20% vs 50% of the pixels
    assert lines[heading + 1] == ("    bald      region \N{MINUS SIGN} full AULC f1 +0.130 [95% bootstrap +0.130, +0.130; "
                                  "t +0.130, +0.130] over 2 seeds (bootstrap excludes 0, t excludes 0; seeds needed: 2)")
    assert lines[heading + 2] == ("    bald      region \N{MINUS SIGN} full % pixels to reach 95% of full f1 (0.855) "
                                  "-30.0 [95% bootstrap -30.0, -30.0; t -30.0, -30.0] over 2 seeds (bootstrap excludes 0, "
                                  "t excludes 0; seeds needed: 2)")
    assert "full 50.0 [2/2], region 20.0 [2/2]; region/full 0.40" in lines[-1]  # the headline stays last


def _write_curves(sweep_dir: Path, curves: dict[str, list[tuple[float, int, float]]], clicks: bool) -> None:
    """Two seeds per method of (labelled fraction, clicks as annotated, F1) curves, and a reference run."""
    for method, points in curves.items():
        strategy, label = ("superpixel", "dominant") if method == "superpixel_dominant" else (method, "mask")
        for seed in (0, 1):
            run = sweep_dir / "results" / f"{method}-bald-s{seed}"
            run.mkdir(parents=True)
            lines = [json.dumps({"strategy": strategy, "superpixel_label": label, "acquisition": "bald", "seed": seed,
                                 "step": k, "labelled_fraction": x, "f1": f1, "reference": False,
                                 **({"labelled_clicks": c} if clicks else {})})
                     for k, (x, c, f1) in enumerate(points)]
            (run / "steps.jsonl").write_text("\n".join(lines) + "\n")
            (sweep_dir / f"{method}-bald-s{seed}.done").write_text("{}")
    ref = sweep_dir / "results" / "reference-s0"
    ref.mkdir()
    (ref / "steps.jsonl").write_text(json.dumps({"strategy": "full", "acquisition": "random", "seed": 0, "step": 0,
                                                 "labelled_fraction": 1.0, "f1": 0.9, "reference": True}) + "\n")


def test_reproduction_summary_in_pixels_then_clicks_with_dominant_superpixels(tmp_path: Path) -> None:
    params = write_params(tmp_path, tiny_config())
    curves = {"full": [(0.1, 300, 0.5), (0.3, 900, 0.8), (0.5, 1500, 0.9)],
              "region": [(0.1, 300, 0.5), (0.2, 600, 0.86), (0.3, 900, 0.9)],
              "superpixel_dominant": [(0.1, 300, 0.5), (0.3, 420, 0.86), (0.4, 480, 0.9)]}
    _write_curves(tmp_path / "sweep", curves, clicks=True)
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({"params_file": str(params)}))
    lines = sweep.reproduction_summary(tmp_path / "sweep", tmp_path / "figs", 60.0).splitlines()
    pixels = lines.index(next(line for line in lines if "% labelled pixels to reach" in line))
    assert "full 50.0 [2/2], region 20.0 [2/2], superpixel_dominant 30.0 [2/2]; region/full 0.40, " \
           "superpixel_dominant/region 1.50" in lines[pixels + 1]
    assert "clicks (as annotated) to reach 95%" in lines[pixels + 2]
    assert "full 1500 [2/2], region 600 [2/2], superpixel_dominant 420 [2/2]; region/full 0.40, " \
           "superpixel_dominant/region 0.70" in lines[-1]
    old = tmp_path / "old"  # records written before clicks were counted: pixels only
    _write_curves(old, {k: curves[k] for k in ("full", "region")}, clicks=False)
    (old / "sweep.json").write_text(json.dumps({"params_file": str(params)}))
    lines = sweep.reproduction_summary(old, tmp_path / "figs", 60.0).splitlines()
    assert "full 50.0 [2/2], region 20.0 [2/2]; region/full 0.40" in lines[-1]
    assert not any("clicks" in line for line in lines)


def test_run_report_passes_the_cost_to_notebook_05_only(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "runs" / "tiny"
    (sweep_dir / "results" / "region-bald-s0").mkdir(parents=True)
    (sweep_dir / "sweep.json").write_text("{}")
    with pytest.raises(ConfigError, match="cost 'seconds' is not one of pixels, polygon_clicks"):
        run_report(sweep_dir, tmp_path / "figs", FIXTURES, kernel_name=KERNEL, cost="seconds")
    # the fixture 05 declares no `cost`: a click report is refused before any notebook runs
    with pytest.raises(AlsegError, match="05_results.ipynb: its cell tagged 'parameters' must assign cost"):
        run_report(sweep_dir, tmp_path / "figs", FIXTURES, kernel_name=KERNEL, cost="clicks")
    assert not (sweep_dir / "report").exists()
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in sweep.REPORT_NOTEBOOKS:
        nb = nbformat.read(FIXTURES / name, as_version=4)
        if name == sweep.COST_NOTEBOOK:
            nb.cells[1].source += '\ncost: str = "pixels"  # effort axis'
            nb.cells.append(nbformat.v4.new_code_cell(
                'from pathlib import Path\n(Path(figures_dir) / "cost.txt").write_text(cost)'))
        nbformat.write(nb, notebooks / name)
    run_report(sweep_dir, tmp_path / "figs", notebooks, kernel_name=KERNEL, cost="polygon_clicks")
    assert (tmp_path / "figs" / "cost.txt").read_text() == "polygon_clicks"
