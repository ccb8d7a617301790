"""Benchmark: streaming, prefix-caching MC-dropout BALD scoring against baal, the naive path and the floors.

    python -m benchmarks.mc_scoring [--setting quick|paper|pool] [--images N] [--T T] [--batch-size B]
                                    [--samples-per-pass K] [--baal-replicate auto|on|off]
                                    [--device auto|cpu|cuda] [--threads N] [--repeats R]

Five runs over one pool with the project model (``alseg_utils.model.build_model``, dropout before
the residual units of stages 3 and 4):

(a) ours: ``mc_predict`` (runs the deterministic prefix in front of the first dropout layer, stem +
    layer1 + layer2 + layer2's side outputs, once per batch and only the stochastic suffix T times;
    streams the mean softmax and the mean per-sample entropy) then ``score_prediction("bald", ...)``;
(n) naive: the same with ``cache_prefix=False``: the whole network T times;
(b) baal: the model's dropout patched by ``baal.bayesian.dropout.MCDropoutModule``, wrapped in
    ``baal.modelwrapper.ModelWrapper`` and run through ``predict_on_dataset(iterations=T)``, which
    returns every sample ``[N, C, H, W, T]``; then ``baal.active.heuristics.BALD``. The wrapped
    model returns the object head's softmax (baal's heuristics take probabilities). baal's
    ``replicate_in_memory`` (its default, True: B*T copies of a batch in one forward pass) is kept
    for ``quick`` and switched off for ``paper``, where 4 x 30 full-size images in one forward
    pass do not fit in memory;
(c) bare: T forward passes of the whole network per batch in MC mode (same batching and autocast as
    ours), outputs discarded: the floor of any method that runs the network T times;
(d) bound: the prefix once per batch and T suffix passes on its repeated features (``model.mc_split()``,
    same chunks of samples), outputs discarded: the floor of prefix caching, ``prefix + T x suffix``.

Settings: ``quick`` (ResNet-18, 20 images of 128x192, T = 10), ``paper`` (ResNet-50, 4 images of
528x784, T = 30; slow on a CPU, shrink it with ``--images`` and ``--T``) and ``pool`` (ResNet-18 at
128x192 with the paper's pool of 65 images and T = 30). ``--samples-per-pass`` defaults to
mc_predict's automatic choice (10 for ``quick``, 1 for ``paper``).

Timing: wall clock of the scoring call only (model, pool and wrappers built beforehand, one
warm-up forward pass); with ``--repeats R`` the five runs are repeated R times in rotation and the best
time and smallest peak of each are kept (shared machines: the least disturbed run).

Peak memory: every method runs in a fresh spawned process, so allocator caches of one method do
not flatter the next. In that process the kernel's resident-set high-water mark (``VmHWM``) is
reset through ``/proc/self/clear_refs`` just before the call and read after it; peak = high-water
mark - resident set before the call, which catches short peaks that sampling would miss (where
``clear_refs`` is not available, RSS is sampled every millisecond in a thread). tracemalloc is not
used: it does not see torch's allocations. On CUDA the peak of ``torch.cuda.max_memory_allocated``
above the allocation before the call is added. "outputs" is the bytes of what each method hands
back (ours: mean, mean entropy, contour and the scores; baal: the stacked samples and the scores).

Consistency: MC masks cannot be shared between two implementations by seeding alone
(``predict_on_dataset`` creates a DataLoader, whose iterator draws from the global RNG), so the
check drives baal's ``ModelWrapper.predict_on_batch`` (replicate off) batch by batch after
``torch.manual_seed(seed)``, which consumes the RNG exactly as ``mc_predict(seed=seed,
samples_per_pass=1, amp=False)`` does: both then see the same dropout masks, and their BALD maps
must agree up to float rounding. Ours and the naive path are compared on the same seed (same masks):
their mean probabilities and mean entropies must agree to float rounding (bit for bit where the
convolutions pick the same kernels for B and k x B images).

The last line printed is the headline: the time ratios a/b (ours / baal) and a/d (ours / bound), the
peak-memory ratio a/b, and the speed-up n/a of prefix caching.
"""

from __future__ import annotations

import argparse
import copy
import logging
import multiprocessing as mp
import os
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from alseg_utils.config import ModelConfig
from alseg_utils.mc_dropout import auto_samples_per_pass, enable_mc_dropout, mc_predict, mc_split_of
from alseg_utils.model import build_model
from alseg_utils.uncertainty import score_prediction

