"""Maps of a run directory: read the run, build the maps, write and publish the HTML.

:func:`write_maps` writes ``maps/index.html`` (the city overview) and
``maps/park-<id>.html`` (one per park) inside a run directory; with a publish
folder it also copies them there under the same stable names, each file
replaced atomically, so a web server can serve one address that is always whole.
The map builders themselves are pure (:mod:`pvsurvey.maps`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import shapely

from ..io.datasets import dataset_schema, parquet_parts
from ..io.storage import is_file, open_raster
from ..locations import is_url, location
from ..io.vector import geoframe_from_arrow
from ..io.writers import copy_atomic, write_text_atomic
from ..errors import InputFileError
from ..columns import WATERFALL_COLUMNS
from ..config.schema import Economics, Maps, Targets
from ..model.targets import progress_metrics, progress_sums
from ..store.run_directory import BUILDINGS, CANDIDATES, DISTRICTS, MAP_INDEX, MAPS, PARKS, RunDirectory
from ..store.object_storage import publish_maps_to_url
from ..maps import (TOP_CANDIDATES, IrradianceGrid, MapOptions, asset_files, build_overview_map, build_park_map,
                    park_file_name, render)

log = logging.getLogger(__name__)

_BUILDING_COLUMNS = ("building_id", "park_id", "park_name", "district", "name", "owner", "usable_area_m2",
                     "capacity_kwp", "annual_yield_kwh", "specific_yield_kwh_per_kwp", "has_pv", "installed_kwp",
                     "pv_status")
# The park's waterfall in its panel: parks.csv's sums (absent from runs written before it)
_WATERFALL_SUMS = ("footprint_area_m2", *WATERFALL_COLUMNS, "usable_area_m2", "capacity_kwp")
# Irradiance window around a park: padding [°] and the largest image side [px].
_IRRADIANCE_PAD_DEG = 0.05
_IRRADIANCE_MAX_PX = 512


@dataclass
class RunData:
    """What the maps need from a run directory."""

    run_dir: Path
    config: dict
    name: str
    generated: str
    buildings: gpd.GeoDataFrame
    parks: gpd.GeoDataFrame
    districts: pd.DataFrame
    progress: dict | None
    candidates: gpd.GeoDataFrame | None


def _park_outlines(cfg: dict, lang: str) -> gpd.GeoDataFrame | None:
    """Park polygons from the config's parks file (WGS84), None when there is none or it is gone."""
    src = cfg.get("parks") or None
    if not src or not src.get("path"):
        return None
    path = Path(src["path"])
    if not path.exists():
        log.warning("%s: park outlines not found; park maps are framed by their buildings instead", path)
        return None
    from ..config.schema import ParkSource
    from ..io.parks import PARK_NAME_SOURCES, read_park_rows

    parks = read_park_rows(ParkSource.model_validate(src))  # the run's own reading: encoding, headers, columns:
    name_col = "name_en" if lang == "en" and "name_en" in parks else next(
        (c for c in PARK_NAME_SOURCES if c in parks.columns), None)
    if "park_id" not in parks or name_col is None:
        log.warning("%s: parks need park_id and name columns; outlines not drawn", path)
        return None
    out = gpd.GeoDataFrame({"park_id": parks["park_id"].astype("string"),
                            "outline_name": parks[name_col].astype("string")},
                           geometry=parks.geometry.values, crs="EPSG:4326")
    out = out[out.geometry.notna() & ~out.geometry.is_empty]
    return out.drop_duplicates("park_id").reset_index(drop=True)


# What the maps show of a run without progress.json (no new capacity: the registry's dates are unknown here).
_FALLBACK_KEYS = ("install_ratio_area_frac", "install_ratio_count_frac", "target_install_ratio", "installed_kwp",
                  "remaining_potential_kwp")


