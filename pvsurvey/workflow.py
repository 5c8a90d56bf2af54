"""Workflows ("tools"): paths in, a published run directory out.

:func:`run_survey` loads and checks every input before any work, runs the three
rounds of tasks (here or on Dask; see :mod:`pvsurvey.finishing`), adds up the
partitions' sums per park and district, ranks the candidate projects, writes the
tables, maps and manifest, and publishes the run directory in one rename so that
readers never see a half-written run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .columns import SUM_COLUMNS
from .cache import (combine, entry_name, entry_path, frame_digest, has_entry, read_pickle, row_hashes,
                    rows_digest, write_pickle)
from .candidates import CANDIDATE_COLUMNS, STORED_CANDIDATE_COLUMNS, ranks_by_cost, stored_candidates
from .config import load_config
from .energy import SpecificYieldTable
from .errors import InputFileError, PVSurveyError
from .io.raster import open_irradiance, pixel_centres_kwh_per_m2_yr
from .io.vector import (WGS84, check_footprint_crs_and_extent, duplicate_id_rows, footprints_bounds_wgs84,
                        plan_partitions, read_vector, resolve_id_column, source_columns,
                        stored_crs)
from .io.registry import read_registry, usable_rows
from .io.storage import Location, identity, is_url, location
from .io.weather import read_weather
from .mapping import map_options, publish_maps, write_maps
from .io.writers import merge_parquet, write_csv, write_json
from .params import SurveyConfig, VectorSource
from .finishing import (FinishContext, FinishTask, add_counts, candidate_part, finish_partition, in_cache,
                        park_projects, park_tasks, rows_to_compute)
from .io.datasets import dataset_exists, parquet_parts, read_parts
from .parallel import Executor, SurveyContext, survey_cache_key, survey_partition
from .publish import COMPLETE_MARKER, new_partial_dir, new_run_id, publish, run_lock, store_dir
from .remote import check_writable, publish_run
from .survey import clean_footprints
from .tracking import (ProgressSums, append_history, history_path, progress_csv, progress_document,
                       progress_tables, read_history, registry_outcome)

log = logging.getLogger(__name__)

PACKAGES = ("numpy", "pandas", "geopandas", "shapely", "pyogrio", "pyarrow", "pyproj", "rasterio",
            "pvlib", "dask", "distributed", "dask-geopandas", "folium", "pydantic")
PARK_NAME_SOURCES = ("park_name", "name", "名称", "园区名称")


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


def fingerprint(path: Location | None) -> dict | None:
    """Size, mtime and SHA-256 of an input file (of its first and last 16 MiB when bigger than 64 MiB);
    on object storage size, mtime and the store's ETag (:func:`pvsurvey.io.storage.identity`)."""
    if path is None:
        return None
    if is_url(path):
        return {"path": path, **identity(path)}
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    chunk = 16 << 20
    with open(path, "rb") as fh:
        if stat.st_size <= 4 * chunk:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            method = "sha256"
        else:
            digest.update(fh.read(chunk))
            fh.seek(-chunk, os.SEEK_END)
            digest.update(fh.read(chunk))
            method = "sha256-head-tail-16MiB"
    return {"path": str(path), "size_bytes": stat.st_size,
            "modified": dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc).isoformat(),
            method: digest.hexdigest()}


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


