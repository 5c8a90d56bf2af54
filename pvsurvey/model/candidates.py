"""Candidate projects (可建设项目清单): buildable rooftop-PV projects with their
economics, their status along the park manager's pipeline, and the plan that
closes a target gap at the least cost.

Pure functions over (Geo)DataFrames; the status store and exports are I/O
and live in ``workflow`` / ``io``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..columns import WATERFALL_COLUMNS
from ..coords import metres_per_degree
from .economics import energy_value_cny_per_kwh, project_economics
from .tou import connection_voltage_kv, project_category, shape_keys, value_projects
from ..config.schema import Economics

# The park manager's pipeline, in order; "connected" is also set automatically
# when the registry shows PV on the project's building.
STATUSES = ("identified", "contacted", "agreed", "under_construction", "connected", "rejected")
STATUS_ALIASES = {
    "identified": "identified", "待联系": "identified", "已识别": "identified",
    "contacted": "contacted", "已联系": "contacted",
    "agreed": "agreed", "已同意": "agreed", "已签约": "agreed",
    "under_construction": "under_construction", "under construction": "under_construction", "在建": "under_construction",
    "建设中": "under_construction",
    "connected": "connected", "已并网": "connected", "并网": "connected",
    "rejected": "rejected", "declined": "rejected", "放弃": "rejected", "不具备条件": "rejected",
}
# Most advanced registry state of a project's roofs.
PV_RANK = {"none": 0, "planned": 1, "under_construction": 2, "connected": 3}
# Roofs of one owner closer than this are one project (a shared array across a gap) [m].
ADJOINING_GAP_M = 5.0
# The steps behind each project: its roofs' deduction waterfall summed (footprint =
# the steps + module area; module area × module power density = capacity).
PROJECT_WATERFALL_COLUMNS = ["footprint_area_m2", *WATERFALL_COLUMNS]
CANDIDATE_COLUMNS = [
    "project_id", "rank", "park_id", "park_name", "district", "owner", "name", "building_ids", "building_count",
    *PROJECT_WATERFALL_COLUMNS,
    "usable_area_m2", "capacity_kwp", "annual_yield_kwh", "specific_yield_kwh_per_kwp", "co2_avoided_t_per_yr",
    "coal_saved_tce_per_yr", "capex_cny", "annual_savings_cny", "simple_payback_yr", "lcoe_cny_per_kwh", "npv_cny",
    "status", "status_source", "notes",
    # the valuation (pvsurvey.model.tou; economics.valuation)
    "project_category", "annual_load_kwh", "self_consumed_share", "annual_exported_kwh", "annual_curtailed_kwh",
    "value_self_used_cny_per_kwh", "value_exported_cny_per_kwh", "value_cny_per_kwh",
]
# candidates.parquet/ keeps no rank: a rank is city-wide, so one changed part
# would change every part. Readers number the projects by cost (ranks_by_cost).
STORED_CANDIDATE_COLUMNS = [c for c in CANDIDATE_COLUMNS if c != "rank"]
# What the status store and the registry set on a project (apply_statuses).
STATUS_COLUMNS = ["status", "notes", "status_source"]
CANDIDATE_TEXT_COLUMNS = ["project_id", "park_id", "park_name", "district", "owner", "name", "building_ids",
                          "status", "status_source", "notes", "project_category"]
# Per-building inputs of the hourly valuation and what a roof without them counts as.
LOAD_INPUTS = {"weather_cell": "file", "surface_tilt_deg": 0.0, "surface_azimuth_deg": 180.0, "mount": "flush",
               "footprint_area_m2": np.nan, "levels": np.nan, "building_type": None,
               "annual_consumption_kwh": np.nan, "grid_capacity_kw": np.nan, "connection_voltage_kv": np.nan}


def stored_candidates(projects: pd.DataFrame) -> pd.DataFrame:
    """``STORED_CANDIDATE_COLUMNS`` with one fixed type each (text, int64 count,
    float64 figures), so that every part of ``candidates.parquet/`` has one
    schema whatever its rows hold (a part outside parks has no park id at all)."""
    out = pd.DataFrame(index=projects.index)
    for col in STORED_CANDIDATE_COLUMNS:
        if col in CANDIDATE_TEXT_COLUMNS:
            out[col] = projects[col].astype("string")
        elif col == "building_count":
            out[col] = projects[col].astype("int64")
        else:
            out[col] = projects[col].astype("float64")
    return out


def stored_projects(projects: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Projects in the form of ``candidates.parquet/``: :func:`stored_candidates` and their outlines."""
    return gpd.GeoDataFrame(stored_candidates(projects), geometry=projects.geometry.values, crs=projects.crs)


