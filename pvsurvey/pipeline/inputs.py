"""Every input of a run, read and checked before any work starts; the input
fingerprints and the cache salt that say what the results depend on.
"""

from __future__ import annotations


import dataclasses
import functools
import datetime as dt
import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from .. import __version__
from ..columns import BUILDING_COLUMNS
from ..model.candidates import STORED_CANDIDATE_COLUMNS
from ..model.yield_table import SpecificYieldTable
from ..errors import ConfigError, InputFileError
from ..io.raster import open_irradiance, pixel_centres_kwh_per_m2_yr
from ..io.vector import (Partition, check_footprint_crs_and_extent, covering_bounds_wgs84, duplicate_id_rows,
                         geoframe_from_arrow, needs_rewriting, plan_partitions, plan_rewritten, read_partition,
                         resolve_id_column, source_columns, to_wgs84, wkb_bounds_wgs84, write_partitioned_geoparquet)
from ..io.fields import footprint_id_column, geometry_column, plan_columns
from ..io.registry import read_registry
from ..locations import Location, is_url
from ..io.storage import identity, parquet_file
from ..model.footprints import ATTRIBUTE_SOURCES
from ..model.shade import COMPILED_MIN_POINTS, envelope_cells, halo_grid, halo_neighbours, halo_strips
from ..io.weather import read_weather
from ..tools.map_writer import map_options
from ..config.schema import SurveyConfig
from ..io.parks import read_parks
from ..naming import name_file_stem
from ..store.candidate_status import candidate_status_path, read_candidate_statuses
from ..store.history import history_path, read_history

log = logging.getLogger(__name__)

# bumped when write_partitioned_geoparquet writes differently: older rewrites are then not reused
REWRITE_FORMAT = 1


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
    # the footprints rewritten into partition-sized files (plan_footprints): entry name in
    # the run cache, rows per file, and whether this run wrote it; None when read as they are
    rewritten: dict | None = field(default=None)


def rewrite_entry(cfg: SurveyConfig) -> str:
    """The run cache's name for the footprints rewritten in partitions: the file's
    content (:func:`fingerprint`, not its path) and the partition size."""
    fp = {k: v for k, v in fingerprint(cfg.footprints.path).items() if k != "path"}
    key = json.dumps({"file": fp, "rows": cfg.parallel.partition_rows, "format": REWRITE_FORMAT,
                      "suffix": Path(cfg.footprints.path).suffix.lower()}, sort_keys=True)
    return "input-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def plan_footprints(cfg: SurveyConfig, rewrite_dir: Path | None = None) -> tuple[list[Partition], dict | None]:
    """The footprints' partitions, of about ``parallel.partition_rows`` rows
    whatever the file's layout.

    A file that splits so only once rewritten (an OSM extract, a GeoParquet file
    with huge row groups: :func:`pvsurvey.io.vector.needs_rewriting`) is
    rewritten once into ``rewrite_dir`` (the run cache, which the workers share
    or get the files of), keyed by its content, and read from there on later
    nights too; its partitions still name the input file and its row numbers.
    """
    src = cfg.footprints
    rows = cfg.parallel.partition_rows
    if rewrite_dir is None or not needs_rewriting(src.path, rows):
        return plan_partitions(src.path, rows, src.layer, encoding=src.encoding,
                               wkt_column=geometry_column(src)), None
    folder = Path(rewrite_dir) / rewrite_entry(cfg)
    written = not folder.is_dir()
    t0 = time.perf_counter()
    if written:
        write_partitioned_geoparquet(src.path, folder, rows)
    parts = plan_rewritten(folder, src.path, rows)
    seconds = round(time.perf_counter() - t0, 3)
    log.info("%s %s as %d files of up to %s rows in %s (%.1f s)", "rewrote" if written else "reading",
             src.path, len(parts), f"{rows:,}", folder, seconds)
    return parts, {"entry": folder.name, "rows_per_file": rows, "files": len(parts), "written_now": written,
                   "seconds": seconds}


