"""A rerun of a main-job sweep job gives its committed records (CPU, one thread per job as the sweep sets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from alseg_utils.active import run_active
from alseg_utils.config import load_config

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "notebooks" / "example_results" / "quick"


def _records(path: Path) -> list[dict]:
    """Step records without their wall-clock timing."""
    return [{k: v for k, v in json.loads(line).items() if k != "timing"}
            for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # what `alseg sweep --workers 2` gives each job on 2 cores
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_first_steps_of_a_committed_job_are_reproduced_bit_for_bit(tmp_path: Path, one_thread: None) -> None:
    job = "region-bald-s0"
    cfg = load_config(ROOT / "params" / "quick.yaml", {"active.strategy": "region", "active.acquisition": "bald",
                                                        "active.seed": 0, "active.steps": 1})
    records = run_active(cfg, tmp_path / job, progress=False)
    committed = _records(COMMITTED / job / "steps.jsonl")[:2]
    again = [{k: v for k, v in r.items() if k != "timing"} for r in records]
    assert [r["step"] for r in again] == [0, 1]
    assert again == committed
