"""One acquisition step at the paper's GlaS setting, timed, and the GPU-hours of the paper's whole grid.

Usage::

    python -m benchmarks.paper_scale [--device auto|cpu|cuda] [--data DIR] [--out FILE.json]
                                     [--timed-steps N] [--tiny]

Reads ``params/glas.yaml`` (ResNet-v2-50 from timm at output stride 16, 480x480 crops, batch 5, 740
epochs per training, T = 30, AMP on CUDA) with ``model.pretrained`` forced to false (offline: random
initialisation, no weight download; the timing does not depend on the weights). The data are a
synthetic GlaS look-alike in the official Warwick-QU layout, 85 training and 80 test images of
522x775 zero-padded to 528x784 (``data.synthetic_*`` of glas.yaml, as the paper): written by
:func:`alseg_utils.synthetic.make_glas_like` in parallel pieces (one per CPU core, each its own seed,
then numbered into one folder), or read from ``--data DIR`` when that folder holds a ``Grade.csv``
(a real GlaS folder works too). :func:`alseg_utils.active.prepare_run_data` splits them as the AL
loop does: 10 initial, 10 validation and 65 pool images.

What is timed (one acquisition step, the full-image strategy's step 1: 15 labelled images):

1. training: :func:`alseg_utils.train.train_model` itself (crop plan, augmentation, Eq. 9 step,
   learning-rate schedule, weight average, final validation) run for ``warm-up + --timed-steps``
   optimizer steps (``train.iterations`` as the ceiling); every ``train_step`` is clocked (CUDA
   events, no extra synchronisation), and the window after the warm-up gives seconds per step and
   training images/s. One restart of the paper's length is projected as ``setup + steps x seconds
   per step``, its steps from :func:`alseg_utils.train.training_budget` of the labelled set; the
   setup (model, crop plan, copy to the device, final validation) is the rest of the timed run;
2. MC scoring of the 65 pool images at T = 30 (``active.mc_batch_size`` images per batch):
   ours, :func:`alseg_utils.mc_dropout.mc_predict` + the acquisition function, and baal's MC dropout
   (``predict_on_dataset`` + ``BALD``, the wrapper of :mod:`benchmarks.mc_scoring`) on the same
   trained model; wall time, peak GPU memory above the level before the call
   (``torch.cuda.max_memory_allocated``, reset before each) and peak resident host memory;
3. test-set evaluation: :func:`alseg_utils.evaluate.evaluate_model` (MC at T = 30, instances,
   object and calibration metrics), the function the AL loop calls after each step.

Projection: for the strategies ``full`` (Alg. 1, 5 images per step) and ``region`` (Alg. 2, 20
windows of 150x150 per step) every step 0..10 of one run gets its labelled set's training budget
(``crops_per_epoch`` of the labelled pixels, then ``training_budget``), times its restarts (3 full, 4
region), plus scoring its candidates (full: the pool shrinks by 5 images a step) and one test
evaluation. Region windows are simulated: the disjoint 150x150 tiles of the pool images in a random
order (spread-out picks; picks that cluster in fewer images give a few fewer crops per epoch and a
shorter budget). The grid is ``sweep.acquisitions`` x ``sweep.seeds`` runs of steps 1..10 per
strategy, step 0 once per strategy and seed (the AL loop shares the initial model of a seed between
acquisition functions; its key includes the restarts, so full and region train their own), and the
full-data reference of each seed (``sweep.full_data_reference``). The superpixel strategy of the
glas.yaml sweep is left out. One job holds one GPU (``sweep.gpus_per_job``), so device-hours add up.

``--tiny`` runs every code path above on the CPU in seconds (64x96 images, a narrow ResNet-10,
T = 2, three steps of 2 images / 4 windows, a few timed steps, baal included): the test of this file.
The last line printed is the headline.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from torch import Tensor

import alseg_utils.train as train_module
from alseg_utils.active import RunData, prepare_run_data, reference_set
from alseg_utils.config import UNLABELLED, ActiveConfig, RunConfig, load_config
from alseg_utils.crops import crops_per_epoch
from alseg_utils.data import SegmentationSet
from alseg_utils.devices import resolve_device
from alseg_utils.evaluate import evaluate_model
from alseg_utils.mc_dropout import mc_predict
from alseg_utils.model import DCAN
from alseg_utils.regions import Region, region_origins, regions_mask
from alseg_utils.run_folder import atomic_write_json, atomic_write_text
from alseg_utils.synthetic import GLAS_GRADE_HEADER, make_glas_like
from alseg_utils.train import LabelledSet, amp_dtype, train_model, training_budget
from alseg_utils.uncertainty import score_prediction
from benchmarks.mc_scoring import MIB, Setting, _PeakMemory, _prepare_baal, _warm_up
from benchmarks.train_throughput import _sync

PARAMS = Path(__file__).resolve().parent.parent / "params" / "glas.yaml"

#: ``--tiny``: glas.yaml shrunk to seconds on the CPU (same code paths).
TINY: dict[str, Any] = {
    "data.synthetic_n_train": 10, "data.synthetic_n_test": 4, "data.synthetic_size": [64, 96],
    "data.image_size": [64, 96], "data.n_initial": 2, "data.n_val": 2, "data.contour_radius": 1,
    "model.encoder": "resnet10", "model.width": 16, "model.decoder_channels": 8,
    "train.batch_size": 2, "train.crop_size": [48, 48],
    "active.steps": 3, "active.images_per_step": 2, "active.regions_per_step": 4, "active.region_size": 16,
    "active.region_stride": 4, "active.mc_samples": 2, "active.mc_batch_size": 4,
    "eval.eval_batch_size": 4, "eval.min_object_size": 10,
    "sweep.seeds": [0, 1],
}


# ------------------------------------------------------------------------------ settings and data


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask; the whole machine where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_settings(data_dir: Path, device: str, tiny: bool) -> RunConfig:
    """glas.yaml (shrunk by :data:`TINY` with ``tiny``) reading ``data_dir``, with no weight download.

    Args:
        data_dir: a GlaS-layout folder (written by :func:`generate_glas_like` or a real one).
        device: ``auto | cpu | cuda`` for ``train.device``.
        tiny: apply :data:`TINY`.

    Returns:
        The validated configuration, ``model.pretrained`` False.
    """
    overrides = {**(TINY if tiny else {}), "model.pretrained": False, "data.root": str(data_dir.resolve()),
                 "data.synthetic": False, "train.device": device, "train.progress": False}
    return load_config(PARAMS, overrides)


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split into ``min(parts, total)`` counts that differ by at most one, each >= 1.

    Args:
        total: >= 1.
        parts: >= 1.

    Returns:
        The counts, largest first.
    """
    parts = max(1, min(parts, total))
    return [total // parts + (k < total % parts) for k in range(parts)]


def _merge_parts(parts: Sequence[Path], root: Path) -> None:
    """Number the images of every part folder into ``root`` (``train_1..``, ``testA_1..``, ...) and
    write one Grade.csv (last: its presence marks a complete folder)."""
    counts: dict[str, int] = {}
    rows = [GLAS_GRADE_HEADER]
    for part in parts:
        for line in (part / "Grade.csv").read_text().splitlines()[1:]:
            name, rest = line.split(",", 1)
            split = name.rsplit("_", 1)[0]
            counts[split] = counts.get(split, 0) + 1
            new = f"{split}_{counts[split]}"
            for suffix in (".bmp", "_anno.bmp"):
                os.replace(part / f"{name}{suffix}", root / f"{new}{suffix}")
            rows.append(f"{new},{rest}")
        shutil.rmtree(part)
    atomic_write_text(root / "Grade.csv", "\n".join(rows) + "\n")


#: One piece of :func:`generate_glas_like` in a fresh interpreter: numpy, scipy and scikit-image only (a
#: ``multiprocessing`` child would import this module, torch included, first).
_PIECE = ("import sys; from alseg_utils.synthetic import make_glas_like; "
          "make_glas_like(sys.argv[1], *map(int, sys.argv[2:4]), tuple(map(int, sys.argv[4:6])), int(sys.argv[6]))")


def _run_pieces(pieces: Sequence[tuple[Path, int, int, Sequence[int], int]]) -> None:
    """``make_glas_like(*piece)`` for every piece, each in its own single-threaded process, all at once."""
    repo = str(PARAMS.parent.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)}
    procs = {root: subprocess.Popen([sys.executable, "-c", _PIECE, str(root), str(a), str(b), str(size[0]),
                                     str(size[1]), str(seed)], env=env) for root, a, b, size, seed in pieces}
    failed = [str(root) for root, proc in procs.items() if proc.wait() != 0]
    if failed:
        raise RuntimeError(f"generating the synthetic images failed in {', '.join(failed)} (see the messages above)")


