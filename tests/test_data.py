"""Tests of alseg_utils.data: loaders on tiny hand-built trees, contour targets, pool splits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage
from skimage.morphology import disk

from alseg_utils import data as D
from alseg_utils.config import DataConfig, RunConfig
from alseg_utils.errors import ConfigError, DataError

GRADE_HEADER = "name, patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"


# ----------------------------------------------------------------------------- tree builders


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _labels(h: int, w: int) -> np.ndarray:
    """Two glands: a block touching a second block (shared border), values 1 and 2."""
    lab = np.zeros((h, w), np.uint8)
    lab[1:5, 1:5] = 1
    lab[1:5, 5:8] = 2
    return lab


def _save(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def _write_glas(root: Path, spec: dict[str, tuple[int, int]], grades: dict[str, str] | None = None) -> Path:
    """GlaS tree: ``{stem: (h, w)}`` images with their _anno.bmp and a Grade.csv (spaces after commas)."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (stem, (h, w)) in enumerate(spec.items()):
        _save(root / f"{stem}.bmp", _image(h, w, i))
        _save(root / f"{stem}_anno.bmp", _labels(h, w))
    if grades is not None:
        rows = [GRADE_HEADER] + [f"{name}, {i + 1}, {g}, something" for i, (name, g) in enumerate(grades.items())]
        (root / "Grade.csv").write_text("\n".join(rows) + "\n")
    return root


def _write_isic(root: Path, split: str, spec: dict[str, np.ndarray]) -> Path:
    """ISIC tree for one split: ``{id: mask (0/255)}``, JPEG images of the mask's size."""
    part = {"train": "Training", "test": "Test"}[split]
    data, truth = root / f"ISBI2016_ISIC_Part1_{part}_Data", root / f"ISBI2016_ISIC_Part1_{part}_GroundTruth"
    data.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    for i, (name, mask) in enumerate(spec.items()):
        Image.fromarray(_image(*mask.shape, i)).save(data / f"{name}.jpg", quality=95)
        _save(truth / f"{name}_Segmentation.png", mask)
    return root


def _two_blobs(h: int, w: int, value: int = 255) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[2:6, 2:6] = value
    mask[2:6, 10:14] = value
    return mask


# ----------------------------------------------------------------------------- GlaS


def test_load_glas_pads_odd_sizes_and_sorts_numerically(tmp_path: Path) -> None:
    root = _write_glas(tmp_path / "glas", {"train_10": (9, 11), "train_2": (10, 13), "testA_1": (9, 9)},
                       {"train_2": "benign", "train_10": " malignant", "testA_1": "benign"})
    ds = D.load_glas(root, "train", size=(12, 16))
    assert ds.names == ["train_2", "train_10"]
    assert ds.grades == ["benign", "malignant"]
    assert ds.images.shape == (2, 12, 16, 3) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images[0, :10, :13], _image(10, 13, 1))
    assert ds.images[0, 10:].max() == 0 and ds.images[0, :, 13:].max() == 0
    assert ds.valid[0].sum() == 10 * 13 and ds.valid[0, :10, :13].all()
    np.testing.assert_array_equal(ds.instances[1, :9, :11], _labels(9, 11))
    assert ds.instances.dtype == np.int32 and ds.masks.dtype == np.uint8
    np.testing.assert_array_equal(ds.masks, (ds.instances > 0).astype(np.uint8))
    np.testing.assert_array_equal(ds.contours[0], D.contour_target(ds.instances[0], 3))
    assert len(ds) == 2


def test_load_glas_test_is_testA_then_testB(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"testB_1": (8, 9), "testA_2": (8, 9), "testA_1": (8, 9), "train_1": (8, 9)})
    assert D.load_glas(root, "test", size=(8, 9)).names == ["testA_1", "testA_2", "testB_1"]
    assert D.load_glas(root, "testB", size=(8, 9)).names == ["testB_1"]
    assert D.load_glas(root, "train", size=(8, 9)).grades == [""]  # no Grade.csv: no grades


def test_load_glas_resize_bilinear_images_nearest_labels(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"train_1": (10, 13)})
    ds = D.load_glas(root, "train", size=(20, 26), resize="resize")
    assert ds.images.shape == (1, 20, 26, 3) and ds.valid.all()
    assert set(np.unique(ds.instances[0])) == {0, 1, 2}  # nearest: no in-between label values
    assert (ds.instances[0] == 1).sum() == 4 * (4 * 4)  # 4x4 block, doubled each way


