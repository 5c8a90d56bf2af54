"""Writers: the one atomic file write, partition results, their merge into one
Parquet file (rejected rows), JSON and CSV."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..columns import REJECTED_COLUMNS


# Files a writer may leave beside the one it writes (SQLite, hence GeoPackage, journals).
_SIDECARS = ("-journal", "-wal", "-shm")


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary file
    beside it (same folder, so the rename never crosses file systems), which one
    ``os.replace`` then puts in place. A reader sees the old file or the new one,
    never half of one; on failure the temporary file is removed and ``path`` is
    left as it was.

    The temporary name (``.<name>.<random>.tmp<suffix>``) is hidden, unique per
    call (two writers of one file never share it) and ends in the target's
    suffix, which some writers (GDAL's GeoPackage driver) go by.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        for leftover in [tmp] + [tmp.with_name(tmp.name + end) for end in _SIDECARS]:
            leftover.unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def copy_atomic(src: Path, dst: Path) -> Path:
    """:func:`atomic_write` of a copy of ``src`` (contents only)."""
    return atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


# Snappy: several times faster to write than zstd for ~25 % more disk; the
# survey writes every building twice (round 1's part, the final part), so speed wins.
PARQUET_COMPRESSION = "snappy"


# Files a run writes for itself and reads back in a later round (partition results,
# park pieces), never outputs: LZ4, plain (no dictionary) pages and no column
# statistics. Dictionary encoding and statistics were most of the cost of
# writing a part (50,000 roofs, 40 columns: 0.47 s with Parquet's defaults and
# snappy, 0.10 s so; reads 0.13 -> 0.06 s; 8.4 MB instead of 9.5 MB, measured
# on this project's 2-core machine, 2026-12-03); the run's outputs keep
# PARQUET_COMPRESSION and Parquet's defaults.
INTERMEDIATE_PARQUET = {"compression": "lz4", "use_dictionary": False, "write_statistics": False}


def output_parquet_options(schema: pa.Schema) -> dict:
    """Writer options of the run's Parquet outputs: :data:`PARQUET_COMPRESSION`, and
    dictionary pages for the text columns only (park, district, status: few values
    each). Numbers and geometries are nearly all distinct: Parquet's default tries a
    dictionary for them and falls back, which cost 60 % of writing a part (50,000
    candidates, 40 columns: 0.16 s with dictionaries everywhere, 0.064 s so, and
    12.0 MB instead of 13.8 MB; measured on this project's 2-core machine, 2026-12-03).
    Readers see the same Parquet file (encodings are per page)."""
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type)]
    return {"compression": PARQUET_COMPRESSION, "use_dictionary": text}


def _parquet_options(frame: pd.DataFrame, intermediate: bool) -> dict:
    if intermediate:
        return dict(INTERMEDIATE_PARQUET)
    text = [c for c in frame.columns if c != getattr(frame, "_geometry_column_name", None)
            and (pd.api.types.is_string_dtype(frame[c].dtype) or isinstance(frame[c].dtype, pd.CategoricalDtype))]
    return {"compression": PARQUET_COMPRESSION, "use_dictionary": text}


def write_geoparquet(gdf: gpd.GeoDataFrame, path: Path, intermediate: bool = False) -> None:
    """Write one GeoParquet file (WKB geometry, GeoParquet 1.0 metadata);
    ``intermediate``: a file the run reads back itself (:data:`INTERMEDIATE_PARQUET`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    gdf.to_parquet(path, index=False, write_covering_bbox=False, **_parquet_options(gdf, intermediate))


def write_rejected(df: pd.DataFrame | None, path: Path, intermediate: bool = False) -> None:
    """Write rejected rows (plain Parquet, fixed columns and types even when empty);
    ``intermediate`` as in :func:`write_geoparquet`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if df is None:
        df = pd.DataFrame(columns=REJECTED_COLUMNS)
    df = df.astype({"source_file": "string", "source_row": "int64", "building_id": "string",
                    "reason": "string", "message": "string"})
    df[REJECTED_COLUMNS].to_parquet(path, index=False, **_parquet_options(df[REJECTED_COLUMNS], intermediate))


def merge_parquet(parts: list[Path], path: Path, geo: bool = True, transform=None) -> int:
    """Concatenate Parquet parts into one file, a row group per part, streaming.

    Returns the number of rows written. Parts must share one schema (the survey
    writes them with fixed dtypes). For GeoParquet the per-file bounding box is
    dropped from the metadata, since it is optional and the parts' boxes differ.
    ``transform(table) -> table``, when given, sees (and may extend) each part
    on its way through: one pass over the data serves several outputs.
    """
    rows = 0
    writer = None
    try:
        for part in parts:
            table = pq.read_table(part)
            if transform is not None:
                table = transform(table)
            if writer is None:
                schema = table.schema
                if geo and schema.metadata and b"geo" in schema.metadata:
                    meta = json.loads(schema.metadata[b"geo"])
                    for col in meta.get("columns", {}).values():
                        col.pop("bbox", None)
                    schema = schema.with_metadata({**schema.metadata, b"geo": json.dumps(meta).encode()})
                writer = pq.ParquetWriter(path, schema, **output_parquet_options(schema))
            writer.write_table(table.cast(writer.schema))
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError("no parts to merge")
    return rows


def write_json(obj, path: Path) -> None:
    """Write JSON (UTF-8, indented) atomically (:func:`atomic_write`)."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def write_csv(df: pd.DataFrame, path: Path, lang: str | None = None) -> None:
    """CSV in UTF-8 with a byte-order mark, so Excel shows Chinese text correctly;
    text from input data is neutralised so that it never runs as a formula.
    Headers are the canonical names, or the registry labels in ``lang``."""
    from .exports import export_table

    export_table(df, path, "csv", lang=lang)