def generate_glas_like(root: Path, n_train: int, n_test: int, size: Sequence[int], workers: int) -> None:
    """A GlaS-like folder from ``workers`` parallel :func:`~alseg_utils.synthetic.make_glas_like` calls.

    Piece ``k`` holds about ``1 / workers`` of the training and of the test images, drawn with seed
    ``k`` (so the pieces differ) by a process of its own; the pieces are then numbered into ``root``.

    Args:
        root: output folder (created).
        n_train: training images, >= 1.
        n_test: test images, >= 1.
        size: (H, W) of every image.
        workers: processes, >= 1 (at most ``min(n_train, n_test)`` are used).
    """
    root.mkdir(parents=True, exist_ok=True)
    n_pieces = max(1, min(workers, n_train, n_test))
    pieces = list(zip(split_evenly(n_train, n_pieces), split_evenly(n_test, n_pieces), strict=True))
    parts = [root / f".part-{k}" for k in range(n_pieces)]
    args = [(part, a, b, tuple(size), k) for k, (part, (a, b)) in enumerate(zip(parts, pieces, strict=True))]
    if len(args) == 1:
        make_glas_like(*args[0])
    else:
        _run_pieces(args)
    _merge_parts(parts, root)


# ------------------------------------------------------------------------------ 1. training


