"""The pure survey of one partition's buildings: the park, the roof model, the GHI
under the roof and the yield. Touches no file: the raster values come in as an array.
"""

from __future__ import annotations


import functools

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from ..columns import BUILDING_COLUMNS
from ..coords import utm_epsg
from .yield_table import SpecificYieldTable
from ..config.schema import SurveyConfig
from .roof import capacity_kwp, roof_areas_m2, roof_from_areas
from .footprints import REASONS, rejected_rows


FLAT_SHAPES = {"flat", "平屋顶", "平顶"}
PITCHED_SHAPES = {"gabled", "hipped", "pyramidal", "skillion", "gambrel", "mansard", "half-hipped",
                  "saltbox", "sawtooth", "round", "pitched", "坡屋顶"}


@functools.lru_cache(maxsize=64)
def _to_utm(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


def utm_metres(lon, lat):
    """``to_metres`` for :func:`pvsurvey.model.roof.roof_areas_m2`: every roof in
    the UTM zone of its own centroid (``lon``, ``lat`` per roof).

    The scale error stays < 0.1 % inside a zone, and results do not depend on
    where a roof is or how the input was partitioned.
    """
    epsg = utm_epsg(lon, lat)

    def to_metres(x, y, rows):
        zone = epsg[rows]
        x_m, y_m = np.empty(len(x)), np.empty(len(y))
        for code in np.unique(zone):  # a handful of zones, never one call per building
            sel = zone == code
            x_m[sel], y_m[sel] = _to_utm(int(code)).transform(x[sel], y[sel])
        return x_m, y_m

    return to_metres


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
    footprint, inset, pitched_azimuth = roof_areas_m2(buildings.geometry.values, roof.setback_m, shape == "pitched",
                                                      to_metres=utm_metres(lon, lat))

    reason = np.full(len(buildings), None, dtype=object)
    reason[footprint < roof.min_footprint_area_m2] = "too_small"
    reason[footprint > roof.max_footprint_area_m2] = "too_large"
    reason[~np.isfinite(footprint) | ~np.isfinite(inset)] = "unmeasurable"
    ghi = np.asarray(ghi_kwh_per_m2_yr, dtype=float)
    reason[(reason == None) & outside_raster] = "outside_raster"  # noqa: E711
    reason[(reason == None) & ~np.isfinite(ghi)] = "no_irradiance"  # noqa: E711
    ok = reason == None  # noqa: E711
    rejected = [rejected_rows(buildings[reason == code], buildings["building_id"].to_numpy()[reason == code],
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
