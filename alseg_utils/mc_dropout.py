"""MC-dropout inference: T stochastic forward passes reduced, as they stream, to what acquisition needs.

Every acquisition function of the paper (:mod:`alseg_utils.uncertainty`) needs only two summaries of
the T stochastic softmax outputs ``p_t`` (Eq. 1): their mean ``u = mean_t p_t`` and the mean
per-sample entropy ``mean_t H[p_t]``. :func:`mc_predict` accumulates exactly these two, batch by
batch and sample by sample, so its memory does not grow with T; :func:`summarize_samples` computes
the same :class:`MCPrediction` from stacked samples ``[T, N, C, H, W]``.

MC mode (:func:`enable_mc_dropout`): batch-norm and everything else in eval mode, only the dropout
layers stochastic, so each pass draws new dropout masks over fixed statistics.

Prefix caching: in MC mode everything in front of the first dropout layer gives the same output in
all T passes. A model that offers :class:`MCSplit` (``model.mc_split()``, e.g.
:class:`alseg_utils.model.DCAN`) has that deterministic prefix run once per batch and only the
stochastic suffix run T times, on the prefix features repeated along the batch axis, so T samples
cost ``prefix + T x suffix`` instead of ``T x (prefix + suffix)``. The suffix sees tensors of the
same shapes in the same order as the whole model would, so it draws the same dropout masks: the
outputs equal the naive path's (``cache_prefix=False``) to float rounding, and bit for bit where the
prefix's convolutions pick the same kernels for B images as for k x B (the quick setting on one
thread; PyTorch's CPU heuristics switch kernels with the batch size for 1x1 convolutions below 16
images on one thread, and for single small images).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from alseg_utils.devices import amp_dtype, model_device


def enable_mc_dropout(model: nn.Module) -> nn.Module:
    """Put ``model`` in MC mode: batch-norm (and everything else) in eval, dropout stochastic.

    Args:
        model: any module; its ``nn.Dropout*`` submodules are switched to training mode.

    Returns:
        The same module, for chaining.
    """
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
    return model


class Repeatable(Protocol):
    """What the prefix of an :class:`MCSplit` returns: features that can be stacked ``k`` times."""

    def repeat(self, k: int) -> Any:
        """``k`` stacked copies along the batch axis: the prefix of ``x.repeat(k, 1, 1, 1)``."""
        ...


class MCSplit(NamedTuple):
    """A network cut in front of its first dropout layer, for MC-dropout inference.

    ``suffix(prefix(x).repeat(k))`` must equal ``model(x.repeat(k, 1, 1, 1))`` in MC mode, with the
    dropout layers drawn in the same order on tensors of the same shapes (so the masks are the same).

    Attributes:
        prefix: the deterministic part (no dropout), images ``[B, 3, H, W]`` -> features; run once per batch.
        suffix: the stochastic rest, features of ``k * B`` images -> the model's output; run T / k times.
    """

    prefix: Callable[[Tensor], Repeatable]
    suffix: Callable[[Any], Any]


def mc_split_of(model: nn.Module) -> MCSplit | None:
    """The :class:`MCSplit` a model offers through ``model.mc_split()``, or ``None``.

    Args:
        model: any module; only models with an ``mc_split`` method (e.g.
            :class:`alseg_utils.model.DCAN`) can be split, others (and a ``None`` answer) run whole.

    Returns:
        The split, or ``None`` when the model runs whole T times.
    """
    method = getattr(model, "mc_split", None)
    return method() if callable(method) else None


@dataclass
class MCPrediction:
    """What T stochastic forward passes leave behind: enough for every acquisition function.

    Attributes:
        mean: MC-mean softmax of the object head (Eq. 1), ``[N, C, H, W]``, in [0, 1].
        mean_entropy: mean over samples of each sample's entropy (nats), ``[N, H, W]``, in
            ``[0, ln C]`` (the expectation term of BALD).
        contour: MC-mean ``p(contour)`` of the contour head, ``[N, H, W]``, in [0, 1]; ``None``
            when the model has no contour head or the summary came from stacked samples.
        samples: T, the number of stochastic passes averaged.
    """

    mean: Tensor
    mean_entropy: Tensor
    contour: Tensor | None
    samples: int


def categorical_entropy(probs: Tensor, dim: int = 1) -> Tensor:
    """Entropy in nats of categorical distributions, safe at ``p = 0`` (``0 ln 0 = 0``).

    Args:
        probs: probabilities summing to one along ``dim``, any shape, in [0, 1].
        dim: the class axis.

    Returns:
        ``-sum_c p_c ln p_c``, the input shape without ``dim``, in ``[0, ln C]``.
    """
    return -torch.special.xlogy(probs, probs).sum(dim)


def summarize_samples(probs: Tensor | np.ndarray) -> MCPrediction:
    """Reduce stacked MC samples to the summary :func:`mc_predict` streams.

    Args:
        probs: softmax outputs, ``[T, N, C, H, W]``, in [0, 1] (floating point).

    Returns:
        The :class:`MCPrediction` of these samples (``contour=None``), in the input's dtype.

    Raises:
        ValueError: when ``probs`` is not 5-D, not floating point, or outside [0, 1].
    """
    probs = torch.as_tensor(probs)
    if probs.ndim != 5 or probs.shape[0] < 1:
        raise ValueError(f"probs must be [T, N, C, H, W] with T >= 1, got shape {tuple(probs.shape)}")
    if not probs.is_floating_point():
        raise ValueError(f"probs must be floating-point softmax outputs, got dtype {probs.dtype}")
    if probs.numel() and (probs.min() < 0 or probs.max() > 1 + 1e-6 or probs.isnan().any()):
        raise ValueError("probs must be softmax probabilities in [0, 1]; apply softmax to logits first")
    mean_entropy = categorical_entropy(probs, dim=2).mean(0)  # [N, H, W]
    return MCPrediction(mean=probs.mean(0), mean_entropy=mean_entropy, contour=None,
                        samples=probs.shape[0])


#: Pixels per forward pass that ``samples_per_pass=None`` aims for (batch x samples x H x W).
PASS_PIXELS = 2**21


def auto_samples_per_pass(T: int, batch_size: int, height: int, width: int) -> int:
    """MC samples per forward pass so that one pass holds about :data:`PASS_PIXELS` pixels.

    Small images gain a lot from larger forward batches (on 2 CPU cores a ResNet-18 at 128x192
    runs about 2.4x more images per second in batches of 64 than of 8); GlaS-sized batches
    (4 x 528 x 784 = 1.7 M pixels) already fill a pass, so they get one sample per pass.

    Args:
        T: MC samples wanted.
        batch_size: images per batch.
        height: image rows.
        width: image columns.

    Returns:
        An integer in ``[1, T]``.
    """
    return max(1, min(T, PASS_PIXELS // max(1, batch_size * height * width)))


def _check_mc_args(images: Any, T: int, batch_size: int, samples_per_pass: int | None) -> None:
    if samples_per_pass is not None and (not isinstance(samples_per_pass, int) or samples_per_pass < 1):
        raise ValueError(f"samples_per_pass must be an integer >= 1 or None (auto), got {samples_per_pass!r}")
    for key, value in (("T", T), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError("images as a NumPy array must be uint8 [N, H, W, 3], "
                             f"got {images.dtype} {images.shape}")
    elif isinstance(images, Tensor):
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError("images as a tensor must be float [N, 3, H, W] in [0, 1], "
                             f"got {images.dtype} {tuple(images.shape)}")
    else:
        raise ValueError(f"images must be a NumPy array or a torch tensor, got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images is empty; pass at least one image")


def _to_input(batch: np.ndarray | Tensor, device: torch.device) -> Tensor:
    """One batch of images as float ``[B, 3, H, W]`` in [0, 1] on ``device``."""
    if isinstance(batch, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)  # [B, H, W, 3] uint8
        return x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()  # [B, 3, H, W]
    return batch.to(device=device, dtype=torch.float32).contiguous()  # [B, 3, H, W]


def _split_output(out: Any) -> tuple[Tensor, Tensor | None]:
    """(object logits, contour logits or None) from a model output."""
    if isinstance(out, Tensor):
        return out, None
    if hasattr(out, "object"):
        return out.object, getattr(out, "contour", None)
    raise ValueError("the model must return logits [B, C, H, W] or an object with .object (and "
                     f".contour) logits, got {type(out).__name__}")


def _contour_probability(logits: Tensor) -> Tensor:
    """``p(contour)`` ``[B, H, W]`` from contour logits ``[B, 2, H, W]`` (softmax) or ``[B, 1, H, W]``."""
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])  # [B, H, W]
    return torch.softmax(logits, 1)[:, 1]  # [B, H, W]


@dataclass
class _BatchSums:
    """Running sums over MC samples for one batch (on the compute device)."""

    probs: Tensor | None = None  # [B, C, H, W]
    entropy: Tensor | None = None  # [B, H, W]
    contour: Tensor | None = None  # [B, H, W]

    def add(self, probs: Tensor, entropy: Tensor, contour: Tensor | None) -> None:
        if self.probs is None or self.entropy is None:
            self.probs, self.entropy, self.contour = probs, entropy, contour
            return
        self.probs += probs
        self.entropy += entropy
        if contour is not None:
            assert self.contour is not None  # a model gives contour logits on every pass or on none
            self.contour += contour


def _fold(x: Tensor, k: int) -> Tensor:
    """Sum ``k`` stacked copies along the batch axis: ``[k*B, ...] -> [B, ...]``."""
    return x if k == 1 else x.view(k, -1, *x.shape[1:]).sum(0)


def _add_pass(out: Any, k: int, sums: _BatchSums) -> None:
    """Add the output of one forward over ``k`` stacked copies of a batch (``k`` samples) to ``sums``."""
    logits, contour_logits = _split_output(out)  # [k*B, C, H, W]
    log_p = torch.log_softmax(logits.float(), 1)  # [k*B, C, H, W]
    p = log_p.exp()  # [k*B, C, H, W]
    entropy = -(p * log_p).sum(1)  # [k*B, H, W]
    contour = None if contour_logits is None else _fold(_contour_probability(contour_logits), k)
    sums.add(_fold(p, k), _fold(entropy, k), contour)


def _sampler(model: nn.Module, x: Tensor, split: MCSplit | None) -> Callable[[int], Any]:
    """``k -> output of one forward over k stacked copies of x`` ``[B, 3, H, W]`` (``k`` samples).

    With a split the prefix runs here, once; each call then runs only the suffix.
    """
    if split is None:
        return lambda k: model(x if k == 1 else x.repeat(k, 1, 1, 1))  # input [k*B, 3, H, W]
    cached = split.prefix(x)  # deterministic features of the B images
    return lambda k: split.suffix(cached.repeat(k))  # features of k*B images


def _mc_batch(model: nn.Module, x: Tensor, T: int, samples_per_pass: int, amp: bool,
              split: MCSplit | None) -> _BatchSums:
    """Sums over T stochastic passes of one batch, ``samples_per_pass`` samples per forward."""
    sums = _BatchSums()
    dtype = amp_dtype(x.device, amp)  # training's rule: bfloat16 where the GPU has it
    autocast = torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None)
    with autocast:
        forward = _sampler(model, x, split)
        done = 0
        while done < T:
            k = min(samples_per_pass, T - done)
            _add_pass(forward(k), k, sums)
            done += k
    return sums


@contextlib.contextmanager
def _mc_mode(model: nn.Module, seed: int | None, device: torch.device) -> Iterator[None]:
    """MC-dropout mode and (optionally) seeded dropout masks; restores flags and the global RNG."""
    flags = {module: module.training for module in model.modules()}
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices, enabled=seed is not None), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            enable_mc_dropout(model)
            yield
    finally:
        for module, flag in flags.items():
            module.train(flag)


def _allocate(n: int, sums: _BatchSums, samples: int) -> MCPrediction:
    assert sums.probs is not None  # _mc_batch adds T >= 1 passes
    _, c, h, w = sums.probs.shape
    contour = None if sums.contour is None else torch.empty((n, h, w))
    return MCPrediction(mean=torch.empty((n, c, h, w)), mean_entropy=torch.empty((n, h, w)),
                        contour=contour, samples=samples)


def _store(pred: MCPrediction, start: int, sums: _BatchSums) -> None:
    """Write one batch's means into the CPU outputs."""
    assert sums.probs is not None and sums.entropy is not None  # _mc_batch adds T >= 1 passes
    stop = start + sums.probs.shape[0]
    pred.mean[start:stop].copy_(sums.probs.div_(pred.samples))
    pred.mean_entropy[start:stop].copy_(sums.entropy.div_(pred.samples))
    if pred.contour is not None:
        assert sums.contour is not None  # pred was allocated from a batch with contour logits
        pred.contour[start:stop].copy_(sums.contour.div_(pred.samples))


