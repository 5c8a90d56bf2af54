"""Workflow glue for progress tracking: registry outcome, PV columns on the
buildings, progress tables, and the history kept beside the runs.

The figures are summed per partition in the tasks that write the buildings'
final part files (:func:`with_pv_columns`), so the buildings are never all in
one process's memory.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .params import SurveyConfig
from .progress import (PROGRESS_SUMS, RATIO_DEFINITION, pace_and_forecast, progress_metrics, progress_sums,
                       pv_by_building, resolve_matches)

HISTORY_COLUMNS = ["as_of", "run_finished_at", "level", "key", "name", "usable_area_m2", "usable_area_with_pv_m2",
                   "install_ratio_area_frac", "install_ratio_count_frac", "installed_kwp",
                   "new_kwp_since_baseline", "pipeline_kwp", "target_install_ratio", "new_capacity_target_kwp"]


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


def registry_outcome(registry: pd.DataFrame | None, results, cfg: SurveyConfig, as_of: dt.date,
                     survey_bounds: tuple | None):
    """Resolve the partitions' candidate matches into one outcome per registry row.

    Returns ``(resolved, per_building)``; both empty when there is no registry.
    """
    empty = pd.DataFrame(columns=["installed_kwp", "new_kwp", "pipeline_kwp", "has_pv", "pv_status"])
    if registry is None:
        return None, empty
    frames = [r.matches for r in results if r.matches is not None and len(r.matches)]
    candidates = pd.concat(frames, ignore_index=True) if frames else \
        pd.DataFrame(columns=["registry_row", "building_id", "match_method", "match_distance_m"])
    resolved = resolve_matches(registry, candidates)
    if survey_bounds is not None:  # points far outside every surveyed roof are a data error, not a miss
        west, south, east, north = survey_bounds
        margin = 0.05
        far = (resolved["unmatched_reason"] == "no_building_within_distance") & (
            (resolved["lon"] < west - margin) | (resolved["lon"] > east + margin)
            | (resolved["lat"] < south - margin) | (resolved["lat"] > north + margin))
        resolved.loc[far, "unmatched_reason"] = "outside_survey_area"
    return resolved, pv_by_building(resolved, cfg.targets.baseline_date, as_of)


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


def history_path(cfg: SurveyConfig, run_dir: Path) -> Path:
    return cfg.progress.history_file or run_dir.parent / f"{cfg.name}-history.csv"


def read_history(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, dtype={"key": str, "name": str}) if path.is_file() else None


def append_history(path: Path, table: pd.DataFrame, as_of: dt.date, finished_at: str) -> pd.DataFrame:
    """Add this run's rows to the history; a rerun for the same as-of date replaces them."""
    rows = table.assign(as_of=as_of.isoformat(), run_finished_at=finished_at)
    rows = rows[[c for c in HISTORY_COLUMNS if c in rows.columns]]
    old = read_history(path)
    if old is not None:
        rows = pd.concat([old[old["as_of"] != as_of.isoformat()], rows], ignore_index=True)
    rows = rows.sort_values(["as_of", "level", "key"], kind="stable")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    rows.to_csv(tmp, index=False, encoding="utf-8-sig")
    os.replace(tmp, path)
    return rows
