"""The second and third rounds of tasks, after the registry is resolved.

Round 1 (:mod:`pvsurvey.pipeline.survey_task`) surveys each partition and matches the
registry's rows to its roofs. Once the client has resolved those matches into
one outcome per registry row (tiny), round 2 finishes each partition in its own
task: the registry's PV columns on its roofs, written as the partition's part of
``buildings.parquet/``; its progress sums; the statuses on the projects of its
roofs outside parks; and its park roofs sorted into one piece per park. Round 3
groups each park's roofs into projects (adjoining roofs of one owner can lie in
two partitions, so parks wait for round 2). The client only adds up sums, ranks
projects by cost and writes the small tables.

Every task's output is kept in the run cache under a key of everything it
depends on, so a night where a partition's roofs, its registry rows and the
park managers' statuses are unchanged links last night's files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..store.run_directory import BUILDINGS, CANDIDATES, building_part, candidate_part
from ..store.cache import combine, entry_path, has_entry, link, load_entry, store_entry
from ..model.candidates import STATUS_COLUMNS, apply_statuses, build_candidates, project_pv, stored_projects
from ..io.vector import geoframe_from_arrow
from ..io.writers import INTERMEDIATE_PARQUET, output_parquet_options, write_geoparquet
from ..naming import safe_file_stem
from ..columns import WATERFALL_COLUMNS
from ..config.schema import Economics
from ..model.targets import with_pv_columns

# What round 3 needs of a park roof to group it into projects.
PARK_ROOF_COLUMNS = ["building_id", "park_id", "park_name", "district", "name", "owner", "footprint_area_m2",
                     *WATERFALL_COLUMNS, "usable_area_m2", "capacity_kwp", "annual_yield_kwh", "has_pv", "pv_status",
                     # the hourly valuation's inputs (pvsurvey.model.tou)
                     "weather_cell", "surface_tilt_deg", "surface_azimuth_deg", "mount",
                     "levels", "building_type", "annual_consumption_kwh", "grid_capacity_kw",
                     "connection_voltage_kv", "geometry"]


@dataclass
class FinishContext:
    """Read-only inputs of rounds 2 and 3 (shipped to each worker once)."""

    economics: Economics
    statuses: pd.DataFrame | None  # the park managers' status store
    out_dir: Path  # the run directory being written
    work_dir: Path  # scratch space inside it
    cache_dir: Path | None = None
    # hourly PV shapes of the time-of-use valuation (SpecificYieldTable.hourly_shapes)
    shapes: Callable | None = None
    bands: object = None  # pvsurvey.model.uncertainty.BandParts: each roof's P90 / P10 columns


@dataclass
class FinishTask:
    index: int
    buildings_path: Path | None  # round 1's part (no PV columns yet)
    candidates_path: Path | None  # round 1's projects of roofs outside parks
    per_building: pd.DataFrame  # the registry outcome of this partition's roofs
    rows: int
    key: str | None = None


@dataclass
class FinishResult:
    index: int
    sums: dict | None  # level -> progress sums (park_id, district, city)
    candidates: dict  # projects, capacity_kwp, by_status of its part of the list
    park_pieces: dict = field(default_factory=dict)  # park id -> (path, rows)
    seconds: float = 0.0
    cached: bool = False
    key: str | None = None


@dataclass
class ParkTask:
    park_id: str
    pieces: list  # paths of the park's roofs, one per partition
    rows: int
    key: str | None = None


@dataclass
class ParkResult:
    park_id: str
    candidates: dict
    cached: bool = False
    key: str | None = None


def candidate_counts(frame: pd.DataFrame) -> dict:
    """Size of a part of the list: projects, capacity and projects per status."""
    return {"projects": int(len(frame)), "capacity_kwp": float(frame["capacity_kwp"].sum()),
            "by_status": {str(k): int(v) for k, v in frame["status"].value_counts().items()}}


def add_counts(counts: list[dict]) -> dict:
    total = {"projects": 0, "capacity_kwp": 0.0, "by_status": {}}
    for c in counts:
        total["projects"] += c["projects"]
        total["capacity_kwp"] += c["capacity_kwp"]
        for status, n in c["by_status"].items():
            total["by_status"][status] = total["by_status"].get(status, 0) + n
    return total


def _write_stored(table: pa.Table, path: Path, geo_meta: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({b"geo": geo_meta}), path, **output_parquet_options(table.schema))


def _finish_outside_projects(task: FinishTask, ctx: FinishContext, path: Path) -> dict:
    """Registry state and statuses on the projects of roofs outside parks; those
    whose roofs carry connected PV leave the list unless a manager tracks them.

    Round 1 wrote them in their stored form
    (:func:`pvsurvey.model.candidates.stored_projects`). Only the project ids and
    the status columns go through pandas; a part whose projects none of this
    changes is linked as it is (a rewrite of 48,000 projects took 0.25 s, 0.1 s of
    it writing)."""
    table = pq.read_table(task.candidates_path)
    frame = table.select(["project_id", "building_ids"]).to_pandas()
    any_pv, building_pv = project_pv(frame["building_ids"], task.per_building)
    frame = apply_statuses(frame.assign(any_pv=any_pv, building_pv=building_pv), ctx.statuses)
    known = set(ctx.statuses["project_id"]) if ctx.statuses is not None else set()
    keep = ~any_pv | frame["project_id"].isin(known).to_numpy()
    if not keep.any():
        return add_counts([])
    changed = {}
    for col in STATUS_COLUMNS:
        values = pa.array(frame[col].astype("string").array, type=table[col].type)  # Arrow to Arrow, no str objects
        if not table[col].combine_chunks().equals(values):
            changed[col] = values
    if keep.all() and not changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        link(task.candidates_path, path)
        return _arrow_counts(table)
    for col, values in changed.items():
        table = table.set_column(table.schema.get_field_index(col), col, values)
    out = table.filter(pa.array(keep)) if not keep.all() else table
    _write_stored(out, path, table.schema.metadata[b"geo"])
    return _arrow_counts(out)


def _arrow_counts(table: pa.Table) -> dict:
    """:func:`candidate_counts` of a stored part."""
    by_status = table.column("status").value_counts().to_pylist()
    return {"projects": table.num_rows, "capacity_kwp": float(pc.sum(table["capacity_kwp"]).as_py() or 0.0),
            "by_status": {str(v["values"]): int(v["counts"]) for v in by_status if v["values"] is not None}}


def _piece_path(ctx: FinishContext, park_id: str, name: str) -> Path:
    """Where a partition's piece of a park waits for round 3 (its folder created)."""
    path = ctx.work_dir / "parks" / safe_file_stem(park_id) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _piece_name(park_id: str) -> str:
    """A park's piece of a partition in a round-2 cache entry."""
    return f"park-{safe_file_stem(park_id)}.parquet"


