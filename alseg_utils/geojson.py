"""Object masks as GeoJSON polygons and back, in the pixel coordinates QuPath uses.

Coordinates: x = column, y = row, (0, 0) the top-left corner of the top-left pixel, so pixel
centres lie at half-integers; a pixel belongs to a polygon when its centre lies inside. A polygon
is a list of rings, each a closed [P, 2] float array of ``(x, y)`` points: the outer ring first,
then one ring per hole (even-odd: a pixel inside an odd number of rings is inside).

Outlines are traced with scikit-image's marching squares (:func:`skimage.measure.find_contours`)
and thinned with Douglas-Peucker (:func:`skimage.measure.approximate_polygon`) at a tolerance
below the distance between the traced outline and the nearest pixel centre, so filling them
(:func:`skimage.draw.polygon2mask`) gives back the mask exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from skimage.draw import polygon2mask
from skimage.measure import approximate_polygon, find_contours, regionprops
from skimage.measure import label as connected_components

from alseg_utils.errors import DataError

REGION_CLASS = "Region"  # classification of the rectangles of the regions to annotate (skipped on reading)
SEGMENT_CLASS = "Segment"  # classification of a superpixel's outline in a dominant-class request (skipped on reading)
# Douglas-Peucker tolerance, px. The traced outline passes a pixel centre no closer than 1 / (2 sqrt 2)
# (a cut corner), and a thinned outline stays within the tolerance of the traced one, so no centre
# changes side as long as the tolerance stays below that; 0.3 leaves room for rounding to 1e-3 px.
SIMPLIFY_TOLERANCE = 0.3


def mask_polygons(mask: np.ndarray, tolerance: float = SIMPLIFY_TOLERANCE) -> list[list[np.ndarray]]:
    """Outlines of each 4-connected object of a mask, as rings in pixel-corner coordinates.

    Args:
        mask: object pixels, [H, W], bool or {0, 1}.
        tolerance: Douglas-Peucker tolerance in pixels; 0 keeps every traced point. Below the
            default's bound (0.35) filling the polygons gives back ``mask`` exactly.

    Returns:
        One polygon per object (in label order: by its top-left pixel): its outer ring first, then
        one ring per hole; each ring is an [P, 2] float array of closed ``(x, y)`` points (x =
        column, y = row, pixel centres at half-integers). Filling them (:func:`polygons_mask`)
        gives back ``mask`` exactly.
    """
    objects = connected_components(np.asarray(mask) > 0, connectivity=1)  # [H, W]
    polygons = []
    for obj in regionprops(objects):
        top, left = obj.bbox[:2]
        padded = np.pad(obj.image, 1).astype(np.float64)  # [h + 2, w + 2], only this object
        # find_contours lists rings by their first point in scan order: the outer ring comes first
        rings = [approximate_polygon(ring, tolerance) for ring in find_contours(padded, 0.5)]  # (row, col)
        polygons.append([ring[:, ::-1] + np.array([left - 0.5, top - 0.5]) for ring in rings])  # (x, y)
    return polygons


def polygon_pixels(rings: Sequence[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels inside a polygon with holes (even-odd over its rings).

    A pixel is inside when its centre is. Pixels outside the ``shape`` (H, W) canvas are returned
    too (negative or too large), so a caller can tell a polygon that leaves the image.

    Args:
        rings: the polygon's rings, each [P, 2] ``(x, y)`` in pixel-corner coordinates.
        shape: (H, W) of the image the polygon is drawn on.

    Returns:
        ``(rows, cols)``, two int arrays of the same length.

    Raises:
        ValueError: the polygon's bounding box is far larger than the canvas.
    """
    rows = [ring[:, 1] - 0.5 for ring in rings]  # pixel centres at integers
    cols = [ring[:, 0] - 0.5 for ring in rings]
    r0, c0 = int(np.floor(min(r.min() for r in rows))), int(np.floor(min(c.min() for c in cols)))
    r1, c1 = int(np.ceil(max(r.max() for r in rows))), int(np.ceil(max(c.max() for c in cols)))
    if (r1 - r0 + 1) * (c1 - c0 + 1) > 16 * (shape[0] + 2) * (shape[1] + 2):
        raise ValueError(f"polygon spans rows {r0}..{r1}, columns {c0}..{c1}, far outside a {shape} image")
    canvas = np.zeros((r1 - r0 + 1, c1 - c0 + 1), bool)  # the polygon's bounding box
    for r, c in zip(rows, cols, strict=True):
        canvas ^= polygon2mask(canvas.shape, np.column_stack([r - r0, c - c0]))
    rr, cc = np.nonzero(canvas)
    return rr + r0, cc + c0