def read_parks(config: SurveyConfig) -> tuple[gpd.GeoDataFrame | None, dict | None]:
    """Park polygons in WGS84 with ``park_id``, ``park_name`` and ``district``.

    Park rows go through the same geometry checks as footprints (repair, empty,
    not a polygon, duplicate id); the rejected ones are counted and listed in the
    returned summary for the manifest.
    """
    if config.parks is None:
        return None, None
    src = config.parks
    raw = read_vector(src.path, src.crs, src.layer, what="parks")
    name_col = next((c for c in PARK_NAME_SOURCES if c in raw.columns), None)
    missing = [c for c, ok in (("park_id", "park_id" in raw), ("name", name_col), ("district", "district" in raw)) if not ok]
    if missing:
        raise InputFileError(f"{src.path}: parks need the columns park_id, name and district; missing "
                             f"{', '.join(missing)} (found: {', '.join(map(str, raw.columns))})")
    accepted, rejected, stats = clean_footprints(raw, str(src.path), "park_id")
    info = raw.set_index("source_row").loc[accepted["source_row"].to_numpy(), [name_col, "district"]]
    parks = gpd.GeoDataFrame({"park_id": accepted["building_id"].astype("string").to_numpy(),
                              "park_name": info[name_col].astype("string").to_numpy(),
                              "district": info["district"].astype("string").to_numpy()},
                             geometry=accepted.geometry.values, crs=accepted.crs)
    summary = {"input_rows": int(len(raw)), "accepted": int(len(parks)), "repaired_geometries": stats["repaired"],
               "rejected": rejected[["source_row", "building_id", "reason"]].rename(
                   columns={"building_id": "park_id"}).to_dict(orient="records")}
    if len(parks) == 0:
        raise InputFileError(f"{src.path}: no usable park polygon ({len(rejected)} rows rejected)")
    return parks, summary


def prewarm_flat_roofs(table: SpecificYieldTable, raster, bounds, cfg: SurveyConfig) -> None:
    """Fill the yield table for flat roofs under every pixel of a coarse raster
    before the workers start: each worker then gets it with the context instead
    of computing the same entries again (most roofs are flat)."""
    if bounds is None or cfg.footprints.crs is not None:  # a declared CRS may contradict the file's bounds
        return
    pixels = pixel_centres_kwh_per_m2_yr(raster, bounds)
    if pixels is None:
        return
    lon, lat, ghi = pixels
    keep = np.isfinite(ghi) & (ghi > 0)
    n = int(keep.sum())
    table.lookup(lat[keep], lon[keep], ghi[keep], np.full(n, cfg.roof.flat_tilt_deg),
                 np.full(n, cfg.roof.flat_azimuth_deg), np.full(n, "rack", dtype=object))


def build_yield_table(config: SurveyConfig) -> tuple[SpecificYieldTable, dict | None]:
    irr = config.irradiance
    if irr.weather is None:
        return SpecificYieldTable(config.system, config.climate, irr.weather_cell_deg), None
    data, meta = read_weather(irr.weather)
    table = SpecificYieldTable(config.system, config.climate, irr.weather_cell_deg, weather=data,
                               weather_location=(meta["latitude"], meta["longitude"]))
    return table, meta


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


def candidate_status_path(name: str, run_dir: Path) -> Path:
    """The park managers' status store, kept beside the runs so it outlives them."""
    return Path(run_dir).absolute().parent / f"{name}-candidate-status.csv"  # beside the pointer, not inside a run


