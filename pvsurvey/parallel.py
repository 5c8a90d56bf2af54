"""Round 1 of the run's tasks: one survey task per footprint partition, and
the :class:`Executor` that runs every round (here, or on dask.distributed).

Each task reads its own slice of the footprints and the raster window under
it, runs the pure survey, writes its part files and returns only small
summaries (counts, per-park sums, registry match candidates) — no big frame
travels to or from the workers. Rounds 2 and 3 are in :mod:`pvsurvey.finishing`.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely

from .cache import has_entry, load_entry, store_entry
from .energy import SpecificYieldTable
from .io.raster import RasterInfo, is_high_resolution, sample_ghi_kwh_per_m2_yr, zonal_ghi_kwh_per_m2_yr
from .io.vector import Partition, read_partition
from .io.writers import write_geoparquet, write_rejected
from .io.storage import is_url
from .params import SurveyConfig
from .shipping import probe_write, receive, run_shipped, task_inputs
from .candidates import build_candidates
from .progress import match_by_id, match_registry
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
    # Reuse of unchanged partitions across runs: results keyed by the partition's
    # bytes and by everything else that shapes them (cache_salt).
    cache_dir: Path | None = None
    cache_salt: str = ""

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


def _cache_key(part: Partition, ctx: SurveyContext, raw: pd.DataFrame | None) -> str:
    """What the partition's result depends on: its rows (stored bytes, or the rows
    as read), where they sit (file and first row: results carry ``source_file``
    and ``source_row``), its duplicate-id rows, and the run's cache salt."""
    digest = hashlib.sha256(ctx.cache_salt.encode())
    digest.update(f"{part.path}|{part.start}|".encode())
    if part.fingerprint is not None:
        digest.update(part.fingerprint.encode())
    else:
        digest.update(pd.util.hash_pandas_object(pd.DataFrame(raw.drop(columns=raw.geometry.name)),
                                                 index=False).to_numpy().tobytes())
        digest.update(b"".join(shapely.to_wkb(raw.geometry.values[~pd.isna(raw.geometry.values)])))
    if ctx.duplicate_rows is not None:
        lo, hi = np.searchsorted(ctx.duplicate_rows, [part.start, part.stop if part.stop >= 0 else np.iinfo(np.int64).max])
        digest.update(ctx.duplicate_rows[lo:hi].tobytes())
    return digest.hexdigest()[:32]


def survey_cache_key(part: Partition, ctx: SurveyContext) -> str | None:
    """The partition's cache key where it can be had without reading its rows."""
    return _cache_key(part, ctx, None) if ctx.cache_dir is not None and part.fingerprint is not None else None


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


def survey_partition(part: Partition, ctx: SurveyContext) -> PartitionResult:
    """Read, survey and write one partition; return its summaries.

    With a cache, a partition whose key is stored is not surveyed again: its
    part files are linked and only the registry matching is redone.
    """
    t0 = time.perf_counter()
    source = str(part.path)
    raw = None
    if part.fingerprint is None:
        raw = read_partition(part, ctx.config.footprints.crs)
    key = _cache_key(part, ctx, raw) if ctx.cache_dir is not None else None
    if key is not None and has_entry(ctx.cache_dir / key):
        result = _from_cache(ctx.cache_dir / key, part, ctx, t0)
        result.cache_key = key
        return result
    if raw is None:
        raw = read_partition(part, ctx.config.footprints.crs)
    buildings, rejected, stats = clean_footprints(raw, source, ctx.id_column, ctx.duplicate_rows)
    lon, lat = buildings["lon"].to_numpy(), buildings["lat"].to_numpy()
    if is_high_resolution(ctx.raster):  # rooftop rasters (≤ 5 m pixels): the roof's mean, window by window
        ghi, _, outside = zonal_ghi_kwh_per_m2_yr(ctx.raster, buildings.geometry.values, lon, lat)
    else:  # a climatology: the cell under the roof
        ghi, outside = sample_ghi_kwh_per_m2_yr(ctx.raster, lon, lat)
    accepted, rejected_more = survey_buildings(buildings, ghi, outside, ctx.parks, ctx.config,
                                               ctx.yield_table, source)
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
        write_geoparquet(accepted, buildings_path)
    rejected_path = ctx.parts_dir / "rejected" / name
    write_rejected(rejected_all, rejected_path)
    # roofs outside parks become projects here, in parallel; park roofs are grouped per park later
    candidates_path = None
    outside = accepted[accepted["park_id"].isna()]
    if len(outside):
        projects = build_candidates(outside.assign(has_pv=False, pv_status="none"), ctx.config.economics)
        if len(projects):
            candidates_path = ctx.parts_dir / "candidates" / name
            write_geoparquet(projects, candidates_path)
    result = PartitionResult(
        index=part.index, input_rows=len(raw), accepted=len(accepted), rejected=len(rejected_all),
        reasons=dict(Counter(rejected_all["reason"].astype(str))), repaired=stats["repaired"],
        by_park=summarise(accepted, "park_id"), by_district=summarise(accepted, "district"),
        buildings_path=buildings_path, rejected_path=rejected_path, seconds=time.perf_counter() - t0,
        matches=matches, bounds=tuple(accepted.total_bounds) if len(accepted) else None, cache_key=key,
        candidates_path=candidates_path)
    if key is not None:
        _to_cache(ctx.cache_dir / key, result)
    return result


