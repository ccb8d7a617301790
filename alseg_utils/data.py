"""Datasets: loaders for GlaS, ISIC 2016 and a user's own folder, contour targets, pool splits.

Every loader returns a :class:`SegmentationSet` of equally sized arrays ready for the model:
RGB images, binary object masks, instance label maps, contour targets (:func:`contour_target`)
and a ``valid`` map that is False on zero padding. Nothing is ever downloaded.

Layouts read (the synthetic generators of :mod:`alseg_utils.synthetic` write the first two):

* **GlaS** (Warwick-QU, https://warwick.ac.uk/fac/cross_fac/tia/data/glascontest/): one folder with
  ``train_K.bmp`` + ``train_K_anno.bmp``, ``testA_K.bmp`` + ``testA_K_anno.bmp``,
  ``testB_K.bmp`` + ``testB_K_anno.bmp`` and ``Grade.csv`` (columns ``name, patient ID,
  grade (GlaS), grade (Sirinukunwattana et al. 2015)``). Annotations are instance label images:
  0 background, 1..n glands. Images are zero-padded (``resize="pad"``, as the authors did) or
  resized to ``size``.
* **ISIC 2016 Part 1** (https://challenge.isic-archive.com/data/#2016):
  ``ISBI2016_ISIC_Part1_Training_Data/ISIC_XXXXXXX.jpg``,
  ``ISBI2016_ISIC_Part1_Training_GroundTruth/ISIC_XXXXXXX_Segmentation.png`` and the same with
  ``Test_Data`` / ``Test_GroundTruth``. Masks are 0/255 PNGs. Always resized to ``size``
  (images bilinear, masks nearest); instances are the connected components of the mask.
* **Your own data** (``data.dataset: folder``)::

      root/
        train/images/<stem>.png|jpg|jpeg|bmp|tif|tiff
        train/masks/<stem>.png|tif|tiff
        test/images/...
        test/masks/...

  Every image needs one mask of the same height and width with the same file stem (``a.jpg`` goes
  with ``a.png`` or ``a.tif``; two masks or two images with one stem are refused; hidden files are
  skipped). Images: grayscale (repeated into 3 channels), RGB or RGBA (alpha dropped), 8- or 16-bit;
  8-bit values are kept, 16-bit (also 32-bit / float TIFF) values are stretched from the image's own
  minimum..maximum to 0..255 (see :func:`read_rgb`). Masks: 8- or 16-bit PNG or TIFF (32-bit integer
  TIFF too, float TIFF only when it holds whole numbers), one channel. TIFFs are read with tifffile
  and must hold one 2-D image (grayscale or RGB); multi-page and 3-D TIFFs are refused. Mask value 0
  is background. A mask with one non-zero value (1 or 255, say) is binary and its connected
  components become the instances; a mask with several non-zero values holds instance ids (kept as
  they are, e.g. 16-bit ids above 255 from napari, StarDist, Cellpose or QuPath). Images are resized
  (bilinear; masks nearest) or zero-padded to ``data.image_size``.

  Images with no masks at all (labelled through ``alseg run --oracle files``): leave out
  ``train/masks``; the ``test`` folder is then optional too (no test set = no evaluation). Loaders
  are asked for this with ``require_masks=False``; a set without ground truth has
  ``has_masks == False`` and all-zero masks.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError
from scipy import ndimage
from skimage.filters import sobel
from skimage.measure import label as connected_components
from skimage.morphology import disk
from skimage.transform import resize as sk_resize

from alseg_utils import synthetic
from alseg_utils.config import RunConfig
from alseg_utils.errors import ConfigError, DataError

GLAS_URL = "https://warwick.ac.uk/fac/cross_fac/tia/data/glascontest/"
ISIC_URL = "https://challenge.isic-archive.com/data/#2016"
GLAS_SPLITS = {"train": ("train",), "test": ("testA", "testB"), "testA": ("testA",), "testB": ("testB",)}
ISIC_FOLDERS = {"train": "Training", "test": "Test"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".tif", ".tiff")  # lossless formats only: JPEG would blur the ids
TIFF_SUFFIXES = (".tif", ".tiff")
_READ_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError)
_TIFF_ERRORS = (OSError, ValueError, KeyError, IndexError, RuntimeError, struct.error)  # incl. codec errors
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # Pillow modes of more than 8 bits per sample


@dataclass
class SegmentationSet:
    """Images with their object masks, instances and contour targets, all of one size.

    Attributes:
        images: RGB images, [N, H, W, 3], uint8.
        masks: object (gland / lesion) vs background, [N, H, W], uint8 in {0, 1}.
        instances: instance labels, [N, H, W], int32, 0 background, 1..k objects.
        contours: :func:`contour_target` of each instance map, [N, H, W], uint8 in {0, 1}.
        valid: False on zero padding added by ``resize="pad"``, [N, H, W], bool.
        names: file stems, e.g. ``"train_12"`` or ``"ISIC_0000000"``.
        grades: GlaS ``"benign"`` / ``"malignant"`` from Grade.csv; ``""`` otherwise.
        has_masks: False when the images came without ground truth (masks, instances and contours
            are then all zero and mean nothing).
    """

    images: np.ndarray
    masks: np.ndarray
    instances: np.ndarray
    contours: np.ndarray
    valid: np.ndarray
    names: list[str]
    grades: list[str]
    has_masks: bool = True

    def subset(self, idx: Sequence[int]) -> SegmentationSet:
        """The images at positions ``idx``, in that order.

        Args:
            idx: positions into this set.

        Returns:
            A new set holding copies of the selected images.
        """
        ix = np.asarray(list(idx), dtype=np.int64)
        return SegmentationSet(
            images=self.images[ix], masks=self.masks[ix], instances=self.instances[ix],
            contours=self.contours[ix], valid=self.valid[ix],
            names=[self.names[i] for i in ix], grades=[self.grades[i] for i in ix], has_masks=self.has_masks,
        )

    def __len__(self) -> int:
        """Number of images."""
        return len(self.names)


@dataclass
class PoolSplit:
    """How the training images are used by an active-learning run.

    Attributes:
        initial: indices into the train set labelled at the start.
        val: validation images (fully labelled, never acquired, not counted as pool).
        pool: the unlabelled pool (initial + pool = the AL training images).
    """

    initial: list[int]
    val: list[int]
    pool: list[int]


# ----------------------------------------------------------------------------- contour target


def contour_target(mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Contour target of DCAN: Sobel edges of a label image, dilated with a disk.

    Edges between two touching instances count as contour too (the label changes there).

    Args:
        mask: instance labels or a binary mask, [H, W], integers or bool (0 = background).
        radius: radius of the disk the edges are dilated with; 0 keeps the raw edges.

    Returns:
        The contour pixels, [H, W], bool.

    Raises:
        ValueError: ``mask`` is not 2-D or ``radius`` is negative.
    """
    labels = np.asarray(mask)
    if labels.ndim != 2:
        raise ValueError(f"contour_target needs one [H, W] mask, got shape {labels.shape}")
    if radius < 0:
        raise ValueError(f"contour radius must be >= 0, got {radius}")
    edges = sobel(labels.astype(np.float64)) > 0  # [H, W]
    if radius == 0 or not edges.any():
        return edges
    return ndimage.binary_dilation(edges, structure=disk(radius))


