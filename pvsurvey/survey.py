"""The pure survey of one partition of footprints.

:func:`clean_footprints` turns raw rows into accepted buildings (WGS84, canonical
columns, stable ids) and rejected rows with a reason; :func:`survey_buildings`
adds the park, the roof model, the GHI under the roof and the yield. Neither
touches a file: the raster values come in as an array.
"""

from __future__ import annotations

import functools

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from .columns import BUILDING_COLUMNS, ID_SOURCES, REJECTED_COLUMNS
from .coords import utm_epsg
from .energy import SpecificYieldTable
from .params import SurveyConfig
from .roof import (buffered_area_m2, capacity_kwp, closed_form_inset, roof_from_areas, simple_polygon_rings,
                   sunny_side_azimuth_deg)

# Reason codes of rejected rows (the README lists them with what the user sees).
REASONS = {
    "null_geometry": "no geometry",
    "unparsable_geometry": "geometry could not be parsed",
    "empty_geometry": "empty geometry",
    "not_polygon": "geometry is not a polygon",
    "coordinates_out_of_range": "coordinates outside -180..180 / -90..90 after reprojection to WGS84 (wrong CRS?)",
    "invalid_geometry": "invalid polygon that make_valid could not turn into a polygon",
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
}
FLAT_SHAPES = {"flat", "平屋顶", "平顶"}
PITCHED_SHAPES = {"gabled", "hipped", "pyramidal", "skillion", "gambrel", "mansard", "half-hipped",
                  "saltbox", "sawtooth", "round", "pitched", "坡屋顶"}


def _first(df: pd.DataFrame, names) -> pd.Series | None:
    for name in names:
        if name in df.columns:
            return df[name]
    return None


def _numeric(series: pd.Series | None, n: int) -> np.ndarray:
    if series is None:
        return np.full(n, np.nan)
    values = pd.to_numeric(series.astype("string").str.extract(r"(-?\d+\.?\d*)", expand=False), errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan)


def derived_ids(lon, lat) -> np.ndarray:
    """Stable ids from centroids: 'g' + the lon/lat quantised to 1e-6° (~0.1 m).

    Identical across reruns and partitionings; identical centroids (duplicated
    footprints) give identical ids, so they show up as duplicates.
    """
    qx = np.round((np.asarray(lon) + 180.0) * 1e6).astype(np.int64)
    qy = np.round((np.asarray(lat) + 90.0) * 1e6).astype(np.int64)
    return ("g" + pd.Series(qx * 200_000_000 + qy).astype(str)).to_numpy(dtype=object)


def _rejected(frame: pd.DataFrame, ids, reason: str, source_file: str) -> pd.DataFrame:
    return pd.DataFrame({
        "source_file": source_file,
        "source_row": frame["source_row"].to_numpy(dtype=np.int64),
        "building_id": pd.array(ids, dtype="string"),
        "reason": reason,
        "message": REASONS[reason],
    }, columns=REJECTED_COLUMNS)


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


def clean_footprints(raw: gpd.GeoDataFrame, source_file: str, id_column: str | None = None,
                     duplicate_rows: np.ndarray | None = None):
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
    reason[pd.isna(geoms)] = "null_geometry"
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
    box = shapely.bounds(np.where(has, geoms, None))
    in_range = np.isfinite(box).all(axis=1) & (box[:, 0] >= -180) & (box[:, 2] <= 180) & \
        (box[:, 1] >= -90) & (box[:, 3] <= 90)
    reason[has & ~in_range] = "coordinates_out_of_range"
    has &= in_range
    invalid = has & ~shapely.is_valid(np.where(has, geoms, None))
    repaired = 0
    if invalid.any():
        fixed = _make_valid(geoms[invalid])
        # keep only polygonal parts of what make_valid returns (collections may carry lines)
        parts, index = shapely.get_parts(fixed, return_index=True)
        poly = np.isin(shapely.get_type_id(parts), (3, 6))
        merged = np.full(invalid.sum(), None, dtype=object)
        if poly.any():
            grouped = pd.Series(parts[poly]).groupby(index[poly]).agg(lambda s: shapely.union_all(s.to_numpy()))
            merged[grouped.index.to_numpy()] = grouped.to_numpy()
        ok = ~pd.isna(merged)
        ok[ok] = ~shapely.is_empty(merged[ok]) & (shapely.area(merged[ok]) > 0)
        idx = np.flatnonzero(invalid)
        geoms[idx[ok]] = merged[ok]
        reason[idx[~ok]] = "invalid_geometry"
        repaired = int(ok.sum())
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
    dup = has & pd.Series(ids).where(has).duplicated().to_numpy() & ~pd.isna(ids)
    if duplicate_rows is not None and len(duplicate_rows):
        dup |= has & np.isin(raw["source_row"].to_numpy(), duplicate_rows)
    reason[dup] = "duplicate_id"
    has &= ~dup

    rejected = [_rejected(raw.iloc[np.flatnonzero(reason == code)], ids[reason == code], code, source_file)
                for code in REASONS if (reason == code).any()]
    keep = np.flatnonzero(has)
    accepted = gpd.GeoDataFrame({
        "building_id": pd.array(ids[keep], dtype="string"),
        "source_row": raw["source_row"].to_numpy(dtype=np.int64)[keep],
    }, geometry=geoms[keep], crs=raw.crs)
    for col, names in ATTRIBUTE_SOURCES.items():
        src = _first(raw, names)
        if col in ("height_m", "levels", "roof_angle_deg"):
            values = _numeric(src, n)[keep]
            accepted[col] = np.where(values > 0, values, np.nan)  # MS footprints use -1 for unknown
        else:
            accepted[col] = (src.astype("string").to_numpy(dtype=object, na_value=None)[keep]
                             if src is not None else None)
            accepted[col] = accepted[col].astype("string")
    accepted["lon"] = lon[keep]
    accepted["lat"] = lat[keep]
    rejected_df = pd.concat(rejected, ignore_index=True) if rejected else _rejected(raw.iloc[:0], [], "null_geometry", source_file)
    return accepted, rejected_df, {"repaired": repaired}


