"""Vector readers: footprints, parks and registries from any supported format,
read whole or in row partitions, with their CRS made explicit.

Formats: GeoParquet, GeoPackage, GeoJSON, newline-delimited GeoJSON (Microsoft
Global ML Building Footprints), Shapefile, FlatGeobuf, CSV with a WKT geometry
column (Google Open Buildings) and OSM ``.pbf`` (building polygons).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer

from ..columns import ID_SOURCES
from ..coords import gcj02_to_wgs84, transform_geometries
from ..errors import CRSError, InputFileError
from ..model.footprints import GEOMETRY_PROBLEM, MALFORMED_ROW_PROBLEM
from ..locations import Location, is_url, location, name_of, suffix_of
from .crs import declared_crs as declared_crs_of, is_gcj02
from .csv_rows import file_text, read_rows_setting_aside_malformed, refuse_unclosed_quote
from .encoding import scan_text, shapefile_encoding, text_file_encoding
from .fields import FOOTPRINT_ID_HEADERS, ColumnPlan, header_key
from .geometries import decode_geometries
from .row_groups import KEPT
from .storage import identity_digest, is_file, local_copy, parquet_file, parquet_files

log = logging.getLogger(__name__)

_FORMATS = {
    ".parquet": "parquet", ".geoparquet": "parquet",
    ".gpkg": "ogr", ".geojson": "ogr", ".json": "ogr", ".shp": "ogr", ".fgb": "ogr",
    ".geojsonl": "ogr", ".geojsons": "ogr", ".geojsonseq": "ogr", ".ndjson": "ogr", ".jsonl": "ogr",
    ".csv": "csv", ".pbf": "osm",
}
CSV_GEOMETRY_COLUMNS = ("geometry", "wkt", "WKT", "geom")
# OGR formats that are text with attribute strings in the file's own encoding
# (GeoPackage, FlatGeobuf and GeoParquet are UTF-8 by definition)
_TEXT_OGR = (".geojson", ".json", ".geojsonl", ".geojsons", ".geojsonseq", ".ndjson", ".jsonl")
WGS84 = CRS.from_epsg(4326)


def vector_format(path: Location) -> str:
    """Reader kind for a path or URL: 'parquet', 'ogr', 'csv' or 'osm'."""
    suffix = suffix_of(path)
    if suffix == ".gz" and name_of(path).lower().endswith(".csv.gz"):
        return "csv"
    if suffix not in _FORMATS:
        raise InputFileError(f"{path}: unsupported file type '{suffix}'; use one of "
                             f"{', '.join(sorted(_FORMATS))}")
    return _FORMATS[suffix]


def _check_exists(path: Location, what: str):
    if not is_file(path):
        raise InputFileError(f"{what} file not found: {path} (check the path in the config; "
                             "relative paths are relative to the config file)")


@dataclass(frozen=True)
class Partition:
    """A slice of a vector file that one task reads."""

    path: Location
    kind: str
    index: int
    start: int  # first source row
    stop: int  # one past the last source row
    layer: str | None = None
    row_groups: tuple = field(default=())
    fingerprint: str | None = None  # hash of the partition's stored bytes, where cheap to get
    file_start: int = 0  # source row at which its file starts (a folder's files count on in name order)
    bbox: tuple | None = None  # the file's extent in its own CRS, where its metadata gives one
    encoding: str | None = None  # of the attribute text (CSV, DBF, GeoJSON); None: the format's own
    wkt_column: str | None = None  # CSV: the column of WKT geometries, where the config names it
    columns: tuple = ()  # (file's name, pvsurvey's name) pairs the reader renames (pvsurvey.io.fields)
    # the input file the rows come from, where ``path`` is a rewritten copy of it
    # (:func:`write_partitioned_geoparquet`): results and cache keys name it, rows numbered as there
    source: Location | None = None

    @property
    def named(self) -> Location:
        """The file that rejected rows, cache keys and messages name (``source``, else ``path``)."""
        return self.source if self.source is not None else self.path

    @property
    def ogr_encoding(self) -> str | None:
        """The encoding pyogrio decodes attributes with (GDAL strips a UTF-8 BOM itself)."""
        return "utf-8" if self.encoding == "utf-8-sig" else self.encoding


def _parquet_crs(meta) -> CRS | None:
    geo = json.loads(meta.metadata[b"geo"]) if meta.metadata and b"geo" in meta.metadata else None
    if geo is None:
        return None
    col = geo["columns"][geo.get("primary_column", "geometry")]
    if "crs" not in col:  # GeoParquet: an absent crs means OGC:CRS84
        return WGS84
    return _crs_from_projjson(json.dumps(col["crs"], sort_keys=True)) if col["crs"] is not None else None


@functools.lru_cache(maxsize=64)
def _crs_from_projjson(text: str) -> CRS:
    """A CRS from PROJJSON text, kept: PROJ takes 40-80 ms to build one (looking up
    its database), and a run reads the same file's metadata once per partition."""
    return CRS.from_user_input(json.loads(text))