# ----------------------------------------------------------------------------- reading files


def _reason(err: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(err).split()) or type(err).__name__


def _unreadable(path: Path, err: BaseException) -> DataError:
    """The error for a file no reader can decode."""
    return DataError(f"{path}: cannot read this image ({_reason(err)}); replace the file with a valid one")


def _open(path: Path) -> Image.Image:
    """Open and decode an image file with Pillow, or raise DataError naming it."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from None


def _png_bit_depth(path: Path) -> int:
    """Bits per sample of a PNG file, read from its IHDR chunk; 0 when the file is not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError as err:
        raise _unreadable(path, err) from None
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return 0
    return head[24]


def _read_png16(path: Path) -> np.ndarray:
    """Decode a 16-bit PNG with imagecodecs (Pillow keeps only the high byte of 16-bit RGB).

    Returns:
        The samples, [H, W] or [H, W, C] with C in 2..4, uint16.
    """
    try:
        return imagecodecs.png_decode(path.read_bytes())
    except (OSError, ValueError, RuntimeError) as err:
        raise _unreadable(path, err) from None


def _read_tiff(path: Path) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Read the one 2-D image of a TIFF file with tifffile.

    Returns:
        The samples ([H, W] or [H, W, S], the file's dtype; planar RGB is moved to the last axis),
        the photometric interpretation (``tifffile.PHOTOMETRIC``) and the colormap of a palette
        TIFF ([3, 2**bits], uint16) or None.

    Raises:
        DataError: the file is unreadable, holds no image, several images, or a 3-D stack.
    """
    try:
        with tifffile.TiffFile(path) as tif:
            n_series = len(tif.series)
            if n_series:
                data, axes, page = tif.series[0].asarray(), tif.series[0].axes, tif.series[0].keyframe
                photometric, colormap = int(page.photometric), page.colormap
    except _TIFF_ERRORS as err:
        raise _unreadable(path, err) from None
    if n_series == 0:
        raise DataError(f"{path}: TIFF holds no readable image; replace the file with a valid one")
    if n_series > 1:
        raise DataError(f"{path}: TIFF holds {n_series} images of different shapes; save the one to use as a "
                        "single-page TIFF")
    if axes == "SYX":  # planar configuration: one plane per colour
        data, axes = np.moveaxis(data, 0, -1), "YXS"
    if axes not in ("YX", "YXS") or data.size == 0:
        raise DataError(f"{path}: TIFF is a stack of shape {data.shape} (axes {axes}), not one 2-D image; save a "
                        "single grayscale plane or an RGB image per file")
    return data, photometric, colormap


def _channels(arr: np.ndarray, path: Path) -> np.ndarray:
    """Grayscale stays [H, W]; gray + alpha gives [H, W]; RGB and RGBA give [H, W, 3] (alpha dropped)."""
    if arr.ndim == 3 and arr.shape[-1] in (1, 2):
        return arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return arr[..., :3]
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(f"{path}: pixel array has shape {arr.shape}; save it as a grayscale, RGB or RGBA image")
    return arr


def _to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """uint8 stays as is, bool becomes 0 / 255, anything else is stretched from its own min..max to 0..255.

    Args:
        arr: samples, [H, W] or [H, W, 3], any integer, bool or float dtype.
        path: the file, for error messages.

    Returns:
        The samples, same shape, uint8; a constant non-uint8 image becomes all zero.

    Raises:
        DataError: the samples are not numbers, or some are NaN / infinite.
    """
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{path}: pixel type {arr.dtype} is not supported; save it as an 8- or 16-bit image")
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"{path}: image has NaN or infinite pixels; replace them with numbers and save it again")
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        return np.zeros(arr.shape, np.uint8)
    return np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _palette_rgb(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """Colours of a palette TIFF: indices [H, W] looked up in colormap [3, 2**bits] (16- or 8-bit values).

    Returns:
        The colours, [H, W, 3], uint8.
    """
    cmap = np.asarray(colormap)
    if cmap.max() > 255:
        cmap = cmap >> 8
    return np.moveaxis(cmap.astype(np.uint8)[:, indices], 0, -1)


def _image_samples(path: Path) -> tuple[np.ndarray, bool]:
    """An image file's samples as stored, [H, W] or [H, W, C], and whether 0 means white (TIFF MinIsWhite)."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        data, photometric, colormap = _read_tiff(path)
        if photometric == tifffile.PHOTOMETRIC.PALETTE and colormap is not None and data.ndim == 2:
            return _palette_rgb(data, colormap), False
        return data, photometric == tifffile.PHOTOMETRIC.MINISWHITE
    if _png_bit_depth(path) == 16:
        return _read_png16(path), False
    img = _open(path)
    if img.mode in _WIDE_MODES:  # 16-bit grayscale, 32-bit integer or float: the values as stored
        return np.asarray(img), False
    return np.asarray(img.convert("RGBA" if "transparency" in img.info else "RGB")), False


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as 8-bit RGB.

    PNG, JPEG, BMP and TIFF, grayscale, RGB or RGBA, 8- or 16-bit. Grayscale is repeated into three
    channels and alpha is dropped. 8-bit samples are kept as they are; 16-bit (and 32-bit or float)
    samples are stretched linearly from the image's own minimum..maximum, over all channels together,
    to 0..255 (a constant image becomes black). TIFFs are read with tifffile and must hold one 2-D
    image (grayscale, RGB or palette); 16-bit PNGs are decoded with imagecodecs.

    Args:
        path: image file.

    Returns:
        The image, [H, W, 3], uint8.

    Raises:
        DataError: the file is missing, unreadable or corrupt, is a multi-page / 3-D TIFF, has an
            unsupported channel count or pixel type, or NaN pixels.
    """
    samples, min_is_white = _image_samples(path)
    rgb = _to_uint8(_channels(samples, path), path)  # [H, W] or [H, W, 3]
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)  # [H, W, 3]
    if min_is_white:
        rgb = 255 - rgb
    return np.ascontiguousarray(rgb)


def _label_samples(path: Path) -> np.ndarray:
    """A mask file's values as stored (palette PNGs give their indices), [H, W] or [H, W, C]."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        return _read_tiff(path)[0]
    if _png_bit_depth(path) == 16:
        return _read_png16(path)
    return np.asarray(_open(path))


def read_labels(path: Path) -> np.ndarray:
    """Read a label / mask image without changing its values (palette images give indices).

    Args:
        path: mask file: PNG (8- or 16-bit), TIFF (8-, 16- or 32-bit integer, or float holding whole
            numbers), BMP; greyscale, palette or grey-valued RGB(A) (alpha is ignored).

    Returns:
        The label values, [H, W], int64.

    Raises:
        DataError: the file is unreadable, a multi-page / 3-D TIFF, has colours (channels differ),
            non-integer, NaN or negative values.
    """
    arr = _channels(_label_samples(path), path)
    if arr.ndim == 3:
        if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
            raise DataError(f"{path}: mask has colours; save it as a single-channel label image (0 = background)")
        arr = arr[..., 0]
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and np.array_equal(arr, np.round(arr))):
        bad = arr[~np.isfinite(arr) | (arr != np.round(arr))].flat[0]
        raise DataError(f"{path}: mask holds non-integer values (e.g. {bad}); save it as an integer label image "
                        "(0 = background, 1..k = objects)")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: mask pixel type {arr.dtype} is not supported; save it as an 8- or 16-bit label image")
    labels = arr.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DataError(f"{path}: mask has negative values ({labels.min()}); use 0 for background, 1..k for objects")
    return labels


