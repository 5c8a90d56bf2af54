"""The run's outputs after the survey round: the PV status and park projects
rounds, the row-count check, per-park and per-district tables, the candidate
lists, progress and the registry outcome.
"""

from __future__ import annotations


import datetime as dt
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..columns import SUM_COLUMNS, WATERFALL_STEPS
from ..model.footprints import REASONS
from ..model.roof import waterfall_summary
from ..store.cache import (combine, entry_name, frame_digest, row_hashes, rows_digest)
from ..model.candidates import CANDIDATE_COLUMNS, STORED_CANDIDATE_COLUMNS, ranks_by_cost, stored_candidates
from ..errors import InputFileError, PVSurveyError
from ..io.writers import merge_parquet, write_csv, write_json
from ..config.schema import SurveyConfig
from .pv_and_projects import (FinishContext, FinishTask, add_counts, finish_partition, in_cache,
                              park_projects, park_tasks, rows_to_compute)
from ..io.datasets import dataset_exists, parquet_parts, read_parts
from ..execution.executor import Executor
from ..model.targets import (ProgressSums, plan_document, plan_tables, progress_csv, progress_document,
                             progress_tables)
from ..store.history import history_path, read_history
from ..model.uncertainty import (AGGREGATE_BAND_COLUMNS, RATIO_BAND_COLUMNS, BandParts, band_definition,
                                 band_parts, project_bands)
from ..model.registry_matching import registry_outcome
from ..store.cache import yields_entry
from ..store.candidate_status import candidate_status_path, read_candidate_statuses
from .inputs import CheckedInputs
from ..store.run_directory import (CANDIDATES, CITY_CANDIDATE_LIST, DISTRICTS, OUTPUTS, PARK_CANDIDATE_LISTS, PARKS, PARTS,
                                     PROGRESS, PROGRESS_TABLE, REGISTRY_MATCHES, REJECTED, candidate_part)

log = logging.getLogger(__name__)


def aggregate(results, parks: gpd.GeoDataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per-park and per-district tables and city totals from partition summaries."""
    by_park = pd.concat([r.by_park for r in results]).groupby(level=0).sum() if results else pd.DataFrame()
    by_district = pd.concat([r.by_district for r in results]).groupby(level=0).sum() if results else pd.DataFrame()
    totals = {c: float(by_park[c].sum()) if len(by_park) else 0.0 for c in SUM_COLUMNS}

    def finish(table: pd.DataFrame) -> pd.DataFrame:
        for col in SUM_COLUMNS:
            if col not in table:
                table[col] = 0.0
        table[SUM_COLUMNS] = table[SUM_COLUMNS].fillna(0)
        table["building_count"] = table["building_count"].astype("int64")
        table["usable_building_count"] = table["usable_building_count"].astype("int64")
        table["needs_new_roof_count"] = table["needs_new_roof_count"].astype("int64")
        cap = table["capacity_kwp"].where(table["capacity_kwp"] > 0)
        table["mean_specific_yield_kwh_per_kwp"] = (table["annual_yield_kwh"] / cap).fillna(0.0)
        return table

    if parks is not None:
        park_table = parks[["park_id", "park_name", "district"]].merge(
            by_park.reset_index(), on="park_id", how="left")
    else:
        park_table = by_park.reset_index().iloc[0:0].assign(park_name=None, district=None)
    park_table = finish(park_table)
    district_table = by_district.reset_index()
    district_table = finish(district_table[district_table["district"] != ""].reset_index(drop=True))
    outside = by_park.loc[""] if "" in by_park.index else None
    totals["buildings_outside_parks"] = int(outside["building_count"]) if outside is not None else 0
    return park_table, district_table, totals


# The city's CSV list holds the best projects; the full list is candidates.parquet.
CITY_LIST_MAX_ROWS = 20_000


def _with_project_bands(frame: pd.DataFrame, bands: BandParts | None, econ) -> pd.DataFrame:
    """A list with each project's P90 yield and payback at the P90 yield beside the figures they bound."""
    if bands is None or not len(frame):
        return frame
    extra = project_bands(frame["capacity_kwp"], frame["annual_yield_kwh"], bands, econ)
    frame.insert(frame.columns.get_loc("annual_yield_kwh") + 1, "annual_yield_p90_kwh", extra["annual_yield_p90_kwh"])
    frame.insert(frame.columns.get_loc("simple_payback_yr") + 1, "simple_payback_p90_yr", extra["simple_payback_p90_yr"])
    return frame


def write_candidate_lists(out_dir: Path, lang: str, bands: BandParts | None = None, econ=None) -> None:
    """The city's list ``candidates.csv`` (the cheapest ``CITY_LIST_MAX_ROWS``)
    and one complete list per park under ``candidates/``, with city-wide ranks,
    from the parts of ``candidates.parquet/`` (only costs are read in full).
    With ``bands`` (and ``econ``), each list also gives the P90 yield and the
    payback at the P90 yield (:func:`pvsurvey.model.uncertainty.project_bands`)."""
    parts = parquet_parts(out_dir / CANDIDATES)
    ranks = ranks_by_cost([t.column(0).to_numpy() for t in read_parts(parts, ["lcoe_cny_per_kwh"])])
    per_park = out_dir / PARK_CANDIDATE_LISTS
    per_park.mkdir(exist_ok=True)
    top = []
    for path, rank in zip(parts, ranks):
        if path.name.startswith("park-"):  # a park's whole list, cheapest first
            frame = pq.read_table(path, columns=STORED_CANDIDATE_COLUMNS).to_pandas()
            frame.insert(1, "rank", rank)
            frame = _with_project_bands(frame, bands, econ)
            write_csv(frame, per_park / f"{path.stem}.csv", lang)
            top.append(frame[frame["rank"] <= CITY_LIST_MAX_ROWS])
            continue
        chosen = np.flatnonzero(rank <= CITY_LIST_MAX_ROWS)
        if len(chosen):  # parts are sorted by cost: the rows of the city's list are a part's first ones
            frame = _head(path, int(chosen[-1]) + 1).take(pa.array(chosen)).to_pandas()
            frame.insert(1, "rank", rank[chosen])
            top.append(_with_project_bands(frame, bands, econ))
    city = pd.concat(top, ignore_index=True).sort_values("rank") if top else pd.DataFrame(columns=CANDIDATE_COLUMNS)
    write_csv(city, out_dir / CITY_CANDIDATE_LIST, lang)


def _head(path: Path, rows: int) -> pa.Table:
    """The first ``rows`` rows of a part (batches stop at row-group ends: read until enough)."""
    batches, read = [], 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=STORED_CANDIDATE_COLUMNS):
        batches.append(batch)
        read += batch.num_rows
        if read >= rows:
            break
    return pa.Table.from_batches(batches)


