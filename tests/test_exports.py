"""Exports for park managers: BOM CSV, styled XLSX, GeoJSON / GPKG, inert formulas,
and the edit-and-reimport round trip."""

from __future__ import annotations

import json
import math
import re
import zipfile

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest

from pvsurvey import columns
from pvsurvey.errors import InputFileError, PVSurveyError
from pvsurvey.io.exports import (ExportError, canonical_names, export_table, header_labels, read_table, safe_sheet_name)

HOSTILE = '=HYPERLINK("http://x","y")'


@pytest.fixture
def table(roofs) -> gpd.GeoDataFrame:
    """Three candidate roofs in UTM 51N; roof B carries a hostile name, roof C a negative height."""
    gdf = roofs.rename(columns={"id": "building_id", "height": "height_m"}).drop(columns="roof:shape")
    gdf["park_name"] = ["张江高科技园区", "漕河泾新兴技术开发区", "张江高科技园区"]
    gdf["owner"] = ["@某某公司", "+86 21 5555", "-"]
    gdf["capacity_kwp"] = [682.5, 171.1, 12.3]
    gdf["building_count"] = np.array([1, 2, 3], dtype="int64")
    gdf["coverage_frac"] = [0.68, 0.9, 0.68]
    gdf["simple_payback_yr"] = [4.45, 5.1, np.inf]
    gdf["notes"] = ["", "\t制表符开头", "\r回车开头"]
    return gdf


def _plain(gdf) -> pd.DataFrame:
    return pd.DataFrame(gdf.drop(columns="geometry"))


def _assert_same_values(back: pd.DataFrame, expect: pd.DataFrame):
    assert list(back.columns) == list(expect.columns)
    for name in expect.columns:
        a, b = back[name].tolist(), expect[name].tolist()
        if pd.api.types.is_numeric_dtype(expect[name]):
            assert pd.api.types.is_numeric_dtype(back[name]), name
            np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-12, err_msg=name)
        else:
            assert [None if pd.isna(v) else v for v in a] == [None if (v is None or v == "") else v for v in b], name


def test_csv_bom_chinese_and_inert_formulas(table, tmp_path):
    path = export_table(table, tmp_path / "candidates.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    header = text.splitlines()[0].split(",")
    assert header[:3] == ["建筑编号", "名称", "建筑高度 (m)"]
    assert "可装机容量 (kWp)" in header and "geometry" not in header
    # every formula-like text cell starts with a quote; numbers stay numbers
    assert '"\'=HYPERLINK(""http://x"",""y"")"' in text
    assert ",'@某某公司," in text and ",'+86 21 5555," in text and ",'-," in text
    assert "'\t制表符开头" in text and "'\r回车开头" in text
    rows = list(pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False).itertuples(index=False))
    assert rows[2][2] == "-1"                 # height_m: the negative number is not quoted
    for row in rows:                          # no cell a spreadsheet would run
        assert not any(cell[:1] and cell[:1] in "=+-@\t\r" and cell != "-1" for cell in row)
    assert "张江高科技园区" in text           # Chinese intact through the BOM


def test_xlsx_cells_formats_and_sheets(table, tmp_path):
    summary = pd.DataFrame({"park_name": ["张江高科技园区"], "capacity_kwp": [694.8], "=evil": ["=1+1"]})
    long_name = "漕河泾新兴技术开发区/一期:[北区]*?汇总表-超过三十一个字符的名称"
    path = export_table(table, tmp_path / "candidates.xlsx", sheets={long_name: summary, "汇总": summary})
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[0] == "清单" and wb.sheetnames[-1] == "字段说明"
    for title in wb.sheetnames:
        assert len(title) <= 31 and not re.search(r"[\[\]:*?/\\]", title)
    assert len(wb.sheetnames) == 4
    ws = wb["清单"]
    assert ws.freeze_panes == "A2"
    headers = [c.value for c in ws[1]]
    assert headers == header_labels([c for c in table.columns if c != "geometry"], "zh")
    assert ws[1][0].font.b
    col = {name: i for i, name in enumerate(c for c in table.columns if c != "geometry")}
    row_b, row_c = ws[3], ws[4]
    # the hostile name: a string cell holding the literal text, no formula anywhere
    cell = row_b[col["name"]]
    assert cell.data_type == "s" and cell.value == HOSTILE and cell.quotePrefix
    assert row_b[col["owner"]].value == "+86 21 5555" and row_b[col["owner"]].data_type == "s"
    assert all(c.data_type != "f" for sheet in wb for r in sheet.iter_rows() for c in r)
    with zipfile.ZipFile(path) as z:       # nor a formula element in any sheet's XML
        assert not any(b"<f>" in z.read(n) or b"<f " in z.read(n)
                       for n in z.namelist() if n.startswith("xl/worksheets/"))
    # numbers are numeric cells with the unit's number format, negative numbers included
    cap = row_b[col["capacity_kwp"]]
    assert cap.data_type == "n" and cap.value == pytest.approx(171.1)
    assert cap.number_format == '#,##0.0" kWp"'
    height = row_c[col["height_m"]]
    assert height.data_type == "n" and height.value == -1 and height.number_format == '0.0" m"'
    assert row_b[col["coverage_frac"]].number_format == "0.0%"
    assert row_b[col["building_count"]].number_format == "#,##0"
    assert row_c[col["simple_payback_yr"]].value == "∞"
    # a second, independent reader
    frame = pd.read_excel(path, sheet_name="清单", engine="openpyxl")
    assert frame.loc[1, "名称"] == HOSTILE
    assert frame["可装机容量 (kWp)"].dtype == float and frame.loc[2, "建筑高度 (m)"] == -1
    # the extra sheets: hostile header and text inert there too
    extra = wb[wb.sheetnames[1]]
    assert extra.freeze_panes == "A2" and extra["C1"].value == "=evil" and extra["C2"].data_type == "s"
    # the explanation sheet lists every column of every sheet
    explain = pd.read_excel(path, sheet_name="字段说明", engine="openpyxl")
    assert list(explain.columns) == ["表头", "字段名", "单位", "说明"]
    every = [c for c in table.columns if c != "geometry"] + ["=evil"]
    assert explain["字段名"].tolist() == every
    row = explain.set_index("字段名").loc["capacity_kwp"]
    assert row["单位"] == "kWp" and row["说明"] == columns.COLUMNS["capacity_kwp"].description
    assert row["表头"] == "可装机容量 (kWp)"