def geoframe_from_arrow(table, schema, problems: bool = False) -> gpd.GeoDataFrame:
    """A GeoDataFrame from an Arrow table read out of a GeoParquet file whose
    schema (with its 'geo' metadata) is ``schema``; unparsable WKB becomes None
    (with GEOS's message in a ``GEOMETRY_PROBLEM`` column when ``problems``)."""
    geo = json.loads(schema.metadata[b"geo"])
    geom_col = geo.get("primary_column", "geometry")
    wkb = table.column(geom_col).to_numpy(zero_copy_only=False)
    if problems:
        geoms, messages = decode_geometries(wkb)
    else:
        geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    gdf = gpd.GeoDataFrame(table.drop_columns([geom_col]).to_pandas(), geometry=geoms, crs=_parquet_crs(schema))
    if problems:
        gdf[GEOMETRY_PROBLEM] = messages
    return gdf


def _row_group_digest(fh, meta, groups) -> str:
    """SHA-256 of the compressed column chunks of some row groups: the same rows
    give the same digest wherever they sit in the file, without decoding."""
    digest = hashlib.sha256()
    for i in groups:
        group = meta.row_group(i)
        for c in range(group.num_columns):
            chunk = group.column(c)
            start = chunk.dictionary_page_offset if chunk.has_dictionary_page and chunk.dictionary_page_offset else \
                chunk.data_page_offset
            fh.seek(start)
            digest.update(fh.read(chunk.total_compressed_size))
    return digest.hexdigest()


def _plan_parquet(path: Location, rows_per_partition: int, what: str,
                  allow_empty: bool = False) -> tuple[list[Partition], object]:
    """Partitions of one GeoParquet file along its row groups (numbered from 0,
    rows from 0); also the file's Arrow schema."""
    parquet = parquet_file(path)
    meta = parquet.metadata
    if b"geo" not in (meta.metadata or {}):
        raise InputFileError(f"{path}: Parquet file without GeoParquet 'geo' metadata; "
                             "write it with geopandas.to_parquet or GDAL")
    if meta.num_rows == 0 and not allow_empty:
        raise InputFileError(f"{path}: the {what} layer is empty")
    geo = json.loads(meta.metadata[b"geo"])
    bbox = geo["columns"][geo.get("primary_column", "geometry")].get("bbox")
    bbox = tuple(bbox[:4]) if bbox is not None and len(bbox) >= 4 else None
    parts, groups, start, rows = [], [], 0, 0
    # on object storage the object's identity (ETag) stands in for its bytes: hashing
    # them would download the whole file to the client every night
    stored = identity_digest(path) if is_url(path) else None
    with (nullcontext() if is_url(path) else open(path, "rb")) as fh:
        for i in range(meta.num_row_groups):
            groups.append(i)
            rows += meta.row_group(i).num_rows
            if rows >= rows_per_partition or i == meta.num_row_groups - 1:
                digest = _row_group_digest(fh, meta, groups) if fh is not None else \
                    hashlib.sha256(f"{stored}|{groups}".encode()).hexdigest()
                parts.append(Partition(path, "parquet", len(parts), start, start + rows, None,
                                       tuple(groups), digest, bbox=bbox))
                start, rows, groups = start + rows, 0, []
    return parts, parquet.schema_arrow


def _plan_parquet_folder(path: Location, files: list, rows_per_partition: int, what: str) -> list[Partition]:
    """Partitions of every file of a GeoParquet folder, rows numbered across the files in name order."""
    if not files:
        raise InputFileError(f"{path}: a folder without GeoParquet files (*.parquet) for the {what}")
    def plan(file):
        try:
            return _plan_parquet(file, rows_per_partition, what, allow_empty=True)
        except InputFileError:
            raise
        except Exception as exc:
            raise InputFileError(f"{file}: cannot read {what} ({exc})") from None

    # footers read concurrently: on object storage each costs a round trip or two
    with ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:
        planned = list(pool.map(plan, files))
    parts, first_crs = [], None
    for i, (file, (more, schema)) in enumerate(zip(files, planned)):
        crs = _parquet_crs(schema)
        if i == 0:
            first_crs = crs
        elif (crs is None) != (first_crs is None) or (crs is not None and not crs.equals(first_crs)):
            raise InputFileError(f"{file}: its coordinate system ({crs.name if crs else 'none'}) differs from "
                                 f"{files[0]}'s ({first_crs.name if first_crs else 'none'}); the files of a "
                                 f"{what} folder must share one")
        file_start = parts[-1].stop if parts else 0
        parts += [dataclasses.replace(p, index=len(parts) + k, start=p.start + file_start, stop=p.stop + file_start,
                                      file_start=file_start)
                  for k, p in enumerate(q for q in more if q.stop > q.start)]
    if not parts:
        raise InputFileError(f"{path}: the {what} files are all empty")
    return parts


