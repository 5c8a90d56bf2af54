"""Synthetic footprints for benchmarks (generated, never committed).

Rotated rectangles of factory-like sizes spread over the demo raster's extent
(Shanghai), written spatially sorted (row-major over a grid of blocks) to
GeoParquet with one row group per ``row_group_size`` rows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "benchmarks" / "_data"
# inside the land cells of data/demo/ghi_gldas_0p25.tif
EXTENT = (120.80, 30.70, 121.95, 31.95)


def rectangles(n: int, seed: int = 0) -> np.ndarray:
    """``n`` rotated rectangles [WGS84], sorted along a grid so nearby rows are nearby roofs."""
    rng = np.random.default_rng(seed)
    west, south, east, north = EXTENT
    lon = np.sort(rng.uniform(west, east, n))
    lat = rng.uniform(south, north, n)
    # sort into 1,000 west-east strips, each south to north: spatially compact row groups
    strip = np.floor((lon - west) / (east - west) * 1000).astype(int)
    order = np.lexsort((lat, strip))
    lon, lat = lon[order], lat[order]
    length = rng.uniform(15, 120, n)
    width = rng.uniform(10, 60, n)
    angle = rng.uniform(0, np.pi, n)
    m_per_deg_lat = 111_320.0
    m_per_deg_lon = m_per_deg_lat * np.cos(np.radians(lat))
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float) * 0.5
    dx = corners[None, :, 0] * length[:, None]
    dy = corners[None, :, 1] * width[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = lon[:, None] + (dx * cos - dy * sin) / m_per_deg_lon[:, None]
    y = lat[:, None] + (dx * sin + dy * cos) / m_per_deg_lat
    return shapely.polygons(np.stack([x, y], axis=-1))


def write_footprints(n: int, path: Path | None = None, row_group_size: int = 50_000) -> Path:
    """Write ``n`` synthetic footprints to GeoParquet (cached by size)."""
    path = path or DATA / f"footprints_{n}.parquet"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    writer = None
    chunk = 1_000_000
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        geoms = rectangles(count, seed=start)
        gdf = gpd.GeoDataFrame({"id": np.char.add("S", np.arange(start, start + count).astype(str))},
                               geometry=geoms, crs=4326)
        table = pa.table(gdf.to_arrow(geometry_encoding="WKB"))
        # GeoParquet 1.0 metadata; no 'crs' key means OGC:CRS84 (lon/lat)
        geo = {"version": "1.0.0", "primary_column": "geometry",
               "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"]}}}
        table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
        if writer is None:
            writer = pq.ParquetWriter(path.with_suffix(".tmp"), table.schema, compression="zstd")
        writer.write_table(table, row_group_size=row_group_size)
    writer.close()
    path.with_suffix(".tmp").rename(path)
    print(f"generated {n:,} footprints in {time.perf_counter() - t0:.1f}s -> {path}")
    return path


def generate(n: int, row_group_size: int | None = None) -> Path:
    """``write_footprints(n)`` in a child process, so that the generator's memory is
    not counted in the benchmark's peak; returns the (cached) file. Row groups of
    50,000 rows unless ``row_group_size`` says otherwise (one file per size)."""
    import subprocess
    import sys

    path = DATA / (f"footprints_{n}.parquet" if row_group_size is None else f"footprints_{n}_rg{row_group_size}.parquet")
    size = 50_000 if row_group_size is None else row_group_size
    subprocess.run([sys.executable, "-c", "from pathlib import Path; from synthetic import write_footprints; "
                    f"write_footprints({n}, Path({str(path)!r}), {size})"], check=True, cwd=Path(__file__).parent)
    return path
