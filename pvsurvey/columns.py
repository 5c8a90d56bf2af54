"""The column registry: the single source of every column name that leaves pvsurvey.

Each column carries its unit in its name (``usable_area_m2``, ``capacity_kwp``),
a one-line description, and the Chinese and English labels used in exports and
maps. Chinese terms follow the Shanghai 2022–2025 industrial energy-saving plan
("可利用的建筑屋顶光伏安装比例", "新增装机", "可建设项目清单") and the city's
14th five-year industrial green-development plan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One output column.

    Parameters
    ----------
    name : str
        Canonical column name, unit suffix included.
    unit : str
        Unit as shown to people ("" for identifiers and text).
    description : str
        One line saying what the value is.
    label_zh, label_en : str
        Header labels for exports and maps.
    """

    name: str
    unit: str
    description: str
    label_zh: str
    label_en: str

    def label(self, lang: str = "en", with_unit: bool = True) -> str:
        """Header label in ``lang`` ('zh' or 'en'), with the unit in brackets."""
        text = self.label_zh if lang == "zh" else self.label_en
        return f"{text} ({self.unit})" if with_unit and self.unit else text


_COLUMNS = [
    # identity and location
    Column("building_id", "", "Building id: the source's id where it has one, else derived from the centroid", "建筑编号", "Building ID"),
    Column("source_row", "", "Zero-based row number of the footprint in its input file", "源数据行号", "Source row"),
    Column("park_id", "", "Industrial park id (empty when outside every park)", "园区编号", "Park ID"),
    Column("park_name", "", "Industrial park name", "园区名称", "Park"),
    Column("district", "", "District (区) the park lies in", "所在区", "District"),
    Column("name", "", "Building or enterprise name from the source", "名称", "Name"),
    Column("owner", "", "Owner or enterprise from the source", "企业/业主", "Owner"),
    Column("height_m", "m", "Building height from the source", "建筑高度", "Height"),
    Column("levels", "", "Number of storeys from the source", "层数", "Storeys"),
    Column("roof_material", "", "Roof material from the source", "屋面材料", "Roof material"),
    Column("roof_shape", "", "Roof shape used by the roof model: flat or pitched", "屋顶形式", "Roof shape"),
    # roof model
    Column("footprint_area_m2", "m²", "Footprint area in the survey's metric CRS", "占地面积", "Footprint area"),
    Column("usable_area_m2", "m²", "Roof area usable for PV after setback, obstructions and minimum size", "可利用屋顶面积", "Usable roof area"),
    Column("surface_tilt_deg", "°", "Tilt of the PV array from horizontal", "组件倾角", "Array tilt"),
    Column("surface_azimuth_deg", "°", "Azimuth the array faces, clockwise from north (180 = south)", "组件方位角", "Array azimuth"),
    Column("coverage_frac", "", "Module area per usable roof area (ground coverage ratio for tilted rows)", "组件覆盖率", "Module coverage"),
    Column("capacity_kwp", "kWp", "DC capacity that fits on the usable roof", "可装机容量", "Capacity"),
    # yield model
    Column("ghi_kwh_per_m2_yr", "kWh/m²/yr", "Long-term annual global horizontal irradiation under the roof", "年水平面总辐照量", "Annual GHI"),
    Column("specific_yield_kwh_per_kwp", "kWh/kWp/yr", "Annual AC energy per kWp of DC capacity", "单位容量年发电量", "Specific yield"),
    Column("annual_yield_kwh", "kWh/yr", "Annual AC energy of the roof's PV system", "年发电量", "Annual yield"),
    Column("weather_cell", "", "Id of the weather cell whose hourly year gave the specific yield", "气象网格", "Weather cell"),
    # aggregates
    Column("building_count", "", "Number of surveyed buildings", "建筑数量", "Buildings"),
    Column("usable_building_count", "", "Buildings with a usable roof (usable area above the minimum)", "可利用屋顶建筑数", "Buildings with usable roof"),
    Column("mean_specific_yield_kwh_per_kwp", "kWh/kWp/yr", "Capacity-weighted mean specific yield", "平均单位容量年发电量", "Mean specific yield"),
    # rejected rows
    Column("reason", "", "Reason code why the input row was not accepted", "剔除原因代码", "Reason code"),
    Column("message", "", "What was wrong with the row and how to fix it", "剔除说明", "Message"),
    Column("source_file", "", "Input file the row came from", "来源文件", "Source file"),
]

COLUMNS: dict[str, Column] = {c.name: c for c in _COLUMNS}

# Column order of buildings.parquet (geometry is appended last).
BUILDING_COLUMNS = [
    "building_id", "source_row", "park_id", "park_name", "district", "name", "owner",
    "height_m", "levels", "roof_material", "roof_shape",
    "footprint_area_m2", "usable_area_m2", "surface_tilt_deg", "surface_azimuth_deg",
    "coverage_frac", "capacity_kwp", "weather_cell", "ghi_kwh_per_m2_yr",
    "specific_yield_kwh_per_kwp", "annual_yield_kwh",
]

# Summable figures of the per-park / per-district tables.
SUM_COLUMNS = ["building_count", "usable_building_count", "footprint_area_m2",
               "usable_area_m2", "capacity_kwp", "annual_yield_kwh"]

# Source columns taken as the building id, first present wins.
ID_SOURCES = ("building_id", "id", "osm_id", "osm_way_id", "full_plus_code", "ID", "fid")

REJECTED_COLUMNS = ["source_file", "source_row", "building_id", "reason", "message"]


def label(name: str, lang: str = "en", with_unit: bool = True) -> str:
    """Label of a registered column; unregistered names come back unchanged."""
    col = COLUMNS.get(name)
    return col.label(lang, with_unit) if col else name


def unit(name: str) -> str:
    """Unit of a registered column ('' if unitless or unknown)."""
    col = COLUMNS.get(name)
    return col.unit if col else ""