def check_inputs(cfg: SurveyConfig, rewrite_dir: Path | None = None) -> CheckedInputs:
    """Open and check every input, so that a bad file stops the run before any work;
    footprints that need it are rewritten in partitions into ``rewrite_dir``
    (:func:`plan_footprints`).

    Raises
    ------
    PVSurveyError
        One line naming the file and the fix (missing, unreadable, empty, no
        CRS, implausible units, no overlap between raster and footprints, ...).
    """
    raster = open_irradiance(cfg.irradiance.ghi, cfg.irradiance.units)
    src = cfg.footprints
    parts, rewritten = plan_footprints(cfg, rewrite_dir)
    check_footprint_crs_and_extent(parts, src.crs, raster)
    columns = source_columns(parts[0])
    configured_id = footprint_id_column(src)
    id_column = resolve_id_column(columns, configured_id)
    if configured_id and id_column is None:
        key = "id_column" if src.id_column else "columns.building_id"
        raise InputFileError(f"{src.path}: no column '{configured_id}' (footprints.{key} in the config; the file has: "
                             f"{', '.join(map(str, columns))})")
    plan = plan_columns(columns, src, "footprints", src.path)
    renames = {k: v for k, v in plan.renames.items() if k != id_column}  # ids are read under the file's name
    if renames:
        parts = [dataclasses.replace(p, columns=tuple(sorted(renames.items()))) for p in parts]
    duplicates = duplicate_id_rows(parts, id_column) if id_column else None
    pa.default_memory_pool().release_unused()  # the id scan's buffers, before the workers start
    parks, parks_summary = read_parks(cfg)
    check_plan_names(cfg, parks)
    registry = read_registry(cfg.installations) if cfg.installations is not None else None
    yield_table, weather_meta = build_yield_table(cfg)
    map_options(cfg.maps)  # a Tianditu base map without a key fails here, not after the survey
    return CheckedInputs(raster, parts, id_column, duplicates, parks, parks_summary, registry, yield_table,
                         weather_meta, rewritten)


def check_stores(cfg: SurveyConfig, run_dir: Path) -> None:
    """Read the files beside the runs that a run reads and rewrites only after the
    survey (the progress history, the park managers' candidate statuses), so that
    a bad one stops the run before any work, not after it.

    Raises
    ------
    ConfigError
        ``progress.history_file`` names a directory, or a path under a file.
    InputFileError
        One of the files unreadable, or not what it should be: one line naming it and the fix.
    """
    path = history_path(cfg.name, cfg.progress.history_file, run_dir)
    if cfg.progress.history_file is not None:
        default = f"{name_file_stem(cfg.name)}-history.csv"
        if path.is_dir():
            raise ConfigError(f"key 'progress.history_file': {path} is a directory; give a file in it (e.g. "
                              f"{path / default}), or remove the key to keep the history beside the run directory")
        folder = next(p for p in path.parents if p.exists())
        if not folder.is_dir():
            raise ConfigError(f"key 'progress.history_file': {folder} is a file, so {path} cannot be written; "
                              "give a path in a folder")
    read_history(path, cfg.default_plan.id)
    read_candidate_statuses(candidate_status_path(cfg.name, run_dir))


# the columns a building's height or storeys are read from (after the config's renames)
HEIGHT_COLUMNS = frozenset(ATTRIBUTE_SOURCES["height_m"] + ATTRIBUTE_SOURCES["levels"])


def may_have_heights(parts: list) -> bool:
    """Whether some footprint file has a column heights or storeys are read from
    (:data:`HEIGHT_COLUMNS`, after the config's renames): without one no roof can
    be shaded (:func:`pvsurvey.model.shade.roof_shade` traces buildings of known
    height only). Reads file metadata or headers only; True where they cannot
    be read (the task reports the problem) and for OSM extracts (tags, not columns)."""
    seen = set()
    for part in parts:
        if part.path in seen:
            continue
        seen.add(part.path)
        if part.kind == "osm":
            return True
        try:
            names = source_columns(part)
        except Exception:  # noqa: BLE001 (the task that reads it raises the reader's one-line error)
            return True
        renames = dict(part.columns)
        if {renames.get(c, c) for c in names} & HEIGHT_COLUMNS:
            return True
    return False


