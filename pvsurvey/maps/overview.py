"""The city overview: parks coloured by installation ratio against the target,
the city's progress, districts, the largest candidate projects, links to park maps.

The overview never embeds buildings: only park outlines and at most
``top_candidates`` candidate points.
"""

from __future__ import annotations

from typing import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .text import label
from ..errors import PVSurveyError
from . import panels
from .data import (OVERVIEW_DIGITS, OVERVIEW_TOLERANCE_DEG, drawn_geometries, drawn_points, escape_text,
                   feature_collection_json, park_file_name, ratio_class, rounded)
from .elements import ClassGeoJson, ClusteredGeoJson, HtmlControl
from .page import MARKER_COLOUR, MapOptions, new_map
from .park import project_properties

# Stepped colours of the installation ratio, in fifths of the target, then
# "target met", then "no data" (ColorBrewer RdYlGn-based).
RATIO_COLOURS = ("#a50026", "#d73027", "#f46d43", "#fdae61", "#fee08b", "#1a9850", "#bdbdbd")
RATIO_STEPS = 5
CANDIDATE_COLOUR = MARKER_COLOUR
# Largest candidate projects drawn as clustered markers.
TOP_CANDIDATES = 300
# Marker radius [px] of the smallest and the largest drawn candidate.
_RADIUS_PX = (5.0, 16.0)


def ratio_legend(target: float, lang: str) -> list[tuple[str, str]]:
    """(colour, text) of each step of the ratio scale for a target ratio [0..1]."""
    edges = [100 * target * i / RATIO_STEPS for i in range(RATIO_STEPS + 1)]
    steps = [(RATIO_COLOURS[0], f"< {edges[1]:g} %")]
    steps += [(RATIO_COLOURS[i], f"{edges[i]:g}–{edges[i + 1]:g} %") for i in range(1, RATIO_STEPS)]
    steps.append((RATIO_COLOURS[RATIO_STEPS], f"≥ {edges[-1]:g} % ({label('map_target_met', lang)})"))
    steps.append((RATIO_COLOURS[RATIO_STEPS + 1], label("map_no_data", lang)))
    return steps


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)


def candidate_points(candidates: gpd.GeoDataFrame, top: int = TOP_CANDIDATES) -> gpd.GeoDataFrame:
    """The ``top`` largest candidate projects by capacity, as points inside their roofs [WGS84]."""
    if candidates is None or len(candidates) == 0:
        return gpd.GeoDataFrame({"capacity_kwp": []}, geometry=[], crs="EPSG:4326")
    order = np.argsort(-_column(candidates, "capacity_kwp"), kind="stable")[:top]
    chosen = candidates.iloc[order].reset_index(drop=True)
    return chosen.set_geometry(shapely.point_on_surface(chosen.geometry.values))


