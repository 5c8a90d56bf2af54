"""Progress toward the plan's two rooftop-PV targets: registry matching, ratios,
new capacity, remaining potential, and the pace and forecast from a history.

Pure functions over DataFrames; the run's I/O lives in ``workflow`` and ``io``.

Definitions (stated in every ``progress.json``):

- **installation ratio (area)** = usable roof area of buildings carrying connected
  PV ÷ usable roof area of all buildings with a usable roof (the default basis);
  the **count ratio** divides building counts instead.
- **installed capacity** counts connected systems; **new capacity** those
  commissioned after the baseline date; planned and under-construction systems
  are reported as the pipeline and do not count yet.
- **remaining potential** = capacity and yield of usable roofs without connected PV.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import shapely

# Registry statuses that count as installed; the others are the pipeline.
CONNECTED = "connected"
PIPELINE_STATUSES = ("planned", "under_construction")
# Matching rules, best first: a row matched by a better rule in any partition wins.
MATCH_RANK = {"id": 0, "polygon": 1, "contains": 2, "nearest": 3}
RATIO_DEFINITION = {
    "area": "usable roof area of buildings with connected PV / usable roof area of all buildings with a usable roof",
    "count": "buildings with connected PV / buildings with a usable roof",
}


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
            lat0 = np.radians(pts["lat"].to_numpy(float)[rest])
            # search in degrees with the wider (longitude) extent, then measure in metres
            deg = max_distance_m / (111_320.0 * np.cos(lat0).min())
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
    phi = np.radians(lat0)
    # metres per degree on the WGS84 ellipsoid (series expansion, < 1 cm/° error)
    k_lat = 111_132.954 - 559.822 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    k_lon = 111_412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi)

    def local(geom_array):
        _, index = shapely.get_coordinates(geom_array, return_index=True)  # transform() visits vertices in this order
        return shapely.transform(geom_array, lambda c: np.column_stack(
            [(c[:, 0] - lon0[index]) * k_lon[index], (c[:, 1] - lat0[index]) * k_lat[index]]))

    return shapely.distance(local(points), local(geoms))


def resolve_matches(registry: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """One outcome per registry row: its best match, or why it matched nothing.

    Returns
    -------
    DataFrame
        The registry with ``matched_building_id``, ``match_method``,
        ``match_distance_m`` and ``unmatched_reason`` (NA when matched).
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
    out["unmatched_reason"] = reason.where(out["reject_reason"].isna(), out["reject_reason"])
    return out


def pv_by_building(resolved: pd.DataFrame, baseline_date: dt.date, as_of: dt.date) -> pd.DataFrame:
    """Installed, new and pipeline capacity per matched building [kWp].

    Only systems commissioned on or before ``as_of`` count; several registry
    rows on one building add up.
    """
    ok = resolved[resolved["matched_building_id"].notna()].copy()
    date = pd.to_datetime(ok["commissioned_on"]).dt.date
    connected = (ok["status"] == CONNECTED) & date.notna() & (date <= as_of)
    ok["installed_kwp"] = np.where(connected, ok["capacity_kwp"], 0.0)
    ok["new_kwp"] = np.where(connected & (date > baseline_date), ok["capacity_kwp"], 0.0)
    ok["pipeline_kwp"] = np.where(~connected, ok["capacity_kwp"], 0.0)
    # a system connected after the as-of date was still being built then
    ok["building_kwp"] = np.where(~connected & (ok["status"] != "planned"), ok["capacity_kwp"], 0.0)
    per = ok.groupby("matched_building_id")[["installed_kwp", "new_kwp", "pipeline_kwp", "building_kwp"]].sum()
    per["has_pv"] = per["installed_kwp"] > 0
    per["pv_status"] = np.select([per["has_pv"], per["building_kwp"] > 0, per["pipeline_kwp"] > 0],
                                 [CONNECTED, "under_construction", "planned"], "none")
    per.index.name = "building_id"
    return per.drop(columns="building_kwp")


PROGRESS_SUMS = ["building_count", "usable_building_count", "usable_area_m2", "usable_area_with_pv_m2",
                 "buildings_with_pv", "installed_kwp", "new_kwp_since_baseline", "pipeline_kwp",
                 "capacity_kwp", "annual_yield_kwh", "remaining_potential_kwp", "remaining_potential_kwh",
                 "candidate_area_without_pv_m2"]


