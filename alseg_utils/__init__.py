"""alseg: region-based active learning with calibrated MC-dropout uncertainty for segmentation.

The public API (the names of :data:`EXPORTS`) is re-exported here lazily: importing ``alseg_utils``
does not import torch until a name that needs it is used::

    from alseg_utils import score_pixels, mc_predict, select_regions, ece, object_f1

Every public module is listed in :data:`SUBMODULES` and resolves as an attribute on first use
(``alseg_utils.plots``); ``tests/test_api.py`` fails when a module of the package is not listed, or
when a listed name does not import.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: module -> the names ``alseg_utils`` re-exports from it.
EXPORTS: dict[str, tuple[str, ...]] = {
    "uncertainty": ("score_pixels", "score_prediction", "image_scores", "ACQUISITION_FUNCTIONS"),
    "mc_dropout": ("mc_predict", "MCPrediction", "enable_mc_dropout", "summarize_samples"),
    "regions": ("Region", "region_scores", "select_regions", "regions_mask"),
    "calibration": ("nll", "ece", "brier", "brier_decomposition", "reliability_bins", "ReliabilityBins",
                    "CalibrationAccumulator"),
    "metrics": ("object_f1", "object_dice", "object_hausdorff", "jaccard", "dice", "segmentation_scores"),
    "data": ("contour_target", "load_glas", "load_isic2016", "load_folder", "load_dataset", "split_pool",
             "SegmentationSet"),
    "synthetic": ("make_glas_like", "make_isic_like"),
    "results": ("pixels_to_reach", "table1", "load_records"),
    "config": ("RunConfig", "load_config", "STRATEGIES", "ACQUISITIONS", "METRICS", "UNLABELLED"),
    "model": ("DCAN", "build_model"),
    "train": ("train_model", "train_with_restarts"),
    "active": ("run_full_image", "run_region", "run_active", "run_reference"),
}

#: Every public module of the package (``alseg_utils.<name>``), alphabetically.
SUBMODULES: tuple[str, ...] = (
    "active", "annotation", "annotation_export", "annotation_ingest", "annotation_round_trip", "annotation_store",
    "augment", "calibration", "cli", "config", "costs", "crops", "data", "devices", "efficiency", "errors", "evaluate",
    "files_oracle", "geojson", "instances", "labels", "mc_dropout", "metrics", "model", "notebooks", "oracle",
    "paired", "plots", "regions", "reproduction", "results", "run_folder", "selection", "superpixels", "sweep",
    "synthetic", "train", "uncertainty",
)

_MODULE_OF = {name: module for module, names in EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` (or the submodule ``name``) on first use."""
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"alseg_utils.{_MODULE_OF[name]}"), name)
    if name in SUBMODULES:
        return importlib.import_module(f"alseg_utils.{name}")
    raise AttributeError(f"module 'alseg_utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the submodules and ``__version__``."""
    return sorted({*__all__, *SUBMODULES, "__version__", "EXPORTS", "SUBMODULES"})
