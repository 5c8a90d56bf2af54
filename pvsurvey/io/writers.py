"""Writers: partition results, their merge into one Parquet file (rejected rows), JSON and CSV."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq

from ..columns import REJECTED_COLUMNS


# Snappy: several times faster to write than zstd for ~25 % more disk; the
# survey writes every building twice (round 1's part, the final part), so speed wins.
PARQUET_COMPRESSION = "snappy"


def write_geoparquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write one GeoParquet file (WKB geometry, GeoParquet 1.0 metadata)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    gdf.to_parquet(path, compression=PARQUET_COMPRESSION, index=False, write_covering_bbox=False)


def write_rejected(df: pd.DataFrame | None, path: Path) -> None:
    """Write rejected rows (plain Parquet, fixed columns and types even when empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if df is None:
        df = pd.DataFrame(columns=REJECTED_COLUMNS)
    df = df.astype({"source_file": "string", "source_row": "int64", "building_id": "string",
                    "reason": "string", "message": "string"})
    df[REJECTED_COLUMNS].to_parquet(path, compression=PARQUET_COMPRESSION, index=False)


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
                writer = pq.ParquetWriter(path, schema, compression=PARQUET_COMPRESSION)
            writer.write_table(table.cast(writer.schema))
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError("no parts to merge")
    return rows


def write_json(obj, path: Path) -> None:
    """Write JSON (UTF-8, indented) atomically: to a temporary name, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_csv(df: pd.DataFrame, path: Path, lang: str | None = None) -> None:
    """CSV in UTF-8 with a byte-order mark, so Excel shows Chinese text correctly;
    text from input data is neutralised so that it never runs as a formula.
    Headers are the canonical names, or the registry labels in ``lang``."""
    from .exports import export_table

    export_table(df, path, "csv", lang=lang)