def test_load_glas_pad_refuses_larger_image(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"train_1": (10, 20)})
    with pytest.raises(DataError, match=r"train_1\.bmp.*resize"):
        D.load_glas(root, "train", size=(16, 16))


def test_read_glas_grades_real_header_with_spaces(tmp_path: Path) -> None:
    (tmp_path / "Grade.csv").write_text(
        f"{GRADE_HEADER}\ntestA_1,4, malignant, adenomatous\ntrain_3 ,2,Benign,healthy\n", encoding="utf-8"
    )
    assert D.read_glas_grades(tmp_path) == {"testA_1": "malignant", "train_3": "benign"}


def test_read_glas_grades_bad_header(tmp_path: Path) -> None:
    (tmp_path / "Grade.csv").write_text("id,grade\ntrain_1,benign\n")
    with pytest.raises(DataError, match="Grade.csv"):
        D.read_glas_grades(tmp_path)


def test_glas_missing_root_says_where_to_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope.*warwick\.ac\.uk.*data\.synthetic"):
        D.load_glas(tmp_path / "nope", "train")


def test_glas_no_images_for_split(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"train_1": (8, 8)})
    with pytest.raises(DataError, match=r"no GlaS test images"):
        D.load_glas(root, "test", size=(8, 8))


def test_glas_missing_annotation(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"train_1": (8, 8)})
    (root / "train_1_anno.bmp").unlink()
    with pytest.raises(DataError, match=r"train_1\.bmp.*train_1_anno\.bmp"):
        D.load_glas(root, "train", size=(8, 8))


def test_glas_size_mismatch(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"train_1": (8, 8)})
    _save(root / "train_1_anno.bmp", _labels(8, 9))
    with pytest.raises(DataError, match=r"train_1_anno\.bmp.*8x9.*8x8"):
        D.load_glas(root, "train", size=(8, 9))


def test_glas_corrupt_file(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"train_1": (8, 8)})
    (root / "train_1.bmp").write_bytes(b"BM not really a bitmap")
    with pytest.raises(DataError, match=r"train_1\.bmp.*cannot read"):
        D.load_glas(root, "train", size=(8, 8))


def test_glas_colour_annotation(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"train_1": (8, 8)})
    _save(root / "train_1_anno.bmp", _image(8, 8, 5))
    with pytest.raises(DataError, match=r"train_1_anno\.bmp.*colours"):
        D.load_glas(root, "train", size=(8, 8))


def test_bad_split_and_resize(tmp_path: Path) -> None:
    root = _write_glas(tmp_path, {"train_1": (8, 8)})
    with pytest.raises(ValueError, match="split"):
        D.load_glas(root, "val")
    with pytest.raises(ValueError, match="resize"):
        D.load_glas(root, "train", resize="crop")


# ----------------------------------------------------------------------------- ISIC


def test_load_isic_resizes_and_labels_components(tmp_path: Path) -> None:
    root = _write_isic(tmp_path, "train", {"ISIC_0000001": _two_blobs(16, 16), "ISIC_0000000": _two_blobs(16, 16, 0)})
    ds = D.load_isic2016(root, "train", size=(8, 8))
    assert ds.names == ["ISIC_0000000", "ISIC_0000001"] and ds.grades == ["", ""]
    assert ds.images.shape == (2, 8, 8, 3) and ds.valid.all()
    assert ds.masks[0].sum() == 0 and ds.instances[1].max() == 2  # two blobs, two instances
    assert set(np.unique(ds.masks)) == {0, 1}
    np.testing.assert_array_equal(ds.masks[1], _two_blobs(16, 16)[::2, ::2] // 255)


def test_isic_bad_mask_values(tmp_path: Path) -> None:
    mask = _two_blobs(16, 16)
    mask[0, 0] = 128
    root = _write_isic(tmp_path, "test", {"ISIC_0000009": mask})
    with pytest.raises(DataError, match=r"ISIC_0000009_Segmentation\.png.*0 and 255"):
        D.load_isic2016(root, "test", size=(8, 8))


def test_isic_missing_mask_and_folders(tmp_path: Path) -> None:
    root = _write_isic(tmp_path, "train", {"ISIC_0000003": _two_blobs(16, 16)})
    with pytest.raises(DataError, match=r"Test_Data"):
        D.load_isic2016(root, "test")
    (root / "ISBI2016_ISIC_Part1_Training_GroundTruth" / "ISIC_0000003_Segmentation.png").unlink()
    with pytest.raises(DataError, match=r"ISIC_0000003\.jpg.*ISIC_0000003_Segmentation\.png"):
        D.load_isic2016(root, "train")
    with pytest.raises(DataError, match=r"challenge\.isic-archive\.com"):
        D.load_isic2016(tmp_path / "missing", "train")


# ----------------------------------------------------------------------------- user folder


def _write_folder(root: Path, split: str, items: dict[str, tuple[np.ndarray, str]]) -> Path:
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "masks").mkdir(parents=True, exist_ok=True)
    for i, (stem, (mask, suffix)) in enumerate(items.items()):
        _save(root / split / "images" / f"{stem}{suffix}", _image(*mask.shape, i))
        _save(root / split / "masks" / f"{stem}.png", mask)
    return root