def progress_sums(buildings: pd.DataFrame, by: str, min_candidate_kwp: float) -> pd.DataFrame:
    """Additive progress figures per ``by`` (park_id or district) of some buildings.

    ``buildings`` needs usable_area_m2, capacity_kwp, annual_yield_kwh,
    has_pv, installed_kwp, new_kwp and pipeline_kwp. Sums of partitions add up.
    """
    usable = buildings["usable_area_m2"].to_numpy() > 0
    has_pv = buildings["has_pv"].to_numpy(dtype=bool)
    cap = buildings["capacity_kwp"].to_numpy()
    free = ~has_pv
    frame = pd.DataFrame({
        by: buildings[by].astype("string").fillna("").to_numpy(),
        "building_count": 1,
        "usable_building_count": usable.astype(int),
        "usable_area_m2": buildings["usable_area_m2"].to_numpy(),
        "usable_area_with_pv_m2": np.where(has_pv & usable, buildings["usable_area_m2"], 0.0),
        "buildings_with_pv": (has_pv & usable).astype(int),
        "installed_kwp": buildings["installed_kwp"].to_numpy(),
        "new_kwp_since_baseline": buildings["new_kwp"].to_numpy(),
        "pipeline_kwp": buildings["pipeline_kwp"].to_numpy(),
        "capacity_kwp": cap,
        "annual_yield_kwh": buildings["annual_yield_kwh"].to_numpy(),
        "remaining_potential_kwp": np.where(free, cap, 0.0),
        "remaining_potential_kwh": np.where(free, buildings["annual_yield_kwh"], 0.0),
        "candidate_area_without_pv_m2": np.where(free & (cap >= min_candidate_kwp), buildings["usable_area_m2"], 0.0),
    })
    return frame.groupby(by, sort=True)[PROGRESS_SUMS].sum()


def progress_metrics(sums: pd.DataFrame, target_ratio, new_capacity_target_kwp, basis: str = "area") -> pd.DataFrame:
    """Ratios, target shares and gaps from summed figures (one row per group).

    Parameters
    ----------
    sums : DataFrame
        Output of :func:`progress_sums` (summed over partitions).
    target_ratio : float or array
        Installation-ratio target per row [0..1].
    new_capacity_target_kwp : float or array
        New-capacity target per row [kWp]; NaN where a group has none.
    basis : {'area', 'count'}
        Which ratio the gap and the ``install_ratio_frac`` use.
    """
    m = sums.copy()
    area = m["usable_area_m2"].where(m["usable_area_m2"] > 0)
    count = m["usable_building_count"].where(m["usable_building_count"] > 0)
    m["install_ratio_area_frac"] = (m["usable_area_with_pv_m2"] / area).fillna(0.0)
    m["install_ratio_count_frac"] = (m["buildings_with_pv"] / count).fillna(0.0)
    m["install_ratio_frac"] = m[f"install_ratio_{basis}_frac"]
    m["target_install_ratio"] = target_ratio
    m["ratio_gap_frac"] = (m["target_install_ratio"] - m["install_ratio_frac"]).clip(lower=0)
    if basis == "area":
        m["ratio_gap_area_m2"] = (m["target_install_ratio"] * m["usable_area_m2"] - m["usable_area_with_pv_m2"]).clip(lower=0)
        m["can_close_ratio_gap"] = m["candidate_area_without_pv_m2"] >= m["ratio_gap_area_m2"] - 1e-9
    else:
        m["ratio_gap_area_m2"] = np.nan
        m["can_close_ratio_gap"] = m["ratio_gap_frac"] <= (m["usable_building_count"] - m["buildings_with_pv"]) / count.fillna(1)
    m["new_capacity_target_kwp"] = new_capacity_target_kwp
    target = m["new_capacity_target_kwp"].where(m["new_capacity_target_kwp"] > 0)
    m["new_capacity_target_share_frac"] = m["new_kwp_since_baseline"] / target
    m["new_capacity_gap_kwp"] = (m["new_capacity_target_kwp"] - m["new_kwp_since_baseline"]).clip(lower=0)
    m["can_close_capacity_gap"] = (m["remaining_potential_kwp"] >= m["new_capacity_gap_kwp"] - 1e-9).where(target.notna())
    return m


def pace_and_forecast(history: pd.DataFrame, value: str, target: float, window: int = 5) -> dict:
    """Pace [per day] of ``value`` over the last ``window`` points and the date
    the target is met at that pace.

    ``history`` has ``as_of`` (dates) and ``value`` columns, one row per run.
    The pace is the least-squares slope over the window, so a constant pace is
    forecast exactly. Returns ``{"pace_per_day", "forecast_date", "status"}``
    with status 'met', 'on_pace' (a date), 'no_progress' or 'too_few_points'.
    """
    h = history.dropna(subset=[value]).sort_values("as_of").drop_duplicates("as_of", keep="last").tail(window)
    if len(h) and h[value].iloc[-1] >= target:
        return {"pace_per_day": None, "forecast_date": None, "status": "met"}
    if len(h) < 2:
        return {"pace_per_day": None, "forecast_date": None, "status": "too_few_points"}
    days = np.array([(pd.Timestamp(d) - pd.Timestamp(h["as_of"].iloc[0])).days for d in h["as_of"]], dtype=float)
    values = h[value].to_numpy(dtype=float)
    slope, intercept = np.polyfit(days, values, 1)
    if slope <= 0:
        return {"pace_per_day": float(slope), "forecast_date": None, "status": "no_progress"}
    days_needed = (target - intercept) / slope
    date = pd.Timestamp(h["as_of"].iloc[0]) + pd.to_timedelta(days_needed, unit="D")
    return {"pace_per_day": float(slope), "forecast_date": date.date().isoformat(), "status": "on_pace"}
