"""Footprint cleaning: raw rows in, accepted buildings (WGS84, canonical columns,
stable ids) and rejected rows with a reason out. Touches no file.
"""

from __future__ import annotations



import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from ..columns import ID_SOURCES, REJECTED_COLUMNS


# Column a reader adds where a row's geometry was there but GEOS could not build it
# (GEOS's message, pvsurvey.io.geometries); the row is rejected with that detail.
GEOMETRY_PROBLEM = "_geometry_problem"
# a reader's problem text for a CSV row with more fields than the header (pvsurvey.io.csv_rows)
MALFORMED_ROW_PROBLEM = "fields where the header has"

# Reason codes of rejected rows (the README lists them with what the user sees).
REASONS = {
    "null_geometry": "no geometry",
    "unparsable_geometry": "geometry could not be parsed (not WKB/WKT)",
    "malformed_row": "a CSV row with more fields than the header (a value with an unquoted comma?): its values "
                     "cannot be told apart",
    "empty_geometry": "empty geometry",
    "not_polygon": "geometry is not a polygon",
    "coordinates_out_of_range": "coordinates outside -180..180 / -90..90 after reprojection to WGS84 (wrong CRS?)",
    "invalid_geometry": "a polygon GEOS cannot build (e.g. a ring of fewer than 4 points, NaN coordinates) or that "
                        "make_valid could not turn into a polygon",
    "duplicate_id": "building id already seen in this input",
    "unmeasurable": "area not computable in the roof's UTM zone (the shape spans far too wide)",
    "too_small": "footprint smaller than roof.min_footprint_area_m2",
    "too_large": "footprint larger than roof.max_footprint_area_m2",
    "outside_raster": "footprint outside the irradiance raster",
    "no_irradiance": "irradiance raster has nodata under the footprint",
}

# Source attribute names mapped to canonical ones (first present wins).
ATTRIBUTE_SOURCES = {
    "name": ("name", "NAME", "Name", "building_name", "名称"),
    "owner": ("owner", "enterprise", "company", "operator", "企业名称", "业主"),
    "height_m": ("height_m", "height", "HEIGHT", "Height"),
    "levels": ("levels", "building:levels", "building_levels", "floors", "层数"),
    "roof_material": ("roof_material", "roof:material"),
    "roof_shape_src": ("roof_shape", "roof:shape"),
    "roof_angle_deg": ("roof_angle_deg", "roof_angle", "roof:angle"),
    "building_type": ("building", "building_type", "建筑类型"),
    # inputs of the hourly valuation (pvsurvey.model.tou)
    "annual_consumption_kwh": ("annual_consumption_kwh", "年用电量"),
    "grid_capacity_kw": ("grid_capacity_kw", "transformer_kva", "变压器容量"),
    "connection_voltage_kv": ("connection_voltage_kv", "接入电压"),
    "roof_year_text": ("roof_year", "built_year", "year_built", "construction_year", "start_date", "屋面年份", "建成年份"),
}
# Attributes also kept as the source's text, for pvsurvey.model.roof_construction
# to parse ("12m", "三层") and count what it cannot use.
KEEP_TEXT = ("height_m", "levels")


def text_array(values, n: int = 0):
    """A text column (pandas ``"string"``) from an array of ``str`` and ``None``, or ``n``
    missing values where ``values`` is None. Arrow builds it in one pass; pandas' own
    conversion checks every value in Python (4 ms per 50,000 missing values, and a task
    makes a dozen such columns: 2-4 % of a survey task, 2026-12-04). The same values and
    dtype as ``pandas.array(values, dtype="string")``."""
    if values is None:
        return pd.array(pa.nulls(n, pa.large_string()), dtype="string")
    return pd.array(pa.array(np.asarray(values, dtype=object), type=pa.large_string(), from_pandas=True),
                    dtype="string")


def _kept_text(src: pd.Series | None, keep: np.ndarray):
    """Source column ``src`` as text (pandas ``"string"``) at rows ``keep``; all missing without one."""
    if src is None:
        return text_array(None, len(keep))
    return src.astype("string").array.take(keep)


def _first(df: pd.DataFrame, names) -> pd.Series | None:
    for name in names:
        if name in df.columns:
            return df[name]
    return None


