"""Pure, vectorised preparation of what the maps draw.

Building statuses, HTML-escaped text, simplified and rounded geometry (shifted
to GCJ-02 for Gaode tiles), and compact GeoJSON text. Nothing here reads files.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from ..naming import safe_file_stem
from ..coords import transform_geometries, wgs84_to_gcj02

# Building statuses on a park map, in drawing priority; the code is the index.
STATUSES = ("has_pv", "candidate", "below_min", "unsuitable")
HAS_PV, CANDIDATE, BELOW_MIN, UNSUITABLE = range(4)

# Geometry drawn on park maps: simplified to 0.5 m (about 4.5e-6° at 31° N) and
# rounded to 1e-6° (about 0.1 m). The overview's park outlines: 10 m and 1e-5°.
PARK_MAP_TOLERANCE_DEG = 4.5e-6
PARK_MAP_DIGITS = 6
OVERVIEW_TOLERANCE_DEG = 9e-5
OVERVIEW_DIGITS = 5

_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;"))


def escape_text(values) -> pd.Series:
    """HTML-escape text for popups and tooltips (``& < > " '``); missing values become ''.

    Vectorised with Arrow string kernels.

    Parameters
    ----------
    values : array-like of str or None

    Returns
    -------
    pandas.Series of str
    """
    s = pd.Series(values, dtype="object").reset_index(drop=True) if not isinstance(values, pd.Series) \
        else values.reset_index(drop=True)
    text = pc.fill_null(pa.array(s.astype("string"), type=pa.string()), "")
    for raw, safe in _ESCAPES:
        text = pc.replace_substring(text, raw, safe)
    return pd.Series(text.to_numpy(zero_copy_only=False), dtype="object")


def candidate_links(candidates: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (building, candidate project) from the ';'-joined ``building_ids``.

    Returns
    -------
    DataFrame
        ``building_id`` plus the project's ``project_id``, ``simple_payback_yr``,
        ``status`` and ``notes`` (those present); empty when there are no candidates.
    """
    keep = [c for c in ("project_id", "simple_payback_yr", "status", "notes") if candidates is not None and c in candidates]
    if candidates is None or len(candidates) == 0 or "building_ids" not in candidates:
        return pd.DataFrame(columns=["building_id", *keep])
    links = pd.DataFrame({"building_id": candidates["building_ids"].astype("string").str.split(";"),
                          **{c: candidates[c].to_numpy() for c in keep}}).explode("building_id")
    links["building_id"] = links["building_id"].str.strip()
    links = links[links["building_id"].notna() & (links["building_id"] != "")]
    return links.drop_duplicates("building_id").reset_index(drop=True)


def building_status(buildings: pd.DataFrame, candidate_ids=None, *, min_candidate_kwp: float) -> np.ndarray:
    """Status code of each building (index into :data:`STATUSES`).

    Has PV (``has_pv``) wins; then a roof without usable area is unsuitable; then
    a building of a candidate project is a candidate; any other roof with capacity
    is below the minimum project size.

    Parameters
    ----------
    buildings : DataFrame
        ``usable_area_m2`` [m²], ``capacity_kwp`` [kWp], ``building_id``; ``has_pv``
        (bool) when the run has an installed-PV registry.
    candidate_ids : array-like of str, optional
        Building ids of the candidate projects. Without it, a roof without PV is a
        candidate when its capacity reaches ``min_candidate_kwp``.
    min_candidate_kwp : float
        Smallest candidate project [kWp] (config ``economics.min_candidate_kwp``).

    Returns
    -------
    numpy.ndarray of int8
    """
    n = len(buildings)
    usable_m2 = pd.to_numeric(buildings["usable_area_m2"], errors="coerce").fillna(0.0).to_numpy()
    capacity_kwp = pd.to_numeric(buildings["capacity_kwp"], errors="coerce").fillna(0.0).to_numpy()
    if "has_pv" in buildings:
        has_pv = buildings["has_pv"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    else:
        has_pv = np.zeros(n, dtype=bool)
    if candidate_ids is not None:
        is_candidate = buildings["building_id"].astype("string").isin(pd.Index(candidate_ids).astype("string")).to_numpy(dtype=bool)
    else:
        is_candidate = capacity_kwp >= min_candidate_kwp
    status = np.select([has_pv, usable_m2 <= 0, is_candidate, capacity_kwp > 0],
                       [HAS_PV, UNSUITABLE, CANDIDATE, BELOW_MIN], default=UNSUITABLE)
    return status.astype(np.int8)


def drawn_geometries(geoms, tolerance_deg: float, digits: int, gcj02: bool = False) -> np.ndarray:
    """Geometry as drawn: simplified, shifted to GCJ-02 when asked, coordinates rounded.

    Parameters
    ----------
    geoms : array-like of shapely geometries [WGS84 lon/lat]
    tolerance_deg : float
        Douglas–Peucker tolerance [°]; 0 keeps every vertex.
    digits : int
        Decimal places kept in the drawn coordinates [°].
    gcj02 : bool
        Shift WGS84 → GCJ-02 (for Gaode tiles). The input is never modified.

    Returns
    -------
    numpy.ndarray of shapely geometries
    """
    out = np.asarray(geoms, dtype=object)
    if tolerance_deg > 0:
        simplified = shapely.simplify(out, tolerance_deg, preserve_topology=True)
        # a sliver may vanish when simplified: keep its original outline then
        out = np.where(shapely.is_empty(simplified) & ~shapely.is_empty(out), out, simplified)
    if gcj02:
        out = transform_geometries(out, wgs84_to_gcj02)
    return shapely.transform(out, lambda xy: np.round(xy, digits))


def drawn_points(lon_deg, lat_deg, digits: int, gcj02: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Point coordinates as drawn [°]: shifted to GCJ-02 when asked, rounded."""
    lon = np.asarray(lon_deg, dtype=float)
    lat = np.asarray(lat_deg, dtype=float)
    if gcj02:
        lon, lat = wgs84_to_gcj02(lon, lat)
    return np.round(lon, digits), np.round(lat, digits)


def rounded(values, digits: int):
    """Numbers rounded to ``digits`` for the page; whole numbers become nullable integers
    so that the JSON carries no '.0' (NaN and ±inf become null)."""
    values = np.round(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float), digits)
    values[~np.isfinite(values)] = np.nan
    return values if digits > 0 else pd.array(values, dtype="Int64")


def html_safe_json(text: str) -> str:
    """Make JSON text safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` left)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def feature_collection_json(geoms, properties: pd.DataFrame) -> str:
    """Compact GeoJSON FeatureCollection text, built without a Python loop over features.

    Parameters
    ----------
    geoms : array-like of shapely geometries
        Already as drawn (see :func:`drawn_geometries`).
    properties : DataFrame
        One row per geometry; NaN becomes null. Text must already be escaped.

    Returns
    -------
    str
        HTML-safe JSON (see :func:`html_safe_json`).
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return '{"type":"FeatureCollection","features":[]}'
    geometry_json = pd.Series(shapely.to_geojson(geoms), dtype="object")
    props = properties.reset_index(drop=True)
    props_json = pd.Series(props.to_json(orient="records", lines=True, force_ascii=False,
                                         double_precision=6).rstrip("\n").split("\n"), dtype="object")
    features = '{"type":"Feature","geometry":' + geometry_json + ',"properties":' + props_json + "}"
    return html_safe_json('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}")


def park_file_name(park_id: str) -> str:
    """Stable HTML file name of a park's map: ``park-<id>.html`` (unsafe ids slugged
    with a short hash, :func:`pvsurvey.naming.safe_file_stem`)."""
    return f"park-{safe_file_stem(park_id)}.html"


def ratio_class(ratio, target, steps: int = 5) -> np.ndarray:
    """Stepped class of an installation ratio against its target.

    Classes 0..steps-1 cover fifths (for ``steps=5``) of the target, ``steps`` means
    the target is met, ``steps + 1`` means no data (NaN ratio or target).

    Parameters
    ----------
    ratio, target : array-like of float
        Installation ratio and target ratio [0..1].
    """
    r = np.asarray(ratio, dtype=float)
    t = np.asarray(target, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = r / t
        # the tiny offset keeps exact edges (0.3 / 0.5 = 3 fifths) out of float round-off
        cls = np.clip(np.floor(share * steps + 1e-9), 0, steps)
    return np.where(np.isfinite(share), cls, steps + 1).astype(int)
