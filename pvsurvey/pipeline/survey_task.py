"""The survey task: one per footprint partition (the run's first round).

Each task reads its own slice of the footprints and the raster window under
it, runs the pure survey, writes its part files and returns only small
summaries (counts, per-park sums, registry match candidates) — no big frame
travels to or from the workers. The PV status and park projects rounds follow
in :mod:`pvsurvey.pipeline.pv_and_projects`.
"""

from __future__ import annotations


import hashlib
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely

from ..store.cache import has_entry, load_entry, store_entry
from ..model.yield_table import SpecificYieldTable
from ..io.raster import RasterInfo, is_high_resolution, sample_ghi_kwh_per_m2_yr, zonal_ghi_kwh_per_m2_yr
from ..io.vector import Partition, read_partition
from ..io.writers import write_geoparquet, write_rejected
from ..config.schema import SurveyConfig
from ..model.candidates import build_candidates, stored_projects
from ..model.registry_matching import match_by_id, match_registry
from ..model.footprints import clean_footprints
from ..model.shade import halo_cells, near_cells
from ..model.survey import building_attributes, summarise, survey_buildings
from . import kernel_warmup


@dataclass
class SurveyContext:
    """Read-only lookups every task needs (shipped to each worker once)."""

    config: SurveyConfig
    raster: RasterInfo
    parks: gpd.GeoDataFrame | None
    yield_table: SpecificYieldTable
    parts_dir: Path
    id_column: str | None = None
    duplicate_rows: np.ndarray | None = None
    registry: pd.DataFrame | None = None  # usable registry rows, matched inside each task
    match_distance_m: float = 30.0
    # Reuse of unchanged partitions across runs: results keyed by the partition's
    # bytes and by everything else that shapes them (cache_salt).
    cache_dir: Path | None = None
    cache_salt: str = ""
    as_of_year: int | None = None  # the survey's year: a roof's remaining life is counted to it
    # The shade halo: all partitions, and for each partition index the partitions with
    # buildings within shade reach of its own (pipeline.inputs.shade_halo), on that grid.
    parts: list | None = None
    halo: dict | None = None
    halo_grid: tuple | None = None
    # Whether roofs will be traced in the shade model's compiled kernel (shade on, heights
    # possible, a partition large enough): each worker then compiles or loads it ahead
    compiled_shade: bool = False

    def halo_parts(self, part: Partition) -> list:
        """The partitions whose buildings can shade this partition's roofs."""
        if not self.halo or not self.config.shade.enabled:
            return []
        by_index = {p.index: p for p in self.parts}
        return [by_index[j] for j in self.halo.get(part.index, [])]

    def registry_by_id(self) -> tuple[np.ndarray, pd.Index]:
        """Row numbers and building ids of the registry rows that name a building
        (built once per worker: every cached partition looks them up)."""
        if getattr(self, "_by_id", None) is None:
            named = self.registry[self.registry["building_id"].notna()]
            self._by_id = (named["registry_row"].to_numpy(),
                           pd.Index(named["building_id"].to_numpy(dtype=object), dtype=object))
        return self._by_id


@dataclass
class PartitionResult:
    index: int
    input_rows: int
    accepted: int
    rejected: int
    reasons: dict
    repaired: int
    by_park: pd.DataFrame
    by_district: pd.DataFrame
    buildings_path: Path | None
    rejected_path: Path
    seconds: float
    matches: pd.DataFrame | None = None
    bounds: tuple | None = None  # lon/lat bounds of the accepted buildings
    cache_key: str | None = None
    cached: bool = False
    candidates_path: Path | None = None  # projects of the roofs outside parks (registry not yet applied)
    attributes: dict | None = None  # how heights, materials and roof years were read, and the shade traced