def finish_partition(task: FinishTask, ctx: FinishContext) -> FinishResult:
    """Round 2 for one partition (see the module's text)."""
    t0 = time.perf_counter()
    final = building_part(ctx.out_dir, task.index)
    projects = candidate_part(ctx.out_dir, f"part-{task.index:05d}")
    piece_name = f"part-{task.index:05d}.parquet"
    entry = entry_path(ctx.cache_dir, task.key, "finish")
    if has_entry(entry):
        result: FinishResult = load_entry(entry, {BUILDINGS: final, CANDIDATES: projects})
        pieces = {}
        for park_id, (name, rows) in result.park_pieces.items():
            target = _piece_path(ctx, park_id, piece_name)
            link(entry / name, target)
            pieces[park_id] = (target, rows)
        result.park_pieces, result.cached, result.seconds = pieces, True, time.perf_counter() - t0
        return result

    files: dict[str, Path] = {}
    sums = None
    pieces: dict[str, tuple[Path, int]] = {}
    if task.buildings_path is not None:
        table, sums = with_pv_columns(pq.read_table(task.buildings_path), task.per_building,
                                      ctx.economics.min_candidate_kwp, ctx.bands)
        final.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, final, **output_parquet_options(table.schema))
        files[BUILDINGS] = final
        inside = table.select(PARK_ROOF_COLUMNS).filter(
            pc.and_(pc.greater(table["capacity_kwp"], 0), pc.is_valid(table["park_id"])))
        for park_id in pc.unique(inside["park_id"]).to_pylist():
            rows = inside.filter(pc.equal(inside["park_id"], park_id))
            target = _piece_path(ctx, park_id, piece_name)
            pq.write_table(rows, target, **INTERMEDIATE_PARQUET)  # read back by round 3
            pieces[park_id] = (target, rows.num_rows)
            files[_piece_name(park_id)] = target
    counts = add_counts([])
    if task.candidates_path is not None:
        counts = _finish_outside_projects(task, ctx, projects)
        if projects.is_file():
            files[CANDIDATES] = projects
    result = FinishResult(task.index, sums, counts, pieces, time.perf_counter() - t0, key=task.key)
    if entry is not None:
        stored = {park_id: (_piece_name(park_id), rows) for park_id, (_, rows) in pieces.items()}
        store_entry(entry, files, FinishResult(task.index, sums, counts, stored, key=task.key))
    return result