def _fallback_progress(buildings: pd.DataFrame, targets: dict) -> dict | None:
    """Installation ratios from ``has_pv`` when the run has no progress.json (city
    and parks), by the formulas that write progress.json (:mod:`pvsurvey.model.targets`)."""
    if "has_pv" not in buildings:
        return None

    def number(col: str) -> pd.Series:
        return (pd.to_numeric(buildings[col], errors="coerce").fillna(0.0) if col in buildings
                else pd.Series(0.0, index=buildings.index))

    frame = pd.DataFrame({"park_id": buildings["park_id"].astype("string").fillna(""), "city": "city",
                          "usable_area_m2": number("usable_area_m2"), "capacity_kwp": number("capacity_kwp"),
                          "annual_yield_kwh": number("annual_yield_kwh"),
                          "has_pv": buildings["has_pv"].astype("boolean").fillna(False).to_numpy(dtype=bool),
                          "installed_kwp": number("installed_kwp"), "new_kwp": 0.0, "pipeline_kwp": 0.0})
    target = _default_ratio_target({"targets": targets})
    park_targets = targets.get("park_install_ratio") or {}
    # the candidate threshold only feeds a figure not shown here
    city = progress_metrics(progress_sums(frame, "city", 0.0).reindex(["city"], fill_value=0), target, np.nan)
    parks = progress_sums(frame, "park_id", 0.0)
    parks = parks[parks.index != ""]
    parks = progress_metrics(parks, [float(park_targets.get(p, target)) for p in parks.index], np.nan)

    def metrics(row) -> dict:
        return {k: float(row[k]) for k in _FALLBACK_KEYS}

    return {"city": metrics(city.iloc[0]),
            "parks": [{"park_id": pid, **metrics(row)} for pid, row in parks.iterrows()], "districts": []}


def read_map_data(run_dir: str | Path, config=None, lang: str = "zh") -> RunData:
    """Read what the maps need from a run directory.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``pvsurvey run`` (finished: has ``_COMPLETE``),
        or, with ``config``, one being written (buildings.parquet and the tables present).
    config : SurveyConfig, optional
        The run's config; default: the one recorded in ``manifest.json``.
    lang : str
        Picks English park names (a ``name_en`` column of the parks file) for 'en'.

    Raises
    ------
    InputFileError
        Not a run directory, or an unfinished one.
    """
    run = RunDirectory(run_dir, finished=config is None)
    buildings_path = run.require(BUILDINGS, "give a run directory written by 'pvsurvey run'")
    cfg = run.config if config is None else _config_dict(config)
    finished = run.manifest.get("finished_at")
    when = dt.datetime.fromisoformat(finished) if finished else dt.datetime.now(dt.timezone.utc)
    generated = when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    available = set(dataset_schema(buildings_path).names)
    columns = [c for c in _BUILDING_COLUMNS if c in available]
    # only roofs inside parks are drawn: a city-wide run never loads its other buildings
    in_parks = pc.is_valid(pc.field("park_id")) if "park_id" in available else None
    buildings = run.buildings(columns, filters=in_parks)
    buildings["park_id"] = buildings["park_id"].astype("string").fillna("")

    progress = run.progress()
    if progress is None:
        progress = _fallback_progress(buildings, _default_targets(cfg))
    candidates = None
    if run.has(CANDIDATES):
        with run.reading(CANDIDATES) as path:  # a damaged part: one line naming it
            candidates = _read_candidates_to_draw(path)
        if candidates.crs is not None and not candidates.crs.equals("EPSG:4326"):
            candidates = candidates.to_crs("EPSG:4326")
        candidates["park_id"] = candidates["park_id"].astype("string").fillna("")

    parks = _park_table(run, buildings, cfg, progress, lang)
    districts = _district_table(run, parks, progress)
    name = str(run.manifest.get("name") or cfg.get("name") or run.path.name)
    return RunData(run.path, cfg, name, generated, buildings, parks, districts, progress, candidates)


def _read_candidates_to_draw(path: Path, top: int = 1000) -> gpd.GeoDataFrame:
    """Candidates in parks, and the largest ones anywhere (for the overview's
    markers): a city-wide list of millions never comes into memory whole."""
    parts = parquet_parts(path)
    schema = pq.read_schema(parts[0])
    dataset = ds.dataset([str(p) for p in parts], schema=schema, format="parquet")  # scanned on every core
    capacity = dataset.to_table(columns=["capacity_kwp"]).column(0).to_numpy()
    # the capacity of the top-th largest project: ties may add a few markers
    least = np.partition(capacity, len(capacity) - top)[len(capacity) - top] if len(capacity) > top else -np.inf
    table = dataset.to_table(filter=pc.field("park_id").is_valid() | (pc.field("capacity_kwp") >= least))
    return geoframe_from_arrow(table, schema)