def _cache_key(part: Partition, ctx: SurveyContext, raw: pd.DataFrame | None, halo_raws: dict | None = None,
               halo: list | None = None) -> str:
    """What the partition's result depends on: its rows (stored bytes, or the rows
    as read), where they sit (the input file and first row: results carry
    ``source_file`` and ``source_row``), its duplicate-id rows, the rows of its
    shade halo, and the run's cache salt."""
    digest = hashlib.sha256(ctx.cache_salt.encode())
    digest.update(f"{part.named}|{part.start}|".encode())  # the input's name, not a rewritten copy's
    if part.columns:  # the file's columns renamed (a header renamed in place keeps the row groups' bytes)
        digest.update(repr(part.columns).encode())
    if part.fingerprint is not None:
        digest.update(part.fingerprint.encode())
    else:
        _digest_rows(digest, raw)
    if ctx.duplicate_rows is not None:
        lo, hi = np.searchsorted(ctx.duplicate_rows, [part.start, part.stop if part.stop >= 0 else np.iinfo(np.int64).max])
        digest.update(ctx.duplicate_rows[lo:hi].tobytes())
    for other in ctx.halo_parts(part) if halo is None else halo:  # the neighbours that shade it
        digest.update(f"halo|{other.named}|{other.start}|{other.columns!r}|".encode())
        if other.fingerprint is not None:
            digest.update(other.fingerprint.encode())
        else:
            _digest_rows(digest, halo_raws[other.index])
    return digest.hexdigest()[:32]


def _digest_rows(digest, raw: pd.DataFrame) -> None:
    digest.update(pd.util.hash_pandas_object(pd.DataFrame(raw.drop(columns=raw.geometry.name)),
                                             index=False).to_numpy().tobytes())
    digest.update(b"".join(shapely.to_wkb(raw.geometry.values[~pd.isna(raw.geometry.values)])))


def survey_cache_key(part: Partition, ctx: SurveyContext) -> str | None:
    """The partition's cache key where it can be had without reading its rows."""
    readable = part.fingerprint is not None and all(p.fingerprint is not None for p in ctx.halo_parts(part))
    return _cache_key(part, ctx, None) if ctx.cache_dir is not None and readable else None


def _halo_casters(part: Partition, ctx: SurveyContext, buildings: gpd.GeoDataFrame, halo_raws: dict):
    """The buildings of the neighbouring partitions within shade reach of this one's
    (WGS84 geometries and heights), cleaned as their own tasks clean them."""
    if not halo_raws or not len(buildings):
        return None
    near = halo_cells(shapely.bounds(buildings.geometry.values), ctx.halo_grid, grow=True)
    strips: dict[tuple, list] = {}  # by their columns (the files of a folder may differ)
    for index, raw in sorted(halo_raws.items()):
        with np.errstate(invalid="ignore"):  # rows without a geometry have no bounds: set aside by cleaning
            raw = raw[near_cells(shapely.bounds(np.asarray(raw.geometry.values, dtype=object)), ctx.halo_grid, near)]
        if len(raw):
            strips.setdefault(tuple(raw.columns), []).append((index, raw))
    geoms, heights = [], []
    for frames in strips.values():
        # only the rows within reach are cleaned (the neighbours' edge strips, not their whole
        # partitions), together: an id repeats another only within its own partition's rows
        raw = pd.concat([f for _, f in frames], ignore_index=True) if len(frames) > 1 else frames[0][1]
        owner = np.repeat([i for i, _ in frames], [len(f) for _, f in frames])
        other, _, _ = clean_footprints(raw, str(part.named), ctx.id_column, ctx.duplicate_rows, groups=owner)
        other = other[near_cells(shapely.bounds(other.geometry.values), ctx.halo_grid, near)]
        if len(other):
            heights.append(building_attributes(other, ctx.config, ctx.as_of_year or 0)["building_height_m"])
            geoms.append(np.asarray(other.geometry.values, dtype=object))
    return (np.concatenate(geoms), np.concatenate(heights)) if geoms else None


