"""Park outlines: read, checked like footprints, canonical columns.
"""

from __future__ import annotations



import geopandas as gpd

from ..errors import InputFileError
from .fields import geometry_column, plan_columns
from .vector import read_vector
from ..config.schema import ParkSource, SurveyConfig
from ..model.footprints import clean_footprints


PARK_NAME_SOURCES = ("park_name", "name", "名称", "园区名称")


def read_park_rows(src: ParkSource) -> gpd.GeoDataFrame:
    """The parks file's rows (WGS84) with its columns under pvsurvey's names (the
    recognised headers and the config's ``columns:``), as the survey and the maps
    read them."""
    raw = read_vector(src.path, src.crs, src.layer, what="parks", encoding=src.encoding,
                      wkt_column=geometry_column(src))
    return plan_columns([c for c in raw.columns if c not in (raw.geometry.name, "source_row")], src, "parks",
                        src.path).apply(raw)


def read_parks(config: SurveyConfig) -> tuple[gpd.GeoDataFrame | None, dict | None]:
    """Park polygons in WGS84 with ``park_id``, ``park_name`` and ``district``.

    Park rows go through the same geometry checks as footprints (repair, empty,
    not a polygon, duplicate id); the rejected ones are counted and listed in the
    returned summary for the manifest.
    """
    if config.parks is None:
        return None, None
    src = config.parks
    raw = read_park_rows(src)
    name_col = next((c for c in PARK_NAME_SOURCES if c in raw.columns), None)
    missing = [c for c, ok in (("park_id", "park_id" in raw), ("name", name_col), ("district", "district" in raw)) if not ok]
    if missing:
        raise InputFileError(f"{src.path}: parks need the columns park_id, name and district; missing "
                             f"{', '.join(missing)} (found: {', '.join(map(str, raw.columns))}); map the file's own "
                             f"names in the config, e.g. 'parks: {{columns: {{{missing[0]}: <its header>}}}}'")
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