def _park_table(run: RunDirectory, buildings: gpd.GeoDataFrame, cfg: dict, progress: dict | None,
                lang: str) -> gpd.GeoDataFrame:
    """One row per park: id, name, district, outline (or the box of its buildings), sums and progress."""
    table = run.table(PARKS)
    if not len(table):
        inside = buildings[buildings["park_id"] != ""]
        table = (pd.DataFrame(inside.drop(columns="geometry")).groupby("park_id", as_index=False)
                 .agg(park_name=("park_name", "first"), district=("district", "first"),
                      building_count=("building_id", "size"), usable_area_m2=("usable_area_m2", "sum"),
                      capacity_kwp=("capacity_kwp", "sum"), annual_yield_kwh=("annual_yield_kwh", "sum")))
    table["park_id"] = table["park_id"].astype("string")
    table = table[table["park_id"].notna() & (table["park_id"] != "")].drop_duplicates("park_id")
    table = table.reset_index(drop=True)
    if progress and progress.get("parks"):
        metrics = pd.DataFrame(progress["parks"]).drop(columns=["park_name", "district"], errors="ignore")
        metrics["park_id"] = metrics["park_id"].astype("string")
        keep = [c for c in metrics.columns if c == "park_id" or c not in table.columns]
        table = table.merge(metrics[keep], on="park_id", how="left")

    outlines = _park_outlines(cfg, lang)
    geometry = np.full(len(table), None, dtype=object)
    if outlines is not None:
        at = pd.Index(outlines["park_id"]).get_indexer(table["park_id"])
        geometry = np.where(at >= 0, outlines.geometry.values[np.maximum(at, 0)], None)
        names = outlines["outline_name"].to_numpy(dtype=object)[np.maximum(at, 0)]
        if lang == "en":
            table["park_name"] = np.where((at >= 0) & pd.notna(names), names, table["park_name"].astype(object))
    # parks without an outline: the box around their buildings
    missing = pd.isna(geometry)
    if missing.any() and len(buildings):
        b = buildings.geometry.bounds.assign(park_id=buildings["park_id"].to_numpy())
        box = b.groupby("park_id").agg(minx=("minx", "min"), miny=("miny", "min"), maxx=("maxx", "max"), maxy=("maxy", "max"))
        at = box.index.get_indexer(table["park_id"])
        found = missing & (at >= 0)
        rows = box.iloc[at[found]]
        geometry[found] = shapely.box(rows["minx"], rows["miny"], rows["maxx"], rows["maxy"])
    table["park_name"] = table["park_name"].astype("object").where(table["park_name"].notna(), table["park_id"])
    return gpd.GeoDataFrame(table, geometry=list(geometry), crs="EPSG:4326")


def _district_table(run: RunDirectory, parks: gpd.GeoDataFrame, progress: dict | None) -> pd.DataFrame:
    table = run.table(DISTRICTS)
    if not len(table) or "district" not in table:
        return pd.DataFrame()
    counts = parks.groupby("district").size() if "district" in parks and len(parks) else pd.Series(dtype=int)
    table["park_count"] = table["district"].map(counts).fillna(0).astype(int)
    if progress and progress.get("districts"):
        metrics = pd.DataFrame(progress["districts"])
        if "district" in metrics and "install_ratio_area_frac" in metrics:
            table = table.merge(metrics[["district", "install_ratio_area_frac"]], on="district", how="left")
    if "install_ratio_area_frac" not in table:
        table["install_ratio_area_frac"] = np.nan
    if "capacity_kwp" in table:
        table = table.sort_values("capacity_kwp", ascending=False)
    return table.reset_index(drop=True)