def test_english_and_canonical_headers(table, tmp_path):
    en = read_table(export_table(table, tmp_path / "en.csv", lang="en"))
    raw = (tmp_path / "en.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert raw.startswith("Building ID,Name,Height (m)")
    plain = export_table(table, tmp_path / "plain.csv", lang=None)
    assert plain.read_text(encoding="utf-8-sig").startswith("building_id,name,height_m")
    assert list(en.columns) == list(_plain(table).columns)
    assert canonical_names(["可装机容量 (kWp)", " 可装机容量（kWp） ", "Usable roof area", "capacity_kwp", "自定义"]) == \
        ["capacity_kwp", "capacity_kwp", "usable_area_m2", "capacity_kwp", "自定义"]


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_gis_exports_wgs84(table, tmp_path, fmt):
    path = export_table(table, tmp_path / f"candidates.{fmt}", lang="en")
    back = gpd.read_file(path)
    assert len(back) == len(table) and back.crs.to_epsg() == 4326
    assert back["Name"].tolist() == table["name"].tolist()
    expect = table.to_crs(4326).geometry
    assert back.geometry.geom_equals_exact(expect.reset_index(drop=True), tolerance=1e-6).all()
    again = read_table(path)
    assert isinstance(again, gpd.GeoDataFrame) and "capacity_kwp" in again
    if fmt == "geojson":
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert "crs" not in doc                      # RFC 7946: WGS84 is implied
        lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0]
        assert 121 < lon < 122 and 31 < lat < 32


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_round_trip_keeps_values(table, tmp_path, fmt):
    path = export_table(table, tmp_path / f"candidates.{fmt}")
    back = read_table(path)
    expect = _plain(table)
    if fmt == "xlsx":   # XML has no lone CR: line breaks in xlsx text are LF, as Excel writes them
        expect["notes"] = expect["notes"].str.replace("\r", "\n")
    _assert_same_values(back, expect)
    assert back["building_count"].dtype == "int64" and back["building_id"].tolist() == ["A", "B", "C"]
    assert math.isinf(back.loc[2, "simple_payback_yr"])


def test_edit_in_excel_and_reimport(table, tmp_path):
    table = table.assign(status="identified")
    path = export_table(table, tmp_path / "candidates.xlsx")
    # the park manager edits a status, adds a note, and saves the workbook
    wb = openpyxl.load_workbook(path)
    ws = wb["清单"]
    status_col = [c.value for c in ws[1]].index(columns.label("status", "zh")) + 1
    ws.cell(row=3, column=status_col, value="contacted")
    ws.cell(row=3, column=status_col + 1, value="已电话联系")
    ws.cell(row=1, column=status_col + 1, value="联系人")
    wb.save(path)
    back = read_table(path)
    assert back["status"].tolist() == ["identified", "contacted", "identified"]
    assert back.loc[1, "联系人"] == "已电话联系"
    assert back.loc[1, "name"] == HOSTILE
    expect = _plain(table).drop(columns=["status", "notes"])
    _assert_same_values(back[list(expect.columns)], expect)


