"""Where computations run: device names from the params file, and the device of a model.

:func:`resolve_device` turns ``train.device`` (``auto | cpu | cuda``) into a ``torch.device``;
:func:`model_device` is the one place that decides where a model is run (training's validation and
prediction, and MC-dropout inference): by default the device of the model's parameters, else the
device asked for, which the model must already live on. :func:`amp_dtype` is the one rule for the
half-precision type of autocast, shared by training and MC inference.
"""

from __future__ import annotations

import torch
from torch import nn


def resolve_device(name: str) -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda"`` into a device.

    Args:
        name: ``"auto"`` picks CUDA when available, else the CPU.

    Returns:
        The device.

    Raises:
        ValueError: unknown name, or ``"cuda"`` without a CUDA device.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    return torch.device(name)


def model_device(model: nn.Module, device: str | torch.device | None = None) -> torch.device:
    """The device to run ``model`` on: its parameters' device, or ``device`` checked against it.

    Args:
        model: any module; a module without parameters counts as living on the CPU.
        device: ``None`` (the model's device), ``"auto"`` (:func:`resolve_device`), or any name or
            ``torch.device`` torch understands (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Returns:
        ``device`` as asked (``torch.device("cuda")`` stays index-free), or the model's own device
        when ``device`` is None.

    Raises:
        ValueError: the model has parameters on another device (call ``model.to(device)`` first),
            or ``"auto"``/``device`` names no usable device.
    """
    first = next(iter(model.parameters()), None)
    own = first.device if first is not None else torch.device("cpu")
    if device is None:
        return own
    if isinstance(device, str) and device == "auto":
        device = resolve_device(device)
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r} ({str(err).splitlines()[0]}); "
                         "use 'auto', 'cpu' or 'cuda'") from None
    if first is not None and (own.type != device.type or (device.index is not None and own != device)):
        raise ValueError(f"the model lives on {own}, not {device}; call model.to({str(device)!r}) first")
    return device


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """Autocast type: bfloat16 on CUDA devices that support it, else float16; None (fp32) on the CPU or when off.

    Training and MC inference use the same rule, so a model trained in bfloat16 is never scored in
    float16 (whose smaller range can overflow in a pre-activation ResNet's un-normalised residual stream).
    """
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