def _one_thread_per_worker() -> None:
    """Arrow's own thread pools would put several threads on each core that a
    single-threaded worker process already keeps busy; one each is faster."""
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


# Dask's defaults suit long-lived shared workers; a run's own local workers do
# better without two of them (1M synthetic footprints: 1 worker 36.7 ->
# 32.9 s, 2 workers 22.2 -> 19.9 s, medians of three interleaved runs each):
LOCAL_WORKER_DASK_CONFIG = {
    # the statistical profiler samples each task's stack every 10 ms
    "distributed.worker.profile.enabled": False,
    # glibc told to hand back freed memory above 64 KiB and to map every block
    # over 128 KiB afresh page-faults each partition's arrays in again: about
    # half the workers' system time. Memory stays bounded by the partition size.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 256 << 20,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 64 << 20,
}


def start_local_cluster(workers: int | None):
    """A local cluster sized to the machine: one single-threaded worker process
    per core (default), so pandas and pyproj steps that hold the GIL run in
    parallel too, with :data:`LOCAL_WORKER_DASK_CONFIG`."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(LOCAL_WORKER_DASK_CONFIG):  # read once, when the nannies are made
        return LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                            dashboard_address=":0", memory_limit=0, silence_logs=logging.ERROR)


class _Ticker:
    """Counts a round's finished items for its progress callback ``progress(done, total)``."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)


def _cached_indices(cached: list[bool] | None) -> list[int]:
    return [i for i, hit in enumerate(cached or ()) if hit]


def _task_key(fn: Callable, index: int, ctx) -> str:
    return f"{fn.__name__}-{index}-{id(ctx)}"


