"""Synthetic GlaS-like and ISIC-like data, written in the official folder layouts.

Not a toy: the images are built so that a per-pixel colour rule cannot segment them and so that
difficulty varies between and within images, which is what makes active learning matter.

* GlaS-like (H&E colon histology): stain concentrations of haematoxylin (purple, nuclei) and eosin
  (pink, stroma and cytoplasm) are painted per pixel and turned into RGB with the Beer-Lambert law.
  Pink fibrous stroma with scattered lymphocytes surrounds glands: closed irregular shapes with an
  epithelial rim of dark nuclei (plus pale goblet cells in benign glands) around a pale lumen.
  Benign images have round, regular, separated glands; malignant ones irregular, crowded,
  touching glands with stratified, larger nuclei, smaller lumens and debris. Per image: stain
  jitter, blur and noise; some images and some regions (and some glands) have glands whose
  colour is close to the stroma; occasional tissue folds, bubbles, pen marks, out-of-focus
  patches and tissue edges.
* ISIC-like (dermoscopy): textured skin with vignetting (sometimes the dark dermoscope circle),
  one pigmented lesion with an irregular, partly fuzzy border and variegated colour (network,
  dots, blue-grey and whitish areas), hairs, ruler marks and gel bubbles; some lesions are very
  faint, some touch the image border.

Everything is deterministic by ``seed``: each image draws from its own
``numpy.random.default_rng([seed, split, index])``, so the same seed writes byte-identical files.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.measure import label as connected_components

GLAS_GRADE_HEADER = "name, patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"
GLAS_REFERENCE_HW = (522, 775)  # size of a real GlaS image; lengths below are in its pixels
# Beer-Lambert optical densities (per unit concentration) of the two stains, RGB
HAEMATOXYLIN_OD = np.array([0.62, 0.78, 0.30])
EOSIN_OD = np.array([0.10, 0.92, 0.38])
BENIGN_FRACTION = 0.45
_SPLIT_CODES = {"train": 0, "testA": 1, "testB": 2, "test": 3}


# ----------------------------------------------------------------------------- small helpers


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: independent of every other image."""
    return np.random.default_rng([int(seed), _SPLIT_CODES[split], int(index)])


@functools.lru_cache(maxsize=64)
def _upsampler(n_out: int, scale: float) -> np.ndarray:
    """Gaussian interpolation weights from a coarse grid (spacing ``scale``) to ``n_out`` pixels."""
    n_coarse = int(math.ceil(n_out / scale)) + 4
    pos = (np.arange(n_out) + 0.5) / scale + 2.0  # [n_out] position on the coarse grid
    weights = np.exp(-0.5 * ((pos[:, None] - np.arange(n_coarse)[None, :]) / 0.85) ** 2)  # [n_out, n_coarse]
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)  # unit variance for unit-variance coarse noise
    weights.flags.writeable = False
    return weights


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float, aniso: float = 1.0) -> np.ndarray:
    """Smooth Gaussian noise with features about ``scale`` pixels wide.

    Fine noise is white noise blurred at full resolution; coarse noise is a coarse grid upsampled
    with separable Gaussian weights (two small matrix products).

    Args:
        rng: random generator.
        shape: (H, W) of the output.
        scale: feature size in pixels.
        aniso: features ``aniso`` times longer along x than along y (fibres).

    Returns:
        Noise with mean 0 and standard deviation 1, [H, W], float64.
    """
    sy, sx = max(scale, 0.5), max(scale * aniso, 0.5)
    if min(sy, sx) < 6.0:
        sigma = (0.6 * sy, 0.6 * sx)
        field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")  # [H, W]
        return field / (_kernel_norm(sigma[0]) * _kernel_norm(sigma[1]))
    rows, cols = _upsampler(shape[0], round(sy, 2)), _upsampler(shape[1], round(sx, 2))  # [H, gh], [W, gw]
    return rows @ rng.standard_normal((rows.shape[1], cols.shape[1])) @ cols.T  # [H, W]