def read_irradiance_window(cfg: dict, bounds_deg, pad_deg: float = _IRRADIANCE_PAD_DEG,
                           max_px: int = _IRRADIANCE_MAX_PX) -> IrradianceGrid | None:
    """The GHI raster around ``bounds_deg`` (west, south, east, north) in WGS84 [kWh/m²/yr].

    Reads only that window (through a WGS84 warped view for rasters in other CRS),
    decimated to at most ``max_px`` a side. None when the raster is gone or the
    window holds no value.
    """
    irr = cfg.get("irradiance") or {}
    path = location(irr.get("ghi") or None)
    try:
        found = path is not None and is_file(path)
    except InputFileError as exc:  # object storage out of reach from where the maps are drawn
        log.warning("%s; maps drawn without the irradiance layer", exc)
        return None
    if not found:
        if path is not None:
            log.warning("%s: irradiance raster not found; maps drawn without the irradiance layer", path)
        return None
    import rasterio
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import from_bounds

    from ..model.weather_year import ghi_to_kwh_per_m2_yr  # (imports pvlib: only when there is a raster)

    west, south, east, north = (float(v) for v in bounds_deg)
    try:
        with open_raster(path) as src, WarpedVRT(src, crs="EPSG:4326") as vrt:
            res_x, res_y = vrt.res
            pad_x, pad_y = max(pad_deg, res_x), max(pad_deg, res_y)
            left, bottom, right, top = vrt.bounds
            west, east = max(west - pad_x, left), min(east + pad_x, right)
            south, north = max(south - pad_y, bottom), min(north + pad_y, top)
            if west >= east or south >= north:
                return None
            window = from_bounds(west, south, east, north, vrt.transform).round_offsets().round_lengths()
            # at least one pixel: rounding empties a sliver under half a pixel (a park beyond the edge, in the pad)
            window = rasterio.windows.Window(window.col_off, window.row_off, max(window.width, 1), max(window.height, 1))
            window = window.intersection(rasterio.windows.Window(0, 0, vrt.width, vrt.height))
            scale = max(1.0, max(window.width, window.height) / max_px)
            shape = (max(1, int(window.height / scale)), max(1, int(window.width / scale)))
            data = vrt.read(1, window=window, out_shape=shape, masked=True)
            w, s, e, n = rasterio.windows.bounds(window, vrt.transform)
    except rasterio.errors.RasterioError as exc:
        log.warning("%s: cannot read the irradiance raster (%s); maps drawn without it", path, exc)
        return None
    values = ghi_to_kwh_per_m2_yr(data.filled(np.nan).astype(float), irr.get("units", "kWh/m2/day"))
    if not np.isfinite(values).any():
        return None
    return IrradianceGrid(values, (w, s, e, n))


def _remove_stale_parks(folder: Path, keep: set[str]) -> None:
    for old in folder.glob("park-*.html"):
        if old.name not in keep:
            old.unlink(missing_ok=True)


def publish_maps(maps_dir: str | Path, publish_dir: str | Path, files: list[str] | None = None,
                 prune: bool = True) -> list[Path] | list[str]:
    """Copy a run's maps to a publish folder under the same names, each file replaced atomically.

    Offline assets (``lib/``) go first, then the park maps, the overview last, so
    that a page never links to a file not yet there.

    Parameters
    ----------
    maps_dir : path
        The run's ``maps/`` folder.
    publish_dir : path or str
        Folder a web server serves (created when missing), or an object-storage
        URL (``s3://bucket/maps``) served as a static site.
    files : list of str, optional
        HTML file names to publish (default: every ``*.html`` of ``maps_dir``).
    prune : bool
        Remove ``park-*.html`` files of parks no longer in the run.

    Returns
    -------
    list of Path or str
        The published HTML files (URLs when ``publish_dir`` is one).
    """
    maps_dir = Path(maps_dir)
    # hidden names are files being written (pvsurvey.io.writers.atomic_write), never pages
    names = files if files is not None else sorted(p.name for p in maps_dir.glob("*.html")
                                                   if not p.name.startswith("."))
    names = sorted(names, key=lambda n: n == MAP_INDEX)  # the overview last
    if is_url(publish_dir):
        return publish_maps_to_url(maps_dir, publish_dir, names, prune)
    publish_dir = Path(publish_dir)
    try:
        publish_dir.mkdir(parents=True, exist_ok=True)
        for asset in sorted((maps_dir / "lib").rglob("*")) if (maps_dir / "lib").is_dir() else []:
            if asset.is_file():
                copy_atomic(asset, publish_dir / asset.relative_to(maps_dir))
        published = []
        for name in names:
            copy_atomic(maps_dir / name, publish_dir / name)
            published.append(publish_dir / name)
        if prune:
            _remove_stale_parks(publish_dir, {p.name for p in maps_dir.glob("park-*.html")})
    except OSError as exc:
        raise InputFileError(f"{publish_dir}: cannot publish the maps ({exc.strerror or exc}); "
                             "check that the folder is writable (maps.publish_dir in the config)") from None
    return published