class StepClock:
    """When each optimizer step finished: a CUDA event per step (no synchronisation), or the CPU clock.

    Args:
        device: where the steps run.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.events: list[torch.cuda.Event] = []
        self.times: list[float] = []

    def __len__(self) -> int:
        """Steps clocked."""
        return len(self.events) if self.cuda else len(self.times)

    def wrap(self, step: Callable[..., Tensor]) -> Callable[..., Tensor]:
        """``step`` (:func:`alseg_utils.train.train_step`), clocked after each call."""
        def clocked(*args: Any, **kwargs: Any) -> Tensor:
            loss = step(*args, **kwargs)
            if self.cuda:
                event = torch.cuda.Event(enable_timing=True)
                event.record()
                self.events.append(event)
            else:
                self.times.append(time.perf_counter())
            return loss
        return clocked

    def seconds(self, first: int, last: int) -> float:
        """Seconds from the end of step ``first`` to the end of step ``last`` (0-based)."""
        if self.cuda:
            self.events[last].synchronize()
            return self.events[first].elapsed_time(self.events[last]) / 1000.0
        return self.times[last] - self.times[first]


@dataclass(frozen=True)
class TrainTiming:
    """Measured training cost.

    Attributes:
        warmup_steps: untimed optimizer steps before the window.
        timed_steps: optimizer steps in the window.
        step_s: seconds per optimizer step in the window.
        images_per_s: augmented training crops per second in the window.
        setup_s: the rest of one training (model, crop plan, data to the device, warm-up excess,
            weight average, final validation).
        run_s: wall time of the timed training.
        peak_gpu_mib: peak CUDA allocation during it (0 on the CPU).
        budget_steps: optimizer steps of one training of the paper's length on the timed set.
    """

    warmup_steps: int
    timed_steps: int
    step_s: float
    images_per_s: float
    setup_s: float
    run_s: float
    peak_gpu_mib: float
    budget_steps: int

    def restart_s(self, steps: int) -> float:
        """Projected seconds of one training of ``steps`` optimizer steps."""
        return self.setup_s + steps * self.step_s


def time_training(cfg: RunConfig, train: LabelledSet, val: LabelledSet, warmup: int,
                  timed: int) -> tuple[TrainTiming, DCAN]:
    """Time :func:`~alseg_utils.train.train_model` over ``warmup + timed`` optimizer steps.

    A 2-step training first pays the one-time costs (CUDA context, kernel loading). Then a training
    of ``warmup + timed`` steps (``train.iterations`` as its ceiling; the schedules stay those of the
    full budget) runs with every ``train_step`` clocked.

    Args:
        cfg: the settings (``train.device``, AMP, batch, crops, ...).
        train: the labelled set.
        val: the validation set.
        warmup: untimed steps, >= 1.
        timed: timed steps, >= 1.

    Returns:
        The :class:`TrainTiming`, and the model of the timed training (eval mode, on the device: what
        the scoring and the evaluation run).

    Raises:
        ValueError: the labelled set's budget is shorter than ``warmup + timed`` steps.
    """
    device = resolve_device(cfg.train.device)
    labelled = torch.from_numpy(train.labels != UNLABELLED)
    budget = training_budget(cfg.train, crops_per_epoch(labelled, cfg.train.crop_size)).iterations
    if budget < warmup + timed:
        raise ValueError(f"the labelled set trains {budget} steps, fewer than {warmup} + {timed} to time")
    train_model(train, val, cfg.model, dataclasses.replace(cfg.train, iterations=2), seed=0)
    clock = StepClock(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with mock.patch.object(train_module, "train_step", clock.wrap(train_module.train_step)):
        _sync(device)
        start = time.perf_counter()
        result = train_model(train, val, cfg.model, dataclasses.replace(cfg.train, iterations=warmup + timed), seed=1)
        _sync(device)
        run_s = time.perf_counter() - start
    if len(clock) != warmup + timed:
        raise RuntimeError(f"clocked {len(clock)} of {warmup + timed} steps: train_model no longer calls "
                           "alseg_utils.train.train_step")
    step_s = clock.seconds(warmup - 1, warmup + timed - 1) / timed
    peak = torch.cuda.max_memory_allocated() / MIB if device.type == "cuda" else 0.0
    timing = TrainTiming(warmup, timed, step_s, cfg.train.batch_size / step_s,
                         max(0.0, run_s - (warmup + timed) * step_s), run_s, peak, budget)
    return timing, result.model


# ------------------------------------------------------------------------------ 2., 3. scoring, evaluation


@dataclass(frozen=True)
class Timed:
    """Wall time and peak memory of one call.

    Attributes:
        seconds: wall time.
        gpu_peak_mib: peak CUDA allocation above the level before the call (None on the CPU).
        host_peak_mib: peak resident host memory above the level before the call.
        note: what else is worth printing (finite scores, metrics).
    """

    seconds: float
    gpu_peak_mib: float | None
    host_peak_mib: float
    note: str = ""


@contextmanager
def _measured(device: torch.device, out: list[Timed]) -> Iterator[list[str]]:
    """Time and peak memory of the block; appends a :class:`Timed` to ``out`` (the note from the list yielded)."""
    note: list[str] = []
    with _PeakMemory(device) as mem:
        start = time.perf_counter()
        yield note
        _sync(device)
        seconds = time.perf_counter() - start
    gpu = mem.gpu_peak / MIB if device.type == "cuda" else None
    out.append(Timed(seconds, gpu, mem.host_peak / MIB, "; ".join(note)))


def time_ours(model: DCAN, pool: np.ndarray, cfg: RunConfig, device: torch.device) -> Timed:
    """:func:`~alseg_utils.mc_dropout.mc_predict` + the acquisition function on the pool, as the AL loop calls them."""
    a = cfg.active
    mc_predict(model, pool[: a.mc_batch_size], T=1, batch_size=a.mc_batch_size, seed=0)  # warm-up (autocast kernels)
    out: list[Timed] = []
    with _measured(device, out) as note:
        pred = mc_predict(model, pool, T=a.mc_samples, batch_size=a.mc_batch_size, device=device, seed=0)
        scores = score_prediction(a.acquisition, pred, generator=torch.Generator().manual_seed(0))  # [N, H, W]
        finite = bool(torch.isfinite(pred.mean).all() and torch.isfinite(scores).all())
        note.append(f"{a.acquisition} scores {'finite' if finite else 'NOT FINITE'}, max {float(scores.max()):.3f}")
    return out[0]


def time_baal(model: DCAN, pool: np.ndarray, cfg: RunConfig, device: torch.device) -> Timed | str:
    """baal's MC dropout + BALD on the pool (:mod:`benchmarks.mc_scoring`'s wrapper), or why not."""
    a, (h, w) = cfg.active, pool.shape[1:3]
    setting = Setting("paper_scale", cfg.model.encoder, h, w, images=len(pool), T=a.mc_samples,
                      batch_size=a.mc_batch_size, baal_replicate=False, device=device.type)
    try:
        run = _prepare_baal(model, pool, setting)
    except ImportError as err:
        return f"n/a (baal not importable: {err})"
    _warm_up(model, pool, device)
    model.eval()
    out: list[Timed] = []
    try:
        with _measured(device, out) as note:
            note.append(f"outputs {run() / MIB:.0f} MiB on the host")
    except (RuntimeError, MemoryError) as err:  # CUDA out of memory is a RuntimeError
        return f"n/a (failed: {str(err).splitlines()[0][:120]})"
    return out[0]


def time_evaluation(model: DCAN, test: SegmentationSet, cfg: RunConfig, device: torch.device) -> Timed:
    """:func:`~alseg_utils.evaluate.evaluate_model` on the test set (MC at ``active.mc_samples``)."""
    out: list[Timed] = []
    with _measured(device, out) as note:
        metrics = evaluate_model(model, test, cfg, seed=0, device=device)
        note.append(f"f1 {metrics['f1']:.3f}, dice {metrics['dice']:.3f}, ece {metrics['ece']:.3f} (barely trained)")
    return out[0]


# ------------------------------------------------------------------------------ 4. projection


@dataclass(frozen=True)
class StepLabels:
    """What one step of one run has labelled, and what it scores.

    Attributes:
        step: 0..steps (-1: the full-data reference).
        images: fully labelled images.
        windows: labelled windows (region strategy).
        crops: :func:`~alseg_utils.crops.crops_per_epoch` of the labelled set.
        candidates: pool images scored before the step's acquisition (0 at step 0).
    """

    step: int
    images: int
    windows: int
    crops: float
    candidates: int


def image_crops(labelled: np.ndarray, crop: list[int]) -> np.ndarray:
    """:func:`~alseg_utils.crops.crops_per_epoch` of each image alone, ``[N]`` (they add up over images).

    Args:
        labelled: [N, H, W], bool.
        crop: ``train.crop_size``.

    Returns:
        [N], float64; equal masks are computed once.
    """
    cache: dict[bytes, float] = {}
    out = np.zeros(len(labelled))
    for i, mask in enumerate(labelled):
        key = np.packbits(mask).tobytes()
        if key not in cache:
            cache[key] = crops_per_epoch(torch.from_numpy(np.ascontiguousarray(mask[None])), crop)
        out[i] = cache[key]
    return out


def full_steps(valid: np.ndarray, n_initial: int, a: ActiveConfig, crop: list[int]) -> list[StepLabels]:
    """Alg. 1: ``images_per_step`` more fully labelled images a step (the next pool images).

    Args:
        valid: [N, H, W], bool, the AL training images (initial first, then the pool), False on padding.
        n_initial: initial images.
        a: ``steps``, ``images_per_step``.
        crop: ``train.crop_size``.
    """
    z = image_crops(valid, crop)  # [N]
    pool = len(valid) - n_initial
    rows = []
    for k in range(a.steps + 1):
        n = min(len(valid), n_initial + k * a.images_per_step)
        rows.append(StepLabels(k, n, 0, float(z[:n].sum()), pool - (k - 1) * a.images_per_step if k else 0))
    return rows


def region_steps(valid: np.ndarray, n_initial: int, a: ActiveConfig, crop: list[int], seed: int) -> list[StepLabels]:
    """Alg. 2: ``regions_per_step`` more windows a step, the disjoint tiles of the pool in a random order.

    Args:
        valid: as :func:`full_steps`.
        n_initial: initial (fully labelled) images.
        a: ``steps``, ``regions_per_step``, ``region_size``.
        crop: ``train.crop_size``.
        seed: of the tile order.
    """
    n, h, w = valid.shape
    tops, lefts = region_origins(h, w, a.region_size, a.region_size)
    tiles = [Region(i, t, left, a.region_size, a.region_size)
             for i in range(n_initial, n) for t in tops for left in lefts]
    order = np.random.default_rng(seed).permutation(len(tiles))
    initial = float(image_crops(valid[:n_initial], crop).sum())
    labelled = np.zeros_like(valid)  # [N, H, W]
    per_image = np.zeros(n)  # crops per epoch of each pool image's windows
    rows = [StepLabels(0, n_initial, 0, initial, 0)]
    for k in range(1, a.steps + 1):
        candidates = int((valid[n_initial:] & ~labelled[n_initial:]).any((1, 2)).sum())
        picked = [tiles[j] for j in order[(k - 1) * a.regions_per_step: k * a.regions_per_step]]
        labelled |= regions_mask(picked, (n, h, w)) & valid
        touched = sorted({r.image for r in picked})
        per_image[touched] = image_crops(labelled[touched], crop)
        rows.append(StepLabels(k, n_initial, len(picked) + rows[-1].windows, initial + float(per_image.sum()),
                               candidates))
    return rows


@dataclass(frozen=True)
class StepCost:
    """Projected seconds of one step of one run."""

    strategy: str
    labels: StepLabels
    train_steps: int
    restart_s: float
    restarts: int
    score_s: float
    eval_s: float

    @property
    def train_s(self) -> float:
        """All restarts."""
        return self.restarts * self.restart_s

    @property
    def total_s(self) -> float:
        """Training, scoring and evaluation."""
        return self.train_s + self.score_s + self.eval_s


def project(strategy: str, rows: list[StepLabels], cfg: RunConfig, train: TrainTiming, score_per_image_s: float,
            eval_s: float) -> list[StepCost]:
    """Seconds of every step of one run from the measured costs.

    Args:
        strategy: ``full`` (``active.restarts_full``), ``region`` (``restarts_region``) or ``reference``.
        rows: its labelled sets.
        cfg: ``train`` (the budget) and ``active`` (restarts).
        train: the measured training costs.
        score_per_image_s: MC scoring seconds per pool image.
        eval_s: seconds of one test-set evaluation.
    """
    restarts = cfg.active.restarts_region if strategy == "region" else cfg.active.restarts_full
    costs = []
    for r in rows:
        steps = training_budget(cfg.train, r.crops).iterations
        costs.append(StepCost(strategy, r, steps, train.restart_s(steps), restarts,
                              r.candidates * score_per_image_s, eval_s))
    return costs


@dataclass(frozen=True)
class GridPart:
    """One line of the grid: ``jobs`` times ``seconds`` on one device each."""

    name: str
    jobs: int
    trainings: int
    seconds: float

    @property
    def hours(self) -> float:
        """Device-hours of all jobs."""
        return self.jobs * self.seconds / 3600.0


def grid(runs: dict[str, list[StepCost]], reference: StepCost, cfg: RunConfig) -> list[GridPart]:
    """The paper's grid: per strategy, functions x seeds runs of steps 1.., step 0 per seed, references."""
    s = cfg.sweep
    n_runs, seeds = len(s.acquisitions) * len(s.seeds), len(s.seeds)
    parts = []
    for strategy, costs in runs.items():
        later = costs[1:]
        parts.append(GridPart(f"{strategy}, steps 1-{len(later)} ({n_runs} runs)", n_runs,
                              n_runs * sum(c.restarts for c in later), sum(c.total_s for c in later)))
        parts.append(GridPart(f"{strategy}, step 0 ({seeds} seeds)", seeds, seeds * costs[0].restarts,
                              costs[0].total_s))
    if s.full_data_reference:
        parts.append(GridPart(f"full-data reference ({seeds} seeds)", seeds, seeds * reference.restarts,
                              reference.total_s))
    return parts


