"""Training and MC-inference throughput of the DCAN model on the current device (not a test).

Usage::

    python -m benchmarks.train_throughput [--setting quick|paper] [--iterations N] [--device auto]

``quick`` reads ``params/quick.yaml`` (ResNet-18, small images), ``paper`` reads
``params/glas.yaml`` (ResNet-50, 528x784 images, 480x480 crops, batch 5). Training images/s counts
augmented crops through one optimizer step (forward, Eq. 9 loss, backward, Adam); MC inference
counts stochastic forward passes of full images (dropout on, batch-norm frozen), so one image
scored with T passes costs T of them. Random images are used: throughput does not depend on content.
The last line is the headline figure.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from alseg_utils.augment import augment_batch
from alseg_utils.config import RunConfig, load_config
from alseg_utils.devices import resolve_device
from alseg_utils.model import build_model, set_mc_mode
from alseg_utils.train import amp_dtype, aux_weight_at, make_optimizer, train_step

PARAMS = {"quick": "params/quick.yaml", "paper": "params/glas.yaml"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """Human-readable name of the device (GPU model, or CPU with its thread count)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads of {os.cpu_count()} cores)"


def train_images_per_s(cfg: RunConfig, device: torch.device, iterations: int, warmup: int) -> float:
    """Augmented training images per second through full optimizer steps.

    Args:
        cfg: model and training settings (image size from ``data.image_size``).
        device: where to train.
        iterations: timed optimizer steps.
        warmup: untimed steps first (allocator, cuDNN autotuning).

    Returns:
        Images per second.
    """
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device).train()
    optimizer, _ = make_optimizer(model, cfg.train)
    amp = amp_dtype(device, cfg.train.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    gen = torch.Generator().manual_seed(0)
    (h, w), b = cfg.data.image_size, cfg.train.batch_size
    images = torch.randint(0, 256, (b, 3, h, w), dtype=torch.uint8, device=device)  # [B, 3, H, W]
    targets = torch.randint(0, 2, (b, 2, h, w), dtype=torch.uint8, device=device)  # [B, 2, H, W]
    for it in range(warmup + iterations):
        if it == warmup:
            _sync(device)
            start = time.perf_counter()
        x, y = augment_batch(images.float() / 255.0, targets, cfg.train, gen)
        train_step(model, optimizer, scaler, x, y, aux_weight_at(it, cfg.train), amp)
    _sync(device)
    return iterations * b / (time.perf_counter() - start)


@torch.no_grad()
def mc_passes_per_s(cfg: RunConfig, device: torch.device, iterations: int, warmup: int) -> float:
    """Stochastic forward passes (one image each) per second in MC-dropout mode.

    Args:
        cfg: model settings, ``data.image_size``, ``active.mc_batch_size``, ``train.amp``.
        device: where to run.
        iterations: timed batches.
        warmup: untimed batches first.

    Returns:
        Image-passes per second (divide by T for fully scored images per second).
    """
    torch.manual_seed(0)
    model = set_mc_mode(build_model(cfg.model).to(device), True)
    amp = amp_dtype(device, cfg.train.amp)
    (h, w), b = cfg.data.image_size, cfg.active.mc_batch_size
    x = torch.rand(b, 3, h, w, device=device)  # [B, 3, H, W]
    for it in range(warmup + iterations):
        if it == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = model(x)
        out.object.float().softmax(1)
        out.contour.float().softmax(1)
    _sync(device)
    return iterations * b / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Print the throughput figures of one setting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(PARAMS), default="quick")
    parser.add_argument("--iterations", type=int, default=0, help="timed steps (0 = a default per device)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    cfg = load_config(Path(__file__).resolve().parent.parent / PARAMS[args.setting])
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    iterations = args.iterations or (30 if device.type == "cuda" else 10 if args.setting == "quick" else 2)
    warmup = 5 if device.type == "cuda" else 1
    t, a = cfg.train, cfg.active
    print(f"setting {args.setting} ({PARAMS[args.setting]}): {cfg.model.encoder}, OS {cfg.model.output_stride}, "
          f"images {cfg.data.image_size}, crop {t.crop_size or 'none'}, batch {t.batch_size}, "
          f"MC batch {a.mc_batch_size}, T = {a.mc_samples}")
    print(f"device: {device_name(device)}; torch {torch.__version__}; AMP {amp_dtype(device, cfg.train.amp)}")
    if device.type == "cpu" and hasattr(os, "getloadavg"):  # other processes slow CPU figures down a lot
        print(f"load average before the run: {os.getloadavg()[0]:.1f} (figures assume an otherwise idle machine)")
    train = train_images_per_s(cfg, device, iterations, warmup)
    print(f"train:        {train:8.2f} images/s ({iterations} steps timed)")
    mc = mc_passes_per_s(cfg, device, iterations, warmup)
    print(f"MC inference: {mc:8.2f} image-passes/s = {mc / a.mc_samples:.2f} images/s with T = {a.mc_samples}")
    print(f"headline [{args.setting}, {device_name(device)}]: train {train:.2f} img/s, "
          f"MC inference {mc:.1f} img-passes/s")


if __name__ == "__main__":
    main()
