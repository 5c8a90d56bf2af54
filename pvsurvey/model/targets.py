"""Progress toward the plan's two rooftop-PV targets: ratios, new capacity,
remaining potential, the pace and forecast from a history, and the progress
tables and document of a run.

Pure functions over DataFrames; the run's I/O lives in :mod:`pvsurvey.pipeline`
and :mod:`pvsurvey.store`.

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
import pyarrow as pa



from ..config.schema import Plan, SurveyConfig
from .registry_matching import plan_column
from .uncertainty import (Z90, CELL_SUMMED, PV_AREA_SUMSQ, SUMSQ_COLUMNS, BandParts, add_bands, building_bands,
                          cell_squares, forecast_range, squares)


RATIO_DEFINITION = {
    "area": "usable roof area of buildings with connected PV / usable roof area of all buildings with a usable roof",
    "count": "buildings with connected PV / buildings with a usable roof",
}


# Per plan (suffix ``@<plan id>``): new capacity in the plan's period, and the
# connected PV at its end (what the final assessment after the deadline counts).
PLAN_SUMS = ["new_kwp_since_baseline", "installed_kwp", "usable_area_with_pv_m2", "buildings_with_pv", PV_AREA_SUMSQ]

PROGRESS_SUMS = ["building_count", "usable_building_count", "usable_area_m2", "usable_area_with_pv_m2",
                 "buildings_with_pv", "installed_kwp", "new_kwp_since_baseline", "pipeline_kwp",
                 "capacity_kwp", "annual_yield_kwh", "remaining_potential_kwp", "remaining_potential_kwh",
                 "candidate_area_without_pv_m2", *SUMSQ_COLUMNS]


def progress_sums(buildings: pd.DataFrame, by: str, min_candidate_kwp: float, cells: dict | None = None,
                  figures: dict | None = None) -> pd.DataFrame:
    """Additive progress figures per ``by`` (park_id or district) of some buildings.

    ``buildings`` needs usable_area_m2, capacity_kwp, annual_yield_kwh,
    has_pv, installed_kwp, new_kwp and pipeline_kwp; per plan it may carry
    ``new_kwp@<id>`` and ``pv_kwp@<id>`` (:func:`pvsurvey.model.registry_matching.pv_by_building`),
    which give the :data:`PLAN_SUMS` of that plan, suffixed ``@<id>``. Sums of
    partitions add up. ``cells``, a dict, receives under ``by`` the yields summed
    per (``by``, ``weather_cell``) (needs ``weather_cell``). ``figures``: the
    buildings' :func:`building_figures`, when several levels sum the same ones.

    Group codes and ``np.bincount`` per column, not a pandas frame and groupby per
    level: :func:`with_pv_columns` of 50,000 roofs (three levels) took 0.166 s with
    those, 0.085 s so.
    """
    if figures is None:
        figures = building_figures(buildings, min_candidate_kwp)
    codes, names = group_codes(buildings[by])
    n = len(names)
    sums = {}
    for col, values in figures.items():
        total = np.bincount(codes, weights=values, minlength=n)
        sums[col] = total.astype(np.int64) if values.dtype.kind in "ib" else total
    out = pd.DataFrame(sums, index=pd.Index(names, name=by))
    if cells is not None:  # the yields per (group, weather cell): the per-cell part of the bands
        if "weather_cell" not in cells:  # factorized once for every level
            cells["weather_cell"] = pd.factorize(buildings["weather_cell"].astype("string").fillna(""))
        values = pd.DataFrame({c: figures[c] for c in CELL_SUMMED})
        cells[by] = cell_sums((codes, names), cells["weather_cell"], values, by)
    return out


def group_codes(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, names)``: each row's group number and the groups' names as text in
    sorted order, a missing key counting as "" (a pandas groupby on the text
    column, sort=True, gives the same groups). The key column is factorized as it
    is (Arrow strings, numbers) and only the few distinct names are made text."""
    codes, uniques = pd.factorize(keys)
    names = np.array(["" if pd.isna(u) else str(u) for u in uniques], dtype=object)
    missing = codes < 0
    if missing.any():
        blank = np.flatnonzero(names == "")
        if not len(blank):
            names = np.append(names, np.array([""], dtype=object))
            blank = [len(names) - 1]
        codes = np.where(missing, blank[0], codes)
    unique_names, merged = np.unique(names, return_inverse=True)  # sorted; equal texts of distinct keys merge
    return merged[codes].astype(np.int64), unique_names.astype(object)


