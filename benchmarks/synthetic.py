"""Synthetic footprints for benchmarks (generated, never committed).

Rotated rectangles of factory-like sizes spread over the demo raster's extent
(Shanghai), written spatially sorted (row-major over a grid of blocks) to
GeoParquet with one row group per ``row_group_size`` rows.

``city_heights=True`` writes a dense synthetic city instead (:func:`city`): buildings of
four kinds on a street grid with heights or storeys, for the shade benchmark.
Every value is SYNTHETIC (random, not a survey of any place); the files say so in
their name, their ``source`` column and their metadata.
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


# The dense city: one building per plot of a street grid, plots of PLOT_M metres
# (a 100 m x 70 m urban block's share in Shanghai's industrial and mixed districts;
# assumption, no source found), centred on the demo raster's land cells.
CITY_CENTRE = (121.40, 31.25)
PLOT_M = (100.0, 70.0)
CITY_BLOCK_PLOTS = 224  # plots a side of a sorting block (224 x 224 ~ 50,000 rows)
# kind: share, length and width ranges [m], and height: storeys (levels) x the
# storey height pvsurvey uses for the kind (shade.storey_height_m), or a height
# in metres. Plausible for each kind (assumption, no source found): sheds of 1-3
# storeys, warehouses 8-16 m, office towers of 5-40 storeys, residential slabs of
# 6-33 storeys (Shanghai's common 18- and 33-storey blocks at the top).
CITY_KINDS = {
    "factory": (0.40, (30, 90), (20, 55), ("levels", 1, 3)),
    "warehouse": (0.20, (40, 90), (25, 55), ("height_m", 8.0, 16.0)),
    "office": (0.15, (20, 50), (15, 35), ("levels", 5, 40)),
    "residential": (0.25, (30, 60), (12, 18), ("levels", 6, 33)),
}


def city(start: int, count: int, n: int, seed: int = 0) -> dict:
    """Rows ``start``..``start + count`` of a dense synthetic city of ``n`` plots.

    Plots fill a square street grid (``PLOT_M``), numbered block by block
    (``CITY_BLOCK_PLOTS`` a side) so that nearby rows are nearby roofs; each holds
    one building of a random kind (``CITY_KINDS``), turned by up to ±10° within
    its plot, with its height (``height``, m) or storeys (``building:levels``) and
    kind (``building``). Returns the columns (geometry in WGS84)."""
    rng = np.random.default_rng(seed + 7)
    per_block = CITY_BLOCK_PLOTS * CITY_BLOCK_PLOTS
    blocks = -(-n // per_block)
    blocks_a_row = int(np.ceil(np.sqrt(blocks)))  # a square-ish city of sorting blocks
    block_rows = -(-blocks // blocks_a_row)
    k = np.arange(start, start + count)
    block, inner = np.divmod(k, per_block)
    bi, bj = np.divmod(block, blocks_a_row)
    ii, jj = np.divmod(inner, CITY_BLOCK_PLOTS)
    x = (bj * CITY_BLOCK_PLOTS + jj - blocks_a_row * CITY_BLOCK_PLOTS / 2 + 0.5) * PLOT_M[0]
    y = (bi * CITY_BLOCK_PLOTS + ii - block_rows * CITY_BLOCK_PLOTS / 2 + 0.5) * PLOT_M[1]
    names = list(CITY_KINDS)
    kind = rng.choice(len(names), size=count, p=[CITY_KINDS[name][0] for name in names])
    length, width = np.zeros(count), np.zeros(count)
    height, levels = np.full(count, np.nan), np.full(count, np.nan)
    for i, name in enumerate(names):
        sel = kind == i
        _, (l0, l1), (w0, w1), (how, lo, hi) = CITY_KINDS[name]
        length[sel], width[sel] = rng.uniform(l0, l1, sel.sum()), rng.uniform(w0, w1, sel.sum())
        if how == "levels":
            levels[sel] = rng.integers(lo, hi + 1, sel.sum())
        else:
            height[sel] = np.round(rng.uniform(lo, hi, sel.sum()), 1)
    angle = np.radians(rng.uniform(-10, 10, count))
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float) * 0.5
    dx, dy = corners[None, :, 0] * length[:, None], corners[None, :, 1] * width[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    lat = CITY_CENTRE[1] + (y[:, None] + dx * sin + dy * cos) / 111_320.0
    lon = CITY_CENTRE[0] + (x[:, None] + dx * cos - dy * sin) / (111_320.0 * np.cos(np.radians(CITY_CENTRE[1])))
    as_text = lambda v: np.where(np.isfinite(v), np.char.mod("%g", np.nan_to_num(v)), None)
    return {"building": np.array(names)[kind], "height": as_text(height), "building:levels": as_text(levels),
            "source": np.full(count, "synthetic (benchmarks/synthetic.py), not a survey"),
            "geometry": shapely.polygons(np.stack([lon, lat], axis=-1))}


def write_footprints(n: int, path: Path | None = None, row_group_size: int = 50_000, city_heights: bool = False) -> Path:
    """Write ``n`` synthetic footprints to GeoParquet (cached by size); ``city_heights``:
    the dense city with heights (:func:`city`) instead of the spread factories."""
    path = path or DATA / (f"synthetic_city_{n}.parquet" if city_heights else f"footprints_{n}.parquet")
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    writer = None
    chunk = 1_000_000
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        ids = {"id": np.char.add("S", np.arange(start, start + count).astype(str))}
        if city_heights:
            cols = city(start, count, n, seed=start)
            gdf = gpd.GeoDataFrame({**ids, **{k: v for k, v in cols.items() if k != "geometry"}},
                                   geometry=cols["geometry"], crs=4326)
        else:
            gdf = gpd.GeoDataFrame(ids, geometry=rectangles(count, seed=start), crs=4326)
        table = pa.table(gdf.to_arrow(geometry_encoding="WKB"))
        # GeoParquet 1.0 metadata; no 'crs' key means OGC:CRS84 (lon/lat)
        geo = {"version": "1.0.0", "primary_column": "geometry",
               "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"]}}}
        meta = {b"geo": json.dumps(geo).encode()}
        if city_heights:
            meta[b"pvsurvey_synthetic"] = b"synthetic dense city for benchmarks/bench_shade.py; not real buildings"
        table = table.replace_schema_metadata(meta)
        if writer is None:
            writer = pq.ParquetWriter(path.with_suffix(".tmp"), table.schema, compression="zstd")
        writer.write_table(table, row_group_size=row_group_size)
    writer.close()
    path.with_suffix(".tmp").rename(path)
    print(f"generated {n:,} footprints in {time.perf_counter() - t0:.1f}s -> {path}")
    return path


def generate(n: int, row_group_size: int | None = None, city_heights: bool = False) -> Path:
    """``write_footprints(n)`` in a child process, so that the generator's memory is
    not counted in the benchmark's peak; returns the (cached) file. Row groups of
    50,000 rows unless ``row_group_size`` says otherwise (one file per size);
    ``city_heights``: the dense synthetic city with heights (:func:`city`)."""
    import subprocess
    import sys

    stem = f"synthetic_city_{n}" if city_heights else f"footprints_{n}"
    path = DATA / (f"{stem}.parquet" if row_group_size is None else f"{stem}_rg{row_group_size}.parquet")
    size = 50_000 if row_group_size is None else row_group_size
    code = ("from pathlib import Path; from synthetic import write_footprints; "
            f"write_footprints({n}, Path({str(path)!r}), {size}, {city_heights})")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)
    return path