def build_overview_map(parks: gpd.GeoDataFrame, options: MapOptions, *, target_install_ratio: float,
                       city: Mapping | None = None, totals: Mapping | None = None, districts: pd.DataFrame | None = None,
                       candidates: gpd.GeoDataFrame | None = None,
                       park_links: bool = True, top_candidates: int = TOP_CANDIDATES, survey: str = "",
                       generated: str = "", plans: list[tuple[Mapping, Mapping | None]] | None = None,
                       colour_plan: str = "") -> folium.Map:
    """The city overview map.

    Parameters
    ----------
    parks : GeoDataFrame
        One row per park in WGS84: ``park_id``, ``park_name``, ``district``,
        survey sums (``building_count``, ``usable_area_m2``, ``capacity_kwp``,
        ``annual_yield_kwh``) and, where known, ``install_ratio_area_frac``,
        ``target_install_ratio``, ``installed_kwp``, ``new_kwp_since_baseline``,
        ``remaining_potential_kwp``. Parks without an outline are listed, not drawn.
    options : MapOptions
    city : mapping, optional
        The city's progress metrics (see the progress issue); None when the run
        has no installed-PV data. Shown when ``plans`` is not given.
    plans : list of (plan, metrics), optional
        Each plan of progress.json's ``plans`` with its total's metrics: the panel
        shows one block per plan, labelled with its name and period (:func:`panels.plan_html`).
    colour_plan : str
        Name of the plan whose ratio targets colour the parks (the legend says so).
    totals : mapping, optional
        City survey totals: ``building_count``, ``usable_area_m2`` [m²],
        ``capacity_kwp`` [kWp], ``annual_yield_kwh`` [kWh/yr].
    districts : DataFrame, optional
        ``district``, ``park_count``, ``capacity_kwp`` and, where known, ``install_ratio_area_frac``.
    candidates : GeoDataFrame, optional
        Candidate projects (points or polygons, WGS84); the largest
        ``top_candidates`` are drawn as clustered markers.
    target_install_ratio : float
        The city's ratio target [0..1], for the legend.
    park_links : bool
        Link parks to their maps (``park-<id>.html`` beside the overview).
    top_candidates : int
        How many of the largest candidate projects to draw.
    survey, generated : str
        Survey name and generation time shown in the panel.

    Returns
    -------
    folium.Map
    """
    parks = parks.reset_index(drop=True)
    if "park_name" in parks:
        parks["park_name"] = parks["park_name"].astype("object").where(parks["park_name"].notna(), parks["park_id"])
    ratio = _column(parks, "install_ratio_area_frac")
    target = _column(parks, "target_install_ratio")
    target = np.where(np.isfinite(target), target, target_install_ratio)
    cls = ratio_class(ratio, target, RATIO_STEPS)
    ids = parks["park_id"].astype("string").fillna("")
    hrefs = pd.Series([park_file_name(p) if park_links and p else "" for p in ids], dtype="object")

    has_outline = (~parks.geometry.isna() & ~parks.geometry.is_empty).to_numpy() if len(parks) else np.zeros(0, bool)
    drawn = drawn_geometries(parks.geometry.values[has_outline], OVERVIEW_TOLERANCE_DEG, OVERVIEW_DIGITS,
                             options.gcj02)
    top = candidate_points(candidates, top_candidates)
    points = np.asarray(top.geometry.values, dtype=object)
    if len(points):
        lon, lat = drawn_points(shapely.get_x(points), shapely.get_y(points), OVERVIEW_DIGITS, options.gcj02)
        points = shapely.points(lon, lat)
    extent = np.concatenate([drawn, points])
    west, south, east, north = shapely.total_bounds(extent) if len(extent) else (np.nan,) * 4
    if not np.isfinite([west, south, east, north]).all():
        raise PVSurveyError("nothing to draw on the overview: no park outline and no candidate project")
    m = new_map(options, label("map_title_overview", options.lang), [[south, west], [north, east]])

    props = pd.DataFrame({
        "c": cls, "i": escape_text(ids), "n": escape_text(parks["park_name"]),
        "d": escape_text(parks["district"]) if "district" in parks else "",
        "nb": rounded(_column(parks, "building_count"), 0), "a": rounded(_column(parks, "usable_area_m2"), 0),
        "k": rounded(_column(parks, "capacity_kwp"), 0), "y": rounded(_column(parks, "annual_yield_kwh"), 0),
        "r": rounded(ratio, 4), "t": rounded(target, 4), "w": rounded(_column(parks, "installed_kwp"), 0),
        "g": rounded(_column(parks, "new_kwp_since_baseline"), 0),
        "m": rounded(_column(parks, "remaining_potential_kwp"), 0), "h": escape_text(hrefs),
    })
    styles = [{"fillColor": c, "color": "#333333", "weight": 1.5, "fillOpacity": 0.65} for c in RATIO_COLOURS]
    ClassGeoJson(feature_collection_json(drawn, props[has_outline]), styles,
                 name=label("map_layer_parks", options.lang),
                 tooltip="pvsParkTooltip", popup="pvsParkPopup").add_to(m)

    if len(top):
        park_ids = top["park_id"].astype("string").fillna("") if "park_id" in top else pd.Series([""] * len(top))
        top_hrefs = pd.Series([park_file_name(p) if park_links and p else "" for p in park_ids], dtype="object")
        cprops = project_properties(top, options, top_hrefs)
        capacity = _column(top, "capacity_kwp")
        largest = np.nanmax(capacity) if np.isfinite(capacity).any() else 1.0
        low, high = _RADIUS_PX
        cprops["r"] = np.round(low + (high - low) * np.sqrt(np.nan_to_num(capacity) / max(largest, 1e-9)), 1)
        ClusteredGeoJson(feature_collection_json(points, cprops),
                         [{"color": "#3f007d", "weight": 1, "fillColor": CANDIDATE_COLOUR, "fillOpacity": 0.85}],
                         name=label("map_layer_largest_candidates", options.lang), point_radius_key="r",
                         tooltip="pvsProjectTooltip", popup="pvsProjectPopup").add_to(m)

    folium.LayerControl(position="topright", collapsed=False).add_to(m)

    order = np.lexsort((parks["park_name"].astype(str).to_numpy(), np.where(np.isfinite(ratio / target), ratio / target, np.inf)))
    park_rows = [{"park_name": str(parks.at[i, "park_name"]), "district": str(parks.at[i, "district"] if "district" in parks else ""),
                  "install_ratio_area_frac": ratio[i], "colour": RATIO_COLOURS[cls[i]], "href": hrefs[i]}
                 for i in order]
    district_rows = []
    if districts is not None and len(districts):
        district_rows = [{"district": str(r.get("district", "")), "park_count": r.get("park_count"),
                          "capacity_kwp": r.get("capacity_kwp"), "install_ratio_area_frac": r.get("install_ratio_area_frac")}
                         for r in districts.to_dict("records")]
    html = panels.render(
        panels.OVERVIEW_PANEL, options.lang, title=label("map_title_overview", options.lang), survey=survey,
        generated=generated,
        progress_html=(panels.plans_html([(dict(p), dict(m) if m else None) for p, m in plans], options.lang)
                       if plans else panels.progress_html(dict(city) if city else None, options.lang)),
        totals_html=panels.totals_html(dict(totals or {}), options.lang), districts=district_rows, parks=park_rows)
    HtmlControl(html, position="topright").add_to(m)
    own_targets = bool(np.any(np.abs(target - target_install_ratio) > 1e-9))
    legend = panels.render(panels.RATIO_LEGEND, options.lang, steps=ratio_legend(target_install_ratio, options.lang),
                           note=" · ".join(n for n in (
                               f"{label('map_colour_vs_plan', options.lang)} {colour_plan}" if colour_plan else "",
                               label("map_colour_vs_target", options.lang) if own_targets else "") if n),
                           candidates=len(top) > 0, candidate_colour=CANDIDATE_COLOUR)
    HtmlControl(legend, position="bottomright").add_to(m)
    return m