@functools.lru_cache(maxsize=64)
def _to_utm(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


def metric_geometries(geoms_wgs84, lon, lat) -> np.ndarray:
    """Project each geometry to the UTM zone of its own centroid (metres)."""
    geoms_wgs84 = np.asarray(geoms_wgs84, dtype=object)
    epsg = utm_epsg(lon, lat)
    out = np.empty(len(geoms_wgs84), dtype=object)
    for code in np.unique(epsg):  # a handful of zones, never one call per building
        sel = epsg == code
        out[sel] = gpd.GeoSeries(geoms_wgs84[sel], crs=4326).to_crs(int(code)).values
    return out


def roof_areas_m2(geoms_wgs84, lon, lat, setback_m: float, pitched):
    """Footprint area, set-back area [m²] and sunny-side azimuth [°] of each roof.

    Every roof is measured in the UTM zone of its own centroid (scale error
    < 0.1 % inside a zone), so results do not depend on where it is or how the
    input was partitioned. Convex single-ring footprints are measured straight
    from their projected vertices (:func:`pvsurvey.roof.closed_form_inset`);
    only the rest, and pitched roofs (for their orientation), are rebuilt as
    metric geometries.
    """
    geoms_wgs84 = np.asarray(geoms_wgs84, dtype=object)
    n = len(geoms_wgs84)
    footprint = np.zeros(n)
    inset = np.zeros(n)
    exact = np.zeros(n, dtype=bool)
    epsg = utm_epsg(lon, lat)
    index, xy, counts = simple_polygon_rings(geoms_wgs84)
    if len(index):
        zone_of_vertex = np.repeat(epsg[index], counts)
        xy_m = np.empty_like(xy)
        for code in np.unique(zone_of_vertex):
            sel = zone_of_vertex == code
            xy_m[sel, 0], xy_m[sel, 1] = _to_utm(int(code)).transform(xy[sel, 0], xy[sel, 1])
        area, shrunk, ok = closed_form_inset(xy_m, counts, setback_m)
        footprint[index] = area
        inset[index[ok]] = shrunk[ok]
        exact[index[ok]] = True
    pitched = np.asarray(pitched, dtype=bool)
    azimuth = np.full(n, np.nan)
    rebuild = ~exact | pitched
    if rebuild.any():
        geoms_m = metric_geometries(geoms_wgs84[rebuild], lon[rebuild], lat[rebuild])
        rest = ~exact[rebuild]
        footprint[np.flatnonzero(rebuild)[rest]] = shapely.area(geoms_m[rest])
        inset[np.flatnonzero(rebuild)[rest]] = buffered_area_m2(geoms_m[rest], setback_m)
        sel = pitched[rebuild]
        azimuth[np.flatnonzero(rebuild)[sel]] = sunny_side_azimuth_deg(geoms_m[sel])
    return footprint, inset, azimuth


def assign_parks(lon, lat, parks: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """Park id, name and district of the park containing each point (WGS84)."""
    n = len(lon)
    out = pd.DataFrame({"park_id": pd.array([None] * n, dtype="string"),
                        "park_name": pd.array([None] * n, dtype="string"),
                        "district": pd.array([None] * n, dtype="string")})
    if parks is None or len(parks) == 0 or n == 0:
        return out
    points = shapely.points(lon, lat)
    point_idx, park_idx = shapely.STRtree(parks.geometry.values).query(points, predicate="within")
    first = pd.Series(park_idx, index=point_idx).groupby(level=0).min()  # overlapping parks: lowest row wins
    for col in ("park_id", "park_name", "district"):
        values = parks[col].astype("string").to_numpy(dtype=object, na_value=None)
        out.loc[first.index.to_numpy(), col] = values[first.to_numpy()]
    return out


def survey_buildings(buildings: gpd.GeoDataFrame, ghi_kwh_per_m2_yr: np.ndarray, outside_raster: np.ndarray,
                     parks: gpd.GeoDataFrame | None, config: SurveyConfig,
                     yield_table: SpecificYieldTable, source_file: str):
    """Survey cleaned buildings: park, roof, capacity, irradiance and yield.

    Parameters
    ----------
    buildings : GeoDataFrame
        Output of :func:`clean_footprints` (WGS84, with ``lon``/``lat``).
    ghi_kwh_per_m2_yr : numpy.ndarray
        Raster GHI under each building [kWh/m²/yr], NaN for nodata/outside.
    outside_raster : numpy.ndarray of bool
        True where the building lies outside the raster.
    parks : GeoDataFrame or None
        Park polygons (WGS84) with ``park_id``, ``park_name``, ``district``.

    Returns
    -------
    accepted : GeoDataFrame
        One row per surveyed building, columns of ``BUILDING_COLUMNS`` + geometry.
    rejected : DataFrame
        Rows dropped here (size limits, no irradiance).
    """
    roof = config.roof
    lon = buildings["lon"].to_numpy()
    lat = buildings["lat"].to_numpy()
    shape_src = buildings["roof_shape_src"].astype("string").str.lower()
    shape = np.where(shape_src.isin(PITCHED_SHAPES).to_numpy(dtype=bool), "pitched",
                     np.where(shape_src.isin(FLAT_SHAPES).to_numpy(dtype=bool), "flat", roof.default_shape))
    footprint, inset, pitched_azimuth = roof_areas_m2(buildings.geometry.values, lon, lat, roof.setback_m,
                                                      shape == "pitched")

    reason = np.full(len(buildings), None, dtype=object)
    reason[footprint < roof.min_footprint_area_m2] = "too_small"
    reason[footprint > roof.max_footprint_area_m2] = "too_large"
    reason[~np.isfinite(footprint) | ~np.isfinite(inset)] = "unmeasurable"
    ghi = np.asarray(ghi_kwh_per_m2_yr, dtype=float)
    reason[(reason == None) & outside_raster] = "outside_raster"  # noqa: E711
    reason[(reason == None) & ~np.isfinite(ghi)] = "no_irradiance"  # noqa: E711
    ok = reason == None  # noqa: E711
    rejected = [_rejected(buildings[reason == code], buildings["building_id"].to_numpy()[reason == code],
                          code, source_file) for code in REASONS if (reason == code).any()]

    b = buildings[ok]
    ghi, lon, lat, shape = ghi[ok], lon[ok], lat[ok], shape[ok]
    r = roof_from_areas(footprint[ok], inset[ok], shape, b["roof_angle_deg"].to_numpy(dtype=float), lat,
                        pitched_azimuth[ok], roof)
    cap = capacity_kwp(r["usable_area_m2"], r["coverage_frac"], config.system.module_power_density_kwp_per_m2)
    mount = np.where(shape == "pitched", "flush", "rack")
    sy, cell = yield_table.lookup(lat, lon, ghi, r["surface_tilt_deg"], r["surface_azimuth_deg"], mount)

    b = pd.concat([b.reset_index(drop=True), assign_parks(lon, lat, parks)], axis=1)
    b["roof_shape"] = pd.array(shape, dtype="string")
    for key, values in r.items():
        b[key] = values
    b["capacity_kwp"] = cap
    b["weather_cell"] = pd.array(cell, dtype="string")
    b["ghi_kwh_per_m2_yr"] = ghi
    b["specific_yield_kwh_per_kwp"] = sy
    b["annual_yield_kwh"] = cap * sy
    accepted = gpd.GeoDataFrame(b[BUILDING_COLUMNS], geometry=b.geometry.values, crs=buildings.crs)
    rejected_df = pd.concat(rejected, ignore_index=True) if rejected else None
    return accepted, rejected_df


def summarise(accepted: pd.DataFrame, by: str) -> pd.DataFrame:
    """Sums per ``by`` (park_id or district) of counts, areas, capacity and yield.

    Partition summaries add up, so a whole survey's totals never need every
    building in memory.
    """
    keys = accepted[by].astype("string").fillna("")
    frame = pd.DataFrame({
        by: keys,
        "building_count": 1,
        "usable_building_count": (accepted["usable_area_m2"] > 0).astype(int),
        "footprint_area_m2": accepted["footprint_area_m2"],
        "usable_area_m2": accepted["usable_area_m2"],
        "capacity_kwp": accepted["capacity_kwp"],
        "annual_yield_kwh": accepted["annual_yield_kwh"],
    })
    return frame.groupby(by, sort=True).sum()
