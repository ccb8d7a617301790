"""The command line: one-line errors (no traceback) for every kind of bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
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


def test_run_strategy_superpixel_dominant_names_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              tiny_params: Callable[..., Path]) -> None:
    """``--strategy superpixel_dominant`` is superpixels labelled by class, in a folder named after it."""
    from alseg_utils import active

    seen = []

    class FakeRun:
        def __init__(self, cfg, out, oracle, **kwargs) -> None:
            seen.append((cfg.active, Path(out)))
            self.recovered: list[str] = []

        def run(self) -> list[dict]:
            return []

    monkeypatch.setattr(active, "ActiveRun", FakeRun)
    monkeypatch.chdir(tmp_path)
    params = tiny_params(tmp_path)
    for strategy in ("superpixel_dominant", "superpixel"):
        assert main(["run", str(params), "--strategy", strategy, "--acquisition", "bald", "--seed", "2"]) == 0
    (dominant, dominant_out), (mask, mask_out) = seen
    assert (dominant.strategy, dominant.superpixel_label) == ("superpixel", "dominant")
    assert dominant_out == Path("results") / "tiny" / "superpixel_dominant-bald-s2"
    assert mask.superpixel_label == "mask" and mask_out == Path("results") / "tiny" / "superpixel-bald-s2"


def test_report_on_missing_folder(tmp_path: Path) -> None:
    _one_line_error(_alseg("report", "runs/none", cwd=tmp_path), "runs/none")


def test_reproduce_keeps_each_params_files_figures_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import alseg_utils.sweep as sweep

    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"name": name}))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"name": "bad", "active": {"steps": -1}}))
    calls: list[tuple[str, Path | None]] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep, "run_sweep", lambda params, workers: [])
    monkeypatch.setattr(sweep, "run_report", lambda results, figures: calls.append((Path(results).name, figures)))
    monkeypatch.setattr(sweep, "reproduction_summary", lambda runs, figures, seconds: f"summary of {Path(runs).name}")
    assert main(["reproduce", "a.yaml"]) == 0
    assert calls == [("a", Path("figures") / "a")]  # not over the main job's figures
    assert capsys.readouterr().out.strip().splitlines()[-1] == "summary of a"  # the last thing it prints
    calls.clear()
    (tmp_path / "quick.yaml").write_text(yaml.safe_dump({"name": "quick"}))
    assert main(["reproduce", "quick.yaml", "a.yaml"]) == 0
    assert calls == [("quick", Path("figures")), ("a", Path("figures") / "a")]  # the main job's are the README's
    calls.clear()
    assert main(["reproduce", "a.yaml", "--figures", "out"]) == 0
    assert calls == [("a", Path("out"))]
    calls.clear()
    assert main(["reproduce", "a.yaml", "b.yaml", "--figures", "out"]) == 0
    assert calls == [("a", Path("out") / "a"), ("b", Path("out") / "b")]
    calls.clear()
    assert main(["reproduce", "a.yaml", "bad.yaml"]) == 2  # every file is checked before any sweep
    assert calls == []


# ----------------------------------------------------------------------------- empty and damaged input


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n\n"])
def test_empty_params_file_is_refused(tmp_path: Path, text: str, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "p.yaml").write_text(text)
    assert main(["run", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alseg: error:") and "params file is empty" in lines[0]
    assert "p.yaml" in lines[0] and "params/quick.yaml" in lines[0]
    assert not (tmp_path / "run").exists()


def _records(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "timing"}
            for line in (run / "steps.jsonl").read_text().splitlines()]


def _run_args(params: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(params), "--strategy", "region", "--acquisition", "bald", "--no-progress",
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_params: Callable[..., Path]) -> dict[str, Path]:
    """A finished two-step run ("whole") and the same run stopped after step 1 ("cut", kept pristine)."""
    import alseg_utils.active as active

    root = tmp_path_factory.mktemp("damaged")
    params = tiny_params(root)
    assert main(_run_args(params, root / "runs" / "whole")) == 0
    acquire = active.ActiveRun._acquire

    def interrupted(self, step, store, model):  # as if Ctrl-C came during step 2
        if step == 2:
            raise KeyboardInterrupt
        return acquire(self, step, store, model)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(active.ActiveRun, "_acquire", interrupted)
        assert main(_run_args(params, root / "runs" / "cut")) == 130
    assert json.loads((root / "runs" / "cut" / "state.json").read_text())["step"] == 1
    return {"params": params, "whole": root / "runs" / "whole", "cut": root / "runs" / "cut",
            "cache": root / "runs" / ".initial_models"}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage_last_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-20])


DAMAGE = {  # file of the stopped run -> how it is damaged, what the error line must say
    "state truncated": ("state.json", _truncate, "--recover"),
    "state not json": ("state.json", lambda p: p.write_text("not json at all"), "--recover"),
    "state of another shape": ("state.json", lambda p: p.write_text('{"step": 1}'), "--recover"),
    "state missing": ("state.json", lambda p: p.unlink(), "--recover"),
    "records truncated": ("steps.jsonl", _damage_last_line, "--recover"),
    "labels truncated": ("labels_step_001.npz", _truncate, "new --out"),
    "labels not npz": ("labels_step_001.npz", lambda p: p.write_bytes(b"\x00" * 100), "new --out"),
    "model truncated": ("model_step_001.pt", _truncate, "new --out"),
    "model empty": ("model_step_001.pt", lambda p: p.write_bytes(b""), "new --out"),
    "config truncated": ("config.json", _truncate, "new --out"),
    "config of another shape": ("config.json", lambda p: p.write_text("[1, 2]"), "new --out"),
    "config missing": ("config.json", lambda p: p.unlink(), "new --out"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_run_folder_gives_one_line_and_changes_nothing(case: str, runs: dict, tmp_path: Path,
                                                               refused: Callable[..., str]) -> None:
    name, damage, advice = DAMAGE[case]
    run = tmp_path / "run"
    shutil.copytree(runs["cut"], run)
    damage(run / name)
    refused(_run_args(runs["params"], run), run, name, advice)


def test_damaged_state_and_records_cannot_be_recovered(runs: dict, tmp_path: Path,
                                                       refused: Callable[..., str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["cut"], run)
    _truncate(run / "state.json")
    _truncate(run / "labels_step_001.npz")
    refused(_run_args(runs["params"], run, "--recover"), run, "state.json", "cannot be rebuilt",
            "labels_step_001.npz", "new --out")
    shutil.copy(runs["cut"] / "labels_step_001.npz", run / "labels_step_001.npz")
    _damage_last_line(run / "steps.jsonl")
    refused(_run_args(runs["params"], run, "--recover"), run, "steps.jsonl", "cannot be recovered")


@pytest.mark.parametrize("name", ["state.json", "steps.jsonl"])
def test_recover_rebuilds_the_damaged_file_and_the_run_goes_on_unchanged(name: str, runs: dict, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["cut"], run)
    _truncate(run / name)
    damaged = (run / name).read_bytes()
    capsys.readouterr()
    assert main(_run_args(runs["params"], run, "--recover")) == 0
    out = capsys.readouterr().out
    assert f"alseg: rebuilt {run / name}" in out or f"alseg: wrote {run / name} again" in out
    assert (run / f"{name}.damaged").read_bytes() == damaged  # the damaged file is kept, byte for byte
    for kept in ("config.json", "selections/step_001.npz", "superpixels.npz"):
        assert not (run / kept).exists() or (run / kept).read_bytes() == (runs["cut"] / kept).read_bytes()
    assert _records(run) == _records(runs["whole"])  # steps 0-1 as they were, step 2 as in an uninterrupted run
    state = json.loads((run / "state.json").read_text())
    assert state["step"] == 2 and [r["step"] for r in state["records"]] == [0, 1, 2]


def test_damaged_initial_model_cache_is_refused_not_retrained(runs: dict, tmp_path: Path,
                                                              refused: Callable[..., str]) -> None:
    shutil.copytree(runs["cache"], tmp_path / ".initial_models")
    (key,) = [p.name for p in (tmp_path / ".initial_models").iterdir()]
    cache = tmp_path / ".initial_models" / key
    for name, damage in (("metrics.json", _truncate), ("model.pt", _truncate), ("model.pt", lambda p: p.unlink())):
        shutil.copytree(runs["cache"] / key, cache, dirs_exist_ok=True)
        damage(cache / name)
        refused(_run_args(runs["params"], tmp_path / f"new-{name}"), tmp_path / ".initial_models",
                str(cache / name), "delete the folder")


def test_report_on_damaged_records_or_config(runs: dict, tmp_path: Path, refused: Callable[..., str]) -> None:
    results = tmp_path / "results"
    for name in ("whole", "cut"):
        shutil.copytree(runs[name], results / name)
    _damage_last_line(results / "cut" / "steps.jsonl")
    refused(["report", str(results), "--figures", str(tmp_path / "figures")], results,
            str(results / "cut" / "steps.jsonl"), "line 2", "--recover")
    shutil.copy(runs["cut"] / "steps.jsonl", results / "cut" / "steps.jsonl")
    (results / "whole" / "config.json").write_text('{"fingerprint": ')
    refused(["report", str(results), "--figures", str(tmp_path / "figures")], results,
            str(results / "whole" / "config.json"), "move the run folder out")
    assert not (tmp_path / "figures").exists()


def test_report_in_clicks_of_records_without_clicks_is_one_line(tmp_path: Path, refused: Callable[..., str]) -> None:
    run = tmp_path / "results" / "full-bald-s0"
    run.mkdir(parents=True)
    (run / "steps.jsonl").write_text(json.dumps({"strategy": "full", "acquisition": "bald", "seed": 0, "step": 0,
                                                 "labelled_fraction": 0.2, "f1": 0.5, "reference": False}) + "\n")
    refused(["report", str(tmp_path / "results"), "--figures", str(tmp_path / "figures"), "--cost", "clicks"],
            tmp_path / "results", "'labelled_clicks'", "cost 'pixels'")
    assert not (tmp_path / "figures").exists()
