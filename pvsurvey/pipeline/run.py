"""`pvsurvey run`: paths in, a published run directory out.

:func:`run_survey` loads and checks every input before any work
(:mod:`pvsurvey.pipeline.inputs`), runs the survey task per partition
(:mod:`pvsurvey.pipeline.survey_task`), then the PV status and park projects
rounds and the outputs (:mod:`pvsurvey.pipeline.outputs`), writes the maps and
the manifest, and publishes the run directory in one rename so that readers
never see a half-written run.
"""

from __future__ import annotations


import datetime as dt
import importlib.metadata
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


from .. import __version__
from ..store.cache import (entry_path, has_entry, read_pickle, write_pickle)
from ..config.loading import load_config
from ..errors import PVSurveyError
from ..io.vector import (WGS84, footprints_bounds_wgs84, stored_crs)
from ..io.registry import usable_rows
from ..io.row_groups import release_kept
from ..locations import is_url, location
from ..tools.map_writer import publish_maps, write_maps
from ..io.writers import write_json
from ..config.schema import RegistrySource, SurveyConfig
from . import kernel_warmup
from ..naming import name_file_stem
from ..execution.executor import Executor
from . import WORKER_MODULES
from .survey_task import SurveyContext, survey_cache_key, survey_items, survey_partition
from ..store.runs import new_partial_dir, new_run_id, publish, run_lock, store_dir
from ..store.object_storage import check_writable, copy_run_to_url
from ..store.history import append_history, history_path
from ..store.cache import cache_dir, prune_cache, yields_entry
from .inputs import (CheckedInputs, cache_salt, check_inputs, check_stores, input_fingerprints, prewarm_flat_roofs,
                     shade_halo, uses_compiled_shade)
from .outputs import write_outputs
from ..store.run_directory import COMPLETE_MARKER, MANIFEST, MAPS, PARTS, RUN_LOG, VALIDATION

log = logging.getLogger(__name__)


PACKAGES = ("numpy", "pandas", "geopandas", "shapely", "pyogrio", "pyarrow", "pyproj", "rasterio",
            "pvlib", "dask", "distributed", "folium", "pydantic")


@dataclass
class RunResult:
    run_dir: Path
    manifest: dict
    published_url: str | None = None  # the copy on object storage (output.publish_url)


class _Timer:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t0, 3)


def package_versions() -> dict:
    versions = {"pvsurvey": __version__}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    import rasterio
    versions["GDAL (rasterio)"] = rasterio.__gdal_version__
    return versions


def roof_rules(cfg: SurveyConfig) -> dict:
    """The manifest's record of the usable-roof rules: the rule set, the keys set by
    hand over it, and every value used (roof and shade)."""
    return {"rule_set": cfg.roof.rule_set, "overridden_by_hand": cfg.roof.overridden_keys(),
            "roof": cfg.roof.model_dump(mode="json"), "shade": cfg.shade.model_dump(mode="json"),
            "pv_lifetime_yr": cfg.economics.lifetime_yr}


def default_run_dir(config: SurveyConfig) -> Path:
    return Path("runs") / name_file_stem(config.name)