def _default_targets(cfg: dict) -> dict:
    """The default plan's targets of a run's recorded config (its first plan, or
    the 'targets' of a config written before plans), flat; {} when it has none."""
    plans = cfg.get("plans") or []
    return dict(plans[0].get("targets") or {}) if plans else dict(cfg.get("targets") or {})


def _default_ratio_target(cfg: dict) -> float:
    """The default plan's ratio target of a run's recorded config (the schema's default when it has none)."""
    return float(_default_targets(cfg).get("install_ratio") or Targets.model_fields["install_ratio"].default)


def _config_dict(config) -> dict:
    return config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)


def _setting(cfg: dict, section: str, schema, key: str):
    """A run's setting: the value its config recorded, else the schema's default
    (policy numbers live in :mod:`pvsurvey.config.schema` only)."""
    value = (cfg.get(section) or {}).get(key)
    return schema.model_fields[key].default if value is None else value


def map_options(maps_config=None, lang: str | None = None, tiles: str | None = None, offline: bool | None = None,
                tianditu_key: str | None = None) -> MapOptions:
    """Map options from a config's ``maps`` section, overridden by the arguments given.

    Call it before a long run to fail early on a bad setting (e.g. Tianditu tiles
    without a key): the key falls back to the environment variable ``TIANDITU_KEY``.

    Parameters
    ----------
    maps_config : pvsurvey.config.schema.Maps or dict, optional
        The config's ``maps`` section.

    Raises
    ------
    ConfigError
        Unknown language or base map, or Tianditu tiles without a key.
    """
    cfg = {"maps": _config_dict(maps_config) if maps_config is not None else {}}
    return MapOptions(
        lang=lang or _setting(cfg, "maps", Maps, "lang"), tiles=tiles or _setting(cfg, "maps", Maps, "tiles"),
        offline=bool(_setting(cfg, "maps", Maps, "offline") if offline is None else offline),
        tianditu_key=tianditu_key or cfg["maps"].get("tianditu_key") or os.environ.get("TIANDITU_KEY"))