def test_load_folder_binary_and_instance_masks(tmp_path: Path) -> None:
    inst = _labels(9, 10)
    root = _write_folder(tmp_path, "train", {"a": (_two_blobs(9, 16), ".png"), "b": (inst, ".tif")})
    ds = D.load_folder(root, "train", size=(10, 16), resize="pad")
    assert ds.names == ["a", "b"]
    assert ds.instances[0].max() == 2  # 0/255 mask: connected components
    np.testing.assert_array_equal(ds.instances[1, :9, :10], inst)  # touching ids kept apart
    assert ds.valid[1].sum() == 90 and not ds.valid[0, 9].any()


def test_folder_errors(tmp_path: Path) -> None:
    root = _write_folder(tmp_path, "train", {"a": (_two_blobs(9, 16), ".jpg")})
    with pytest.raises(DataError, match=r"test[/\\]images"):
        D.load_folder(root, "test", size=(8, 8))
    (root / "train" / "masks" / "a.png").unlink()
    with pytest.raises(DataError, match=r"a\.jpg.*a\.png"):
        D.load_folder(root, "train", size=(8, 8))
    (root / "train" / "images" / "a.jpg").unlink()
    with pytest.raises(DataError, match="no images"):
        D.load_folder(root, "train", size=(8, 8))


def test_read_labels_rejects_negative_values(tmp_path: Path) -> None:
    path = tmp_path / "neg.tif"
    Image.fromarray(np.array([[0, -3], [1, 2]], dtype=np.int32)).save(path)
    with pytest.raises(DataError, match=r"neg\.tif.*negative"):
        D.read_labels(path)


# ----------------------------------------------------------------------------- file formats of the folder layout
# Images and masks as microscopes and annotation tools write them: each case writes a file with a
# known answer into tmp_path and reads it back through load_folder, the loader of `dataset: folder`.

LEVELS16 = np.array([1000, 2000, 4200, 5000], np.uint16)  # image min 1000, max 5000 ...
LEVELS8 = np.array([0, 64, 204, 255], np.uint8)  # ... stretched: (v - 1000) * 255 / 4000, rounded
IDX = np.array([[0, 1, 2], [3, 3, 1]])  # the level of each pixel of a 2x3 image
IDX_RGB = np.stack([IDX, IDX[::-1], np.roll(IDX, 1, axis=1)], axis=-1)  # [2, 3, 3], channels differ
RGB8 = np.array([[[10, 20, 30], [40, 50, 60], [70, 80, 90]], [[200, 0, 5], [1, 254, 128], [33, 66, 99]]], np.uint8)
GRAY8 = np.array([[0, 17, 255], [128, 3, 90]], np.uint8)
PAL_IDX = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
PAL_COLOURS = np.array([[10, 20, 30], [200, 0, 5], [33, 66, 99]], np.uint8)


def _tif(path: Path, array: np.ndarray, **kwargs: object) -> None:
    tifffile.imwrite(path, array, **kwargs)


def _png16(path: Path, array: np.ndarray) -> None:
    path.write_bytes(imagecodecs.png_encode(array))  # Pillow cannot write 16-bit RGB PNGs


def _palette_image(indices: np.ndarray) -> Image.Image:
    """A palette ("P") image holding ``indices`` [H, W] uint8, one distinct colour per index."""
    img = Image.frombytes("P", (indices.shape[1], indices.shape[0]), np.ascontiguousarray(indices).tobytes())
    img.putpalette([c for i in range(256) for c in (i, 255 - i, 0)])  # distinct: PNG keeps the indices
    return img


def _png_palette(path: Path) -> None:
    img = _palette_image(PAL_IDX)
    img.putpalette(PAL_COLOURS.ravel().tolist())
    img.save(path)