# ----------------------------------------------------------------------------- resizing


def _fit(
    image: np.ndarray, labels: np.ndarray, size: Sequence[int], resize: str, path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bring one image and its labels to ``size`` by zero padding or resizing.

    Args:
        image: RGB image, [h, w, 3], uint8.
        labels: instance labels, [h, w], integers >= 0.
        size: target (H, W).
        resize: ``"pad"`` (zero-pad bottom / right) or ``"resize"`` (bilinear image, nearest labels).
        path: the image file, for error messages.

    Returns:
        image [H, W, 3] uint8, labels [H, W] int32, valid [H, W] bool (False on padding).

    Raises:
        DataError: ``resize="pad"`` and the image is larger than ``size``.
        ValueError: ``resize`` is neither ``"pad"`` nor ``"resize"``.
    """
    (h, w), (th, tw) = image.shape[:2], (int(size[0]), int(size[1]))
    if resize == "pad":
        if h > th or w > tw:
            raise DataError(
                f"{path}: image is {h}x{w}, larger than the {th}x{tw} canvas; use resize=\"resize\" "
                f"(data.resize: resize) or a larger data.image_size"
            )
        out = np.zeros((th, tw, 3), np.uint8)
        out[:h, :w] = image
        lab = np.zeros((th, tw), np.int32)
        lab[:h, :w] = labels
        valid = np.zeros((th, tw), bool)
        valid[:h, :w] = True
        return out, lab, valid
    if resize != "resize":
        raise ValueError(f"resize must be 'pad' or 'resize', got {resize!r}")
    if (h, w) == (th, tw):
        return image, labels.astype(np.int32), np.ones((th, tw), bool)
    down = th < h or tw < w
    img = sk_resize(image, (th, tw, 3), order=1, anti_aliasing=down, preserve_range=True)  # [H, W, 3]
    lab = sk_resize(labels, (th, tw), order=0, anti_aliasing=False, preserve_range=True)  # [H, W]
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out, np.rint(lab).astype(np.int32), np.ones((th, tw), bool)


# ----------------------------------------------------------------------------- assembling a set


@dataclass
class _Item:
    """One image file with its label file, before loading."""

    name: str
    image: Path
    labels: Path | None  # None: the image has no ground truth
    grade: str = ""


def _load_pair(item: _Item, to_instances: Callable[[np.ndarray, Path], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Read one image and its instance labels (all zero without a label file), checking their sizes agree."""
    image = read_rgb(item.image)
    if item.labels is None:
        return image, np.zeros(image.shape[:2], np.int32)
    instances = to_instances(read_labels(item.labels), item.labels)
    if instances.shape != image.shape[:2]:
        raise DataError(
            f"{item.labels}: mask is {instances.shape[0]}x{instances.shape[1]} but image {item.image.name} is "
            f"{image.shape[0]}x{image.shape[1]}; masks must have the size of their image"
        )
    return image, instances


def _assemble(
    items: Sequence[_Item],
    to_instances: Callable[[np.ndarray, Path], np.ndarray],
    size: Sequence[int],
    resize: str,
    contour_radius: int,
) -> SegmentationSet:
    """Load, fit to ``size`` and stack the items into a :class:`SegmentationSet`."""
    images, instances, valids = [], [], []
    for item in items:
        image, inst = _load_pair(item, to_instances)
        image, inst, valid = _fit(image, inst, size, resize, item.image)
        images.append(image)
        instances.append(inst)
        valids.append(valid)
    inst_arr = np.stack(instances).astype(np.int32)  # [N, H, W]
    contours = np.stack([contour_target(m, contour_radius) for m in inst_arr]).astype(np.uint8)  # [N, H, W]
    return SegmentationSet(
        images=np.stack(images), masks=(inst_arr > 0).astype(np.uint8), instances=inst_arr,
        contours=contours, valid=np.stack(valids),
        names=[it.name for it in items], grades=[it.grade for it in items],
        has_masks=all(it.labels is not None for it in items),
    )


def _empty_set(size: Sequence[int]) -> SegmentationSet:
    """A set of no images of ``size`` (H, W): a test split the user does not have."""
    h, w = int(size[0]), int(size[1])
    return SegmentationSet(
        images=np.zeros((0, h, w, 3), np.uint8), masks=np.zeros((0, h, w), np.uint8),
        instances=np.zeros((0, h, w), np.int32), contours=np.zeros((0, h, w), np.uint8),
        valid=np.zeros((0, h, w), bool), names=[], grades=[],
    )


def _check_args(size: Sequence[int], resize: str = "resize") -> None:
    """Raise ValueError for a size that is not (H, W) >= 1 or an unknown resize mode."""
    if len(size) != 2 or int(size[0]) < 1 or int(size[1]) < 1:
        raise ValueError(f"size must be (height, width) with both >= 1, got {tuple(size)}")
    if resize not in ("pad", "resize"):
        raise ValueError(f"resize must be 'pad' or 'resize', got {resize!r}")


def _components(labels: np.ndarray) -> np.ndarray:
    """Connected components (8-connected) of the non-zero pixels, [H, W] int32."""
    return connected_components(labels > 0, connectivity=2).astype(np.int32)


# ----------------------------------------------------------------------------- GlaS


def _missing_root(root: Path, what: str, url: str, layout: str) -> DataError:
    """The error for a dataset folder that does not exist: where to get it, or generate it."""
    return DataError(
        f"{root}: {what} data folder not found; download it from {url} and unpack it there "
        f"({layout}), or set data.synthetic: true to generate a look-alike set there"
    )


def read_glas_grades(root: Path) -> dict[str, str]:
    """Read GlaS ``Grade.csv`` into ``{name: "benign" | "malignant"}``.

    The header of the official file has spaces after the commas; names, headers and values are
    stripped, and headers compared case-insensitively.

    Args:
        root: the GlaS folder.

    Returns:
        Grade per image stem; empty when the folder has no Grade.csv.

    Raises:
        DataError: Grade.csv lacks the ``name`` or ``grade (GlaS)`` column, or is unreadable.
    """
    path = Path(root) / "Grade.csv"
    if not path.is_file():
        return {}
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read it ({err}); restore the official Grade.csv") from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    grade_cols = [i for i, h in enumerate(header) if h.replace(" ", "").startswith("grade(glas)")]
    if "name" not in header or not grade_cols:
        raise DataError(f"{path}: expected columns 'name' and 'grade (GlaS)' in the header, got {rows[:1]}")
    i_name, i_grade = header.index("name"), grade_cols[0]
    return {
        row[i_name].strip(): row[i_grade].strip().lower()
        for row in rows[1:]
        if len(row) > max(i_name, i_grade) and row[i_name].strip()
    }


def _glas_items(root: Path, prefix: str, grades: dict[str, str]) -> list[_Item]:
    """The ``<prefix>_K.bmp`` files of a GlaS folder, sorted by K, with their annotations."""
    pattern = re.compile(rf"^{prefix}_(\d+)\.bmp$", re.IGNORECASE)
    found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := pattern.match(p.name)))
    items = []
    for _, path in found:
        anno = path.with_name(f"{path.stem}_anno{path.suffix}")
        if not anno.is_file():
            raise DataError(
                f"{path}: annotation {anno.name} not found next to it; every GlaS image needs its _anno.bmp"
            )
        items.append(_Item(path.stem, path, anno, grades.get(path.stem, "")))
    return items


