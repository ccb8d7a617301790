"""MC-dropout uncertainty: streaming prediction and per-pixel acquisition scores (Eq. 1-4)."""

from __future__ import annotations

from torch import nn


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
