"""The public API of DESIGN.md exists, and every public function and class has a docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import alseg_utils

MODULES = sorted(m.name for m in pkgutil.iter_modules(alseg_utils.__path__))


def test_every_design_name_resolves() -> None:
    for name in alseg_utils.__all__:
        assert getattr(alseg_utils, name) is not None, name
    with pytest.raises(AttributeError):
        alseg_utils.no_such_name  # noqa: B018


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