def _glas_instances(labels: np.ndarray, path: Path) -> np.ndarray:
    """GlaS annotations already hold instance ids (0 background, 1..n glands)."""
    return labels.astype(np.int32)


def load_glas(
    root: str | Path,
    split: str,
    size: Sequence[int] = (528, 784),
    resize: str = "pad",
    contour_radius: int = 3,
) -> SegmentationSet:
    """Load GlaS (Warwick-QU) from its official folder layout.

    Args:
        root: the folder holding ``train_K.bmp``, ``train_K_anno.bmp``, ``testA_K.bmp``, ... and Grade.csv.
        split: ``"train"``, ``"test"`` (testA then testB), ``"testA"`` or ``"testB"``.
        size: (H, W) every image is brought to.
        resize: ``"pad"`` zero-pads bottom / right (the authors' choice); ``"resize"`` resizes
            (images bilinear, annotations nearest).
        contour_radius: disk radius of :func:`contour_target`.

    Returns:
        The images sorted by K, with grades from Grade.csv.

    Raises:
        DataError: missing folder, no images for the split, missing or mismatched annotation,
            unreadable file, or an image larger than ``size`` with ``resize="pad"``.
        ValueError: unknown split or bad size.
    """
    root = Path(root)
    if split not in GLAS_SPLITS:
        raise ValueError(f"GlaS split must be one of {', '.join(GLAS_SPLITS)}, got {split!r}")
    _check_args(size, resize)
    if not root.is_dir():
        raise _missing_root(root, "GlaS", GLAS_URL, "train_K.bmp, train_K_anno.bmp, testA_K.bmp, ..., Grade.csv")
    grades = read_glas_grades(root)
    items = [it for prefix in GLAS_SPLITS[split] for it in _glas_items(root, prefix, grades)]
    if not items:
        wanted = ", ".join(f"{prefix}_K.bmp" for prefix in GLAS_SPLITS[split])
        raise DataError(f"{root}: no GlaS {split} images ({wanted}) found; check the folder")
    return _assemble(items, _glas_instances, size, resize, contour_radius)