def _empty_candidates(out_dir: Path) -> None:
    """A dataset with no project still has one (empty) file, so readers see its columns."""
    path = candidate_part(out_dir, "empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    empty = stored_candidates(pd.DataFrame({c: [] for c in STORED_CANDIDATE_COLUMNS}))
    gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=4326)).to_parquet(path)


def _check_counts(results, source) -> dict:
    """Row counts of the survey; stops the run when nothing was accepted (naming
    ``source``, the footprints, and what the commonest reason means)."""
    input_rows = sum(r.input_rows for r in results)
    accepted = sum(r.accepted for r in results)
    rejected = sum(r.rejected for r in results)
    reasons = Counter()
    for r in results:
        reasons.update(r.reasons)
    if input_rows != accepted + rejected:  # the invariant every run must keep
        raise PVSurveyError(f"internal error: {input_rows} input rows but {accepted} accepted + {rejected} rejected")
    if accepted == 0:
        commonest = reasons.most_common(3)
        top = ", ".join(f"{k}: {v}" for k, v in commonest)
        hint = (" — the irradiance raster does not overlap the footprints; check both files' CRS and extent"
                if reasons.get("outside_raster") == rejected else
                f" — the commonest: {REASONS.get(commonest[0][0], commonest[0][0])}" if commonest else "")
        raise InputFileError(f"{source}: no footprint was accepted ({top}){hint}")
    return {"input_rows": input_rows, "accepted": accepted, "rejected": rejected,
            "rejected_by_reason": dict(sorted(reasons.items())),
            "repaired_geometries": sum(r.repaired for r in results),
            "building_attributes": add_attribute_counts([getattr(r, "attributes", None) for r in results])}


def add_attribute_counts(parts: list[dict | None]) -> dict:
    """The partitions' counts of how heights, storeys, materials and roof years were
    read (unparsable, negative, absurd, unrecognised ...) and of the shade traced."""
    total: dict = {}
    for part in parts:
        for key, value in (part or {}).items():
            if isinstance(value, dict):
                into = total.setdefault(key, {})
                for k, v in value.items():
                    into[k] = into.get(k, 0) + int(v)
            else:
                total[key] = total.get(key, 0) + int(value)
    return {k: dict(sorted(v.items())) if isinstance(v, dict) else v for k, v in sorted(total.items())}


