"""Matching the installed-PV registry to surveyed buildings, and each building's PV
from the matched rows.

Pure functions over DataFrames and geometries. A row is matched by building id;
else the building its polygon overlaps most; else the building containing the
point; else the nearest building within a distance. Ties go to the smallest
building id, so the outcome never depends on partitioning.
"""

from __future__ import annotations


import datetime as dt
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import shapely



from ..config.schema import SurveyConfig
from ..coords import metres_per_degree


# Registry statuses that count as installed; the others are the pipeline.
CONNECTED = "connected"
# Why a registry row matched no building (``unmatched_reason`` in
# installations_matched.csv, with the message as ``unmatched_message``): the row
# problems the reader flags (pvsurvey.io.registry), then the misses of matching.
REGISTRY_REASONS = {
    "malformed_row": "the row has more fields than the header (a value with an unquoted comma?), so its values "
                     "cannot be told apart: quote that value or remove the extra field",
    "invalid_capacity": "capacity_kwp is not a positive number",
    "duplicate_row": "the same row as an earlier one, every value alike (a sheet pasted twice?): counted once",
    "implausible_capacity": "capacity_kwp is above 1,000,000 kWp (1 GWp), more than any rooftop system holds: "
                            "a typing or unit error (kW in a column read as MW?)",
    "invalid_date": "commissioned_on is not a date (YYYY-MM-DD, YYYY/M/D, YYYY年M月D日 or an Excel serial number)",
    "unknown_status": "status is not connected, under_construction or planned (or a known Chinese spelling)",
    "connected_without_date": "a connected system needs its commissioned_on date",
    "invalid_coordinates": "lon/lat are not numbers within -180..180 / -90..90",
    "invalid_geometry": "the array's polygon could not be built (GEOS) and nothing else locates the row",
    "no_location": "no building_id, lon/lat or array polygon to find the building by",
    "unknown_building_id": "building_id is not among the surveyed buildings",
    "no_building_within_distance": "no surveyed building contains or overlaps the location or lies within "
                                   "progress.match_distance_m of it",
    "outside_survey_area": "location far outside the surveyed buildings (wrong coordinates or coordinate system?)",
}
# Points this far [°] beyond the surveyed buildings' bounds are a data error, not a miss.
OUTSIDE_MARGIN_DEG = 0.05
# Matching rules, best first: a row matched by a better rule in any partition wins.
MATCH_RANK = {"id": 0, "polygon": 1, "contains": 2, "nearest": 3}


