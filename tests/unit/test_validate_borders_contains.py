"""borders' one-point containment test: the scalar shortcut answers exactly as `contains` with a Point would."""

from __future__ import annotations

import random

import numpy as np
import pytest
import shapely
from shapely.geometry import Point

from services.validate.rules import borders


@pytest.mark.parametrize("country", ["AFG", "TUR", "UZB", "NOR", "FJI", "IDN"])
def test_contains_xy_agrees_with_contains_on_points_inside_outside_and_on_the_outline(country: str) -> None:
    geometry = borders.outline(country)
    assert geometry is not None and shapely.is_prepared(geometry)
    rng = random.Random(country)
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    points = [(rng.uniform(min_lon - 1, max_lon + 1), rng.uniform(min_lat - 1, max_lat + 1)) for _ in range(300)]
    vertices = shapely.get_coordinates(geometry)[:200]
    points += [(float(x), float(y)) for x, y in vertices]  # on the boundary: not contained
    points += [(float(x), float(y)) for x, y in (vertices[:-1] + vertices[1:]) / 2]  # on or beside an edge
    points += [(min_lon, min_lat), (max_lon, max_lat), (float("nan"), min_lat)]
    for lon, lat in points:
        assert bool(borders._contains_xy(geometry, lon, lat)) == geometry.contains(Point(lon, lat)), (lon, lat)
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    vectorised = shapely.contains_xy(geometry, xs, ys).tolist()
    assert [bool(borders._contains_xy(geometry, x, y)) for x, y in points] == vectorised


def test_a_point_in_or_near_a_country_is_placed_as_before() -> None:
    assert borders.placement("AFG", 34.35, 62.2) == borders.Placement(near=True, km=None)  # inside
    assert borders.placement("TUR", 41.0, 28.97) == borders.Placement(near=True, km=None)  # Istanbul: near
    far = borders.placement("AFG", 48.85, 2.35)  # Paris
    assert far is not None and not far.near and far.km is not None and far.km > 3000