def park_projects(task: ParkTask, ctx: FinishContext) -> ParkResult:
    """Round 3 for one park: its roofs (from every partition) grouped into projects."""
    path = candidate_part(ctx.out_dir, f"park-{safe_file_stem(task.park_id)}")
    entry = entry_path(ctx.cache_dir, task.key, "park")
    if has_entry(entry):
        result: ParkResult = load_entry(entry, {CANDIDATES: path})
        result.cached = True
        return result
    tables = [pq.read_table(p) for p in task.pieces]
    schema = tables[0].schema
    roofs = geoframe_from_arrow(pa.concat_tables(tables), schema)
    projects = build_candidates(roofs, ctx.economics, ctx.statuses, shapes=ctx.shapes)
    files = {}
    if len(projects):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_geoparquet(stored_projects(projects), path)
        files[CANDIDATES] = path
    result = ParkResult(task.park_id, candidate_counts(projects), key=task.key)
    if entry is not None:
        store_entry(entry, files, result)
    return result


def park_tasks(results: list[FinishResult], keyed: bool) -> list[ParkTask]:
    """One task per park from round 2's pieces, keyed by the keys of the
    partitions that hold its roofs (when every one of them has a key)."""
    by_park: dict[str, list] = {}
    for r in results:
        for park_id, (path, rows) in r.park_pieces.items():
            by_park.setdefault(park_id, []).append((r.key, path, rows))
    tasks = []
    for park_id, pieces in sorted(by_park.items()):
        keys = [k for k, _, _ in pieces]
        key = combine("park", park_id, *keys) if keyed and all(keys) else None
        tasks.append(ParkTask(park_id, [p for _, p, _ in pieces], sum(n for _, _, n in pieces), key))
    return tasks


def in_cache(tasks, cache_dir: Path | None, prefix: str) -> list[bool]:
    """Whether each task of a round has its result in the cache."""
    return [has_entry(entry_path(cache_dir, t.key, prefix)) for t in tasks]


def rows_to_compute(tasks, cached: list[bool]) -> int:
    """Rows of the tasks whose result is not in the cache."""
    return sum(t.rows for t, hit in zip(tasks, cached) if not hit)


__all__ = ["FinishContext", "FinishTask", "FinishResult", "ParkTask", "ParkResult", "finish_partition",
           "park_projects", "park_tasks", "candidate_counts", "add_counts", "in_cache", "rows_to_compute"]
