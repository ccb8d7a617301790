"""The command line: one-line errors (no traceback) for every kind of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alseg_utils.cli import main


def _alseg(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alseg_utils.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alseg: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_params_file(tmp_path: Path) -> None:
    _one_line_error(_alseg("run", "nope.yaml", cwd=tmp_path), "nope.yaml", "not found")


def test_mistyped_key(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"active": {"regions_per_stp": 3}}))
    _one_line_error(_alseg("run", "p.yaml", cwd=tmp_path), "regions_per_stp", "p.yaml")


def test_region_larger_than_image(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"data": {"image_size": [64, 96]}, "active": {"region_size": 80}}))
    _one_line_error(_alseg("run", "p.yaml", cwd=tmp_path), "active.region_size", "64x96")


def test_missing_data_folder(tmp_path: Path) -> None:
    raw = {"data": {"dataset": "glas", "root": "no_such_folder", "synthetic": False,
                    "image_size": [64, 96]}, "active": {"region_size": 16}, "train": {"crop_size": []}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    _one_line_error(_alseg("data", "p.yaml", cwd=tmp_path), "no_such_folder")


def test_unknown_acquisition_is_refused_by_argparse(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "params.yaml", "--acquisition", "bold"])
    assert exit_.value.code == 2
    assert "invalid choice: 'bold'" in capsys.readouterr().err


def test_report_on_missing_folder(tmp_path: Path) -> None:
    _one_line_error(_alseg("report", "runs/none", cwd=tmp_path), "runs/none")


def test_reproduce_keeps_each_params_files_figures_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import alseg_utils.sweep as sweep

    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"name": name}))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"name": "bad", "active": {"steps": -1}}))
    calls: list[tuple[str, Path | None]] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep, "run_sweep", lambda params, workers: [])
    monkeypatch.setattr(sweep, "run_report", lambda results, figures: calls.append((Path(results).name, figures)))
    assert main(["reproduce", "a.yaml"]) == 0
    assert calls == [("a", Path("figures"))]
    calls.clear()
    assert main(["reproduce", "a.yaml", "b.yaml", "--figures", "out"]) == 0
    assert calls == [("a", Path("out") / "a"), ("b", Path("out") / "b")]
    calls.clear()
    assert main(["reproduce", "a.yaml", "bad.yaml"]) == 2  # every file is checked before any sweep
    assert calls == []
