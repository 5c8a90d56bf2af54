"""Exports for park managers and GIS users — CSV, Excel, GeoJSON, GeoPackage — and
the reader that takes an edited CSV or Excel file back.

Headers come from the column registry (:func:`pvsurvey.columns.label`) in
Chinese or English; unregistered columns keep their names. Text that came from
input data never becomes a formula or a link in a spreadsheet (CSV injection,
OWASP [1]_): a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return (or their full-width forms ``＝＋－＠``, which Chinese input
methods produce) gets a leading single quote ``'`` in CSV, and is written to
Excel as a plain string cell (never a formula) with Excel's "quote prefix"
style, so that it stays text even after the cell is edited. Numbers are never
touched, negative numbers included. GeoJSON and GeoPackage carry the text as
it is (GIS software does not evaluate it).

Every file is written to a temporary name beside the target and renamed into
place, so a reader never sees half a file.

References
----------
.. [1] OWASP. CSV Injection. https://owasp.org/www-community/attacks/CSV_Injection
.. [2] Butler, H. et al. (2016). The GeoJSON Format. IETF RFC 7946.
.. [3] Microsoft. Excel specifications and limits (sheet names: 31 characters,
   none of ``[ ] : * ? / \\``).
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .. import columns as registry
from ..errors import InputFileError, PVSurveyError
from .writers import atomic_write

FORMATS = ("csv", "xlsx", "geojson", "gpkg", "fgb", "parquet")
_SUFFIXES = {".csv": "csv", ".xlsx": "xlsx", ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg",
             ".fgb": "fgb", ".parquet": "parquet", ".geoparquet": "parquet"}
LANGS = ("zh", "en")

# First characters that make a spreadsheet read a cell as a formula (OWASP), with
# the full-width forms of = + - @ as a precaution for CJK input.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_FORMULA_RE = "[" + re.escape("".join(FORMULA_PREFIXES)) + "]"
# Needs a quote on export: a formula prefix, possibly behind quotes (so that a
# value that itself starts with "'=" survives the round trip: it is written "''=").
_NEEDS_QUOTE = re.compile(f"'*{_FORMULA_RE}")
_QUOTED = re.compile(f"'+{_FORMULA_RE}")
# Characters XML 1.0 (hence xlsx) cannot hold; openpyxl raises on them.
_ILLEGAL_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
# Sheet names: at most 31 characters, none of these, no quote at either end.
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
SHEET_NAME_MAX = 31
# ISO dates and times as pandas writes them to CSV; read back as datetimes.
_ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
# Shown for ±inf (e.g. the payback of a project that never pays back) in Excel,
# which has no infinite numbers; read back as ±inf.
INF_TEXT = "∞"

# Columns that hold text even when every value looks like a number (ids, names).
TEXT_COLUMNS = frozenset({
    "building_id", "park_id", "park_name", "district", "name", "owner", "roof_material",
    "roof_shape", "weather_cell", "reason", "message", "source_file",
})

# Number format by unit (display only: cells keep full precision); the unit is
# appended to the format, so a cell shows e.g. "1,234.5 kWp" and stays a number.
NUMBER_FORMATS = {
    "m": "0.0", "m²": "#,##0", "°": "0", "kWp": "#,##0.0", "MW": "#,##0.00",
    "kWh/yr": "#,##0", "kWh/m²/yr": "#,##0", "kWh/kWp/yr": "#,##0",
    "tCO₂/yr": "#,##0.0", "tce/yr": "#,##0.0", "CNY": "#,##0", "CNY/yr": "#,##0",
    "yr": "0.0", "CNY/kWh": "0.000",
}
_SHEET_TEXT = {
    "zh": {"main": "清单", "explain": "字段说明",
           "explain_header": ["表头", "字段名", "单位", "说明"], "unregistered": "（未登记的字段）"},
    "en": {"main": "List", "explain": "Columns",
           "explain_header": ["Header", "Column", "Unit", "Description"], "unregistered": "(not in the column registry)"},
}


class ExportError(PVSurveyError, ValueError):
    """A table cannot be exported as asked (format, language, geometry, CRS)."""


# --------------------------------------------------------------------------- names


def export_format(path, fmt: str | None = None) -> str:
    """The export format: ``fmt`` if given, else from the file suffix.

    Parameters
    ----------
    path : str or Path
    fmt : {'csv', 'xlsx', 'geojson', 'gpkg'}, optional

    Returns
    -------
    str
    """
    path = Path(path)
    fmt = (fmt or _SUFFIXES.get(path.suffix.lower(), "")).lower()
    if fmt not in FORMATS:
        raise ExportError(f"{path}: unknown export format {(fmt or path.suffix)!r}; "
                          f"use one of {', '.join(FORMATS)} (or that file suffix)")
    return fmt


def header_labels(names, lang: str | None = "zh") -> list[str]:
    """Headers for columns: registry labels with units; canonical names for ``lang=None``.

    Unregistered columns keep their names. Where two columns would get the same
    label, the later one keeps its canonical name, so headers stay unique and
    map back to exactly one column.

    Parameters
    ----------
    names : iterable of str
        Canonical column names.
    lang : {'zh', 'en'} or None

    Returns
    -------
    list of str
    """
    names = [str(n) for n in names]
    if lang is None:
        return names
    if lang not in LANGS:
        raise ExportError(f"unknown language {lang!r}; use 'zh' or 'en'")
    out, seen = [], set(names)
    for name in names:
        text = registry.label(name, lang)
        if text != name and text in seen:
            text = name
        seen.add(text)
        out.append(text)
    return out


def _key(text) -> str:
    # NFKC folds full-width brackets typed on Chinese desktops ("（kWp）"); blanks dropped.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text)))


def canonical_names(headers, columns=None) -> list[str]:
    """Map exported headers back to canonical column names.

    Accepts canonical names and the zh and en labels, with or without unit
    (blanks ignored, full-width forms folded, case kept). A label shared by two
    registered columns maps to the one in ``columns``, else to the one
    registered first. Unknown headers come back unchanged (a quote prefix
    added on export removed).

    Parameters
    ----------
    headers : iterable of str
    columns : iterable of str, optional
        Canonical names the table is expected to have; their labels win.

    Returns
    -------
    list of str
    """
    preferred = [n for n in (columns or ()) if n in registry.COLUMNS]
    order = preferred + [n for n in registry.COLUMNS if n not in set(preferred)]
    labels: dict[str, str] = {}
    for name in order:
        for lang in LANGS:
            for with_unit in (True, False):
                labels.setdefault(_key(registry.label(name, lang, with_unit)), name)
    out = []
    for header in map(_unquote, map(str, headers)):
        key = _key(header)
        out.append(key if key in registry.COLUMNS else labels.get(key, header))
    return out


def safe_sheet_name(name, taken=()) -> str:
    """A valid, unique Excel sheet name made from any text.

    Replaces ``[ ] : * ? / \\`` with ``_``, strips quotes at either end, cuts to
    31 characters and, if the name (case-insensitively) is in ``taken``,
    appends ``~2``, ``~3``, …

    Parameters
    ----------
    name : str
        Wanted name (e.g. a park name).
    taken : iterable of str
        Names already used in the workbook.

    Returns
    -------
    str
    """
    base = _SHEET_BAD.sub("_", str(name)).strip().strip("'") or "Sheet"
    base = base[:SHEET_NAME_MAX]
    used = {t.casefold() for t in taken}
    candidate, n = base, 1
    while candidate.casefold() in used or candidate.casefold() == "history":
        n += 1
        suffix = f"~{n}"
        candidate = base[:SHEET_NAME_MAX - len(suffix)] + suffix
    return candidate


# --------------------------------------------------------------------------- cells


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, pd.StringDtype)


def _quote(s: pd.Series) -> pd.Series:
    """CSV: prefix text that a spreadsheet would take for a formula with a quote."""
    hit = s.str.match(_NEEDS_QUOTE).fillna(False).astype(bool)
    if not hit.any():
        return s
    s = s.astype(object)
    s[hit] = "'" + s[hit].astype(str)
    return s


def _unquote(text):
    return text[1:] if isinstance(text, str) and _QUOTED.match(text) else text


def _plain_table(df: pd.DataFrame, lang: str | None) -> tuple[list[str], pd.DataFrame]:
    """Canonical names and the table without geometry, categories as text, object
    columns of dates or booleans typed, columns renamed to headers."""
    keep = [i for i in range(df.shape[1]) if not isinstance(df.dtypes.iloc[i], gpd.array.GeometryDtype)]
    out = pd.DataFrame(df.iloc[:, keep])
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            out.isetitem(i, s.astype(object))
        elif s.dtype == object:
            kind = pd.api.types.infer_dtype(s, skipna=True)
            if kind in ("date", "datetime"):
                out.isetitem(i, pd.to_datetime(s))
            elif kind == "boolean":
                out.isetitem(i, s.astype("boolean"))
    names = [str(c) for c in out.columns]
    out.columns = header_labels(names, lang)
    return names, out


# --------------------------------------------------------------------------- writers


def _write_csv(df: pd.DataFrame, path: Path, lang) -> None:
    _, table = _plain_table(df, lang)
    for i in range(table.shape[1]):
        if _is_text(table.iloc[:, i]):
            table.isetitem(i, _quote(table.iloc[:, i]))
        elif pd.api.types.is_float_dtype(table.iloc[:, i]):
            table.isetitem(i, _float_text(table.iloc[:, i]))
    table.columns = _quote(pd.Series(table.columns, dtype=object)).tolist()
    # CRLF rows (RFC 4180): the csv module then also quotes text holding a lone CR,
    # which would otherwise split the row in Excel and in pandas.
    table.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def _float_text(values: pd.Series) -> pd.Series:
    """Numbers as CSV text: 12 significant digits, empty where missing. Formatted
    here in one pass; pandas' own float_format costs five times as much per value
    (most of writing a 20,000-row list)."""
    array = values.to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(["%.12g" % v if v == v else "" for v in array.tolist()], index=values.index, dtype=object)


def _number_format(name: str, s: pd.Series) -> str:
    unit = registry.unit(name)
    if unit in NUMBER_FORMATS:
        return f'{NUMBER_FORMATS[unit]}" {unit}"'
    if name.endswith("_frac") and not unit:
        return "0.0%"
    if pd.api.types.is_integer_dtype(s):
        base = "#,##0" if name.endswith("count") else "0"
    else:
        base = "#,##0.00"
    return f'{base}" {unit}"' if unit else base


def _display_width(values: pd.Series) -> int:
    """Approximate column width in Excel units (CJK characters count double)."""
    text = values.astype(str)
    if text.empty:
        return 0
    return int((text.str.len() + text.str.count(r"[\u2e80-\uffff]")).max())


def _xlsx_columns(ws, table: pd.DataFrame, names: list[str]):
    """Cell values column by column: numbers as number cells with their format,
    text as plain strings, formula-like text as string cells; and column widths."""
    from openpyxl.cell.cell import WriteOnlyCell

    def text_cell(value):
        cell = WriteOnlyCell(ws, value)
        cell.data_type = "s"       # a string, never a formula
        cell.quotePrefix = True    # and Excel keeps it text when the cell is edited
        return cell

    def number_cell(value, fmt):
        cell = WriteOnlyCell(ws, value)
        cell.number_format = fmt
        return cell

    out, widths = [], []
    for i, name in enumerate(names):
        s = table.iloc[:, i]
        width = max(_display_width(pd.Series([table.columns[i]])), 8) + 2
        present = s.notna().to_numpy()
        if pd.api.types.is_bool_dtype(s):
            values = [bool(v) if ok else None for v, ok in zip(s.tolist(), present)]
        elif pd.api.types.is_numeric_dtype(s):
            fmt = _number_format(name, s)
            arr = s.to_numpy(dtype="float64", na_value=np.nan)
            finite = np.isfinite(arr)
            raw = s.to_numpy().tolist() if pd.api.types.is_integer_dtype(s) and present.all() else arr.tolist()
            inf = {np.inf: INF_TEXT, -np.inf: "-" + INF_TEXT}
            values = [number_cell(v, fmt) if ok else (text_cell(inf[v]) if v in inf else None)
                      for v, ok in zip(raw, finite)]
            width = max(width, 14)
        elif pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_localize(None)   # Excel has no time zones: local time as given
            fmt = "yyyy-mm-dd" if (s[present] == s[present].dt.normalize()).all() else "yyyy-mm-dd hh:mm"
            values = [number_cell(v, fmt) if ok else None for v, ok in zip(s.dt.to_pydatetime(), present)]
            width = max(width, len(fmt) + 2)
        else:
            text = s.astype(object).where(present, None)
            # XML parsers read a CR as a line feed: write line breaks as LF (Excel's own).
            text[present] = (text[present].astype(str).str.replace(_ILLEGAL_XML, "", regex=True)
                             .str.replace("\r\n?", "\n", regex=True))
            values = text.tolist()
            for j in np.flatnonzero(text.str.match(_NEEDS_QUOTE).fillna(False).astype(bool).to_numpy()):
                values[j] = text_cell(values[j])
            width = max(width, _display_width(text[present]) + 2)
        out.append(values)
        widths.append(min(width, 60))
    return out, widths


def _write_sheet(wb, title: str, df: pd.DataFrame, lang, autofilter: bool) -> list[str]:
    from openpyxl.cell.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title)
    names, table = _plain_table(df, lang)
    cols, widths = _xlsx_columns(ws, table, names)
    for i, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    if autofilter and names:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(names))}{len(table) + 1}"
    font, fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="1F4E78")
    align, border = Alignment(wrap_text=True, vertical="center"), Border(bottom=Side(style="thin"))
    header = []
    for text in table.columns:
        cell = WriteOnlyCell(ws, str(text))
        cell.data_type = "s"                                  # headers from input data too
        cell.quotePrefix = bool(_NEEDS_QUOTE.match(str(text)))
        cell.font, cell.fill, cell.alignment, cell.border = font, fill, align, border
        header.append(cell)
    ws.append(header)
    for row in zip(*cols):
        ws.append(row)
    return names


def _write_xlsx(df, path: Path, lang, sheets, sheet_name, explain: bool) -> None:
    from openpyxl import Workbook

    texts = _SHEET_TEXT[lang or "en"]
    wb = Workbook(write_only=True)
    taken: list[str] = []
    main = safe_sheet_name(sheet_name or texts["main"], taken)
    taken.append(main)
    seen = dict.fromkeys(_write_sheet(wb, main, df, lang, autofilter=True))
    for name, extra in (sheets or {}).items():
        title = safe_sheet_name(name, taken + ([texts["explain"]] if explain else []))
        taken.append(title)
        seen.update(dict.fromkeys(_write_sheet(wb, title, extra, lang, autofilter=False)))
    if explain:
        names = list(seen)
        rows = pd.DataFrame({
            "header": header_labels(names, lang),
            "name": names,
            "unit": [registry.unit(n) for n in names],
            "description": [registry.COLUMNS[n].description if n in registry.COLUMNS
                            else texts["unregistered"] for n in names],
        })
        rows.columns = texts["explain_header"]
        _write_sheet(wb, safe_sheet_name(texts["explain"], taken), rows, None, autofilter=False)
    wb.save(path)


def _write_gis(df, path: Path, fmt: str, lang, layer: str | None) -> None:
    if not isinstance(df, gpd.GeoDataFrame) or df.active_geometry_name is None:
        raise ExportError(f"{path}: {fmt} needs a GeoDataFrame with geometry; "
                          "export a table without geometry as csv or xlsx")
    if df.crs is None:
        raise ExportError(f"{path}: the table has no CRS; set it (gdf.set_crs) before exporting {fmt}")
    gdf = df.to_crs(4326) if not df.crs.equals("EPSG:4326") else df
    geom = gdf.geometry.name
    attrs = [c for c in gdf.columns if c != geom]
    gdf = gdf.rename(columns=dict(zip(attrs, header_labels(attrs, lang))))
    if geom != "geometry":
        gdf = gdf.rename_geometry("geometry")
    if fmt == "geojson":   # JSON has no infinity (RFC 8259): ±inf is written as null
        for i in np.flatnonzero([pd.api.types.is_float_dtype(t) for t in gdf.dtypes]):
            gdf.isetitem(int(i), gdf.iloc[:, i].replace([np.inf, -np.inf], np.nan))
        gdf.to_file(path, driver="GeoJSON", engine="pyogrio", layer_options={"RFC7946": "YES"})
    elif fmt == "parquet":  # one GeoParquet file (GDAL's Parquet driver and QGIS open it)
        gdf.to_parquet(path, compression="zstd", write_covering_bbox=True)
    else:
        gdf.to_file(path, driver={"gpkg": "GPKG", "fgb": "FlatGeobuf"}[fmt], engine="pyogrio",
                    layer=layer if fmt == "gpkg" else None)


def export_table(df: pd.DataFrame, path, fmt: str | None = None, *, lang: str | None = "zh",
                 sheets: Mapping[str, pd.DataFrame] | None = None,
                 sheet_name: str | None = None, explain: bool = True) -> Path:
    """Write a table for people (CSV, Excel) or GIS (GeoJSON, GeoPackage), safely.

    Parameters
    ----------
    df : DataFrame or GeoDataFrame
        The table, with canonical column names (``pvsurvey.columns``). CSV and
        XLSX drop the geometry; GeoJSON and GeoPackage need it and a CRS.
    path : str or Path
        Output file; its folder is created. Written under a temporary name and
        renamed into place.
    fmt : {'csv', 'xlsx', 'geojson', 'gpkg', 'fgb', 'parquet'}, optional
        Default: from the suffix of ``path`` (.csv, .xlsx, .geojson/.json, .gpkg, .fgb,
        .parquet/.geoparquet).
    lang : {'zh', 'en'} or None
        Header language: registry labels with units (``'可装机容量 (kWp)'``);
        None keeps the canonical names (``capacity_kwp``).
    sheets : mapping of str to DataFrame, optional
        XLSX only: extra sheets after the main one, e.g. one summary per park
        (``{park_name: summary_df}``). Names are made valid and unique
        (:func:`safe_sheet_name`).
    sheet_name : str, optional
        XLSX: name of the main sheet (default '清单' / 'List'); GPKG: layer
        name (default: the file name's stem).
    explain : bool
        XLSX: add a last sheet listing every column of every sheet with its
        header, canonical name, unit and description ('字段说明' / 'Columns').

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ExportError
        Unknown format or language, ``sheets`` with a format other than xlsx,
        GeoJSON/GPKG without geometry or CRS.

    Notes
    -----
    - CSV: UTF-8 with a byte-order mark (Excel on a Chinese Windows desktop then
      reads it as UTF-8), floats with 12 significant digits, ``inf`` for ±inf,
      formula-like text quote-prefixed (see the module docstring).
    - XLSX: one sheet per table, bold header row frozen (pane at A2) with an
      auto-filter on the main sheet, number formats by unit
      (:data:`NUMBER_FORMATS`, the unit shown in the cell), fractions as
      percentages, ±inf as the text '∞', formula-like text as string cells.
    - GeoJSON: RFC 7946 (WGS84 lon/lat, no ``crs`` member); GeoPackage,
      FlatGeobuf and GeoParquet (one file, zstd, bbox covering column) in
      EPSG:4326 as well.
    """
    path = Path(path)
    fmt = export_format(path, fmt)
    if lang is not None and lang not in LANGS:
        raise ExportError(f"{path}: unknown language {lang!r}; use 'zh' or 'en'")
    if sheets and fmt != "xlsx":
        raise ExportError(f"{path}: extra sheets need the xlsx format; write them as separate files")
    if fmt == "csv":
        return atomic_write(path, lambda tmp: _write_csv(df, tmp, lang))
    if fmt == "xlsx":
        return atomic_write(path, lambda tmp: _write_xlsx(df, tmp, lang, sheets, sheet_name, explain))
    layer = re.sub(r"\W+", "_", sheet_name or path.stem).strip("_") or "table"
    return atomic_write(path, lambda tmp: _write_gis(df, tmp, fmt, lang, layer))


# --------------------------------------------------------------------------- reader


def _read_csv(path: Path) -> pd.DataFrame:
    opts = dict(dtype=str, keep_default_na=False, na_values=[""])
    try:
        return pd.read_csv(path, encoding="utf-8-sig", **opts)
    except UnicodeDecodeError:
        # Excel's plain "CSV" on a Chinese Windows desktop saves in the ANSI code page (GBK).
        return pd.read_csv(path, encoding="gb18030", **opts)


def _restore(s: pd.Series, name: str, from_csv: bool) -> pd.Series:
    """Types back: ids and names stay text. CSV cells are all text: columns of
    numbers become numbers ('inf' included), of ISO dates datetimes, of
    true/false booleans. XLSX cells carry their types: only '∞' needs mapping."""
    if not _is_text(s):
        return s
    if from_csv:
        s = s.map(_unquote, na_action="ignore")
    present = s.notna()
    if name in TEXT_COLUMNS or name.endswith("_id"):
        return s.where(~present, s.astype(str))   # an id typed as 123 in Excel is "123"
    if not present.any():
        return s
    if not from_csv:
        numbers = s.replace({INF_TEXT: np.inf, "-" + INF_TEXT: -np.inf})
        if pd.api.types.infer_dtype(numbers, skipna=True) in ("integer", "floating", "mixed-integer-float"):
            return pd.to_numeric(numbers)
        return s.infer_objects()
    words = s[present].astype(str).str.strip()
    numbers = pd.to_numeric(words, errors="coerce")
    if numbers.notna().all():
        return numbers.reindex(s.index)
    if words.str.fullmatch(_ISO_DATE).all():
        return pd.to_datetime(s, format="ISO8601")
    if words.str.lower().isin(["true", "false"]).all():
        flags = (words.str.lower() == "true").reindex(s.index)
        return flags.astype(bool) if present.all() else flags.astype("boolean")
    return s


def _recorded_names(book: pd.ExcelFile) -> dict[str, str]:
    """Header → canonical name as the explanation sheet of an exported workbook records it."""
    for texts in _SHEET_TEXT.values():
        if texts["explain"] in book.sheet_names:
            header, name = texts["explain_header"][:2]
            ex = pd.read_excel(book, sheet_name=texts["explain"], dtype=str)
            if header in ex and name in ex:
                return {_key(h): n for h, n in zip(ex[header], ex[name]) if isinstance(n, str)}
    return {}


def read_table(path, *, sheet: str | int = 0, columns=None,
               dtype: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Read back a table written by :func:`export_table`, possibly edited by people.

    Headers in Chinese, English or canonical form become canonical column
    names (:func:`canonical_names`); the CSV quote prefix is removed again;
    text columns of numbers become numbers ('∞'/'inf' as inf), of TRUE/FALSE
    booleans; ids and names (:data:`TEXT_COLUMNS`, ``*_id``) stay text.

    Parameters
    ----------
    path : str or Path
        .csv (UTF-8 with or without BOM, or GB18030 as Excel saves a plain
        "CSV" on a Chinese desktop), .xlsx, .geojson/.json or .gpkg.
    sheet : str or int
        XLSX: the sheet (name or 0-based position; default the first). GPKG: the
        layer (name or position).
    columns : iterable of str, optional
        Canonical names the table should have: where a header is the label of
        several registered columns, these win (see :func:`canonical_names`). An
        exported workbook's explanation sheet, when still there, records the
        exact header → name mapping and wins over both.
    dtype : mapping of str to dtype, optional
        Types to force, by canonical column name (applied last, with ``astype``).

    Returns
    -------
    DataFrame or GeoDataFrame
        GeoDataFrame for GeoJSON and GeoPackage.

    Raises
    ------
    InputFileError
        Missing or unreadable file, unknown suffix, missing sheet.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file; give the path of an exported .csv or .xlsx")
    fmt = _SUFFIXES.get(path.suffix.lower())
    recorded: dict[str, str] = {}
    if fmt is None:
        raise InputFileError(f"{path}: unknown table format {path.suffix!r}; use .csv, .xlsx, .geojson or .gpkg")
    try:
        if fmt == "csv":
            df = _read_csv(path)
        elif fmt == "xlsx":
            with pd.ExcelFile(path, engine="openpyxl") as book:
                df = pd.read_excel(book, sheet_name=sheet, dtype=object, keep_default_na=False, na_values=[""])
                recorded = _recorded_names(book)
        else:
            layer = {"layer": sheet} if fmt == "gpkg" and sheet != 0 else {}
            df = gpd.read_file(path, engine="pyogrio", **layer)
    except (ValueError, IndexError, KeyError, OSError, zipfile.BadZipFile) as err:
        hint = ("name an existing sheet or layer" if "not found" in str(err) or isinstance(err, (IndexError, KeyError))
                else "save it again from Excel as .xlsx or as CSV UTF-8")
        raise InputFileError(f"{path}: cannot read it as {fmt} ({err}); {hint}") from None
    geom = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    attrs = [c for c in df.columns if c != geom]
    names = [recorded.get(_key(h), n) for h, n in zip(attrs, canonical_names(attrs, columns))]
    df = df.rename(columns=dict(zip(attrs, names)))
    for i, name in enumerate(df.columns):
        if name != geom:
            df.isetitem(i, _restore(df.iloc[:, i], str(name), from_csv=fmt == "csv"))
    if dtype:
        df = df.astype(dict(dtype))
    return df
