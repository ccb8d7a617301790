"""The run folder on hand-made files: layout, atomic writes, state commit / restore / repair, caches."""

from __future__ import annotations

import io
import json
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

import alseg_utils.results as results
import alseg_utils.run_folder as run_folder
import alseg_utils.train as train
from alseg_utils.errors import RunStateError
from alseg_utils.labels import LabelStore
from alseg_utils.run_folder import (
    RunFolder,
    RunState,
    atomic_open,
    atomic_write_bytes,
    load_checkpoint,
    save_checkpoint,
    save_npz,
    selection_name,
    step_name,
)

POOL = (3, 4, 5)  # N, H, W of the hand-made pool


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _store(labelled_images: int) -> LabelStore:
    store = LabelStore.empty(np.ones(POOL, bool))
    store.labels[:labelled_images] = 1
    store.contours[:labelled_images] = 0
    return store


def _record(step: int, store: LabelStore) -> dict:
    return {"step": step, "labelled_pixels": store.labelled_pixels(), "f1": 0.5 + step / 10}


def _two_steps(folder: RunFolder) -> tuple[RunState, LabelStore, torch.nn.Module]:
    """Commit steps 0 and 1 (one then two labelled images) with a tiny linear model."""
    state = RunState()
    model = _net()
    for step in (0, 1):
        store = _store(step + 1)
        with torch.no_grad():
            model.bias.fill_(float(step))
        state = folder.commit(state, step, store, model, _record(step, store))
    return state, store, model


def test_every_path_of_the_layout(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "runs" / "a")
    assert step_name(7) == "step_007" and selection_name(12) == "selections/step_012.npz"
    assert run.config_file == tmp_path / "runs" / "a" / "config.json"
    assert run.state_file.name == "state.json" and run.records_file.name == "steps.jsonl"
    assert run.superpixels_file.name == "superpixels.npz"
    assert (run.labels_name(3), run.model_name(3)) == ("labels_step_003.npz", "model_step_003.pt")
    assert run.selection_file(1) == run.path / "selections" / "step_001.npz"
    assert run.initial_model_dir("k") == tmp_path / "runs" / ".initial_models" / "k"
    assert run.request_json(2) == run.path / "annotations" / "step_002" / "request.json"
    assert run.request_npz(2).parent == run.answers_file(2).parent == run.annotation_dir(2)
    assert run.answers_file(2).name == "answers.npz"
    assert run.export_dir(4) == run.path / "to_annotate" / "step_004"
    assert run.export_dir(4, tmp_path / "x") == tmp_path / "x" / "step_004"
    assert not run.path.exists()  # naming a path creates nothing


def test_atomic_open_replaces_whole_files_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(path, b"old")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    with pytest.raises(KeyError), atomic_open(path) as fh:
        fh.write(b"half of the new")
        raise KeyError("interrupted")
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]  # no temporary file left
    save_npz(path, {"b": np.arange(3), "a": np.ones(2)})
    with np.load(path) as z:
        assert z.files == ["b", "a"] and z["b"].tolist() == [0, 1, 2]


def test_checkpoint_bytes_are_those_torch_writes_to_a_file(tmp_path: Path) -> None:
    model = _net()
    save_checkpoint(model, tmp_path / "m.pt")
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    assert (tmp_path / "m.pt").read_bytes() == buf.getvalue()
    other = torch.nn.Linear(3, 2)
    load_checkpoint(other, tmp_path / "m.pt")
    assert torch.equal(other.weight, model.weight)
    (tmp_path / "m.pt").write_bytes(buf.getvalue()[:100])
    with pytest.raises(RunStateError, match=r"m.pt: the model checkpoint is damaged or truncated .*; do this"):
        load_checkpoint(other, tmp_path / "m.pt", advice="do this")


def test_old_import_locations_are_the_same_functions() -> None:
    for name in ("atomic_write_bytes", "atomic_write_text", "atomic_write_json", "damaged_file_error",
                 "git_commit", "one_line_reason", "read_json_file", "read_npz_file", "read_records",
                 "read_run_config_file", "write_records"):
        assert getattr(results, name) is getattr(run_folder, name), name
    assert train.save_checkpoint is save_checkpoint and train.load_checkpoint is load_checkpoint


def test_git_commit_is_the_checkout_head_or_unknown(tmp_path: Path) -> None:
    assert run_folder.git_commit(tmp_path) == "unknown"  # not a git checkout
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", run_folder.git_commit())  # this project's HEAD, when checked out


def test_claim_writes_the_config_once_and_refuses_other_runs(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_folder, "git_commit", lambda: "0123abc")  # the commit of the code that ran
    run = RunFolder(tmp_path / "r")
    run.claim("abc", False, {"name": "tiny"})
    stored = json.loads(run.config_file.read_text())
    assert stored == {"fingerprint": "abc", "reference": False, "config": {"name": "tiny"}, "git_commit": "0123abc"}
    before = run.config_file.read_bytes()
    run.claim("abc", False, {"name": "changed but same fingerprint"})  # resumed: nothing written
    assert run.config_file.read_bytes() == before
    with pytest.raises(RunStateError, match="different configuration .*fingerprint abc, this one xyz"):
        run.claim("xyz", False, {})
    with pytest.raises(RunStateError, match="different configuration"):
        run.claim("abc", True, {})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(RunStateError, match="not empty and is not an alseg run folder"):
        RunFolder(tmp_path / "mine").claim("abc", False, {})
    (tmp_path / "orphan").mkdir()
    (tmp_path / "orphan" / "steps.jsonl").write_text("")
    with pytest.raises(RunStateError, match=r"orphan/config.json: the run's configuration record is missing"):
        RunFolder(tmp_path / "orphan").claim("abc", False, {})


