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



from ..config.schema import SurveyConfig


RATIO_DEFINITION = {
    "area": "usable roof area of buildings with connected PV / usable roof area of all buildings with a usable roof",
    "count": "buildings with connected PV / buildings with a usable roof",
}


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


BY_LEVEL = ("park_id", "district", "city")


def with_pv_columns(table: pa.Table, per_building: pd.DataFrame, min_candidate_kwp: float
                    ) -> tuple[pa.Table, dict[str, pd.DataFrame]]:
    """One partition's buildings with the registry's PV columns (``has_pv``,
    ``installed_kwp``, ``pv_status``) and its progress sums per park, district
    and city (sums of partitions add up).

    ``per_building`` is the registry outcome indexed by building id (only the
    matched buildings; any others are simply absent).
    """
    cols = ["building_id", "park_id", "district", "usable_area_m2", "capacity_kwp", "annual_yield_kwh"]
    frame = table.select(cols).to_pandas()
    pv = per_building.reindex(frame["building_id"].astype(str))
    frame["has_pv"] = pv["has_pv"].fillna(False).to_numpy(dtype=bool)
    for col in ("installed_kwp", "new_kwp", "pipeline_kwp"):
        frame[col] = pv[col].fillna(0.0).to_numpy(dtype=float)
    frame["city"] = "city"
    sums = {by: progress_sums(frame, by, min_candidate_kwp) for by in BY_LEVEL}
    status = pv["pv_status"].astype("string").fillna("none").to_numpy(dtype=object)
    table = table.append_column("has_pv", pa.array(frame["has_pv"].to_numpy()))
    table = table.append_column("installed_kwp", pa.array(frame["installed_kwp"].to_numpy()))
    return table.append_column("pv_status", pa.array(status, type=pa.string())), sums


class ProgressSums:
    """The partitions' progress sums, added up per park, district or city."""

    def __init__(self, parts: list[dict[str, pd.DataFrame]]):
        self.parts = parts

    def sums(self, by: str) -> pd.DataFrame:
        frames = [p[by] for p in self.parts if p is not None and len(p[by])]
        if not frames:
            return pd.DataFrame(columns=PROGRESS_SUMS)
        return pd.concat(frames).groupby(level=0).sum()


def progress_tables(collector: ProgressSums, parks: pd.DataFrame | None, cfg: SurveyConfig) -> dict:
    """City, district and park metrics with their targets (DataFrames)."""
    t = cfg.targets
    basis = cfg.progress.ratio_basis
    city = progress_metrics(collector.sums("city"), t.install_ratio, t.new_capacity_mw * 1000.0, basis)

    districts = collector.sums("district")
    districts = districts[districts.index != ""]
    d_ratio = [t.district_install_ratio.get(d, t.install_ratio) for d in districts.index]
    d_cap = [t.district_new_capacity_mw.get(d, np.nan) * 1000.0 for d in districts.index]
    districts = progress_metrics(districts, d_ratio, d_cap, basis)

    park_sums = collector.sums("park_id")
    park_sums = park_sums[park_sums.index != ""]
    if parks is not None:
        park_sums = park_sums.reindex(parks["park_id"].astype(str)).fillna(0)
    p_ratio = [t.park_install_ratio.get(p, t.install_ratio) for p in park_sums.index]
    p_cap = [t.park_new_capacity_mw.get(p, np.nan) * 1000.0 for p in park_sums.index]
    park_table = progress_metrics(park_sums, p_ratio, p_cap, basis)
    park_table.index.name = "park_id"
    if parks is not None:
        info = parks.set_index(parks["park_id"].astype(str))[["park_name", "district"]]
        park_table = info.join(park_table, how="right")
    return {"city": city, "district": districts, "park": park_table}


def progress_document(tables: dict, cfg: SurveyConfig, as_of: dt.date, resolved: pd.DataFrame | None,
                      history: pd.DataFrame | None) -> dict:
    """The content of ``progress.json``: definitions, targets, figures, pace and forecast."""
    t = cfg.targets

    def records(frame: pd.DataFrame, key: str):
        out = frame.reset_index().rename(columns={"index": key})
        return [{k: _plain(v) for k, v in row.items()} for row in out.to_dict(orient="records")]

    city = {k: _plain(v) for k, v in tables["city"].iloc[0].to_dict().items()} if len(tables["city"]) else {}
    doc = {
        "as_of": as_of.isoformat(),
        "definition": {
            "install_ratio": RATIO_DEFINITION[cfg.progress.ratio_basis],
            "ratio_basis": cfg.progress.ratio_basis,
            "installed": "connected systems commissioned on or before the as-of date",
            "new_capacity": f"connected systems commissioned after the baseline date {t.baseline_date.isoformat()}",
            "pipeline": "planned and under-construction systems (not counted as installed)",
            "remaining_potential": "capacity and yield of surveyed roofs without connected PV",
        },
        "targets": {"install_ratio": t.install_ratio, "new_capacity_kwp": t.new_capacity_mw * 1000.0,
                    "baseline_date": t.baseline_date.isoformat(), "deadline": t.deadline.isoformat()},
        "city": city,
        "districts": records(tables["district"], "district"),
        "parks": records(tables["park"], "park_id"),
    }
    if resolved is not None:
        doc["registry"] = {
            "rows": int(len(resolved)),
            "matched_by": {k: int(v) for k, v in resolved["match_method"].value_counts().items()},
            "unmatched_by_reason": {k: int(v) for k, v in resolved["unmatched_reason"].value_counts().items()},
        }
    if history is not None and len(history):
        city_hist = history[history["level"] == "city"].copy()
        city_hist["as_of"] = pd.to_datetime(city_hist["as_of"])
        w = cfg.progress.pace_window_runs
        doc["forecast"] = {
            "new_capacity": pace_and_forecast(city_hist, "new_kwp_since_baseline", t.new_capacity_mw * 1000.0, w),
            "install_ratio": pace_and_forecast(city_hist, f"install_ratio_{cfg.progress.ratio_basis}_frac",
                                               t.install_ratio, w),
            "points": int(city_hist["as_of"].nunique()),
            "window_runs": w,
        }
        doc["forecast"]["new_capacity"]["unit"] = "kWp per day"
        doc["forecast"]["install_ratio"]["unit"] = "ratio per day"
        for target in ("new_capacity", "install_ratio"):
            f = doc["forecast"][target]
            f["meets_deadline"] = (f["status"] == "met" or (f["forecast_date"] is not None
                                                             and f["forecast_date"] <= t.deadline.isoformat()))
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


def progress_csv(tables: dict) -> pd.DataFrame:
    """One row per city, district and park (the ``progress.csv`` table)."""
    city = tables["city"].reset_index(drop=True).assign(level="city", key="city", name="")
    districts = tables["district"].reset_index().rename(columns={"district": "key"}).assign(level="district")
    districts["name"] = districts["key"]
    parks = tables["park"].reset_index().rename(columns={"park_id": "key", "park_name": "name"}).assign(level="park")
    frame = pd.concat([city, districts, parks], ignore_index=True)
    first = ["level", "key", "name", "district"]
    return frame[[c for c in first if c in frame] + [c for c in frame.columns if c not in first]]