# ----------------------------------------------------------------------------- ISIC 2016


def _isic_instances(labels: np.ndarray, path: Path) -> np.ndarray:
    """Check an ISIC mask is 0/255 and return its connected components."""
    bad = np.setdiff1d(np.unique(labels), [0, 255])
    if bad.size:
        raise DataError(
            f"{path}: ISIC masks must hold only 0 and 255, found {bad[:5].tolist()}; re-export it as a 0/255 PNG"
        )
    return _components(labels)


def _isic_items(root: Path, split: str) -> list[_Item]:
    """The ISIC_XXXXXXX.jpg files of one split with their _Segmentation.png masks."""
    part = ISIC_FOLDERS[split]
    data = root / f"ISBI2016_ISIC_Part1_{part}_Data"
    truth = root / f"ISBI2016_ISIC_Part1_{part}_GroundTruth"
    for folder in (data, truth):
        if not folder.is_dir():
            raise DataError(
                f"{folder}: ISIC 2016 {split} folder not found; unpack the official Part 1 zip files into {root}"
            )
    pattern = re.compile(r"^ISIC_\d+\.jpe?g$", re.IGNORECASE)
    items = []
    for path in sorted(p for p in data.iterdir() if pattern.match(p.name)):
        mask = truth / f"{path.stem}_Segmentation.png"
        if not mask.is_file():
            raise DataError(f"{path}: mask {mask.name} not found in {truth}; every image needs its _Segmentation.png")
        items.append(_Item(path.stem, path, mask))
    if not items:
        raise DataError(f"{data}: no ISIC_XXXXXXX.jpg images found; check the folder")
    return items


