"""Park managers' round trip: export, edit in Excel, import, next run; safe exports; the plan CLI."""

import json

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import roofs_utm, write_ghi_raster
from pvsurvey.cli import commands
from pvsurvey.config.loading import config_from_dict
from pvsurvey.pipeline.run import run_survey

HOSTILE = '=HYPERLINK("http://x","y")'


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    roofs = roofs_utm()
    roofs["owner"] = [HOSTILE, "甲公司", "乙公司"]
    roofs.to_file(tmp / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp / "ghi.tif")
    cfg = config_from_dict({"name": "small", "footprints": "roofs.gpkg",
                            "irradiance": {"ghi": "ghi.tif"}, "economics": {"min_candidate_kwp": 10}}, tmp)
    return run_survey(cfg, tmp / "runs" / "small", serial=True), cfg


def invoke(*args):
    result = CliRunner().invoke(commands(), [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_the_out_file_names_the_format_and_a_conflict_is_one_line(small_run, tmp_path):
    """``--out list.csv`` without ``--format`` is a CSV (it was an xlsx named .csv); a
    suffix that is no format, or one --format contradicts, is one line and exit 2."""
    run, _ = small_run
    invoke("export", run.run_dir, "--out", tmp_path / "list.csv")
    assert (tmp_path / "list.csv").read_bytes()[:3] == b"\xef\xbb\xbf"  # UTF-8 text with BOM, not a zip
    assert len(pd.read_csv(tmp_path / "list.csv", encoding="utf-8-sig")) > 0
    invoke("export", run.run_dir, "--layer", "buildings", "--out", tmp_path / "b.parquet")
    assert len(gpd.read_parquet(tmp_path / "b.parquet")) == 3
    cases = (((tmp_path / "x.docx",),
              "--out {}: a file ending in .csv .xlsx .geojson .gpkg .fgb .parquet (the format it is written in)"),
             ((tmp_path / "y.csv", "--format", "xlsx"),
              "--out {} names a .csv file but --format is xlsx; give one of them, or both alike"))
    for args, message in cases:
        result = CliRunner().invoke(commands(), ["export", str(run.run_dir), "--out", *map(str, args)])
        assert result.exit_code == 2 and result.output.strip() == f"pvsurvey: error: {message.format(args[0])}"
        assert not args[0].exists()


def test_hostile_text_arrives_inert_in_csv_and_xlsx(small_run):
    run, _ = small_run
    invoke("export", run.run_dir, "--format", "csv")
    raw = (run.run_dir / "exports" / "candidates.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the UTF-8 byte-order mark Excel needs for Chinese
    text = raw.decode("utf-8-sig")
    assert "'" + HOSTILE.replace('"', '""') in text and "," + HOSTILE not in text
    invoke("export", run.run_dir, "--format", "xlsx")
    ws = openpyxl.load_workbook(run.run_dir / "exports" / "candidates.xlsx")["可建设项目清单"]
    cells = [c for row in ws.iter_rows() for c in row if c.value == HOSTILE]
    assert cells and all(c.data_type == "s" for c in cells)  # text, not a formula
    capacity_col = [c.value for c in ws[1]].index("可装机容量 (kWp)")
    assert all(isinstance(row[capacity_col].value, float) for row in ws.iter_rows(min_row=2))  # numbers stay numbers
    # the run's own list is as safe as the export
    assert "'" + HOSTILE.replace('"', '""') in (run.run_dir / "candidates.csv").read_text(encoding="utf-8-sig")


def test_candidate_lists_show_the_steps_behind_each_project(small_run, tmp_path):
    from pvsurvey.columns import WATERFALL_COLUMNS, WATERFALL_STEPS, label
    from pvsurvey.io.datasets import read_candidates

    run, _ = small_run
    surveyed = gpd.read_parquet(run.run_dir / "buildings.parquet").set_index("building_id")
    steps = ["footprint_area_m2", *WATERFALL_COLUMNS]
    zh = {c: label(c, "zh") for c in steps + ["capacity_kwp"]}
    assert zh["setback_loss_m2"] == "扣除：周边退让 (m²)" and zh["module_area_m2"] == "组件面积 (m²)"

    def check(table: pd.DataFrame, names: dict) -> None:
        # each project: footprint = the steps + module area; module area × 0.21 kWp/m² = capacity;
        # each step is its roofs' (one roof per project here: three owners)
        assert len(table) == 3
        total = sum(table[names[c]] for c in WATERFALL_COLUMNS)
        assert total.to_numpy() == pytest.approx(table[names["footprint_area_m2"]].to_numpy(), rel=1e-9)
        assert (table[names["module_area_m2"]] * 0.21).to_numpy() == pytest.approx(
            table[names["capacity_kwp"]].to_numpy(), rel=1e-9)
        ids = table[names["building_ids"]].astype(str)
        for c in steps:
            assert table[names[c]].to_numpy() == pytest.approx(surveyed.loc[ids, c].to_numpy(), rel=1e-9, abs=1e-9)
        assert (table[names["layout_loss_m2"]] > 0).all() and (table[names["setback_loss_m2"]] > 0).all()

    # the run's own list (zh headers) and candidates.parquet/
    city = pd.read_csv(run.run_dir / "candidates.csv", encoding="utf-8-sig")
    check(city, {**zh, "building_ids": "所含建筑编号"})
    columns = list(city.columns)  # footprint, the steps in order, module area, then capacity
    at = columns.index(zh["footprint_area_m2"])
    assert columns[at:at + 9] == [zh[c] for c in steps] and columns.index(zh["capacity_kwp"]) > at + 8
    check(pd.read_parquet(run.run_dir / "candidates.parquet"), {c: c for c in steps + ["capacity_kwp", "building_ids"]})
    # the Excel list, read back with openpyxl, and its column explanations
    invoke("export", run.run_dir, "--format", "xlsx")
    book = openpyxl.load_workbook(run.run_dir / "exports" / "candidates.xlsx")
    rows = list(book["可建设项目清单"].iter_rows(values_only=True))
    sheet = pd.DataFrame(rows[1:], columns=rows[0])
    check(sheet, {**zh, "building_ids": "所含建筑编号"})
    assert all(isinstance(v, (int, float)) for c in steps for v in sheet[zh[c]])  # numbers, not text
    explained = {row[1]: row for row in book["字段说明"].iter_rows(values_only=True)}
    assert explained["setback_loss_m2"] == ("扣除：周边退让 (m²)", "setback_loss_m2", "m²",
                                            "Waterfall: edge setback kept free of modules")
    # English headers
    invoke("export", run.run_dir, "--format", "csv", "--lang", "en", "--out", tmp_path / "en.csv")
    en = pd.read_csv(tmp_path / "en.csv", encoding="utf-8-sig")
    check(en, {**{c: label(c, "en") for c in steps + ["capacity_kwp"]}, "building_ids": "Building IDs"})
    assert "Less: shade from neighbours (m²)" in en.columns
    assert [label(c, "en", False) for c in WATERFALL_STEPS][0] == "Less: edge setback"
    # a run written before the projects carried their steps still reads (the steps empty)
    old = tmp_path / "old.parquet"
    read_candidates(run.run_dir / "candidates.parquet").drop(columns=steps).to_parquet(old)
    again = read_candidates(old)
    assert again[steps].isna().all().all() and len(again) == 3


def test_gis_exports_read_back(small_run):
    run, _ = small_run
    for fmt in ("geojson", "gpkg"):
        invoke("export", run.run_dir, "--format", fmt, "--lang", "en")
        back = gpd.read_file(run.run_dir / "exports" / f"candidates.{fmt}")
        assert back.crs.to_epsg() == 4326 and len(back) == 3


@pytest.mark.slow  # two survey runs each
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_edited_statuses_survive_import_and_the_next_run(tmp_path, fmt):
    roofs_utm().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif")
    cfg = config_from_dict({"name": "rt", "footprints": "roofs.gpkg", "irradiance": {"ghi": "ghi.tif"},
                            "economics": {"min_candidate_kwp": 10}}, tmp_path)
    run_dir = tmp_path / "runs" / "rt"
    run_survey(cfg, run_dir, serial=True)
    exported = tmp_path / f"list.{fmt}"
    invoke("export", run_dir, "--format", fmt, "--out", exported)
    # the park manager edits the status and notes columns in Excel
    if fmt == "csv":
        table = pd.read_csv(exported, encoding="utf-8-sig", dtype=str)
        table.loc[table["项目编号"] == "C-A", ["项目状态", "跟进备注"]] = ["已联系", "周一再打电话"]
        table.loc[table["项目编号"] == "C-C", "项目状态"] = "agreed"
        table.to_csv(exported, index=False, encoding="utf-8-sig")
    else:
        wb = openpyxl.load_workbook(exported)
        ws = wb["可建设项目清单"]
        header = [c.value for c in ws[1]]
        for row in ws.iter_rows(min_row=2):
            if row[header.index("项目编号")].value == "C-A":
                row[header.index("项目状态")].value = "已联系"
                row[header.index("跟进备注")].value = "周一再打电话"
            if row[header.index("项目编号")].value == "C-C":
                row[header.index("项目状态")].value = "agreed"
        wb.save(exported)
    out = invoke("candidates", "import", exported, "--run", run_dir)
    assert "2 project(s) updated" in out.output
    run_survey(cfg, run_dir, serial=True)  # the next nightly run
    c = gpd.read_parquet(run_dir / "candidates.parquet").set_index("project_id")
    assert c.loc["C-A", "status"] == "contacted" and c.loc["C-A", "notes"] == "周一再打电话"
    assert c.loc["C-C", "status"] == "agreed" and c.loc["C-B", "status"] == "identified"
    # importing the same file again changes nothing
    assert "0 project(s) updated" in invoke("candidates", "import", exported, "--run", run_dir).output


def test_unknown_status_is_reported_not_imported(tmp_path, small_run):
    run, _ = small_run
    path = tmp_path / "edit.csv"
    pd.DataFrame({"project_id": ["C-A", "C-B"], "status": ["maybe later", None]}).to_csv(path, index=False)
    result = CliRunner().invoke(commands(), ["candidates", "import", str(path), "--run", str(run.run_dir)])
    assert result.exit_code == 0 and "C-A: unknown status 'maybe later' left out" in result.stderr
    assert "C-B: no status left out" in result.stderr and "nan" not in result.stderr  # a blank cell


@pytest.mark.slow
def test_plan_command_on_the_demo_park(tmp_path):
    run = run_survey(None, tmp_path / "demo", serial=True)
    out = invoke("candidates", "plan", run.run_dir, "--park", "P05", "--lang", "en")
    park = next(p for p in json.loads((run.run_dir / "progress.json").read_text())["parks"] if p["park_id"] == "P05")
    # the plan starts from the park's ratio in progress.json and closes the 50 % target
    assert out.output.startswith(f"P05: ratio {100 * park['install_ratio_area_frac']:.1f} % -> 5")
    plan = pd.read_csv(run.run_dir / "exports" / "plan-park-P05-lcoe.csv", encoding="utf-8-sig")
    lcoe = plan["LCOE (CNY/kWh)"]
    assert lcoe.is_monotonic_increasing and (plan["Park ID"] == "P05").all()
    bad = CliRunner().invoke(commands(), ["candidates", "plan", str(run.run_dir), "--park", "P99"])
    assert bad.exit_code == 2 and "no candidate in park 'P99'" in bad.stderr


@pytest.mark.slow
def test_city_list_park_lists_and_exports_agree_on_ranks(tmp_path):
    """candidates.parquet/ keeps no rank; the run's CSVs and the export number the
    projects the same way: cheapest first over the whole city."""
    import shutil

    from pvsurvey.io.datasets import read_candidates
    from pvsurvey.tools.map_writer import read_map_data

    run = run_survey(None, tmp_path / "demo", serial=True)
    invoke("export", run.run_dir, "--format", "csv", "--lang", "en")
    exported = pd.read_csv(run.run_dir / "exports" / "candidates.csv", encoding="utf-8-sig")
    city = pd.read_csv(run.run_dir / "candidates.csv", encoding="utf-8-sig")  # the run's list (zh headers)
    park = pd.read_csv(run.run_dir / "candidates" / "park-P05.csv", encoding="utf-8-sig")
    rank_of = dict(zip(exported["Project ID"], exported["Rank"]))
    assert sorted(rank_of.values()) == list(range(1, len(exported) + 1)) == sorted(city["排序"])
    assert all(rank_of[p] == r for p, r in zip(city["项目编号"], city["排序"]))
    assert all(rank_of[p] == r for p, r in zip(park["项目编号"], park["排序"]))
    by_rank = exported.sort_values("Rank")
    assert by_rank["LCOE (CNY/kWh)"].is_monotonic_increasing

    # a run of an earlier version (single files, a rank column) still reads
    old = tmp_path / "old"
    shutil.copytree(run.run_dir, old, symlinks=False)
    buildings = gpd.read_parquet(old / "buildings.parquet")
    candidates = read_candidates(old / "candidates.parquet")
    for name, frame in (("buildings.parquet", buildings), ("candidates.parquet", candidates)):
        shutil.rmtree(old / name)
        frame.to_parquet(old / name)
    assert len(read_map_data(old).buildings) == int((buildings["park_id"].notna()).sum())
    again = read_candidates(old / "candidates.parquet").set_index("project_id")["rank"]
    assert again.to_dict() == rank_of


@pytest.mark.parametrize("fmt", ["gpkg", "fgb", "parquet"])
def test_buildings_export_is_one_gis_file_with_survey_columns_and_project_ids(small_run, fmt):
    run, _ = small_run
    invoke("export", run.run_dir, "--layer", "buildings", "--format", fmt)
    path = run.run_dir / "exports" / f"buildings.{fmt}"
    # a single file GDAL opens (the run's buildings.parquet/ is a folder of parts); GeoParquet through pyarrow,
    # since GDAL's Parquet driver is not in every build (pyogrio's wheels lack it)
    back = gpd.read_parquet(path) if fmt == "parquet" else gpd.read_file(path, engine="pyogrio")
    assert path.is_file() and back.crs.to_epsg() == 4326
    surveyed = gpd.read_parquet(run.run_dir / "buildings.parquet").set_index("building_id")
    back = back.set_index("建筑编号")
    assert sorted(back.index) == sorted(surveyed.index) == ["A", "B", "C"]
    assert back["占地面积 (m²)"].to_numpy() == pytest.approx(surveyed.loc[back.index, "footprint_area_m2"].to_numpy())
    candidates = pd.read_csv(run.run_dir / "candidates.csv", encoding="utf-8-sig", dtype=str)
    members = {b: p for p, ids in zip(candidates["项目编号"], candidates["所含建筑编号"]) for b in ids.split(";")}
    assert back["项目编号"].fillna("").to_dict() == {b: members.get(b, "") for b in back.index}
    assert set(back["光伏状态"]) <= {"none", "planned", "under_construction", "connected"}


def test_buildings_export_of_an_unknown_park_is_one_line(small_run):
    run, _ = small_run
    bad = CliRunner().invoke(commands(), ["export", str(run.run_dir), "--layer", "buildings", "--park", "P99"])
    assert bad.exit_code == 2 and "no building in park 'P99'" in bad.stderr
