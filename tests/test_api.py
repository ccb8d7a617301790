"""The public API exists: every listed name and module imports, every module is listed, every public
function and class has a docstring, and the names the package shares are spelled in one place."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import alseg_utils

MODULES = sorted(m.name for m in pkgutil.iter_modules(alseg_utils.__path__))


def test_every_public_module_is_listed() -> None:
    public = {name for name in MODULES if not name.startswith("_")}
    missing, stale = sorted(public - set(alseg_utils.SUBMODULES)), sorted(set(alseg_utils.SUBMODULES) - public)
    assert not missing, f"add {missing} to alseg_utils.SUBMODULES (alseg_utils/__init__.py)"
    assert not stale, f"alseg_utils.SUBMODULES lists {stale}, which are not modules of the package"
    assert list(alseg_utils.SUBMODULES) == sorted(alseg_utils.SUBMODULES)
    assert set(alseg_utils.EXPORTS) <= set(alseg_utils.SUBMODULES)


@pytest.mark.parametrize("module_name", sorted(alseg_utils.SUBMODULES))
def test_every_listed_module_resolves_as_an_attribute(module_name: str) -> None:
    assert getattr(alseg_utils, module_name) is importlib.import_module(f"alseg_utils.{module_name}")
    assert module_name in dir(alseg_utils)


def test_every_exported_name_resolves_to_its_module_s_object() -> None:
    assert alseg_utils.__all__ == sorted(alseg_utils.__all__)
    for module_name, names in alseg_utils.EXPORTS.items():
        module = importlib.import_module(f"alseg_utils.{module_name}")
        for name in names:
            assert name in alseg_utils.__all__
            assert getattr(alseg_utils, name) is getattr(module, name), f"{module_name}.{name}"
    namespace: dict[str, object] = {}
    exec("from alseg_utils import *", namespace)  # noqa: S102 - every name of __all__ imports
    assert set(alseg_utils.__all__) <= set(namespace)
    with pytest.raises(AttributeError):
        alseg_utils.no_such_name  # noqa: B018


def test_shared_names_have_one_source() -> None:
    from alseg_utils import active, calibration, config, efficiency, labels, plots, results, uncertainty

    assert config.METRICS == config.SEGMENTATION_METRICS + config.CALIBRATION_METRICS
    assert results.METRIC_COLUMNS is config.METRICS
    assert tuple(plots.METRIC_LABELS) == config.METRICS
    assert active._METRIC_KEYS[: len(config.METRICS)] == config.METRICS
    assert tuple(uncertainty.ACQUISITION_FUNCTIONS) == config.ACQUISITIONS
    assert tuple(plots.ACQUISITION_LABELS) == config.ACQUISITIONS
    assert efficiency.METHODS is config.METHODS and results.METHODS is config.METHODS
    assert labels.UNLABELLED is config.UNLABELLED and config.UNLABELLED == 255
    for fn in (calibration.nll, calibration.ece, calibration.brier, calibration.brier_decomposition,
               calibration.reliability_bins, calibration.CalibrationAccumulator):
        assert inspect.signature(fn).parameters["ignore_index"].default == config.UNLABELLED


def test_design_signatures() -> None:
    sig = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert sig(alseg_utils.score_pixels)[:2] == ["name", "probs"]
    assert sig(alseg_utils.mc_predict)[:4] == ["model", "images", "T", "batch_size"]
    assert sig(alseg_utils.region_scores) == ["scores", "size", "stride"]
    assert sig(alseg_utils.select_regions)[:5] == ["scores", "size", "stride", "m", "labelled"]
    assert sig(alseg_utils.ece)[:4] == ["probs", "target", "n_bins", "ignore_index"]
    assert sig(alseg_utils.brier_decomposition)[:4] == ["probs", "target", "n_bins", "ignore_index"]
    assert sig(alseg_utils.contour_target) == ["mask", "radius"]
    assert sig(alseg_utils.load_glas)[:2] == ["root", "split"]
    assert sig(alseg_utils.load_isic2016)[:3] == ["root", "split", "size"]
    assert sig(alseg_utils.make_glas_like) == ["root", "n_train", "n_test", "size", "seed"]
    assert sig(alseg_utils.make_isic_like) == ["root", "n_train", "n_test", "size", "seed"]
    assert sig(alseg_utils.pixels_to_reach) == ["fractions", "scores", "target"]


@pytest.mark.parametrize("module_name", MODULES)
def test_public_functions_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(f"alseg_utils.{module_name}")
    assert module.__doc__, f"alseg_utils.{module_name} has no module docstring"
    missing = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
            missing.append(name)
    assert not missing, f"alseg_utils.{module_name}: no docstring on {missing}"
