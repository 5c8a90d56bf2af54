"""The file's own column names and units, turned into pvsurvey's.

Each input may map pvsurvey's names to its own headers in the config
(``columns: {capacity_kwp: 装机容量(MW)}``) and declare the unit of a quantity
that comes in several (``units: {capacity: MW}``). Without a mapping, the common
headers of Shanghai's registries and park lists are recognised where one column
alone matches (装机容量(MW) → capacity_kwp in MW, 并网日期 → commissioned_on …);
Big5 files' traditional characters and full-width brackets match too. Dates
come as ISO, ``YYYY/M/D``, ``YYYY年M月D日`` or Excel serial numbers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputFileError

# traditional → simplified, for the characters of the headers below
_SIMPLIFIED = str.maketrans(dict(zip("項編號裝機並網狀態經緯稱業築設規劃區園運間時備歸屬縣層樓稱", "项编号装机并网状态经纬称业筑设规划区园运间时备归属县层楼称")))


def header_key(text) -> str:
    """A header as compared: NFKC (full-width brackets and digits become ASCII),
    traditional characters simplified, no spaces, lower case, ［【 as (."""
    key = unicodedata.normalize("NFKC", str(text)).translate(_SIMPLIFIED).lower()
    key = re.sub(r"\s+", "", key)
    return key.replace("【", "(").replace("】", ")").replace("[", "(").replace("]", ")")


# Headers recognised without a mapping, per input (compared with header_key). The
# first listed wins where several are present for 'name'; any other name with two
# matching columns is ambiguous and needs 'columns:'.
RECOGNISED: dict[str, dict[str, tuple[str, ...]]] = {
    "installations": {
        "registry_id": ("项目编号", "项目代码", "项目id", "项目序号"),
        "building_id": ("建筑编号", "建筑物编号", "建筑id", "房屋编号"),
        "commissioned_on": ("并网日期", "并网时间", "投运日期", "投运时间", "投产日期", "并网投运日期"),
        "status": ("状态", "项目状态", "建设状态", "并网状态"),
        "lon": ("经度", "longitude", "lng"),
        "lat": ("纬度", "latitude"),
        "name": ("项目名称", "企业名称", "单位名称", "业主单位", "业主", "名称"),
    },
    "parks": {
        "park_id": ("园区编号", "园区代码", "园区id"),
        "name": ("园区名称", "名称"),
        "district": ("所在区", "所属区", "所在区县", "所属区县", "区县", "行政区", "区"),
    },
    "footprints": {
        "height_m": ("高度", "建筑高度", "高度(m)", "建筑高度(m)"),
        "levels": ("层数", "楼层数", "地上层数", "建筑层数"),
        "name": ("名称", "建筑名称", "建筑物名称"),
        "owner": ("企业名称", "业主", "业主单位", "单位名称", "权属单位"),
    },
}
FIRST_WINS = {"name", "owner"}
# footprint ids in Chinese files (after building_id, id, osm_id ...)
FOOTPRINT_ID_HEADERS = ("建筑编号", "建筑物编号", "建筑id")

# capacity: 装机容量(MW), 装机容量（kWp）, 装机规模/MW, capacity_mw ...; the unit from the header
_CAPACITY = re.compile(r"^(?:装机容量|装机规模|并网容量|备案容量|建设规模|容量|capacity|capacity_kwp)"
                       r"(?:[(/_]?(kwp|kw|mwp|mw|千瓦|兆瓦)\)?)?$")
_UNIT_WORDS = {"kw": "kW", "kwp": "kWp", "mw": "MW", "mwp": "MWp", "千瓦": "kW", "兆瓦": "MW"}
CAPACITY_TO_KWP = {"kW": 1.0, "kWp": 1.0, "MW": 1000.0, "MWp": 1000.0}


def capacity_unit_of(header) -> str | None:
    """The unit a capacity header names (装机容量(MW) → 'MW'; capacity_kwp → 'kWp'); None when it names none."""
    match = _CAPACITY.match(header_key(header))
    if match is None:
        return None
    if header_key(header) == "capacity_kwp":
        return "kWp"
    return _UNIT_WORDS.get(match.group(1)) if match.group(1) else None


@dataclass(frozen=True)
class ColumnPlan:
    """How a file's columns become pvsurvey's: renames (file → pvsurvey name) and the
    units of quantities (``capacity``: kW, kWp, MW, MWp; ``height``: m, storeys)."""

    renames: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame with its columns renamed; a file column already bearing a target
        name gives way to the mapped one."""
        if not self.renames:
            return frame
        targets = set(self.renames.values())
        drop = [c for c in frame.columns if c in targets and c not in self.renames]
        return frame.drop(columns=drop).rename(columns=self.renames)

    def pairs(self) -> tuple:
        return tuple(sorted(self.renames.items()))


def declared(source, key: str) -> dict:
    """The ``columns`` or ``units`` an input declares (none for a plain VectorSource)."""
    value = getattr(source, key, None)
    if value is None:
        return {}
    items = value.model_dump() if hasattr(value, "model_dump") else dict(value)
    return {k: v for k, v in items.items() if v is not None}


def plan_columns(columns, source, what: str, path) -> ColumnPlan:
    """Renames and units for a file with these ``columns``, from the input's
    ``columns:`` and ``units:`` and the recognised headers.

    Raises
    ------
    InputFileError
        A mapped column is not in the file; two columns match one recognised
        name (the capacity included).
    """
    present = [str(c) for c in columns]
    mapping, units = declared(source, "columns"), declared(source, "units")
    if what == "footprints":  # ids are read through id_column; the geometry by the reader
        mapping.pop("building_id", None)
    renames = {}
    for name, column in mapping.items():
        if column not in present:
            raise InputFileError(f"{path}: no column '{column}' ({what}.columns.{name} in the config; the file has: "
                                 f"{', '.join(present)})")
        renames[column] = name
    renames.pop(mapping.get("geometry"), None)
    taken = set(mapping) | {c for c in present if c not in renames}
    keys = {c: header_key(c) for c in present}
    for name, headers in RECOGNISED.get(what, {}).items():
        if name in taken:
            continue
        hits = sorted((c for c in present if c not in renames and keys[c] in headers),
                      key=lambda c: headers.index(keys[c]))
        if len(hits) > 1 and name not in FIRST_WINS:
            raise InputFileError(f"{path}: the columns {', '.join(hits)} could each be {name}; choose one in the config, "
                                 f"e.g. '{what}: {{columns: {{{name}: {hits[0]}}}}}'")
        if hits:
            renames[hits[0]] = name
    if what == "installations":
        column = mapping.get("capacity_kwp")
        if column is None and "capacity_kwp" not in present:
            # only headers that name their unit: a bare 装机容量 may be kW or MW, so it needs 'columns:' and 'units:'
            hits = [c for c in present if c not in renames and capacity_unit_of(c) is not None]
            if len(hits) > 1:
                raise InputFileError(f"{path}: the columns {', '.join(hits)} could each be the capacity; choose one in "
                                     f"the config, e.g. 'installations: {{columns: {{capacity_kwp: {hits[0]}}}}}'")
            if hits:
                column = hits[0]
                renames[column] = "capacity_kwp"
        if "capacity" not in units:
            units["capacity"] = (capacity_unit_of(column) if column is not None else None) or "kWp"
    if what == "footprints" and units.get("height") == "storeys":
        height = next((c for c, n in renames.items() if n == "height_m"), "height_m" if "height_m" in present else None)
        if height is not None:
            renames[height] = "levels"
    return ColumnPlan(renames, units)


def geometry_column(source) -> str | None:
    """The WKT column a CSV input names in ``columns: {geometry: ...}``."""
    return declared(source, "columns").get("geometry")


def footprint_id_column(source) -> str | None:
    """The footprints' id column as configured (``id_column`` or ``columns.building_id``)."""
    return getattr(source, "id_column", None) or declared(source, "columns").get("building_id")


# --- numbers and dates as registries type them ------------------------------------------------

def numbers(values: pd.Series) -> pd.Series:
    """Numbers from text typed by people: '1,200', ' 3.5 ', full-width digits; NaN where not a number."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype("string").map(lambda v: unicodedata.normalize("NFKC", v), na_action="ignore").astype("string")
    return pd.to_numeric(text.str.replace(",", "", regex=False).str.strip(), errors="coerce").astype(float)


_DATE_FORMS = (
    re.compile(r"^(?P<y>\d{4})(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})[日号]?$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
)
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")  # Excel's day 0 (its 1900 leap-year bug folded in)
EXCEL_SERIALS = (18264, 73051)  # 1950-01-01 .. 2100-01-01: a number outside is not a date


def parse_dates(values: pd.Series) -> pd.Series:
    """Dates (datetime64) from ISO (2023-05-01, with or without a time), YYYY/M/D,
    YYYY.M.D, YYYYMMDD, YYYY年M月D日 and Excel serial numbers (45047 = 2023-05-01);
    NaT for a blank or unreadable value or an impossible date (2023-02-30).
    Day-first and month-first forms (01/02/2023) are ambiguous and not read."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values).dt.tz_localize(None) if getattr(values.dt, "tz", None) else values
    if len(values) and pd.api.types.infer_dtype(values, skipna=True) == "date":  # datetime.date objects
        return pd.to_datetime(values, errors="coerce")
    text = values.astype("string").str.strip().map(lambda v: unicodedata.normalize("NFKC", v),
                                                   na_action="ignore").astype("string")
    ymd = pd.DataFrame({"year": np.nan, "month": np.nan, "day": np.nan}, index=values.index)
    for form in _DATE_FORMS:
        found = text.str.extract(form)
        rows = found["y"].notna() & ymd["year"].isna()
        for col, group in (("year", "y"), ("month", "m"), ("day", "d")):
            ymd.loc[rows, col] = found.loc[rows, group].astype(float)
    dates = pd.to_datetime(ymd, errors="coerce")
    serial = pd.to_numeric(text.where(text.str.fullmatch(r"\d{5}(?:\.\d+)?", na=False)), errors="coerce")
    serial = serial.where((serial >= EXCEL_SERIALS[0]) & (serial < EXCEL_SERIALS[1]))
    from_serial = _EXCEL_EPOCH + pd.to_timedelta(np.floor(serial.to_numpy(float)), unit="D")
    return dates.where(dates.notna(), pd.Series(from_serial, index=values.index))
