"""The generic executor that runs every round of a run's tasks: one function over
many items, in this process or on dask.distributed (a local cluster it starts, or
an existing scheduler), with cached items taken without a task and files moved
to workers that share no disk (:mod:`pvsurvey.execution.shipping`).
"""

from __future__ import annotations


import concurrent.futures
import contextlib
import logging
import os
from pathlib import Path
from typing import Callable


from ..locations import is_url
from .collector import run_task

log = logging.getLogger(__name__)


def _return_freed_memory() -> None:
    """Hand the heap's freed pages back to the system (glibc ``malloc_trim``) at the
    end of a round. The local workers keep up to 256 MiB of freed memory each
    (:data:`LOCAL_WORKER_DASK_CONFIG`, for speed within a round); between rounds
    this process writes the outputs, and the run's peak memory (all processes
    together) would count that idle memory too. A no-op where glibc is absent."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


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


# The lowest level of dask.distributed's own log lines shown (this process's
# scheduler and client, the local cluster's workers); None: warnings here,
# errors from the workers. The command line sets CRITICAL: a failed task's
# traceback, which a worker logs at ERROR ("Compute Failed"), must not reach the
# terminal before pvsurvey's one-line error; with --debug, INFO.
_dask_log_level: int | None = None


@contextlib.contextmanager
def dask_log_level(level: int | None):
    """Within the block, show dask.distributed's log lines from ``level`` up (None:
    the library default), in this process and in the local clusters started."""
    global _dask_log_level
    logger = logging.getLogger("distributed")
    before, logger_level = _dask_log_level, logger.level
    _dask_log_level = level
    if level is not None:
        logger.setLevel(level)
    try:
        yield
    finally:
        _dask_log_level = before
        logger.setLevel(logger_level)


def start_local_cluster(workers: int | None, preload: tuple[str, ...] = (), start: str = "forkserver"):
    """A local cluster sized to the machine: one single-threaded worker process
    per core (default), so pandas and pyproj steps that hold the GIL run in
    parallel too, with :data:`LOCAL_WORKER_DASK_CONFIG`; each worker imports the
    modules ``preload`` names as it boots (the task code, not at the first task).
    ``start``: 'forkserver' (workers forked from one process that imported
    ``preload`` once, :func:`_forkserver_config`) or 'spawn' (each worker a new
    Python; dask's default)."""
    import dask
    from distributed import LocalCluster

    silence = _dask_log_level if _dask_log_level is not None else logging.ERROR
    how = _forkserver_config(preload) if start == "forkserver" else {"distributed.worker.multiprocessing-method": "spawn"}
    with dask.config.set({**LOCAL_WORKER_DASK_CONFIG, **how}):  # read once, when the nannies are made
        return LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                            dashboard_address=":0", memory_limit=0, silence_logs=silence,
                            preload=list(preload))


def _forkserver_config(preload: tuple[str, ...]) -> dict:
    """Dask config that makes the local workers forks of one server process that
    imported ``preload`` (the task code) once, instead of processes that each
    start Python and import it: about 3 CPU-s per worker (on the 2-core reference
    machine, 1M roofs: 92-94 CPU-s for the run instead of 100-108, 2026-12-03)
    and less memory (the forked workers share the imported modules' pages: 61 MB
    PSS each when idle instead of 169 MB). The server process stays for later
    clusters of this process (its environment and ``preload`` are those of its
    start) and for a worker the nanny restarts. {} where the platform has no fork
    server (Windows): dask's spawn."""
    import multiprocessing

    import dask
    from distributed.utils import get_mp_context

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return {}
    config = {"distributed.worker.multiprocessing-method": "forkserver"}
    with dask.config.set(config):
        context = get_mp_context()  # dask names its own preload list once; ours replaces it
    context.set_forkserver_preload(["distributed", *preload])
    return config