class Executor:
    """Runs rounds of tasks (one function over many items) in this process or on
    dask.distributed, with one cluster for all rounds of a run.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler ('tcp://host:port'): every round runs there.
    workers : int, optional
        Worker processes of the local cluster (default: one per core).
    serial : bool
        Every round in this process (the plain twin the parallel run is tested against).
    in_process_max_rows : int
        A local run keeps a round with at most this many rows to compute in this
        process rather than start the cluster for it (config ``parallel.in_process_max_rows``).
    shared_files : bool or 'auto'
        Whether a remote cluster's workers read and write the run's store
        (config ``parallel.shared_filesystem``); 'auto' asks them (see
        :meth:`use_store`). Where they do not, tasks' files travel with them
        (:mod:`pvsurvey.shipping`).

    Notes
    -----
    The local cluster starts on the first round worth it, so a night that
    reuses nearly every cached partition starts no processes. Tasks
    are retried twice, so a worker that dies mid-run costs a retry, not the run.
    With a remote cluster, the inputs must be on object storage or on a path
    every worker can read.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None, serial: bool = False,
                 in_process_max_rows: int = 0, shared_files: bool | str = "auto"):
        self.scheduler, self.workers, self.serial = scheduler, workers, serial
        self.in_process_max_rows = in_process_max_rows
        self.shared_files = shared_files
        self.store: Path | None = None
        self._probe_dir: Path | None = None
        self._worker_inputs: list[str] = []
        self.ships: bool | None = None  # decided on the first round on a remote cluster
        self._starting: concurrent.futures.Future | None = None
        self.client = None
        self.cluster = None
        self.used = "serial" if serial else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._starting is not None:
            self._starting.exception()  # a cluster half-started is closed below
            self._starting = None
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    @property
    def mode(self) -> str:
        """What ran the tasks: 'serial', 'local', 'cluster', or 'in-process' (a
        local run whose rounds were all too small to start a cluster)."""
        return self.used or "in-process"

    @property
    def files(self) -> str:
        """How the tasks reach the run's files: 'shared' or 'sent with the tasks'."""
        return "sent with the tasks" if self.ships else "shared"

    def use_store(self, store: Path, probe_dir: Path, worker_inputs: list) -> None:
        """Name the run's store (every file the tasks read or write lies under it),
        a folder in it to probe whether remote workers share it, and the input
        files (not URLs) the workers must read themselves."""
        self.store, self._probe_dir = store, probe_dir
        self._worker_inputs = sorted({str(p) for p in worker_inputs if not is_url(p)})

    def _check_files(self, client) -> None:
        """On a remote cluster: stop with one line when a worker cannot read an
        input, and decide whether the tasks' files travel with them."""
        if self.ships is not None:
            return
        if self.scheduler is None:  # a local cluster shares this machine's files
            self.ships = False
            return
        from .errors import InputFileError

        for path in self._worker_inputs:
            missing = [w for w, seen in client.run(os.path.exists, path).items() if not seen]
            if missing:
                raise InputFileError(
                    f"{path}: the cluster's workers cannot read it ({len(missing)} of them, e.g. {missing[0]}); "
                    "put it on object storage (s3://..., gs://..., az://...) or on a path every worker mounts")
        if self.shared_files != "auto" or self._probe_dir is None:
            self.ships = self.shared_files is False
        else:
            names = client.run(probe_write, str(self._probe_dir))
            self.ships = not all(name and (self._probe_dir / name).is_file() for name in names.values())
            for name in names.values():
                if name:
                    (self._probe_dir / name).unlink(missing_ok=True)
        if self.ships:
            log.info("the workers do not share %s: each task's files travel with it", self.store)

    def distributes(self, rows_to_compute: int | None) -> bool:
        """Whether a round with this many rows to compute goes to the workers."""
        if self.serial:
            return False
        small = rows_to_compute is not None and rows_to_compute <= self.in_process_max_rows
        return self.client is not None or self.scheduler is not None or not small

    def map(self, fn: Callable, items: list, ctx, progress: Callable[[int, int], None] | None = None,
            rows_to_compute: int | None = None, cached: list[bool] | None = None) -> list:
        """``[fn(item, ctx) for item in items]``, in item order.

        ``rows_to_compute`` (the rows the round must really process, cached ones
        excluded; None: unknown) lets a local run keep small rounds in this process.
        ``cached[i]`` says whether item i's result is in the run's cache: those
        items are taken on two threads in a round run here, and here as well
        where the workers do not share the store.
        """
        if not items:
            return []
        tick = _Ticker(progress, len(items))
        if not self.distributes(rows_to_compute):
            return self._map_here(fn, items, ctx, tick, None if self.serial else cached)
        client = self._client()
        self._check_files(client)
        if self.ships:
            return self._map_shipping(client, fn, items, ctx, tick, cached)
        from distributed import as_completed

        ctx_future = client.scatter(ctx, broadcast=True, hash=False)  # a fresh key: an earlier round's release must not drop it
        futures = {client.submit(fn, item, ctx_future, key=_task_key(fn, i, ctx), retries=2, pure=False): i
                   for i, item in enumerate(items)}
        results = [None] * len(items)
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            tick()
        return results

    @staticmethod
    def _take_cached_here(fn, items, indices: list[int], ctx, results: list, tick: "_Ticker") -> None:
        """Run here, on two threads, the items at ``indices``, whose result is in
        the cache (they read Parquet and pickles and link files, mostly without
        the GIL); their results go into ``results``."""
        with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="pvsurvey-cached") as pool:
            for i, result in zip(indices, pool.map(lambda i: fn(items[i], ctx), indices)):
                results[i] = result
                tick()

    def _map_here(self, fn, items, ctx, tick: "_Ticker", cached) -> list:
        """:meth:`map` in this process: cached items on two threads, the others one by one."""
        results = [None] * len(items)
        reused = _cached_indices(cached)
        self._take_cached_here(fn, items, reused, ctx, results, tick)
        reused = set(reused)
        for i, item in enumerate(items):
            if i not in reused:
                results[i] = fn(item, ctx)
                tick()
        return results

    def _map_shipping(self, client, fn, items, ctx, tick: "_Ticker", cached) -> list:
        """:meth:`map` for workers that do not share the store: each task takes
        the store's files it reads and brings back those it writes; cached items
        are taken here.

        A task's input files go straight to a worker (scattered, not through the
        scheduler); at most two tasks per worker thread are out at a time, so the
        files in flight stay bounded whatever the input's size. A task whose
        scattered files died with their worker is sent again (twice at most);
        a task that fails is retried by Dask like any other.
        """
        from distributed import as_completed

        ctx_future = client.scatter(ctx, broadcast=True, hash=False)
        results = [None] * len(items)
        local = _cached_indices(cached)
        remote = iter(sorted(set(range(len(items))) - set(local)))
        running = as_completed()
        sent: dict[str, tuple[int, int]] = {}  # task key -> (item, attempt)

        def send(i: int, attempt: int = 0) -> None:
            inputs = task_inputs(items[i], self.store)
            if inputs:
                inputs = client.scatter([inputs], hash=False)[0]
            future = client.submit(run_shipped, fn, items[i], ctx_future, str(self.store), inputs,
                                   key=f"{_task_key(fn, i, ctx)}-{attempt}", retries=2, pure=False)
            sent[future.key] = (i, attempt)
            running.add(future)

        def send_next() -> None:
            for i in remote:
                return send(i)

        for _ in range(2 * max(1, sum(client.nthreads().values()))):
            send_next()
        self._take_cached_here(fn, items, local, ctx, results, tick)  # while the workers work
        for future in running:
            i, attempt = sent.pop(future.key)
            if future.status == "cancelled" and attempt < 2:  # its scattered files were lost with a worker
                send(i, attempt + 1)
                continue
            result, files = future.result()
            receive(files, self.store)
            results[i] = result
            future.release()
            send_next()
            tick()
        return results

    def start(self, rows_to_compute: int | None) -> None:
        """Start the workers in the background when a coming round will need
        them, so that they boot while this process prepares the round."""
        if self.distributes(rows_to_compute) and self.client is None and self._starting is None:
            pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pvsurvey-start-workers")
            self._starting = pool.submit(self._connect)
            pool.shutdown(wait=False)  # the thread ends with the start

    def _client(self):
        if self._starting is not None:
            starting, self._starting = self._starting, None
            starting.result()  # re-raises what went wrong while starting
        if self.client is None:
            self._connect()
        return self.client

    def _connect(self) -> None:
        from distributed import Client

        if not log.isEnabledFor(logging.DEBUG):  # distributed sets its loggers to INFO on import
            logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.scheduler is None:
            self.cluster = start_local_cluster(self.workers)
            self.client = Client(self.cluster)
            self.client.run(_one_thread_per_worker)
            self.used = "local"
        else:
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except OSError as exc:
                from .errors import PVSurveyError
                raise PVSurveyError(f"cannot reach the Dask scheduler at {self.scheduler} ({exc}); "
                                    "start one with 'dask scheduler' or drop --scheduler to run locally") from None
            self.used = "cluster"
