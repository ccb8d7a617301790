"""Masks as GeoJSON polygons and back: traced, thinned, rasterised back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage
from skimage.measure import label

from alseg_utils.errors import DataError
from alseg_utils.geojson import (geojson_polygons, mask_feature, mask_polygons, polygon_feature, polygon_pixels,
                                 polygons_mask)


def _points(ring: np.ndarray) -> set[tuple[float, float]]:
    return set(map(tuple, np.round(ring, 6).tolist()))


def test_single_pixel_outline_is_a_diamond_around_its_centre() -> None:
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = True
    (rings,) = mask_polygons(mask)
    assert len(rings) == 1
    ring = rings[0]
    assert np.allclose(ring[0], ring[-1])  # closed
    assert _points(ring) == {(2.0, 1.5), (2.5, 1.0), (3.0, 1.5), (2.5, 2.0)}
    assert np.array_equal(polygons_mask([rings], (3, 4)) > 0, mask)


def test_square_outline_keeps_only_its_eight_corners() -> None:
    """A 4x4 square at rows 1-4, columns 2-5: straight edges at the pixel borders, corners cut."""
    mask = np.zeros((6, 8), bool)
    mask[1:5, 2:6] = True
    (traced,) = mask_polygons(mask, tolerance=0)  # every edge midpoint of marching squares
    ((ring,),) = mask_polygons(mask)
    corners = {(2.5, 1.0), (5.5, 1.0), (6.0, 1.5), (6.0, 4.5), (5.5, 5.0), (2.5, 5.0), (2.0, 4.5), (2.0, 1.5)}
    assert _points(ring) == corners and len(ring) == 9  # eight corners, closed
    assert len(traced[0]) > len(ring) and corners <= _points(traced[0])
    assert np.array_equal(polygons_mask([[ring]], mask.shape) > 0, mask)


def test_hole_becomes_an_inner_ring() -> None:
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    mask[3, 3] = False
    (rings,) = mask_polygons(mask)
    assert len(rings) == 2  # outer ring, then the hole
    assert _points(rings[1]) == {(3.0, 3.5), (3.5, 3.0), (4.0, 3.5), (3.5, 4.0)}  # around the pixel (3, 3)
    back = polygons_mask([rings], mask.shape)
    assert np.array_equal(back > 0, mask) and set(np.unique(back)) == {0, 1}


def test_objects_touching_at_a_corner_are_two_polygons() -> None:
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = mask[2, 2] = True  # 8- but not 4-connected
    polygons = mask_polygons(mask)
    assert len(polygons) == 2
    assert np.array_equal(polygons_mask(polygons, mask.shape), np.where(mask, label(mask, connectivity=1), 0))


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_polygons_give_back_the_mask(mask: np.ndarray) -> None:
    polygons = mask_polygons(mask)
    instances = polygons_mask(polygons, mask.shape)
    assert np.array_equal(instances > 0, mask)
    objects = label(mask, connectivity=1)
    for k, rings in enumerate(polygons, start=1):
        # the outer ring alone covers the object with its holes filled (background is 8-connected)
        filled = ndimage.binary_fill_holes(objects == k, structure=np.ones((3, 3)))
        assert np.array_equal(polygons_mask([rings[:1]], mask.shape) > 0, filled)
        assert all(len(ring) >= 4 and np.array_equal(ring[0], ring[-1]) for ring in rings)


@settings(max_examples=30, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(2, 12), st.integers(2, 12))))
def test_thinning_keeps_the_raster_and_never_adds_points(mask: np.ndarray) -> None:
    traced, thinned = mask_polygons(mask, tolerance=0), mask_polygons(mask)
    assert [len(rings) for rings in traced] == [len(rings) for rings in thinned]
    for a, b in zip(traced, thinned):
        for ring_a, ring_b in zip(a, b):
            assert len(ring_b) <= len(ring_a) and _points(ring_b) <= _points(ring_a)
    assert np.array_equal(polygons_mask(traced, mask.shape), polygons_mask(thinned, mask.shape))


def test_polygon_pixels_include_those_outside_the_canvas() -> None:
    square = np.array([[-1.0, -1.0], [2.0, -1.0], [2.0, 1.0], [-1.0, 1.0], [-1.0, -1.0]])  # (x, y)
    rr, cc = polygon_pixels([square], (4, 4))
    assert sorted(zip(rr.tolist(), cc.tolist())) == [(r, c) for r in (-1, 0) for c in (-1, 0, 1)]
    with pytest.raises(ValueError, match="far outside"):
        polygon_pixels([square * 1000], (4, 4))


def test_geojson_file_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((20, 30)) > 0.6
    features = [{"type": "Feature", "properties": {"classification": {"name": "Region"}},
                 "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [30, 0], [30, 20], [0, 20], [0, 0]]]}}]
    for rings in mask_polygons(mask):
        shifted = [ring + np.array([10.0, 5.0]) for ring in rings]  # region at (5, 10)
        features.append(polygon_feature(shifted, "object", "Object", (0, 200, 255)))
    path = tmp_path / "a.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    polygons = geojson_polygons(path)
    assert len(polygons) == len(features) - 1  # the Region rectangle is not an object
    back = polygons_mask(polygons, (40, 50))
    assert np.array_equal(back[5:25, 10:40] > 0, mask)
    back[5:25, 10:40] = 0
    assert not back.any()  # nothing outside the region


def test_multipolygon_gives_one_polygon_per_part(tmp_path: Path) -> None:
    a = [[[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]]
    b = [[[3, 2], [4, 2], [4, 4], [3, 4], [3, 2]]]
    path = tmp_path / "m.geojson"
    path.write_text(json.dumps([{"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [a, b]}}]))
    back = polygons_mask(geojson_polygons(path), (5, 5))
    expected = np.zeros((5, 5), np.int32)
    expected[0, 0:2], expected[2:4, 3] = 1, 2
    assert np.array_equal(back, expected)


def _feature_polygons(feature: dict) -> list[list[np.ndarray]]:
    geometry = feature["geometry"]
    parts = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return [[np.asarray(ring, np.float64) for ring in part] for part in parts]


def test_mask_feature_outlines_a_segment_in_one_feature(tmp_path: Path) -> None:
    """A superpixel's outline: one Polygon (with its hole), or one MultiPolygon when parts touch at corners."""
    ring = np.ones((4, 4), bool)
    ring[1:3, 1:3] = False  # a hole
    feature = mask_feature(ring, "s001-a-2-3", "Segment", (255, 221, 0), offset=(3, 2))
    assert feature["geometry"]["type"] == "Polygon" and len(feature["geometry"]["coordinates"]) == 2
    assert feature["properties"]["name"] == "s001-a-2-3"
    assert feature["properties"]["classification"] == {"name": "Segment", "color": [255, 221, 0]}
    expected = np.zeros((8, 9), bool)
    expected[2:6, 3:7] = ring
    assert np.array_equal(polygons_mask(_feature_polygons(feature), (8, 9)) > 0, expected)
    corners = np.array([[1, 0, 0], [0, 1, 1]], bool)  # 8-connected, two 4-connected parts
    multi = mask_feature(corners, "s001-b", "Segment", (255, 221, 0))
    assert multi["geometry"]["type"] == "MultiPolygon" and len(multi["geometry"]["coordinates"]) == 2
    assert np.array_equal(polygons_mask(_feature_polygons(multi), (2, 3)) > 0, corners)
    path = tmp_path / "segments.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature, multi]}))
    assert geojson_polygons(path) == []  # Segment outlines say what to classify: no objects in them
    with pytest.raises(ValueError, match="no pixel"):
        mask_feature(np.zeros((2, 2), bool), "empty", "Segment", (0, 0, 0))


@pytest.mark.parametrize(("content", "problem"), [
    ("[", "not a readable GeoJSON"),
    (json.dumps({"type": "Polygon"}), "not a GeoJSON FeatureCollection"),
    (json.dumps([{"type": "Feature"}]), "has no geometry"),
    (json.dumps([{"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}]),
     "is a LineString"),
    (json.dumps([{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, "x"]]]}}]),
     "malformed"),
])
def test_bad_geojson_is_refused_naming_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(content)
    with pytest.raises(DataError, match=problem) as info:
        geojson_polygons(path)
    assert str(path) in str(info.value)