def read_candidate_statuses(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig") if path.is_file() else None


# The city's CSV list holds the best projects; the full list is candidates.parquet.
CITY_LIST_MAX_ROWS = 20_000


def publish_candidate_lists(out_dir: Path, lang: str) -> None:
    """The city's list ``candidates.csv`` (the cheapest ``CITY_LIST_MAX_ROWS``)
    and one complete list per park under ``candidates/``, with city-wide ranks,
    from the parts of ``candidates.parquet/`` (only costs are read in full)."""
    parts = parquet_parts(out_dir / "candidates.parquet")
    ranks = ranks_by_cost([t.column(0).to_numpy() for t in read_parts(parts, ["lcoe_cny_per_kwh"])])
    per_park = out_dir / "candidates"
    per_park.mkdir(exist_ok=True)
    top = []
    for path, rank in zip(parts, ranks):
        if path.name.startswith("park-"):  # a park's whole list, cheapest first
            frame = pq.read_table(path, columns=STORED_CANDIDATE_COLUMNS).to_pandas()
            frame.insert(1, "rank", rank)
            write_csv(frame, per_park / f"{path.stem}.csv", lang)
            top.append(frame[frame["rank"] <= CITY_LIST_MAX_ROWS])
            continue
        chosen = np.flatnonzero(rank <= CITY_LIST_MAX_ROWS)
        if len(chosen):  # parts are sorted by cost: the rows of the city's list are a part's first ones
            frame = _head(path, int(chosen[-1]) + 1).take(pa.array(chosen)).to_pandas()
            frame.insert(1, "rank", rank[chosen])
            top.append(frame)
    city = pd.concat(top, ignore_index=True).sort_values("rank") if top else pd.DataFrame(columns=CANDIDATE_COLUMNS)
    write_csv(city, out_dir / "candidates.csv", lang)


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


def default_run_dir(config: SurveyConfig) -> Path:
    return Path("runs") / config.name


def run_survey(config: SurveyConfig | str | Path | None = None, out_dir: str | Path | None = None,
               scheduler: str | None = None, workers: int | None = None, serial: bool = False,
               progress: Callable[[int, int], None] | None = None, as_of: dt.date | None = None,
               installations: str | Path | None = None, wait: bool = False, reuse: bool = True,
               publish_url: str | None = None) -> RunResult:
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
    progress : callable(done, total), optional
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
        ``output.publish_url`` (see :mod:`pvsurvey.remote`).

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
        cfg = cfg.model_copy(update={"installations": VectorSource(
            path=installations if is_url(installations) else installations.resolve())})
    if publish_url is not None:
        cfg = cfg.model_copy(update={"output": cfg.output.model_validate(
            {**cfg.output.model_dump(), "publish_url": publish_url})})
    as_of = as_of or cfg.progress.as_of or started.date()
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(cfg)
    scheduler = scheduler or cfg.parallel.scheduler
    workers = workers or cfg.parallel.workers

    with timer.step("check_inputs"):
        inputs = check_inputs(cfg)
        for url in (cfg.output.publish_url, cfg.maps.publish_dir):
            if is_url(url):  # a run that could not be published stops before the survey, not after
                check_writable(url)

    with run_lock(run_dir, wait=wait):
        tmp_dir = new_partial_dir(run_dir)
        run_id = new_run_id()
        log_file = _log_to(tmp_dir / "run.log")
        try:
            manifest, history_rows = _survey_into(tmp_dir, run_dir, run_id, cfg, inputs, scheduler, workers, serial,
                                                  progress, as_of, started, timer, reuse)
            publish(tmp_dir, run_dir, cfg.output.keep_runs, run_id)
            prune_cache(run_dir, set(manifest["partitions"]["cache_entries"]))
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
        finally:
            logging.getLogger("pvsurvey").removeHandler(log_file)
            log_file.close()
        # the history grows only with published runs
        append_history(history_path(cfg, run_dir), history_rows, as_of, manifest["finished_at"])
        published_url = None
        if cfg.output.publish_url is not None:
            t0 = time.perf_counter()
            published_url = publish_run(run_dir.resolve(), cfg.output.publish_url, cfg.output.keep_runs)
            log.info("run %s copied to %s in %.1f s", run_id, published_url, time.perf_counter() - t0)
        if cfg.maps.publish_dir is not None:  # stable names for the web server, fresh every morning
            publish_maps(run_dir / "maps", cfg.maps.publish_dir)
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


@dataclass
class CheckedInputs:
    """Everything read and checked before any work starts."""

    raster: object
    parts: list
    id_column: str | None
    duplicates: np.ndarray | None
    parks: gpd.GeoDataFrame | None
    parks_summary: dict | None
    registry: pd.DataFrame | None
    yield_table: SpecificYieldTable
    weather_meta: dict | None


def check_inputs(cfg: SurveyConfig) -> CheckedInputs:
    """Open and check every input, so that a bad file stops the run before any work.

    Raises
    ------
    PVSurveyError
        One line naming the file and the fix (missing, unreadable, empty, no
        CRS, implausible units, no overlap between raster and footprints, ...).
    """
    raster = open_irradiance(cfg.irradiance.ghi, cfg.irradiance.units)
    parts = plan_partitions(cfg.footprints.path, cfg.parallel.partition_rows, cfg.footprints.layer)
    check_footprint_crs_and_extent(parts, cfg.footprints.crs, raster)
    id_column = resolve_id_column(source_columns(parts[0]), cfg.footprints.id_column)
    if cfg.footprints.id_column and id_column is None:
        raise InputFileError(f"{cfg.footprints.path}: no column '{cfg.footprints.id_column}' "
                             "(footprints.id_column in the config)")
    duplicates = duplicate_id_rows(parts, id_column) if id_column else None
    pa.default_memory_pool().release_unused()  # the id scan's buffers, before the workers start
    parks, parks_summary = read_parks(cfg)
    registry = read_registry(cfg.installations) if cfg.installations is not None else None
    yield_table, weather_meta = build_yield_table(cfg)
    map_options(cfg.maps)  # a Tianditu base map without a key fails here, not after the survey
    return CheckedInputs(raster, parts, id_column, duplicates, parks, parks_summary, registry, yield_table,
                         weather_meta)


def input_fingerprints(cfg: SurveyConfig, parts: list) -> dict:
    """What identifies each input's content (the manifest's ``inputs``); a folder of
    footprint files by its file count and its partitions' fingerprints."""
    files = list(dict.fromkeys(p.path for p in parts))
    footprints = fingerprint(cfg.footprints.path) if files == [cfg.footprints.path] else {
        "path": str(cfg.footprints.path), "files": len(files),
        "partitions_sha256": hashlib.sha256("|".join(str(p.fingerprint) for p in parts).encode()).hexdigest()}
    return {"footprints": footprints,
            "parks": fingerprint(cfg.parks.path if cfg.parks else None),
            "installations": fingerprint(cfg.installations.path if cfg.installations else None),
            "ghi": fingerprint(cfg.irradiance.ghi),
            "weather": fingerprint(cfg.irradiance.weather)}


def cache_dir(run_dir: Path) -> Path:
    """Partition results kept for the next run (beside the dated runs)."""
    return store_dir(run_dir) / ".cache"


def cache_salt(cfg: SurveyConfig, fingerprints: dict, id_column: str | None) -> str:
    """Everything besides a partition's own rows that shapes its result: the
    model parameters and economics (projects of roofs outside parks are built in
    the survey tasks), the raster, weather and parks, the reader settings and
    pvsurvey's version. The registry is not in it: matching is redone each run."""
    def digest(fp):  # the mtime too: a big file is hashed at its head and tail only
        return None if fp is None else {k: v for k, v in fp.items() if k != "path"}

    shaping = {"version": __version__, "id_column": id_column,
               "footprints": cfg.footprints.model_dump(mode="json", exclude={"path"}),
               "roof": cfg.roof.model_dump(mode="json"), "system": cfg.system.model_dump(mode="json"),
               "climate": cfg.climate.model_dump(mode="json"), "economics": cfg.economics.model_dump(mode="json"),
               "irradiance": {"units": cfg.irradiance.units, "cell_deg": cfg.irradiance.weather_cell_deg},
               "ghi": digest(fingerprints["ghi"]), "weather": digest(fingerprints["weather"]),
               "parks": digest(fingerprints["parks"])}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def yields_entry(salt: str) -> str:
    """The cache file of the pvlib yields computed under one cache salt."""
    return f"yields-{salt[:32]}.pkl"


def prune_cache(run_dir: Path, keep: set) -> None:
    """Drop cached results the latest run did not use (the cache holds one run)."""
    root = cache_dir(run_dir)
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name not in keep:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _survey_into(tmp_dir: Path, run_dir: Path, run_id: str, cfg: SurveyConfig, inputs: CheckedInputs, scheduler,
                 workers, serial, progress, as_of, started, timer, reuse: bool):
    """Run the survey into ``tmp_dir`` and write every output and the marker."""
    parts = inputs.parts
    parts_dir = tmp_dir / "_parts"
    for sub in ("buildings", "rejected", "candidates"):
        (parts_dir / sub).mkdir(parents=True)
    fingerprints = input_fingerprints(cfg, parts)
    cache = cache_dir(run_dir) if reuse else None
    ctx = SurveyContext(cfg, inputs.raster, inputs.parks, inputs.yield_table, parts_dir, inputs.id_column,
                        inputs.duplicates, usable_rows(inputs.registry) if inputs.registry is not None else None,
                        cfg.progress.match_distance_m, cache_dir=cache,
                        cache_salt=cache_salt(cfg, fingerprints, inputs.id_column))
    # the yield table of the last run with the same model inputs: no pvlib year is computed twice
    yields_path = cache / yields_entry(ctx.cache_salt) if cache is not None else None
    known_yields = read_pickle(yields_path) if yields_path is not None else None
    if known_yields:
        inputs.yield_table.add_entries(known_yields)
    with Executor(scheduler, workers, serial, cfg.parallel.in_process_max_rows,
                  cfg.parallel.shared_filesystem) as executor:
        executor.use_store(store_dir(run_dir), tmp_dir, [p.path for p in parts] + [inputs.raster.path])
        with timer.step("survey"):
            reused = [has_entry(entry_path(cache, survey_cache_key(p, ctx))) for p in parts]
            todo = [p for p, hit in zip(parts, reused) if not hit]
            rows = sum(p.stop - p.start for p in todo) if all(p.stop >= 0 for p in todo) else None
            log.info("surveying %s: %d partition(s), %d to survey (%s rows), the rest from the cache",
                     cfg.footprints.path, len(parts), len(todo), f"{rows:,}" if rows is not None else "unknown")
            executor.start(rows)  # the workers boot while the yield table fills
            if executor.distributes(rows):  # workers get the table with the context: fill it once, here
                try:
                    prewarm_flat_roofs(inputs.yield_table, inputs.raster,
                                       footprints_bounds_wgs84(parts, stored_crs(parts[0]) or WGS84), cfg)
                except Exception as exc:  # an optimisation only: the tasks compute whatever is missing
                    log.debug("yield table not prewarmed: %s", exc)
            results = executor.map(survey_partition, parts, ctx, progress, rows, reused)
        log.info("survey done in %.1f s (%s); writing outputs", timer.seconds["survey"], executor.mode)
        if yields_path is not None and len(inputs.yield_table.entries()) > len(known_yields or ()):
            write_pickle(yields_path, inputs.yield_table.entries())
        with timer.step("write_outputs"):
            manifest_counts, history_rows = _write_outputs(results, inputs, cfg, as_of, tmp_dir, run_dir, executor,
                                                           cache, ctx.cache_salt)
    shutil.rmtree(parts_dir)
    with timer.step("maps"):
        try:
            write_maps(tmp_dir, config=cfg)
            manifest_counts["outputs"]["maps/"] = str(run_dir / "maps")
        except PVSurveyError as exc:  # maps are a view of the run: without them the run still stands
            log.warning("no maps for this run: %s", exc)
    manifest = {
        "name": cfg.name,
        "status": "complete",
        "run_id": run_id,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "run_dir": str(run_dir.absolute()),
        "config": cfg.model_dump(mode="json"),
        "inputs": fingerprints,
        "partitions": {"reused": sum(r.cached for r in results), "surveyed": sum(not r.cached for r in results),
                       "keys": [r.cache_key for r in results], **manifest_counts.pop("finishing")},
        "weather": inputs.weather_meta or {"source": "pvlib Ineichen clear sky scaled to the raster GHI",
                                           "cell_deg": cfg.irradiance.weather_cell_deg},
        "packages": package_versions(),
        "execution": {"mode": executor.mode, "scheduler": scheduler, "files": executor.files, "partitions": len(parts),
                      "partition_rows": cfg.parallel.partition_rows},
        **manifest_counts,
        "parks": inputs.parks_summary,
        "timings_s": timer.seconds,
    }
    write_json(manifest, tmp_dir / "manifest.json")
    (tmp_dir / COMPLETE_MARKER).write_text(manifest["finished_at"] + "\n")
    return manifest, history_rows


def _check_counts(results) -> dict:
    """Row counts of the survey; stops the run when nothing was accepted."""
    input_rows = sum(r.input_rows for r in results)
    accepted = sum(r.accepted for r in results)
    rejected = sum(r.rejected for r in results)
    reasons = Counter()
    for r in results:
        reasons.update(r.reasons)
    if input_rows != accepted + rejected:  # the invariant every run must keep
        raise PVSurveyError(f"internal error: {input_rows} input rows but {accepted} accepted + {rejected} rejected")
    if accepted == 0:
        top = ", ".join(f"{k}: {v}" for k, v in reasons.most_common(3))
        hint = (" — the irradiance raster does not overlap the footprints; check both files' CRS and extent"
                if reasons.get("outside_raster") == rejected else "")
        raise InputFileError(f"no footprint was accepted ({top}){hint}")
    return {"input_rows": input_rows, "accepted": accepted, "rejected": rejected,
            "rejected_by_reason": dict(sorted(reasons.items())),
            "repaired_geometries": sum(r.repaired for r in results)}


def _finish_tasks(results, per_building: pd.DataFrame, statuses: pd.DataFrame | None, keyed: bool) -> list[FinishTask]:
    """Round 2's tasks: each partition with the registry outcome of its own roofs,
    keyed by its survey key, that outcome and the status store."""
    statuses_digest = frame_digest(statuses)
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


def _log_progress(label: str, unit: str, every_s: float = 10.0) -> Callable[[int, int], None]:
    """Progress of a round as log lines (terminal and run.log), one every ``every_s``
    at most: rounds 2 and 3 take minutes on a country's roofs."""
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - t0
        if elapsed - last[0] >= every_s or (done == total and elapsed >= every_s):
            last[0] = elapsed
            log.info("%s: %d/%d %s done after %.0f s", label, done, total, unit, elapsed)

    return progress


def _write_outputs(results, inputs: CheckedInputs, cfg: SurveyConfig, as_of: dt.date, tmp_dir: Path,
                   run_dir: Path, executor: Executor, cache: Path | None, salt: str) -> tuple[dict, pd.DataFrame]:
    counts = _check_counts(results)
    bounds = np.array([r.bounds for r in results if r.bounds is not None])
    survey_bounds = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
    resolved, per_building = registry_outcome(inputs.registry, results, cfg, as_of, survey_bounds)
    statuses = read_candidate_statuses(candidate_status_path(cfg.name, run_dir))
    fctx = FinishContext(cfg.economics, statuses, tmp_dir, tmp_dir / "_parts", cache)

    tasks = _finish_tasks(results, per_building, statuses, cache is not None)
    reused = in_cache(tasks, cache, "finish")
    todo = rows_to_compute(tasks, reused)
    log.info("finishing %d partition(s) (%s rows to compute): PV columns, progress sums, candidate projects",
             len(tasks), f"{todo:,}")
    finished = executor.map(finish_partition, tasks, fctx, _log_progress("finishing", "partitions"), todo, reused)
    parks = park_tasks(finished, cache is not None)
    reused = in_cache(parks, cache, "park")
    finished_parks = executor.map(park_projects, parks, fctx, _log_progress("park projects", "parks"),
                                  rows_to_compute(parks, reused), reused)
    candidate_counts = add_counts([f.candidates for f in finished] + [p.candidates for p in finished_parks])
    if not dataset_exists(tmp_dir / "candidates.parquet"):
        _empty_candidates(tmp_dir)
    merge_parquet([r.rejected_path for r in results], tmp_dir / "rejected.parquet", geo=False)
    park_table, district_table, totals = aggregate(results, inputs.parks)
    write_csv(park_table, tmp_dir / "parks.csv")
    write_csv(district_table, tmp_dir / "districts.csv")

    log.info("%d candidate project(s); writing the lists and progress", candidate_counts["projects"])
    publish_candidate_lists(tmp_dir, cfg.output.lang)
    tables = progress_tables(ProgressSums([f.sums for f in finished]), inputs.parks, cfg)
    table = progress_csv(tables)
    old = read_history(history_path(cfg, run_dir))
    now = table.assign(as_of=as_of.isoformat())
    history = now if old is None else pd.concat([old[old["as_of"] != as_of.isoformat()], now], ignore_index=True)
    doc = progress_document(tables, cfg, as_of, resolved, history)
    write_json(doc, tmp_dir / "progress.json")
    write_csv(table, tmp_dir / "progress.csv")
    outputs = ["buildings.parquet", "rejected.parquet", "parks.csv", "districts.csv", "progress.json",
               "progress.csv", "candidates.parquet", "candidates.csv", "candidates/", "manifest.json"]
    registry_counts = None
    if resolved is not None:
        write_csv(resolved, tmp_dir / "installations_matched.csv")
        outputs.append("installations_matched.csv")
        registry_counts = doc["registry"]
    city = doc["city"]
    totals.update({"install_ratio_area_frac": city.get("install_ratio_area_frac"),
                   "installed_kwp": city.get("installed_kwp"),
                   "new_kwp_since_baseline": city.get("new_kwp_since_baseline")})
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
    }, table