def _local_metres(geoms):
    """Geometries in a local equirectangular frame [m] around their common centre,
    good for gaps of a few metres inside one park."""
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    lon0, lat0 = (xmin + xmax) / 2, (ymin + ymax) / 2
    k_lon, k_lat = metres_per_degree(lat0)
    return shapely.transform(geoms, lambda c: np.column_stack([(c[:, 0] - lon0) * k_lon, (c[:, 1] - lat0) * k_lat]))


def group_adjoining(buildings: gpd.GeoDataFrame, gap_m: float = ADJOINING_GAP_M) -> np.ndarray:
    """Project number of each building: roofs of one owner in one park within
    ``gap_m`` of each other form one project; roofs without an owner stand alone.

    Returns
    -------
    numpy.ndarray of int
        Group labels (0..G-1), equal for buildings of one project.
    """
    n = len(buildings)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    owner = buildings["owner"].astype("string").fillna("").to_numpy(dtype=object)
    park = buildings["park_id"].astype("string").fillna("").to_numpy(dtype=object)
    rows, cols = [np.arange(n)], [np.arange(n)]
    has_owner = np.flatnonzero(owner != "")
    if len(has_owner):
        geoms = _local_metres(np.asarray(buildings.geometry.values, dtype=object)[has_owner])
        a, b = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=gap_m)
        same = (owner[has_owner][a] == owner[has_owner][b]) & (park[has_owner][a] == park[has_owner][b]) & (a != b)
        rows.append(has_owner[a[same]])
        cols.append(has_owner[b[same]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def building_loads(b: pd.DataFrame, econ: Economics) -> tuple[np.ndarray, np.ndarray]:
    """Annual consumption [kWh/yr] and load shape (its position in ``econ.load.shapes``)
    of each building.

    The source's consumption where it gives one (> 0), else floor area (footprint ×
    storeys, ``load.default_levels`` where unknown) × the intensity of its building type
    (``load.building_types``; unknown types count as ``load.default_building_type``).
    """
    load = econ.load
    # text work on the few distinct types only
    code, types = pd.factorize(b["building_type"].astype("string"))
    clean = pd.Series(types, dtype="string").str.strip().str.lower()
    kind = np.where(clean.isin(list(load.building_types)).to_numpy(dtype=bool),
                    clean.to_numpy(dtype=object, na_value=""), load.default_building_type)
    kind = np.append(kind, load.default_building_type)  # code −1 (no type): the default
    names = list(load.shapes)
    shape = np.array([names.index(load.building_types[k].load_shape) for k in kind], dtype=np.int64)[code]
    intensity = np.array([load.building_types[k].intensity_kwh_per_m2_yr for k in kind])[code]
    levels = b["levels"].to_numpy(dtype=float)
    levels = np.where(np.isfinite(levels) & (levels > 0), levels, load.default_levels)
    estimate = b["footprint_area_m2"].to_numpy(dtype=float) * levels * intensity
    given = b["annual_consumption_kwh"].to_numpy(dtype=float)
    return np.where(np.isfinite(given) & (given > 0), given, estimate), shape


def _valuation(agg: pd.DataFrame, econ: Economics, shapes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(economics table, valuation columns) of the projects in ``agg``."""
    p = agg["capacity_kwp"].to_numpy(dtype=float)
    e = agg["annual_yield_kwh"].to_numpy(dtype=float)
    if econ.valuation == "hourly" and shapes is not None:
        code, keys = shape_keys(agg["weather_cell"], agg["surface_tilt_deg"], agg["surface_azimuth_deg"],
                                agg["mount"], codes=True)
        frame = pd.DataFrame({"pv_shape_code": code, **{c: agg[c].to_numpy() for c in (
            "capacity_kwp", "annual_yield_kwh", "load_shape_code", "annual_load_kwh", "grid_capacity_kw",
            "connection_voltage_kv")}})
        found = shapes(keys)
        v = value_projects(frame, [found[k] for k in keys], econ)
        table = project_economics(p, e, econ, energy_value_cny=v["energy_value_cny"].to_numpy(),
                                  delivered_kwh=e - v["curtailed_kwh"].to_numpy())
        cols = pd.DataFrame({"project_category": v["project_category"],
                             "self_consumed_share": v["self_consumed_share"],
                             "annual_exported_kwh": v["exported_kwh"], "annual_curtailed_kwh": v["curtailed_kwh"],
                             "value_self_used_cny_per_kwh": v["value_self_used_cny_per_kwh"],
                             "value_exported_cny_per_kwh": v["value_exported_cny_per_kwh"],
                             "value_cny_per_kwh": v["value_cny_per_kwh"]})
        return table, cols
    # the flat valuation: fixed share, one tariff, the coal benchmark for exports
    size = np.fmin(p, agg["grid_capacity_kw"].to_numpy(dtype=float))
    category = project_category(size, connection_voltage_kv(size, agg["connection_voltage_kv"], econ.policy),
                                econ.policy)
    f = econ.self_consumed_frac
    cols = pd.DataFrame({"project_category": category, "self_consumed_share": f,
                         "annual_exported_kwh": e * (1.0 - f), "annual_curtailed_kwh": 0.0,
                         "value_self_used_cny_per_kwh": econ.tariff_cny_per_kwh,
                         "value_exported_cny_per_kwh": econ.feed_in_cny_per_kwh,
                         "value_cny_per_kwh": energy_value_cny_per_kwh(econ)})
    return project_economics(p, e, econ), cols


# What a project sums, takes the first of, or the maximum of over its roofs.
_SUMMED = [*PROJECT_WATERFALL_COLUMNS, "usable_area_m2", "capacity_kwp", "annual_yield_kwh"]
_FIRST = ["park_id", "park_name", "district", "owner", "name"]
# a project's hourly shapes are those of its largest roof
_LARGEST_ROOF = ["weather_cell", "surface_tilt_deg", "surface_azimuth_deg", "mount"]


def _grouped_projects(b: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Each project's figures (indexed by its group number) and outline from its roofs ``b``."""
    b = b.sort_values(["_group", "building_id"], kind="stable")
    grouped = b.groupby("_group", sort=True)
    agg = grouped.agg(
        first_id=("building_id", "first"), building_count=("building_id", "size"),
        **{c: (c, "first") for c in _FIRST}, **{c: (c, "sum") for c in _SUMMED},
        any_pv=("has_pv", "any"), _pv_rank=("_pv_rank", "max"),
        annual_load_kwh=("_load_kwh", "sum"), connection_voltage_kv=("connection_voltage_kv", "max"))
    agg["grid_capacity_kw"] = grouped["grid_capacity_kw"].sum(min_count=1)
    largest = b.loc[grouped["capacity_kwp"].idxmax().to_numpy()]
    for col in _LARGEST_ROOF:
        agg[col] = largest[col].to_numpy()
    agg["load_shape_code"] = largest["_load_shape"].to_numpy()
    # most projects are one roof: only the few multi-roof ones need a join and a union
    agg["building_ids"] = agg["first_id"]
    geoms = pd.Series(grouped.geometry.first().to_numpy(), index=agg.index, dtype=object)
    multi = agg.index[agg["building_count"] > 1]
    if len(multi):
        several = b[b["_group"].isin(multi)]
        agg.loc[multi, "building_ids"] = several.groupby("_group")["building_id"].agg(";".join)
        unions = several.groupby("_group").geometry.agg(lambda g: shapely.union_all(g.to_numpy()))
        geoms.loc[multi] = unions.loc[multi].to_numpy()
    return agg, geoms


def _single_roof_projects(b: pd.DataFrame, group: np.ndarray) -> tuple[pd.DataFrame, pd.Series]:
    """:func:`_grouped_projects` where every project is one roof: the roof's own
    figures, without a groupby (its sums count a missing figure as 0, as pandas'
    sum does; 0.1 s less per 50,000 roofs)."""
    order = np.argsort(group, kind="stable")
    one = b.take(order)
    index = pd.Index(group[order], name="_group")

    def column(col):
        return one[col].to_numpy()

    def number(col):
        return one[col].to_numpy(dtype=float, na_value=np.nan)

    def summed(col):
        if one[col].dtype.kind in "iub":  # whole numbers stay whole, as in a groupby sum
            return one[col].to_numpy()
        values = number(col)
        return np.where(np.isnan(values), 0.0, values)

    agg = pd.DataFrame({"first_id": one["building_id"].array, "building_count": np.ones(len(one), dtype=np.int64),
                        **{c: one[c].array for c in _FIRST}, **{c: summed(c) for c in _SUMMED},
                        "any_pv": one["has_pv"].fillna(False).to_numpy(dtype=bool), "_pv_rank": column("_pv_rank"),
                        "annual_load_kwh": summed("_load_kwh"), "connection_voltage_kv": number("connection_voltage_kv"),
                        "grid_capacity_kw": number("grid_capacity_kw"),
                        **{c: column(c) for c in _LARGEST_ROOF}, "load_shape_code": column("_load_shape"),
                        "building_ids": one["building_id"].array}, index=index)
    return agg, pd.Series(one.geometry.to_numpy(), index=index, dtype=object)


def build_candidates(buildings: gpd.GeoDataFrame, econ: Economics, statuses: pd.DataFrame | None = None,
                     rank_by: str = "lcoe", shapes=None) -> gpd.GeoDataFrame:
    """Candidate projects from surveyed buildings.

    A candidate is a roof — or adjoining roofs of one owner in one park — without
    connected PV whose capacity reaches ``econ.min_candidate_kwp``. Projects
    already in the status store stay listed after their building gets PV, marked
    ``connected`` by the registry.

    Parameters
    ----------
    buildings : GeoDataFrame
        Surveyed buildings (WGS84) with capacity, yield, owner, park, the
        progress columns ``has_pv`` and ``pv_status`` and, where the survey wrote
        them, the footprint and waterfall columns (summed per project; NaN without).
    econ : pvsurvey.config.schema.Economics
    statuses : DataFrame, optional
        The status store: ``project_id``, ``status``, ``notes``.
    rank_by : {'lcoe', 'payback'}
        Cheapest first by levelised cost or by simple payback.
    shapes : callable, optional
        Shape keys -> {key: hourly PV shape (8760,)}, e.g.
        ``functools.partial(pvsurvey.model.yield_table.hourly_shapes, table)``; with
        ``econ.valuation == 'hourly'`` the projects are valued hour by hour
        (:mod:`pvsurvey.model.tou`), without it at the flat figures.

    Returns
    -------
    GeoDataFrame
        ``CANDIDATE_COLUMNS`` and the union of the project's roofs (WGS84).
    """
    b = buildings[buildings["capacity_kwp"] > 0].reset_index(drop=True)
    if "has_pv" not in b:
        b = b.assign(has_pv=False, pv_status="none")
    if "owner" not in b:
        b = b.assign(owner=pd.NA)
    absent = [c for c in PROJECT_WATERFALL_COLUMNS if c not in b]  # a survey written before the waterfall
    b = b.assign(**{c: np.nan for c in absent})
    for col, default in LOAD_INPUTS.items():
        if col not in b:
            b[col] = default
    group = group_adjoining(b)
    b["_group"] = group
    b["building_id"] = b["building_id"].astype(str)
    b["_load_kwh"], b["_load_shape"] = building_loads(b, econ)
    b["weather_cell"] = b["weather_cell"].astype("string").fillna("file")
    b["mount"] = b["mount"].astype("string").fillna("flush")

    pv_rank = b["pv_status"].astype("string").map(PV_RANK).fillna(0).astype(int)
    b = b.assign(_pv_rank=pv_rank)
    if np.bincount(group).max(initial=0) <= 1:  # every project one roof (roofs outside parks, as a rule)
        agg, geoms = _single_roof_projects(b, group)
    else:
        agg, geoms = _grouped_projects(b)
    agg[absent] = np.nan
    agg["building_pv"] = agg["_pv_rank"].map({v: k for k, v in PV_RANK.items()})
    # a stable id: the project's smallest building id (unchanged while that roof belongs to it)
    agg["project_id"] = "C-" + agg["first_id"]
    known = set(statuses["project_id"]) if statuses is not None and len(statuses) else set()
    keep = (agg["capacity_kwp"] >= econ.min_candidate_kwp) & (~agg["any_pv"] | agg["project_id"].isin(known))
    agg, geoms = agg[keep], geoms[keep]
    econ_table, valued = _valuation(agg, econ, shapes)
    out = pd.concat([agg.reset_index(drop=True), econ_table.reset_index(drop=True),
                     valued.reset_index(drop=True)], axis=1)
    out["specific_yield_kwh_per_kwp"] = out["annual_yield_kwh"] / out["capacity_kwp"]
    out = apply_statuses(out, statuses)
    key = "lcoe_cny_per_kwh" if rank_by == "lcoe" else "simple_payback_yr"
    out = out.assign(_geom=geoms.to_numpy()).sort_values([key, "project_id"], kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return gpd.GeoDataFrame(out[CANDIDATE_COLUMNS], geometry=out["_geom"].to_numpy(), crs=buildings.crs)


def ranks_by_cost(costs: list[np.ndarray]) -> list[np.ndarray]:
    """City-wide ranks (1 = cheapest) of projects held in several parts.

    Parameters
    ----------
    costs : list of numpy.ndarray
        Each part's ranking cost (LCOE [CNY/kWh]), parts in file-name order.

    Returns
    -------
    list of numpy.ndarray
        Each part's ranks; equal costs keep part and row order (each part is
        sorted by cost, then project id).
    """
    sizes = [len(c) for c in costs]
    flat = np.concatenate(costs) if costs else np.zeros(0)
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(len(flat), dtype=np.int64)
    ranks[order] = np.arange(1, len(flat) + 1)
    return np.split(ranks, np.cumsum(sizes)[:-1]) if costs else []


def project_pv(building_ids: pd.Series, per_building: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The registry state of projects from their buildings' ('C-A' of roofs 'A;B').

    Parameters
    ----------
    building_ids : Series of str
        Each project's ';'-joined building ids.
    per_building : DataFrame
        Indexed by building id, with ``pv_status`` (connected, under_construction,
        planned, none) for the buildings the registry matched.

    Returns
    -------
    any_pv : numpy.ndarray of bool
        Some roof of the project carries connected PV.
    building_pv : numpy.ndarray of str
        The most advanced state among the project's roofs.
    """
    ids = building_ids.astype(str).reset_index(drop=True)
    rank_of = per_building["pv_status"].astype(str).map(PV_RANK) if len(per_building) else pd.Series(dtype=float)
    rank = np.zeros(len(ids), dtype=np.int64)
    multi = ids.str.contains(";", regex=False).to_numpy()
    rank[~multi] = rank_of.reindex(ids[~multi]).fillna(0).to_numpy(dtype=np.int64)
    if multi.any():  # few projects span several roofs
        exploded = ids[multi].str.split(";").explode()
        member = pd.Series(rank_of.reindex(exploded.to_numpy()).fillna(0).to_numpy(), index=exploded.index)
        rank[multi] = member.groupby(level=0).max().to_numpy(dtype=np.int64)
    names = np.array(sorted(PV_RANK, key=PV_RANK.get), dtype=object)
    return rank == PV_RANK["connected"], names[rank]


def apply_statuses(projects: pd.DataFrame, statuses: pd.DataFrame | None) -> pd.DataFrame:
    """Carry the park managers' statuses and notes over; the registry overrides
    them where it shows PV being built or connected."""
    out = projects.copy()
    out["status"] = "identified"
    out["notes"] = ""
    out["status_source"] = "default"
    if statuses is not None and len(statuses):
        s = statuses.drop_duplicates("project_id", keep="last").set_index("project_id")
        known = out["project_id"].isin(s.index)
        out.loc[known, "status"] = s.loc[out.loc[known, "project_id"], "status"].to_numpy()
        out.loc[known, "notes"] = s.loc[out.loc[known, "project_id"], "notes"].fillna("").to_numpy()
        out.loc[known, "status_source"] = "park manager"
    building = out.get("building_pv", pd.Series("none", index=out.index))
    started = (building == "under_construction") & ~out["status"].isin(["connected"])
    out.loc[started, ["status", "status_source"]] = ["under_construction", "registry"]
    if "any_pv" in out:
        out.loc[out["any_pv"], ["status", "status_source"]] = ["connected", "registry"]
    return out


def normalise_status(values: pd.Series) -> pd.Series:
    """Map typed statuses (English or Chinese) to the pipeline's codes; NA where unknown."""
    return values.astype("string").str.strip().str.lower().map(STATUS_ALIASES).astype("string")


def gap_closing_plan(candidates: pd.DataFrame, usable_area_m2: float, usable_area_with_pv_m2: float,
                     new_kwp: float, target_ratio: float, target_new_kwp: float | None,
                     rank_by: str = "lcoe") -> dict:
    """The shortest cheapest-first list of candidates that closes both gaps.

    Candidates are taken in order of cost (LCOE or payback, cheapest first) until
    the installation ratio reaches ``target_ratio`` and the new capacity reaches
    ``target_new_kwp``; the list is the shortest prefix of that order that does.

    Parameters
    ----------
    candidates : DataFrame
        Projects of the scope (park, district or city), with usable_area_m2,
        capacity_kwp, lcoe_cny_per_kwh, simple_payback_yr and status.
    usable_area_m2, usable_area_with_pv_m2 : float
        The scope's usable roof area, and the part with PV [m²].
    new_kwp : float
        New capacity since the baseline [kWp].
    target_ratio : float
        Installation-ratio target [0..1].
    target_new_kwp : float or None
        New-capacity target [kWp]; None when the scope has none.

    Returns
    -------
    dict
        ``projects`` (the chosen rows, in order), ``closes_ratio_gap``,
        ``closes_capacity_gap``, ``ratio_after``, ``new_kwp_after``,
        ``capex_cny``, ``ratio_gap_area_m2``, ``capacity_gap_kwp``.
    """
    key = "lcoe_cny_per_kwh" if rank_by == "lcoe" else "simple_payback_yr"
    open_ = candidates[~candidates["status"].isin(["connected", "rejected"])]
    order = open_.sort_values([key, "project_id"], kind="stable")
    area_gap = max(0.0, target_ratio * usable_area_m2 - usable_area_with_pv_m2)
    cap_gap = max(0.0, (target_new_kwp or 0.0) - new_kwp)
    area_cum = order["usable_area_m2"].cumsum().to_numpy()
    cap_cum = order["capacity_kwp"].cumsum().to_numpy()
    need_area = np.searchsorted(area_cum, area_gap - 1e-9) + 1 if area_gap > 0 else 0
    need_cap = np.searchsorted(cap_cum, cap_gap - 1e-9) + 1 if cap_gap > 0 else 0
    closes_ratio = need_area <= len(order)
    closes_cap = need_cap <= len(order)
    take = min(max(need_area, need_cap), len(order))
    chosen = order.iloc[:take]
    ratio_after = (usable_area_with_pv_m2 + chosen["usable_area_m2"].sum()) / usable_area_m2 if usable_area_m2 else 0.0
    return {
        "projects": chosen,
        "closes_ratio_gap": bool(closes_ratio),
        "closes_capacity_gap": bool(closes_cap),
        "ratio_gap_area_m2": float(area_gap),
        "capacity_gap_kwp": float(cap_gap),
        "ratio_after": float(ratio_after),
        "new_kwp_after": float(new_kwp + chosen["capacity_kwp"].sum()),
        "capex_cny": float(chosen["capex_cny"].sum()) if "capex_cny" in chosen else None,
        "rank_by": rank_by,
    }