def _tif_palette(path: Path) -> None:
    cmap = np.zeros((3, 256), np.uint16)
    cmap[:, :3] = PAL_COLOURS.T.astype(np.uint16) * 257  # TIFF colormaps are 16-bit
    _tif(path, PAL_IDX, photometric="palette", colormap=cmap)


def _with_alpha(rgb: np.ndarray) -> np.ndarray:
    alpha = np.zeros(rgb.shape[:2] + (1,), rgb.dtype)  # transparent everywhere but one pixel: must not matter
    alpha[0, 0] = np.iinfo(rgb.dtype).max
    return np.concatenate([rgb, alpha], axis=-1)


def _gray3(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


IMAGE_CASES = {  # name: (file name, writer, expected [H, W, 3] uint8)
    "png8-rgb": ("a.png", lambda p: _save(p, RGB8), RGB8),
    "png8-gray": ("a.png", lambda p: _save(p, GRAY8), _gray3(GRAY8)),
    "png8-rgba": ("a.png", lambda p: _save(p, _with_alpha(RGB8)), RGB8),
    "png8-palette": ("a.png", _png_palette, PAL_COLOURS[PAL_IDX]),
    "png16-gray": ("a.png", lambda p: _save(p, LEVELS16[IDX]), _gray3(LEVELS8[IDX])),
    "png16-rgb": ("a.png", lambda p: _png16(p, LEVELS16[IDX_RGB]), LEVELS8[IDX_RGB]),
    "png16-rgba": ("a.png", lambda p: _png16(p, _with_alpha(LEVELS16[IDX_RGB])), LEVELS8[IDX_RGB]),
    "bmp-rgb": ("a.bmp", lambda p: _save(p, RGB8), RGB8),
    "bmp-gray": ("a.bmp", lambda p: _save(p, GRAY8), _gray3(GRAY8)),
    "tif8-rgb": ("a.tif", lambda p: _tif(p, RGB8, photometric="rgb"), RGB8),
    "tif8-gray": ("a.tiff", lambda p: _tif(p, GRAY8, photometric="minisblack"), _gray3(GRAY8)),
    "tif8-rgba": ("a.tif", lambda p: _tif(p, _with_alpha(RGB8), photometric="rgb", extrasamples=["unassalpha"]), RGB8),
    "tif8-planar": ("a.TIF", lambda p: _tif(p, np.moveaxis(RGB8, -1, 0), photometric="rgb", planarconfig="separate"),
                    RGB8),
    "tif8-miniswhite": ("a.tif", lambda p: _tif(p, GRAY8, photometric="miniswhite"), _gray3(255 - GRAY8)),
    "tif8-palette": ("a.tif", _tif_palette, PAL_COLOURS[PAL_IDX]),
    "tif16-gray": ("a.tif", lambda p: _tif(p, LEVELS16[IDX], photometric="minisblack"), _gray3(LEVELS8[IDX])),
    "tif16-rgb": ("a.tif", lambda p: _tif(p, LEVELS16[IDX_RGB], photometric="rgb"), LEVELS8[IDX_RGB]),
    "tif16-lzw": ("a.tif", lambda p: _tif(p, LEVELS16[IDX], compression="lzw"), _gray3(LEVELS8[IDX])),
    "tif16-imagej": ("a.tif", lambda p: _tif(p, LEVELS16[IDX][None], imagej=True), _gray3(LEVELS8[IDX])),
    "tif16-pillow": ("a.tif", lambda p: _save(p, LEVELS16[IDX]), _gray3(LEVELS8[IDX])),
    "tif32-float": ("a.tif", lambda p: _tif(p, LEVELS16[IDX].astype(np.float32) / 1000), _gray3(LEVELS8[IDX])),
}


def _folder_with_image(root: Path, name: str, write: Callable[[Path], object], mask: np.ndarray | None = None) -> Path:
    """``root/train`` with one image written by ``write`` and a 0/1 PNG mask of its size."""
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "masks").mkdir(parents=True)
    write(root / "train" / "images" / name)
    _save(root / "train" / "masks" / f"{Path(name).stem}.png", np.zeros((2, 3), np.uint8) if mask is None else mask)
    return root


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_folder_reads_every_image_format(tmp_path: Path, case: str) -> None:
    name, write, expected = IMAGE_CASES[case]
    ds = D.load_folder(_folder_with_image(tmp_path, name, write), "train", size=(2, 3))
    assert ds.images.shape == (1, 2, 3, 3) and ds.images.dtype == np.uint8 and ds.names == ["a"]
    np.testing.assert_array_equal(ds.images[0], expected)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_folder_reads_jpeg(tmp_path: Path, mode: str) -> None:
    colour = np.array([200, 50, 100], np.uint8) if mode == "RGB" else np.array([77], np.uint8)
    block = np.broadcast_to(colour, (16, 16, colour.size)).squeeze()
    root = _folder_with_image(tmp_path, "a.jpg", lambda p: Image.fromarray(block).save(p, quality=95),
                              np.zeros((16, 16), np.uint8))
    image = D.load_folder(root, "train", size=(16, 16)).images[0].astype(int)  # [16, 16, 3]
    assert np.abs(image - np.resize(colour, 3)).max() <= 2  # JPEG is lossy, a flat block nearly exact