# ------------------------------------------------------------------------------ command line


def _fmt_timed(t: Timed | str) -> str:
    if isinstance(t, str):
        return t
    gpu = "n/a" if t.gpu_peak_mib is None else f"{t.gpu_peak_mib:.0f} MiB"
    return f"{t.seconds:8.2f} s, peak GPU {gpu}, peak host RSS {t.host_peak_mib:.0f} MiB" + (
        f" ({t.note})" if t.note else "")


def print_steps(costs: list[StepCost]) -> None:
    """One line per step (minutes)."""
    for c in costs:
        r = c.labels
        step = "-" if r.step < 0 else str(r.step)
        print(f"{c.strategy:<10}{step:>5}{r.images:>7}{r.windows:>8}{r.crops:>12.1f}{c.train_steps:>12}"
              f"{c.restart_s / 60:>12.4g}{c.restarts:>9}{c.train_s / 60:>11.4g}{r.candidates:>7}"
              f"{c.score_s / 60:>11.4g}{c.eval_s / 60:>10.4g}{c.total_s / 60:>10.4g}")


def print_projection(runs: dict[str, list[StepCost]], reference: StepCost, parts: list[GridPart],
                     device: str, unit: str) -> None:
    """The per-step table and the grid table (``unit``: ``GPU`` or ``CPU``)."""
    print(f"\nprojection, one run (one strategy, function and seed), minutes on {device}:")
    print(f"{'strategy':<10}{'step':>5}{'images':>7}{'windows':>8}{'crops/epoch':>12}{'train steps':>12}"
          f"{'restart min':>12}{'restarts':>9}{'train min':>11}{'scored':>7}{'score min':>11}{'eval min':>10}"
          f"{'step min':>10}")
    for costs in runs.values():
        print_steps(costs)
    print_steps([reference])
    print(f"\ngrid ({unit}-hours on {device}, one {unit} per job):")
    print(f"{'part':<36}{'jobs':>6}{'trainings':>11}{'hours/job':>11}{'hours':>10}")
    for p in parts:
        print(f"{p.name:<36}{p.jobs:>6}{p.trainings:>11}{p.seconds / 3600:>11.4g}{p.hours:>10.2f}")
    total = sum(p.hours for p in parts)
    print(f"{'total':<36}{sum(p.jobs for p in parts):>6}{sum(p.trainings for p in parts):>11}{'':>11}{total:>10.2f}")


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n > 1 else ''})"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.paper_scale", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="GlaS-layout folder: reused when it holds Grade.csv, else written")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--out", type=Path, help="also write the results here as JSON (atomically)")
    p.add_argument("--timed-steps", type=int, default=0,
                   help="optimizer steps in the timing window (0 = 300 on CUDA, 2 on the CPU, 5 with --tiny)")
    p.add_argument("--tiny", action="store_true", help="every code path on tiny images in seconds (CPU)")
    return p.parse_args(argv)


