"""alseg: region-based active learning with calibrated MC-dropout uncertainty for segmentation.

The public API of ``DESIGN.md`` is re-exported here lazily (importing ``alseg_utils`` does not
import torch until a name that needs it is used)::

    from alseg_utils import score_pixels, mc_predict, select_regions, ece, object_f1
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "uncertainty": ("score_pixels", "score_prediction", "mc_predict", "image_scores", "MCPrediction",
                    "ACQUISITION_FUNCTIONS", "enable_mc_dropout"),
    "regions": ("Region", "region_scores", "select_regions", "regions_mask"),
    "calibration": ("nll", "ece", "brier", "brier_decomposition", "reliability_bins",
                    "CalibrationAccumulator"),
    "metrics": ("object_f1", "object_dice", "object_hausdorff", "jaccard", "dice", "segmentation_scores"),
    "data": ("contour_target", "load_glas", "load_isic2016", "load_folder", "load_dataset", "split_pool",
             "SegmentationSet"),
    "synthetic": ("make_glas_like", "make_isic_like"),
    "results": ("pixels_to_reach", "table1", "load_records"),
    "config": ("RunConfig", "load_config"),
    "model": ("DCAN", "build_model"),
    "train": ("train_model", "train_with_restarts"),
    "active": ("run_full_image", "run_region", "run_active", "run_reference"),
}
_MODULES = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = {
    "active", "annotation", "calibration", "cli", "config", "data", "errors", "evaluate", "instances", "labels", "metrics",
    "model", "notebooks", "oracle", "plots", "regions", "results", "sweep", "synthetic", "train",
    "uncertainty",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use."""
    if name in _MODULES:
        return getattr(importlib.import_module(f"alseg_utils.{_MODULES[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"alseg_utils.{name}")
    raise AttributeError(f"module 'alseg_utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | _SUBMODULES | {"__version__"})