def uses_compiled_shade(cfg: SurveyConfig, parts: list) -> bool:
    """Whether roofs may be traced in the shade model's compiled kernel: shade on, a
    partition of at least ``COMPILED_MIN_POINTS`` rows (or of rows not yet counted),
    and a column heights are read from (:func:`may_have_heights`)."""
    return (cfg.shade.enabled and any(p.stop < 0 or p.stop - p.start >= COMPILED_MIN_POINTS for p in parts)
            and may_have_heights(parts))


def _partition_bounds(part, declared_crs: str | None) -> np.ndarray:
    """Envelopes (lon/lat) of a partition's footprints; GeoParquet reads only its geometry column.
    A partition that cannot be read here has none: its own task reports the problem, in one line."""
    try:
        return _read_bounds(part, declared_crs)
    except Exception:  # noqa: BLE001 (the task that reads it raises the reader's one-line error)
        return np.zeros((0, 4))


def _read_bounds(part, declared_crs: str | None) -> np.ndarray:
    if declared_crs is None:  # GeoParquet in lon/lat: its bbox columns, else the boxes of its WKB bytes
        for envelopes in (covering_bounds_wgs84, wkb_bounds_wgs84):
            bounds = envelopes(part)
            if bounds is not None:  # no geometry built
                return bounds
    if part.kind == "parquet":
        parquet = parquet_file(part.path)
        geo = json.loads(parquet.schema_arrow.metadata[b"geo"])
        column = geo.get("primary_column", "geometry")
        table = parquet.read_row_groups(list(part.row_groups), columns=[column])
        frame = geoframe_from_arrow(table, parquet.schema_arrow.empty_table().select([column]).schema
                                    .with_metadata(parquet.schema_arrow.metadata))
        frame = to_wgs84(frame, declared_crs, part.path)
    else:
        frame = read_partition(part, declared_crs)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    with np.errstate(all="ignore"):
        return shapely.bounds(geoms)


def shade_halo(cfg: SurveyConfig, parts: list) -> tuple[dict | None, tuple | None, dict | None]:
    """For each partition (by index), the partitions with a building within shade
    reach (``shade.max_distance_m``) of one of its buildings, the grid used, and
    for each partition the rows of each of those within reach
    (:func:`pvsurvey.model.shade.halo_strips`: its task reads only these).
    Reads every partition's outlines once (GeoParquet: the geometry column only);
    None where shade is off, there is one partition, or no file has a column
    heights are read from (:func:`may_have_heights`): no roof is then traced, and
    neither the client nor any task reads a neighbour's rows for nothing."""
    if not cfg.shade.enabled or len(parts) < 2 or not may_have_heights(parts):
        return None, None, None
    # on threads: the reads and GEOS's decoding release the GIL, and the workers wait for this
    with ThreadPoolExecutor(max(1, min(len(parts), os.cpu_count() or 1))) as pool:
        bounds = list(pool.map(lambda p: _partition_bounds(p, cfg.footprints.crs), parts))
    lat = np.concatenate([b[:, [1, 3]].ravel() for b in bounds])
    lat = lat[np.isfinite(lat)]
    grid = halo_grid(float(np.abs(lat).max()) if len(lat) else 0.0, cfg.shade.max_distance_m)
    envelopes = [envelope_cells(b, grid) for b in bounds]
    cells = [np.unique(cell) for _, cell in envelopes]
    neighbours = halo_neighbours(cells)
    strips = halo_strips(envelopes, cells, neighbours)
    return ({p.index: [parts[j].index for j in near] for p, near in zip(parts, neighbours)}, grid,
            {p.index: {parts[j].index: rows for j, rows in strip.items()} for p, strip in zip(parts, strips)})


def _listed(names, known: list[str]) -> str:
    shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
    return f"{', '.join(repr(n) for n in names)} (the parks file has: {shown or 'none'})"


