"""Calibration of per-pixel class probabilities: NLL, ECE, Brier score and its decomposition.

All metrics are computed over the pixels whose target is not ``ignore_index`` (default
:data:`alseg_utils.config.UNLABELLED` = 255: unlabelled or zero padding) and are streaming:
:class:`CalibrationAccumulator` keeps only per-bin sums (``O(C * n_bins)`` numbers), so a whole
test set can be fed batch by batch, on CPU or GPU, without ever holding every pixel. The
module-level functions are thin wrappers over one accumulator.

Definitions (paper, Appendix C):

- ``nll``: mean over pixels of ``-log p(true class)``, the probability clamped below at
  :data:`NLL_EPS` so a confidently wrong pixel costs ``-log(NLL_EPS)`` (about 27.6), never ``inf``.
- ``ece`` (Eq. 6-7): top-class confidence ``max_c p_c`` in ``n_bins`` equal-width bins
  ``[k/K, (k+1)/K)`` (the last bin includes 1); ``sum_k |B_k|/n * |acc(B_k) - conf(B_k)|``.
- ``brier`` (Eq. 8): ``1/C * sum_c (p_c - y_c)^2`` averaged over pixels, ``y`` one-hot. With two
  classes this equals the usual binary Brier score ``(p_1 - y_1)^2``.
- ``brier_decomposition``: Murphy's decomposition, computed **per class, one-vs-rest**: for each
  class ``c`` the forecasts ``p_c`` are put in ``n_bins`` equal-width bins; with ``n_k`` pixels,
  mean forecast ``f_k`` and observed frequency ``o_k`` in bin ``k`` and base rate ``o_c``,
  ``REL_c = sum_k n_k/n (f_k - o_k)^2``, ``RES_c = sum_k n_k/n (o_k - o_c)^2``,
  ``UNC_c = o_c (1 - o_c)``. Reliability, resolution and uncertainty are the class means
  (the same ``1/C`` normalisation as ``brier``), so ``REL - RES + UNC`` equals *exactly* the Brier
  score of the binned forecasts (each ``p_c`` replaced by its bin mean ``f_k``), reported as
  ``brier_binned``. It differs from ``brier`` only by the within-bin variation of the forecasts,
  and is equal to it when every bin holds a single forecast value.
- ``reliability_bins``: per top-class-confidence bin, the mean confidence, accuracy and count
  (the data of a reliability diagram; ECE is recomputed from them exactly).

Differences from the authors' released code (on purpose; docs/authors_code.md lists
them): their NLL used the top-class probability instead of the true class and summed instead of
averaging; their Brier score was off by a constant 1; their "decomposition" partitioned pixels by
the predicted class instead of Murphy's binned decomposition; and their calibration included the
zero-padded pixels. Here NLL uses the true class and averages, the Brier score is Eq. 8 normalised
by the number of classes, the decomposition is Murphy's (above), and pixels labelled
``ignore_index`` never count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from alseg_utils.config import UNLABELLED

NLL_EPS = 1e-12
"""Lower clamp of the true-class probability in the NLL."""

SUM_TOLERANCE = 1e-3
"""Largest accepted ``|sum_c p_c - 1|`` (and excursion outside [0, 1]) of a probability vector."""

_CHUNK_PIXELS = 2**18


class ReliabilityBins(NamedTuple):
    """Top-class confidence bins of a reliability diagram (NumPy arrays, ``K = n_bins``).

    Attributes:
        edges: bin edges, [K + 1], from 0 to 1.
        confidence: mean top-class confidence per bin, [K]; NaN where the bin is empty.
        accuracy: fraction of correct top-class predictions per bin, [K]; NaN where empty.
        count: number of pixels per bin, [K], int64.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray  # type: ignore[assignment]  # shadows tuple.count; the field name is the API

    @property
    def ece(self) -> float:
        """Expected calibration error (Eq. 7) of these bins; NaN when every bin is empty."""
        total = int(self.count.sum())
        if total == 0:
            return float("nan")
        full = self.count > 0
        gap = np.abs(self.accuracy[full] - self.confidence[full])  # [K']
        return float((self.count[full] * gap).sum() / total)

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | ReliabilityBins) -> ReliabilityBins:
        """Rebuild bins from a mapping with lists ``confidence``, ``accuracy`` and ``count``.

        The one reader of stored bins (plots and :func:`alseg_utils.results.reliability_from_record`
        go through it).

        Args:
            record: the ``reliability_bins`` entry of a results record (JSON lists; ``None`` for
                empty bins is accepted), optionally with ``edges``; or a whole step record holding
                that entry; or a ReliabilityBins.

        Returns:
            The bins, with equal-width edges when the record has none.

        Raises:
            ValueError: if a key is missing or the lists have different lengths.
        """
        if isinstance(record, ReliabilityBins):
            return record
        entry: Mapping[str, Any] = record
        if isinstance(entry.get("reliability_bins"), Mapping):  # a whole step record
            entry = entry["reliability_bins"]
        missing = {"confidence", "accuracy", "count"} - set(entry)
        if missing:
            raise ValueError(f"reliability bins record lacks {sorted(missing)}; pass the 'reliability_bins' entry")
        conf = np.array(entry["confidence"], dtype=float)  # [K]
        acc = np.array(entry["accuracy"], dtype=float)  # [K]
        count = np.array(entry["count"], dtype=np.int64)  # [K]
        k = len(count)
        edges = np.array(entry.get("edges", np.linspace(0.0, 1.0, k + 1)), dtype=float)  # [K + 1]
        if conf.shape != (k,) or acc.shape != (k,) or edges.shape != (k + 1,):
            raise ValueError("reliability bins record: confidence, accuracy and count must have equal lengths")
        return cls(edges, conf, acc, count)


