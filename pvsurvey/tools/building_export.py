"""``pvsurvey export --layer buildings``: the surveyed buildings of the city, a district
or a park as one file a GIS user opens (GeoPackage, FlatGeobuf or a single GeoParquet
file; ``buildings.parquet/`` is a folder of parts that common GDAL builds cannot open).

Each building keeps its survey columns, its PV status from the registry and the id of
the candidate project it belongs to (``project_id``, empty when it is in none).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ..errors import InputFileError
from ..io.datasets import read_candidates
from ..io.exports import export_table
from ..store.run_directory import CANDIDATES, EXPORTS, RunDirectory
from .candidate_lists import scope_suffix

BUILDING_FORMATS = ("gpkg", "fgb", "parquet", "geojson", "csv", "xlsx")


def project_ids(candidates: pd.DataFrame, building_ids: pd.Series) -> np.ndarray:
    """The candidate project of each building (``building_ids`` are ';'-separated per project)."""
    members = candidates[["project_id", "building_ids"]].assign(
        building_id=candidates["building_ids"].astype(str).str.split(";")).explode("building_id")
    lookup = pd.Series(members["project_id"].to_numpy(dtype=object), index=members["building_id"].to_numpy())
    lookup = lookup[~lookup.index.duplicated()]
    return lookup.reindex(building_ids.astype(str).to_numpy()).to_numpy(dtype=object)


def export_buildings(run_dir: str | Path, fmt: str = "gpkg", lang: str = "zh", park: str | None = None,
                     district: str | None = None, out: str | Path | None = None) -> Path:
    """Write the surveyed buildings of the city, a district or a park as one file.

    Parameters
    ----------
    run_dir : path
        A finished run directory.
    fmt : {'gpkg', 'fgb', 'parquet', 'geojson', 'csv', 'xlsx'}
        GeoPackage, FlatGeobuf, one GeoParquet file, GeoJSON (EPSG:4326), or a table without geometry.
    lang : {'zh', 'en'}
        Column names, as in the candidate exports (``可装机容量 (kWp)`` / ``Capacity (kWp)``).
    park, district : str, optional
        Only this park's or district's buildings.
    out : path, optional
        Output file (default ``RUN_DIR/exports/buildings[-park-ID|-district-NAME].FORMAT``).

    Returns
    -------
    Path
        The written file.

    Notes
    -----
    The scope's buildings are read into memory at once (about 1 KB per building).
    """
    run = RunDirectory(run_dir)
    if park is not None:
        scope = pc.field("park_id") == str(park)
    elif district is not None:
        scope = pc.field("district") == str(district)
    else:
        scope = None
    buildings = run.buildings(filters=scope)
    if not len(buildings) and scope is not None:
        raise InputFileError(f"{run.path}: no building in {'park' if park is not None else 'district'} "
                             f"{park if park is not None else district!r}; see parks.csv and districts.csv")
    buildings = buildings.drop(columns=["source_row"], errors="ignore")
    if run.has(CANDIDATES):
        buildings.insert(buildings.columns.get_loc("geometry"), "project_id",
                         project_ids(read_candidates(run.file(CANDIDATES)), buildings["building_id"]))
    suffix = scope_suffix(park, district)
    path = Path(out) if out else run.file(EXPORTS) / f"buildings{suffix}.{fmt}"
    if fmt in ("csv", "xlsx"):
        return export_table(pd.DataFrame(buildings.drop(columns="geometry")), path, fmt, lang=lang,
                            sheet_name="建筑" if lang == "zh" else "Buildings")
    return export_table(gpd.GeoDataFrame(buildings), path, fmt, lang=lang, sheet_name="buildings")