def _ogr_encoding(path: Location, declared: str | None, what: str) -> str | None:
    """The encoding of an OGR file's attributes: declared, else detected for the text
    formats (a Shapefile's DBF without .cpg, GeoJSON); None leaves it to GDAL."""
    suffix = suffix_of(path)
    if suffix == ".shp":
        shp = Path(path)
        if not any(shp.with_suffix(s).is_file() for s in (".dbf", ".DBF")):  # GDAL reads the outlines alone
            raise InputFileError(f"{path}: no {shp.with_suffix('.dbf').name} beside it, so none of the {what}' "
                                 "attributes (ids, heights, names) can be read; copy the Shapefile's .dbf (and .prj, "
                                 ".cpg) with its .shp")
        return shapefile_encoding(shp, declared, what)
    if suffix in _TEXT_OGR:
        return text_file_encoding(Path(path), declared, what)
    return declared


def plan_partitions(path: Location, rows_per_partition: int, layer: str | None = None,
                    what: str = "footprints", encoding: str | None = None,
                    wkt_column: str | None = None) -> list[Partition]:
    """Split a vector file — or a folder of GeoParquet files — into row
    partitions, reading only metadata.

    GeoParquet splits along row groups (in a folder: each file's, rows numbered
    across the files in name order), GDAL formats by feature offset, CSV by row
    offset; OSM ``.pbf`` is read in one partition (GDAL reads it in one pass).
    On object storage (a URL) only GeoParquet is split: its row groups are read
    with ranged requests, where every other format would be fetched whole by
    every task.

    ``encoding`` is the input's declared text encoding; without it, text
    formats are checked for UTF-8 or GBK/GB18030 (:mod:`pvsurvey.io.encoding`).
    """
    path = location(path)
    files = parquet_files(path)
    if files is not None:
        return _plan_parquet_folder(path, files, rows_per_partition, what)
    _check_exists(path, what)
    kind = vector_format(path)
    if is_url(path) and kind != "parquet":
        raise InputFileError(f"{path}: {what} on object storage must be GeoParquet (read by row group with ranged "
                             f"requests); convert it, e.g. 'ogr2ogr -f Parquet {PurePosixPath(name_of(path)).stem}"
                             f".parquet {name_of(path)}', or give a local or shared path")
    try:
        if kind == "parquet":
            return _plan_parquet(path, rows_per_partition, what)[0]
        if kind == "osm":
            return [Partition(path, kind, 0, 0, -1, "multipolygons")]
        if kind == "csv":
            scan = scan_text(Path(path), encoding, what)  # the encoding and the line count in one pass
            encoding, total = scan.encoding, scan.lines - 1
        else:
            encoding = _ogr_encoding(path, encoding, what)
            layer = layer if layer is not None else _default_layer(path, what)
            info = pyogrio.read_info(path, layer=layer, force_feature_count=True,
                                     encoding="utf-8" if encoding == "utf-8-sig" else encoding)
            total = int(info["features"])
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read {what} ({exc})") from None
    if total <= 0:
        raise InputFileError(f"{path}: the {what} layer is empty")
    bounds = range(0, total, rows_per_partition)
    return [Partition(path, kind, i, s, min(s + rows_per_partition, total), layer, encoding=encoding,
                      wkt_column=wkt_column if kind == "csv" else None)
            for i, s in enumerate(bounds)]


def _default_layer(path, what: str) -> str | None:
    """The layer to read where the config names none: the file's only layer, or its
    only polygon layer (logged); a file of several polygon layers is refused in one
    line naming them (GDAL would read the first and warn)."""
    layers = pyogrio.list_layers(path)
    if len(layers) <= 1:
        return None
    polygons = [str(name) for name, kind in layers if "polygon" in str(kind).lower()]
    if len(polygons) == 1:
        log.info("%s: reading layer '%s', its only polygon layer of %d (name another with 'layer:')", path,
                 polygons[0], len(layers))
        return polygons[0]
    names = ", ".join(f"'{name}' ({kind})" for name, kind in layers)
    raise InputFileError(f"{path}: {len(layers)} layers ({names}); name the one to read in the config, e.g. "
                         f"'{what}: {{path: {name_of(path)}, layer: {polygons[0] if polygons else layers[0][0]}}}'")


# a GeoParquet file whose largest row group holds more than this many partitions' rows is
# rewritten: pyarrow cannot read part of a row group without decoding all of it
OVERSIZED_ROW_GROUP = 1.5


