"""Smoke test of benchmarks/upsampling.py: both implementations are timed and the swap is undone."""

from __future__ import annotations

import re

from alseg_utils import model as model_module
from benchmarks import upsampling


def test_upsampling_benchmark_prints_every_row_and_restores_the_side_outputs(capsys):
    original = model_module.SideOutput.forward
    upsampling.main(["--setting", "quick", "--device", "cpu", "--rounds", "1"])
    out = capsys.readouterr().out
    assert model_module.SideOutput.forward is original
    for stride in (8, 16, 32):  # quick.yaml: output stride 32, side outputs of stages 2-4
        assert re.search(rf"side output x{stride} +forward +pytorch", out)
        assert re.search(rf"side output x{stride} +forward \+ backward", out)
    ratios = [float(r) for r in re.findall(r"ratio (\d+\.\d+)", out)]
    assert len(ratios) == 8 and all(r > 0 for r in ratios)
    assert re.search(r"headline \[quick, cpu\]: pytorch / overlap-add = \d+\.\d+ per training step", out)
