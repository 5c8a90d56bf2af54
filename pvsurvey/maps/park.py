"""One map per park: every building coloured by status, candidate projects, irradiance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .text import label
from ..errors import PVSurveyError
from . import panels
from .data import (CANDIDATE, PARK_MAP_DIGITS, PARK_MAP_TOLERANCE_DEG, STATUSES, building_status, candidate_links,
                   drawn_geometries, drawn_points, escape_text, feature_collection_json, rounded)
from .elements import ClassGeoJson, HtmlControl
from .page import CANDIDATE_OUTLINE, STATUS_COLOURS, MapOptions, new_map, state_label

# Irradiance colour ramp (ColorBrewer YlOrRd, 5 classes), low to high.
IRRADIANCE_RAMP = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
# Rows of the irradiance image before the Web-Mercator resampling: coarse
# rasters are repeated row-wise first so that cells stay sharp.
_IRRADIANCE_MIN_ROWS = 256


@dataclass(frozen=True)
class IrradianceGrid:
    """Annual GHI on a lon/lat grid, for the irradiance layer.

    Parameters
    ----------
    values_kwh_per_m2_yr : numpy.ndarray
        2-D, row 0 northmost, NaN where there is no value [kWh/m²/yr].
    bounds_deg : tuple of float
        (west, south, east, north) of the grid's outer edges [°, WGS84].
    """

    values_kwh_per_m2_yr: np.ndarray
    bounds_deg: tuple[float, float, float, float]


def _hex_to_rgb(colours) -> np.ndarray:
    return np.array([[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)] for c in colours])


def irradiance_image(grid: IrradianceGrid) -> tuple[np.ndarray, float, float]:
    """RGBA image [0..1] of the grid on the ramp, with its value range [kWh/m²/yr].

    Returns
    -------
    image : numpy.ndarray, shape (rows, cols, 4)
        Transparent where there is no value.
    low, high : float
        Values at the two ends of the ramp.
    """
    values = np.asarray(grid.values_kwh_per_m2_yr, dtype=float)
    finite = np.isfinite(values)
    if not finite.any():
        raise PVSurveyError("the irradiance window holds no value")
    low, high = float(values[finite].min()), float(values[finite].max())
    span = high - low if high > low else 1.0
    position = np.clip((np.where(finite, values, low) - low) / span, 0, 1) * (len(IRRADIANCE_RAMP) - 1)
    ramp = _hex_to_rgb(IRRADIANCE_RAMP)
    stops = np.arange(len(IRRADIANCE_RAMP))
    rgb = np.stack([np.interp(position, stops, ramp[:, k]) for k in range(3)], axis=-1)
    image = np.concatenate([rgb, finite[..., None].astype(float)], axis=-1)
    return image, low, high


def _add_irradiance(m: folium.Map, grid: IrradianceGrid, options: MapOptions) -> dict:
    image, low, high = irradiance_image(grid)
    repeat = max(1, int(np.ceil(_IRRADIANCE_MIN_ROWS / image.shape[0])))
    image = np.repeat(image, repeat, axis=0)
    west, south, east, north = grid.bounds_deg
    (west, east), (south, north) = drawn_points([west, east], [south, north], 6, options.gcj02)
    folium.raster_layers.ImageOverlay(
        image=image, bounds=[[float(south), float(west)], [float(north), float(east)]], mercator_project=True,
        opacity=0.55, name=label("ghi_kwh_per_m2_yr", options.lang), show=False, interactive=False,
    ).add_to(m)
    return {"low": low, "high": high, "ramp": ", ".join(IRRADIANCE_RAMP)}


def _num(frame: pd.DataFrame, column: str, digits: int):
    """A numeric column rounded to ``digits``; whole numbers as nullable integers (no '.0' in the JSON)."""
    if column not in frame:
        return np.full(len(frame), np.nan)
    return rounded(frame[column], digits)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    return escape_text(frame[column] if column in frame else pd.Series([None] * len(frame)))


def _states(values: pd.Series, options: MapOptions) -> pd.Series:
    """Status values translated through the registry, escaped; '' where missing."""
    values = values.astype("object").reset_index(drop=True)
    missing = values.isna() | (values.astype(str).str.strip() == "")
    names = {v: state_label(v, options) for v in pd.unique(values[~missing])}
    return values.map(names).where(~missing, "")


def _payback(values) -> np.ndarray:
    """Payback [yr] rounded to 0.1; never paying back (inf) is written as -1."""
    p = np.round(np.asarray(values, dtype=float), 1)
    return np.where(np.isinf(p), -1.0, p)


def building_properties(buildings: pd.DataFrame, status: np.ndarray, links: pd.DataFrame,
                        options: MapOptions) -> pd.DataFrame:
    """Compact, escaped feature properties of the buildings (see the popup script in ``page``).

    Keys: ``c`` status code, ``i`` id, ``n`` name, ``o`` owner, ``a`` usable area [m²],
    ``k`` capacity [kWp], ``y`` yield [kWh/yr], ``s`` specific yield [kWh/kWp/yr];
    with PV data ``w`` installed [kWp] and ``v`` PV status; with candidates ``j``
    project id, ``p`` payback [yr], ``q`` project status, ``x`` notes.
    """
    props = pd.DataFrame({
        "c": status.astype(int),
        "i": _text(buildings, "building_id"),
        "n": _text(buildings, "name"),
        "o": _text(buildings, "owner"),
        "a": _num(buildings, "usable_area_m2", 0),
        "k": _num(buildings, "capacity_kwp", 1),
        "y": _num(buildings, "annual_yield_kwh", 0),
        "s": _num(buildings, "specific_yield_kwh_per_kwp", 0),
    })
    if "installed_kwp" in buildings:
        installed = _num(buildings, "installed_kwp", 1)
        props["w"] = np.where(installed > 0, installed, np.nan)
    if "pv_status" in buildings:
        pv = buildings["pv_status"].astype("object").reset_index(drop=True)
        props["v"] = _states(pv.where(pv.astype(str) != "none"), options)
    if len(links):
        at = pd.Index(links["building_id"].astype(str)).get_indexer(buildings["building_id"].astype(str))
        linked = pd.Series(at >= 0)
        picked = links.iloc[np.where(at >= 0, at, 0)].reset_index(drop=True)
        if "project_id" in picked:
            props["j"] = escape_text(picked["project_id"]).where(linked, "")
        if "simple_payback_yr" in picked:
            props["p"] = np.where(linked, _payback(picked["simple_payback_yr"]), np.nan)
        if "status" in picked:
            props["q"] = _states(picked["status"], options).where(linked, "")
        if "notes" in picked:
            props["x"] = escape_text(picked["notes"]).where(linked, "")
    return props


def project_properties(candidates: pd.DataFrame, options: MapOptions, hrefs: pd.Series | None = None) -> pd.DataFrame:
    """Compact, escaped feature properties of candidate projects.

    Keys: ``c`` class (0), ``j`` project id, ``n`` name, ``o`` owner, ``pn`` park,
    ``d`` district, ``a`` usable area [m²], ``k`` capacity [kWp], ``y`` yield [kWh/yr],
    ``s`` specific yield [kWh/kWp/yr], ``p`` payback [yr], ``lc`` LCOE [CNY/kWh],
    ``q`` status, ``x`` notes, ``h`` link to the park map.
    """
    n = len(candidates)
    props = pd.DataFrame({
        "c": np.zeros(n, dtype=int),
        "j": _text(candidates, "project_id"),
        "n": _text(candidates, "name"),
        "o": _text(candidates, "owner"),
        "pn": _text(candidates, "park_name"),
        "d": _text(candidates, "district"),
        "a": _num(candidates, "usable_area_m2", 0),
        "k": _num(candidates, "capacity_kwp", 1),
        "y": _num(candidates, "annual_yield_kwh", 0),
        "s": _num(candidates, "specific_yield_kwh_per_kwp", 0),
    })
    if "simple_payback_yr" in candidates:
        props["p"] = _payback(candidates["simple_payback_yr"])
    if "lcoe_cny_per_kwh" in candidates:
        props["lc"] = _num(candidates, "lcoe_cny_per_kwh", 3)
    if "status" in candidates:
        props["q"] = _states(candidates["status"], options)
    if "notes" in candidates:
        props["x"] = _text(candidates, "notes")
    if hrefs is not None:
        props["h"] = escape_text(hrefs)
    return props


def _bounds(geoms) -> list[list[float]]:
    west, south, east, north = shapely.total_bounds(np.asarray(geoms, dtype=object))
    if not np.isfinite([west, south, east, north]).all():
        raise PVSurveyError("nothing to draw: the park has neither an outline nor buildings")
    return [[float(south), float(west)], [float(north), float(east)]]


def build_park_map(park: Mapping, buildings: gpd.GeoDataFrame, options: MapOptions, *, min_candidate_kwp: float,
                   candidates: gpd.GeoDataFrame | None = None, irradiance: IrradianceGrid | None = None,
                   progress: Mapping | None = None, plans: list[tuple[Mapping, Mapping | None]] | None = None,
                   overview_href: str | None = "index.html", survey: str = "", generated: str = "",
                   waterfall: Mapping | None = None, rule_set: str = "") -> folium.Map:
    """The map of one park.

    Parameters
    ----------
    park : mapping
        ``park_id``, ``park_name``, ``district`` and optionally ``geometry`` (the
        outline, shapely, WGS84).
    buildings : GeoDataFrame
        The park's buildings in WGS84 with the survey columns (``building_id``,
        ``usable_area_m2``, ``capacity_kwp``, …) and, where the run has them,
        ``has_pv``, ``installed_kwp`` and ``pv_status``.
    options : MapOptions
    candidates : GeoDataFrame, optional
        The park's candidate projects (``project_id``, ``building_ids``, figures,
        ``status``, ``notes``; geometry in WGS84). Without it, roofs without PV of
        at least ``min_candidate_kwp`` are shown as candidates.
    irradiance : IrradianceGrid, optional
        Annual GHI around the park, drawn as an image layer (off at opening).
    progress : mapping, optional
        The park's progress metrics (``install_ratio_area_frac``, ``target_install_ratio``, …);
        shown when ``plans`` is not given.
    plans : list of (plan, metrics), optional
        Each plan whose scope holds the park, with the park's metrics under it: one
        block per plan, labelled with its name and period (:func:`panels.plan_html`).
    min_candidate_kwp : float
        Smallest candidate project [kWp], used without ``candidates``.
    overview_href : str, optional
        Link back to the overview (relative URL); None for no link.
    survey, generated : str
        Survey name and generation time shown in the panel.
    waterfall : mapping, optional
        The park's sums of ``footprint_area_m2``, the waterfall columns,
        ``usable_area_m2`` and ``capacity_kwp`` [m², kWp] (its row of parks.csv):
        drawn as a chart in the panel (:func:`panels.waterfall_html`); none without.
    rule_set : str
        Name of the rule set the waterfall was computed with (``roof.rule_set``).

    Returns
    -------
    folium.Map
    """
    buildings = buildings.reset_index(drop=True)
    if buildings.crs is not None and not buildings.crs.equals("EPSG:4326"):
        buildings = buildings.to_crs("EPSG:4326")
    links = candidate_links(candidates)
    candidate_ids = links["building_id"] if candidates is not None else None
    status = building_status(buildings, candidate_ids, min_candidate_kwp=min_candidate_kwp)

    geoms = drawn_geometries(buildings.geometry.values, PARK_MAP_TOLERANCE_DEG, PARK_MAP_DIGITS, options.gcj02)
    outline = park.get("geometry")
    outline_drawn = None
    if outline is not None and not shapely.is_empty(outline):
        outline_drawn = drawn_geometries([outline], PARK_MAP_TOLERANCE_DEG, PARK_MAP_DIGITS, options.gcj02)
    everything = np.concatenate([geoms, outline_drawn]) if outline_drawn is not None else geoms
    park_name = str(park.get("park_name") or park.get("park_id") or "")
    title = f"{park_name} · {label('map_title_park', options.lang)}"
    m = new_map(options, title, _bounds(everything))

    if outline_drawn is not None:
        ClassGeoJson(feature_collection_json(outline_drawn, pd.DataFrame({"c": [0]})),
                     [{"color": "#333333", "weight": 2, "dashArray": "8 4", "fill": False}],
                     name=label("map_layer_park_boundary", options.lang), interactive=False).add_to(m)

    styles = [{"fillColor": c, "color": "#555555", "weight": 0.6, "fillOpacity": 0.8} for c in STATUS_COLOURS]
    ClassGeoJson(feature_collection_json(geoms, building_properties(buildings, status, links, options)), styles,
                 name=label("map_layer_buildings", options.lang),
                 tooltip="pvsBuildingTooltip", popup="pvsBuildingPopup").add_to(m)

    candidate_style = [{"color": CANDIDATE_OUTLINE, "weight": 2.5, "dashArray": "5 4", "fill": False}]
    if candidates is not None:
        cand = candidates.reset_index(drop=True)
        cand_geoms = drawn_geometries(cand.geometry.values, PARK_MAP_TOLERANCE_DEG, PARK_MAP_DIGITS, options.gcj02)
        cand_props = project_properties(cand, options)
    else:
        chosen = status == CANDIDATE
        cand_geoms = geoms[chosen]
        cand_props = project_properties(buildings[chosen].rename(columns={"building_id": "project_id"}), options)
    ClassGeoJson(feature_collection_json(cand_geoms, cand_props), candidate_style,
                 name=label("map_layer_candidates", options.lang),
                 tooltip="pvsProjectTooltip", popup="pvsProjectPopup").add_to(m)

    irradiance_legend = _add_irradiance(m, irradiance, options) if irradiance is not None else None
    folium.LayerControl(position="topright", collapsed=False).add_to(m)

    capacity_kwp = pd.to_numeric(buildings["capacity_kwp"], errors="coerce").fillna(0).to_numpy()
    counts = np.bincount(status, minlength=len(STATUSES))
    capacity_by_status = np.bincount(status, weights=capacity_kwp, minlength=len(STATUSES))
    totals = {"building_count": len(buildings), "usable_area_m2": float(np.nansum(_num(buildings, "usable_area_m2", 3))),
              "capacity_kwp": float(capacity_kwp.sum()),
              "annual_yield_kwh": float(np.nansum(_num(buildings, "annual_yield_kwh", 3)))}
    html = panels.render(
        panels.PARK_PANEL, options.lang, park_name=park_name, park_id=str(park.get("park_id") or ""),
        district=str(park.get("district") or ""), overview_href=overview_href,
        progress_html=(panels.plans_html([(dict(p), dict(m) if m else None) for p, m in plans], options.lang)
                       if plans else panels.progress_html(dict(progress) if progress else None, options.lang)),
        totals_html=panels.totals_html(totals, options.lang),
        waterfall_html=panels.waterfall_html(dict(waterfall) if waterfall else None, options.lang, rule_set),
        statuses=[{"colour": STATUS_COLOURS[i], "label": label(f"map_status_{s}", options.lang),
                   "count": int(counts[i]), "capacity_kwp": float(capacity_by_status[i])}
                  for i, s in enumerate(STATUSES)],
        candidate_outline=CANDIDATE_OUTLINE, irradiance=irradiance_legend, survey=survey, generated=generated)
    HtmlControl(html, position="topright").add_to(m)
    return m
