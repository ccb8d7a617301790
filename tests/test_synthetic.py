"""Tests of alseg_utils.synthetic: determinism, official layouts, labels, and that it is not a toy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alseg_utils import data as D
from alseg_utils import synthetic as S

SIZE = (48, 72)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def glas_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return S.make_glas_like(tmp_path_factory.mktemp("glas"), n_train=6, n_test=3, size=SIZE, seed=0)


@pytest.fixture(scope="module")
def isic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return S.make_isic_like(tmp_path_factory.mktemp("isic"), n_train=3, n_test=2, size=SIZE, seed=0)


def test_glas_layout_is_official(glas_root: Path) -> None:
    names = set(_files(glas_root))
    stems = [f"train_{k}" for k in range(1, 7)] + ["testA_1", "testA_2", "testB_1"]
    assert names == {"Grade.csv"} | {f"{s}.bmp" for s in stems} | {f"{s}_anno.bmp" for s in stems}
    lines = (glas_root / "Grade.csv").read_text().splitlines()
    assert lines[0] == "name, patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"
    assert [line.split(",")[0] for line in lines[1:]] == stems
    with Image.open(glas_root / "train_1.bmp") as img:
        assert (img.format, img.mode, img.size) == ("BMP", "RGB", (SIZE[1], SIZE[0]))


def test_glas_loads_with_instances_and_both_grades(glas_root: Path) -> None:
    train = D.load_glas(glas_root, "train", size=SIZE)
    assert train.valid.all() and train.images.shape == (6, *SIZE, 3)
    assert {"benign", "malignant"} == set(train.grades)
    for inst in train.instances:
        ids = np.unique(inst)
        assert ids[0] == 0 and ids.size >= 2 and ids.max() < 255
        np.testing.assert_array_equal(ids, np.arange(ids.size))  # numbered 1..k without gaps
    assert 0.1 < train.masks.mean() < 0.8
    assert D.load_glas(glas_root, "test", size=SIZE).names == ["testA_1", "testA_2", "testB_1"]


def test_isic_layout_is_official(isic_root: Path) -> None:
    expected = {f"ISBI2016_ISIC_Part1_Training_Data/ISIC_000000{i}.jpg" for i in range(3)}
    expected |= {f"ISBI2016_ISIC_Part1_Training_GroundTruth/ISIC_000000{i}_Segmentation.png" for i in range(3)}
    expected |= {f"ISBI2016_ISIC_Part1_Test_Data/ISIC_000000{i}.jpg" for i in (3, 4)}
    expected |= {f"ISBI2016_ISIC_Part1_Test_GroundTruth/ISIC_000000{i}_Segmentation.png" for i in (3, 4)}
    assert set(_files(isic_root)) == expected
    for path in isic_root.rglob("*_Segmentation.png"):
        mask = np.asarray(Image.open(path))
        assert set(np.unique(mask)) == {0, 255}
    with Image.open(isic_root / "ISBI2016_ISIC_Part1_Test_Data" / "ISIC_0000004.jpg") as img:
        assert img.format == "JPEG" and img.size == (SIZE[1], SIZE[0])


def test_isic_loads_one_lesion_per_image(isic_root: Path) -> None:
    test = D.load_isic2016(isic_root, "test", size=SIZE)
    assert test.names == ["ISIC_0000003", "ISIC_0000004"]
    assert all(inst.max() == 1 for inst in test.instances)  # one connected lesion


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, glas_root: Path, isic_root: Path) -> None:
    again = S.make_glas_like(tmp_path / "g", n_train=6, n_test=3, size=SIZE, seed=0)
    assert _files(again) == _files(glas_root)
    assert _files(S.make_isic_like(tmp_path / "i", 3, 2, SIZE, seed=0)) == _files(isic_root)
    other = _files(S.make_glas_like(tmp_path / "g1", n_train=6, n_test=3, size=SIZE, seed=1))
    assert other["train_1.bmp"] != _files(glas_root)["train_1.bmp"]


def test_images_vary_in_colour_and_content() -> None:
    rng = np.random.default_rng(0)
    imgs = [S.render_glas_image(np.random.default_rng([0, i]), (64, 96), bool(i % 2))[0] for i in range(6)]
    means = np.array([im.reshape(-1, 3).mean(0) for im in imgs])  # [6, 3]
    assert means.std(0).max() > 3  # per-image stain jitter
    assert all(im.std() > 10 for im in imgs)  # textured, not flat
    img, mask = S.render_isic_image(rng, (64, 96))
    assert img.shape == (64, 96, 3) and img.dtype == np.uint8 and mask.dtype == np.uint8


def test_malignant_glands_are_more_crowded() -> None:
    def stats(malignant: bool) -> tuple[float, float]:
        labs = [S.render_glas_image(np.random.default_rng([1, i]), (96, 144), malignant)[1] for i in range(6)]
        touching = [D.contour_target(lab, 0) & ~D.contour_target(lab > 0, 0) for lab in labs]
        return float(np.mean([lab.max() for lab in labs])), float(np.mean([t.mean() for t in touching]))

    (n_benign, touch_benign), (n_malignant, touch_malignant) = stats(False), stats(True)
    assert n_malignant > n_benign and touch_malignant > touch_benign


def test_not_separable_by_a_colour_threshold() -> None:
    """The best single-channel threshold, fitted on one set, must not segment another one well."""
    def render(seed: int) -> tuple[np.ndarray, np.ndarray]:
        pairs = [S.render_glas_image(np.random.default_rng([seed, i]), (80, 120), bool(i % 2)) for i in range(6)]
        return np.stack([p[0] for p in pairs]).reshape(-1, 3).astype(float), np.stack([p[1] > 0 for p in pairs]).ravel()

    (x_fit, y_fit), (x_test, y_test) = render(11), render(12)

    def dice(pred: np.ndarray, y: np.ndarray) -> float:
        return 2 * float((pred & y).sum()) / float(pred.sum() + y.sum())

    rules = [(c, t, sgn) for c in range(3) for t in np.quantile(x_fit[:, c], np.linspace(0.05, 0.95, 19))
             for sgn in (1, -1)]
    c, t, sgn = max(rules, key=lambda r: dice(r[2] * (x_fit[:, r[0]] - r[1]) > 0, y_fit))
    assert dice(sgn * (x_test[:, c] - t) > 0, y_test) < 0.85


def test_smooth_noise_is_standardised() -> None:
    for scale in (1.0, 4.0, 30.0):
        field = np.stack([S.smooth_noise(np.random.default_rng(i), (40, 60), scale) for i in range(10)])
        assert abs(field.mean()) < 0.2 and 0.8 < field.std() < 1.2


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_test"):
        S.make_glas_like(tmp_path, 3, 0, SIZE, seed=0)
    with pytest.raises(ValueError, match="size"):
        S.make_isic_like(tmp_path, 3, 1, (8, 8), seed=0)