def needs_rewriting(path: Location, rows_per_partition: int) -> bool:
    """Whether a footprint file splits into partitions of about ``rows_per_partition``
    only once rewritten (:func:`write_partitioned_geoparquet`): an OSM ``.pbf``
    (GDAL reads it in one pass), or a local GeoParquet file with a row group of
    more than 1.5 × that many rows (geopandas writes a million rows in one).
    Reads only metadata; folders and object storage are planned as they are."""
    if is_url(path) or not Path(path).is_file():
        return False
    try:
        kind = vector_format(path)
        if kind == "osm":
            return True
        if kind != "parquet":
            return False
        meta = parquet_file(path).metadata
        biggest = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)), default=0)
    except Exception:  # unreadable: plan_partitions says so in one line
        return False
    return biggest > OVERSIZED_ROW_GROUP * rows_per_partition


def write_partitioned_geoparquet(path: Location, folder: Path, rows_per_partition: int,
                                 what: str = "footprints") -> Path:
    """Rewrite a footprint file as a folder of GeoParquet files of ``rows_per_partition``
    rows each (``part-00000.parquet`` …, one row group each, LZ4), streaming:
    about one partition's rows in memory at a time.

    GeoParquet keeps its schema and 'geo' metadata; an OSM ``.pbf``'s building
    polygons are stored with the attributes :func:`read_partition` gives them,
    their WKB as GDAL wrote it (rows GEOS refuses are told apart when read). The
    folder appears in one rename; one already there is kept.

    Raises
    ------
    InputFileError
        The file cannot be read, or holds no rows.
    """
    import uuid

    import pyarrow.parquet as pq

    folder = Path(folder)
    if folder.is_dir():
        return folder
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    written = 0
    try:
        for table in _batches(path, rows_per_partition):
            if table.num_rows:
                pq.write_table(table, tmp / f"part-{written:05d}.parquet", row_group_size=table.num_rows,
                               compression="lz4")
                written += 1
        if not written:
            raise InputFileError(f"{path}: the {what} layer is empty")
        try:
            tmp.rename(folder)
        except OSError:  # another run wrote it first
            pass
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read {what} ({exc})") from None
    finally:
        if tmp.exists():
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _batches(path: Location, rows: int):
    """Tables of ``rows`` rows of a GeoParquet file or an OSM extract's buildings, with 'geo' metadata."""
    import pyarrow as pa

    if vector_format(path) == "parquet":
        parquet = parquet_file(path)
        schema = parquet.schema_arrow
        for batch in parquet.iter_batches(batch_size=rows):
            yield pa.Table.from_batches([batch], schema=schema)
        return
    from pyogrio.raw import open_arrow

    geo = json.dumps({"version": "1.0.0", "primary_column": "geometry",  # no 'crs': OGC:CRS84, as OSM is
                      "columns": {"geometry": {"encoding": "WKB", "geometry_types": []}}}).encode()
    with open_arrow(str(path), layer="multipolygons", where="building IS NOT NULL", batch_size=rows,
                    use_pyarrow=True) as (meta, reader):
        geom_col = meta.get("geometry_name") or "wkb_geometry"
        for batch in reader:
            frame = batch.drop_columns([geom_col]).to_pandas()
            attrs = pd.DataFrame(_osm_attributes(frame))
            table = pa.Table.from_pandas(attrs, preserve_index=False)
            table = table.append_column("geometry", batch.column(geom_col).cast(pa.binary()))
            yield table.replace_schema_metadata({**(table.schema.metadata or {}), b"geo": geo})


def plan_rewritten(folder: Path, source: Location, rows_per_partition: int, what: str = "footprints"
                   ) -> list[Partition]:
    """Partitions reading a folder written by :func:`write_partitioned_geoparquet`
    and naming ``source``, rows numbered as there."""
    files = parquet_files(folder) or []
    parts = _plan_parquet_folder(folder, files, rows_per_partition, what)
    return [dataclasses.replace(p, file_start=0, source=source) for p in parts]