def test_constant_16bit_image_becomes_black(tmp_path: Path) -> None:
    root = _folder_with_image(tmp_path, "a.tif", lambda p: _tif(p, np.full((2, 3), 40000, np.uint16)))
    assert D.load_folder(root, "train", size=(2, 3)).images.max() == 0


def _touching_256_512(dtype: type = np.uint16) -> np.ndarray:
    """Two touching instances with ids that wrap to 0 modulo 256: 256 (left) and 512 (right)."""
    inst = np.zeros((10, 14), dtype)
    inst[2:8, 2:7] = 256
    inst[2:8, 7:12] = 512
    return inst


MASK_CASES = {  # name: (file name, writer)
    "tif16": ("a.tif", lambda p, m: _tif(p, m.astype(np.uint16))),
    "tif16-zlib": ("a.tiff", lambda p, m: _tif(p, m.astype(np.uint16), compression="zlib")),
    "png16": ("a.png", lambda p, m: _save(p, m.astype(np.uint16))),
    "tif32": ("a.tif", lambda p, m: _tif(p, m.astype(np.uint32))),
    "tif32-float": ("a.tif", lambda p, m: _tif(p, m.astype(np.float32))),
}


@pytest.mark.parametrize("case", MASK_CASES)
def test_folder_keeps_instance_ids_above_255(tmp_path: Path, case: str) -> None:
    name, write = MASK_CASES[case]
    inst = _touching_256_512()
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "masks").mkdir(parents=True)
    _save(tmp_path / "train" / "images" / "a.png", _image(10, 14, 0))
    write(tmp_path / "train" / "masks" / name, inst)
    ds = D.load_folder(tmp_path, "train", size=(10, 14), contour_radius=0)
    np.testing.assert_array_equal(ds.instances[0], inst.astype(np.int32))  # two instances, not wrapped to 0
    np.testing.assert_array_equal(ds.masks[0], (inst > 0).astype(np.uint8))
    assert ds.contours[0, 5, 6] and ds.contours[0, 5, 7]  # the shared border is contour
    np.testing.assert_array_equal(ds.contours[0], D.contour_target(inst.astype(np.int32), 0))


def test_folder_binary_tiff_and_palette_masks(tmp_path: Path) -> None:
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "masks").mkdir(parents=True)
    for stem in ("a", "b", "c"):
        _save(tmp_path / "train" / "images" / f"{stem}.png", _image(9, 16, 0))
    _tif(tmp_path / "train" / "masks" / "a.tif", _two_blobs(9, 16))  # 0/255: connected components
    _tif(tmp_path / "train" / "masks" / "b.tif", _two_blobs(9, 16, 1).astype(np.uint16))  # 0/1 16-bit
    _palette_image(_two_blobs(9, 16, 3)).save(tmp_path / "train" / "masks" / "c.png")  # palette indices 0 / 3
    ds = D.load_folder(tmp_path, "train", size=(9, 16))
    expected = np.zeros((9, 16), np.int32)
    expected[2:6, 2:6] = 1  # the left blob
    expected[2:6, 10:14] = 2  # the right blob
    for k in range(3):
        np.testing.assert_array_equal(ds.instances[k], expected)


def test_grey_rgb_tiff_mask_is_read_as_labels(tmp_path: Path) -> None:
    path = tmp_path / "m.tif"
    _tif(path, _gray3(_touching_256_512()), photometric="rgb")
    np.testing.assert_array_equal(D.read_labels(path), _touching_256_512().astype(np.int64))