def run_survey(config: SurveyConfig | str | Path | None = None, out_dir: str | Path | None = None,
               scheduler: str | None = None, workers: int | None = None, serial: bool = False,
               on_tasks_done: Callable[[int, int], None] | None = None, as_of: dt.date | None = None,
               installations: str | Path | None = None, wait: bool = False, reuse: bool = True,
               publish_url: str | None = None, executor: Executor | None = None) -> RunResult:
    """Survey every footprint of a config and publish a run directory.

    Parameters
    ----------
    config : SurveyConfig, path or None
        A loaded config, a YAML path, or None for the bundled Shanghai demo.
    out_dir : path, optional
        The run directory to (re)write; default ``runs/<name>``.
    scheduler : str, optional
        Address of an existing dask.distributed scheduler; overrides the config.
    workers : int, optional
        Local worker processes (default: one per core).
    serial : bool
        Run in this process without Dask (for debugging and tests).
    on_tasks_done : callable(done, total), optional
        Called as partitions finish.
    as_of : datetime.date, optional
        Date the progress figures describe (default: config ``progress.as_of``, else today).
    installations : path or URL, optional
        Registry file replacing the config's (e.g. another snapshot).
    wait : bool
        Wait for another run writing the same output instead of failing.
    reuse : bool
        Reuse the results of partitions whose rows and model inputs are unchanged
        since the last run (the registry is matched afresh); False surveys all.
    publish_url : str, optional
        Object storage to copy the finished run to, replacing the config's
        ``output.publish_url`` (see :mod:`pvsurvey.store.object_storage`).
    executor : Executor, optional
        One already made, its workers perhaps booting (:func:`pvsurvey.cli.run`
        starts them before its imports); it is closed with the run. Default: one
        made here from ``scheduler``, ``workers``, ``serial`` and the config.

    Returns
    -------
    RunResult
        The published run directory and its manifest.
    """
    timer = _Timer()
    started = dt.datetime.now(dt.timezone.utc)
    with timer.step("load_config"):
        cfg = config if isinstance(config, SurveyConfig) else load_config(config)
    if installations is not None:
        installations = location(installations)
        path = installations if is_url(installations) else installations.resolve()
        # tonight's registry in the config's format: its crs, encoding, columns and units still apply
        cfg = cfg.model_copy(update={"installations": cfg.installations.model_copy(update={"path": path})
                                     if cfg.installations is not None else RegistrySource(path=path)})
    if publish_url is not None:
        cfg = cfg.model_copy(update={"output": cfg.output.model_validate(
            {**cfg.output.model_dump(), "publish_url": publish_url})})
    as_of = as_of or cfg.progress.as_of or started.date()
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(cfg)
    scheduler = scheduler or cfg.parallel.scheduler
    workers = workers or cfg.parallel.workers

    with timer.step("check_inputs"):
        check_stores(cfg, run_dir)  # first: a few small files, read again after the survey
        inputs = check_inputs(cfg, rewrite_dir=cache_dir(run_dir))
        for url in (cfg.output.publish_url, cfg.maps.publish_dir):
            if is_url(url):  # a run that could not be published stops before the survey, not after
                check_writable(url)

    with run_lock(run_dir, wait=wait):
        tmp_dir = new_partial_dir(run_dir)
        run_id = new_run_id()
        log_file = _log_to(tmp_dir / RUN_LOG)
        try:
            manifest, history_rows = _survey_into(tmp_dir, run_dir, run_id, cfg, inputs, scheduler, workers, serial,
                                                  on_tasks_done, as_of, started, timer, reuse, executor)
            publish(tmp_dir, run_dir, cfg.output.keep_runs, run_id)
            prune_cache(run_dir, set(manifest["partitions"]["cache_entries"])
                        | ({inputs.rewritten["entry"]} if inputs.rewritten else set()))
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
        finally:
            logging.getLogger("pvsurvey").removeHandler(log_file)
            log_file.close()
        # the history grows only with published runs
        append_history(history_path(cfg.name, cfg.progress.history_file, run_dir), history_rows, as_of,
                       manifest["finished_at"], cfg.default_plan.id)
        published_url = None
        if cfg.output.publish_url is not None:
            t0 = time.perf_counter()
            published_url = copy_run_to_url(run_dir.resolve(), cfg.output.publish_url, cfg.output.keep_runs)
            log.info("run %s copied to %s in %.1f s", run_id, published_url, time.perf_counter() - t0)
        if cfg.maps.publish_dir is not None:  # stable names for the web server, fresh every morning
            publish_maps(run_dir / MAPS, cfg.maps.publish_dir)
    return RunResult(run_dir, manifest, published_url)


