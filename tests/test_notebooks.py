"""Papermill smoke tests: every notebook runs on tiny parameters into tmp_path and writes its files.

``pytest --nbval notebooks`` (the second half of ``make test``) re-executes the committed notebooks
with their stored defaults and compares outputs; these tests check what they write.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from alseg_utils.active import run_active
from alseg_utils.config import load_config
from alseg_utils.notebooks import (NOTEBOOK_ORDER, _kernel_manager_class, execute_notebook, run_papermill,
                                   scrub_notebook)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# the tiny run (tests/conftest.py) on fewer images, one step, a coarser network and low F1 targets
NOTEBOOK_RUN = {
    "data": {"synthetic_n_train": 12, "synthetic_n_test": 3, "n_val": 2},
    "model": {"output_stride": 32},
    "train": {"iterations": 2},
    "active": {"steps": 1, "restarts_region": 1},
    "eval": {"targets": {"f1": [0.1, 0.5]}},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, tiny_params: Callable[..., Path]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nb")
    params = tiny_params(root, **NOTEBOOK_RUN)
    results = root / "results"
    for strategy in ("full", "region"):
        cfg = load_config(params, {"active.strategy": strategy, "active.acquisition": "bald"})
        run_active(cfg, results / f"{strategy}-bald-s0", progress=False)
    run_active(load_config(params), results / "reference-s0", progress=False, reference=True)
    return {"params": params, "results": results, "root": root}


def _assert_figure(folder: Path, stem: str) -> None:
    """``folder/stem.png`` is a readable image of real size and ``folder/stem.pdf`` a PDF."""
    with Image.open(folder / f"{stem}.png") as png:
        assert png.format == "PNG" and min(png.size) >= 100, (stem, png.size)
    assert (folder / f"{stem}.pdf").read_bytes().startswith(b"%PDF-"), stem


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return "\n".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_committed_notebooks_have_parameters_and_outputs() -> None:
    for name in NOTEBOOK_ORDER:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name
        assert all(c.execution_count for c in code), f"{name} is not fully executed"
        assert "papermill" not in nb.metadata, f"{name} metadata is not scrubbed"
        assert scrub_notebook(nb) == nbformat.read(NOTEBOOKS / name, as_version=4)


def test_00_data_prep(tiny: dict[str, Path], tmp_path: Path) -> None:
    out = execute_notebook(NOTEBOOKS / "00_data_prep.ipynb", tmp_path / "00.ipynb",
                           {"params_file": str(tiny["params"]), "figures_dir": str(tmp_path / "fig")})
    assert "pool (unlabelled)" in _outputs(out)
    _assert_figure(tmp_path / "fig", "data_examples")


@pytest.mark.parametrize(("name", "strategy"), [("01_full_image_al.ipynb", "full"), ("02_region_al.ipynb", "region")])
def test_al_notebooks_write_a_run(tiny: dict[str, Path], tmp_path: Path, name: str, strategy: str) -> None:
    run = tmp_path / "run"
    out = execute_notebook(NOTEBOOKS / name, tmp_path / name, {
        "params_file": str(tiny["params"]), "strategy": strategy, "acquisition": "entropy", "seed": 1,
        "out_dir": str(run)})
    assert "acquired at step 1" in _outputs(out)
    records = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    assert [(r["step"], r["strategy"], r["acquisition"], r["seed"]) for r in records] == \
        [(0, strategy, "entropy", 1), (1, strategy, "entropy", 1)]
    with np.load(run / "selections" / "step_001.npz") as selection:
        assert len(selection["shown_images"]) >= 1


def test_report_notebooks_write_figures_and_table(tiny: dict[str, Path], tmp_path: Path) -> None:
    figs = tmp_path / "figures"
    params = {"results_dir": str(tiny["results"]), "figures_dir": str(figs)}
    for name in NOTEBOOK_ORDER[3:6]:
        _outputs(execute_notebook(NOTEBOOKS / name, tmp_path / name, params))
    for stem in ("fig_e1_reliability", "fig_e2_calibration", "fig4_uncertainty_histograms",
                 "fig1_full_vs_region", "fig3_accuracy_curves", "fig3_other_metrics", "fig5_calibration_summary"):
        _assert_figure(figs, stem)
    table = (figs / "table1_tiny.md").read_text()
    assert "| f1 | 0.1 |" in table and (figs / "table1_tiny.csv").exists()


def test_results_notebook_counts_effort_in_clicks(tiny: dict[str, Path], tmp_path: Path) -> None:
    figs = tmp_path / "figures"
    _outputs(execute_notebook(NOTEBOOKS / "05_results.ipynb", tmp_path / "05.ipynb",
                              {"results_dir": str(tiny["results"]), "figures_dir": str(figs), "cost": "clicks"}))
    for stem in ("fig1_full_vs_region_clicks", "fig3_accuracy_curves_clicks"):
        _assert_figure(figs, stem)
    assert not (figs / "fig1_full_vs_region.png").exists()  # the pixel figures are not overwritten
    table = (figs / "table1_tiny_clicks.md").read_text()
    assert "| f1 | 0.1 |" in table and "Cells: clicks as annotated" in table


def test_06_annotation_round_trip(tiny: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = execute_notebook(NOTEBOOKS / "06_annotate_your_data.ipynb", tmp_path / "06.ipynb",
                           {"params_file": str(tiny["params"]), "out_dir": str(run)})
    text = _outputs(out)
    assert "answers stored" in text and "nothing changed" in text
    assert len((run / "steps.jsonl").read_text().splitlines()) == 2
    assert list((run / "to_annotate").glob("step_001/manifest.json"))


@pytest.mark.skipif(os.name == "nt", reason="ZeroMQ has no ipc transport on Windows")
def test_kernels_talk_over_local_sockets_with_unique_names(tmp_path: Path) -> None:
    """Parallel kernels cannot race for TCP ports: each gets its own ``ipc`` socket names."""
    manager = _kernel_manager_class()
    first, second = manager(kernel_name="python3"), manager(kernel_name="python3")
    assert first.transport == second.transport == "ipc"
    assert first.ip != second.ip and Path(first.ip).parent.is_dir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(
        "from ipykernel.connect import get_connection_info\n"
        "info = get_connection_info(unpack=True)\n"
        "print(info['transport'], info['ip'])")]
    nbformat.write(nb, tmp_path / "probe.ipynb")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:  # two at once, one folder
        runs = [pool.submit(run_papermill, tmp_path / "probe.ipynb", tmp_path / f"out{i}.ipynb") for i in (0, 1)]
        for run in runs:
            run.result()
    printed = []
    for i in (0, 1):
        _outputs(tmp_path / f"out{i}.ipynb")  # no error
        cell = nbformat.read(tmp_path / f"out{i}.ipynb", as_version=4).cells[-1]
        printed.append(cell.outputs[0]["text"].split())
    assert [p[0] for p in printed] == ["ipc", "ipc"] and printed[0][1] != printed[1][1], printed
    for _, ip in printed:  # the kernels' sockets were removed at shutdown
        assert not list(Path(ip).parent.glob(Path(ip).name + "-*")), ip