class CalibrationAccumulator:
    """Streaming calibration statistics: feed batches with :meth:`update`, read :meth:`result`.

    Example:
        >>> acc = CalibrationAccumulator(n_classes=2, n_bins=15)
        >>> for probs, target in batches:   # [B, 2, H, W] softmax, [B, H, W] with 255 = ignore
        ...     acc.update(probs, target)
        >>> acc.result()["ece"]

    Memory is ``O(n_classes * n_bins)`` for the state plus ``O(chunk_pixels * n_classes)``
    temporaries per update, whatever the number of images.
    """

    def __init__(self, n_classes: int, n_bins: int = 15, ignore_index: int = UNLABELLED,
                 chunk_pixels: int = _CHUNK_PIXELS) -> None:
        """Create an empty accumulator.

        Args:
            n_classes: number of classes C (>= 2); every batch must have C channels.
            n_bins: number of equal-width confidence bins K (>= 1).
            ignore_index: target value of pixels that do not count.
            chunk_pixels: pixels processed at once; bounds the temporary memory of an update.

        Raises:
            ValueError: if ``n_classes < 2``, ``n_bins < 1`` or ``chunk_pixels < 1``.
        """
        if int(n_classes) < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        if int(n_bins) < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        if int(chunk_pixels) < 1:
            raise ValueError(f"chunk_pixels must be >= 1, got {chunk_pixels}")
        self.n_classes, self.n_bins = int(n_classes), int(n_bins)
        self.ignore_index, self.chunk_pixels = int(ignore_index), int(chunk_pixels)
        self._top = np.zeros((3, self.n_bins))  # rows: count, sum of confidence, sum of correct
        self._cls = np.zeros((3, self.n_classes, self.n_bins))  # rows: count, sum of p_c, sum of y_c
        self._nll = 0.0
        self._brier = 0.0

    @property
    def n_pixels(self) -> int:
        """Number of (non-ignored) pixels accumulated so far."""
        return int(round(self._top[0].sum()))

    def update(self, probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> CalibrationAccumulator:
        """Add a batch of predictions.

        Args:
            probs: softmax outputs, [N, C, ...] (e.g. [B, C, H, W]), in [0, 1], summing to 1 over C
                on every counted pixel; torch (any device) or NumPy.
            target: integer class labels, [N, ...], in [0, C) or ``ignore_index``.

        Returns:
            ``self``, for chaining.

        Raises:
            ValueError: on shape mismatch, a non-integer target, a label outside [0, C), or counted
                pixels whose probabilities are NaN/inf, outside [0, 1] or do not sum to 1.
        """
        p, t = _flatten_inputs(probs, target, self.n_classes)  # [N, C, P], [N, P]
        n, c, n_pix = p.shape
        group = max(1, self.chunk_pixels // max(n_pix, 1))  # images per chunk when images are small
        for i in range(0, n, group):
            block = p[i:i + group].transpose(0, 1).reshape(c, -1)  # [C, G * P], a view when G = 1
            labels = t[i:i + group].reshape(-1)  # [G * P]
            for start in range(0, labels.numel(), self.chunk_pixels):
                stop = start + self.chunk_pixels
                self._update_chunk(block[:, start:stop], labels[start:stop])
        return self

    def _update_chunk(self, p: torch.Tensor, t: torch.Tensor) -> None:
        """Accumulate one chunk: ``p`` [C, P] probabilities, ``t`` [P] labels."""
        valid = t != self.ignore_index  # [P]
        t = t[valid].long()  # [V]
        if t.numel() == 0:
            return
        p = p[:, valid].double()  # [C, V]
        _check_chunk(p, t, self.n_classes)
        k, c = self.n_bins, self.n_classes
        y = torch.zeros_like(p).scatter_(0, t[None], 1.0)  # [C, V], one-hot
        nll = -torch.log(p.gather(0, t[None]).clamp_min(NLL_EPS)).sum()
        brier = (p - y).pow(2).sum() / c
        conf, pred = p.max(0)  # [V], [V]
        top_bin = _bin_index(conf, k)  # [V]
        correct = (pred == t).double()  # [V]
        top = torch.stack([_bincount(top_bin, k), _bincount(top_bin, k, conf), _bincount(top_bin, k, correct)])
        cls_bin = (_bin_index(p, k) + k * torch.arange(c, device=p.device)[:, None]).flatten()  # [C * V]
        cls = torch.stack([_bincount(cls_bin, c * k), _bincount(cls_bin, c * k, p.flatten()),
                           _bincount(cls_bin, c * k, y.flatten())]).view(3, c, k)
        self._top += top.cpu().numpy()
        self._cls += cls.cpu().numpy()
        self._nll += float(nll)
        self._brier += float(brier)

    def merge(self, other: CalibrationAccumulator) -> CalibrationAccumulator:
        """Add the statistics of another accumulator (e.g. from another worker) into this one.

        Args:
            other: an accumulator with the same ``n_classes``, ``n_bins`` and ``ignore_index``.

        Returns:
            ``self``.

        Raises:
            ValueError: if the settings differ.
        """
        mine = (self.n_classes, self.n_bins, self.ignore_index)
        theirs = (other.n_classes, other.n_bins, other.ignore_index)
        if mine != theirs:
            raise ValueError(f"cannot merge accumulators with settings {theirs} into {mine}")
        self._top += other._top
        self._cls += other._cls
        self._nll += other._nll
        self._brier += other._brier
        return self

    def reliability_bins(self) -> ReliabilityBins:
        """Top-class confidence bins accumulated so far (NaN confidence/accuracy in empty bins)."""
        count, conf_sum, correct_sum = self._top  # [K] each
        with np.errstate(invalid="ignore", divide="ignore"):
            confidence = np.where(count > 0, conf_sum / count, np.nan)  # [K]
            accuracy = np.where(count > 0, correct_sum / count, np.nan)  # [K]
        edges = np.linspace(0.0, 1.0, self.n_bins + 1)  # [K + 1]
        return ReliabilityBins(edges, confidence, accuracy, np.rint(count).astype(np.int64))

    def brier_decomposition(self) -> tuple[float, float, float]:
        """Murphy's one-vs-rest decomposition, class-averaged: (reliability, resolution, uncertainty)."""
        n = self._require_pixels()
        count, p_sum, y_sum = self._cls  # [C, K] each
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(count > 0, p_sum / count, 0.0)  # [C, K], mean forecast per bin
            o = np.where(count > 0, y_sum / count, 0.0)  # [C, K], observed frequency per bin
        base = y_sum.sum(1, keepdims=True) / n  # [C, 1], base rate per class
        reliability = (count * (f - o) ** 2).sum() / (n * self.n_classes)
        resolution = (count * (o - base) ** 2).sum() / (n * self.n_classes)
        uncertainty = (base * (1.0 - base)).sum() / self.n_classes
        return float(reliability), float(resolution), float(uncertainty)

    def result(self) -> dict[str, Any]:
        """All metrics of the pixels accumulated so far.

        Returns:
            Floats ``nll``, ``ece``, ``brier``, ``reliability``, ``resolution``, ``uncertainty``,
            ``brier_binned`` (= reliability - resolution + uncertainty), the int ``n_pixels``, and
            ``bins``: the :class:`ReliabilityBins` of the top-class confidence.

        Raises:
            ValueError: if no pixel has been counted (empty input or every target ignored).
        """
        n = self._require_pixels()
        rel, res, unc = self.brier_decomposition()
        bins = self.reliability_bins()
        return {
            "nll": self._nll / n, "ece": bins.ece, "brier": self._brier / n,
            "reliability": rel, "resolution": res, "uncertainty": unc,
            "brier_binned": rel - res + unc, "n_pixels": n, "bins": bins,
        }

    def _require_pixels(self) -> int:
        """The number of counted pixels; raises ValueError when it is 0."""
        n = self.n_pixels
        if n == 0:
            raise ValueError(f"no pixels to evaluate: every target is {self.ignore_index} (ignored) "
                             "or no batch was added")
        return n


def _to_tensor(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """Tensor view of a torch or NumPy input (no copy for NumPy)."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise ValueError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def _flatten_inputs(probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
                    n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate shapes and dtypes; return probs [N, C, P] and target [N, P] on the probs' device."""
    p, t = _to_tensor(probs, "probs"), _to_tensor(target, "target")
    if p.ndim < 2:
        raise ValueError(f"probs must be [N, C, ...] softmax outputs, got shape {tuple(p.shape)}")
    if p.shape[1] != n_classes:
        raise ValueError(f"probs has {p.shape[1]} classes on dim 1, expected {n_classes}")
    if tuple(t.shape) != (p.shape[0], *p.shape[2:]):
        raise ValueError(f"target shape {tuple(t.shape)} does not match probs {tuple(p.shape)}: "
                         "expected probs [N, C, ...] and target [N, ...]")
    if not p.is_floating_point():
        raise ValueError(f"probs must be floating point probabilities, got {p.dtype}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"target must hold integer class labels, got {t.dtype}")
    n = p.shape[0]
    return p.reshape(n, n_classes, -1), t.to(p.device).reshape(n, -1)


def _check_chunk(p: torch.Tensor, t: torch.Tensor, n_classes: int) -> None:
    """Raise ValueError for invalid labels ``t`` [V] or probabilities ``p`` [C, V] of counted pixels."""
    if bool(((t < 0) | (t >= n_classes)).any()):
        bad = t[(t < 0) | (t >= n_classes)][0].item()
        raise ValueError(f"target label {bad} is outside [0, {n_classes}) and is not ignore_index")
    if not bool(torch.isfinite(p).all()):
        raise ValueError("probs contain NaN or inf on counted pixels")
    if bool((p < -SUM_TOLERANCE).any()) or bool((p > 1 + SUM_TOLERANCE).any()):
        raise ValueError("probs must lie in [0, 1]; pass softmax probabilities, not logits")
    worst = float((p.sum(0) - 1.0).abs().max())
    if worst > SUM_TOLERANCE:
        raise ValueError(f"probs must sum to 1 over the class axis (dim 1), off by up to {worst:.3g}; apply softmax")


def _bin_index(x: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Equal-width bin ``floor(x * K)`` of values in [0, 1], with 1 in the last bin; same shape as x."""
    return (x * n_bins).floor().long().clamp_(0, n_bins - 1)


def _bincount(index: torch.Tensor, size: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Float64 counts (or weight sums) of ``index`` values in [0, size)."""
    out = torch.bincount(index, weights=weights, minlength=size)  # [size]
    return out.double()


def _accumulate(probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, n_bins: int,
                ignore_index: int) -> CalibrationAccumulator:
    """One accumulator fed with the whole input."""
    p = _to_tensor(probs, "probs")
    if p.ndim < 2:
        raise ValueError(f"probs must be [N, C, ...] softmax outputs, got shape {tuple(p.shape)}")
    return CalibrationAccumulator(p.shape[1], n_bins, ignore_index).update(p, target)


def nll(probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, ignore_index: int = UNLABELLED) -> float:
    """Mean negative log-likelihood of the true class (Eq. 5, averaged; clamped at NLL_EPS).

    Args:
        probs: softmax outputs, [N, C, ...], in [0, 1], summing to 1 over C.
        target: integer labels, [N, ...], in [0, C) or ``ignore_index``.
        ignore_index: label of pixels that do not count.

    Returns:
        The mean NLL in nats over the counted pixels.

    Raises:
        ValueError: on invalid input (see :meth:`CalibrationAccumulator.update`) or no counted pixel.
    """
    return float(_accumulate(probs, target, 1, ignore_index).result()["nll"])


def ece(probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, n_bins: int = 15,
        ignore_index: int = UNLABELLED) -> float:
    """Expected calibration error of the top-class confidence (Eq. 6-7), equal-width bins.

    Args:
        probs: softmax outputs, [N, C, ...], in [0, 1], summing to 1 over C.
        target: integer labels, [N, ...], in [0, C) or ``ignore_index``.
        n_bins: number of equal-width confidence bins in [0, 1].
        ignore_index: label of pixels that do not count.

    Returns:
        ECE in [0, 1].

    Raises:
        ValueError: on invalid input or no counted pixel.
    """
    return float(_accumulate(probs, target, n_bins, ignore_index).result()["ece"])


def brier(probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, ignore_index: int = UNLABELLED) -> float:
    """Brier score (Eq. 8) normalised by the number of classes, averaged over pixels.

    Args:
        probs: softmax outputs, [N, C, ...], in [0, 1], summing to 1 over C.
        target: integer labels, [N, ...], in [0, C) or ``ignore_index``.
        ignore_index: label of pixels that do not count.

    Returns:
        ``mean_i 1/C sum_c (p_ic - y_ic)^2``, in [0, 2/C].

    Raises:
        ValueError: on invalid input or no counted pixel.
    """
    return float(_accumulate(probs, target, 1, ignore_index).result()["brier"])


def brier_decomposition(probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, n_bins: int = 15,
                        ignore_index: int = UNLABELLED) -> tuple[float, float, float]:
    """Murphy's binned decomposition of the Brier score (one-vs-rest per class, class-averaged).

    Args:
        probs: softmax outputs, [N, C, ...], in [0, 1], summing to 1 over C.
        target: integer labels, [N, ...], in [0, C) or ``ignore_index``.
        n_bins: number of equal-width forecast bins per class.
        ignore_index: label of pixels that do not count.

    Returns:
        ``(reliability, resolution, uncertainty)``; ``reliability - resolution + uncertainty`` is
        the Brier score of the binned forecasts (see the module docstring).

    Raises:
        ValueError: on invalid input or no counted pixel.
    """
    return _accumulate(probs, target, n_bins, ignore_index).brier_decomposition()


def reliability_bins(probs: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, n_bins: int = 15,
                     ignore_index: int = UNLABELLED) -> ReliabilityBins:
    """Per-bin mean confidence, accuracy and count of the top-class confidence.

    Args:
        probs: softmax outputs, [N, C, ...], in [0, 1], summing to 1 over C.
        target: integer labels, [N, ...], in [0, C) or ``ignore_index``.
        n_bins: number of equal-width confidence bins in [0, 1].
        ignore_index: label of pixels that do not count.

    Returns:
        The :class:`ReliabilityBins` (empty bins have NaN confidence and accuracy, count 0).

    Raises:
        ValueError: on invalid input or no counted pixel.
    """
    return _accumulate(probs, target, n_bins, ignore_index).result()["bins"]