def match_registry(registry: pd.DataFrame, buildings, max_distance_m: float) -> pd.DataFrame:
    """Candidate matches of registry rows to the buildings of one partition.

    Rules, in order: the row's ``building_id``; else the polygon of the array
    (the building it overlaps most); else the building containing the point
    (``lon``/``lat``); else the nearest building within ``max_distance_m``.

    Parameters
    ----------
    registry : DataFrame
        ``registry_row``, ``building_id`` (may be NA), ``lon``, ``lat`` [°, WGS84]
        (may be NaN), ``array_geometry`` (shapely polygons in WGS84, may be None).
    buildings : GeoDataFrame
        Surveyed buildings (WGS84) with ``building_id``; a plain DataFrame of
        ids serves when every registry row names its building.
    max_distance_m : float
        Search radius of the nearest-building rule [m].

    Returns
    -------
    DataFrame
        ``registry_row``, ``building_id``, ``match_method``, ``match_distance_m``
        (and ``overlap_deg2`` of the polygon rule); several rows per registry row
        are possible across partitions, the client keeps the best
        (:func:`resolve_matches`: rule, distance, overlap, then the smallest
        building id, so that the outcome does not depend on the partitions).
    """
    cols = ["registry_row", "building_id", "match_method", "match_distance_m"]
    if len(registry) == 0 or len(buildings) == 0:
        return pd.DataFrame(columns=cols)
    ids = buildings["building_id"].astype("string").to_numpy(dtype=object)
    found = []

    has_id = registry["building_id"].notna().to_numpy()
    found.append(match_by_id(registry["registry_row"].to_numpy()[has_id],
                             pd.Index(registry["building_id"].to_numpy(dtype=object)[has_id], dtype=object), ids))
    if has_id.all():
        return found[0]
    spatial = registry[~has_id]
    geoms = np.asarray(buildings.geometry.values, dtype=object)  # outlines are needed from here on only
    tree = shapely.STRtree(geoms)

    poly = spatial[spatial["array_geometry"].notna()]
    if len(poly):
        arrays = poly["array_geometry"].to_numpy(dtype=object)
        a_idx, b_idx = tree.query(arrays, predicate="intersects")
        if len(a_idx):
            overlap = shapely.area(shapely.intersection(arrays[a_idx], geoms[b_idx]))
            pairs = pd.DataFrame({"a": a_idx, "b": b_idx, "overlap": overlap, "id": ids[b_idx]})
            best = pairs.sort_values(["overlap", "id"], ascending=[False, True], kind="stable").drop_duplicates("a")
            found.append(pd.DataFrame({"registry_row": poly["registry_row"].to_numpy()[best["a"]],
                                       "building_id": ids[best["b"]], "match_method": "polygon",
                                       "match_distance_m": 0.0, "overlap_deg2": best["overlap"].to_numpy()}))

    pts = spatial[spatial["array_geometry"].isna() & spatial["lon"].notna() & spatial["lat"].notna()]
    if len(pts):
        points = shapely.points(pts["lon"].to_numpy(float), pts["lat"].to_numpy(float))
        p_idx, b_idx = tree.query(points, predicate="within")
        # a point inside overlapping outlines: the smallest id, whatever the tree's order
        inside = pd.DataFrame({"p": p_idx, "b": b_idx, "id": ids[b_idx]}).sort_values(
            ["p", "id"], kind="stable").drop_duplicates("p")
        found.append(pd.DataFrame({"registry_row": pts["registry_row"].to_numpy()[inside["p"]],
                                   "building_id": ids[inside["b"]], "match_method": "contains",
                                   "match_distance_m": 0.0}))
        rest = np.setdiff1d(np.arange(len(pts)), inside["p"].to_numpy())
        if len(rest) and max_distance_m > 0:
            # search in degrees wide enough in every direction, then measure in metres
            k_lon, k_lat = metres_per_degree(pts["lat"].to_numpy(float)[rest])
            deg = max_distance_m / np.minimum(k_lon, k_lat).min()
            n_idx, b_idx = tree.query_nearest(points[rest], max_distance=deg, return_distance=False, all_matches=True)
            if len(n_idx):
                dist_m = _distance_m(points[rest][n_idx], geoms[b_idx])
                near = pd.DataFrame({"n": n_idx, "b": b_idx, "d": dist_m, "id": ids[b_idx]})
                near = near[near["d"] <= max_distance_m].sort_values(["n", "d", "id"], kind="stable") \
                    .drop_duplicates("n")
                found.append(pd.DataFrame({"registry_row": pts["registry_row"].to_numpy()[rest][near["n"]],
                                           "building_id": near["id"].to_numpy(), "match_method": "nearest",
                                           "match_distance_m": near["d"].to_numpy()}))
    frames = [f for f in found if len(f)]
    # overlap_deg2: the polygon rule's overlap, which the client compares across partitions
    return pd.concat(frames, ignore_index=True).reindex(columns=cols + ["overlap_deg2"]) if frames else \
        pd.DataFrame(columns=cols)


def match_by_id(registry_rows: np.ndarray, registry_ids: pd.Index, building_ids: np.ndarray) -> pd.DataFrame:
    """The id rule of :func:`match_registry` on plain arrays (it runs for every
    partition every night; pandas indexing would cost more than the lookup).

    Parameters
    ----------
    registry_rows : numpy.ndarray of int
        Registry row numbers of the rows that name a building.
    registry_ids : pandas.Index of str (object dtype)
        The building id each of those rows names.
    building_ids : numpy.ndarray of str
        The partition's building ids.
    """
    hit = registry_ids.isin(building_ids)  # a hash lookup (an Arrow-backed isin loops in Python)
    return pd.DataFrame({"registry_row": registry_rows[hit],
                         "building_id": registry_ids.to_numpy()[hit].astype(str),
                         "match_method": "id", "match_distance_m": 0.0})