def test_run_config_needs_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(RunStateError, match="not an alseg run folder .no config.json."):
        RunFolder(tmp_path).run_config()
    (tmp_path / "config.json").write_text('{"fingerprint": "abc", "config": {"name": "tiny"}}')
    assert RunFolder(tmp_path).run_config().name == "tiny"
    (tmp_path / "config.json").write_text('{"fingerprint": ')
    with pytest.raises(RunStateError, match="configuration record is damaged or truncated"):
        RunFolder(tmp_path).run_config()


def test_commit_keeps_the_last_step_only_and_restores_it(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r")
    assert run.read_state(False, _net, POOL) == (RunState(), [])  # a new folder
    state, store, model = _two_steps(run)
    assert sorted(p.name for p in run.path.iterdir()) == ["labels_step_001.npz", "model_step_001.pt",
                                                         "state.json", "steps.jsonl"]
    on_disk = json.loads(run.state_file.read_text())
    assert on_disk == {"step": 1, "records": state.records, "labels_file": "labels_step_001.npz",
                       "model_file": "model_step_001.pt"}
    assert run.read_records() == state.records and [r["labelled_pixels"] for r in state.records] == [20, 40]
    again, repaired = run.read_state(False, _net, POOL)
    assert again == state and repaired == []
    got_store, got_model = run.restore(again, _net, POOL)
    assert (got_store.labels == store.labels).all() and got_model.bias.tolist() == [1.0, 1.0]
    with pytest.raises(RunStateError, match=r"labels_step_001.npz: the label store is damaged .*3 images of 4x5"):
        run.restore(again, _net, (3, 4, 6))
    assert run.last_finished_labels()[0] == 1
    assert (run.last_finished_labels()[1].labels == store.labels).all()
    assert RunFolder(tmp_path / "new").last_finished_labels() == (-1, None)


def test_damaged_state_is_refused_then_rebuilt_on_request(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r")
    state, _, _ = _two_steps(run)
    good = run.state_file.read_bytes()
    run.state_file.write_bytes(good[: len(good) // 2])
    with pytest.raises(RunStateError, match=r"state.json: the run state is damaged .*rerun with --recover"):
        run.read_state(False, _net, POOL)
    assert run.state_file.read_bytes() == good[: len(good) // 2]  # nothing changed when refused
    rebuilt, repaired = run.read_state(True, _net, POOL)
    assert rebuilt == state and json.loads(run.state_file.read_bytes()) == json.loads(good)
    assert len(repaired) == 1 and "rebuilt" in repaired[0]
    assert (run.path / "state.json.damaged").read_bytes() == good[: len(good) // 2]
    # a label store that does not hold the recorded labels cannot rebuild it
    run.state_file.write_text("not json")
    _store(3).save(run.path / "labels_step_001.npz")
    with pytest.raises(RunStateError, match="cannot be rebuilt .labels_step_001.npz does not hold the labels"):
        run.read_state(True, _net, POOL)


def test_damaged_records_are_written_again_from_the_state(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r")
    state, _, _ = _two_steps(run)
    good = run.records_file.read_text()
    run.records_file.write_text(good[:-20])
    with pytest.raises(RunStateError, match=r"steps.jsonl: the step record file is damaged .*--recover"):
        run.read_state(False, _net, POOL)
    again, repaired = run.read_state(True, _net, POOL)
    assert again == state and run.records_file.read_text() == good
    assert (run.path / "steps.jsonl.damaged").read_text() == good[:-20] and "wrote" in repaired[0]
    assert run.keep_damaged(run.records_file).name == "steps.jsonl.damaged-2"


def test_selections_round_trip_in_the_order_given(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    with pytest.raises(RunStateError, match="step 1 has not acquired anything"):
        run.load_selection(1)
    run.save_selection(1, {"acquired_score": np.array([0.5, 0.25], np.float32), "regions": np.zeros((0, 5))})
    got = run.load_selection(1)
    assert list(got) == ["acquired_score", "regions"] and got["acquired_score"].tolist() == [0.5, 0.25]
    run.selection_file(1).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(RunStateError, match="the selection of step 1 is damaged"):
        run.load_selection(1)


def test_initial_model_cache_hits_misses_and_refuses_damage(tmp_path: Path) -> None:
    run, calls = RunFolder(tmp_path / "r"), []

    def new_model() -> torch.nn.Module:
        calls.append(1)
        return torch.nn.Linear(3, 2)

    assert run.load_initial_model("k", new_model) is None and not calls  # a miss builds no network
    model = _net()
    run.save_initial_model("k", model, {"f1": 0.25})
    got, metrics = run.load_initial_model("k", new_model)
    assert metrics == {"f1": 0.25} and torch.equal(got.weight, model.weight) and len(calls) == 1
    (run.initial_model_dir("k") / "model.pt").unlink()
    with pytest.raises(RunStateError, match="cached initial model is missing; .*delete the folder"):
        run.load_initial_model("k", new_model)


def test_request_steps_lists_stored_requests(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    assert run.request_steps() == []
    for step in (2, 0):
        run.request_json(step).parent.mkdir(parents=True)
        run.request_json(step).write_text("{}")
    run.annotation_dir(5).mkdir()  # a folder without a request
    assert run.request_steps() == [0, 2]
