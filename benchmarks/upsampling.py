"""Side-output upsampling: the overlap-add (``upsample_transposed``) against PyTorch's transposed convolution.

Usage::

    python -m benchmarks.upsampling [--setting quick|paper] [--device auto|cpu|cuda] [--rounds 6]

The DCAN side outputs upsample 2-class logits by their stage's stride ``s`` with a learned 2s x 2s
deconvolution. :class:`alseg_utils.model.SideOutput` computes it on the CPU with
:func:`alseg_utils.model.upsample_transposed` and on CUDA with ``nn.ConvTranspose2d`` (cuDNN): this
benchmark measures both on the current device, (1) per side output at the setting's shapes (forward,
forward + backward) and (2) for a whole training step and a whole MC forward pass of the setting's
model (``SideOutput.forward`` swapped for the duration of each measurement). Rounds alternate the two,
and the median of the rounds is printed, so that load from other processes hits both alike; on the CPU
the times are process CPU time (one thread unless ``OMP_NUM_THREADS`` says otherwise). The last line
is the headline: time of PyTorch's kernel / time of the overlap-add (> 1: the overlap-add is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from alseg_utils import model as model_module
from alseg_utils.config import RunConfig, load_config
from alseg_utils.devices import amp_dtype, resolve_device
from alseg_utils.model import SIDE_LEVELS, _fit, _stage_strides, build_model, set_mc_mode, upsample_transposed
from alseg_utils.train import make_optimizer, train_step
from benchmarks.train_throughput import _sync

PARAMS = {"quick": "params/quick.yaml", "paper": "params/glas.yaml"}


def _pytorch_forward(self: model_module.SideOutput, x: Tensor, size: tuple[int, int]) -> Tensor:
    return _fit(self.up(self.conv(x)), size)  # [B, 2, H, W]


def _overlap_add_forward(self: model_module.SideOutput, x: Tensor, size: tuple[int, int]) -> Tensor:
    return _fit(upsample_transposed(self.conv(x), self.up.weight, self.up.bias, self.up.stride[0]), size)


IMPLEMENTATIONS = {"pytorch": _pytorch_forward, "overlap-add": _overlap_add_forward}


def _clock(device: torch.device) -> float:
    _sync(device)
    return time.perf_counter() if device.type == "cuda" else time.process_time()


def _median_ms(fns: Mapping[str, Callable[[], object]], device: torch.device, repeats: int,
               rounds: int) -> dict[str, float]:
    """Median over ``rounds`` (alternating the functions) of the mean ms of ``repeats`` calls of each."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()  # warm-up
            start = _clock(device)
            for _ in range(repeats):
                fn()
            times[name].append((_clock(device) - start) / repeats * 1000)
    return {name: statistics.median(v) for name, v in times.items()}


def side_output_ms(cfg: RunConfig, device: torch.device, rounds: int) -> list[tuple[int, str, dict[str, float]]]:
    """Forward and forward + backward ms of one side output's upsampling per stride of the setting."""
    (h, w), b, c = cfg.train.crop_size or cfg.data.image_size, cfg.train.batch_size, cfg.model.decoder_channels
    strides = [_stage_strides(cfg.model.output_stride)[k - 1] for k in SIDE_LEVELS]
    rows = []
    for s in sorted(set(strides)):
        x = torch.randn(b, c, h // s, w // s, device=device, requires_grad=True)  # [B, C, h, w]
        weight = torch.randn(c, 2, 2 * s, 2 * s, device=device, requires_grad=True)
        bias = torch.randn(2, device=device, requires_grad=True)
        ops = {"pytorch": lambda x=x, weight=weight, bias=bias, s=s: F.conv_transpose2d(
                   x, weight, bias, stride=s, padding=s // 2),
               "overlap-add": lambda x=x, weight=weight, bias=bias, s=s: upsample_transposed(x, weight, bias, s)}
        with torch.no_grad():
            rows.append((s, "forward", _median_ms(ops, device, 20, rounds)))
        both = {name: (lambda op=op: op().float().square().mean().backward()) for name, op in ops.items()}
        rows.append((s, "forward + backward", _median_ms(both, device, 20, rounds)))
    return rows


def model_ms(cfg: RunConfig, device: torch.device, rounds: int) -> dict[str, dict[str, float]]:
    """ms of one training step and of one MC forward pass of ``active.mc_batch_size`` images, per implementation."""
    torch.manual_seed(0)
    net = build_model(cfg.model).to(device).train()
    optimizer, _ = make_optimizer(net, cfg.train)
    amp = amp_dtype(device, cfg.train.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    (h, w), b = cfg.train.crop_size or cfg.data.image_size, cfg.train.batch_size
    images = torch.rand(b, 3, h, w, device=device)  # [B, 3, H, W]
    targets = torch.randint(0, 2, (b, 2, h, w), dtype=torch.uint8, device=device)  # [B, 2, H, W]
    pool = torch.rand(cfg.active.mc_batch_size, 3, h, w, device=device)  # [B, 3, H, W]
    original = model_module.SideOutput.forward
    result: dict[str, dict[str, float]] = {"training step": {}, "MC forward pass": {}}

    def run(name: str, what: str) -> None:
        model_module.SideOutput.forward = IMPLEMENTATIONS[name]  # type: ignore[method-assign]
        if what == "training step":
            net.train()
            train_step(net, optimizer, scaler, images, targets, 1.0, amp)
        else:
            with torch.no_grad(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                set_mc_mode(net, True)(pool)

    try:
        for what in result:
            fns = {name: (lambda name=name, what=what: run(name, what)) for name in IMPLEMENTATIONS}
            result[what] = _median_ms(fns, device, 10, rounds)
    finally:
        model_module.SideOutput.forward = original  # type: ignore[method-assign]
    return result


def main(argv: list[str] | None = None) -> None:
    """Print the side-output and whole-model timings of one setting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(PARAMS), default="quick")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds; the median is printed")
    args = parser.parse_args(argv)
    cfg = load_config(Path(__file__).resolve().parent.parent / PARAMS[args.setting])
    device = resolve_device(args.device)
    print(f"setting {args.setting}: {cfg.model.encoder} width {cfg.model.width}, OS {cfg.model.output_stride}, "
          f"crops {cfg.train.crop_size or cfg.data.image_size}, batch {cfg.train.batch_size}; device {device}, "
          f"{torch.get_num_threads()} threads, AMP {amp_dtype(device, cfg.train.amp)}")
    for s, what, ms in side_output_ms(cfg, device, args.rounds):
        print(f"side output x{s:<3} {what:<19} pytorch {ms['pytorch']:8.3f} ms  overlap-add {ms['overlap-add']:8.3f} ms"
              f"  ratio {ms['pytorch'] / ms['overlap-add']:.2f}")
    whole = model_ms(cfg, device, args.rounds)
    for what, ms in whole.items():
        print(f"{what:<36} pytorch {ms['pytorch']:8.2f} ms  overlap-add {ms['overlap-add']:8.2f} ms"
              f"  ratio {ms['pytorch'] / ms['overlap-add']:.2f}")
    step, mc = whole["training step"], whole["MC forward pass"]
    print(f"headline [{args.setting}, {device}]: pytorch / overlap-add = {step['pytorch'] / step['overlap-add']:.2f} "
          f"per training step, {mc['pytorch'] / mc['overlap-add']:.2f} per MC forward pass")


if __name__ == "__main__":
    main()