def _step_counts(device: torch.device, tiny: bool, timed: int) -> tuple[int, int]:
    """(warm-up, timed) optimizer steps."""
    if tiny:
        return 2, timed or 5
    return (20, timed or 300) if device.type == "cuda" else (1, timed or 2)


def _prepare_data(args: argparse.Namespace, scratch: Path, tiny: bool) -> tuple[Path, str]:
    """The data folder (written when it holds no Grade.csv) and a line saying what was done."""
    root = args.data or scratch / "glas_like"
    if (root / "Grade.csv").is_file():
        return root, f"data: reused {root}"
    d = load_settings(root, "cpu", tiny).data  # what to generate
    workers = min(usable_cpus(), 2 if tiny else 64)
    start = time.perf_counter()
    generate_glas_like(root, d.synthetic_n_train, d.synthetic_n_test, d.synthetic_size, workers)
    return root, (f"data: wrote {d.synthetic_n_train} training + {d.synthetic_n_test} test images of "
                  f"{d.synthetic_size[0]}x{d.synthetic_size[1]} to {root} with {workers} processes in "
                  f"{time.perf_counter() - start:.1f} s")


def measure(cfg: RunConfig, data: RunData, device: torch.device, warmup: int, timed: int) -> dict[str, Any]:
    """Sections 1-3: training, scoring (ours, baal), evaluation; prints each as it is measured."""
    full, val = reference_set(data)
    n = data.n_initial + cfg.active.images_per_step  # the full strategy's step 1
    step1 = LabelledSet(full.images[:n], full.labels[:n], full.contours[:n])
    train, model = time_training(cfg, step1, val, warmup, timed)
    print(f"1. training on {n} images: {train.timed_steps} steps timed after {train.warmup_steps} warm-up: "
          f"{train.step_s * 1000:.1f} ms/step = {train.images_per_s:.2f} images/s; setup of a training "
          f"{train.setup_s:.2f} s (timed run {train.run_s:.1f} s, peak GPU {train.peak_gpu_mib:.0f} MiB)")
    print(f"   one training of the paper's length on these {n} images (training_budget): {train.budget_steps} steps "
          f"= {train.restart_s(train.budget_steps) / 60:.2f} min projected, x {cfg.active.restarts_full} restarts")
    pool = data.train.images[data.n_initial:]
    a = cfg.active
    ours = time_ours(model, pool, cfg, device)
    print(f"2. MC scoring, {len(pool)} pool images, T = {a.mc_samples}, batch {a.mc_batch_size}:")
    print(f"   ours (mc_predict): {_fmt_timed(ours)}")
    baal = time_baal(model, pool, cfg, device)
    print(f"   baal (MCDropoutModule + predict_on_dataset + BALD): {_fmt_timed(baal)}")
    evaluation = time_evaluation(model, data.test, cfg, device)
    print(f"3. evaluation, {len(data.test)} test images, MC T = {a.mc_samples}: {_fmt_timed(evaluation)}")
    return {"train": train, "ours": ours, "baal": baal, "eval": evaluation, "pool": len(pool),
            "test": len(data.test), "timed_set": n}