def building_figures(buildings: pd.DataFrame, min_candidate_kwp: float) -> dict[str, np.ndarray]:
    """Each building's share of every progress sum (:data:`PROGRESS_SUMS` and the
    plans' :data:`PLAN_SUMS`), one array per sum in that order: what
    :func:`progress_sums` adds up per group (counts as integers)."""
    usable = buildings["usable_area_m2"].to_numpy(dtype=float)
    is_usable = usable > 0
    has_pv = buildings["has_pv"].to_numpy(dtype=bool)
    cap = buildings["capacity_kwp"].to_numpy(dtype=float)
    yield_kwh = buildings["annual_yield_kwh"].to_numpy(dtype=float)
    free = ~has_pv
    f = {
        "building_count": np.ones(len(buildings), dtype=np.int64),
        "usable_building_count": is_usable.astype(np.int64),
        "usable_area_m2": usable,
        "usable_area_with_pv_m2": np.where(has_pv & is_usable, usable, 0.0),
        "buildings_with_pv": (has_pv & is_usable).astype(np.int64),
        "installed_kwp": buildings["installed_kwp"].to_numpy(dtype=float),
        "new_kwp_since_baseline": buildings["new_kwp"].to_numpy(dtype=float),
        "pipeline_kwp": buildings["pipeline_kwp"].to_numpy(dtype=float),
        "capacity_kwp": cap,
        "annual_yield_kwh": yield_kwh,
        "remaining_potential_kwp": np.where(free, cap, 0.0),
        "remaining_potential_kwh": np.where(free, yield_kwh, 0.0),
        "candidate_area_without_pv_m2": np.where(free & (cap >= min_candidate_kwp), usable, 0.0),
    }
    # the squares behind the bands (pvsurvey.model.uncertainty): sums of squares add up over partitions
    f.update(squares(f))
    f = {c: f[c] for c in PROGRESS_SUMS}
    for plan_id in plan_ids(buildings.columns):
        pv = buildings[plan_column("pv_kwp", plan_id)].to_numpy(dtype=float)
        usable_with_pv = (pv > 0) & is_usable
        with_pv = np.where(usable_with_pv, usable, 0.0)
        f[f"new_kwp_since_baseline@{plan_id}"] = buildings[plan_column("new_kwp", plan_id)].to_numpy(dtype=float)
        f[f"installed_kwp@{plan_id}"] = pv
        f[f"usable_area_with_pv_m2@{plan_id}"] = with_pv
        f[f"buildings_with_pv@{plan_id}"] = usable_with_pv.astype(np.int64)
        f[f"{PV_AREA_SUMSQ}@{plan_id}"] = np.square(with_pv)
    return f