def test_load_dataset_folder_reads_mixed_formats(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    for split in ("train", "test"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
    _tif(root / "train" / "images" / "x1.tif", LEVELS16[IDX_RGB], photometric="rgb")
    _tif(root / "train" / "masks" / "x1.tif", np.array([[0, 256, 512], [0, 0, 512]], np.uint16))
    _save(root / "train" / "images" / "x2.png", GRAY8)
    _save(root / "train" / "masks" / "x2.png", np.array([[0, 1, 1], [0, 0, 0]], np.uint8))
    Image.fromarray(RGB8).save(root / "test" / "images" / "y.jpg", quality=95)
    _tif(root / "test" / "masks" / "y.TIFF", np.ones((2, 3), np.uint8))
    cfg = _cfg(root, "folder", synthetic=False, image_size=[2, 3], resize="resize")
    train, test = D.load_dataset(cfg, "train"), D.load_dataset(cfg, "test")
    assert train.names == ["x1", "x2"] and test.names == ["y"]
    np.testing.assert_array_equal(train.images[0], LEVELS8[IDX_RGB])
    np.testing.assert_array_equal(train.images[1], _gray3(GRAY8))
    assert train.instances[0].tolist() == [[0, 256, 512], [0, 0, 512]]
    assert train.instances[1].tolist() == [[0, 1, 1], [0, 0, 0]] and test.masks.all()


# ----------------------------------------------------------------------------- bad files: one line naming the file


def _stack(p: Path) -> None:
    _tif(p, np.zeros((4, 2, 3), np.uint8), photometric="minisblack")  # 4 pages of one size: a 3-D stack


def _two_images(p: Path) -> None:
    with tifffile.TiffWriter(p) as tif:
        tif.write(np.zeros((2, 3), np.uint8))
        tif.write(np.zeros((5, 5), np.uint8))


BAD_IMAGES = {  # name: (file name, writer, what the message must say)
    "stack": ("a.tif", _stack, r"a\.tif: TIFF is a stack of shape \(4, 2, 3\).*single grayscale plane"),
    "channels": ("a.tif", lambda p: _tif(p, np.zeros((3, 2, 3), np.uint16), imagej=True, metadata={"axes": "CYX"}),
                 r"a\.tif: TIFF is a stack.*axes CYX"),
    "two-images": ("a.tif", _two_images, r"a\.tif: TIFF holds 2 images.*single-page"),
    "garbage-tif": ("a.tif", lambda p: p.write_bytes(b"II*\x00 this is no tiff"), r"a\.tif: .*replace the file"),
    "empty-tif": ("a.tif", lambda p: p.write_bytes(b"II*\x00\x08\x00\x00\x00"), r"a\.tif: .*replace the file"),
    "bad-png16": ("a.png", lambda p: p.write_bytes(imagecodecs.png_encode(LEVELS16[IDX])[:40] + b"x" * 30),
                  r"a\.png: cannot read this image.*replace the file"),
    "nan": ("a.tif", lambda p: _tif(p, np.array([[0, np.nan, 1], [0, 0, 0]], np.float32)), r"a\.tif: .*NaN"),
    "5-channels": ("a.tif", lambda p: _tif(p, np.zeros((2, 3, 5), np.uint8), photometric="minisblack",
                                           planarconfig="contig"), r"a\.tif: .*(stack|shape)"),
}


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_bad_image_files_give_one_line(tmp_path: Path, case: str) -> None:
    name, write, message = BAD_IMAGES[case]
    root = _folder_with_image(tmp_path, name, write)
    with pytest.raises(DataError, match=message) as err:
        D.load_folder(root, "train", size=(2, 3))
    assert "\n" not in str(err.value)


def _bad_mask_folder(root: Path, write_mask: Callable[[Path], object]) -> Path:
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "masks").mkdir(parents=True)
    _save(root / "train" / "images" / "a.png", _image(2, 3, 0))
    write_mask(root / "train" / "masks")
    return root


BAD_MASKS = {  # name: (writer into the masks folder, what the message must say)
    "fractional": (lambda m: _tif(m / "a.tif", np.array([[0, 0.5, 1], [0, 0, 0]], np.float32)),
                   r"a\.tif: mask holds non-integer values \(e\.g\. 0\.5\)"),
    "nan": (lambda m: _tif(m / "a.tif", np.array([[0, np.nan, 1], [0, 0, 0]], np.float32)), r"a\.tif: .*non-integer"),
    "stack": (lambda m: _stack(m / "a.tif"), r"a\.tif: TIFF is a stack"),
    "colour": (lambda m: _tif(m / "a.tif", RGB8, photometric="rgb"), r"a\.tif: mask has colours"),
    "size": (lambda m: _tif(m / "a.tif", np.zeros((3, 3), np.uint16)), r"a\.tif: mask is 3x3 but image a\.png is 2x3"),
    "two-masks": (lambda m: (_save(m / "a.png", np.zeros((2, 3), np.uint8)), _tif(m / "a.tif", np.zeros((2, 3)))),
                  r"masks: two masks are named 'a' \(a\.png, a\.tif\); keep one mask per name"),
    "jpeg": (lambda m: Image.fromarray(np.zeros((2, 3), np.uint8)).save(m / "a.jpg"),
             r"a\.png: mask not found \(a\.jpg is there, but masks must be lossless PNG or TIFF\).*a\.png \(or \.tif"),
    "int64-ids": (lambda m: _tif(m / "a.tif", np.array([[0, 2**31, 1], [0, 0, 0]], np.uint32)),
                  r"a\.tif: instance id 2147483648 does not fit.*relabel_sequential"),
}


@pytest.mark.parametrize("case", BAD_MASKS)
def test_bad_mask_files_give_one_line(tmp_path: Path, case: str) -> None:
    write, message = BAD_MASKS[case]
    with pytest.raises(DataError, match=message) as err:
        D.load_folder(_bad_mask_folder(tmp_path, write), "train", size=(2, 3))
    assert "\n" not in str(err.value)


def test_two_images_with_one_stem_and_hidden_files(tmp_path: Path) -> None:
    root = _write_folder(tmp_path, "train", {"a": (_two_blobs(9, 16), ".png")})
    (root / "train" / "images" / "._a.png").write_bytes(b"macOS resource fork, not an image")  # skipped
    (root / "train" / "masks" / ".a.tif").write_bytes(b"hidden")  # skipped, no duplicate
    assert D.load_folder(root, "train", size=(9, 16)).names == ["a"]
    _save(root / "train" / "images" / "a.tif", _image(9, 16, 1))
    with pytest.raises(DataError, match=r"images: two images are named 'a' \(a\.png, a\.tif\)"):
        D.load_folder(root, "train", size=(9, 16))


def test_missing_masks_folder_says_where(tmp_path: Path) -> None:
    root = _write_folder(tmp_path, "test", {"a": (_two_blobs(9, 16), ".png")})
    (root / "test" / "masks" / "a.png").unlink()
    (root / "test" / "masks").rmdir()
    with pytest.raises(DataError, match=r"test[/\\]masks: folder not found.*\.tif"):
        D.load_folder(root, "test", size=(9, 16), require_masks=False)


# ----------------------------------------------------------------------------- contour target


def _square(n: int = 15, lo: int = 5, hi: int = 10) -> np.ndarray:
    mask = np.zeros((n, n), np.int32)
    mask[lo:hi, lo:hi] = 1
    return mask


def test_contour_of_square_is_the_ring_around_its_border() -> None:
    ring = np.zeros((15, 15), bool)
    ring[4:11, 4:11] = True  # the square grown by one pixel ...
    ring[6:9, 6:9] = False  # ... minus the square shrunk by one pixel
    np.testing.assert_array_equal(D.contour_target(_square(), radius=0), ring)


def test_contour_radius_dilates_with_a_disk() -> None:
    base = D.contour_target(_square(), radius=0)
    for radius in (1, 2, 3):
        expected = ndimage.binary_dilation(base, structure=disk(radius))
        np.testing.assert_array_equal(D.contour_target(_square(), radius=radius), expected)
    assert not D.contour_target(_square(), 1)[2, 7] and D.contour_target(_square(), 2)[2, 7]
    assert D.contour_target(_square(), 3).dtype == bool


def test_touching_instances_have_a_contour_between_them() -> None:
    inst = np.zeros((12, 16), np.int32)
    inst[3:9, 3:8] = 1
    inst[3:9, 8:13] = 2
    with_border = D.contour_target(inst, radius=0)
    binary = D.contour_target(inst > 0, radius=0)
    assert with_border[6, 7] and with_border[6, 8]  # either side of the shared border
    assert not binary[6, 7] and not binary[6, 8]  # one binary object: no border there
    extra = np.zeros((12, 16), bool)
    extra[4:8, 7:9] = True  # the shared border, away from the outer ring (rows 3 and 8)
    np.testing.assert_array_equal(with_border & ~binary, extra)


def test_contour_edge_cases() -> None:
    assert not D.contour_target(np.zeros((5, 6), np.uint8)).any()
    with pytest.raises(ValueError, match="H, W"):
        D.contour_target(np.zeros((2, 5, 6)))
    with pytest.raises(ValueError, match="radius"):
        D.contour_target(_square(), radius=-1)


# ----------------------------------------------------------------------------- pool split


def test_split_pool_deterministic_disjoint_complete() -> None:
    a, b = D.split_pool(30, 10, 5, seed=3), D.split_pool(30, 10, 5, seed=3)
    assert a == b
    assert D.split_pool(30, 10, 5, seed=4) != a
    assert (len(a.initial), len(a.val), len(a.pool)) == (10, 5, 15)
    assert sorted(a.initial + a.val + a.pool) == list(range(30))


def test_split_pool_balances_grades() -> None:
    grades = ["benign"] * 8 + ["malignant"] * 12
    split = D.split_pool(20, 10, 4, seed=0, grades=grades)
    assert sum(grades[i] == "benign" for i in split.initial) == 5
    assert sum(grades[i] == "benign" for i in split.val) == 2
    few = ["benign"] * 3 + ["malignant"] * 17
    split = D.split_pool(20, 10, 4, seed=1, grades=few)
    assert sum(few[i] == "benign" for i in split.initial) == 3  # all there are
    assert sorted(split.initial + split.val + split.pool) == list(range(20))


def test_split_pool_errors() -> None:
    with pytest.raises(ConfigError, match=r"n_initial \(10\) \+ n_val \(10\).*20"):
        D.split_pool(20, 10, 10, seed=0)
    with pytest.raises(ValueError, match="grades"):
        D.split_pool(20, 5, 5, seed=0, grades=["benign"])


def test_subset_keeps_order() -> None:
    n = 4
    ds = D.SegmentationSet(
        images=np.arange(n)[:, None, None, None] * np.ones((n, 2, 2, 3), np.uint8),
        masks=np.zeros((n, 2, 2), np.uint8), instances=np.zeros((n, 2, 2), np.int32),
        contours=np.zeros((n, 2, 2), np.uint8), valid=np.ones((n, 2, 2), bool),
        names=[f"x{i}" for i in range(n)], grades=["benign", "malignant", "", "benign"],
    )
    sub = ds.subset([3, 1])
    assert sub.names == ["x3", "x1"] and sub.grades == ["benign", "malignant"]
    assert sub.images[:, 0, 0, 0].tolist() == [3, 1] and len(sub) == 2


# ----------------------------------------------------------------------------- from a config


def _cfg(root: Path, dataset: str = "glas", **data) -> RunConfig:
    base = dict(dataset=dataset, root=str(root), synthetic=True, synthetic_n_train=3, synthetic_n_test=3,
                synthetic_size=[40, 56], image_size=[40, 56], contour_radius=1)
    base.update(data)
    return RunConfig(data=DataConfig(**base))


def test_load_dataset_generates_glas_on_demand_and_cuts_test(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "sets" / "glas_like", max_test=2)
    train = D.load_dataset(cfg, "train")
    assert len(train) == 3 and train.images.shape == (3, 40, 56, 3)
    assert set(train.grades) <= {"benign", "malignant"} and train.instances.max() > 0
    test = D.load_dataset(cfg, "test")
    assert test.names == ["testA_1", "testA_2"]
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["glas_like"]  # no temp folder left


def test_load_dataset_isic_and_errors(tmp_path: Path) -> None:
    ds = D.load_dataset(_cfg(tmp_path / "isic", "isic", image_size=[20, 28]), "test")
    assert len(ds) == 3 and ds.images.shape == (3, 20, 28, 3) and ds.masks.any()
    with pytest.raises(DataError, match="synthetic"):
        D.load_dataset(_cfg(tmp_path / "mine", "folder"), "train")
    with pytest.raises(DataError, match="warwick"):
        D.load_dataset(_cfg(tmp_path / "absent", synthetic=False), "train")


def test_generation_race_keeps_the_first_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "glas_like"
    real = D.synthetic.make_glas_like

    def slow_loser(out, n_train, n_test, size, seed):
        real(root, 1, 1, size, seed=5)  # another process finishes first
        return real(out, n_train, n_test, size, seed)

    monkeypatch.setattr(D.synthetic, "make_glas_like", slow_loser)
    ds = D.load_dataset(_cfg(root), "train")
    assert len(ds) == 1  # the winner's set (1 train image), not ours (3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glas_like"]