def report_progress(run_dir: str | Path, lang: str = "en", history_file: str | Path | None = None
                    ) -> tuple[str, list[Path]]:
    """The progress table of a run and its trajectory chart.

    Writes ``progress.png`` and ``progress.svg`` (text kept as text, so browsers
    render Chinese labels even where no CJK font is installed for the PNG) into
    the run directory.

    Returns
    -------
    (str, list of Path)
        The table as text and the chart files written.
    """
    from .report import has_cjk_font, progress_table, trajectory_figure

    run_dir = Path(run_dir)
    doc_path = run_dir / "progress.json"
    if not doc_path.is_file():
        raise InputFileError(f"{run_dir}: no progress.json here; give a run directory written by 'pvsurvey run'")
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    history_file = Path(history_file) if history_file else (
        Path(manifest["config"]["progress"]["history_file"]) if manifest["config"]["progress"].get("history_file")
        else run_dir.absolute().parent / f"{manifest['name']}-history.csv")
    history = read_history(history_file)
    if history is None:  # a run always has its own point
        history = pd.read_csv(run_dir / "progress.csv", encoding="utf-8-sig").assign(as_of=doc["as_of"])
    text = progress_table(doc, lang)
    import matplotlib.pyplot as plt

    written = []
    png_lang = lang if (lang == "en" or has_cjk_font()) else "en"
    if png_lang != lang:
        log.warning("no CJK font for the PNG chart: its labels are in English; progress.svg has the Chinese ones")
    for suffix, chart_lang in (("png", png_lang), ("svg", lang)):
        with plt.rc_context({"svg.fonttype": "none"}), warnings.catch_warnings():
            # SVG keeps text as text: the viewer's fonts draw it, so missing local glyphs do not matter
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig = trajectory_figure(history, doc, chart_lang)
            target = run_dir / f"progress.{suffix}"
            tmp = target.with_name(f".{target.name}.tmp")
            fig.savefig(tmp, dpi=120, format=suffix)
            plt.close(fig)
        os.replace(tmp, target)
        written.append(target)
    return text, written
