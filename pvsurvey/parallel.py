"""The Dask graph: one task per footprint partition.

Each task reads its own slice of the footprints and the raster window under
it, runs the pure survey, writes its part files and returns only small
summaries (counts and per-park sums) — no big frame travels to or from the
workers. :func:`run_serial` is the plain twin the parallel run is tested against.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd

from .energy import SpecificYieldTable
from .io.raster import RasterInfo, sample_ghi_kwh_per_m2_yr
from .io.vector import Partition, read_partition
from .io.writers import write_geoparquet, write_rejected
from .params import SurveyConfig
from .progress import match_registry
from .survey import clean_footprints, summarise, survey_buildings

log = logging.getLogger(__name__)


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


def survey_partition(part: Partition, ctx: SurveyContext) -> PartitionResult:
    """Read, survey and write one partition; return its summaries."""
    t0 = time.perf_counter()
    source = str(part.path)
    raw = read_partition(part, ctx.config.footprints.crs)
    buildings, rejected, stats = clean_footprints(raw, source, ctx.id_column, ctx.duplicate_rows)
    ghi, outside = sample_ghi_kwh_per_m2_yr(ctx.raster, buildings["lon"].to_numpy(), buildings["lat"].to_numpy())
    accepted, rejected_more = survey_buildings(buildings, ghi, outside, ctx.parks, ctx.config,
                                               ctx.yield_table, source)
    frames = [r for r in (rejected, rejected_more) if r is not None and len(r)]
    rejected_all = pd.concat(frames, ignore_index=True) if frames else rejected
    matches = (match_registry(ctx.registry, accepted, ctx.match_distance_m)
               if ctx.registry is not None and len(ctx.registry) else None)
    name = f"part-{part.index:05d}.parquet"
    buildings_path = None
    if len(accepted):
        buildings_path = ctx.parts_dir / "buildings" / name
        write_geoparquet(accepted, buildings_path)
    rejected_path = ctx.parts_dir / "rejected" / name
    write_rejected(rejected_all, rejected_path)
    return PartitionResult(
        index=part.index, input_rows=len(raw), accepted=len(accepted), rejected=len(rejected_all),
        reasons=dict(Counter(rejected_all["reason"].astype(str))), repaired=stats["repaired"],
        by_park=summarise(accepted, "park_id"), by_district=summarise(accepted, "district"),
        buildings_path=buildings_path, rejected_path=rejected_path, seconds=time.perf_counter() - t0,
        matches=matches, bounds=tuple(accepted.total_bounds) if len(accepted) else None)


def run_serial(parts: list[Partition], ctx: SurveyContext,
               progress: Callable[[int, int], None] | None = None) -> list[PartitionResult]:
    """Survey partitions one after another in this process (the serial twin)."""
    results = []
    for i, part in enumerate(parts):
        results.append(survey_partition(part, ctx))
        if progress:
            progress(i + 1, len(parts))
    return results


def local_cluster_kwargs(workers: int | None) -> dict:
    """A local cluster sized to the machine: one single-threaded worker process
    per core, so pandas and pyproj steps that hold the GIL run in parallel too."""
    n = workers or os.cpu_count() or 1
    return dict(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                memory_limit=0, silence_logs=logging.ERROR)


def run_dask(parts: list[Partition], ctx: SurveyContext, scheduler: str | None = None,
             workers: int | None = None, progress: Callable[[int, int], None] | None = None
             ) -> list[PartitionResult]:
    """Survey partitions on a dask.distributed cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler ('tcp://host:port'); None starts a local
        cluster for the duration of the run.
    workers : int, optional
        Worker processes of the local cluster (default: one per core).

    Notes
    -----
    Tasks are retried twice, so a worker that dies mid-run costs a retry, not
    the run. With a remote cluster, inputs and the run directory must be on a
    path every worker can read and write.
    """
    from distributed import Client, LocalCluster, as_completed

    if not log.isEnabledFor(logging.DEBUG):  # distributed sets its loggers to INFO on import
        logging.getLogger("distributed").setLevel(logging.WARNING)

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(**local_cluster_kwargs(workers))
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            from .errors import PVSurveyError
            raise PVSurveyError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); "
                                "start one with 'dask scheduler' or drop --scheduler to run locally") from None
    try:
        ctx_future = client.scatter(ctx, broadcast=True)
        futures = [client.submit(survey_partition, part, ctx_future, key=f"survey-partition-{part.index}-{id(ctx)}",
                                 retries=2, pure=False) for part in parts]
        results = []
        for i, future in enumerate(as_completed(futures), start=1):
            results.append(future.result())
            if progress:
                progress(i, len(parts))
        return sorted(results, key=lambda r: r.index)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