MIB = 2**20


@dataclass(frozen=True)
class Setting:
    """One benchmark configuration."""

    name: str
    encoder: str
    height: int
    width: int
    images: int
    T: int
    batch_size: int = 4
    samples_per_pass: int | None = None  # None = mc_predict's auto choice
    baal_replicate: bool = True
    device: str = "cpu"
    threads: int = 0  # 0 = torch's default
    seed: int = 0


SETTINGS = {
    "quick": Setting("quick", "resnet18", 128, 192, images=20, T=10, baal_replicate=True),
    "paper": Setting("paper", "resnet50", 528, 784, images=4, T=30, baal_replicate=False),
    # the paper's pool size and T at the quick resolution: where holding [N, C, H, W, T] shows
    "pool": Setting("pool", "resnet18", 128, 192, images=65, T=30, baal_replicate=True),
}


# ------------------------------------------------------------------------------ model and pool


def _build(s: Setting) -> tuple[nn.Module, np.ndarray, torch.device]:
    """Seeded model (paper's dropout settings) on the device, and a uint8 pool [N, H, W, 3]."""
    if s.threads:
        torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    device = torch.device(s.device)
    model = build_model(ModelConfig(encoder=s.encoder, dropout=0.5, dropout_stages=[3, 4],
                                    output_stride=16)).to(device)
    rng = np.random.default_rng(s.seed)
    images = rng.integers(0, 256, (s.images, s.height, s.width, 3), dtype=np.uint8)
    return model, images, device


def _as_float(images: np.ndarray) -> Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H, W] in [0, 1] (the conversion mc_predict does)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


class _ObjectProbs(nn.Module):
    """The object head's softmax, [B, C, H, W]: what baal's heuristics expect."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.model(x).object.float(), 1)


class _PoolDataset(torch.utils.data.Dataset):
    """(image, dummy target) pairs for baal's DataLoader; converts one uint8 image at a time."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return _as_float(self.images[i:i + 1])[0], 0


def _import_baal() -> tuple[type, type, type, type]:
    with warnings.catch_warnings():
        # baal 2.1 configures structlog through the deprecated structlog.threadlocal at import.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from baal.active.heuristics import BALD
        from baal.bayesian.dropout import MCDropoutModule
        from baal.modelwrapper import ModelWrapper, TrainingArgs
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return BALD, MCDropoutModule, ModelWrapper, TrainingArgs


def _baal_wrapper(model: nn.Module, s: Setting, replicate: bool) -> Any:  # a baal ModelWrapper (untyped)
    _, MCDropoutModule, ModelWrapper, TrainingArgs = _import_baal()
    patched = MCDropoutModule(_ObjectProbs(copy.deepcopy(model)))
    args = TrainingArgs(batch_size=s.batch_size, use_cuda=s.device == "cuda", workers=0,
                        replicate_in_memory=replicate)
    return ModelWrapper(patched, args)


# ------------------------------------------------------------------------------ the five runs


def _prepare_mc_predict(cache_prefix: bool) -> Callable[[nn.Module, np.ndarray, Setting], Callable[[], int]]:
    def prepare(model: nn.Module, images: np.ndarray, s: Setting) -> Callable[[], int]:
        def run() -> int:
            pred = mc_predict(model, images, T=s.T, batch_size=s.batch_size, seed=s.seed,
                              samples_per_pass=s.samples_per_pass, cache_prefix=cache_prefix)
            scores = score_prediction("bald", pred)  # [N, H, W]
            held = [pred.mean, pred.mean_entropy, scores] + ([pred.contour] if pred.contour is not None else [])
            return sum(t.numel() * t.element_size() for t in held)
        return run
    return prepare


def _prepare_baal(model: nn.Module, images: np.ndarray, s: Setting) -> Callable[[], int]:
    BALD = _import_baal()[0]
    wrapper, dataset = _baal_wrapper(model, s, s.baal_replicate), _PoolDataset(images)

    def run() -> int:
        samples = wrapper.predict_on_dataset(dataset, iterations=s.T, verbose=False)  # [N, C, H, W, T]
        scores = BALD().get_uncertainties(samples)  # [N, H, W]
        return samples.nbytes + scores.nbytes
    return run


