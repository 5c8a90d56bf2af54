"""What the footprints say about a building beyond its outline, parsed and checked:
height, storeys, roof construction (colour-steel or concrete) and the roof's age.

Pure, vectorised over pandas string arrays: a value that cannot be used (negative,
absurd, unparsable, unknown material) never fails a row; it becomes unknown and is
counted (:func:`attribute_counts`, written to the manifest). Only the distinct
texts are parsed one by one (a source holds a handful of spellings, never one per
building).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..config.schema import Roof, Shade

# Chinese numerals of storey counts ("三层", "十二层", "二十一层").
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(m|米|meters?|metres?)?\s*$", re.IGNORECASE)
_LEVELS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(层|f|floors?|levels?|storeys?|stories)?\s*$", re.IGNORECASE)
_CHINESE_LEVELS = re.compile(r"^\s*(?:地上)?([零〇一二两三四五六七八九十百]+)\s*层?\s*$")
_YEAR = re.compile(r"(\d{4})")

CONSTRUCTIONS = ("steel", "concrete", "unknown")


def chinese_number(text: str) -> float:
    """Value of a Chinese numeral up to 999 ("三" 3, "十二" 12, "二十一" 21, "一百二十八" 128); NaN otherwise."""
    total, current = 0, 0
    for ch in text:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return np.nan
    return float(total + current) if text else np.nan


def _parse_unique(values: pd.Series, parse) -> tuple[np.ndarray, np.ndarray]:
    """``parse(text) -> (value, status)`` over the distinct texts of ``values``."""
    text = values.astype("string").str.strip()
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    parsed = [parse(u) for u in uniques]
    value = np.array([p[0] for p in parsed] + [np.nan], dtype=float)
    status = np.array([p[1] for p in parsed] + ["missing"], dtype=object)
    return value[codes], status[codes]


def _height(text: str):
    if text == "":
        return np.nan, "missing"
    m = _NUMBER.match(text)
    if m is None:
        return np.nan, "unparsable"
    return float(m.group(1)), "ok"


def _levels(text: str):
    if text == "":
        return np.nan, "missing"
    m = _LEVELS.match(text)
    if m is not None:
        return float(m.group(1)), "ok"
    m = _CHINESE_LEVELS.match(text)
    if m is not None:
        value = chinese_number(m.group(1))
        return (value, "ok") if np.isfinite(value) else (np.nan, "unparsable")
    return np.nan, "unparsable"


def parse_heights(height_text: pd.Series, levels_text: pd.Series, building_type: pd.Series | None,
                  shade: Shade) -> dict[str, np.ndarray]:
    """Building height [m] from the source's height, else storeys × storey height.

    Parameters
    ----------
    height_text, levels_text : Series of str
        The source's height ("12", "12m", "12 米") and storeys ("3", "3层", "三层", "3F").
    building_type : Series of str, optional
        The source's building type, choosing the storey height (``shade.storey_height_m``).
    shade : pvsurvey.config.schema.Shade

    Returns
    -------
    dict of numpy.ndarray
        ``height_m`` (what the source said, NaN where unusable), ``levels``,
        ``building_height_m`` (the height used for shade: height, else storeys ×
        storey height; NaN = unknown), ``height_source`` ('height', 'levels',
        'none') and ``height_status`` / ``levels_status`` ('ok', 'missing',
        'unparsable', 'negative', 'absurd').
    """
    height, h_status = _parse_unique(height_text, _height)
    levels, l_status = _parse_unique(levels_text, _levels)
    h_status = np.where(h_status == "ok", np.where(height <= 0, "negative", np.where(
        height > shade.max_height_m, "absurd", "ok")), h_status)
    l_status = np.where(l_status == "ok", np.where(levels <= 0, "negative", np.where(
        (levels > shade.max_levels) | (levels != np.round(levels)), "absurd", "ok")), l_status)
    height = np.where(h_status == "ok", height, np.nan)
    levels = np.where(l_status == "ok", levels, np.nan)
    table = {str(k).strip().lower(): v for k, v in shade.storey_height_m.items()}
    default = table.get("default", 3.0)
    if building_type is None:
        storey = np.full(len(height), default)
    else:
        # the storey height of each distinct type, then per building (a dict map over a
        # string column costs a hash lookup per row: 3 s per million buildings)
        codes, kinds = pd.factorize(building_type.astype("string").str.strip().str.lower(), use_na_sentinel=True)
        by_kind = np.array([table.get(k, default) for k in kinds] + [default], dtype=float)
        storey = by_kind[codes]
    from_levels = levels * storey
    used = np.where(np.isfinite(height), height, from_levels)
    source = np.where(np.isfinite(height), "height", np.where(np.isfinite(from_levels), "levels", "none"))
    return {"height_m": height, "levels": levels, "building_height_m": used, "height_source": source,
            "height_status": h_status, "levels_status": l_status}


def roof_construction(material_text: pd.Series, params: Roof) -> tuple[np.ndarray, np.ndarray]:
    """Construction of each roof from its material: 'steel', 'concrete' or 'unknown'.

    Returns the construction and a status ('ok', 'missing', 'unrecognised').
    """
    text = material_text.astype("string").str.strip().str.lower()
    steel = text.isin(params.steel_materials).to_numpy(dtype=bool)
    concrete = text.isin(params.concrete_materials).to_numpy(dtype=bool)
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    construction = np.where(steel, "steel", np.where(concrete, "concrete", "unknown")).astype(object)
    status = np.where(steel | concrete, "ok", np.where(missing, "missing", "unrecognised")).astype(object)
    return construction, status


def parse_years(year_text: pd.Series, as_of_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Year a roof was built or last renewed ("2008", "2008-05", "2008年"); NaN and
    'unparsable' / 'future' / 'too_old' (before 1900) where unusable."""
    def year(text: str):
        if text == "":
            return np.nan, "missing"
        m = _YEAR.search(text)
        if m is None:
            return np.nan, "unparsable"
        return float(m.group(1)), "ok"

    value, status = _parse_unique(year_text, year)
    status = np.where(status == "ok", np.where(value > as_of_year, "future", np.where(value < 1900, "too_old", "ok")),
                      status)
    return np.where(status == "ok", value, np.nan), status


def needs_new_roof(construction, roof_year, as_of_year: int, pv_lifetime_yr: float, params: Roof) -> np.ndarray:
    """Roofs whose covering will not outlast the PV [bool]: remaining life =
    roof year + service life − survey year < the PV's lifetime. Unknown year:
    False. An unknown construction is judged as steel when
    ``roof.unknown_steel_share`` ≥ 0.5, else as concrete.
    """
    construction = np.asarray(construction, dtype=object)
    year = np.asarray(roof_year, dtype=float)
    steel_like = (construction == "steel") | ((construction == "unknown") & (params.unknown_steel_share >= 0.5))
    life = np.where(steel_like, params.steel_roof_service_life_yr, params.concrete_roof_service_life_yr)
    remaining = year + life - as_of_year
    return np.isfinite(remaining) & (remaining < pv_lifetime_yr)


def attribute_counts(frame: pd.DataFrame) -> dict:
    """Counts of how each attribute was read, for the manifest (sums of partitions add up)."""
    out = {}
    for col in ("height_status", "levels_status", "height_source", "material_status", "roof_construction",
                "roof_year_status", "shade_status"):
        if col in frame:
            out[col] = {str(k): int(v) for k, v in frame[col].value_counts().items()}
    if "needs_new_roof" in frame:
        out["needs_new_roof"] = int(frame["needs_new_roof"].sum())
    return out
