"""Annotation cost: what labelling one unit costs a person, in three cost models.

The paper counts effort in labelled pixels; people who annotate pay in clicks (Cai et al., CVPR
2021, showed that the ranking of region shapes changes when cost is counted that way). Every step
record holds the cost of what the step acquired in each model (:data:`~alseg_utils.config.COST_MODELS`,
the functions of :data:`COST_FUNCTIONS`), and the running totals:

- ``pixels`` (:func:`pixel_count`): the real pixels a unit adds (what ``acquired_pixels`` counts).
- ``polygon_clicks`` (:func:`polygon_clicks`): the vertices a person clicks to outline the objects
  inside the unit. The objects are clipped to the unit, each connected piece (8-connected) is
  outlined (:func:`skimage.measure.find_contours`) and simplified with a tolerance of
  :data:`POLYGON_TOLERANCE` pixels (:func:`skimage.measure.approximate_polygon`); its vertices are
  the clicks, at least :data:`MIN_POLYGON_CLICKS` a polygon. A hole in an object is one more
  polygon (its outline is clicked to mark it background). A unit of one class costs one click,
  naming that class: a unit holding no object ("background"), or one object covering all of it
  (nothing to trace). Where an object is cut by the unit's border, the cut is part of its outline.
- ``dominant_clicks`` (:func:`dominant_clicks`): one click per unit (naming its main class).

A unit is the set of pixels the step adds: a whole image's real pixels, a window's or a
superpixel's pixels not labelled before (:func:`selection_units`). Objects are the ground-truth
instances of the AL training images when the data have masks (``SegmentationSet.instances``: the
masks the simulated oracle answers with, split into glands as a person outlines them; a person
answering the same masks through ``alseg export`` / ``ingest`` gets the same records), otherwise (a
person's own images, no ground truth) the 8-connected components of the object labels the oracle
answered. Dominant-class superpixels are counted on the ground truth too, so their polygon clicks
say what outlining the same units would have cost.

Effort axes (:data:`~alseg_utils.config.EFFORT_AXES`, :func:`effort_axis`) are what Table 1, the
label-efficiency table and Fig. 1 / Fig. 3 count effort in: a cost model, or ``clicks``, the cost
as the run was annotated (:func:`annotated_cost`: polygon clicks for mask-labelled units, dominant
clicks for the dominant-labelled superpixels of ``active.superpixel_label: dominant``). ``clicks``
is not a cost model of its own (it picks one per step), so it is listed apart from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from skimage.measure import approximate_polygon, find_contours, regionprops

from alseg_utils.config import COST_MODELS, EFFORT_AXES
from alseg_utils.errors import RunStateError

if TYPE_CHECKING:
    import pandas as pd

    from alseg_utils.selection import Selection

POLYGON_TOLERANCE = 1.0
"""Pixels a simplified outline may stray from the traced boundary (a careful annotator's precision)."""
MIN_POLYGON_CLICKS = 3
"""Fewest clicks of one polygon (an object of a pixel or two is still outlined by a triangle)."""


def _unit_mask(objects: np.ndarray, unit: np.ndarray | None) -> np.ndarray:
    """``unit`` as a bool ``[h, w]`` mask of ``objects``' shape (all True when None)."""
    if objects.ndim != 2:
        raise ValueError(f"objects must be an [h, w] instance map or mask, got shape {objects.shape}")
    if unit is None:
        return np.ones(objects.shape, bool)
    inside = np.asarray(unit)
    if inside.shape != objects.shape:
        raise ValueError(f"unit {inside.shape} and objects {objects.shape} must be the same [h, w] arrays")
    return inside.astype(bool)


def _outline_clicks(mask: np.ndarray, tolerance: float) -> int:
    """Vertices of the simplified outlines (outer boundaries and holes) of a bool ``[h, w]`` mask."""
    padded = np.pad(mask, 1).astype(float)  # [h + 2, w + 2]: every outline closes inside the array
    clicks = 0
    for contour in find_contours(padded, 0.5, fully_connected="high"):  # [L, 2] (row, col), last == first
        ring = contour[:-1]  # [L - 1, 2]
        # start at the top-most, then left-most point (a corner of the outline, kept by the simplification),
        # so the count does not depend on where the tracing happened to start
        ring = np.roll(ring, -int(np.lexsort((ring[:, 1], ring[:, 0]))[0]), axis=0)
        polygon = approximate_polygon(np.vstack([ring, ring[:1]]), tolerance)  # [V + 1, 2], closed
        clicks += max(len(polygon) - 1, MIN_POLYGON_CLICKS)  # the repeated last point is not a click
    return clicks


def polygon_clicks(objects: np.ndarray, unit: np.ndarray | None = None,
                   tolerance: float = POLYGON_TOLERANCE) -> int:
    """Clicks to outline the objects inside a unit with polygons (see the module docstring).

    Args:
        objects: instance map, int ``[h, w]`` (0 background, k > 0 object k), or object mask, bool
            ``[h, w]``, around and inside the unit.
        unit: the unit's pixels, bool ``[h, w]``; None = the whole array (a window or a full image).
        tolerance: how far, in pixels, a simplified outline may stray from the traced boundary (>= 0).

    Returns:
        The vertices of every polygon (objects clipped to the unit, holes included); 1 when the unit
        holds a single class (no object, or one object covering all of it).

    Raises:
        ValueError: the arrays are not ``[h, w]`` of one shape, or ``tolerance`` is negative.
    """
    obj = np.asarray(objects)
    inside = _unit_mask(obj, unit)
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
    ids = np.where(inside, obj, 0).astype(np.int64)  # [h, w]: the objects clipped to the unit
    present = ids[inside]  # [P]
    if not present.any() or (present.min() > 0 and (present == present[0]).all()):
        return 1  # one class: confirm "background", or name the object that fills the unit
    return sum(_outline_clicks(region.image, tolerance) for region in regionprops(ids))


def pixel_count(objects: np.ndarray, unit: np.ndarray | None = None, tolerance: float = POLYGON_TOLERANCE) -> int:
    """The cost model ``pixels``: the unit's pixels (``objects`` and ``tolerance`` are not used).

    Args:
        objects: instance map or mask, ``[h, w]``.
        unit: the unit's pixels, bool ``[h, w]``; None = every pixel of ``objects``.
        tolerance: not used (the signature of :data:`COST_FUNCTIONS`).
    """
    return int(_unit_mask(np.asarray(objects), unit).sum())


def dominant_clicks(objects: np.ndarray, unit: np.ndarray | None = None,
                    tolerance: float = POLYGON_TOLERANCE) -> int:
    """The cost model ``dominant_clicks``: one click per unit, naming its class (arguments not used).

    Args:
        objects: instance map or mask, ``[h, w]``.
        unit: the unit's pixels, bool ``[h, w]``.
        tolerance: not used (the signature of :data:`COST_FUNCTIONS`).
    """
    return 1


COST_FUNCTIONS: dict[str, Callable[..., int]] = dict(
    zip(COST_MODELS, (pixel_count, polygon_clicks, dominant_clicks), strict=True))
"""Cost model (:data:`~alseg_utils.config.COST_MODELS`) -> ``f(objects [h, w], unit [h, w] bool, tolerance) -> int``."""


def unit_costs(objects: np.ndarray, unit: np.ndarray | None = None,
               tolerance: float = POLYGON_TOLERANCE) -> dict[str, int]:
    """What one unit costs in every cost model.

    Args:
        objects: instance map or mask, ``[h, w]`` (see :func:`polygon_clicks`).
        unit: the unit's pixels, bool ``[h, w]``; None = the whole array.
        tolerance: polygon simplification tolerance, pixels.

    Returns:
        Cost model -> cost, in the order of :data:`~alseg_utils.config.COST_MODELS`.
    """
    return {name: fn(objects, unit, tolerance) for name, fn in COST_FUNCTIONS.items()}


def selection_units(selection: Selection) -> Iterator[tuple[int, tuple[slice, slice], np.ndarray]]:
    """Every unit a step acquired, as the pixels it adds.

    Args:
        selection: what the step chose (:class:`~alseg_utils.selection.Selection`): whole images,
            windows, or superpixels (``region_masks``).

    Yields:
        ``(image, (rows, cols), unit)``: the pool image, the unit's box in it and its pixels inside
        the box, bool ``[h, w]`` (the acquired pixels of the box: never labelled before, not padding).
        Units that add no pixel are skipped.
    """
    boxes: list[tuple[int, tuple[slice, slice], np.ndarray | None]]
    if selection.whole_images:
        boxes = [(image, (slice(None), slice(None)), None) for image in selection.images]
    else:
        masks: list[np.ndarray | None] = list(selection.region_masks)
        masks = masks or [None] * len(selection.regions)  # square windows: the whole window
        boxes = [(r.image, r.slices, m) for r, m in zip(selection.regions, masks, strict=True)]
    for image, box, mask in boxes:
        unit = selection.acquired[(selection.candidates.index(image), *box)]  # [h, w]
        if mask is not None:
            unit = unit & np.asarray(mask, dtype=bool)
        if unit.any():
            yield image, box, unit


def selection_costs(selection: Selection, objects: np.ndarray,
                    tolerance: float = POLYGON_TOLERANCE) -> dict[str, int]:
    """What one step's acquisition costs in every cost model: the sum over its units.

    Args:
        selection: what the step chose (whole images, windows or superpixels).
        objects: the objects of every pool image, int instance maps or bool masks ``[N, H, W]``
            (pool indices, as ``selection.images``).
        tolerance: polygon simplification tolerance, pixels.

    Returns:
        Cost model -> the step's cost (``pixels`` equals ``selection.pixels``).

    Raises:
        ValueError: ``objects`` is not ``[N, H, W]`` of the selection's image size.
    """
    objects = np.asarray(objects)
    if objects.ndim != 3 or objects.shape[1:] != selection.acquired.shape[1:]:
        raise ValueError(f"objects must be [N, H, W] maps of the pool's {selection.acquired.shape[1:]} images, "
                         f"got shape {objects.shape}")
    total = dict.fromkeys(COST_MODELS, 0)
    for image, box, unit in selection_units(selection):
        for name, cost in unit_costs(objects[(image, *box)], unit, tolerance).items():
            total[name] += cost
    return total


def clicks_per_window(instances: np.ndarray, valid: np.ndarray, region_size: int, stride: int,
                      tolerance: float = POLYGON_TOLERANCE) -> float:
    """Mean polygon clicks of one square window over fully labelled images.

    Every window of :func:`~alseg_utils.regions.region_origins` that holds a real pixel counts once,
    as the loop would acquire it (its real pixels).

    Args:
        instances: instance maps (or object masks), ``[N, H, W]``, 0 = background.
        valid: real (not padded) pixels, bool ``[N, H, W]``.
        region_size: window side, pixels.
        stride: step between windows, pixels.
        tolerance: polygon simplification tolerance, pixels.

    Returns:
        The mean of :func:`polygon_clicks` over those windows.

    Raises:
        ValueError: the arrays differ in shape, the window does not fit, or no window holds a real pixel.
    """
    from alseg_utils.regions import region_origins  # torch-backed module; only this function needs it

    instances, valid = np.asarray(instances), np.asarray(valid, dtype=bool)
    if instances.ndim != 3 or instances.shape != valid.shape:
        raise ValueError(f"instances {instances.shape} and valid {valid.shape} must be the same [N, H, W] arrays")
    tops, lefts = region_origins(instances.shape[1], instances.shape[2], region_size, stride)
    clicks = [polygon_clicks(instances[i, t:t + region_size, c:c + region_size],
                             valid[i, t:t + region_size, c:c + region_size], tolerance)
              for i in range(len(instances)) for t in tops for c in lefts
              if valid[i, t:t + region_size, c:c + region_size].any()]
    if not clicks:
        raise ValueError("no window holds a real pixel (valid is all False); give fully labelled images")
    return float(np.mean(clicks))


# ----------------------------------------------------------------------------- step records


def annotated_cost(strategy: str, superpixel_label: str, step: int) -> str:
    """The cost model of how a step's units were annotated (what the ``clicks`` axis counts).

    Args:
        strategy: ``active.strategy``.
        superpixel_label: ``active.superpixel_label`` (``mask`` or ``dominant``).
        step: the step (0 = the initial images, always outlined in full).

    Returns:
        ``"dominant_clicks"`` for the superpixels of a dominant-labelled run after step 0, else
        ``"polygon_clicks"``.
    """
    dominant = strategy == "superpixel" and superpixel_label == "dominant" and step > 0
    return "dominant_clicks" if dominant else "polygon_clicks"


def cost_fields(acquired: dict[str, int], annotated: str, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The cost fields of a step record: this step's costs and the running totals.

    Args:
        acquired: cost model -> this step's cost (:func:`selection_costs`).
        annotated: the cost model of how the step was annotated (:func:`annotated_cost`).
        previous: the previous step's record; None at step 0.

    Returns:
        ``acquired_<model>`` for every cost model, and ``labelled_polygon_clicks``,
        ``labelled_dominant_clicks`` and ``labelled_clicks``: the previous record's totals plus this
        step's. A total is left out when the previous record lacks it (a run started before costs
        were recorded), so that no total silently misses the earlier steps.
    """
    step_clicks = {**{m: acquired[m] for m in COST_MODELS if m != "pixels"}, "clicks": acquired[annotated]}
    fields: dict[str, Any] = {f"acquired_{m}": int(acquired[m]) for m in COST_MODELS}
    for name, value in step_clicks.items():
        key = f"labelled_{name}"
        if previous is None:
            fields[key] = int(value)
        elif key in previous:
            fields[key] = int(previous[key]) + int(value)
    return fields


# ----------------------------------------------------------------------------- effort axes


@dataclass(frozen=True)
class EffortAxis:
    """How one effort axis reads the records (:func:`effort_axis`).

    Attributes:
        cost: the axis name (one of :data:`~alseg_utils.config.EFFORT_AXES`).
        column: the cumulative records column it reads (``labelled_fraction`` for pixels).
        scale: factor to the reported unit: 100 for pixels (% of pool pixels), 1 for clicks (counts).
        unit: suffix of the table columns that hold it: ``"pct"`` or ``"clicks"``.
        label: axis label of the figures.
        caption: what a Table 1 cell counts.
    """

    cost: str
    column: str
    scale: float
    unit: str
    label: str
    caption: str


_CLICK_AXES = {"polygon_clicks": "polygon clicks", "dominant_clicks": "dominant-class clicks",
               "clicks": "clicks as annotated (polygon; dominant-class for dominant superpixels)"}


def effort_axis(cost: str) -> EffortAxis:
    """The effort axis ``cost``: pixels (% of pool pixels) or one of the click counts.

    Raises:
        ValueError: ``cost`` is not one of :data:`~alseg_utils.config.EFFORT_AXES`.
    """
    if cost not in EFFORT_AXES:
        raise ValueError(f"cost must be one of {', '.join(EFFORT_AXES)}, got {cost!r}")
    if cost == "pixels":
        return EffortAxis(cost, "labelled_fraction", 100.0, "pct", "% labelled pixels", "% labelled pixels")
    words = _CLICK_AXES[cost]
    return EffortAxis(cost, f"labelled_{cost}", 1.0, "clicks", f"Labelled {words.split(' (')[0]}", words)


def require_effort(df: pd.DataFrame, cost: str) -> EffortAxis:
    """:func:`effort_axis`, after checking that every AL record of ``df`` holds its column (click axes).

    Args:
        df: records (:func:`alseg_utils.results.load_records`); reference rows are not checked.
        cost: the effort axis.

    Raises:
        ValueError: unknown ``cost``.
        RunStateError: the records lack the axis' column (written before click costs were recorded).
    """
    axis = effort_axis(cost)
    if cost == "pixels":  # every record has held labelled_fraction
        return axis
    runs = df[~df["reference"].eq(True)] if "reference" in df.columns else df
    if axis.column not in runs.columns or runs[axis.column].isna().any():
        raise RunStateError(f"the records lack {axis.column!r} (written before annotation costs were recorded); "
                            "report them with cost 'pixels', or rerun their runs to count clicks")
    return axis