def _samples_per_pass(s: Setting) -> int:
    return s.samples_per_pass or auto_samples_per_pass(s.T, min(s.batch_size, s.images), s.height, s.width)


def _prepare_bare(model: nn.Module, images: np.ndarray, s: Setting) -> Callable[[], int]:
    device = next(model.parameters()).device
    per_pass = _samples_per_pass(s)

    def run() -> int:
        enable_mc_dropout(model)
        autocast = torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda")
        with torch.no_grad(), autocast:
            for start in range(0, len(images), s.batch_size):
                x = _as_float(images[start:start + s.batch_size]).to(device)  # [B, 3, H, W]
                for done in range(0, s.T, per_pass):
                    k = min(per_pass, s.T - done)
                    model(x if k == 1 else x.repeat(k, 1, 1, 1))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return 0
    return run


def _prepare_bound(model: nn.Module, images: np.ndarray, s: Setting) -> Callable[[], int]:
    device = next(model.parameters()).device
    per_pass = _samples_per_pass(s)
    split = mc_split_of(model)
    if split is None:
        raise ValueError("the benchmark model offers no mc_split(); build it with alseg_utils.model.build_model")

    def run() -> int:
        enable_mc_dropout(model)
        autocast = torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda")
        with torch.no_grad(), autocast:
            for start in range(0, len(images), s.batch_size):
                cached = split.prefix(_as_float(images[start:start + s.batch_size]).to(device))  # once per batch
                for done in range(0, s.T, per_pass):
                    split.suffix(cached.repeat(min(per_pass, s.T - done)))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return 0
    return run


METHODS = {"ours": _prepare_mc_predict(cache_prefix=True), "naive": _prepare_mc_predict(cache_prefix=False),
           "baal": _prepare_baal, "bare": _prepare_bare, "bound": _prepare_bound}
LABELS = {"ours": "(a) ours", "naive": "(n) naive", "baal": "(b) baal", "bare": "(c) bare", "bound": "(d) bound"}


# ------------------------------------------------------------------------------ measuring


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