def mc_predict(model: nn.Module, images: np.ndarray | Tensor, T: int, batch_size: int = 4,
               device: str | torch.device | None = None, seed: int | None = None,
               samples_per_pass: int | None = None, amp: bool = True,
               progress: bool = False, cache_prefix: bool = True) -> MCPrediction:
    """MC-dropout prediction that streams over samples: memory does not grow with T.

    For each batch, T stochastic forward passes (dropout on, batch-norm in eval) are run and only
    the running sums of the softmax and of its entropy are kept; nothing of shape ``[T, ...]`` is
    ever held. The model's training flags and the global RNG state are restored afterwards. When
    the model offers an :class:`MCSplit` (``model.mc_split()``), the part in front of its first
    dropout layer runs once per batch and only the rest T times (same masks, same outputs).

    Args:
        model: returns object logits ``[B, C, H, W]``, or an object with ``.object`` (and optionally
            ``.contour``) logits, e.g. ``alseg_utils.model.DCANOutput``.
        images: uint8 ``[N, H, W, 3]`` in [0, 255], or float ``[N, 3, H, W]`` in [0, 1].
        T: stochastic forward passes per image (>= 1).
        batch_size: images per batch.
        device: where to compute; defaults to the device of the model's parameters (the model
            must already live there).
        seed: seeds the dropout masks (reproducible on CPU); ``None`` uses the global RNG.
        samples_per_pass: MC samples computed in one forward pass by repeating the batch (dropout
            masks are drawn per element, so the copies are independent samples); trades memory
            (``batch_size * samples_per_pass`` images per forward) for speed. ``None`` picks
            :func:`auto_samples_per_pass` (about 2 M pixels per pass); peak memory is then bounded
            by that budget, and with any fixed value it does not grow with T.
        amp: autocast on CUDA, bfloat16 where supported, else float16 (:func:`~alseg_utils.devices.amp_dtype`;
            ignored on CPU); softmax and sums are float32.
        progress: show a progress bar over batches.
        cache_prefix: run the deterministic prefix once per batch when the model offers a split;
            ``False`` runs the whole model T times (the naive path, for comparison).

    Returns:
        :class:`MCPrediction` with float32 CPU tensors (``mean`` ``[N, C, H, W]``,
        ``mean_entropy`` and ``contour`` ``[N, H, W]``).

    Raises:
        ValueError: malformed ``images``, ``T``/``batch_size``/``samples_per_pass`` < 1, a device
            the model is not on, or a model output that is neither logits nor has ``.object``.
    """
    _check_mc_args(images, T, batch_size, samples_per_pass)
    device = model_device(model, device)
    if samples_per_pass is None:
        height, width = images.shape[1:3] if isinstance(images, np.ndarray) else images.shape[2:]
        samples_per_pass = auto_samples_per_pass(T, min(batch_size, len(images)), height, width)
    split = mc_split_of(model) if cache_prefix else None
    pred: MCPrediction | None = None
    with _mc_mode(model, seed, device):
        for start in tqdm(range(0, len(images), batch_size), disable=not progress, desc="MC dropout"):
            x = _to_input(images[start:start + batch_size], device)  # [B, 3, H, W]
            sums = _mc_batch(model, x, T, samples_per_pass, amp, split)
            if pred is None:
                pred = _allocate(len(images), sums, T)
            _store(pred, start, sums)
    assert pred is not None  # images is not empty (_check_mc_args)
    return pred