def _distance_m(points, geoms) -> np.ndarray:
    """Distance [m] from points to geometries nearby, in a local equirectangular frame."""
    lon0, lat0 = shapely.get_x(points), shapely.get_y(points)
    k_lon, k_lat = metres_per_degree(lat0)

    def local(geom_array):
        _, index = shapely.get_coordinates(geom_array, return_index=True)  # transform() visits vertices in this order
        return shapely.transform(geom_array, lambda c: np.column_stack(
            [(c[:, 0] - lon0[index]) * k_lon[index], (c[:, 1] - lat0[index]) * k_lat[index]]))

    return shapely.distance(local(points), local(geoms))


def resolve_matches(registry: pd.DataFrame, candidates: pd.DataFrame,
                    survey_bounds: tuple | None = None) -> pd.DataFrame:
    """One outcome per registry row: its best match, or why it matched nothing.

    ``survey_bounds`` (west, south, east, north [°] of the surveyed buildings),
    when given, tells a location far outside them (``outside_survey_area``)
    from a plain miss.

    Returns
    -------
    DataFrame
        The registry with ``matched_building_id``, ``match_method``,
        ``match_distance_m``, ``unmatched_reason`` (a code of
        :data:`REGISTRY_REASONS`) and ``unmatched_message`` (NA when matched).
    """
    # ties (a point inside two overlapping outlines in different partitions) go to the
    # smallest building id, so that the outcome never depends on how rows were partitioned
    overlap = candidates["overlap_deg2"] if "overlap_deg2" in candidates else pd.Series(0.0, index=candidates.index)
    best = candidates.assign(rank=candidates["match_method"].map(MATCH_RANK),
                             less_overlap=-overlap.astype(float).fillna(0.0)) \
        .sort_values(["registry_row", "rank", "match_distance_m", "less_overlap", "building_id"], kind="stable") \
        .drop_duplicates("registry_row")
    out = registry.drop(columns=["array_geometry"], errors="ignore").merge(
        best[["registry_row", "building_id", "match_method", "match_distance_m"]]
        .rename(columns={"building_id": "matched_building_id"}), on="registry_row", how="left")
    reason = pd.Series(pd.NA, index=out.index, dtype="string")
    unmatched = out["matched_building_id"].isna() & out["reject_reason"].isna()
    has_id = out["building_id"].notna()
    has_loc = (out["lon"].notna() & out["lat"].notna()) | registry["array_geometry"].notna().to_numpy()
    reason[unmatched & has_id] = "unknown_building_id"
    reason[unmatched & ~has_id & has_loc] = "no_building_within_distance"
    reason[unmatched & ~has_id & ~has_loc] = "no_location"
    if survey_bounds is not None:
        west, south, east, north = survey_bounds
        m = OUTSIDE_MARGIN_DEG
        far = (out["lon"] < west - m) | (out["lon"] > east + m) | (out["lat"] < south - m) | (out["lat"] > north + m)
        reason[(reason == "no_building_within_distance").fillna(False) & far] = "outside_survey_area"
    out["unmatched_reason"] = reason.where(out["reject_reason"].isna(), out["reject_reason"])
    out["unmatched_message"] = out["unmatched_reason"].map(REGISTRY_REASONS).astype("string")
    return out


def plan_column(kind: str, plan_id: str) -> str:
    """Name of a per-plan column: ``new_kwp@<id>`` (connected in the plan's
    period) or ``pv_kwp@<id>`` (connected by the end of its period)."""
    return f"{kind}@{plan_id}"