def load_isic2016(
    root: str | Path, split: str, size: Sequence[int] = (384, 512), contour_radius: int = 3
) -> SegmentationSet:
    """Load ISIC 2016 Part 1 (lesion segmentation) from its official folder layout.

    Args:
        root: the folder holding the four ``ISBI2016_ISIC_Part1_*`` folders.
        split: ``"train"`` or ``"test"``.
        size: (H, W) every image is resized to (images bilinear, masks nearest).
        contour_radius: disk radius of :func:`contour_target`.

    Returns:
        The images sorted by name; instances are the mask's connected components; grades ``""``.

    Raises:
        DataError: missing folder, no images, missing or mismatched mask, unreadable file, or a
            mask with values other than 0 and 255.
        ValueError: unknown split or bad size.
    """
    root = Path(root)
    if split not in ISIC_FOLDERS:
        raise ValueError(f"ISIC split must be 'train' or 'test', got {split!r}")
    _check_args(size)
    if not root.is_dir():
        raise _missing_root(
            root, "ISIC 2016", ISIC_URL,
            "ISBI2016_ISIC_Part1_Training_Data/, ..._Training_GroundTruth/, ..._Test_Data/, ..._Test_GroundTruth/",
        )
    return _assemble(_isic_items(root, split), _isic_instances, size, "resize", contour_radius)


# ----------------------------------------------------------------------------- user folder