class _Ticker:
    """Counts a round's finished items for its callback ``on_tasks_done(done, total)``."""

    def __init__(self, on_tasks_done: Callable[[int, int], None] | None, total: int):
        self.on_tasks_done, self.total, self.done = on_tasks_done, total, 0

    def __call__(self) -> None:
        self.done += 1
        if self.on_tasks_done:
            self.on_tasks_done(self.done, self.total)


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
        (:mod:`pvsurvey.execution.shipping`).
    preload : tuple of str
        Modules the local cluster's workers import as they boot (the tasks' own),
        so that a worker is ready for its first task when it is up.
    start : {'forkserver', 'spawn'}
        How the local cluster's worker processes start (config
        ``parallel.worker_start``; :func:`start_local_cluster`).

    Notes
    -----
    The local cluster starts on the first round worth it, so a night that
    reuses nearly every cached partition starts no processes. Tasks
    are retried twice, so a worker that dies mid-run costs a retry, not the run.
    With a remote cluster, the inputs must be on object storage or on a path
    every worker can read.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None, serial: bool = False,
                 in_process_max_rows: int = 0, shared_files: bool | str = "auto", preload: tuple[str, ...] = (),
                 start: str = "forkserver"):
        self.scheduler, self.workers, self.serial = scheduler, workers, serial
        self.preload, self.start_method = tuple(preload), start
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
        files the workers must read themselves (URLs and files under the store
        need no check)."""
        self.store, self._probe_dir = store, probe_dir
        # files under the store (inputs rewritten into the run cache) are shared or sent like the tasks' own
        self._worker_inputs = sorted({str(p) for p in worker_inputs
                                      if not is_url(p) and not Path(p).is_relative_to(store)})

    def _check_files(self, client) -> None:
        """On a remote cluster: stop with one line when a worker cannot read an
        input, and decide whether the tasks' files travel with them."""
        if self.ships is not None:
            return
        if self.scheduler is None:  # a local cluster shares this machine's files
            self.ships = False
            return
        from ..errors import InputFileError

        for path in self._worker_inputs:
            missing = [w for w, seen in client.run(os.path.exists, path).items() if not seen]
            if missing:
                raise InputFileError(
                    f"{path}: the cluster's workers cannot read it ({len(missing)} of them, e.g. {missing[0]}); "
                    "put it on object storage (s3://..., gs://..., az://...) or on a path every worker mounts")
        if self.shared_files != "auto" or self._probe_dir is None:
            self.ships = self.shared_files is False
        else:
            from .shipping import probe_write

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

    def map(self, fn: Callable, items: list, ctx, on_tasks_done: Callable[[int, int], None] | None = None,
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
        tick = _Ticker(on_tasks_done, len(items))
        if not self.distributes(rows_to_compute):
            return self._map_here(fn, items, ctx, tick, None if self.serial else cached)
        client = self._client()
        self._check_files(client)
        if self.ships:
            return self._map_shipping(client, fn, items, ctx, tick, cached)
        from distributed import as_completed

        ctx_future = client.scatter(ctx, broadcast=True, hash=False)  # a fresh key: an earlier round's release must not drop it
        futures = {client.submit(run_task, fn, item, ctx_future, key=_task_key(fn, i, ctx), retries=2, pure=False): i
                   for i, item in enumerate(items)}
        results = [None] * len(items)
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            tick()
        if self.cluster is not None:  # this run's own workers: what they freed goes back to the machine
            client.run(_return_freed_memory)
        return results

    @staticmethod
    def _take_cached_here(fn, items, indices: list[int], ctx, results: list, tick: "_Ticker") -> None:
        """Run here, on two threads, the items at ``indices``, whose result is in
        the cache (they read Parquet and pickles and link files, mostly without
        the GIL); their results go into ``results``."""
        with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="pvsurvey-cached") as pool:
            for i, result in zip(indices, pool.map(lambda i: run_task(fn, items[i], ctx), indices)):
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
                results[i] = run_task(fn, item, ctx)
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

        from .shipping import receive, run_shipped, task_inputs

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

    def warm_up(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (quick: it starts its own work in a background thread) on the
        workers as soon as they are up, without waiting for them; in this process
        where the tasks run here. Best effort: a worker that joins later does
        without (the tasks then do that work themselves)."""
        if self.serial or (self.client is None and self._starting is None):
            fn()
            return

        def on_workers(starting=None) -> None:
            try:
                if starting is None or starting.exception() is None:
                    self.client.run(fn)
            except Exception as exc:  # noqa: BLE001 (an optimisation only)
                log.debug("workers not warmed up: %s", exc)

        if self._starting is not None:
            self._starting.add_done_callback(on_workers)  # in the starting thread once connected
        else:
            on_workers()

    def run_everywhere(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (a module-level function: it travels by name) in this process and
        on every worker of the cluster, when there is one. Best effort on the workers:
        one that cannot be reached is left as it is."""
        fn()
        if self.client is not None:
            try:
                self.client.run(fn)
            except Exception as exc:  # noqa: BLE001 (housekeeping only)
                log.debug("not run on the workers: %s", exc)

    def _client(self):
        if self._starting is not None:
            starting, self._starting = self._starting, None
            starting.result()  # re-raises what went wrong while starting
        if self.client is None:
            self._connect()
        return self.client

    def _connect(self) -> None:
        from distributed import Client

        if _dask_log_level is not None:  # distributed sets its loggers to INFO on import
            logging.getLogger("distributed").setLevel(_dask_log_level)
        elif not log.isEnabledFor(logging.DEBUG):
            logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.scheduler is None:
            self.cluster = start_local_cluster(self.workers, self.preload, self.start_method)
            self.client = Client(self.cluster)
            self.client.run(_one_thread_per_worker)
            self.used = "local"
        else:
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except OSError as exc:
                from ..errors import PVSurveyError
                raise PVSurveyError(f"cannot reach the Dask scheduler at {self.scheduler} ({exc}); "
                                    "start one with 'dask scheduler' or drop --scheduler to run locally") from None
            self.used = "cluster"