def _kernel_norm(sigma: float) -> float:
    """L2 norm of the 1-D Gaussian kernel ``scipy.ndimage.gaussian_filter`` uses (truncate 4)."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return float(np.linalg.norm(k / k.sum()))


def _radial_shape(
    yy: np.ndarray, xx: np.ndarray, centre: tuple[float, float], radius: float,
    aspect: float, angle: float, harmonics: np.ndarray,
) -> np.ndarray:
    """Signed depth inside a closed shape whose radius is a Fourier series of the angle.

    Args:
        yy: row coordinates, [h, w].
        xx: column coordinates, [h, w].
        centre: (row, column) of the shape.
        radius: mean radius in pixels.
        aspect: length / width ratio (>= 1) of the underlying ellipse.
        angle: orientation of the long axis, radians.
        harmonics: (k, amplitude, phase) per row, [K, 3]; the boundary is at
            ``rho = 1 + sum_k a_k cos(k theta + phi_k)``.

    Returns:
        Approximate depth inside the boundary in pixels (> 0 inside, < 0 outside), [h, w].
    """
    dy, dx = yy - centre[0], xx - centre[1]
    u = (math.cos(angle) * dx + math.sin(angle) * dy) / (radius * math.sqrt(aspect))  # [h, w]
    v = (-math.sin(angle) * dx + math.cos(angle) * dy) / (radius / math.sqrt(aspect))  # [h, w]
    table_theta = np.linspace(-math.pi, math.pi, 1025)  # [A]
    table = 1.0 + (harmonics[:, 1:2] * np.cos(harmonics[:, 0:1] * table_theta + harmonics[:, 2:3])).sum(0)  # [A]
    idx = np.rint((np.arctan2(v, u) + math.pi) * (1024 / (2 * math.pi))).astype(np.int64)  # [h, w]
    return (table[idx] - np.hypot(u, v)) * radius


def _harmonics(rng: np.random.Generator, irregularity: float, k_max: int) -> np.ndarray:
    """Random Fourier harmonics (k, amplitude, phase) for :func:`_radial_shape`, [K, 3]."""
    ks = np.arange(2, k_max + 1, dtype=np.float64)
    amps = irregularity * rng.uniform(0.3, 1.0, ks.size) / np.sqrt(ks - 1.0)
    amps *= min(1.0, 0.6 / max(amps.sum(), 1e-9))  # keep the radius positive
    return np.stack([ks, amps, rng.uniform(0.0, 2.0 * math.pi, ks.size)], axis=1)


def _soft_disks(points: np.ndarray, radii: np.ndarray, wobble: np.ndarray) -> np.ndarray:
    """Anti-aliased disks around marked pixels, each with its own radius.

    Args:
        points: centres, [H, W], bool.
        radii: radius at each centre pixel, [H, W], pixels (read at the centres only).
        wobble: relative radius perturbation, [H, W], about in [-1, 1] (irregular outlines).

    Returns:
        Coverage of the nearest disk, [H, W], in [0, 1].
    """
    if not points.any():
        return np.zeros(points.shape)
    dist, (iy, ix) = ndimage.distance_transform_edt(~points, return_indices=True)  # [H, W]
    r = radii[iy, ix] * (1.0 + 0.25 * wobble)  # [H, W]
    return np.clip(r - dist + 0.5, 0.0, 1.0)


def _poisson_points(rng: np.random.Generator, where: np.ndarray, spacing: float) -> np.ndarray:
    """Random points inside ``where``, about one per ``spacing`` x ``spacing`` pixels, [H, W] bool."""
    return where & (rng.random(where.shape) < 1.0 / max(spacing, 1.0) ** 2)


def _curve_points(rng: np.random.Generator, shape: tuple[int, int], n: int, length: tuple[float, float]) -> np.ndarray:
    """Pixels along ``n`` random bent curves (quadratic Bezier), [H, W] bool.

    Args:
        rng: random generator.
        shape: (H, W).
        n: number of curves.
        length: (min, max) chord length as a fraction of the longer image side.
    """
    h, w = shape
    out = np.zeros(shape, bool)
    if n == 0:
        return out
    t = np.linspace(0.0, 1.0, 3 * (h + w))[None, :, None]  # [1, S, 1]
    start = rng.uniform([0, 0], [h, w], size=(n, 2))  # [n, 2]
    angle = rng.uniform(0, 2 * math.pi, n)
    chord = rng.uniform(*length, n)[:, None] * max(h, w) * np.stack([np.sin(angle), np.cos(angle)], 1)  # [n, 2]
    bend = rng.normal(0, 0.25, (n, 1)) * chord[:, ::-1] * np.array([1.0, -1.0])  # [n, 2] sideways
    mid = start + chord / 2 + bend
    pts = (1 - t) ** 2 * start[:, None] + 2 * (1 - t) * t * mid[:, None] + t**2 * (start + chord)[:, None]  # [n, S, 2]
    pts = np.rint(pts.reshape(-1, 2)).astype(np.int64)
    keep = (pts[:, 0] >= 0) & (pts[:, 0] < h) & (pts[:, 1] >= 0) & (pts[:, 1] < w)
    out[pts[keep, 0], pts[keep, 1]] = True
    return out


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] -> uint8."""
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _blur_rgb(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel of an [H, W, 3] image."""
    if sigma <= 0.05:
        return rgb
    return ndimage.gaussian_filter(rgb, (sigma, sigma, 0.0), mode="reflect")


# ----------------------------------------------------------------------------- GlaS-like: glands


def _gland_params(rng: np.random.Generator, malignant: bool, s: float) -> dict:
    """Size and shape of one gland candidate (lengths in output pixels, scale ``s``)."""
    if malignant:
        big = rng.random() < 0.15
        radius = (rng.uniform(90, 150) if big else rng.lognormal(math.log(60), 0.35)) * s
        aspect = rng.uniform(1.0, 2.4)
        harm = _harmonics(rng, rng.uniform(0.25, 0.55), 9)
    else:
        radius = rng.uniform(45, 95) * s
        aspect = rng.uniform(1.0, 1.7) if rng.random() < 0.8 else rng.uniform(1.8, 2.8)
        harm = _harmonics(rng, rng.uniform(0.03, 0.12), 5)
    return {"radius": max(radius, 4.0), "aspect": aspect, "angle": rng.uniform(0, math.pi), "harm": harm}


def _try_gland(
    rng: np.random.Generator, labels: np.ndarray, malignant: bool, s: float
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Draw one gland candidate; return its bounding box and new pixels, or None if rejected."""
    h, w = labels.shape
    p = _gland_params(rng, malignant, s)
    reach = p["radius"] * math.sqrt(p["aspect"]) * (1.0 + p["harm"][:, 1].sum()) + 2.0
    free = np.flatnonzero(labels.ravel() == 0)
    cy, cx = np.array(divmod(int(free[rng.integers(free.size)]), w), float) + rng.normal(0, 0.3 * reach, 2)
    box = (slice(max(0, int(cy - reach)), min(h, int(cy + reach) + 1)),
           slice(max(0, int(cx - reach)), min(w, int(cx + reach) + 1)))
    if box[0].stop <= box[0].start or box[1].stop <= box[1].start:
        return None
    yy, xx = np.mgrid[box[0], box[1]].astype(np.float64)
    depth = _radial_shape(yy, xx, (cy, cx), p["radius"], p["aspect"], p["angle"], p["harm"])  # [h', w']
    taken = labels[box] > 0
    margin = (-4.0 if malignant and rng.random() < 0.6 else 10.0) * s
    if (taken & (depth > -margin)).any() and not (malignant and (taken & (depth > 0)).mean() < 0.02):
        return None
    new = (depth > 0) & ~taken
    comp = connected_components(new, connectivity=1)
    if comp.max() == 0:
        return None
    new = comp == np.argmax(np.bincount(comp.ravel())[1:]) + 1
    return (box, new) if new.sum() >= 0.25 * math.pi * p["radius"] ** 2 * 0.5 else None


def place_glands(rng: np.random.Generator, shape: tuple[int, int], malignant: bool) -> np.ndarray:
    """Instance label map of non-overlapping glands (malignant ones may touch).

    Args:
        rng: random generator.
        shape: (H, W).
        malignant: crowded irregular glands instead of round separated ones.

    Returns:
        Instance labels, [H, W], int32, 0 stroma, 1..k glands (k < 255).
    """
    labels = np.zeros(shape, np.int32)
    s = math.sqrt(shape[0] * shape[1] / (GLAS_REFERENCE_HW[0] * GLAS_REFERENCE_HW[1]))
    coverage = rng.uniform(0.35, 0.6) if malignant else rng.uniform(0.22, 0.42)
    k = 0
    for _ in range(100):
        if (labels > 0).mean() >= coverage or k >= 250:
            break
        got = _try_gland(rng, labels, malignant, s)
        if got is not None:
            k += 1
            box, new = got
            labels[box][new] = k
    return labels


def _relabel(labels: np.ndarray, min_area: float) -> np.ndarray:
    """Split instances into connected pieces, drop pieces below ``min_area``, number them 1..k."""
    out = np.zeros_like(labels)
    k = 0
    for lab in range(1, int(labels.max()) + 1):
        comp, n = ndimage.label(labels == lab)
        if n == 0:
            continue
        areas = np.bincount(comp.ravel())[1:]
        for piece in np.flatnonzero(areas >= min_area) + 1:
            k += 1
            out[comp == piece] = k
    return out


# ----------------------------------------------------------------------------- GlaS-like: tissue


def _fibres(rng: np.random.Generator, shape: tuple[int, int], s: float) -> np.ndarray:
    """Wavy collagen fibres: ridges of anisotropic noise in a random main direction, [H, W] in [0, 1]."""
    vertical = rng.random() < 0.5
    grid = (shape[1], shape[0]) if vertical else shape
    ridge = np.abs(smooth_noise(rng, grid, 9 * s + 0.8, aniso=rng.uniform(1.5, 3.5)))  # [H, W]
    fib = np.clip(1.3 - ridge, 0, 1)
    return fib.T if vertical else fib


def _stroma(
    rng: np.random.Generator, shape: tuple[int, int], s: float, malignant: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Haematoxylin and eosin concentrations of the stroma (fibres, clefts, lymphocytes)."""
    fib = _fibres(rng, shape, s)
    patch = smooth_noise(rng, shape, 35 * s)
    cleft = np.clip(-(smooth_noise(rng, shape, 9 * s + 1, aniso=2.0) + 1.4) / 0.4, 0.0, 1.0)  # white gaps
    eos = (0.55 if malignant else 0.45) * (0.45 + 0.55 * fib + 0.12 * patch) * (1 - 0.85 * cleft)
    hae = 0.07 + 0.03 * smooth_noise(rng, shape, 5 * s + 1)
    spacing = 22 * s * np.exp(-0.9 * smooth_noise(rng, shape, 70 * s)) * (1.5 if malignant else 1.0)  # [H, W]
    lymph = rng.random(shape) < 1.0 / np.maximum(spacing, 1.0) ** 2
    cells = _soft_disks(lymph, np.full(shape, max(2.6 * s, 0.9)), smooth_noise(rng, shape, 2 * s + 0.5))
    return np.clip(hae + 1.1 * cells, 0, None), np.clip(eos * (1 - 0.5 * cells), 0, None)


def _gland_tissue(
    rng: np.random.Generator, labels: np.ndarray, s: float, malignant: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Haematoxylin and eosin of the glands (rim, nuclei, goblet cells, lumen) and the lumen map."""
    shape = labels.shape
    inside = labels > 0
    edge = inside & (ndimage.grey_dilation(labels, size=(3, 3)) != ndimage.grey_erosion(labels, size=(3, 3)))
    depth = ndimage.distance_transform_edt(inside & ~edge)  # [H, W] distance to the gland edge
    n = int(labels.max())
    thick_g = np.concatenate([[0], rng.uniform(26, 38, n) * (1.2 if malignant else 1.0) * s])
    thick = thick_g[labels] * (1 + 0.25 * smooth_noise(rng, shape, 25 * s))  # [H, W]
    solid = np.concatenate([[False], rng.random(n) < (0.3 if malignant else 0.0)])
    cribri = smooth_noise(rng, shape, 10 * s) > (-0.2 if malignant else -9.0)
    lumen = inside & (depth > thick) & ~solid[labels] & cribri
    rim = inside & ~lumen
    hae = np.where(rim, 0.22, 0.02)
    eos = np.where(rim, 0.45 if malignant else 0.30, 0.04)
    r_nuc = max((4.2 if malignant else 3.2) * s, 0.9)
    band = rim & (depth < thick * (0.95 if malignant else 0.35))
    nuc_pts = _poisson_points(rng, band, r_nuc * (1.9 if malignant else 1.25))
    radii = r_nuc * rng.uniform(0.75, 1.6 if malignant else 1.15, shape)
    nuclei = _soft_disks(nuc_pts, radii, smooth_noise(rng, shape, 2 * s))  # [H, W]
    hae = hae + nuclei * (1.15 + 0.25 * rng.standard_normal(shape).clip(-2, 2))
    eos = eos * (1 - 0.6 * nuclei)
    if not malignant:
        goblet_pts = _poisson_points(rng, rim & (depth > 0.5 * thick) & (depth < 0.8 * thick), 3.2 * r_nuc)
        goblet = _soft_disks(goblet_pts, np.full(shape, 2.0 * r_nuc), smooth_noise(rng, shape, 3 * s + 0.5))
        hae, eos = hae * (1 - 0.7 * goblet) + 0.05 * goblet, eos * (1 - 0.85 * goblet)
    return hae, eos, lumen


def _lumen_content(
    rng: np.random.Generator, lumen: np.ndarray, s: float, malignant: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Secretions (pale pink) and, in malignant glands, debris with nuclear fragments."""
    shape = lumen.shape
    amount = np.clip(smooth_noise(rng, shape, 12 * s) - (0.0 if malignant else 0.8), 0, 1.5)
    eos = lumen * (0.04 + (0.35 if malignant else 0.12) * amount)
    frags = _poisson_points(rng, lumen & (amount > 0.3), 14 * s) if malignant else np.zeros(shape, bool)
    dots = _soft_disks(frags, np.full(shape, max(1.8 * s, 0.7)), np.zeros(shape))
    return 0.9 * dots, eos


def _hardness(rng: np.random.Generator, labels: np.ndarray, s: float) -> np.ndarray:
    """Per-pixel gland contrast in (0, 1]: faint glands and faint regions within the image."""
    n = int(labels.max())
    per_gland = np.where(rng.random(n + 1) < 0.2, rng.uniform(0.2, 0.5, n + 1), rng.uniform(0.75, 1.0, n + 1))
    contrast = per_gland[labels]  # [H, W]
    if rng.random() < 0.5:
        fade = np.clip(smooth_noise(rng, labels.shape, 80 * s) - 0.3, 0, 1)  # [H, W]
        contrast = contrast * (1 - 0.7 * fade)
    if rng.random() < 0.15:
        contrast = contrast * rng.uniform(0.4, 0.7)
    return np.clip(contrast, 0.25, 1.0)  # faint, never invisible


# ----------------------------------------------------------------------------- GlaS-like: artefacts


def _band(rng: np.random.Generator, shape: tuple[int, int], width: float) -> np.ndarray:
    """A wavy band across the image (a fold or a pen stroke), [H, W] in [0, 1]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    phi = rng.uniform(0, math.pi)
    off = rng.uniform(-0.3, 0.3) * max(h, w)
    dist = (xx - w / 2) * math.cos(phi) + (yy - h / 2) * math.sin(phi) - off
    dist = dist + 0.08 * max(h, w) * smooth_noise(rng, shape, max(h, w) / 3)
    return np.clip(width / 2 - np.abs(dist) + 0.5, 0, 1)


def _bubble(rng: np.random.Generator, shape: tuple[int, int], s: float) -> tuple[np.ndarray, np.ndarray]:
    """An air bubble: (interior, rim) coverage maps, [H, W] each."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = rng.uniform(40, 120) * s
    d = np.hypot(yy - rng.uniform(0, h), xx - rng.uniform(0, w)) - r
    rim_w = max(3 * s, 1.0)
    return np.clip(-d / rim_w, 0, 1), np.clip(1 - np.abs(d) / rim_w, 0, 1)


def _artefacts_od(rng: np.random.Generator, od: np.ndarray, s: float) -> np.ndarray:
    """Add folds, pen marks and bubbles to an optical-density image [H, W, 3]."""
    shape = od.shape[:2]
    if rng.random() < 0.15:  # tissue fold: double layer, darker and more saturated
        fold = _band(rng, shape, rng.uniform(15, 50) * s)
        od = od * (1 + 0.9 * fold[..., None])
    if rng.random() < 0.08:  # pen mark
        ink = np.array([[0.9, 0.25, 0.6], [0.7, 0.5, 0.1], [0.8, 0.8, 0.8]])[rng.integers(3)]
        od = od + _band(rng, shape, rng.uniform(10, 30) * s)[..., None] * ink * rng.uniform(0.6, 1.4)
    if rng.random() < 0.12:  # air bubble
        inner, rim = _bubble(rng, shape, s)
        od = od * (1 - 0.35 * inner[..., None]) + 0.8 * rim[..., None]
    if rng.random() < 0.3:  # dust specks
        specks = _soft_disks(_poisson_points(rng, np.ones(shape, bool), 60 * s), np.full(shape, 2.0 * s + 0.6),
                             np.zeros(shape))
        od = od + 0.6 * specks[..., None]
    return od


def _tissue_mask(rng: np.random.Generator, shape: tuple[int, int], s: float) -> np.ndarray:
    """Where there is tissue: sometimes an edge of the section leaves white glass, [H, W] bool."""
    if rng.random() >= 0.2:
        return np.ones(shape, bool)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    phi = rng.uniform(0, 2 * math.pi)
    ramp = ((xx - w / 2) * math.cos(phi) + (yy - h / 2) * math.sin(phi)) / (max(h, w) / 2)  # [H, W]
    return ramp + 0.15 * smooth_noise(rng, shape, 40 * s) < rng.uniform(0.45, 0.85)


# ----------------------------------------------------------------------------- GlaS-like: image


def _stain_vectors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-image jittered stain optical densities (hue / saturation variation between slides)."""
    hv = HAEMATOXYLIN_OD + rng.normal(0, 0.06, 3)
    ev = EOSIN_OD + rng.normal(0, 0.06, 3)
    hv = np.clip(hv, 0.05, None) * rng.uniform(0.75, 1.3)
    ev = np.clip(ev, 0.02, None) * rng.uniform(0.7, 1.35)
    return hv, ev


def _finish(rng: np.random.Generator, rgb: np.ndarray, s: float) -> np.ndarray:
    """Out-of-focus patches, blur and sensor noise; RGB in [0, 1], [H, W, 3]."""
    shape = rgb.shape[:2]
    if rng.random() < 0.3:
        patch = np.clip(smooth_noise(rng, shape, 90 * s) - 0.5, 0, 1)[..., None]  # [H, W, 1]
        rgb = rgb * (1 - patch) + _blur_rgb(rgb, rng.uniform(3, 6) * s + 0.8) * patch
    rgb = _blur_rgb(rgb, rng.uniform(0.3, 0.9) * max(s, 0.6) * (2.5 if rng.random() < 0.1 else 1.0))
    rgb = rgb + rng.normal(0, rng.uniform(0.004, 0.025), rgb.shape)
    return np.clip(rgb, 0, 1)


def render_glas_image(
    rng: np.random.Generator, shape: tuple[int, int], malignant: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One GlaS-like H&E image with its gland instance labels.

    Args:
        rng: random generator.
        shape: (H, W) of the image.
        malignant: malignant (irregular, crowded) or benign (round, separated) glands.

    Returns:
        (image [H, W, 3] uint8 RGB, instance labels [H, W] uint8, 0 = stroma).
    """
    s = math.sqrt(shape[0] * shape[1] / (GLAS_REFERENCE_HW[0] * GLAS_REFERENCE_HW[1]))
    tissue = _tissue_mask(rng, shape, s)
    labels = _relabel(np.where(tissue, place_glands(rng, shape, malignant), 0), 60 * s * s + 4)
    labels[labels > 254] = 0  # annotations are 8-bit BMPs
    hs, es = _stroma(rng, shape, s, malignant)
    hg, eg, lumen = _gland_tissue(rng, labels, s, malignant)
    hl, el = _lumen_content(rng, lumen, s, malignant)
    alpha = (labels > 0) * _hardness(rng, labels, s)  # [H, W]
    hae = (hs + alpha * (hg + hl - hs)) * tissue
    eos = (es + alpha * (np.where(lumen, el, eg) - es)) * tissue
    hv, ev = _stain_vectors(rng)
    od = hae[..., None] * hv + eos[..., None] * ev + rng.uniform(0.0, 0.05, 3)  # [H, W, 3]
    rgb = np.exp(-_artefacts_od(rng, od, s)) * rng.uniform(0.9, 1.0)  # [H, W, 3]
    return _to_uint8(_finish(rng, rgb, s)), labels.astype(np.uint8)


def _grades(n: int, rng: np.random.Generator) -> list[bool]:
    """``n`` malignant flags, about 55 % True, both grades present when n >= 2."""
    n_benign = int(round(BENIGN_FRACTION * n))
    if n >= 2:
        n_benign = min(max(n_benign, 1), n - 1)
    flags = np.array([False] * n_benign + [True] * (n - n_benign))
    return [bool(f) for f in rng.permutation(flags)]


def make_glas_like(root: str | Path, n_train: int, n_test: int, size: Sequence[int], seed: int) -> Path:
    """Write a GlaS-like dataset in the official Warwick-QU layout.

    Files: ``train_K.bmp`` + ``train_K_anno.bmp`` (K = 1..n_train), ``testA_K`` / ``testB_K``
    (n_test split into two halves, A gets the extra one) and ``Grade.csv`` with the official header.

    Args:
        root: output folder (created).
        n_train: training images (>= 1).
        n_test: test images (>= 1).
        size: (H, W) of every image.
        seed: same seed, byte-identical files.

    Returns:
        The folder written.

    Raises:
        ValueError: a count below 1 or a bad size.
    """
    root = _prepare(root, n_train, n_test, size)
    n_a = (n_test + 1) // 2
    splits = [("train", n_train), ("testA", n_a), ("testB", n_test - n_a)]
    rows = [GLAS_GRADE_HEADER]
    for split, n in splits:
        flags = _grades(n, np.random.default_rng([int(seed), _SPLIT_CODES[split], 10**6]))
        for k, malignant in enumerate(flags, start=1):
            rng = _rng(seed, split, k)
            image, labels = render_glas_image(rng, (int(size[0]), int(size[1])), malignant)
            Image.fromarray(image).save(root / f"{split}_{k}.bmp", format="BMP")
            Image.fromarray(labels).save(root / f"{split}_{k}_anno.bmp", format="BMP")
            grade = ("malignant", "moderately differentiated") if malignant else ("benign", "healthy")
            rows.append(f"{split}_{k},{int(rng.integers(1, 17))},{grade[0]},{grade[1]}")
    (root / "Grade.csv").write_text("\n".join(rows) + "\n")
    return root


def _prepare(root: str | Path, n_train: int, n_test: int, size: Sequence[int]) -> Path:
    """Check the arguments of a generator and create its output folder."""
    if n_train < 1 or n_test < 1:
        raise ValueError(f"need at least one train and one test image, got n_train={n_train}, n_test={n_test}")
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 16:
        raise ValueError(f"size must be (height, width), both >= 16, got {tuple(size)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


# ----------------------------------------------------------------------------- ISIC-like


SKIN_TONES = np.array([[0.93, 0.76, 0.70], [0.88, 0.68, 0.60], [0.80, 0.60, 0.50], [0.70, 0.50, 0.40],
                       [0.92, 0.72, 0.72]])
LESION_COLOURS = np.array([[0.62, 0.42, 0.30], [0.42, 0.25, 0.16], [0.22, 0.13, 0.10], [0.55, 0.33, 0.22],
                           [0.45, 0.45, 0.52], [0.72, 0.38, 0.36], [0.85, 0.78, 0.76]])
BROWNS = [0, 1, 2, 3]  # rows of LESION_COLOURS a lesion's main colour is drawn from


def _skin(rng: np.random.Generator, shape: tuple[int, int], s: float) -> np.ndarray:
    """Textured skin with redness blotches and furrows, RGB in [0, 1], [H, W, 3]."""
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.05) + rng.normal(0, 0.025, 3)
    low = smooth_noise(rng, shape, 120 * s)[..., None]
    red = np.clip(smooth_noise(rng, shape, 60 * s), 0, None)[..., None] * rng.uniform(0, 0.08)
    grain = smooth_noise(rng, shape, 2.5 * s)[..., None]
    furrow = np.abs(smooth_noise(rng, shape, 14 * s))[..., None]  # thin dark lines where ~0
    lines = np.clip(1 - furrow / 0.12, 0, 1) * rng.uniform(0.0, 0.06)
    skin = tone * (1 + 0.04 * low + 0.02 * grain - lines) + red * np.array([0.3, -0.6, -0.4])
    return np.clip(skin, 0, 1)


def _lesion_shape(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Signed depth (pixels) inside one irregular lesion, [H, W]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    big = rng.random() < 0.2
    radius = rng.uniform(0.4, 0.7) * min(h, w) if big else rng.uniform(0.15, 0.42) * min(h, w)
    spread = 0.35 if big else 0.18
    hw = np.array([h, w], dtype=np.float64)
    cy, cx = np.clip(hw / 2 + rng.normal(0, spread, 2) * hw, 0.1 * hw, 0.9 * hw)
    harm = _harmonics(rng, rng.uniform(0.1, 0.45), 14)
    depth = _radial_shape(yy, xx, (cy, cx), radius, rng.uniform(1.0, 1.8), rng.uniform(0, math.pi), harm)
    return depth + 0.05 * radius * smooth_noise(rng, shape, 0.08 * radius + 1)


def _lesion_colour(rng: np.random.Generator, shape: tuple[int, int], s: float) -> np.ndarray:
    """Variegated lesion colour: a main brown mixed with 1-3 others by smooth fields, [H, W, 3]."""
    main = rng.choice(BROWNS)
    rest = [i for i in range(len(LESION_COLOURS)) if i != main]
    others = rng.choice(rest, size=int(rng.integers(1, 4)), replace=False)
    picks = np.concatenate([[main], others])
    cols = LESION_COLOURS[picks] * rng.uniform(0.85, 1.15, (picks.size, 1))  # [k, 3]
    bias = np.array([1.5] + [0.0] * others.size)[:, None, None]
    logits = np.stack([smooth_noise(rng, shape, 40 * s) * rng.uniform(1, 2.5) for _ in picks]) + bias  # [k, H, W]
    weights = np.exp(logits - logits.max(0))
    weights /= weights.sum(0)
    return np.einsum("khw,kc->hwc", weights, cols)


def _lesion(rng: np.random.Generator, skin: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Paint one lesion on the skin; return (RGB [H, W, 3], mask [H, W] bool)."""
    shape = skin.shape[:2]
    depth = _lesion_shape(rng, shape)
    fuzz = (rng.uniform(2, 10) * s + 0.8) * np.exp(0.8 * smooth_noise(rng, shape, 60 * s))  # [H, W]
    alpha = np.clip(depth / fuzz + 0.5, 0, 1)  # [H, W]
    colour = _lesion_colour(rng, shape, s)
    network = np.clip(1 - np.abs(smooth_noise(rng, shape, 5 * s + 1)) / 0.25, 0, 1) * rng.uniform(0, 0.35)
    dots = _soft_disks(_poisson_points(rng, depth > 0, 25 * s + 3), np.full(shape, 2.5 * s + 0.6),
                       smooth_noise(rng, shape, 2.0))
    core = np.clip(depth / (np.abs(depth).max() + 1e-9), 0, 1)[..., None]  # [H, W, 1] 0 at border, 1 deep
    colour = colour * (1 + 0.08 * smooth_noise(rng, shape, 3 * s + 0.5)[..., None])  # mottling
    colour = colour * (1 - rng.uniform(0, 0.4) * core) * (1 - network[..., None]) * (1 - 0.5 * dots[..., None])
    faint = rng.uniform(0.25, 0.5) if rng.random() < 0.15 else rng.uniform(0.65, 1.0)
    strength = faint * np.clip(1 + 0.2 * smooth_noise(rng, shape, 50 * s), 0.5, 1.2)  # [H, W]
    a = (alpha * np.clip(strength, 0, 1))[..., None]
    return skin * (1 - a) + colour * a, depth > 0


def _hairs(rng: np.random.Generator, rgb: np.ndarray, s: float) -> np.ndarray:
    """Dark hair strands over the image (none on about half of the images)."""
    shape = rgb.shape[:2]
    n = int(rng.integers(1, 4) if rng.random() < 0.6 else rng.integers(4, 25)) if rng.random() < 0.5 else 0
    if n == 0:
        return rgb
    pts = _curve_points(rng, shape, n, (0.15, 0.6))
    width = max(rng.uniform(0.5, 1.6) * s + 0.3, 0.75)
    cover = _soft_disks(pts, np.full(shape, width), np.zeros(shape))[..., None]  # [H, W, 1]
    colour = np.array([0.12, 0.08, 0.06]) * rng.uniform(0.5, 2.5)
    return rgb * (1 - 0.9 * cover) + colour * 0.9 * cover


def _ruler(rng: np.random.Generator, rgb: np.ndarray, s: float) -> np.ndarray:
    """Ruler tick marks along one image edge, sometimes a scale bar."""
    h, w = rgb.shape[:2]
    out = rgb.copy()
    if rng.random() < 0.2:
        step = max(3, int(rng.uniform(12, 22) * s * 2))
        y0 = int(rng.uniform(0.02, 0.1) * h) if rng.random() < 0.5 else int(rng.uniform(0.85, 0.95) * h)
        thick = max(1, int(round(1.5 * s * 2)))
        for i, x in enumerate(range(int(rng.uniform(0, step)), w, step)):
            length = int((0.08 if i % 5 == 0 else 0.04) * h)
            out[max(0, y0 - length):y0 + 1, x:x + thick] = 0.15
        out[y0:y0 + thick, :] = 0.15
    if rng.random() < 0.15:
        y, x = int(rng.uniform(0.8, 0.95) * h), int(rng.uniform(0.05, 0.5) * w)
        out[y:y + max(2, int(4 * s)), x:x + int(0.2 * w)] = rng.choice([0.05, 0.95])
    return out


def _dermoscope(rng: np.random.Generator, rgb: np.ndarray, s: float) -> np.ndarray:
    """Vignetting, sometimes the dark circle of the dermoscope, gel bubbles, glare."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2)) / math.sqrt(2)  # [H, W] 0 centre, 1 corner
    out = rgb * (1 - rng.uniform(0.0, 0.45) * r[..., None] ** 2)
    if rng.random() < 0.15:
        edge = np.clip((r - rng.uniform(0.62, 0.8)) / 0.03, 0, 1)[..., None]
        out = out * (1 - 0.95 * edge)
    if rng.random() < 0.15:
        inner, rim = _bubble(rng, (h, w), s)
        out = out + 0.12 * inner[..., None] + 0.35 * rim[..., None]
    glare = _soft_disks(_poisson_points(rng, np.ones((h, w), bool), rng.uniform(100, 400) * s + 10),
                        np.full((h, w), 2.0 * s + 0.7), np.zeros((h, w)))
    return np.clip(out + 0.4 * glare[..., None], 0, 1)


def render_isic_image(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One ISIC-like dermoscopy image with its lesion mask.

    Args:
        rng: random generator.
        shape: (H, W) of the image.

    Returns:
        (image [H, W, 3] uint8 RGB, mask [H, W] uint8 in {0, 255}).
    """
    s = math.sqrt(shape[0] * shape[1] / (384 * 512))
    rgb, mask = _lesion(rng, _skin(rng, shape, s), s)
    rgb = _dermoscope(rng, _ruler(rng, _hairs(rng, rgb, s), s), s)
    rgb = _blur_rgb(rgb, rng.uniform(0.3, 1.2) * max(s, 0.5))
    rgb = np.clip(rgb * rng.uniform(0.9, 1.1, 3) + rng.normal(0, rng.uniform(0.005, 0.02), rgb.shape), 0, 1)
    return _to_uint8(rgb), (_largest_component(mask) * 255).astype(np.uint8)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a binary mask with its holes filled, [H, W] bool."""
    comp = connected_components(mask, connectivity=2)
    if comp.max() == 0:
        return mask.astype(bool)
    biggest = comp == np.argmax(np.bincount(comp.ravel())[1:]) + 1
    return ndimage.binary_fill_holes(biggest)


def make_isic_like(root: str | Path, n_train: int, n_test: int, size: Sequence[int], seed: int) -> Path:
    """Write an ISIC-2016-like dataset in the official Part 1 layout.

    Files: ``ISBI2016_ISIC_Part1_Training_Data/ISIC_XXXXXXX.jpg`` (JPEG quality 95),
    ``ISBI2016_ISIC_Part1_Training_GroundTruth/ISIC_XXXXXXX_Segmentation.png`` (0/255) and the same
    with ``Test``; ids count up from ISIC_0000000 over train then test.

    Args:
        root: output folder (created).
        n_train: training images (>= 1).
        n_test: test images (>= 1).
        size: (H, W) of every image.
        seed: same seed, byte-identical files.

    Returns:
        The folder written.

    Raises:
        ValueError: a count below 1 or a bad size.
    """
    root = _prepare(root, n_train, n_test, size)
    ident = 0
    for split, part, n in (("train", "Training", n_train), ("test", "Test", n_test)):
        data = root / f"ISBI2016_ISIC_Part1_{part}_Data"
        truth = root / f"ISBI2016_ISIC_Part1_{part}_GroundTruth"
        data.mkdir(exist_ok=True)
        truth.mkdir(exist_ok=True)
        for k in range(n):
            image, mask = render_isic_image(_rng(seed, split, k), (int(size[0]), int(size[1])))
            name = f"ISIC_{ident:07d}"
            Image.fromarray(image).save(data / f"{name}.jpg", format="JPEG", quality=95)
            Image.fromarray(mask).save(truth / f"{name}_Segmentation.png", format="PNG")
            ident += 1
    return root