def waterfall_document(park_table: pd.DataFrame, district_table: pd.DataFrame, totals: dict, cfg: SurveyConfig) -> dict:
    """progress.json's ``waterfall``: the usable-roof deductions of the city, each
    district and each park, step by step [m²], and the rule set behind them."""
    def rows(table, key):
        return [{key: row[key], **waterfall_summary(row)} for row in table.to_dict(orient="records")]

    return {"definition": "footprint = " + " + ".join(WATERFALL_STEPS) + " + module_area_m2 (m² of footprint; "
                          "module area in m² of modules); capacity = module area × module power density",
            "rule_set": cfg.roof.rule_set, "city": waterfall_summary(totals),
            "districts": rows(district_table, "district"), "parks": rows(park_table, "park_id")}


def _finish_tasks(results, per_building: pd.DataFrame, statuses: pd.DataFrame | None, keyed: bool,
                  bands: BandParts | None = None) -> list[FinishTask]:
    """Round 2's tasks: each partition with the registry outcome of its own roofs,
    keyed by its survey key, that outcome, the status store and the uncertainty
    parts (each roof's band columns are written in this round)."""
    statuses_digest = combine(frame_digest(statuses), repr(bands.as_dict() if bands is not None else None))
    # each building's outcome goes to the partition whose matches name it (ids are unique across partitions)
    named = [(k, r.matches["building_id"].astype(str).to_numpy(dtype=object)) for k, r in enumerate(results)
             if r.matches is not None and len(r.matches)]
    rows_of = {}
    if named and len(per_building):
        owner = pd.Series(np.concatenate([np.full(len(ids), k) for k, ids in named]),
                          index=np.concatenate([ids for _, ids in named]))
        owner = owner[~owner.index.duplicated()].reindex(per_building.index)
        rows_of = {int(k): rows for k, rows in per_building.groupby(owner.to_numpy(), sort=False).indices.items()}
    hashes = row_hashes(per_building) if keyed and rows_of else np.zeros(0, dtype=np.uint64)
    none = np.zeros(0, dtype=np.intp)
    tasks = []
    for k, r in enumerate(results):
        rows = rows_of.get(k, none)
        mine = per_building.iloc[rows]
        key = (combine("finish", r.cache_key, rows_digest(hashes[rows], per_building.columns), statuses_digest)
               if keyed and r.cache_key else None)
        tasks.append(FinishTask(r.index, r.buildings_path, r.candidates_path, mine, r.accepted, key))
    return tasks


def _log_tasks_done(label: str, unit: str, every_s: float = 10.0) -> Callable[[int, int], None]:
    """A round's tasks done as log lines (terminal and run.log), one every ``every_s``
    at most: rounds 2 and 3 take minutes on a country's roofs."""
    t0 = time.perf_counter()
    last = [0.0]

    def on_tasks_done(done: int, total: int) -> None:
        elapsed = time.perf_counter() - t0
        if elapsed - last[0] >= every_s or (done == total and elapsed >= every_s):
            last[0] = elapsed
            log.info("%s: %d/%d %s done after %.0f s", label, done, total, unit, elapsed)

    return on_tasks_done


