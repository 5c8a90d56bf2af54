"""Tools for park managers and planners: export candidate lists, take edited
lists back (statuses and notes), and plan which projects close a target gap.

Paths in, files out; the compute is in :mod:`pvsurvey.model.candidates`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pandas as pd

from ..model.candidates import CANDIDATE_COLUMNS, STATUSES, apply_statuses, gap_closing_plan, normalise_status
from ..errors import InputFileError
from ..io.datasets import read_candidates
from ..io.exports import export_table, read_table
from ..io.encoding import text_file_encoding
from ..io.writers import atomic_write
from ..naming import safe_file_stem
from ..store.candidate_status import read_candidate_statuses
from ..store.run_directory import CANDIDATES, EXPORTS, PROGRESS, RunDirectory

PARK_SUMMARY_FIELDS = ["park_id", "park_name", "district", "usable_area_m2", "install_ratio_area_frac",
                       "install_ratio_count_frac", "target_install_ratio", "installed_kwp", "new_kwp_since_baseline",
                       "remaining_potential_kwp", "ratio_gap_area_m2"]
SUMMARY_TEXT = {
    "zh": {"field": "项目", "value": "数值", "projects": "候选项目数", "capacity": "候选项目容量 (kWp)",
           "plan": "补齐安装比例缺口所需项目数", "plan_capex": "补齐缺口所需投资 (元)", "closes": "潜力可否补齐"},
    "en": {"field": "Field", "value": "Value", "projects": "Candidate projects", "capacity": "Candidate capacity (kWp)",
           "plan": "Projects needed to close the ratio gap", "plan_capex": "Investment to close the gap (CNY)",
           "closes": "Potential closes the gap"},
}


def _progress(run: RunDirectory) -> dict:
    progress = run.progress()
    if progress is None:
        raise InputFileError(f"{run.path}: no {PROGRESS} here; rerun 'pvsurvey run' with this version")
    return progress


def current_candidates(run: RunDirectory) -> gpd.GeoDataFrame:
    """The run's candidates with the park managers' latest statuses applied."""
    candidates = read_candidates(run.require(CANDIDATES))
    statuses = read_candidate_statuses(run.candidate_status_path())
    if statuses is None:
        return candidates
    registry_set = candidates["status_source"] == "registry"
    fresh = apply_statuses(candidates.drop(columns=["status", "notes", "status_source"]), statuses)
    # the registry's word (PV built or being built) outranks a typed status
    fresh.loc[registry_set.to_numpy(), ["status", "status_source"]] = \
        candidates.loc[registry_set, ["status", "status_source"]].to_numpy()
    return gpd.GeoDataFrame(fresh[CANDIDATE_COLUMNS], geometry=candidates.geometry.values, crs=candidates.crs)


def scope_suffix(park: str | None, district: str | None) -> str:
    """File-name suffix of a scope: ``-park-<id>``, ``-district-<name>`` or nothing (the city)."""
    if park:
        return f"-park-{safe_file_stem(park)}"
    return f"-district-{safe_file_stem(district)}" if district else ""


def select_scope(candidates: pd.DataFrame, park: str | None, district: str | None) -> pd.DataFrame:
    if park and district:
        raise InputFileError("give --park or --district, not both")
    if park:
        chosen = candidates[candidates["park_id"].astype(str) == str(park)]
        if chosen.empty and park not in set(candidates["park_id"].astype(str)):
            raise InputFileError(f"no candidate in park {park!r}; park ids: "
                                 f"{', '.join(sorted(candidates['park_id'].dropna().astype(str).unique()))}")
        return chosen
    if district:
        chosen = candidates[candidates["district"].astype(str) == district]
        if chosen.empty:
            raise InputFileError(f"no candidate in district {district!r}; districts: "
                                 f"{', '.join(sorted(candidates['district'].dropna().astype(str).unique()))}")
        return chosen
    return candidates


def park_summaries(run: RunDirectory, candidates: pd.DataFrame, lang: str, rank_by: str = "lcoe"
                   ) -> dict[str, pd.DataFrame]:
    """One small two-column sheet per park: its progress and its candidates."""
    parks = (run.progress() or {}).get("parks", [])
    from ..columns import label

    t = SUMMARY_TEXT[lang]
    sheets = {}
    for park in parks:
        mine = candidates[candidates["park_id"].astype(str) == str(park["park_id"])]
        if mine.empty:
            continue
        plan = gap_closing_plan(mine, park["usable_area_m2"], park["usable_area_with_pv_m2"],
                                park["new_kwp_since_baseline"], park["target_install_ratio"], None, rank_by)
        rows = [(label(k, lang), park.get(k)) for k in PARK_SUMMARY_FIELDS]
        rows += [(t["projects"], len(mine)), (t["capacity"], float(mine["capacity_kwp"].sum())),
                 (t["plan"], len(plan["projects"])), (t["plan_capex"], plan["capex_cny"]),
                 (t["closes"], plan["closes_ratio_gap"])]
        frame = pd.DataFrame(rows, columns=[t["field"], t["value"]])
        frame[t["value"]] = frame[t["value"]].astype(object)
        sheets[f"{park['park_id']} {park.get('park_name') or ''}".strip()] = frame
    return sheets


def export_candidates(run_dir: str | Path, fmt: str, lang: str = "zh", park: str | None = None,
                      district: str | None = None, out: str | Path | None = None) -> Path:
    """Write the candidate list of the city, a district or a park.

    Formats: csv (UTF-8 with BOM), xlsx (candidates, one summary sheet per park,
    and a sheet explaining every column), geojson and gpkg (WGS84). Headers in
    ``lang``. The park managers' latest statuses are applied.
    """
    run = RunDirectory(run_dir)
    candidates = select_scope(current_candidates(run), park, district)
    scope = scope_suffix(park, district)
    path = Path(out) if out else run.file(EXPORTS) / f"candidates{scope}.{fmt}"
    if fmt in ("csv", "xlsx"):
        table = pd.DataFrame(candidates.drop(columns="geometry"))
        sheets = park_summaries(run, candidates, lang) if fmt == "xlsx" else None
        name = "可建设项目清单" if lang == "zh" else "Candidate projects"
        return export_table(table, path, fmt, lang=lang, sheets=sheets, sheet_name=name)
    return export_table(candidates, path, fmt, lang=lang)


def import_statuses(file: str | Path, run_dir: str | Path) -> dict:
    """Take back an edited list: keep each project's status and notes in the
    status store beside the runs, so that every later run carries them.

    Returns counts: ``updated``, ``unchanged``, ``unknown_projects`` and
    ``bad_statuses`` (rows whose status is not one of ``STATUSES``; left out).
    """
    run = RunDirectory(run_dir)
    if Path(file).suffix.lower() == ".csv" and Path(file).is_file():  # UTF-8 or GBK, else one line saying so
        text_file_encoding(Path(file), None, "candidate list", fix="save it from Excel as 'CSV UTF-8' or plain CSV")
    table = read_table(file, columns=CANDIDATE_COLUMNS)
    missing = [c for c in ("project_id", "status") if c not in table.columns]
    if missing:
        raise InputFileError(f"{file}: needs the columns project_id and status (as exported); missing "
                             f"{', '.join(missing)}")
    table = table.dropna(subset=["project_id"])
    status = normalise_status(table["status"])
    bad = table[status.isna()]
    edits = pd.DataFrame({"project_id": table["project_id"].astype(str), "status": status,
                          "notes": table["notes"].astype(object).fillna("").astype(str) if "notes" in table else ""})[status.notna()]
    current = current_candidates(run)
    known = set(current["project_id"])
    store_path = run.candidate_status_path()
    store = read_candidate_statuses(store_path)
    compared = edits.merge(current[["project_id", "status", "notes"]], on="project_id", how="left",
                           suffixes=("", "_before"))
    is_change = (compared["status"].astype(str) != compared["status_before"].astype(str)) | \
        (compared["notes"].astype(str) != compared["notes_before"].fillna("").astype(str))
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    changed = edits[is_change.to_numpy()].assign(updated_at=now, source_file=str(Path(file).name))
    merged = pd.concat([f for f in (store, changed) if f is not None], ignore_index=True) \
        .drop_duplicates("project_id", keep="last")
    atomic_write(store_path, lambda tmp: merged.to_csv(tmp, index=False, encoding="utf-8-sig"))
    return {"updated": int(len(changed)), "unchanged": int(len(edits) - len(changed)),
            "unknown_projects": sorted(set(edits["project_id"]) - known),
            "bad_statuses": [{"project_id": str(p), "status": "" if pd.isna(s) else str(s)} for p, s in
                             bad[["project_id", "status"]].itertuples(index=False)],
            "store": str(store_path), "allowed": list(STATUSES)}


def plan_gap(run_dir: str | Path, park: str | None = None, district: str | None = None, rank_by: str = "lcoe",
             out: str | Path | None = None, lang: str = "zh") -> dict:
    """The cheapest-first shortest list of candidates closing the scope's gaps;
    written as a list (csv or xlsx by ``out``'s suffix, default csv in exports/)."""
    run = RunDirectory(run_dir)
    candidates = select_scope(current_candidates(run), park, district)
    progress = _progress(run)
    if park:
        figures = next(p for p in progress["parks"] if str(p["park_id"]) == str(park))
        target_kwp = figures.get("new_capacity_target_kwp")
    elif district:
        figures = next(d for d in progress["districts"] if d["district"] == district)
        target_kwp = figures.get("new_capacity_target_kwp")
    else:
        figures = progress["city"]
        target_kwp = progress["targets"]["new_capacity_kwp"]
    plan = gap_closing_plan(candidates, figures["usable_area_m2"], figures["usable_area_with_pv_m2"],
                            figures["new_kwp_since_baseline"], figures["target_install_ratio"], target_kwp, rank_by)
    scope = scope_suffix(park, district)
    path = Path(out) if out else run.file(EXPORTS) / f"plan{scope}-{rank_by}.csv"
    export_table(pd.DataFrame(plan["projects"].drop(columns="geometry", errors="ignore")), path, lang=lang)
    plan["path"] = str(path)
    plan["scope"] = park or district or "city"
    plan["ratio_before"] = figures["install_ratio_area_frac"]
    plan["target_ratio"] = figures["target_install_ratio"]
    plan["target_new_kwp"] = target_kwp
    plan["new_kwp_before"] = figures["new_kwp_since_baseline"]
    return plan
