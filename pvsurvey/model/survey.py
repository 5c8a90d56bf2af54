"""The pure survey of one partition's buildings: the park, the roof model, the GHI
under the roof and the yield. Touches no file: the raster values come in as an array.
"""

from __future__ import annotations


import datetime as dt
import functools

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from ..columns import BUILDING_COLUMNS, SUM_COLUMNS
from ..coords import utm_epsg
from .yield_table import SpecificYieldTable
from ..config.schema import SurveyConfig
from .roof import blend_waterfalls, capacity_kwp, module_orientation, roof_areas_m2, roof_from_areas
from .roof_construction import attribute_counts, needs_new_roof, parse_heights, parse_years, roof_construction
from .shade import roof_shade
from .footprints import REASONS, rejected_rows, text_array


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
    out = pd.DataFrame({"park_id": text_array(None, n), "park_name": text_array(None, n),
                        "district": text_array(None, n)})
    if parks is None or len(parks) == 0 or n == 0:
        return out
    points = shapely.points(lon, lat)
    point_idx, park_idx = shapely.STRtree(parks.geometry.values).query(points, predicate="within")
    first = pd.Series(park_idx, index=point_idx).groupby(level=0).min()  # overlapping parks: lowest row wins
    for col in ("park_id", "park_name", "district"):
        values = parks[col].astype("string").to_numpy(dtype=object, na_value=None)
        out.loc[first.index.to_numpy(), col] = values[first.to_numpy()]
    return out


def building_attributes(buildings: pd.DataFrame, config: SurveyConfig, as_of_year: int) -> dict[str, np.ndarray]:
    """Heights, roof construction, roof year and the new-roof flag of cleaned buildings
    (:mod:`pvsurvey.model.roof_construction`), with how each value was read."""
    def text(col):  # an absent column: all missing (an Arrow null array, not a list of None)
        return buildings[col] if col in buildings else pd.Series(text_array(None, len(buildings)))

    out = parse_heights(text("height_m_text"), text("levels_text"),
                        buildings["building_type"] if "building_type" in buildings else None, config.shade)
    out["roof_construction"], out["material_status"] = roof_construction(text("roof_material"), config.roof)
    out["roof_year"], out["roof_year_status"] = parse_years(text("roof_year_text"), as_of_year)
    out["needs_new_roof"] = needs_new_roof(out["roof_construction"], out["roof_year"], as_of_year,
                                           config.economics.lifetime_yr, config.roof)
    return out