def read_partition(part: Partition, declared_crs: str | None = None, rows=None,
                   keep: bool = False) -> gpd.GeoDataFrame:
    """Read one partition as a GeoDataFrame in WGS84 lon/lat with a ``source_row``
    column; geometries that GEOS cannot build come back as None with GEOS's
    message in a ``GEOMETRY_PROBLEM`` column, so that one bad row never costs
    the partition (:mod:`pvsurvey.io.geometries`). ``rows`` (positions in the
    partition) reads only those: a GeoParquet partition decodes no other geometry.
    ``keep``: a local GeoParquet partition's row groups are kept decoded in this
    process (:mod:`pvsurvey.io.row_groups`) for the tasks that read them again.

    Raises
    ------
    CRSError
        When neither the file nor the config gives a coordinate system.
    """
    path = part.path
    try:
        if part.kind == "parquet":
            def read():
                parquet = parquet_file(path)
                covering = _bbox_covering(parquet.schema_arrow)  # the outlines' boxes: not read (the geometry has them)
                names = parquet.schema_arrow.names
                return parquet.schema_arrow, parquet.read_row_groups(
                    list(part.row_groups), columns=None if covering is None else [c for c in names if c != covering[0][0]])

            schema, table = KEPT.read(path, part.row_groups, read) if keep and not is_url(path) else read()
            gdf = geoframe_from_arrow(table if rows is None else table.take(rows), schema, problems=True)
        elif part.kind == "osm":
            gdf = _osm_attributes(_read_ogr(path, "multipolygons", None, where="building IS NOT NULL"))
        elif part.kind == "csv":
            gdf = _read_csv_wkt(path, part.start, part.stop - part.start, part.encoding, part.wkt_column)
        else:
            gdf = _read_ogr(path, part.layer, part.ogr_encoding, part.start, part.stop - part.start)
    except (InputFileError, CRSError):
        raise
    except Exception as exc:
        rows = f"rows {part.start}–{part.stop}" if part.stop >= 0 else "it"
        # one line: pyarrow's and GDAL's messages may span several
        raise InputFileError(f"{part.named}: cannot read {rows}: {' '.join(str(exc).split())}") from None
    start = part.start if part.start >= 0 else 0
    if rows is not None and part.kind != "parquet":
        gdf = gdf.iloc[rows]
    gdf = ColumnPlan(dict(part.columns)).apply(gdf.reset_index(drop=True))
    gdf["source_row"] = start + (np.arange(len(gdf), dtype=np.int64) if rows is None else np.asarray(rows, np.int64))
    return to_wgs84(gdf, declared_crs, part.named)


def _read_ogr(path, layer: str | None, encoding: str | None, skip: int = 0, count: int | None = None,
              where: str | None = None) -> gpd.GeoDataFrame:
    """A GDAL layer (or a slice of it) through pyogrio, its WKB decoded row by row
    (pyogrio's own decoding raises on the first geometry GEOS refuses)."""
    from pyogrio.raw import read

    meta, _, wkb, fields = read(str(path), layer=layer, encoding=encoding, skip_features=skip,
                                max_features=count, where=where)
    n = len(fields[0]) if len(fields) else (0 if wkb is None else len(wkb))
    frame = pd.DataFrame({name: values for name, values in zip(meta["fields"], fields)}, index=pd.RangeIndex(n))
    geoms, problems = decode_geometries(np.full(n, None, dtype=object) if wkb is None else wkb)
    gdf = gpd.GeoDataFrame(frame, geometry=geoms, crs=meta["crs"])
    gdf[GEOMETRY_PROBLEM] = problems
    return gdf


def to_wgs84(gdf: gpd.GeoDataFrame, declared_crs: str | None, path: Location) -> gpd.GeoDataFrame:
    """Give a frame its declared or stored CRS, then reproject it to WGS84.

    ``declared_crs`` is any ``crs:`` value (:mod:`pvsurvey.io.crs`); GCJ-02
    input is shifted to WGS84 vertex by vertex.
    """
    if declared_crs is not None:
        gdf = gdf.set_crs(declared_crs_of(declared_crs, path), allow_override=True)
    elif gdf.crs is None:
        raise CRSError(f"{path}: no coordinate reference system in the file; declare it in the config, "
                       "e.g. 'crs: wgs84' under this input (or gcj02, cgcs2000, EPSG:<code>, a PROJ string, WKT "
                       "or a .prj file)")
    if gdf.crs.equals(WGS84, ignore_axis_order=True):  # OGC:CRS84 is EPSG:4326 in lon/lat order
        gdf = gdf.set_crs(WGS84, allow_override=True)
    else:
        gdf = gdf.to_crs(WGS84)
    if is_gcj02(declared_crs):
        gdf = gdf.set_geometry(transform_geometries(gdf.geometry.values, gcj02_to_wgs84), crs=WGS84)
    return gdf


def _read_csv_wkt(path: Path, start: int, nrows: int, encoding: str | None = None,
                  wkt_column: str | None = None) -> gpd.GeoDataFrame:
    opts = dict(nrows=nrows, dtype_backend="numpy_nullable", encoding=encoding or "utf-8")
    malformed = None
    try:
        df = pd.read_csv(path, skiprows=range(1, start + 1), **opts) if start else pd.read_csv(path, **opts)
    except pd.errors.ParserError as exc:  # a row with more fields than the header (or a quote never closed)
        text = file_text(path, opts.pop("encoding"))
        refuse_unclosed_quote(path, text, str(exc))
        opts.pop("nrows")
        df, malformed, fields = read_rows_setting_aside_malformed(text, opts, start, nrows)
    names = (wkt_column,) if wkt_column else CSV_GEOMETRY_COLUMNS
    geom_col = next((c for c in names if c in df.columns), None)
    if geom_col is None:
        raise InputFileError(f"{path}: CSV without a WKT geometry column (expected "
                             f"{'the configured ' + repr(wkt_column) if wkt_column else 'one of ' + ', '.join(names)}"
                             "; name it in the config with 'columns: {geometry: <its header>}')")
    wkt = df.pop(geom_col).astype(object).where(lambda s: s.notna(), None).to_numpy()
    geoms, problems = decode_geometries(wkt, shapely.from_wkt)
    if malformed is not None and malformed.any():  # set aside as rows without a geometry, saying why
        problems = np.asarray(problems, dtype=object)
        problems[malformed] = [f"{n} {MALFORMED_ROW_PROBLEM} {len(df.columns) + 1}" for n in fields]
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=None)
    gdf[GEOMETRY_PROBLEM] = problems
    return gdf