def cell_sums(groups, weather_cells, values: pd.DataFrame, by: str) -> pd.DataFrame:
    """``values`` summed per (group, weather cell), indexed by both.

    ``groups`` and ``weather_cells`` are Series (or ``(codes, names)`` pairs from
    :func:`pandas.factorize`, to factorize a column once for several levels).
    Integer codes and ``np.bincount``: a pandas groupby on two text keys took
    about 1 s per million roofs.
    """
    g_codes, g_names = groups if isinstance(groups, tuple) else pd.factorize(groups)
    c_codes, c_names = weather_cells if isinstance(weather_cells, tuple) else pd.factorize(weather_cells)
    n_cells = max(len(c_names), 1)
    key = g_codes.astype(np.int64) * n_cells + c_codes
    span = max(len(g_names), 1) * n_cells
    if span <= 4 * len(key) + 1024:  # dense: one pass, no sort
        present = np.flatnonzero(np.bincount(key, minlength=span))
        lookup = np.zeros(span, dtype=np.int64)
        lookup[present] = np.arange(len(present))
        keys, inverse = present, lookup[key]
    else:
        keys, inverse = np.unique(key, return_inverse=True)
    index = pd.MultiIndex.from_arrays([np.asarray(g_names, dtype=object)[keys // n_cells],
                                       np.asarray(c_names, dtype=object)[keys % n_cells]], names=[by, "weather_cell"])
    out = pd.DataFrame({c: np.bincount(inverse, weights=values[c].to_numpy(dtype=float), minlength=len(keys))
                        for c in values.columns}, index=index)
    return out.sort_index()


def plan_ids(columns) -> list[str]:
    """The plans whose per-plan columns (``new_kwp@<id>``) are among ``columns``, in their order."""
    prefix = plan_column("new_kwp", "")
    return [c[len(prefix):] for c in columns if isinstance(c, str) and c.startswith(prefix)]


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
    start = pd.Timestamp(h["as_of"].iloc[0])
    days_needed = (target - intercept) / slope if slope > 0 else np.inf
    # a flat history fits a slope of rounding noise (numpy 2.4: about 1e-19 per day), not a pace;
    # and a date past pandas' last one (2262) is no date at this pace
    noise = 1e-9 * max(1.0, float(np.abs(values).max()))
    if slope * max(days[-1], 1.0) <= noise or not days_needed < (pd.Timestamp.max - start).days:
        return {"pace_per_day": float(slope), "forecast_date": None, "status": "no_progress"}
    date = start + pd.to_timedelta(round(days_needed, 6), unit="D")  # float noise
    return {"pace_per_day": float(slope), "forecast_date": date.date().isoformat(), "status": "on_pace"}


BY_LEVEL = ("park_id", "district", "city")


def with_pv_columns(table: pa.Table, per_building: pd.DataFrame, min_candidate_kwp: float,
                    bands: BandParts | None = None) -> tuple[pa.Table, dict[str, pd.DataFrame]]:
    """One partition's buildings with the registry's PV columns (``has_pv``,
    ``installed_kwp``, ``pv_status``) and its progress sums per park, district
    and city (sums of partitions add up).

    ``per_building`` is the registry outcome indexed by building id (only the
    matched buildings; any others are simply absent). ``bands``: the uncertainty
    parts; each roof then gains its P90 / P10 columns.
    """
    cols = ["building_id", "park_id", "district", "usable_area_m2", "capacity_kwp", "annual_yield_kwh",
            "weather_cell"]
    frame = table.select([c for c in cols if c in table.column_names]).to_pandas()
    if "weather_cell" not in frame:
        frame["weather_cell"] = ""
    pv = per_building.reindex(frame["building_id"].astype(str))
    frame["has_pv"] = pv["has_pv"].fillna(False).to_numpy(dtype=bool)
    per_plan = [plan_column(k, p) for p in plan_ids(per_building.columns) for k in ("new_kwp", "pv_kwp")]
    for col in ("installed_kwp", "new_kwp", "pipeline_kwp", *per_plan):
        frame[col] = pv[col].astype(float).fillna(0.0).to_numpy(dtype=float)
    frame["city"] = "city"
    cells: dict = {}
    figures = building_figures(frame, min_candidate_kwp)
    sums = {by: progress_sums(frame, by, min_candidate_kwp, cells, figures) for by in BY_LEVEL}
    sums.update({cell_key(by): cells[by] for by in BY_LEVEL})
    status = pv["pv_status"].astype("string").fillna("none").array
    table = table.append_column("has_pv", pa.array(frame["has_pv"].to_numpy()))
    table = table.append_column("installed_kwp", pa.array(frame["installed_kwp"].to_numpy()))
    table = table.append_column("pv_status", pa.array(status, type=pa.string()))
    if bands is not None:  # each roof's P90 / P10 (pvsurvey.model.uncertainty), after the PV columns
        for name, values in building_bands(frame, bands).items():
            table = table.append_column(name, pa.array(values))
    return table, sums


def cell_key(by: str) -> str:
    """Key of the per-(group, weather cell) yields in a partition's progress sums."""
    return f"{by}|weather_cell"


class ProgressSums:
    """The partitions' progress sums, added up per park, district or city."""

    def __init__(self, parts: list[dict[str, pd.DataFrame]]):
        self.parts = parts

    def sums(self, by: str) -> pd.DataFrame:
        frames = [p[by] for p in self.parts if p is not None and len(p[by])]
        if not frames:
            return pd.DataFrame(columns=PROGRESS_SUMS)
        return pd.concat(frames).groupby(level=0).sum()

    def cell_sums(self, by: str) -> pd.DataFrame | None:
        """The yields per (``by``, weather cell), added up (None from sums written without them)."""
        key = cell_key(by)
        frames = [p[key] for p in self.parts if p is not None and key in p and len(p[key])]
        return pd.concat(frames).groupby(level=[0, 1]).sum() if frames else None


def plan_status(plan: Plan, as_of: dt.date) -> str:
    """Where a plan stands on ``as_of``: 'not_started' (before its baseline date),
    'in_progress' (up to its deadline) or 'assessed' (after it: final figures at the deadline)."""
    if as_of < plan.baseline_date:
        return "not_started"
    return "assessed" if as_of > plan.deadline else "in_progress"


# Figures that describe the run date, not a plan's deadline: blank in a final assessment.
_NOT_AT_DEADLINE = ["pipeline_kwp", "remaining_potential_kwp", "remaining_potential_kwh",
                    "candidate_area_without_pv_m2", "can_close_ratio_gap", "can_close_capacity_gap"]


_BANDS_NOT_AT_DEADLINE = ["remaining_potential_p90_kwp", "remaining_potential_p10_kwp", "remaining_potential_p90_kwh",
                          "remaining_potential_p10_kwh", "can_close_capacity_gap_p90"]


def _plan_sums(sums: pd.DataFrame, plan_id: str | None, assessed: bool) -> pd.DataFrame:
    """The summed figures of one plan under the :data:`PROGRESS_SUMS` names: its new
    capacity, and after its deadline the PV connected by then. ``plan_id`` None:
    the figures as of the run date (the default plan's baseline)."""
    out = sums.reindex(columns=PROGRESS_SUMS, fill_value=0).apply(pd.to_numeric)
    if plan_id is None:
        return out
    for col in PLAN_SUMS if assessed else ["new_kwp_since_baseline"]:
        out[col] = sums[f"{col}@{plan_id}"].astype(float) if f"{col}@{plan_id}" in sums else 0.0
    return out


def plan_scope_parks(plan: Plan, parks: pd.DataFrame | None) -> list[str]:
    """Ids of the parks in a plan's scope (its districts' parks and its listed parks), in the parks' order."""
    if parks is None:
        return []
    ids = parks["park_id"].astype(str)
    inside = parks["district"].astype(str).isin(plan.scope.districts) | ids.isin(plan.scope.parks)
    return list(ids[inside.to_numpy()])


def plan_tables(collector: ProgressSums, parks: pd.DataFrame | None, plan: Plan, basis: str, as_of: dt.date,
                current: bool = False, bands: BandParts | None = None) -> dict:
    """Total, district and park metrics of one plan (DataFrames) and how they are dated.

    Before the deadline the figures describe ``as_of``; after it (``status``
    'assessed') they describe the deadline: new capacity commissioned in
    ``(baseline_date, deadline]`` and the ratio of roofs with PV connected by the
    deadline, with ``ratio_met`` / ``new_capacity_met`` and their margins, and
    ``outcome`` 'met' or 'missed' per row. A plan with a scope covers its
    districts' and parks' roofs only; its total row is ``'scope'``, else ``'city'``.
    ``current``: the default plan's targets against the figures of ``as_of``,
    whatever its status (progress.json's top-level keys). ``bands``: the
    uncertainty parts; every row then carries its P90 / P10 columns
    (:func:`pvsurvey.model.uncertainty.add_bands`).
    """
    status = plan_status(plan, as_of)
    assessed = status == "assessed" and not current
    t = plan.targets
    basis = plan.ratio_basis or basis
    suffix = None if current else plan.id

    park_sums = collector.sums("park_id")
    park_sums = park_sums[park_sums.index != ""]
    if parks is not None:
        park_sums = park_sums.reindex(parks["park_id"].astype(str)).fillna(0)
    districts = collector.sums("district")
    districts = districts[districts.index != ""]
    park_cells = collector.cell_sums("park_id")
    if plan.scope.is_city:
        total, total_level = collector.sums("city"), "city"
        total_cells = collector.cell_sums("city")
    else:  # roofs with a district lie in a park: the scope's parks add up to its total
        park_sums = park_sums.loc[plan_scope_parks(plan, parks)]
        districts = districts.reindex([d for d in districts.index if d in plan.scope.districts])
        total = park_sums.sum().to_frame("scope").T if len(park_sums) else pd.DataFrame(columns=park_sums.columns)
        total_level = "scope"
        total_cells = None
        if park_cells is not None:
            inside = park_cells[park_cells.index.get_level_values(0).isin(park_sums.index)]
            total_cells = inside.groupby(level=1).sum().assign(scope="scope").set_index("scope", append=True) \
                .reorder_levels([1, 0])
    cells = {"total": total_cells, "district": collector.cell_sums("district"), "park": park_cells}

    def metrics(sums, ratio, cap_kwp, level):
        m = progress_metrics(_plan_sums(sums, suffix, assessed), ratio, cap_kwp, basis)
        if bands is not None:
            m = add_bands(m, bands, cell_squares(cells[level], m.index), basis)
        m = m.drop(columns=[c for c in SUMSQ_COLUMNS if c in m])
        target_cap = m["new_capacity_target_kwp"].where(m["new_capacity_target_kwp"] > 0)
        m["ratio_margin_frac"] = m["install_ratio_frac"] - m["target_install_ratio"]
        m["ratio_met"] = m["ratio_margin_frac"] >= -1e-12
        m["new_capacity_margin_kwp"] = m["new_kwp_since_baseline"] - target_cap
        cap_met = (m["new_capacity_margin_kwp"] >= -1e-9).to_numpy()
        has_cap = target_cap.notna().to_numpy()
        m["new_capacity_met"] = pd.Series(np.where(has_cap, cap_met, None), index=m.index, dtype=object)
        if assessed:
            m[[c for c in _NOT_AT_DEADLINE + _BANDS_NOT_AT_DEADLINE if c in m]] = np.nan
            m["outcome"] = np.where(m["ratio_met"].to_numpy() & (cap_met | ~has_cap), "met", "missed")
        return m

    total = metrics(total, t.install_ratio, t.new_capacity_mw * 1000.0, "total")
    d_ratio = [t.district_install_ratio.get(d, t.install_ratio) for d in districts.index]
    d_cap = [t.district_new_capacity_mw.get(d, np.nan) * 1000.0 for d in districts.index]
    districts = metrics(districts, d_ratio, d_cap, "district")
    districts.index.name = "district"
    p_ratio = [t.park_install_ratio.get(p, t.install_ratio) for p in park_sums.index]
    p_cap = [t.park_new_capacity_mw.get(p, np.nan) * 1000.0 for p in park_sums.index]
    park_table = metrics(park_sums, p_ratio, p_cap, "park")
    park_table.index.name = "park_id"
    if parks is not None:
        info = parks.set_index(parks["park_id"].astype(str))[["park_name", "district"]]
        park_table = info.join(park_table, how="right")
    return {"city": total, "district": districts, "park": park_table, "plan": plan, "status": status,
            "total_level": total_level, "basis": basis,
            "figures_as_of": plan.deadline if assessed else as_of}


def progress_tables(collector: ProgressSums, parks: pd.DataFrame | None, cfg: SurveyConfig,
                    as_of: dt.date | None = None, bands: BandParts | None = None) -> dict:
    """City, district and park metrics of the default plan's targets as of the run date (DataFrames)."""
    return plan_tables(collector, parks, cfg.default_plan, cfg.progress.ratio_basis,
                       as_of or cfg.progress.as_of or dt.date.today(), current=True, bands=bands)


def _records(frame: pd.DataFrame, key: str) -> list[dict]:
    out = frame.reset_index().rename(columns={"index": key})
    return [{k: _plain(v) for k, v in row.items()} for row in out.to_dict(orient="records")]


def _first_record(frame: pd.DataFrame) -> dict:
    return {k: _plain(v) for k, v in frame.iloc[0].to_dict().items()} if len(frame) else {}


def _forecast(history: pd.DataFrame | None, tables: dict, as_of: dt.date, window: int) -> dict | None:
    """Pace and forecast of a plan in progress from its history rows up to ``as_of``."""
    plan = tables["plan"]
    if history is None or not len(history):
        return None
    h = history[history["level"] == tables["total_level"]]
    if "plan" in h:
        h = h[h["plan"].astype(str) == plan.id]
    if "plan_status" in h:
        h = h[h["plan_status"].fillna("in_progress") == "in_progress"]
    h = h.assign(as_of=pd.to_datetime(h["as_of"]))
    h = h[(h["as_of"] <= pd.Timestamp(as_of)) & (h["as_of"] >= pd.Timestamp(plan.baseline_date))]
    if not len(h):
        return None
    t = plan.targets
    forecast = {
        "new_capacity": pace_and_forecast(h, "new_kwp_since_baseline", t.new_capacity_mw * 1000.0, window),
        "install_ratio": pace_and_forecast(h, f"install_ratio_{tables['basis']}_frac", t.install_ratio, window),
        "points": int(h["as_of"].nunique()),
        "window_runs": window,
    }
    forecast["new_capacity"]["unit"] = "kWp per day"
    forecast["install_ratio"]["unit"] = "ratio per day"
    # the date as a range (pvsurvey.model.uncertainty.forecast_range): the ratio's band today
    # (sd from its P90-P10 width) and the pace's own fit; new capacity is counted, only the fit
    total = tables["city"]
    ratio_sd = 0.0
    if tables["basis"] == "area" and "install_ratio_p10_frac" in total and len(total):
        ratio_sd = float((total["install_ratio_p10_frac"].iloc[0] - total["install_ratio_p90_frac"].iloc[0])
                         / (2 * Z90))
    if "install_ratio_p10_frac" in total:
        for key, value, target, sd in (("new_capacity", "new_kwp_since_baseline", t.new_capacity_mw * 1000.0, 0.0),
                                       ("install_ratio", f"install_ratio_{tables['basis']}_frac", t.install_ratio,
                                        ratio_sd)):
            f = forecast[key]
            if f["status"] == "on_pace":
                w = h.dropna(subset=[value]).sort_values("as_of").drop_duplicates("as_of", keep="last").tail(window)
                f["forecast_range"] = forecast_range(w["as_of"], w[value], target, sd)
    for target in ("new_capacity", "install_ratio"):
        f = forecast[target]
        f["meets_deadline"] = (f["status"] == "met" or (f["forecast_date"] is not None
                                                         and f["forecast_date"] <= plan.deadline.isoformat()))
    return forecast


def _assessment(tables: dict) -> dict:
    """The final assessment of a plan at its deadline, from its total row."""
    plan, total = tables["plan"], _first_record(tables["city"])
    cap_target = total.get("new_capacity_target_kwp") or None
    return {
        "date": plan.deadline.isoformat(),
        "outcome": total.get("outcome", "missed"),
        "install_ratio": {"target": total.get("target_install_ratio"), "achieved": total.get("install_ratio_frac"),
                          "met": total.get("ratio_met"), "margin_frac": total.get("ratio_margin_frac")},
        "new_capacity": None if cap_target is None else {
            "target_kwp": cap_target, "achieved_kwp": total.get("new_kwp_since_baseline"),
            "met": total.get("new_capacity_met"), "margin_kwp": total.get("new_capacity_margin_kwp")},
    }


def plan_targets(plan: Plan) -> dict:
    """A plan's targets and period as progress.json writes them."""
    return {"install_ratio": plan.targets.install_ratio, "new_capacity_kwp": plan.targets.new_capacity_mw * 1000.0,
            "baseline_date": plan.baseline_date.isoformat(), "deadline": plan.deadline.isoformat()}


def scope_text(plan: Plan) -> str:
    """A plan's scope in words: 'city', or its districts and parks."""
    if plan.scope.is_city:
        return "city"
    parts = ([f"districts: {', '.join(plan.scope.districts)}"] if plan.scope.districts else []) + \
        ([f"parks: {', '.join(plan.scope.parks)}"] if plan.scope.parks else [])
    return "; ".join(parts)


def plan_document(tables: dict, as_of: dt.date, history: pd.DataFrame | None, window: int) -> dict:
    """One entry of progress.json's ``plans``: the plan, its status and its figures
    (dated by ``figures_as_of``), the forecast while in progress, the final
    assessment after the deadline (never a forecast then)."""
    plan = tables["plan"]
    end = min(plan.deadline, as_of)
    entry = {
        "id": plan.id, "name": plan.name.model_dump(), "source": plan.source,
        "baseline_date": plan.baseline_date.isoformat(), "deadline": plan.deadline.isoformat(),
        "scope": "city" if plan.scope.is_city else {"districts": list(plan.scope.districts),
                                                   "parks": list(plan.scope.parks)},
        "ratio_basis": tables["basis"], "status": tables["status"],
        "figures_as_of": tables["figures_as_of"].isoformat(),
        "targets": plan_targets(plan),
        "definition": {
            "new_capacity": (f"connected systems commissioned after {plan.baseline_date.isoformat()} and on or "
                             f"before {end.isoformat()}" if end >= plan.baseline_date else
                             f"none yet: the plan counts systems commissioned after {plan.baseline_date.isoformat()}"),
            "install_ratio": RATIO_DEFINITION[tables["basis"]] + (
                f", counting PV connected by {plan.deadline.isoformat()}" if tables["status"] == "assessed" else ""),
        },
        "total_level": tables["total_level"],
        "total": _first_record(tables["city"]),
        "districts": _records(tables["district"], "district"),
        "parks": _records(tables["park"], "park_id"),
    }
    if tables["status"] == "in_progress":
        forecast = _forecast(history, tables, as_of, window)
        if forecast is not None:
            entry["forecast"] = forecast
    elif tables["status"] == "assessed":
        entry["assessment"] = _assessment(tables)
    return entry


def progress_document(tables: dict, cfg: SurveyConfig, as_of: dt.date, resolved: pd.DataFrame | None,
                      history: pd.DataFrame | None, plans: list[dict] | None = None) -> dict:
    """The content of ``progress.json``: definitions, targets, figures, pace and forecast.

    The top-level keys (``targets``, ``city``, ``districts``, ``parks``,
    ``forecast``) hold the default plan's targets against the figures as of the
    run date (``tables``: :func:`progress_tables`), the forecast only while that
    plan is in progress; ``plans`` holds every plan (:func:`plan_tables` each) by
    :func:`plan_document`.
    """
    plan = cfg.default_plan
    doc = {
        "as_of": as_of.isoformat(),
        "definition": {
            "install_ratio": RATIO_DEFINITION[tables["basis"]],
            "ratio_basis": tables["basis"],
            "installed": "connected systems commissioned on or before the as-of date",
            "new_capacity": f"connected systems commissioned after the baseline date {plan.baseline_date.isoformat()}",
            "pipeline": "planned and under-construction systems (not counted as installed)",
            "remaining_potential": "capacity and yield of surveyed roofs without connected PV",
        },
        "default_plan": {"id": plan.id, "status": plan_status(plan, as_of)},
        "targets": plan_targets(plan),
        "city": _first_record(tables["city"]),
        "districts": _records(tables["district"], "district"),
        "parks": _records(tables["park"], "park_id"),
    }
    if resolved is not None:
        doc["registry"] = {
            "rows": int(len(resolved)),
            "matched_by": {k: int(v) for k, v in resolved["match_method"].value_counts().items()},
            "unmatched_by_reason": {k: int(v) for k, v in resolved["unmatched_reason"].value_counts().items()},
        }
    if plan_status(plan, as_of) == "in_progress":  # a plan past its deadline is never forecast again
        forecast = _forecast(history, {**tables, "plan": plan}, as_of, cfg.progress.pace_window_runs)
        if forecast is not None:
            doc["forecast"] = forecast
    if plans is not None:
        doc["plans"] = plans
    return doc


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if value is pd.NA:
        return None
    return value


# progress.csv's leading columns (and the history's plan columns)
PLAN_COLUMNS = ["plan", "plan_status", "figures_as_of"]


def progress_csv(tables: dict | list[dict]) -> pd.DataFrame:
    """One row per plan and city (or scope), district and park (the ``progress.csv`` table)."""
    frames = []
    for t in [tables] if isinstance(tables, dict) else tables:
        level = t.get("total_level", "city")
        plan = t.get("plan")
        city = t["city"].reset_index(drop=True).assign(level=level, key=level,
                                                       name="" if plan is None else
                                                       ("" if level == "city" else scope_text(plan)))
        districts = t["district"].reset_index().rename(columns={"district": "key"}).assign(level="district")
        districts["name"] = districts["key"]
        parks = t["park"].reset_index().rename(columns={"park_id": "key", "park_name": "name"}).assign(level="park")
        frame = pd.concat([city, districts, parks], ignore_index=True)
        if plan is not None:
            frame = frame.assign(plan=plan.id, plan_status=t["status"], figures_as_of=t["figures_as_of"].isoformat())
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    first = PLAN_COLUMNS + ["level", "key", "name", "district"]
    return frame[[c for c in first if c in frame] + [c for c in frame.columns if c not in first]]


def document_plans(doc: dict) -> list[dict]:
    """The plans of a progress.json; one written before plans existed gives its
    targets as one plan (no name, status unknown), its top-level figures as that plan's."""
    if doc.get("plans"):
        return doc["plans"]
    targets = doc.get("targets") or {}
    return [{"id": "", "name": None, "source": None, "baseline_date": targets.get("baseline_date"),
             "deadline": targets.get("deadline"), "scope": "city", "status": None, "figures_as_of": doc.get("as_of"),
             "targets": targets, "total_level": "city", "total": doc.get("city") or {},
             "districts": doc.get("districts") or [], "parks": doc.get("parks") or [],
             **({"forecast": doc["forecast"]} if doc.get("forecast") else {})}]