def write_outputs(results, inputs: CheckedInputs, cfg: SurveyConfig, as_of: dt.date, tmp_dir: Path,
                   run_dir: Path, executor: Executor, cache: Path | None, salt: str) -> tuple[dict, pd.DataFrame]:
    counts = _check_counts(results, cfg.footprints.path)
    bounds = np.array([r.bounds for r in results if r.bounds is not None])
    survey_bounds = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
    resolved, per_building = registry_outcome(inputs.registry, results, cfg, as_of, survey_bounds)
    statuses = read_candidate_statuses(candidate_status_path(cfg.name, run_dir))
    bands = band_parts(cfg.uncertainty, cfg.irradiance.weather is not None)
    fctx = FinishContext(cfg.economics, statuses, tmp_dir, tmp_dir / PARTS, cache,
                         shapes=inputs.yield_table.hourly_shapes, bands=bands)

    tasks = _finish_tasks(results, per_building, statuses, cache is not None, bands)
    reused = in_cache(tasks, cache, "finish")
    todo = rows_to_compute(tasks, reused)
    log.info("finishing %d partition(s) (%s rows to compute): PV columns, progress sums, candidate projects",
             len(tasks), f"{todo:,}")
    finished = executor.map(finish_partition, tasks, fctx, _log_tasks_done("finishing", "partitions"), todo, reused)
    parks = park_tasks(finished, cache is not None)
    reused = in_cache(parks, cache, "park")
    finished_parks = executor.map(park_projects, parks, fctx, _log_tasks_done("park projects", "parks"),
                                  rows_to_compute(parks, reused), reused)
    candidate_counts = add_counts([f.candidates for f in finished] + [p.candidates for p in finished_parks])
    if not dataset_exists(tmp_dir / CANDIDATES):
        _empty_candidates(tmp_dir)
    merge_parquet([r.rejected_path for r in results], tmp_dir / REJECTED, geo=False)
    park_table, district_table, totals = aggregate(results, inputs.parks)

    log.info("%d candidate project(s); writing the lists and progress", candidate_counts["projects"])
    write_candidate_lists(tmp_dir, cfg.output.lang, bands, cfg.economics)
    collector = ProgressSums([f.sums for f in finished])
    tables = progress_tables(collector, inputs.parks, cfg, as_of, bands)
    each_plan = [plan_tables(collector, inputs.parks, plan, cfg.progress.ratio_basis, as_of, bands=bands)
                 for plan in cfg.plans]
    park_table, district_table = (_with_bands(park_table, tables["park"], "park_id"),
                                  _with_bands(district_table, tables["district"], "district"))
    write_csv(park_table, tmp_dir / PARKS)
    write_csv(district_table, tmp_dir / DISTRICTS)
    table = progress_csv(each_plan)
    # the history follows each plan from its baseline on (before it, a plan has no new capacity to track)
    history_rows = table[table["plan_status"] != "not_started"]
    old = read_history(history_path(cfg.name, cfg.progress.history_file, run_dir), cfg.default_plan.id)
    now = history_rows.assign(as_of=as_of.isoformat())
    history = now if old is None else pd.concat([old[old["as_of"] != as_of.isoformat()], now], ignore_index=True)
    window = cfg.progress.pace_window_runs
    doc = progress_document(tables, cfg, as_of, resolved, history,
                            [plan_document(t, as_of, history, window) for t in each_plan])
    doc["waterfall"] = waterfall_document(park_table, district_table, totals, cfg)
    if bands is not None:
        doc["bands"] = band_definition(bands)
    write_json(doc, tmp_dir / PROGRESS)
    write_csv(table, tmp_dir / PROGRESS_TABLE)
    outputs = list(OUTPUTS)
    registry_counts = None
    if resolved is not None:
        write_csv(resolved, tmp_dir / REGISTRY_MATCHES)
        outputs.append(REGISTRY_MATCHES)
        registry_counts = doc["registry"]
    city = doc["city"]
    totals.update({"install_ratio_area_frac": city.get("install_ratio_area_frac"),
                   "installed_kwp": city.get("installed_kwp"),
                   "new_kwp_since_baseline": city.get("new_kwp_since_baseline"),
                   **{k: city.get(k) for k in AGGREGATE_BAND_COLUMNS + RATIO_BAND_COLUMNS[:2] if k in city},
                   "plans": [plan_headline(p) for p in doc["plans"]]})
    entries = [entry_name(r.cache_key) for r in results if r.cache_key] + \
        [entry_name(f.key, "finish") for f in finished if f.key] + \
        [entry_name(p.key, "park") for p in finished_parks if p.key] + [yields_entry(salt)]
    return {
        "counts": {**counts, "registry": registry_counts, "candidates": candidate_counts},
        "as_of": as_of.isoformat(),
        "totals": totals,
        "outputs": {name: str(run_dir / name) for name in outputs},
        "partition_seconds": [round(r.seconds, 3) for r in results],
        "finishing": {"finished_from_cache": sum(f.cached for f in finished),
                      "parks_from_cache": sum(p.cached for p in finished_parks), "cache_entries": entries},
    }, history_rows


def _with_bands(table: pd.DataFrame, progress: pd.DataFrame, key: str) -> pd.DataFrame:
    """parks.csv / districts.csv with the P90 / P10 of their area, capacity and yield
    (from the progress tables, which carry the squares the bands need)."""
    cols = [c for c in AGGREGATE_BAND_COLUMNS if c in progress and not c.startswith("remaining_")]
    if not cols or not len(table):
        return table
    bands = progress[cols].copy()
    bands.index = bands.index.astype(str)
    return table.merge(bands, left_on=table[key].astype(str), right_index=True, how="left").drop(
        columns="key_0", errors="ignore")


def plan_headline(plan: dict) -> dict:
    """A plan's headline figures for the manifest's totals (and the run's summary line)."""
    total = plan["total"]
    return {"id": plan["id"], "name": plan["name"], "baseline_date": plan["baseline_date"],
            "deadline": plan["deadline"], "status": plan["status"], "figures_as_of": plan["figures_as_of"],
            "install_ratio_frac": total.get("install_ratio_frac"), "target_install_ratio": total.get("target_install_ratio"),
            "new_kwp_since_baseline": total.get("new_kwp_since_baseline"),
            "new_capacity_target_kwp": total.get("new_capacity_target_kwp"),
            "outcome": (plan.get("assessment") or {}).get("outcome")}