_OSM_TAGS = {"building:levels": "levels", "roof:shape": "roof_shape", "roof:material": "roof_material",
             "roof:angle": "roof_angle", "height": "height", "operator": "owner"}


def _osm_attributes(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep OSM ids ('w123' ways, 'r45' relations) and the roof tags hidden in other_tags."""
    way = gdf.get("osm_way_id")
    rel = gdf.get("osm_id")
    ids = pd.Series(pd.NA, index=gdf.index, dtype="string")
    if rel is not None:
        ids = ids.mask(rel.notna(), "r" + rel.astype("string"))
    if way is not None:
        ids = ids.mask(way.notna(), "w" + way.astype("string"))
    out = gdf[["name", "building"]].copy() if "name" in gdf else gdf[["building"]].copy()
    out["osm_id"] = ids
    tags = gdf["other_tags"].astype("string") if "other_tags" in gdf else pd.Series(pd.NA, index=gdf.index, dtype="string")
    for tag, col in _OSM_TAGS.items():
        out[col] = tags.str.extract(rf'"{tag}"=>"([^"]*)"', expand=False)
    if GEOMETRY_PROBLEM in gdf:
        out[GEOMETRY_PROBLEM] = gdf[GEOMETRY_PROBLEM].to_numpy()
    if not isinstance(gdf, gpd.GeoDataFrame):  # attributes only (write_partitioned_geoparquet)
        return out
    return gpd.GeoDataFrame(out, geometry=gdf.geometry.values, crs=gdf.crs)


def resolve_id_column(columns, configured: str | None = None) -> str | None:
    """The column holding the source's own ids: the configured one, else the first
    known name (building_id, id, osm_id …, then Chinese ones such as 建筑编号)."""
    if configured is not None:
        return configured if configured in columns else None
    found = next((c for c in ID_SOURCES if c in columns), None)
    return found or next((c for c in columns if header_key(c) in FOOTPRINT_ID_HEADERS), None)


def source_columns(part: Partition) -> list[str]:
    """Attribute column names of a vector file, from its metadata or header."""
    if part.kind == "parquet":
        return list(parquet_file(part.path).schema_arrow.names)
    if part.kind == "csv":
        return list(pd.read_csv(part.path, nrows=0, encoding=part.encoding or "utf-8").columns)
    if part.kind == "osm":
        return ["osm_id"]
    return list(pyogrio.read_info(part.path, layer=part.layer, encoding=part.ogr_encoding)["fields"])


def duplicate_id_rows(parts: list[Partition], id_column: str) -> np.ndarray:
    """Source rows whose id was already used by an earlier row (all the
    partitions' files, ids only).

    Reading one column is cheap, and it lets every partition reject its
    duplicates of rows in other partitions — or other files of a folder —
    without seeing them. The ids stay in Arrow: no Python string per row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    part = parts[0]
    if part.kind == "osm":
        return np.empty(0, dtype=np.int64)
    if part.kind == "parquet":
        files = list(dict.fromkeys(p.path for p in parts))  # a folder's files in row order
        with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
            columns = list(pool.map(lambda f: _id_column(f, id_column), files))
        ids = pa.chunked_array([chunk for column in columns for chunk in column.chunks], type=pa.large_string())
    elif part.kind == "csv":
        ids = pa.chunked_array([pa.array(pd.read_csv(part.path, usecols=[id_column], dtype={id_column: "string"},
                                                     encoding=part.encoding or "utf-8")
                                         [id_column].astype(object).where(lambda s: s.notna(), None))])
    else:
        frame = pyogrio.read_dataframe(part.path, layer=part.layer, columns=[id_column], read_geometry=False,
                                       encoding=part.ogr_encoding)
        ids = pa.chunked_array([pa.array(frame[id_column].astype(str).where(frame[id_column].notna(), None))])
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    ids = ids.cast(pa.large_string()) if not pa.types.is_large_string(ids.type) else ids
    # a stable sort puts each id's rows together, earliest first: every later row
    # of a run of equal ids is a duplicate (about 1.5 s and 0.6 GB for 10M ids)
    order = pc.sort_indices(ids)  # nulls last
    ordered = ids.take(order)
    repeat = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1)).fill_null(False)
    later = np.flatnonzero(np.asarray(repeat)) + 1
    return np.sort(np.asarray(order)[later]).astype(np.int64)