def polygons_mask(polygons: Sequence[Sequence[np.ndarray]], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise polygons (outer ring, then holes) into an instance map, one id per polygon.

    Args:
        polygons: as returned by :func:`mask_polygons`, in pixel-corner coordinates.
        shape: (H, W) of the canvas; pixels outside it are dropped.

    Returns:
        Instance ids, [H, W] int32, 0 = no polygon, k = the k-th polygon (later ones on top).
    """
    out = np.zeros(shape, np.int32)
    for k, rings in enumerate(polygons, start=1):
        rr, cc = polygon_pixels(rings, shape)
        keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        out[rr[keep], cc[keep]] = k
    return out


def polygon_feature(rings: Sequence[np.ndarray], name: str, cls: str, color: tuple[int, int, int]
                    ) -> dict[str, Any]:
    """A GeoJSON Polygon Feature as QuPath imports it: an annotation with a name and a class.

    Args:
        rings: the polygon's rings, each [P, 2] ``(x, y)``; coordinates are rounded to 1e-3 px.
        name: the annotation's name.
        cls: its classification (``Region``, ``Object``).
        color: the class colour, RGB 0..255.

    Returns:
        The Feature, ready for ``json.dumps``.
    """
    return _feature({"type": "Polygon", "coordinates": _coordinates(rings)}, name, cls, color)


def _coordinates(rings: Sequence[np.ndarray]) -> list[list[list[float]]]:
    return [[[round(float(x), 3), round(float(y), 3)] for x, y in ring] for ring in rings]


def _feature(geometry: dict[str, Any], name: str, cls: str, color: tuple[int, int, int]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"objectType": "annotation", "name": name,
                           "classification": {"name": cls, "color": list(color)}}}


def mask_feature(mask: np.ndarray, name: str, cls: str, color: tuple[int, int, int],
                 offset: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """One GeoJSON Feature outlining every pixel of a mask: a Polygon, or a MultiPolygon when it has parts.

    What a dominant-class request exports per superpixel: one feature per segment, named by its id.

    Args:
        mask: the pixels to outline, [h, w] bool, at least one True.
        name: the annotation's name (e.g. the region id).
        cls: its classification.
        color: the class colour, RGB 0..255.
        offset: ``(x, y)`` added to every point (the mask's left column and top row in the image).

    Returns:
        The Feature; filling its polygons (:func:`polygons_mask`) gives back ``mask`` (shifted).

    Raises:
        ValueError: ``mask`` has no pixel.
    """
    parts = [[ring + np.asarray(offset, np.float64) for ring in rings] for rings in mask_polygons(mask)]
    if not parts:
        raise ValueError(f"mask of {name!r} has no pixel to outline")
    if len(parts) == 1:
        return _feature({"type": "Polygon", "coordinates": _coordinates(parts[0])}, name, cls, color)
    return _feature({"type": "MultiPolygon", "coordinates": [_coordinates(rings) for rings in parts]}, name, cls, color)


def _feature_list(obj: Any, path: Path) -> list[Any]:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and obj.get("type") == "FeatureCollection" and isinstance(obj.get("features"), list):
        return obj["features"]
    if isinstance(obj, dict) and obj.get("type") == "Feature":
        return [obj]
    raise DataError(f"{path}: not a GeoJSON FeatureCollection; export the annotations as GeoJSON objects")


def _is_region(feature: dict[str, Any]) -> bool:
    """Whether a feature outlines what to annotate (a Region rectangle or a Segment), not an object."""
    cls = (feature.get("properties") or {}).get("classification")
    name = cls.get("name") if isinstance(cls, dict) else cls
    return isinstance(name, str) and name.strip().lower() in (REGION_CLASS.lower(), SEGMENT_CLASS.lower())


def _rings(coords: Any, path: Path, n: int) -> list[np.ndarray]:
    """The rings of one GeoJSON Polygon as [P, 2] float arrays."""
    bad = DataError(f"{path}: feature {n} has malformed coordinates; a Polygon is a list of rings of [x, y] "
                    "points (at least 3, finite)")
    if not isinstance(coords, list) or not coords:
        raise bad
    rings = []
    for ring in coords:
        try:
            arr = np.asarray(ring, dtype=np.float64)
        except (TypeError, ValueError):
            raise bad from None
        if arr.ndim != 2 or arr.shape[1] < 2 or len(arr) < 3 or not np.isfinite(arr).all():
            raise bad
        rings.append(arr[:, :2])
    return rings


def geojson_polygons(path: str | Path) -> list[list[np.ndarray]]:
    """Read the object polygons of a GeoJSON file (``Region`` rectangles and ``Segment`` outlines are skipped).

    Args:
        path: a FeatureCollection (or a list of Features) of Polygon / MultiPolygon features.

    Returns:
        One entry per polygon: its rings (outer, then holes) as [P, 2] ``(x, y)`` arrays.

    Raises:
        DataError: unreadable or malformed file, or a feature that is not a polygon.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable GeoJSON file ({err}); export it again") from None
    polygons = []
    for n, feature in enumerate(_feature_list(obj, path)):
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise DataError(f"{path}: feature {n} has no geometry; keep only polygon annotations")
        if _is_region(feature):
            continue
        geom = feature["geometry"]
        if geom.get("type") == "Polygon":
            polygons.append(_rings(geom.get("coordinates"), path, n))
        elif geom.get("type") == "MultiPolygon" and isinstance(geom.get("coordinates"), list):
            polygons.extend(_rings(part, path, n) for part in geom["coordinates"])
        else:
            raise DataError(f"{path}: feature {n} is a {geom.get('type')}; outline objects as polygons")
    return polygons