def _folder_instances(labels: np.ndarray, path: Path) -> np.ndarray:
    """Several non-zero values are instance ids (kept as they are); a single one marks a binary mask."""
    values = np.unique(labels)
    if values[values > 0].size > 1:
        if values[-1] > np.iinfo(np.int32).max:
            raise DataError(f"{path}: instance id {values[-1]} does not fit in 32 bits; renumber the instances 1..k "
                            "(skimage.segmentation.relabel_sequential)")
        return labels.astype(np.int32)
    return _components(labels)


def _files_by_stem(folder: Path, suffixes: Sequence[str], what: str) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes`` (any case, hidden files skipped), by stem.

    Raises:
        DataError: two files share a stem (``a.png`` and ``a.tif``): which one is meant is unclear.
    """
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(f"{folder}: two {what} are named {path.stem!r} ({found[path.stem].name}, {path.name}); "
                            f"keep one {what[:-1]} per name")
        found[path.stem] = path
    return found


def _missing_mask(image: Path, masks: Path) -> DataError:
    """The error for an image without a mask, pointing at a same-named file of a refused format."""
    others = sorted(p.name for p in masks.iterdir() if p.stem == image.stem and p.suffix.lower() not in MASK_SUFFIXES)
    hint = f" ({', '.join(others)} is there, but masks must be lossless PNG or TIFF)" if others else ""
    return DataError(f"{image}: mask not found{hint}; save it as {masks / image.stem}.png (or .tif / .tiff)")


def _folder_items(root: Path, split: str, require_masks: bool = True) -> list[_Item]:
    """The images of ``root/split/images`` with their masks from ``root/split/masks``, sorted by file name.

    A mask is the file of ``masks`` with the image's stem and a suffix of :data:`MASK_SUFFIXES`.
    With ``require_masks=False`` a missing ``masks`` folder gives items without label files.
    """
    images, masks = root / split / "images", root / split / "masks"
    if not images.is_dir():
        raise DataError(f"{images}: folder not found; put the {split} images there and their masks in {masks}")
    paths = sorted(_files_by_stem(images, IMAGE_SUFFIXES, "images").values(), key=lambda p: p.name)
    if not paths:
        raise DataError(f"{images}: no images ({', '.join(IMAGE_SUFFIXES)}) found; add the {split} images")
    if not require_masks and not masks.exists():
        return [_Item(path.stem, path, None) for path in paths]
    if not masks.is_dir():
        raise DataError(f"{masks}: folder not found; put a mask (.png or .tif, same name as its image) of each "
                        f"{split} image there")
    mask_of = _files_by_stem(masks, MASK_SUFFIXES, "masks")
    missing = [path for path in paths if path.stem not in mask_of]
    if missing:
        raise _missing_mask(missing[0], masks)
    return [_Item(path.stem, path, mask_of[path.stem]) for path in paths]


def load_folder(
    root: str | Path, split: str, size: Sequence[int], resize: str = "resize", contour_radius: int = 3,
    require_masks: bool = True,
) -> SegmentationSet:
    """Load a user's own images and masks (layout in the module docstring).

    Args:
        root: folder with ``train/images``, ``train/masks``, ``test/images``, ``test/masks``.
        split: ``"train"`` or ``"test"``.
        size: (H, W) every image is brought to.
        resize: ``"resize"`` (bilinear images, nearest masks) or ``"pad"`` (zero padding).
        contour_radius: disk radius of :func:`contour_target`.
        require_masks: when False, ``train`` may have no ``masks`` folder (the set then has
            ``has_masks=False``) and a missing ``test`` folder gives an empty set; a ``test``
            folder that exists still needs its masks.

    Returns:
        The images sorted by file name; grades ``""``.

    Raises:
        DataError: missing folder, no images, missing, duplicate or mismatched mask, unreadable
            file, multi-page / 3-D TIFF, negative, non-integer or colour mask values.
        ValueError: unknown split or bad size.
    """
    root = Path(root)
    if split not in ("train", "test"):
        raise ValueError(f"folder split must be 'train' or 'test', got {split!r}")
    _check_args(size, resize)
    if not root.is_dir():
        raise DataError(
            f"{root}: data folder not found; create it with train/images, train/masks, test/images, test/masks"
        )
    if split == "test" and not require_masks and not (root / split).exists():
        return _empty_set(size)
    items = _folder_items(root, split, require_masks=require_masks or split == "test")
    return _assemble(items, _folder_instances, size, resize, contour_radius)


# ----------------------------------------------------------------------------- from a config


def _generate_synthetic(cfg: RunConfig, root: Path) -> None:
    """Write a synthetic set at ``root`` atomically (safe when several processes race)."""
    makers = {"glas": synthetic.make_glas_like, "isic": synthetic.make_isic_like}
    d = cfg.data
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        makers[d.dataset](tmp, d.synthetic_n_train, d.synthetic_n_test, tuple(d.synthetic_size), seed=0)
        os.rename(tmp, root)
    except OSError:
        if not root.is_dir():
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_dataset(cfg: RunConfig, split: str, require_masks: bool = True) -> SegmentationSet:
    """Load the dataset a run config names, generating the synthetic set when asked to.

    Args:
        cfg: the run config (``data.dataset``, ``data.root``, ``data.image_size``, ...).
        split: ``"train"`` or ``"test"`` (GlaS also ``"testA"`` / ``"testB"``).
        require_masks: False lets a ``folder`` dataset come without masks (see :func:`load_folder`);
            GlaS and ISIC always need theirs.

    Returns:
        The split; test splits are cut to the first ``data.max_test`` images when that is > 0.

    Raises:
        DataError: the data folder is missing (and ``data.synthetic`` is off or the dataset is
            ``folder``) or any file in it is bad.
    """
    d, root = cfg.data, cfg.data_root()
    if not root.exists() and d.synthetic:
        if d.dataset == "folder":
            raise DataError(f"{root}: data folder not found; data.synthetic only works for glas and isic, "
                            "point data.root at your images or switch data.dataset")
        _generate_synthetic(cfg, root)
    size = tuple(d.image_size)
    if d.dataset == "glas":
        data = load_glas(root, split, size, d.resize, d.contour_radius)
    elif d.dataset == "isic":
        data = load_isic2016(root, split, size, d.contour_radius)
    else:
        data = load_folder(root, split, size, d.resize, d.contour_radius, require_masks=require_masks)
    if split != "train" and d.max_test > 0 and len(data) > d.max_test:
        data = data.subset(range(d.max_test))
    return data


# ----------------------------------------------------------------------------- pool split


def _interleave(groups: list[list[int]], rng: np.random.Generator) -> list[int]:
    """Round-robin over the groups (in a random group order) until all are exhausted."""
    order = rng.permutation(len(groups))
    seq: list[int] = []
    for k in range(max(len(g) for g in groups)):
        seq.extend(groups[g][k] for g in order if k < len(groups[g]))
    return seq


def _grade_groups(perm: np.ndarray, grades: Sequence[str] | None) -> list[list[int]]:
    """Indices (in permuted order) grouped by grade; one group without usable grades."""
    if grades is None:
        return [perm.tolist()]
    keys = [str(g).strip().lower() for g in grades]
    if not {"benign", "malignant"} <= set(keys):
        return [perm.tolist()]
    names = sorted(set(keys))
    return [[int(i) for i in perm if keys[i] == name] for name in names]


def split_pool(
    n_images: int, n_initial: int, n_val: int, seed: int, grades: Sequence[str] | None = None
) -> PoolSplit:
    """Draw the initial labelled set, the validation set and the pool from the training images.

    With grades holding both ``"benign"`` and ``"malignant"``, the initial and the validation
    sets alternate between grades (balanced as far as the counts allow; the authors used 5 benign
    + 5 malignant initial images).

    Args:
        n_images: number of training images.
        n_initial: images labelled at the start.
        n_val: validation images.
        seed: seed of the numpy Generator (same seed, same split).
        grades: optional grade per training image.

    Returns:
        Disjoint, sorted index lists covering ``range(n_images)``.

    Raises:
        ConfigError: the counts leave no pool, or are negative.
        ValueError: ``grades`` does not have one entry per image.
    """
    if n_initial < 1 or n_val < 0:
        raise ConfigError(f"need n_initial >= 1 and n_val >= 0, got n_initial={n_initial}, n_val={n_val}")
    if n_initial + n_val >= n_images:
        raise ConfigError(
            f"n_initial ({n_initial}) + n_val ({n_val}) must be < the {n_images} training images to leave a "
            f"pool; lower data.n_initial / data.n_val or add images"
        )
    if grades is not None and len(grades) != n_images:
        raise ValueError(f"grades has {len(grades)} entries for {n_images} images")
    rng = np.random.default_rng(seed)
    groups = _grade_groups(rng.permutation(n_images), grades)
    initial = _interleave(groups, rng)[:n_initial]
    chosen = set(initial)
    rest = [[i for i in g if i not in chosen] for g in groups]
    val = _interleave(rest, rng)[:n_val] if n_val else []
    taken = set(initial) | set(val)
    pool = [i for i in range(n_images) if i not in taken]
    return PoolSplit(initial=sorted(initial), val=sorted(val), pool=pool)