def _numeric(series: pd.Series | None, n: int) -> np.ndarray:
    if series is None:
        return np.full(n, np.nan)
    # the number in each distinct value's text: a column repeats a few dozen heights or storeys
    codes, distinct = pd.factorize(series, use_na_sentinel=True)
    values = pd.to_numeric(pd.Series(distinct).astype("string")
                           .str.extract(r"(-?\d+\.?\d*)", expand=False), errors="coerce")
    return np.append(values.to_numpy(dtype=float, na_value=np.nan), np.nan)[codes]


def derived_ids(lon, lat) -> np.ndarray:
    """Stable ids from centroids: 'g' + the lon/lat quantised to 1e-6° (~0.1 m).

    Identical across reruns and partitionings; identical centroids (duplicated
    footprints) give identical ids, so they show up as duplicates.
    """
    qx = np.round((np.asarray(lon) + 180.0) * 1e6).astype(np.int64)
    qy = np.round((np.asarray(lat) + 90.0) * 1e6).astype(np.int64)
    return ("g" + pd.Series(qx * 200_000_000 + qy).astype(str)).to_numpy(dtype=object)


def rejected_rows(frame: pd.DataFrame, ids, reason: str, source_file: str, details=None) -> pd.DataFrame:
    message = np.full(len(frame), REASONS[reason], dtype=object)
    if details is not None and len(details):  # GEOS's own words where it refused a row
        given = ~pd.isna(details)
        message[given] = [f"{REASONS[reason]}: {d}" for d in np.asarray(details, dtype=object)[given]]
    return pd.DataFrame({
        "source_file": source_file,
        "source_row": frame["source_row"].to_numpy(dtype=np.int64),
        "building_id": pd.array(ids, dtype="string"),
        "reason": reason,
        "message": message,
    }, columns=REJECTED_COLUMNS)


def _without_empty_parts(geom):
    """A polygon or multipolygon without its empty parts and empty holes (GEOS
    crashes buffering a polygon with an empty hole); an empty polygon when nothing is left."""
    polygons = []
    for part in shapely.get_parts(geom):
        if part.is_empty:
            continue
        polygons.append(shapely.Polygon(part.exterior, [ring for ring in part.interiors if not ring.is_empty]))
    if not polygons:
        return shapely.Polygon()
    return polygons[0] if shapely.get_type_id(geom) == 3 else shapely.MultiPolygon(polygons)


def _has_empty_parts(geoms: np.ndarray, type_id: np.ndarray) -> np.ndarray:
    """Polygons with an empty hole, multipolygons with an empty part or hole.

    Only polygons with holes and multipolygons of several parts (or whose one
    part has holes) are looked into: most footprints are neither, and taking
    every geometry apart would cost a quarter of a second per 50,000 roofs.
    """
    out = np.zeros(len(geoms), dtype=bool)
    if not len(geoms):
        return out
    multi = type_id == 6
    first = geoms.copy()
    first[multi] = shapely.get_geometry(geoms[multi], 0)
    look = np.flatnonzero((multi & (shapely.get_num_geometries(geoms) > 1)) |
                          (shapely.get_num_interior_rings(first) > 0))
    if not len(look):
        return out
    parts, index = shapely.get_parts(geoms[look], return_index=True)
    out[look[np.unique(index[shapely.is_empty(parts)])]] = True
    rings, ring_index = shapely.get_rings(parts, return_index=True)
    out[look[np.unique(index[ring_index[shapely.is_empty(rings)]])]] = True
    return out


def _union_parts(parts: np.ndarray):
    try:
        return shapely.union_all(parts)
    except shapely.errors.GEOSException:  # a topology GEOS cannot resolve: no polygon, the row is rejected
        return None


def _make_valid(geoms: np.ndarray) -> np.ndarray:
    """``shapely.make_valid`` that returns None where GEOS cannot repair a shape.

    GEOS raises on a few degenerate inputs (e.g. a collapsed shell with holes);
    one bad row must not sink its partition, so only then are the invalid
    geometries repaired one by one.
    """
    try:
        return shapely.make_valid(geoms)
    except shapely.errors.GEOSException:
        out = np.empty(len(geoms), dtype=object)
        for i, geom in enumerate(geoms):  # rare fallback over the invalid rows only
            try:
                out[i] = shapely.make_valid(geom)
            except shapely.errors.GEOSException:
                out[i] = None
        return out