def test_edit_csv_saved_by_excel_as_gbk(table, tmp_path):
    path = export_table(table.assign(status="identified"), tmp_path / "candidates.csv")
    text = path.read_text(encoding="utf-8-sig").replace("identified", "agreed", 1)
    path.write_bytes(text.encode("gb18030"))    # Excel's plain "CSV" on a Chinese desktop
    back = read_table(path)
    assert back["status"].tolist() == ["agreed", "identified", "identified"]
    assert back["park_name"].tolist() == table["park_name"].tolist()
    assert back.loc[1, "name"] == HOSTILE and back.loc[0, "owner"] == "@某某公司"


def test_quote_prefix_round_trips_values_that_start_with_a_quote(tmp_path):
    df = pd.DataFrame({"name": ["'=x", "'plain", "=x", "''+y"], "capacity_kwp": [-1.0, 0.0, 1.0, 2.0]})
    csv = export_table(df, tmp_path / "q.csv", lang=None).read_text(encoding="utf-8-sig")
    assert csv.splitlines()[1:] == ["''=x,-1", "'plain,0", "'=x,1", "'''+y,2"]
    for fmt in ("csv", "xlsx"):
        back = read_table(export_table(df, tmp_path / f"q.{fmt}"))
        assert back["name"].tolist() == df["name"].tolist()
        assert back["capacity_kwp"].tolist() == [-1.0, 0.0, 1.0, 2.0]


def test_sheet_names():
    assert safe_sheet_name("a/b\\c:d*e?f[g]h") == "a_b_c_d_e_f_g_h"
    assert len(safe_sheet_name("长" * 40)) == 31
    assert safe_sheet_name("汇总", taken=["汇总"]) == "汇总~2"
    assert safe_sheet_name("'quoted'") == "quoted" and safe_sheet_name("") == "Sheet"
    assert safe_sheet_name("History") == "History~2"


def test_errors_name_the_file_and_the_fix(table, tmp_path):
    with pytest.raises(ExportError, match=r"x\.txt: unknown export format") as err:
        export_table(table, tmp_path / "x.txt")
    assert isinstance(err.value, ValueError) and isinstance(err.value, PVSurveyError)
    with pytest.raises(ExportError, match="no CRS"):
        export_table(table.set_crs(None, allow_override=True), tmp_path / "x.geojson")
    with pytest.raises(ExportError, match="needs a GeoDataFrame"):
        export_table(_plain(table), tmp_path / "x.gpkg")
    with pytest.raises(ExportError, match="xlsx"):
        export_table(table, tmp_path / "x.csv", sheets={"a": _plain(table)})
    with pytest.raises(ExportError, match="'fr'"):
        export_table(table, tmp_path / "x.csv", lang="fr")
    with pytest.raises(InputFileError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "bad.xlsx").write_text("not a zip")
    with pytest.raises(InputFileError, match="bad.xlsx"):
        read_table(tmp_path / "bad.xlsx")
    export_table(table, tmp_path / "ok.xlsx")
    with pytest.raises(InputFileError, match="sheet"):
        read_table(tmp_path / "ok.xlsx", sheet="nope")
    assert not list(tmp_path.glob(".*tmp*"))      # no temporary file left behind


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_dates_booleans_and_missing_values_round_trip(tmp_path, fmt):
    import datetime as dt
    df = pd.DataFrame({
        "project_id": ["001", "002", "003"],                  # ids stay text, zeros kept
        "status_date": [dt.date(2024, 6, 30), None, dt.date(2025, 1, 2)],
        "has_pv": [True, None, False],
        "capacity_kwp": [60.0, np.nan, -0.0],
    })
    back = read_table(export_table(df, tmp_path / f"t.{fmt}"))
    assert back["project_id"].tolist() == ["001", "002", "003"]
    assert back["status_date"].dtype.kind == "M"
    assert back["status_date"].tolist()[0] == pd.Timestamp(2024, 6, 30) and pd.isna(back.loc[1, "status_date"])
    assert back["has_pv"].tolist()[::2] == [True, False] and pd.isna(back.loc[1, "has_pv"])
    assert back.loc[0, "capacity_kwp"] == 60.0 and np.isnan(back.loc[1, "capacity_kwp"])


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    from pvsurvey.io.writers import atomic_write, copy_atomic, write_text_atomic

    target = tmp_path / "sub" / "table.gpkg"
    seen = []
    atomic_write(target, lambda tmp: (seen.append(tmp), tmp.write_text("one")))
    # the temporary file sat beside the target, hidden, with the target's suffix (GDAL goes by it)
    assert seen[0].parent == target.parent and seen[0].name.startswith(".") and seen[0].suffix == ".gpkg"
    assert target.read_text() == "one"

    def fails(tmp):
        tmp.write_text("half")
        tmp.with_name(tmp.name + "-journal").write_text("")  # what SQLite may leave beside it
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails)
    assert target.read_text() == "one"  # untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.gpkg"]  # nothing left behind
    write_text_atomic(tmp_path / "a.txt", "二")
    copy_atomic(tmp_path / "a.txt", tmp_path / "b" / "b.txt")
    assert (tmp_path / "b" / "b.txt").read_text(encoding="utf-8") == "二"
