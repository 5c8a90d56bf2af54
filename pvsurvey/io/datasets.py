"""Reading a run's Parquet datasets.

``buildings.parquet`` and ``candidates.parquet`` are directories of part files
(one per partition, and one per park for candidates), as Spark and Dask write
them: ``geopandas.read_parquet`` and ``pandas.read_parquet`` open the directory
as one table, DuckDB a glob of its files. Runs of older versions wrote
single files; every function here takes either.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..model.candidates import CANDIDATE_COLUMNS, PROJECT_WATERFALL_COLUMNS, ranks_by_cost
from .storage import parquet_files


def parquet_parts(path: Path) -> list[Path]:
    """The files of a dataset in file-name order (the order of its rows), or the file itself."""
    files = parquet_files(Path(path))
    return [Path(path)] if files is None else files


def damaged_part(*paths: Path) -> tuple[Path, str] | None:
    """The first file of these Parquet datasets (or files) whose footer cannot be read,
    with the reason; None when every footer reads (a truncated or overwritten file
    has none). Reads only the footers."""
    for path in paths:
        for part in parquet_parts(path):
            try:
                pq.read_metadata(part)
            except (pa.ArrowException, OSError) as exc:
                return part, " ".join(str(exc).split()) or type(exc).__name__
    return None


def read_parts(parts: list[Path], columns: list[str] | None = None) -> list[pa.Table]:
    """Each part's table, read on every core (Arrow releases the GIL), in order."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda p: pq.read_table(p, columns=columns), parts))


def dataset_exists(path: Path) -> bool:
    return Path(path).is_file() or bool(Path(path).is_dir() and parquet_parts(path))


def dataset_schema(path: Path) -> pa.Schema:
    """The schema of the first part (every part of a run shares it)."""
    return pq.read_schema(parquet_parts(path)[0])


def read_candidates(path: Path) -> gpd.GeoDataFrame:
    """Every candidate project of a run with its city-wide ``rank`` (1 = lowest LCOE)."""
    parts = [gpd.read_parquet(p) for p in parquet_parts(path)]
    if "rank" not in parts[0]:
        for part, ranks in zip(parts, ranks_by_cost([p["lcoe_cny_per_kwh"].to_numpy(float) for p in parts])):
            part["rank"] = ranks
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # a run written before the projects carried their waterfall: those columns empty
    frame = frame.assign(**{c: float("nan") for c in PROJECT_WATERFALL_COLUMNS if c not in frame})
    return gpd.GeoDataFrame(frame[CANDIDATE_COLUMNS], geometry=frame.geometry.values, crs=parts[0].crs)
