"""Geometries decoded row by row, so that one GEOS cannot build never costs the others.

Every reader gets the file's geometries as WKB (GDAL through pyogrio, GeoParquet
through pyarrow) or WKT (CSV) and decodes them here: what GEOS refuses (a ring of
two points, a truncated WKB, text that is not WKT) comes back as None with GEOS's
message in :data:`pvsurvey.model.footprints.GEOMETRY_PROBLEM`, and the row is
rejected with its reason by :func:`pvsurvey.model.footprints.clean_footprints`
(which also rejects shapes GEOS builds but nothing can measure: NaN coordinates).
Input rows = accepted + rejected, always.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely


def decode_geometries(values, parse=shapely.from_wkb) -> tuple[np.ndarray, np.ndarray]:
    """Geometries from WKB (or WKT with ``parse=shapely.from_wkt``), and per row
    GEOS's message where a value is there but no geometry could be built (else None).

    Unclosed rings are closed where GEOS ≥ 3.11 can (shapely's ``on_invalid='fix'``);
    everything else GEOS refuses is a None with its message.
    """
    values = np.asarray(values, dtype=object)
    geoms = np.asarray(parse(values, on_invalid="ignore"), dtype=object)
    problems = np.full(len(values), None, dtype=object)
    failed = np.flatnonzero(pd.isna(geoms) & ~pd.isna(values))
    for i in failed:  # rare: the rows GEOS refused, one by one
        try:
            geoms[i] = parse(values[i], on_invalid="fix")
        except (ValueError, shapely.errors.GEOSException):  # 'fix' needs shapely ≥ 2.1 and GEOS ≥ 3.11
            geoms[i] = None
        if geoms[i] is None:
            try:
                parse(values[i], on_invalid="raise")
                problems[i] = "GEOS could not build this geometry"
            except Exception as exc:  # GEOSException, or a value of the wrong type
                problems[i] = str(exc).splitlines()[0] or type(exc).__name__
    return geoms, problems