def _from_cache(entry: Path, part: Partition, ctx: SurveyContext, t0: float) -> PartitionResult:
    name = f"part-{part.index:05d}.parquet"
    targets = {"buildings.parquet": ctx.parts_dir / "buildings" / name,
               "rejected.parquet": ctx.parts_dir / "rejected" / name,
               "candidates.parquet": ctx.parts_dir / "candidates" / name}
    result: PartitionResult = load_entry(entry, targets)
    result.rejected_path = targets["rejected.parquet"]
    result.buildings_path = targets["buildings.parquet"] if result.accepted else None
    result.candidates_path = targets["candidates.parquet"] if targets["candidates.parquet"].is_file() else None
    if ctx.registry is not None and len(ctx.registry) and result.buildings_path is not None:
        # the registry changes every night: match again, reading outlines only when
        # some located registry row lies near this partition (ids suffice otherwise)
        registry = _registry_near(ctx.registry, result.bounds, ctx.match_distance_m)
        if registry["building_id"].isna().any():
            accepted = gpd.read_parquet(result.buildings_path, columns=["building_id", "geometry"])
            result.matches = match_registry(registry, accepted, ctx.match_distance_m)
        else:  # every row near names its building: the ids suffice
            ids = pq.read_table(result.buildings_path, columns=["building_id"]).column(0)
            result.matches = match_by_id(*ctx.registry_by_id(), ids.to_numpy(zero_copy_only=False))
    result.index, result.cached, result.seconds = part.index, True, time.perf_counter() - t0
    return result


def _registry_near(registry: pd.DataFrame, bounds, distance_m: float) -> pd.DataFrame:
    """Registry rows that could match a partition with these lon/lat bounds: all
    rows located by id, and the located ones within reach of the bounds."""
    by_id = registry["building_id"].notna()
    if bounds is None:
        return registry[by_id]
    margin = distance_m / 90_000.0 + 1e-4  # degrees, generous at any latitude below 60°
    west, south, east, north = bounds
    lon, lat = registry["lon"].to_numpy(float), registry["lat"].to_numpy(float)
    has_array = registry["array_geometry"].notna().to_numpy()
    near = (lon >= west - margin) & (lon <= east + margin) & (lat >= south - margin) & (lat <= north + margin)
    if has_array.any():
        box = shapely.box(west - margin, south - margin, east + margin, north + margin)
        arrays = registry["array_geometry"].to_numpy(dtype=object)
        near[has_array] = shapely.intersects(arrays[has_array], box)
    return registry[by_id.to_numpy() | near]


def _to_cache(entry: Path, result: PartitionResult) -> None:
    files = {"buildings.parquet": result.buildings_path, "rejected.parquet": result.rejected_path,
             "candidates.parquet": result.candidates_path}
    store_entry(entry, {k: v for k, v in files.items() if v is not None},
                replace(result, matches=None, buildings_path=None, rejected_path=None, candidates_path=None))


@dataclass
class SurveyItem:
    """One task of the survey round: a partition and the partitions of its shade halo
    (named here, so that their files travel with the task to workers that share no disk),
    with the rows of each within shade reach (by partition index; None: all its rows)."""

    part: Partition
    halo: list
    halo_rows: dict | None = None


def survey_items(parts: list, ctx: SurveyContext, strips: dict | None = None) -> list[SurveyItem]:
    """The round's tasks; ``strips``: for each partition, the rows of each halo
    partition within reach (:func:`pvsurvey.pipeline.inputs.shade_halo`)."""
    return [SurveyItem(p, ctx.halo_parts(p), (strips or {}).get(p.index)) for p in parts]