def _nan_rows(geoms: np.ndarray) -> np.ndarray:
    out = np.zeros(len(geoms), dtype=bool)
    if len(geoms):
        coords, index = shapely.get_coordinates(geoms, return_index=True)
        out[np.unique(index[np.isnan(coords).any(axis=1)])] = True
    return out


def clean_footprints(raw: gpd.GeoDataFrame, source_file: str, id_column: str | None = None,
                     duplicate_rows: np.ndarray | None = None, groups: np.ndarray | None = None):
    """Validate and normalise raw footprint rows (WGS84).

    Drops Z/M, repairs invalid polygons with ``make_valid`` (keeping the
    polygonal parts), gives every row an id and canonical attribute columns.

    Parameters
    ----------
    raw : GeoDataFrame
        Rows as read, in WGS84, with ``source_row``.
    source_file : str
        Path reported in rejected rows.
    id_column : str, optional
        Column of the source's ids (default: the first of ``ID_SOURCES``).
    duplicate_rows : numpy.ndarray of int, optional
        Source rows known (from a scan of the whole file's ids) to repeat an
        earlier row's id; they are rejected as ``duplicate_id``.
    groups : numpy.ndarray, optional
        Rows of several partitions cleaned together (the edge strips of a task's
        neighbours): an id repeated within the rows is a duplicate only within its
        group, as each partition's own task finds it.

    Returns
    -------
    accepted : GeoDataFrame
        ``building_id``, ``source_row``, canonical attributes, geometry (WGS84).
    rejected : DataFrame
        ``source_file``, ``source_row``, ``building_id``, ``reason``, ``message``.
    stats : dict
        ``repaired``: invalid polygons made valid.
    """
    geoms = np.asarray(raw.geometry.values, dtype=object)
    n = len(geoms)
    id_src = raw[id_column] if id_column and id_column in raw.columns else _first(raw, ID_SOURCES)
    src_ids = (id_src.astype("string").to_numpy(dtype=object, na_value=None) if id_src is not None
               else np.full(n, None, dtype=object))

    reason = np.full(n, None, dtype=object)
    details = np.full(n, None, dtype=object)
    reason[pd.isna(geoms)] = "null_geometry"
    if GEOMETRY_PROBLEM in raw.columns:  # there, but GEOS could not build it (the reader kept GEOS's message)
        problem = raw[GEOMETRY_PROBLEM].to_numpy(dtype=object)
        refused = np.flatnonzero(~pd.isna(problem))
        details[refused] = problem[refused]
        reason[refused] = ["unparsable_geometry" if "ParseException" in str(p) else
                           "malformed_row" if MALFORMED_ROW_PROBLEM in str(p) else "invalid_geometry"
                           for p in problem[refused]]
    has = reason == None  # noqa: E711 (elementwise)
    geoms = geoms.copy()
    if shapely.has_z(geoms[has]).any():  # 3D/measured input: areas are planar, drop Z
        geoms[has] = shapely.force_2d(geoms[has])
    empty = has & shapely.is_empty(np.where(has, geoms, None))
    reason[empty] = "empty_geometry"
    has &= ~empty
    type_id = shapely.get_type_id(np.where(has, geoms, None))
    reason[has & ~np.isin(type_id, (3, 6))] = "not_polygon"
    has &= np.isin(type_id, (3, 6))
    hollow = np.flatnonzero(has)[_has_empty_parts(geoms[has], type_id[has])]
    repaired = 0
    if len(hollow):  # empty parts or holes (an OSM relation's missing ring): dropped, the rest kept
        geoms[hollow] = [_without_empty_parts(g) for g in geoms[hollow]]
        emptied = hollow[shapely.is_empty(geoms[hollow])]
        reason[emptied] = "empty_geometry"
        has[emptied] = False
        repaired += len(hollow) - len(emptied)
    box = shapely.bounds(np.where(has, geoms, None))
    in_range = np.isfinite(box).all(axis=1) & (box[:, 0] >= -180) & (box[:, 2] <= 180) & \
        (box[:, 1] >= -90) & (box[:, 3] <= 90)
    reason[has & ~in_range] = "coordinates_out_of_range"
    has &= in_range
    invalid = has & ~shapely.is_valid(np.where(has, geoms, None))
    if invalid.any():  # NaN coordinates (GEOS's bounds skip them) make a shape invalid, and nothing can repair them
        nan = np.flatnonzero(invalid)[_nan_rows(geoms[invalid])]
        reason[nan], details[nan] = "invalid_geometry", "NaN coordinates"
        has[nan] = invalid[nan] = False
    if invalid.any():
        fixed = _make_valid(geoms[invalid])
        # keep only polygonal parts of what make_valid returns (collections may carry lines)
        parts, index = shapely.get_parts(fixed, return_index=True)
        poly = np.isin(shapely.get_type_id(parts), (3, 6))
        merged = np.full(invalid.sum(), None, dtype=object)
        if poly.any():
            grouped = pd.Series(parts[poly]).groupby(index[poly]).agg(lambda s: _union_parts(s.to_numpy()))
            merged[grouped.index.to_numpy()] = grouped.to_numpy()
        ok = ~pd.isna(merged)
        ok[ok] = ~shapely.is_empty(merged[ok]) & (shapely.area(merged[ok]) > 0)
        idx = np.flatnonzero(invalid)
        geoms[idx[ok]] = merged[ok]
        reason[idx[~ok]] = "invalid_geometry"
        repaired += int(ok.sum())
        has[idx[~ok]] = False

    # single-part multipolygons (OSM, many GIS exports) become plain polygons: the fast roof path takes them
    single = has & (shapely.get_type_id(np.where(has, geoms, None)) == 6) & \
        (shapely.get_num_geometries(np.where(has, geoms, None)) == 1)
    if single.any():
        geoms[single] = shapely.get_geometry(geoms[single], 0)
    centroid = shapely.centroid(np.where(has, geoms, None))
    lon, lat = shapely.get_x(centroid), shapely.get_y(centroid)
    ids = np.where(pd.isna(src_ids), None, src_ids)
    missing = has & pd.isna(ids)
    if missing.any():
        ids[missing] = derived_ids(lon[missing], lat[missing])
    key = pd.DataFrame({"id": pd.Series(ids).where(has)}) if groups is None else \
        pd.DataFrame({"group": np.asarray(groups), "id": pd.Series(ids).where(has)})
    dup = has & key.duplicated().to_numpy() & ~pd.isna(ids)
    if duplicate_rows is not None and len(duplicate_rows):
        dup |= has & np.isin(raw["source_row"].to_numpy(), duplicate_rows)
    reason[dup] = "duplicate_id"
    has &= ~dup

    rejected = [rejected_rows(raw.iloc[np.flatnonzero(reason == code)], ids[reason == code], code, source_file,
                          details[reason == code])
                for code in REASONS if (reason == code).any()]
    keep = np.flatnonzero(has)
    accepted = gpd.GeoDataFrame({
        "building_id": text_array(ids[keep]),
        "source_row": raw["source_row"].to_numpy(dtype=np.int64)[keep],
    }, geometry=geoms[keep], crs=raw.crs)
    for col, names in ATTRIBUTE_SOURCES.items():
        src = _first(raw, names)
        if col in ("height_m", "levels", "roof_angle_deg", "annual_consumption_kwh", "grid_capacity_kw",
                   "connection_voltage_kv"):
            values = _numeric(src, n)[keep]
            accepted[col] = np.where(values > 0, values, np.nan)  # MS footprints use -1 for unknown
            if col in KEEP_TEXT:
                accepted[col + "_text"] = _kept_text(src, keep)
        else:
            accepted[col] = _kept_text(src, keep)
    accepted["lon"] = lon[keep]
    accepted["lat"] = lat[keep]
    rejected_df = pd.concat(rejected, ignore_index=True) if rejected else rejected_rows(raw.iloc[:0], [], "null_geometry", source_file)
    return accepted, rejected_df, {"repaired": repaired}