def plan_periods(plans: Iterable, as_of: dt.date) -> dict[str, tuple[dt.date, dt.date]]:
    """Each plan's counting period ``(baseline_date, end]``: the end is its
    deadline, or the as-of date while the deadline is still ahead (a plan whose
    baseline is after the as-of date has an empty period)."""
    return {p.id: (p.baseline_date, min(p.deadline, as_of)) for p in plans}


def pv_by_building(resolved: pd.DataFrame, baseline_date: dt.date, as_of: dt.date,
                   periods: Mapping[str, tuple[dt.date, dt.date]] | None = None) -> pd.DataFrame:
    """Installed, new and pipeline capacity per matched building [kWp].

    Only systems commissioned on or before ``as_of`` count; several registry
    rows on one building add up.

    Parameters
    ----------
    resolved : DataFrame
        Registry rows with ``matched_building_id``, ``status``, ``commissioned_on``, ``capacity_kwp``.
    baseline_date : datetime.date
        ``new_kwp`` counts connected systems commissioned after it.
    as_of : datetime.date
        The date the figures describe.
    periods : mapping of plan id -> (start, end), optional
        Per plan (:func:`plan_periods`), two more columns: ``new_kwp@<id>``,
        connected systems commissioned in ``(start, end]``, and ``pv_kwp@<id>``,
        connected systems commissioned on or before ``end`` [kWp].
    """
    ok = resolved[resolved["matched_building_id"].notna()].copy()
    date = pd.to_datetime(ok["commissioned_on"]).dt.date
    dated = (ok["status"] == CONNECTED) & date.notna()
    connected = dated & (date <= as_of)
    ok["installed_kwp"] = np.where(connected, ok["capacity_kwp"], 0.0)
    ok["new_kwp"] = np.where(connected & (date > baseline_date), ok["capacity_kwp"], 0.0)
    ok["pipeline_kwp"] = np.where(~connected, ok["capacity_kwp"], 0.0)
    # a system connected after the as-of date was still being built then
    ok["building_kwp"] = np.where(~connected & (ok["status"] != "planned"), ok["capacity_kwp"], 0.0)
    columns = ["installed_kwp", "new_kwp", "pipeline_kwp", "building_kwp"]
    for plan_id, (start, end) in (periods or {}).items():
        by_end = dated & (date <= end)
        ok[plan_column("new_kwp", plan_id)] = np.where(by_end & (date > start), ok["capacity_kwp"], 0.0)
        ok[plan_column("pv_kwp", plan_id)] = np.where(by_end, ok["capacity_kwp"], 0.0)
        columns += [plan_column("new_kwp", plan_id), plan_column("pv_kwp", plan_id)]
    per = ok.groupby("matched_building_id")[columns].sum()
    per["has_pv"] = per["installed_kwp"] > 0
    per["pv_status"] = np.select([per["has_pv"], per["building_kwp"] > 0, per["pipeline_kwp"] > 0],
                                 [CONNECTED, "under_construction", "planned"], "none")
    per.index.name = "building_id"
    return per.drop(columns="building_kwp")


def registry_outcome(registry: pd.DataFrame | None, results, cfg: SurveyConfig, as_of: dt.date,
                     survey_bounds: tuple | None):
    """Resolve the partitions' candidate matches into one outcome per registry row.

    Returns ``(resolved, per_building)``; both empty when there is no registry.
    """
    periods = plan_periods(cfg.plans, as_of)
    if registry is None:
        plan_columns = [plan_column(k, p) for p in periods for k in ("new_kwp", "pv_kwp")]
        return None, pd.DataFrame(columns=["installed_kwp", "new_kwp", "pipeline_kwp", *plan_columns, "has_pv",
                                           "pv_status"])
    frames = [r.matches for r in results if r.matches is not None and len(r.matches)]
    candidates = pd.concat(frames, ignore_index=True) if frames else \
        pd.DataFrame(columns=["registry_row", "building_id", "match_method", "match_distance_m"])
    resolved = resolve_matches(registry, candidates, survey_bounds)
    return resolved, pv_by_building(resolved, cfg.default_plan.baseline_date, as_of, periods)