def survey_partition(item: SurveyItem | Partition, ctx: SurveyContext) -> PartitionResult:
    """Read, survey and write one partition; return its summaries.

    With a cache, a partition whose key is stored is not surveyed again: its
    part files are linked and only the registry matching is redone.
    """
    t0 = time.perf_counter()
    part, halo = (item.part, item.halo) if isinstance(item, SurveyItem) else (item, ctx.halo_parts(item))
    halo_rows = (item.halo_rows if isinstance(item, SurveyItem) else None) or {}

    # with a halo, the row groups read are kept in this worker: the tasks of the neighbouring partitions
    # read them again (pvsurvey.io.row_groups)
    def read_halo() -> dict:  # each neighbour's strip within shade reach (all of it where none is listed)
        return {p.index: read_partition(p, ctx.config.footprints.crs, halo_rows.get(p.index), keep=True) for p in halo}

    source = str(part.named)
    raw = None
    halo_raws = {}
    if part.fingerprint is None:
        raw = read_partition(part, ctx.config.footprints.crs, keep=bool(halo))
    if any(p.fingerprint is None for p in halo):  # rows without a stored digest: hashed as read
        halo_raws = read_halo()
    key = _cache_key(part, ctx, raw, halo_raws, halo) if ctx.cache_dir is not None else None
    if key is not None and has_entry(ctx.cache_dir / key):
        result = _from_cache(ctx.cache_dir / key, part, ctx, t0)
        result.cache_key = key
        return result
    if ctx.compiled_shade:  # while the rows are read and cleaned (done already where the run warmed the workers)
        kernel_warmup.start()
    if raw is None:
        raw = read_partition(part, ctx.config.footprints.crs, keep=bool(halo))
    buildings, rejected, stats = clean_footprints(raw, source, ctx.id_column, ctx.duplicate_rows)
    lon, lat = buildings["lon"].to_numpy(), buildings["lat"].to_numpy()
    if is_high_resolution(ctx.raster):  # rooftop rasters (≤ 5 m pixels): the roof's mean, window by window
        ghi, _, outside = zonal_ghi_kwh_per_m2_yr(ctx.raster, buildings.geometry.values, lon, lat)
    else:  # a climatology: the cell under the roof
        ghi, outside = sample_ghi_kwh_per_m2_yr(ctx.raster, lon, lat)
    if halo and not halo_raws:
        halo_raws = read_halo()
    casters = _halo_casters(part, ctx, buildings, halo_raws)
    kernel_warmup.wait()
    attributes: dict = {}
    accepted, rejected_more = survey_buildings(buildings, ghi, outside, ctx.parks, ctx.config,
                                               ctx.yield_table, source, ctx.as_of_year, casters, stats=attributes)
    frames = [r for r in (rejected, rejected_more) if r is not None and len(r)]
    rejected_all = pd.concat(frames, ignore_index=True) if frames else rejected
    if part.file_start:  # a rejected row is reported by its file and its row there
        rejected_all["source_row"] = rejected_all["source_row"] - part.file_start
    matches = (match_registry(ctx.registry, accepted, ctx.match_distance_m)
               if ctx.registry is not None and len(ctx.registry) else None)
    name = f"part-{part.index:05d}.parquet"
    buildings_path = None
    if len(accepted):
        buildings_path = ctx.parts_dir / "buildings" / name
        write_geoparquet(accepted, buildings_path, intermediate=True)
    rejected_path = ctx.parts_dir / "rejected" / name
    write_rejected(rejected_all, rejected_path, intermediate=True)
    # roofs outside parks become projects here, in parallel; park roofs are grouped per park later
    candidates_path = None
    outside = accepted[accepted["park_id"].isna()]
    if len(outside):
        projects = build_candidates(outside.assign(has_pv=False, pv_status="none"), ctx.config.economics,
                                    shapes=ctx.yield_table.hourly_shapes)
        if len(projects):
            candidates_path = ctx.parts_dir / "candidates" / name
            # in their stored form: round 2 links a part whose projects the registry and statuses leave alone
            write_geoparquet(stored_projects(projects), candidates_path)
    result = PartitionResult(
        index=part.index, input_rows=len(raw), accepted=len(accepted), rejected=len(rejected_all),
        reasons=dict(Counter(rejected_all["reason"].astype(str))), repaired=stats["repaired"],
        by_park=summarise(accepted, "park_id"), by_district=summarise(accepted, "district"),
        buildings_path=buildings_path, rejected_path=rejected_path, seconds=time.perf_counter() - t0,
        matches=matches, bounds=tuple(accepted.total_bounds) if len(accepted) else None, cache_key=key,
        candidates_path=candidates_path, attributes=attributes)
    if key is not None:
        _to_cache(ctx.cache_dir / key, result)
    return result
