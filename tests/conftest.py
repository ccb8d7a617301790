"""Shared test fixtures: the tiny synthetic run configuration and the command line's one-line refusal.

The tiny configuration is a GlaS-like synthetic set of 64 x 96 images, a narrow ResNet-18 DCAN and a
two-step loop, small enough for a whole AL run in seconds on 2 CPU cores. Test files take it through
the ``tiny_config`` (a dict) or ``tiny_params`` (a YAML file) fixtures, with per-section overrides,
instead of keeping copies of it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from alseg_utils.cli import main

TINY_CONFIG: dict[str, dict[str, Any] | str] = {
    "name": "tiny",
    "data": {"dataset": "glas", "root": "data", "synthetic": True, "synthetic_n_train": 14,
             "synthetic_n_test": 4, "synthetic_size": [64, 96], "image_size": [64, 96], "n_initial": 3,
             "n_val": 3, "contour_radius": 1},
    "model": {"encoder": "resnet18", "decoder_channels": 8, "output_stride": 16},
    "train": {"iterations": 3, "batch_size": 2, "crop_size": [], "progress": False, "rotation": 0.0},
    "active": {"steps": 2, "images_per_step": 2, "regions_per_step": 3, "region_size": 16,
               "region_stride": 8, "mc_samples": 2, "mc_batch_size": 4, "restarts_full": 1,
               "restarts_region": 2},
    "eval": {"min_object_size": 5, "eval_batch_size": 4},
}
"""The tiny run: 14 synthetic training images (3 initial, 3 validation, 8 pool), 4 test images."""

TinyConfig = Callable[..., dict[str, Any]]
TinyParams = Callable[..., Path]


def _tiny(**sections: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy of :data:`TINY_CONFIG`, each keyword's keys merged into that section."""
    raw: dict[str, Any] = copy.deepcopy(TINY_CONFIG)
    for section, values in sections.items():
        if not isinstance(values, dict):
            raise TypeError(f"override of section {section!r} must be a dict, got {type(values).__name__}")
        raw[section] = {**raw.get(section, {}), **copy.deepcopy(values)}
    return raw


@pytest.fixture(scope="session")
def tiny_config() -> TinyConfig:
    """``tiny_config(active={"steps": 1}, ...)``: the tiny run as a dict, sections updated key by key.

    Every call returns a new deep copy, so a test may change it freely.
    """
    return _tiny


@pytest.fixture(scope="session")
def tiny_params() -> TinyParams:
    """``tiny_params(folder, **sections)``: write the tiny run to ``folder/tiny.yaml`` and return the path."""

    def write(folder: Path, **sections: dict[str, Any]) -> Path:
        path = Path(folder) / "tiny.yaml"
        path.write_text(yaml.safe_dump(_tiny(**sections)))
        return path

    return write


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def refused(capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """``refused(argv, folder, *needles)``: ``alseg argv`` exits 2 with one ``alseg: error:`` line.

    The line must hold every needle and ``folder`` must be byte for byte unchanged; the line is returned.
    """

    def check(argv: list[str], folder: Path, *needles: str) -> str:
        before = _snapshot(folder)
        capsys.readouterr()
        assert main(argv) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("alseg: error:"), captured.err
        for needle in needles:
            assert needle in lines[0], lines[0]
        assert _snapshot(folder) == before
        return lines[0]

    return check