def _id_column(path: Location, id_column: str):
    parquet = parquet_file(path)
    if id_column not in parquet.schema_arrow.names:  # read() would return no column at all
        raise InputFileError(f"{path}: no column '{id_column}' (the footprints' id column; every file of a "
                             "folder needs it)")
    return parquet.read(columns=[id_column]).column(0).cast("large_string")


def read_vector(path: Location, declared_crs: str | None = None, layer: str | None = None,
                what: str = "input", encoding: str | None = None, wkt_column: str | None = None) -> gpd.GeoDataFrame:
    """Read a whole (small) vector file in WGS84: parks, registries, fixtures
    (from object storage through a temporary copy, in any format)."""
    path = location(path)
    _check_exists(path, what)
    with local_copy(path) as local:
        parts = plan_partitions(local, rows_per_partition=10**12, layer=layer, what=what, encoding=encoding,
                                wkt_column=wkt_column)
        frames = [read_partition(p, declared_crs) for p in parts]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]




def _bbox_covering(schema) -> list | None:
    """The (struct column, field) of xmin, ymin, xmax, ymax that a GeoParquet file's
    primary geometry declares as its bbox covering, or None."""
    meta = schema.metadata or {}
    if b"geo" not in meta:
        return None
    geo = json.loads(meta[b"geo"])
    column = geo.get("columns", {}).get(geo.get("primary_column", "geometry"), {})
    bbox = (column.get("covering") or {}).get("bbox") or {}
    paths = [bbox.get(k) for k in ("xmin", "ymin", "xmax", "ymax")]
    if not all(isinstance(p, list) and len(p) == 2 for p in paths) or len({p[0] for p in paths}) != 1 \
            or paths[0][0] not in schema.names:
        return None
    return paths


def _lonlat_geoparquet(part: Partition):
    """The partition's GeoParquet file where its coordinates are lon/lat (WGS84 or
    OGC:CRS84), else None: what the envelope readers below need."""
    if part.kind != "parquet":
        return None
    parquet = parquet_file(part.path)
    crs = _parquet_crs(parquet.schema_arrow)
    return parquet if crs is not None and crs.equals(WGS84, ignore_axis_order=True) else None


def covering_bounds_wgs84(part: Partition) -> np.ndarray | None:
    """Envelopes (N × 4: lon/lat min, then max) of a GeoParquet partition's rows from
    the file's bbox covering columns (GeoParquet 1.1 ``covering``; Overture's buildings,
    GDAL ≥ 3.9 and geopandas with ``write_covering_bbox`` write them): no geometry
    decoded. Widened by one step of the columns' precision (Overture's are float32), so
    that they hold the outlines. None where the file declares no covering or its
    coordinates are not lon/lat (WGS84 or OGC:CRS84)."""
    parquet = _lonlat_geoparquet(part)
    paths = _bbox_covering(parquet.schema_arrow) if parquet is not None else None
    if paths is None:
        return None
    struct = parquet.read_row_groups(list(part.row_groups), columns=[paths[0][0]]).column(0).combine_chunks()
    bounds = np.empty((len(struct), 4))
    for i, (_, field) in enumerate(paths):
        values = struct.field(field)
        v = values.to_numpy(zero_copy_only=False).astype(values.type.to_pandas_dtype(), copy=False)
        bounds[:, i] = np.nextafter(v, -np.inf if i < 2 else np.inf)  # one step outward, in its own precision
    bounds[~np.isfinite(bounds).all(axis=1)] = np.nan  # a row without a box (no geometry) has none
    return bounds


class _WkbColumn:
    """A binary Arrow array presented as GeoArrow WKB (the extension name on its
    field) to geoarrow-c's kernels, without registering GeoArrow's types in pyarrow
    (``geoarrow.pyarrow`` would, and every later GeoParquet read would change type)."""

    def __init__(self, array):
        self.array = array

    def __arrow_c_array__(self, requested_schema=None):
        import pyarrow as pa

        field = pa.field("geometry", self.array.type, metadata={b"ARROW:extension:name": b"geoarrow.wkb",
                                                                 b"ARROW:extension:metadata": b"{}"})
        return field.__arrow_c_schema__(), self.array.__arrow_c_array__()[1]