def survey_buildings(buildings: gpd.GeoDataFrame, ghi_kwh_per_m2_yr: np.ndarray, outside_raster: np.ndarray,
                     parks: gpd.GeoDataFrame | None, config: SurveyConfig,
                     yield_table: SpecificYieldTable, source_file: str, as_of_year: int | None = None,
                     casters: tuple | None = None, stats: dict | None = None):
    """Survey cleaned buildings: park, roof waterfall, capacity, irradiance, shade and yield.

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
    as_of_year : int, optional
        Year of the survey, for the roofs' remaining life (default: this year).
    casters : (array of geometries, array of float), optional
        Buildings of other partitions near these (the halo, WGS84) and their
        heights [m]: they shade these roofs but are not surveyed here.
    stats : dict, optional
        Filled with counts of how the attributes were read (for the manifest).

    Returns
    -------
    accepted : GeoDataFrame
        One row per surveyed building, columns of ``BUILDING_COLUMNS`` + geometry.
    rejected : DataFrame
        Rows dropped here (size limits, no irradiance).
    """
    roof = config.roof
    as_of_year = as_of_year or dt.date.today().year
    lon = buildings["lon"].to_numpy()
    lat = buildings["lat"].to_numpy()
    shape_src = buildings["roof_shape_src"].astype("string").str.lower()
    shape = np.where(shape_src.isin(PITCHED_SHAPES).to_numpy(dtype=bool), "pitched",
                     np.where(shape_src.isin(FLAT_SHAPES).to_numpy(dtype=bool), "flat", roof.default_shape))
    attrs = building_attributes(buildings, config, as_of_year)
    construction = attrs["roof_construction"]
    steel_share = np.where(construction == "steel", 1.0, np.where(construction == "concrete", 0.0,
                                                                   roof.unknown_steel_share))
    # the sunny side of pitched roofs, and of the two planes of low-pitch steel roofs
    footprint, inset, sunny_azimuth = roof_areas_m2(buildings.geometry.values, roof.setback_m,
                                                    (shape == "pitched") | (steel_share > 0),
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

    # every building shades its neighbours, its roof surveyed or not (the same whatever the partitioning)
    set_aside = np.asarray(buildings.geometry.values, dtype=object)[~ok]
    others = np.concatenate([set_aside, np.asarray(casters[0], dtype=object)]) if casters is not None else set_aside
    others_h = np.concatenate([attrs["building_height_m"][~ok], casters[1]]) if casters is not None \
        else attrs["building_height_m"][~ok]
    b = buildings[ok]
    ghi, lon, lat, shape, steel_share = ghi[ok], lon[ok], lat[ok], shape[ok], steel_share[ok]
    attrs = {k: v[ok] for k, v in attrs.items()}
    footprint, inset, sunny_azimuth = footprint[ok], inset[ok], sunny_azimuth[ok]
    tilt_src = b["roof_angle_deg"].to_numpy(dtype=float)
    excluded = attrs["needs_new_roof"] & roof.exclude_needs_new_roof
    n = len(b)

    shaded_frac, kept_loss = np.zeros(n), np.zeros(n)
    # how each roof's shade was found: traced, no taller neighbour within reach, no height,
    # or not modelled at all (shade.enabled false: nothing was looked at)
    shade_status = np.where(np.isfinite(attrs["building_height_m"]),
                            "no_taller_neighbour" if config.shade.enabled else "shade_off", "no_height")
    if config.shade.enabled and n:  # the losses of the modules of the construction that carries most weight
        tilt, azimuth, _ = module_orientation(shape, tilt_src, sunny_azimuth, roof,
                                              np.where(steel_share >= 0.5, "steel", "concrete").astype(object))
        shade = roof_shade(b.geometry.values, lon, lat, attrs["building_height_m"], ghi, tilt, azimuth,
                           yield_table, config, (others, others_h))
        shaded_frac, kept_loss, shade_status = shade["shaded_frac"], shade["kept_loss_frac"], \
            np.where(shade["traced"], "traced", shade_status)
    args = (footprint, inset, shape, tilt_src, lat, sunny_azimuth, roof)
    kw = {"shaded_frac": shaded_frac, "excluded": excluded}
    steel = roof_from_areas(*args, construction=np.full(n, "steel", dtype=object), **kw)
    concrete = roof_from_areas(*args, construction=np.full(n, "concrete", dtype=object), **kw)
    r = blend_waterfalls(steel, concrete, steel_share)
    density = config.system.module_power_density_kwp_per_m2

    # yields of both constructions where they carry weight: tilted rows or flush modules on the sunny
    # plane; a low-pitch steel roof carries flush modules on both of its planes, whose mean yield is a
    # level array's to second order in the pitch (within 0.3 % at 2.86°, tested): one entry, tilt 0
    sy_concrete, cell = yield_table.lookup(lat, lon, ghi, concrete["surface_tilt_deg"],
                                           concrete["surface_azimuth_deg"], concrete["mount"])
    sy_steel = sy_concrete.copy()
    both_planes = (steel_share > 0) & (shape != "pitched")
    if both_planes.any():
        sel = both_planes
        sy_steel[sel] = yield_table.lookup(lat[sel], lon[sel], ghi[sel], np.zeros(sel.sum()),
                                           np.full(sel.sum(), 180.0), steel["mount"][sel])[0]
    cap_steel = capacity_kwp(steel["usable_area_m2"], steel["coverage_frac"], density)
    cap_concrete = capacity_kwp(concrete["usable_area_m2"], concrete["coverage_frac"], density)
    cap = steel_share * cap_steel + (1.0 - steel_share) * cap_concrete
    energy = (steel_share * cap_steel * sy_steel + (1.0 - steel_share) * cap_concrete * sy_concrete) * (1.0 - kept_loss)
    mean_sy = (steel_share * sy_steel + (1.0 - steel_share) * sy_concrete) * (1.0 - kept_loss)
    sy = np.where(cap > 0, energy / np.where(cap > 0, cap, 1.0), mean_sy)

    b = pd.concat([b.reset_index(drop=True), assign_parks(lon, lat, parks)], axis=1)
    b["roof_shape"] = text_array(shape)
    b["height_m"] = attrs["height_m"]
    b["levels"] = attrs["levels"]
    b["building_height_m"] = attrs["building_height_m"]
    b["roof_construction"] = text_array(attrs["roof_construction"])
    b["roof_year"] = pd.array(np.where(np.isfinite(attrs["roof_year"]), attrs["roof_year"], np.nan)).astype("Int64")
    b["needs_new_roof"] = attrs["needs_new_roof"]
    for key, values in r.items():
        b[key] = text_array(values) if key in ("mount", "unusable_reason") else values
    b["capacity_kwp"] = cap
    b["weather_cell"] = text_array(cell)
    b["ghi_kwh_per_m2_yr"] = ghi
    b["shade_loss_frac"] = kept_loss
    b["specific_yield_kwh_per_kwp"] = sy
    b["annual_yield_kwh"] = energy
    for col in ("annual_consumption_kwh", "grid_capacity_kw", "connection_voltage_kv"):  # valuation inputs
        b[col] = b[col].to_numpy(dtype=float) if col in b else np.nan
    b["building_type"] = b["building_type"].astype("string") if "building_type" in b else text_array(None, len(b))
    accepted = gpd.GeoDataFrame(b[BUILDING_COLUMNS], geometry=b.geometry.values, crs=buildings.crs)
    rejected_df = pd.concat(rejected, ignore_index=True) if rejected else None
    if stats is not None:
        stats.update(attribute_counts(pd.DataFrame({**{k: attrs[k] for k in (  # counted, not kept: no text dtype
            "height_status", "levels_status", "height_source", "material_status", "roof_construction",
            "roof_year_status", "needs_new_roof")}, "shade_status": shade_status}, dtype=object)))
        if config.shade.enabled and n:  # how the traced roofs were traced: how sure their shade is
            gridded = int(shade["gridded"].sum())
            stats["shade_traced_from"] = {"grid": gridded, "centre": int(shade["traced"].sum()) - gridded}
    return accepted, rejected_df


def summarise(accepted: pd.DataFrame, by: str) -> pd.DataFrame:
    """Sums per ``by`` (park_id or district) of counts, the waterfall's areas, capacity and yield.

    Partition summaries add up, so a whole survey's totals never need every
    building in memory.
    """
    keys = accepted[by].astype("string").fillna("")
    frame = pd.DataFrame({
        by: keys,
        "building_count": 1,
        "usable_building_count": (accepted["usable_area_m2"] > 0).astype(int),
        "needs_new_roof_count": accepted["needs_new_roof"].astype(int),
        **{c: accepted[c] for c in SUM_COLUMNS if c in accepted.columns},
    })
    return frame.groupby(by, sort=True)[SUM_COLUMNS].sum()