def project_all(cfg: RunConfig, data: RunData,
                measured: dict[str, Any]) -> tuple[dict[str, list[StepCost]], StepCost, list[GridPart]]:
    """Every step of a full and a region run, the full-data reference and the grid, from :func:`measure`."""
    valid, n0, a, crop = data.train.valid, data.n_initial, cfg.active, cfg.train.crop_size
    per_image, eval_s, train = measured["ours"].seconds / measured["pool"], measured["eval"].seconds, measured["train"]
    schedules = {"full": full_steps(valid, n0, a, crop), "region": region_steps(valid, n0, a, crop, a.seed)}
    runs = {name: project(name, rows, cfg, train, per_image, eval_s) for name, rows in schedules.items()}
    everything = StepLabels(-1, len(valid), 0, float(image_crops(valid, crop).sum()), 0)
    reference = project("reference", [everything], cfg, train, per_image, eval_s)[0]
    return runs, reference, grid(runs, reference, cfg)


def _headline(cfg: RunConfig, label: str, unit: str, m: dict[str, Any], runs: dict[str, list[StepCost]],
              parts: list[GridPart]) -> str:
    train, ours, baal = m["train"], m["ours"], m["baal"]
    step1 = runs["full"][1]
    vs = (f"baal {baal.seconds:.3g} s ({ours.seconds / baal.seconds:.2f}x)" if isinstance(baal, Timed)
          else "baal n/a")
    main_hours = sum(p.hours for p in parts if not p.name.startswith("full-data"))
    ref_hours = sum(p.hours for p in parts if p.name.startswith("full-data"))
    s = cfg.sweep
    return (f"paper_scale [{label}]: train {train.images_per_s:.1f} img/s; full step 1 = {step1.train_steps} steps "
            f"x {step1.restarts} restarts = {step1.train_s / 60:.1f} min; scoring {m['pool']} images at "
            f"T={cfg.active.mc_samples}: ours {ours.seconds:.3g} s vs {vs}; evaluation {m['eval'].seconds:.3g} s; "
            f"grid (full+region x {len(s.acquisitions)} functions x {len(s.seeds)} seeds x {cfg.active.steps} steps) "
            f"= {main_hours:.1f} {unit}-hours (+{ref_hours:.1f} for the references)")


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj


def main(argv: list[str] | None = None) -> int:
    """Time one acquisition step at the paper setting and project the paper's grid; prints a headline last.

    Torch uses every usable core (one thread with ``--tiny``: tiny tensors gain nothing from more, and
    a busy machine slows waiting threads down a lot); the thread count is restored afterwards.
    """
    args = _parse(argv)
    if args.timed_steps < 0:
        raise SystemExit(f"paper_scale: --timed-steps must be >= 0, got {args.timed_steps}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if args.tiny else max(1, min(threads, usable_cpus())))
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> int:
    """:func:`main` after the command line: measure, project, print (and write ``--out``)."""
    device = resolve_device("cpu" if args.tiny and args.device == "auto" else args.device)
    warmup, timed = _step_counts(device, args.tiny, args.timed_steps)
    with tempfile.TemporaryDirectory(prefix="paper_scale-") as scratch:
        root, data_line = _prepare_data(args, Path(scratch), args.tiny)
        cfg = load_settings(root, device.type, args.tiny)
        m, t = cfg.model, cfg.train
        label = f"{_device_label(device)}, AMP {amp_dtype(device, t.amp)}"
        print(f"setting: {'tiny (--tiny) ' if args.tiny else ''}{PARAMS.name}: {m.encoder}, OS {m.output_stride}, "
              f"crops {t.crop_size}, batch {t.batch_size}, {t.epochs:g} epochs, T = {cfg.active.mc_samples}; "
              f"model.pretrained forced to False (offline: random initialisation, no weight download)")
        print(f"device: {label}; torch {torch.__version__}, {torch.get_num_threads()} threads of {usable_cpus()} "
              f"usable cores; cudnn.benchmark {torch.backends.cudnn.benchmark} (as the AL loop)")
        print(data_line)
        start = time.perf_counter()
        data = prepare_run_data(cfg)
        print(f"data: loaded and split in {time.perf_counter() - start:.1f} s: {data.n_initial} initial, "
              f"{len(data.val)} validation, {len(data.train) - data.n_initial} pool, {len(data.test)} test images")
        measured = measure(cfg, data, device, warmup, timed)
    runs, reference, parts = project_all(cfg, data, measured)
    unit = "GPU" if device.type == "cuda" else "CPU"
    print_projection(runs, reference, parts, label, unit)
    headline = _headline(cfg, label, unit, measured, runs, parts)
    if args.out:
        atomic_write_json(args.out, {
            "setting": {"params": str(PARAMS), "tiny": args.tiny, "device": label, "pretrained": False,
                        "torch": torch.__version__, "threads": torch.get_num_threads()},
            "measured": {k: _jsonable(v) for k, v in measured.items()},
            "steps": {k: [{**dataclasses.asdict(c), "train_s": c.train_s, "total_s": c.total_s} for c in v]
                      for k, v in {**runs, "reference": [reference]}.items()},
            "grid": [{**dataclasses.asdict(p), "hours": p.hours} for p in parts],
            "total_hours": sum(p.hours for p in parts), "headline": headline})
    print(headline)
    return 0 if math.isfinite(sum(p.hours for p in parts)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