def wkb_bounds_wgs84(part: Partition) -> np.ndarray | None:
    """Envelopes (N × 4, lon/lat) of a GeoParquet partition's rows computed on their
    WKB bytes by geoarrow-c's ``box`` kernel: no geometry is built (15 times faster
    than shapely's decoding and bounds, which also hold the GIL). The same numbers as
    ``shapely.bounds`` of the decoded rows (NaN for a null or empty one). None where
    the file is no GeoParquet in lon/lat (WGS84 or OGC:CRS84) with WKB geometries,
    or where a row's WKB cannot be read: the caller decodes then, and a bad row meets
    the reader's usual handling."""
    parquet = _lonlat_geoparquet(part)
    if parquet is None:
        return None
    geo = json.loads(parquet.schema_arrow.metadata[b"geo"])
    column = geo.get("primary_column", "geometry")
    if str(geo.get("columns", {}).get(column, {}).get("encoding", "WKB")).upper() != "WKB":
        return None
    import pyarrow as pa
    from geoarrow.c.kernel import ScalarFunction

    box = ScalarFunction("box")
    try:
        chunks = parquet.read_row_groups(list(part.row_groups), columns=[column]).column(0).chunks
        boxes = [pa.array(box(_WkbColumn(chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk)))
                 for chunk in chunks]
    except Exception:  # noqa: BLE001 (a row geoarrow-c cannot parse: the caller decodes, and reports it)
        return None
    if not boxes:
        return np.zeros((0, 4))
    struct = pa.concat_arrays(boxes)
    bounds = np.column_stack([struct.field(i).to_numpy(zero_copy_only=False) for i in range(4)])
    bounds[~np.isfinite(bounds).all(axis=1)] = np.nan  # a null or empty geometry: ±inf here, NaN in shapely
    return bounds


def stored_crs(part: Partition) -> CRS | None:
    """The coordinate system a vector file declares (None when it declares none)."""
    if part.kind == "parquet":
        return _parquet_crs(parquet_file(part.path).schema_arrow)
    if part.kind == "osm":
        return WGS84  # OSM data are WGS84 by definition
    if part.kind == "csv":
        return None
    crs = pyogrio.read_info(part.path, layer=part.layer)["crs"]
    return CRS.from_user_input(crs) if crs else None


def file_bounds_wgs84(part: Partition, crs: CRS) -> tuple[float, float, float, float] | None:
    """Extent of a vector file in WGS84 from its metadata, when the format keeps one."""
    try:
        if part.kind == "parquet":
            bbox = part.bbox
        elif part.kind == "ogr":
            bbox = pyogrio.read_info(part.path, layer=part.layer, force_total_bounds=True).get("total_bounds")
        else:
            return None
        if bbox is None or not np.all(np.isfinite(bbox[:4])):
            return None
        return Transformer.from_crs(crs, WGS84, always_xy=True).transform_bounds(*bbox[:4])
    except Exception:  # a missing extent only skips this early check
        return None


def footprints_bounds_wgs84(parts: list[Partition], crs: CRS) -> tuple[float, float, float, float] | None:
    """Extent in WGS84 of every file the partitions read (a folder's files
    together), from their metadata; None when a file keeps no extent."""
    bounds = [file_bounds_wgs84(part, crs) for part in {p.path: p for p in parts}.values()]
    if not bounds or any(b is None for b in bounds):
        return None
    west, south, east, north = np.asarray(bounds).T
    return float(west.min()), float(south.min()), float(east.max()), float(north.max())


def check_footprint_crs_and_extent(parts: list[Partition], declared_crs: str | None, raster) -> None:
    """Stop before any work when the footprints have no CRS or miss the raster entirely.

    Raises
    ------
    CRSError
        No CRS in the file and none declared in the config.
    InputFileError
        The footprints' extent does not overlap the irradiance raster.
    """
    part = parts[0]
    crs = declared_crs_of(declared_crs, part.named) if declared_crs else stored_crs(part)
    if crs is None:
        raise CRSError(f"{part.named}: no coordinate reference system in the file; declare it in the config, "
                       "e.g. 'footprints: {path: ..., crs: wgs84}' (or gcj02, cgcs2000, EPSG:<code>, a PROJ string, "
                       "WKT or a .prj file)")
    bounds = footprints_bounds_wgs84(parts, crs)
    if bounds is None:
        return
    r_west, r_south, r_east, r_north = Transformer.from_crs(
        CRS.from_wkt(raster.crs_wkt), WGS84, always_xy=True).transform_bounds(*raster.bounds)
    west, south, east, north = bounds
    if west > r_east or east < r_west or south > r_north or north < r_south:
        raise InputFileError(
            f"{raster.path}: the irradiance raster (lon {r_west:.3f}–{r_east:.3f}, lat {r_south:.3f}–{r_north:.3f}) "
            f"does not overlap the footprints in {part.named} (lon {west:.3f}–{east:.3f}, lat {south:.3f}–{north:.3f}); "
            "check both files' CRS and extent")