def write_maps(run_dir: str | Path, park: str | None = None, lang: str | None = None, tiles: str | None = None,
               offline: bool | None = None, publish_dir: str | Path | None = None, tianditu_key: str | None = None,
               config=None, top_candidates: int = TOP_CANDIDATES) -> list[Path]:
    """Write the maps of a run: ``maps/index.html`` and ``maps/park-<id>.html``.

    Parameters
    ----------
    run_dir : path
        A finished run directory, or (with ``config``) one being written.
    park : str, optional
        Only this park's map (the overview is left as it is).
    lang, tiles, offline, tianditu_key : optional
        Override the run config's ``maps`` section (defaults: zh, osm, online; the
        Tianditu key falls back to the environment variable ``TIANDITU_KEY``).
    publish_dir : path, optional
        Also copy the maps there under the same names (see :func:`publish_maps`).
    config : SurveyConfig, optional
        The run's config, for a run directory without ``manifest.json`` yet.
    top_candidates : int
        Largest candidate projects drawn on the overview.

    Returns
    -------
    list of Path
        The HTML files written inside the run directory (overview last).

    Raises
    ------
    InputFileError, ConfigError
        Not a finished run, an unknown park, no Tianditu key, an unwritable folder.
    """
    run_dir = Path(run_dir)
    cfg = _config_dict(config) if config is not None else RunDirectory(run_dir).config
    options = map_options(cfg.get("maps") or {}, lang=lang, tiles=tiles, offline=offline, tianditu_key=tianditu_key)
    run = read_map_data(run_dir, config, options.lang)
    min_kwp = float(_setting(run.config, "economics", Economics, "min_candidate_kwp"))

    parks = run.parks
    if park is not None:
        parks = parks[parks["park_id"] == str(park)]
        if not len(parks):
            known = ", ".join(run.parks["park_id"].head(12))
            raise InputFileError(f"{run_dir}: no park '{park}' in this run; use one of the park_id values of "
                                 f"parks.csv ({known}{', …' if len(run.parks) > 12 else ''})")

    maps_dir = run_dir / MAPS
    try:
        maps_dir.mkdir(exist_ok=True)
        if options.offline:
            for src, rel in asset_files():
                copy_atomic(src, maps_dir / rel)
    except OSError as exc:
        raise InputFileError(f"{maps_dir}: cannot write the maps ({exc.strerror or exc})") from None

    building_groups = run.buildings.groupby("park_id").indices
    candidate_groups = run.candidates.groupby("park_id").indices if run.candidates is not None else {}
    park_metrics = {str(p.get("park_id")): p for p in (run.progress or {}).get("parks", [])}
    plans = (run.progress or {}).get("plans") or []  # a run written before plans: the top-level figures only
    plan_parks = [{str(p.get("park_id")): p for p in plan.get("parks", [])} for plan in plans]
    rule_set = str((run.config.get("roof") or {}).get("rule_set") or "")
    written = []
    for row in parks.itertuples(index=False):
        pid = str(row.park_id)
        idx = building_groups.get(pid, np.array([], dtype=int))
        geom = row.geometry if row.geometry is not None and not shapely.is_empty(row.geometry) else None
        if not len(idx) and geom is None:
            log.warning("park %s has neither an outline nor buildings; no map", pid)
            continue
        pb = run.buildings.iloc[idx]
        bounds = shapely.total_bounds(np.concatenate([pb.geometry.values, [geom] if geom is not None else []]))
        cand = None
        if run.candidates is not None:
            cand = run.candidates.iloc[candidate_groups.get(pid, np.array([], dtype=int))]
        m = build_park_map({"park_id": pid, "park_name": row.park_name, "district": getattr(row, "district", ""),
                            "geometry": geom}, pb, options, candidates=cand,
                           irradiance=read_irradiance_window(run.config, bounds), progress=park_metrics.get(pid),
                           plans=[(plan, parks_of[pid]) for plan, parks_of in zip(plans, plan_parks) if pid in parks_of],
                           min_candidate_kwp=min_kwp, overview_href=MAP_INDEX, survey=run.name, generated=run.generated,
                           waterfall={c: getattr(row, c, None) for c in _WATERFALL_SUMS}, rule_set=rule_set)
        path = maps_dir / park_file_name(pid)
        _write_page(path, render(m, options))
        written.append(path)

    if park is None:
        _remove_stale_parks(maps_dir, {p.name for p in written})
        city = (run.progress or {}).get("city")
        target = float((city or {}).get("target_install_ratio") or _default_ratio_target(run.config))
        b = run.buildings
        totals = {"building_count": len(b), **{c: float(pd.to_numeric(b[c], errors="coerce").sum())
                                                for c in ("usable_area_m2", "capacity_kwp", "annual_yield_kwh")}}
        m = build_overview_map(run.parks, options, city=city, totals=totals, districts=run.districts,
                               candidates=_overview_candidates(run, min_kwp), target_install_ratio=target,
                               survey=run.name, generated=run.generated, top_candidates=top_candidates,
                               plans=[(plan, plan.get("total")) for plan in plans],
                               colour_plan=((plans[0].get("name") or {}).get(options.lang, "") if plans else ""))
        path = maps_dir / MAP_INDEX
        _write_page(path, render(m, options))
        written.append(path)

    if publish_dir is not None:
        publish_maps(maps_dir, publish_dir, [p.name for p in written], prune=park is None)
    log.info("maps: %d page(s) in %s%s", len(written), maps_dir, f", published to {publish_dir}" if publish_dir else "")
    return written


def _write_page(path: Path, page: str) -> None:
    try:
        write_text_atomic(path, page)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot write the map ({exc.strerror or exc})") from None


def _overview_candidates(run: RunData, min_kwp: float) -> gpd.GeoDataFrame | None:
    """Open candidate projects (not yet connected); from the buildings when the run has no candidates.parquet."""
    if run.candidates is not None:
        cand = run.candidates
        if "status" in cand:
            cand = cand[cand["status"].astype("string").fillna("") != "connected"]
        return cand
    b = run.buildings
    capacity = pd.to_numeric(b["capacity_kwp"], errors="coerce").fillna(0.0)
    has_pv = (b["has_pv"].astype("boolean").fillna(False) if "has_pv" in b
              else pd.Series(False, index=b.index))
    chosen = b[(capacity >= min_kwp) & ~has_pv]
    return chosen.rename(columns={"building_id": "project_id"})


__all__ = ["write_maps", "publish_maps", "map_options", "read_map_data", "read_irradiance_window", "RunData"]