def _log_to(path: Path) -> logging.Handler:
    """Copy pvsurvey's log lines into the run directory (``run.log``)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("pvsurvey")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def _survey_into(tmp_dir: Path, run_dir: Path, run_id: str, cfg: SurveyConfig, inputs: CheckedInputs, scheduler,
                 workers, serial, on_tasks_done, as_of, started, timer, reuse: bool, executor: Executor | None):
    """Run the survey into ``tmp_dir`` and write every output and the marker."""
    parts = inputs.parts
    parts_dir = tmp_dir / PARTS
    for sub in ("buildings", "rejected", "candidates"):
        (parts_dir / sub).mkdir(parents=True)
    fingerprints = input_fingerprints(cfg, parts)
    cache = cache_dir(run_dir) if reuse else None
    ctx = SurveyContext(cfg, inputs.raster, inputs.parks, inputs.yield_table, parts_dir, inputs.id_column,
                        inputs.duplicates, usable_rows(inputs.registry) if inputs.registry is not None else None,
                        cfg.progress.match_distance_m, cache_dir=cache,
                        cache_salt=cache_salt(cfg, fingerprints, inputs.id_column, as_of.year), as_of_year=as_of.year)
    ctx.compiled_shade = uses_compiled_shade(cfg, parts)
    warming = ctx.compiled_shade and executor is not None  # workers booting already (a full run): warmed up
    if warming:                                             # while the client reads the halo
        executor.warm_up(kernel_warmup.start)
    with timer.step("shade_halo"):  # which partitions can shade which: each task reads its neighbours
        ctx.parts = parts
        ctx.halo, ctx.halo_grid, strips = shade_halo(cfg, parts)
    # the yield table of the last run with the same model inputs: no pvlib year is computed twice
    yields_path = cache / yields_entry(ctx.cache_salt) if cache is not None else None
    known_yields = read_pickle(yields_path) if yields_path is not None else None
    if known_yields:
        inputs.yield_table.add_entries(known_yields)
    if executor is None:
        executor = Executor(scheduler, workers, serial, cfg.parallel.in_process_max_rows,
                            cfg.parallel.shared_filesystem, preload=WORKER_MODULES,
                            start=cfg.parallel.worker_start)
    with executor:
        executor.use_store(store_dir(run_dir), tmp_dir, [p.path for p in parts] + [inputs.raster.path])
        with timer.step("survey"):
            reused = [has_entry(entry_path(cache, survey_cache_key(p, ctx))) for p in parts]
            todo = [p for p, hit in zip(parts, reused) if not hit]
            rows = sum(p.stop - p.start for p in todo) if all(p.stop >= 0 for p in todo) else None
            log.info("surveying %s: %d partition(s), %d to survey (%s rows), the rest from the cache",
                     cfg.footprints.path, len(parts), len(todo), f"{rows:,}" if rows is not None else "unknown")
            executor.start(rows)  # the workers boot while the yield table fills
            if ctx.compiled_shade and todo and not warming:
                executor.warm_up(kernel_warmup.start)
            if executor.distributes(rows):  # workers get the table with the context: fill it once, here
                try:
                    prewarm_flat_roofs(inputs.yield_table, inputs.raster,
                                       footprints_bounds_wgs84(parts, stored_crs(parts[0]) or WGS84), cfg)
                except Exception as exc:  # an optimisation only: the tasks compute whatever is missing
                    log.debug("yield table not prewarmed: %s", exc)
            results = executor.map(survey_partition, survey_items(parts, ctx, strips), ctx, on_tasks_done, rows, reused)
            if ctx.halo:  # the row groups the tasks kept for each other's halos (pvsurvey.io.row_groups)
                executor.run_everywhere(release_kept)
        log.info("survey done in %.1f s (%s); writing outputs", timer.seconds["survey"], executor.mode)
        if yields_path is not None and len(inputs.yield_table.entries()) > len(known_yields or ()):
            write_pickle(yields_path, inputs.yield_table.entries())
        with timer.step("write_outputs"):
            manifest_counts, history_rows = write_outputs(results, inputs, cfg, as_of, tmp_dir, run_dir, executor,
                                                           cache, ctx.cache_salt)
    shutil.rmtree(parts_dir)
    with timer.step("maps"):
        try:
            write_maps(tmp_dir, config=cfg)
            manifest_counts["outputs"][MAPS + "/"] = str(run_dir / MAPS)
        except PVSurveyError as exc:  # maps are a view of the run: without them the run still stands
            log.warning("no maps for this run: %s", exc)
    validation = None
    if inputs.registry is not None and "metered_kwh_per_yr" in inputs.registry \
            and inputs.registry["metered_kwh_per_yr"].notna().any():
        with timer.step("validation"):  # predicted against metered: reported, never applied
            from ..tools.validation_report import validate_run  # the chart: 'pvsurvey validate'

            doc = validate_run(tmp_dir, finished=False, config=cfg.model_dump(mode="json"))
            validation = {"city": doc["city"], "calibration": doc["calibration"]}
            for name in doc["files"][:2] + [VALIDATION]:
                manifest_counts["outputs"][name] = str(run_dir / name)
    manifest = {
        "name": cfg.name,
        "status": "complete",
        "run_id": run_id,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "run_dir": str(run_dir.absolute()),
        "config": cfg.model_dump(mode="json"),
        "roof_rules": roof_rules(cfg),
        "inputs": fingerprints,
        "partitions": {"reused": sum(r.cached for r in results), "surveyed": sum(not r.cached for r in results),
                       "keys": [r.cache_key for r in results], **manifest_counts.pop("finishing")},
        "weather": inputs.weather_meta or {"source": "pvlib Ineichen clear sky scaled to the raster GHI",
                                           "cell_deg": cfg.irradiance.weather_cell_deg},
        "packages": package_versions(),
        "execution": {"mode": executor.mode, "scheduler": scheduler, "files": executor.files, "partitions": len(parts),
                      "partition_rows": cfg.parallel.partition_rows,
                      "footprints_rewritten": inputs.rewritten,
                      "shade_halo": {str(k): v for k, v in (ctx.halo or {}).items()}},
        **manifest_counts,
        "parks": inputs.parks_summary,
        **({"validation": validation} if validation is not None else {}),
        "timings_s": timer.seconds,
    }
    write_json(manifest, tmp_dir / MANIFEST)
    (tmp_dir / COMPLETE_MARKER).write_text(manifest["finished_at"] + "\n")
    return manifest, history_rows