class _PeakMemory:
    """Peak resident memory (and CUDA allocation) above the level at entry; see the module doc."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.host_peak, self.gpu_peak = device, 0, 0
        self._samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._gpu_base = torch.cuda.memory_allocated()
        self._base = _status_kib("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset VmHWM to the current RSS
        except OSError:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self._samples.append(_status_kib("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.host_peak = max(self._samples + [_status_kib("VmRSS")]) - self._base
        else:
            self.host_peak = _status_kib("VmHWM") - self._base
        if self.device.type == "cuda":
            self.gpu_peak = torch.cuda.max_memory_allocated() - self._gpu_base


def _warm_up(model: nn.Module, images: np.ndarray, device: torch.device) -> None:
    enable_mc_dropout(model)
    with torch.no_grad():
        model(_as_float(images[:1]).to(device))


def measure(method: str, s: Setting) -> dict[str, float]:
    """Time and peak memory of one method (meant to run in a fresh process)."""
    model, images, device = _build(s)
    run = METHODS[method](model, images, s)
    _warm_up(model, images, device)
    with _PeakMemory(device) as mem:
        start = time.perf_counter()
        out_bytes = run()
        elapsed = time.perf_counter() - start
    return {"time_s": elapsed, "host_peak_mib": mem.host_peak / MIB, "gpu_peak_mib": mem.gpu_peak / MIB,
            "outputs_mib": out_bytes / MIB}


def _in_fresh_process(method: str, s: Setting) -> dict[str, float]:
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(measure, method, s).result()


def check_same_bald(s: Setting, n_images: int = 2, T: int = 4) -> tuple[float, float]:
    """Max |BALD ours - BALD baal| on the same dropout masks, and the largest BALD value."""
    BALD = _import_baal()[0]
    s = replace(s, images=min(n_images, s.images), T=min(T, s.T))
    model, images, device = _build(s)
    ours = score_prediction("bald", mc_predict(model, images, T=s.T, batch_size=s.batch_size,
                                               seed=s.seed, samples_per_pass=1, amp=False))
    wrapper = _baal_wrapper(model, s, replicate=False)
    wrapper.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(s.seed)
        batches = [wrapper.predict_on_batch(_as_float(images[i:i + s.batch_size]), s.T).cpu().numpy()
                   for i in range(0, len(images), s.batch_size)]
    theirs = BALD().compute_score(np.concatenate(batches))  # [N, H, W]
    return float(np.abs(ours.numpy() - theirs).max()), float(ours.max())


def check_cached_equals_naive(s: Setting, n_images: int = 5, T: int = 5) -> tuple[float, float]:
    """Max |difference| of the mean softmax and of the mean entropy, ours vs the naive path (same masks)."""
    s = replace(s, images=min(n_images, s.images), T=min(T, s.T))
    model, images, _ = _build(s)
    ours, naive = (mc_predict(model, images, T=s.T, batch_size=s.batch_size, seed=s.seed,
                              samples_per_pass=s.samples_per_pass, cache_prefix=cache) for cache in (True, False))
    return (float((ours.mean - naive.mean).abs().max()),
            float((ours.mean_entropy - naive.mean_entropy).abs().max()))


# ------------------------------------------------------------------------------ command line


def _setting(argv: list[str] | None) -> tuple[Setting, int]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setting", choices=sorted(SETTINGS), default="quick")
    p.add_argument("--images", type=int)
    p.add_argument("--T", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--samples-per-pass", type=int)
    p.add_argument("--baal-replicate", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="runs per method, interleaved; best kept")
    a = p.parse_args(argv)
    s = SETTINGS[a.setting]
    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    changes = {"images": a.images, "T": a.T, "batch_size": a.batch_size,
               "samples_per_pass": a.samples_per_pass}
    s = replace(s, device=device, threads=a.threads, **{k: v for k, v in changes.items() if v is not None})
    if a.baal_replicate != "auto":
        s = replace(s, baal_replicate=a.baal_replicate == "on")
    return s, a.repeats


def _report(s: Setting, results: dict[str, dict[str, float]], diff: float, top: float,
            exact: tuple[float, float]) -> None:
    print(f"setting {s.name}: {s.encoder}, {s.images} images {s.height}x{s.width}, T={s.T}, "
          f"batch {s.batch_size}, samples/pass {_samples_per_pass(s)}, baal replicate_in_memory="
          f"{s.baal_replicate}, device {s.device}, torch threads {s.threads or torch.get_num_threads()}")
    print(f"{'method':<10}{'time s':>10}{'peak host MiB':>16}{'peak GPU MiB':>15}{'outputs MiB':>14}")
    for name, label in LABELS.items():
        r = results[name]
        print(f"{label:<10}{r['time_s']:>10.2f}{r['host_peak_mib']:>16.1f}{r['gpu_peak_mib']:>15.1f}"
              f"{r['outputs_mib']:>14.1f}")
    print(f"same dropout masks: max |BALD ours - BALD baal| = {diff:.2e} (BALD up to {top:.3f}); ours vs naive: "
          f"max |mean difference| {exact[0]:.2e}, max |mean entropy difference| {exact[1]:.2e}")
    t = {k: r["time_s"] for k, r in results.items()}
    peak = {k: max(r["host_peak_mib"] + r["gpu_peak_mib"], 1e-9) for k, r in results.items()}
    print(f"mc_scoring {s.name}: time ours/baal {t['ours'] / t['baal']:.2f}x, "
          f"ours/bound {t['ours'] / t['bound']:.2f}x, peak memory ours/baal {peak['ours'] / peak['baal']:.2f}x, "
          f"prefix caching naive/ours {t['naive'] / t['ours']:.2f}x faster, ours/bare {t['ours'] / t['bare']:.2f}x")


def _interleaved(s: Setting, repeats: int) -> dict[str, dict[str, float]]:
    """Each method ``repeats`` times, in rotation (a load change hits all five); best time and
    smallest peak of each (the run least disturbed by other processes)."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in METHODS}
    for _ in range(repeats):
        for name in ("bare", "bound", "ours", "naive", "baal"):
            runs[name].append(_in_fresh_process(name, s))
    return {name: {key: min(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}


def main(argv: list[str] | None = None) -> None:
    """Run the five methods in fresh processes, check agreement (baal, naive), print the ratios."""
    s, repeats = _setting(argv)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    results = _interleaved(s, repeats)
    diff, top = check_same_bald(s)
    _report(s, results, diff, top, check_cached_equals_naive(s))


if __name__ == "__main__":
    main()