def check_plan_names(cfg: SurveyConfig, parks: gpd.GeoDataFrame | None) -> None:
    """Every district and park a plan names (its scope, its per-district and
    per-park targets) is one of the parks file's.

    Raises
    ------
    ConfigError
        One line naming the key and the unknown names.
    """
    districts = sorted(set(parks["district"].dropna().astype(str))) if parks is not None else []
    park_ids = list(parks["park_id"].astype(str)) if parks is not None else []
    for i, plan in enumerate(cfg.plans):
        key = cfg.plan_key(i)
        t = plan.targets
        named = [("scope.districts", "district", plan.scope.districts, districts),
                 ("scope.parks", "park", plan.scope.parks, park_ids),
                 ("district_install_ratio", "district", t.district_install_ratio, districts),
                 ("district_new_capacity_mw", "district", t.district_new_capacity_mw, districts),
                 ("park_install_ratio", "park", t.park_install_ratio, park_ids),
                 ("park_new_capacity_mw", "park", t.park_new_capacity_mw, park_ids)]
        for field, what, names, known in named:
            if not names:
                continue
            where = field if field.startswith("scope") or key == "targets" else f"targets.{field}"
            if parks is None:
                raise ConfigError(f"key '{key}.{where}' (plan '{plan.id}'): names {what}s, but the config has no "
                                  "parks file to find them in; add 'parks:' or drop the names")
            unknown = [n for n in names if n not in set(known)]
            if unknown:
                raise ConfigError(f"key '{key}.{where}' (plan '{plan.id}'): unknown {what} "
                                  f"{_listed(unknown, known)}")


def input_fingerprints(cfg: SurveyConfig, parts: list) -> dict:
    """What identifies each input's content (the manifest's ``inputs``); a folder of
    footprint files by its file count and its partitions' fingerprints."""
    files = list(dict.fromkeys(p.named for p in parts))
    footprints = fingerprint(cfg.footprints.path) if files == [cfg.footprints.path] else {
        "path": str(cfg.footprints.path), "files": len(files),
        "partitions_sha256": hashlib.sha256("|".join(str(p.fingerprint) for p in parts).encode()).hexdigest()}
    return {"footprints": footprints,
            "parks": fingerprint(cfg.parks.path if cfg.parks else None),
            "installations": fingerprint(cfg.installations.path if cfg.installations else None),
            "ghi": fingerprint(cfg.irradiance.ghi),
            "weather": fingerprint(cfg.irradiance.weather)}


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of pvsurvey's own source files: a cached result made by other code
    (an upgrade, a fix between two nights) is never reused, whatever the version
    number says."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_salt(cfg: SurveyConfig, fingerprints: dict, id_column: str | None, as_of_year: int | None = None) -> str:
    """Everything besides a partition's own rows that shapes its result: the
    model parameters and economics (projects of roofs outside parks are built in
    the survey tasks), the raster, weather and parks, the reader settings, the
    survey's year (roofs' remaining life), pvsurvey's version and code
    (:func:`code_digest`) and the columns of
    the part files (a cached part of an older schema is not reused). The registry is
    not in it: matching is redone each run."""
    def digest(fp):  # the mtime too: a big file is hashed at its head and tail only
        return None if fp is None else {k: v for k, v in fp.items() if k != "path"}

    shaping = {"version": __version__, "code": code_digest(), "id_column": id_column,
               # the cached part files' columns: a new column is never missing from a reused part
               "columns": {"buildings": BUILDING_COLUMNS, "candidates": STORED_CANDIDATE_COLUMNS},
               "footprints": cfg.footprints.model_dump(mode="json", exclude={"path"}),
               "roof": cfg.roof.model_dump(mode="json"), "shade": cfg.shade.model_dump(mode="json"),
               "as_of_year": as_of_year, "system": cfg.system.model_dump(mode="json"),
               "climate": cfg.climate.model_dump(mode="json"), "economics": cfg.economics.model_dump(mode="json"),
               "irradiance": {"units": cfg.irradiance.units, "cell_deg": cfg.irradiance.weather_cell_deg},
               "ghi": digest(fingerprints["ghi"]), "weather": digest(fingerprints["weather"]),
               "parks": digest(fingerprints["parks"])}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()
