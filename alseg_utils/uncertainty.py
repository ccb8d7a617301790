"""Acquisition functions: per-pixel scores of MC-dropout predictions (Eq. 1-4) and image scores.

Every function of :data:`ACQUISITION_FUNCTIONS` (keys: :data:`alseg_utils.config.ACQUISITIONS`)
reads the two summaries of T stochastic softmax outputs ``p_t`` that
:mod:`alseg_utils.mc_dropout` produces, the mean ``u = mean_t p_t`` and the mean per-sample
entropy ``mean_t H[p_t]`` (an :class:`MCPrediction`):

- ``varratio``: ``1 - max_c u_c`` (Eq. 2), in ``[0, 1 - 1/C]``;
- ``entropy``: ``H[u] = -sum_c u_c ln u_c`` (Eq. 3, natural log), in ``[0, ln C]``;
- ``bald``: the mutual information ``H[u] - mean_t H[p_t]`` (Eq. 4 with the 1/T the paper's
  equation omits), in ``[0, H[u]]``;
- ``random``: uniform ``[0, 1)`` per pixel from an explicit generator (the baseline).

:func:`score_pixels` scores stacked samples ``[T, N, C, H, W]``, :func:`score_prediction` a
streamed :class:`MCPrediction`; both give the same values. The image score of Alg. 1 (line 4) is
the sum of pixel scores: :func:`image_scores`.

``alseg_utils.uncertainty.mc_predict`` and ``alseg_utils.uncertainty.MCPrediction`` are aliases of
:func:`alseg_utils.mc_dropout.mc_predict` and :class:`alseg_utils.mc_dropout.MCPrediction` (the
public API names them here); the inference itself lives in :mod:`alseg_utils.mc_dropout`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from alseg_utils.config import ACQUISITIONS
from alseg_utils.mc_dropout import MCPrediction, categorical_entropy, mc_predict, summarize_samples

__all__ = [
    "ACQUISITION_FUNCTIONS", "AcquisitionFunction", "MCPrediction", "bald", "image_scores", "mc_predict",
    "predictive_entropy", "random_scores", "score_pixels", "score_prediction", "varratio",
]


def varratio(pred: MCPrediction, generator: torch.Generator | None = None) -> Tensor:
    """Variation ratio ``1 - max_c u_c`` of the MC-mean (Eq. 2).

    Args:
        pred: MC summary; ``pred.mean`` is ``[N, C, H, W]``, in [0, 1].
        generator: unused (uniform signature of :data:`ACQUISITION_FUNCTIONS`).

    Returns:
        Scores ``[N, H, W]``, in ``[0, 1 - 1/C]``.
    """
    return 1.0 - pred.mean.amax(1)  # [N, H, W]


def predictive_entropy(pred: MCPrediction, generator: torch.Generator | None = None) -> Tensor:
    """Entropy ``H[u]`` of the MC-mean prediction (Eq. 3), natural log.

    Args:
        pred: MC summary; ``pred.mean`` is ``[N, C, H, W]``, in [0, 1].
        generator: unused (uniform signature of :data:`ACQUISITION_FUNCTIONS`).

    Returns:
        Scores ``[N, H, W]``, in ``[0, ln C]``.
    """
    return categorical_entropy(pred.mean, dim=1)  # [N, H, W]


def bald(pred: MCPrediction, generator: torch.Generator | None = None) -> Tensor:
    """BALD: mutual information ``H[u] - mean_t H[p_t]`` between prediction and weights (Eq. 4).

    Rounding can make the difference slightly negative where all samples agree; it is clipped at 0.

    Args:
        pred: MC summary with ``mean`` ``[N, C, H, W]`` and ``mean_entropy`` ``[N, H, W]``.
        generator: unused (uniform signature of :data:`ACQUISITION_FUNCTIONS`).

    Returns:
        Scores ``[N, H, W]``, in ``[0, H[u]]``.
    """
    mutual_information = predictive_entropy(pred) - pred.mean_entropy  # [N, H, W]
    return mutual_information.clamp_min_(0.0)


def random_scores(pred: MCPrediction, generator: torch.Generator | None = None) -> Tensor:
    """Random baseline: an independent uniform ``[0, 1)`` score per pixel.

    Args:
        pred: MC summary; only the shape of ``pred.mean`` ``[N, C, H, W]`` is used.
        generator: a CPU ``torch.Generator``; required, so that runs are reproducible.

    Returns:
        Scores ``[N, H, W]``, in [0, 1), float32 on the CPU.

    Raises:
        ValueError: when ``generator`` is missing.
    """
    if generator is None:
        raise ValueError("acquisition 'random' needs generator=torch.Generator().manual_seed(seed)")
    n, _, h, w = pred.mean.shape
    return torch.rand((n, h, w), generator=generator)


AcquisitionFunction = Callable[[MCPrediction, "torch.Generator | None"], Tensor]

#: name -> per-pixel acquisition function ``fn(pred, generator) -> [N, H, W]``; the names are
#: :data:`alseg_utils.config.ACQUISITIONS` (random, varratio, entropy, bald), in that order.
ACQUISITION_FUNCTIONS: dict[str, AcquisitionFunction] = dict(
    zip(ACQUISITIONS, (random_scores, varratio, predictive_entropy, bald), strict=True))


def _acquisition(name: str) -> AcquisitionFunction:
    if name not in ACQUISITION_FUNCTIONS:
        known = ", ".join(sorted(ACQUISITION_FUNCTIONS))
        raise ValueError(f"unknown acquisition function {name!r}; use one of {known}")
    return ACQUISITION_FUNCTIONS[name]


def score_pixels(name: str, probs: Tensor | np.ndarray,
                 generator: torch.Generator | None = None) -> Tensor:
    """Per-pixel acquisition scores from stacked MC samples.

    Args:
        name: one of ``random``, ``varratio``, ``entropy``, ``bald``.
        probs: softmax outputs, ``[T, N, C, H, W]``, in [0, 1].
        generator: CPU generator; required for ``random``, ignored otherwise.

    Returns:
        Scores ``[N, H, W]`` (higher = more informative), in the dtype of ``probs``
        (float32 for ``random``).

    Raises:
        ValueError: unknown ``name``, malformed ``probs``, or ``random`` without a generator.
    """
    fn = _acquisition(name)
    return fn(summarize_samples(probs), generator)


def score_prediction(name: str, pred: MCPrediction,
                     generator: torch.Generator | None = None) -> Tensor:
    """Per-pixel acquisition scores from a streamed :class:`MCPrediction`.

    Gives the same values as :func:`score_pixels` on the stacked samples the summary came from.

    Args:
        name: one of ``random``, ``varratio``, ``entropy``, ``bald``.
        pred: output of :func:`mc_predict` (``mean`` ``[N, C, H, W]``, ``mean_entropy`` ``[N, H, W]``).
        generator: CPU generator; required for ``random``, ignored otherwise.

    Returns:
        Scores ``[N, H, W]``.

    Raises:
        ValueError: unknown ``name``, or ``random`` without a generator.
    """
    return _acquisition(name)(pred, generator)


def image_scores(scores: Tensor | np.ndarray,
                 labelled: Tensor | np.ndarray | None = None) -> Tensor:
    """Image scores of Alg. 1 (line 4): the sum of pixel scores, labelled pixels counting 0.

    Args:
        scores: per-pixel scores, ``[N, H, W]``, >= 0.
        labelled: ``True`` where a pixel is already labelled, bool ``[N, H, W]``; ``None`` = none.

    Returns:
        Sums ``[N]``, float64.

    Raises:
        ValueError: when the shapes differ or ``scores`` is not 3-D.
    """
    scores = torch.as_tensor(scores)
    if scores.ndim != 3:
        raise ValueError(f"scores must be [N, H, W], got shape {tuple(scores.shape)}")
    if labelled is not None:
        labelled = torch.as_tensor(labelled, dtype=torch.bool)
        if labelled.shape != scores.shape:
            raise ValueError(f"labelled {tuple(labelled.shape)} must match scores {tuple(scores.shape)}")
        scores = scores.masked_fill(labelled, 0)  # [N, H, W]
    return scores.sum((1, 2), dtype=torch.float64)  # [N]
