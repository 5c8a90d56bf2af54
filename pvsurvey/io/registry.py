"""The installed-PV registry: one row per grid-connected, under-construction or
planned system, read from CSV, GeoPackage or GeoParquet and normalised.

Located by ``building_id``, by ``lon``/``lat`` (WGS84, or the coordinate system
declared in the config), or by the polygon of the array (the file's geometry,
or a WKT ``geometry`` column in CSV). Row-level problems never stop the run:
the row keeps a ``reject_reason`` and is reported, not dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from ..coords import gcj02_to_wgs84
from ..errors import InputFileError
from ..config.schema import VectorSource
from .storage import is_file, local_copy
from ..locations import location
from .crs import declared_crs, is_gcj02
from .encoding import text_file_encoding
from ..model.footprints import GEOMETRY_PROBLEM
from .geometries import decode_geometries
from .fields import CAPACITY_TO_KWP, geometry_column, numbers, parse_dates, plan_columns
from .csv_rows import file_text, read_rows_setting_aside_malformed, refuse_unclosed_quote
from .vector import WGS84, read_vector, vector_format

log = logging.getLogger(__name__)

REQUIRED = ("capacity_kwp", "commissioned_on", "status")
# A larger capacity [kWp] is a typing or unit error, not one rooftop system: 1 GWp of modules at
# about 0.2 kWp/m² (21 % efficient modules at 1 kW/m²) covers some 5 km², several times the roof
# of the largest factory buildings (Boeing's Everett plant covers about 0.4 km²).
MAX_ROOFTOP_KWP = 1_000_000.0
# Accepted spellings of the statuses (registries are typed by hand, in Chinese too).
STATUS_ALIASES = {
    "connected": "connected", "grid_connected": "connected", "grid-connected": "connected", "operating": "connected",
    "并网": "connected", "已并网": "connected", "已建成": "connected", "並網": "connected", "已並網": "connected",
    "并网运行": "connected", "已投运": "connected", "投运": "connected", "运行": "connected", "运行中": "connected",
    "在运": "connected",
    "under_construction": "under_construction", "under construction": "under_construction",
    "construction": "under_construction", "在建": "under_construction", "建设中": "under_construction",
    "施工中": "under_construction", "在建中": "under_construction", "建設中": "under_construction",
    "planned": "planned", "plan": "planned", "规划": "planned", "计划": "planned", "拟建": "planned",
    "規劃": "planned", "計劃": "planned", "擬建": "planned", "备案": "planned", "已备案": "planned",
}


def read_registry(source: VectorSource) -> pd.DataFrame:
    """Read and normalise the registry.

    Returns
    -------
    DataFrame
        ``registry_row`` (0-based row of the file), ``registry_id``,
        ``building_id`` (NA when absent), ``lon``, ``lat`` [° WGS84] (NaN when
        absent), ``array_geometry`` (shapely polygon in WGS84 or None),
        ``capacity_kwp`` [kWp], ``commissioned_on`` (date or NaT), ``status``,
        ``name``, ``reject_reason`` (NA when the row is usable), and
        ``metered_kwh_per_yr`` [kWh/yr] where the file has it (NaN where blank,
        zero, infinite or unreadable: that system is not compared, the row
        still counts). A CSV row with more fields than the header keeps its
        ``registry_row`` with the reason ``malformed_row`` and no values.

    Raises
    ------
    InputFileError
        Missing or empty file, a CSV quote never closed, or required columns
        missing.
    """
    path = location(source.path)
    if not is_file(path):
        raise InputFileError(f"installations file not found: {path} (check 'installations' in the config)")
    with local_copy(path) as local:
        return _read_registry(local, source)


def _read_registry(path: Path, source: VectorSource) -> pd.DataFrame:
    kind = vector_format(path)
    if kind == "csv":
        encoding = text_file_encoding(path, source.encoding, "installations")
        frame, malformed = _read_csv_rows(path, encoding)
        geometry = refused = None
        wkt_column = geometry_column(source) or ("geometry" if "geometry" in frame.columns else None)
        if wkt_column is not None:
            if wkt_column not in frame.columns:
                raise InputFileError(f"{path}: no column '{wkt_column}' (installations.columns.geometry in the config)")
            wkt = frame.pop(wkt_column)
            geometry, refused = decode_geometries(wkt.astype(object).where(wkt.notna(), None).to_numpy(),
                                                  shapely.from_wkt)
    else:
        gdf = read_vector(path, source.crs, source.layer, what="installations", encoding=source.encoding)
        malformed = np.zeros(len(gdf), dtype=bool)
        refused = gdf[GEOMETRY_PROBLEM].to_numpy(dtype=object) if GEOMETRY_PROBLEM in gdf else None
        frame = pd.DataFrame(gdf.drop(columns=[gdf.geometry.name, "source_row", GEOMETRY_PROBLEM], errors="ignore"))
        geometry = np.asarray(gdf.geometry.values, dtype=object)
    plan = plan_columns(frame.columns, source, "installations", path)
    frame = plan.apply(frame)
    missing = [c for c in REQUIRED if c not in frame.columns]
    has_locator = "building_id" in frame.columns or {"lon", "lat"} <= set(frame.columns) or geometry is not None
    if missing or not has_locator:
        need = ", ".join(missing) if missing else "building_id, or lon and lat, or a geometry"
        raise InputFileError(f"{path}: the installations registry needs the columns capacity_kwp, commissioned_on, "
                             f"status and a location (building_id, lon/lat or geometry); missing {need} "
                             f"(found: {', '.join(map(str, frame.columns))}); map the file's own names in the config, "
                             f"e.g. 'installations: {{columns: {{{(missing or ['building_id'])[0]}: <its header>}}}}'"
                             + (", with 'units: {capacity: MW}' where it is not in kWp" if "capacity_kwp" in missing
                                else ""))
    n = len(frame)
    out = pd.DataFrame({"registry_row": np.arange(n, dtype=np.int64)})
    id_col = next((c for c in ("registry_id", "project_id", "id") if c in frame.columns), None)
    out["registry_id"] = (frame[id_col].astype("string") if id_col else
                          pd.Series(np.arange(1, n + 1), dtype="string").radd("R"))
    out["building_id"] = (frame["building_id"].astype("string").str.strip().replace("", pd.NA)
                          if "building_id" in frame.columns else pd.Series(pd.NA, index=out.index, dtype="string"))
    name_col = next((c for c in ("name", "owner", "enterprise") if c in frame.columns), None)
    out["name"] = frame[name_col].astype("string") if name_col else pd.Series(pd.NA, index=out.index, dtype="string")
    # row-level problems: codes of pvsurvey.model.registry_matching.REGISTRY_REASONS
    reason = pd.Series(pd.NA, index=out.index, dtype="string")

    def flag(mask, code):
        reason[mask & reason.isna()] = code

    flag(pd.Series(malformed, index=out.index), "malformed_row")  # first: its values are not its own
    capacity = numbers(frame["capacity_kwp"]) * CAPACITY_TO_KWP[plan.units["capacity"]]
    out["capacity_kwp"] = capacity.astype(float)
    flag(~(capacity > 0) | ~np.isfinite(capacity), "invalid_capacity")  # 'inf', '3e400' (inf as a float)
    flag(capacity > MAX_ROOFTOP_KWP, "implausible_capacity")
    raw_date = frame["commissioned_on"]
    date = parse_dates(raw_date)
    given_date = raw_date.astype("string").str.strip().replace("", pd.NA).notna()
    out["commissioned_on"] = date.dt.date.where(date.notna(), None)
    flag(given_date & date.isna(), "invalid_date")
    status = frame["status"].astype("string").str.strip().str.lower().map(STATUS_ALIASES)
    out["status"] = status.astype("string")
    flag(status.isna(), "unknown_status")
    flag((status == "connected") & date.isna(), "connected_without_date")

    blank = pd.Series(pd.NA, index=frame.index, dtype="string")
    lon_raw, lat_raw = frame.get("lon", blank), frame.get("lat", blank)
    lon = numbers(lon_raw).to_numpy(float, copy=True)
    lat = numbers(lat_raw).to_numpy(float, copy=True)
    if kind == "csv" and source.crs is not None and not is_gcj02(source.crs):
        crs = declared_crs(source.crs, path)  # lon/lat columns holding a projected CRS's x/y
        if not crs.equals(WGS84, ignore_axis_order=True):
            lon, lat = (np.asarray(v, dtype=float) for v in
                        Transformer.from_crs(crs, WGS84, always_xy=True).transform(lon, lat, errcheck=False))
    given = lon_raw.notna().to_numpy() | lat_raw.notna().to_numpy()
    bad = given & (~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90))
    flag(pd.Series(bad, index=out.index), "invalid_coordinates")
    lon[bad], lat[bad] = np.nan, np.nan
    if is_gcj02(source.crs) and kind == "csv":
        lon, lat = gcj02_to_wgs84(lon, lat)
    out["lon"], out["lat"] = lon, lat
    arrays = np.full(n, None, dtype=object)
    if geometry is not None:
        polygonal = np.isin(shapely.get_type_id(geometry), (3, 6))
        arrays[polygonal] = geometry[polygonal]
        points = shapely.get_type_id(geometry) == 0
        fill = points & ~np.isfinite(out["lon"].to_numpy())
        out.loc[fill, "lon"] = shapely.get_x(geometry[fill])
        out.loc[fill, "lat"] = shapely.get_y(geometry[fill])
    out["array_geometry"] = arrays
    if "metered_kwh_per_yr" in frame.columns:  # optional: what 'pvsurvey validate' compares against
        metered = numbers(frame["metered_kwh_per_yr"]).astype(float)
        # blank, zero, unreadable or infinite: not metered
        out["metered_kwh_per_yr"] = metered.where((metered > 0) & np.isfinite(metered))
    if refused is not None:  # a polygon GEOS could not build, and nothing else locates the row
        unlocated = out["building_id"].isna().to_numpy() & ~np.isfinite(out["lon"].to_numpy())
        flag(pd.Series(~pd.isna(refused) & unlocated, index=out.index), "invalid_geometry")
    # a row repeated to the last value (a sheet pasted twice) would count its capacity twice
    values = frame.astype("string").assign(_geometry=shapely.to_wkb(geometry, hex=True) if geometry is not None else "")
    flag(values.duplicated(keep="first") & ~pd.Series(malformed, index=out.index), "duplicate_row")
    usable = out["registry_id"][reason.isna()]
    repeated = usable[usable.duplicated(keep=False)].dropna().unique()
    if id_col and len(repeated):  # different rows under one id: each counts (phases of one project?), but say so
        log.warning("%s: %d registry id(s) name several rows with different values (e.g. %s); each row counts, "
                    "check them for double entries", path, len(repeated), ", ".join(map(str, repeated[:5])))
    out["reject_reason"] = reason
    return out


def _read_csv_rows(path: Path, encoding: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The registry CSV as text columns, and which of its rows are malformed.

    Parameters
    ----------
    path : Path
        The local CSV file (compressed or not).
    encoding : str
        Its text encoding.

    Returns
    -------
    frame : DataFrame
        One row per non-blank row of the file after the header, every value
        text or NaN (blank); a row with fewer fields than the header is padded
        with NaN, a row with more has NaN in every column.
    malformed : numpy.ndarray of bool
        The rows with more fields than the header.

    Raises
    ------
    InputFileError
        The file is empty, or a quote opens and never closes.
    """
    opts = dict(dtype=str, keep_default_na=False, na_values=[""], encoding=encoding)
    try:
        frame = pd.read_csv(path, **opts)
    except pd.errors.EmptyDataError:
        raise InputFileError(f"{path}: the installations file is empty (no header row); export the registry again "
                             f"with its header line (capacity_kwp, commissioned_on, status and building_id or "
                             f"lon/lat), or remove 'installations' from the config") from None
    except pd.errors.ParserError as exc:  # a row with more fields than the header, or a quote never closed
        frame, problem = None, str(exc)
    # pandas also reads a FIRST row with more fields without an error, taking its extra leading
    # fields for an index and shifting every row by them: that too is split here
    if frame is not None and isinstance(frame.index, pd.RangeIndex):
        return frame, np.zeros(len(frame), dtype=bool)
    text = file_text(path, encoding)
    refuse_unclosed_quote(path, text, None if frame is not None else problem)
    opts.pop("encoding")
    frame, malformed, _ = read_rows_setting_aside_malformed(text, opts)
    return frame, malformed


def usable_rows(registry: pd.DataFrame) -> pd.DataFrame:
    """The rows that can be matched (no row-level problem), for the survey tasks."""
    return registry[registry["reject_reason"].isna()][["registry_row", "building_id", "lon", "lat", "array_geometry"]]
