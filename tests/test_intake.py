"""Shanghai's data as it is delivered: encodings, Chinese columns and units, local
coordinate systems, broken geometry, Chinese survey names. Every file is written
here with a real writer (GDAL through pyogrio, osmium, pandas), never mocked."""

import json
import struct
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml
from click.testing import CliRunner

from conftest import ORIGIN, roofs_utm, write_ghi_raster
from pvsurvey.cli import commands
from pvsurvey.config.loading import config_from_dict
from pvsurvey.config.schema import VectorSource
from pvsurvey.errors import ConfigError, InputFileError
from pvsurvey.io.registry import read_registry
from pvsurvey.io.vector import plan_partitions, read_vector


def write_config(folder, **keys):
    cfg = {"name": "intake", "footprints": "roofs.gpkg", "irradiance": {"ghi": "ghi.tif", "units": "kWh/m2/day"}}
    cfg.update(keys)
    path = folder / "survey.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def run_cli(config, out):
    return CliRunner().invoke(commands(), ["run", str(config), "--out", str(out), "--serial"])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pvsurvey: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def chinese_roofs():
    """The three test roofs (UTM 51N) with Chinese field names and values."""
    src = roofs_utm()
    return gpd.GeoDataFrame({"编号": ["甲1", "乙2", "丙3"], "名称": ["一号厂房", "二号仓库", "综合楼"],
                             "层数": [2, 1, 5]}, geometry=src.geometry.values, crs=src.crs)


def gbk_shapefile_without_cpg(folder, name="roofs"):
    """How Chinese desktop GIS and surveying offices deliver Shapefiles: GBK, no .cpg."""
    path = folder / f"{name}.shp"
    chinese_roofs().to_file(path, engine="pyogrio", encoding="GBK")
    path.with_suffix(".cpg").unlink()
    dbf = path.with_suffix(".dbf").read_bytes()
    assert "编号".encode("gbk") in dbf and dbf[29] == 0  # GBK names, no language driver id
    return path


GBK_REGISTRY = ("building_id,capacity_kwp,commissioned_on,status,name\r\n"
                "甲1,300,2023-05-01,并网,一号厂房光伏\r\n"
                "乙2,120,,在建,二号仓库\r\n"
                "丙3,80,,规划,综合楼\r\n")


# --- 1. encodings ----------------------------------------------------------------------------

def test_gbk_shapefile_without_cpg_reads_chinese_names_and_values(tmp_path):
    path = gbk_shapefile_without_cpg(tmp_path)
    gdf = read_vector(path)
    assert list(gdf.columns[:3]) == ["编号", "名称", "层数"]
    assert list(gdf["编号"]) == ["甲1", "乙2", "丙3"] and gdf["名称"].iloc[0] == "一号厂房"
    assert plan_partitions(path, 10)[0].encoding == "gb18030"


def test_utf8_shapefile_without_cpg_is_not_read_as_latin1(tmp_path):
    path = tmp_path / "utf8.shp"
    chinese_roofs().to_file(path, engine="pyogrio")  # GDAL writes UTF-8 and a .cpg saying so
    path.with_suffix(".cpg").unlink()
    assert list(read_vector(path)["编号"]) == ["甲1", "乙2", "丙3"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_footprints_in_each_encoding(tmp_path, encoding):
    wgs = chinese_roofs().to_crs(4326)
    frame = pd.DataFrame(wgs.drop(columns="geometry")).assign(geometry=wgs.geometry.to_wkt())
    path = tmp_path / "roofs.csv"
    frame.to_csv(path, index=False, encoding=encoding, lineterminator="\r\n")
    parts = plan_partitions(path, 2)
    assert [(p.start, p.stop) for p in parts] == [(0, 2), (2, 3)]  # CRLF lines counted once
    gdf = read_vector(path, "wgs84")
    assert list(gdf.columns[:2]) == ["编号", "名称"] and list(gdf["名称"]) == ["一号厂房", "二号仓库", "综合楼"]


def test_gbk_geojson_and_geojsonseq(tmp_path):
    wgs = chinese_roofs().to_crs(4326)
    wgs.to_file(tmp_path / "u.geojson", engine="pyogrio")
    (tmp_path / "gbk.geojson").write_bytes((tmp_path / "u.geojson").read_text(encoding="utf-8").encode("gbk"))
    (tmp_path / "bom.geojson").write_bytes((tmp_path / "u.geojson").read_text(encoding="utf-8").encode("utf-8-sig"))
    wgs.to_file(tmp_path / "u.geojsonl", driver="GeoJSONSeq", engine="pyogrio")
    (tmp_path / "gbk.geojsonl").write_bytes((tmp_path / "u.geojsonl").read_text(encoding="utf-8").encode("gbk"))
    for name in ("gbk.geojson", "bom.geojson", "gbk.geojsonl"):
        assert list(read_vector(tmp_path / name)["名称"]) == ["一号厂房", "二号仓库", "综合楼"], name


def test_gbk_registry_csv_with_crlf_and_chinese_statuses(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_bytes(GBK_REGISTRY.encode("gbk"))  # Excel's plain "CSV" on a Chinese Windows desktop
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf") and b"\r\n" in path.read_bytes()
    reg = read_registry(VectorSource(path=path))
    assert list(reg["building_id"]) == ["甲1", "乙2", "丙3"]
    assert list(reg["status"]) == ["connected", "under_construction", "planned"]
    assert reg["name"].iloc[0] == "一号厂房光伏" and reg["reject_reason"].isna().all()


def test_a_declared_encoding_overrides_detection(tmp_path):
    path = tmp_path / "big5.csv"  # Taiwanese or Hong Kong Big5: also decodes as (wrong) GB18030
    path.write_bytes("building_id,capacity_kwp,commissioned_on,status,name\n甲1,300,2023-05-01,並網,廠房\n".encode("big5"))
    assert read_registry(VectorSource(path=path))["reject_reason"].iloc[0] == "unknown_status"  # garbled
    reg = read_registry(VectorSource(path=path, encoding="big5"))
    assert reg["status"].iloc[0] == "connected" and reg["name"].iloc[0] == "廠房"


def test_text_that_is_neither_utf8_nor_gbk_is_one_line_naming_the_key(tmp_path):
    roofs_utm().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif")
    (tmp_path / "reg.csv").write_bytes("building_id,capacity_kwp,commissioned_on,status,name\n"
                                       "A,300,2023-05-01,connected,Café \n".encode("cp1252"))
    result = run_cli(write_config(tmp_path, installations="reg.csv"), tmp_path / "run")
    assert_one_line_error(result, "reg.csv", "neither UTF-8 nor GBK/GB18030", "byte 0xe9 at offset",
                          "installations: {path: ..., encoding:")
    # declared but wrong: the same single line, naming the key
    (tmp_path / "gbk.csv").write_bytes(GBK_REGISTRY.encode("gbk"))
    result = run_cli(write_config(tmp_path, installations={"path": "gbk.csv", "encoding": "utf-8"}), tmp_path / "run")
    assert_one_line_error(result, "gbk.csv", "not valid utf-8 text", "installations.encoding")


def test_an_unknown_encoding_name_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'footprints.encoding': .*unknown text encoding 'gbkk'"):
        config_from_dict({"name": "x", "footprints": {"path": "a.shp", "encoding": "gbkk"},
                          "irradiance": {"ghi": "g.tif"}}, tmp_path)


def test_candidate_status_store_saved_by_excel_in_gbk(tmp_path):
    from pvsurvey.store.candidate_status import read_candidate_statuses

    path = tmp_path / "x-candidate-status.csv"
    path.write_bytes("project_id,status,notes\r\nP01-1,agreed,已联系业主\r\n".encode("gbk"))
    assert read_candidate_statuses(path)["notes"].iloc[0] == "已联系业主"
    path.write_bytes(b"project_id,status,notes\r\nP01-1,agreed,caf\xe9 \r\n")
    with pytest.raises(InputFileError, match="neither UTF-8 nor GBK.*save it again as UTF-8"):
        read_candidate_statuses(path)


@pytest.mark.slow
def test_a_run_on_a_gbk_shapefile_and_a_gbk_registry(tmp_path):
    gbk_shapefile_without_cpg(tmp_path)
    write_ghi_raster(tmp_path / "ghi.tif")
    (tmp_path / "reg.csv").write_bytes(GBK_REGISTRY.encode("gbk"))
    cfg = write_config(tmp_path, footprints={"path": "roofs.shp", "id_column": "编号"}, installations="reg.csv")
    result = run_cli(cfg, tmp_path / "run")
    assert result.exit_code == 0, (result.output, result.exception)
    b = gpd.read_parquet(tmp_path / "run" / "buildings.parquet").sort_values("source_row")
    assert list(b["building_id"]) == ["甲1", "乙2", "丙3"] and list(b["name"]) == ["一号厂房", "二号仓库", "综合楼"]
    assert list(b["levels"]) == [2, 1, 5]
    matched = pd.read_csv(tmp_path / "run" / "installations_matched.csv", encoding="utf-8-sig")
    assert list(matched["matched_building_id"]) == ["甲1", "乙2", "丙3"]
    assert list(matched["status"]) == ["connected", "under_construction", "planned"]


# --- 2. column mapping, units and dates ------------------------------------------------------

CHINESE_REGISTRY = ("项目编号,建筑编号,装机容量(MW),并网日期,状态,经度,纬度,项目名称\n"
                    "XM-001,甲1,0.3,2023年5月1日,已并网,,,一号厂房光伏\n"
                    "XM-002,乙2,0.12,2023/6/15,并网,,,\n"
                    "XM-003,丙3,1.5,45047,在建,,,\n"                       # an Excel serial number: 2023-05-01
                    "XM-004,,0.08,2024-01-02,规划,121.31258,31.19117,\n"
                    "XM-005,甲1,0.05,去年五月,并网,,,\n")                  # unreadable: the row's reason


def test_common_chinese_registry_headers_are_recognised_with_the_unit_from_the_header(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text(CHINESE_REGISTRY, encoding="utf-8-sig")
    reg = read_registry(VectorSource(path=path))
    assert list(reg["registry_id"]) == ["XM-001", "XM-002", "XM-003", "XM-004", "XM-005"]
    assert list(reg["building_id"].fillna("")) == ["甲1", "乙2", "丙3", "", "甲1"]
    assert list(reg["capacity_kwp"]) == pytest.approx([300.0, 120.0, 1500.0, 80.0, 50.0])  # MW → kWp
    assert [str(d) for d in reg["commissioned_on"]] == ["2023-05-01", "2023-06-15", "2023-05-01", "2024-01-02", "None"]
    assert list(reg["status"]) == ["connected", "connected", "under_construction", "planned", "connected"]
    assert reg["lon"].iloc[3] == pytest.approx(121.31258) and reg["name"].iloc[0] == "一号厂房光伏"
    assert list(reg["reject_reason"].fillna("")) == ["", "", "", "", "invalid_date"]


def test_a_registry_through_columns_with_mw_and_chinese_dates(tmp_path):
    from pvsurvey.config.schema import RegistrySource

    path = tmp_path / "reg.csv"
    path.write_text("备案号,所在建筑,规模,投产时间,进度,备注\n"
                    "BA1,甲1,0.3,2023年5月1日,并网,\n"
                    "BA2,乙2,1.2,2023/6/15,在建,\n"
                    "BA3,丙3,0.5,２０２４年１月２日,规划,\n"
                    "BA4,丙3,0.5,2023年2月30日,并网,\n", encoding="utf-8")
    source = RegistrySource(path=path, columns={"registry_id": "备案号", "building_id": "所在建筑",
                                                "capacity_kwp": "规模", "commissioned_on": "投产时间", "status": "进度"},
                            units={"capacity": "MW"})
    reg = read_registry(source)
    assert list(reg["registry_id"]) == ["BA1", "BA2", "BA3", "BA4"]
    assert list(reg["capacity_kwp"]) == pytest.approx([300.0, 1200.0, 500.0, 500.0])
    assert [str(d) for d in reg["commissioned_on"]] == ["2023-05-01", "2023-06-15", "2024-01-02", "None"]
    assert list(reg["reject_reason"].fillna("")) == ["", "", "", "invalid_date"]  # 30 February
    # 'capacity_kwp: 装机容量(MW)': the unit comes from the mapped header
    path.write_text("编号,容量列,装机容量(MW),状态,日期\nA,1,0.3,并网,2023-01-01\n", encoding="utf-8")
    reg = read_registry(RegistrySource(path=path, columns={"building_id": "编号", "capacity_kwp": "装机容量(MW)",
                                                           "commissioned_on": "日期"}))
    assert reg["capacity_kwp"].iloc[0] == pytest.approx(300.0) and reg["reject_reason"].isna().all()


@pytest.mark.parametrize("header, error", [
    ("building_id,装机容量(MW),装机容量(kW),commissioned_on,status",
     "the columns 装机容量(MW), 装机容量(kW) could each be the capacity; choose one in the config"),
    ("building_id,装机容量,commissioned_on,status",  # kW or MW? not guessed
     "missing capacity_kwp (found: building_id, 装机容量, commissioned_on, status); map the file's own names in the "
     "config, e.g. 'installations: {columns: {capacity_kwp: <its header>}}', with 'units: {capacity: MW}'"),
    ("building_id,capacity_kwp,并网日期,投运日期,status", "the columns 并网日期, 投运日期 could each be commissioned_on"),
])
def test_ambiguous_headers_and_capacities_without_a_unit_stop_with_one_line(tmp_path, header, error):
    path = tmp_path / "reg.csv"
    path.write_text(header + "\n" + ",".join(["A", "1", "2", "3", "4"][:header.count(",") + 1]) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=re.escape(error)):
        read_registry(VectorSource(path=path))


def test_a_mapped_column_missing_from_the_file_names_the_key(tmp_path):
    from pvsurvey.config.schema import RegistrySource

    path = tmp_path / "reg.csv"
    path.write_text("building_id,capacity_kwp,commissioned_on,status\nA,1,2023-01-01,connected\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"no column '装机容量' \(installations.columns.capacity_kwp in the config"):
        read_registry(RegistrySource(path=path, columns={"capacity_kwp": "装机容量"}))
    with pytest.raises(ConfigError, match="unknown key 'installations.columns.capacity'"):
        config_from_dict({"name": "x", "footprints": "a.gpkg", "irradiance": {"ghi": "g.tif"},
                          "installations": {"path": "r.csv", "columns": {"capacity": "装机容量"}}}, tmp_path)
    with pytest.raises(ConfigError, match="key 'installations.units.capacity'.*kW, kWp, MW, MWp"):
        config_from_dict({"name": "x", "footprints": "a.gpkg", "irradiance": {"ghi": "g.tif"},
                          "installations": {"path": "r.csv", "units": {"capacity": "GW"}}}, tmp_path)


def test_chinese_park_headers_are_recognised(tmp_path):
    from pvsurvey.config.loading import config_from_dict
    from pvsurvey.io.parks import read_parks
    from pvsurvey.tools.map_writer import _park_outlines

    x, y = ORIGIN
    gpd.GeoDataFrame({"園區編號": ["P1"], "园区名称": ["金桥开发区"], "所在区": ["浦东新区"]},  # a traditional header too
                     geometry=[shapely.box(x - 100, y - 100, x + 500, y + 200)], crs="EPSG:32651").to_file(
        tmp_path / "parks.gpkg", engine="pyogrio")
    cfg = config_from_dict({"name": "x", "footprints": "a.gpkg", "irradiance": {"ghi": "g.tif"},
                            "parks": "parks.gpkg"}, tmp_path)
    parks, summary = read_parks(cfg)
    assert list(parks["park_id"]) == ["P1"] and list(parks["park_name"]) == ["金桥开发区"]
    assert list(parks["district"]) == ["浦东新区"]
    # the maps read the outlines as the survey does (before, they dropped them: no 'park_id' header)
    outlines = _park_outlines(cfg.model_dump(mode="json"), "zh")
    assert list(outlines["park_id"]) == ["P1"] and list(outlines["outline_name"]) == ["金桥开发区"]
    assert outlines.geometry.iloc[0].equals(parks.geometry.iloc[0])
    # and a header named in the config's 'columns:'
    gpd.read_file(tmp_path / "parks.gpkg").rename(columns={"園區編號": "代码"}).to_file(tmp_path / "p2.gpkg")
    cfg = config_from_dict({"name": "x", "footprints": "a.gpkg", "irradiance": {"ghi": "g.tif"},
                            "parks": {"path": "p2.gpkg", "columns": {"park_id": "代码"}}}, tmp_path)
    assert list(_park_outlines(cfg.model_dump(mode="json"), "zh")["park_id"]) == ["P1"]


@pytest.mark.slow
def test_a_run_with_mapped_footprint_columns_and_a_chinese_registry(tmp_path):
    src = chinese_roofs().rename(columns={"编号": "ID号", "名称": "厂房名称", "层数": "楼高"})
    wgs = src.to_crs(4326)
    pd.DataFrame(wgs.drop(columns="geometry")).assign(几何=wgs.geometry.to_wkt()).to_csv(
        tmp_path / "roofs.csv", index=False, encoding="gbk")
    write_ghi_raster(tmp_path / "ghi.tif")
    (tmp_path / "reg.csv").write_text(CHINESE_REGISTRY, encoding="utf-8")
    cfg = write_config(tmp_path, installations="reg.csv", footprints={
        "path": "roofs.csv", "crs": "wgs84",
        "columns": {"building_id": "ID号", "name": "厂房名称", "height_m": "楼高", "geometry": "几何"},
        "units": {"height": "storeys"}})
    result = run_cli(cfg, tmp_path / "run")
    assert result.exit_code in (0, 3), (result.output, result.exception)  # 3 only for the registry's bad date
    b = gpd.read_parquet(tmp_path / "run" / "buildings.parquet").sort_values("source_row")
    assert list(b["building_id"]) == ["甲1", "乙2", "丙3"] and list(b["name"]) == ["一号厂房", "二号仓库", "综合楼"]
    assert list(b["levels"]) == [2, 1, 5] and b["height_m"].isna().all()  # storeys are not metres
    matched = pd.read_csv(tmp_path / "run" / "installations_matched.csv", encoding="utf-8-sig")
    assert list(matched["capacity_kwp"]) == pytest.approx([300.0, 120.0, 1500.0, 80.0, 50.0])
    assert list(matched["matched_building_id"].fillna("")) == ["甲1", "乙2", "丙3", "乙2", ""]
    assert matched["unmatched_reason"].iloc[4] == "invalid_date"


# --- 3. any coordinate system pyproj understands -----------------------------------------------

LOCAL_TM = "+proj=tmerc +lat_0=0 +lon_0=121.4667 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
TM_SIZES = [(100.0, 50.0), (40.0, 30.0), (120.0, 80.0)]  # m: 5,000, 1,200 and 9,600 m²


def local_tm_roofs():
    """Three rectangles in Shanghai's local transverse Mercator (no EPSG code), 8–12 km from its meridian."""
    x, y = 508_000.0, 3_452_000.0
    boxes = [shapely.box(x + 300 * i, y, x + 300 * i + w, y + h) for i, (w, h) in enumerate(TM_SIZES)]
    return gpd.GeoDataFrame({"id": ["T1", "T2", "T3"]}, geometry=boxes, crs=None)


def true_areas_m2(gdf_tm):
    """Geodesic areas on the GRS80 ellipsoid of the TM rectangles' outlines (densified)."""
    from pyproj import Geod, Transformer

    to_lonlat = Transformer.from_crs(LOCAL_TM, "EPSG:4326", always_xy=True)
    geod = Geod(ellps="GRS80")
    out = []
    for geom in shapely.segmentize(gdf_tm.geometry.values, 1.0):
        lon, lat = to_lonlat.transform(*np.asarray(geom.exterior.coords).T)
        out.append(abs(geod.polygon_area_perimeter(lon, lat)[0]))
    return np.array(out)


def test_local_tm_true_areas_are_the_planar_ones():
    np.testing.assert_allclose(true_areas_m2(local_tm_roofs()), [w * h for w, h in TM_SIZES], rtol=1e-4)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:'crs' was not provided")
@pytest.mark.parametrize("form", ["proj", "prj", "wkt"])
def test_local_transverse_mercator_footprints_keep_their_true_areas(tmp_path, form):
    from pyproj import CRS

    tm = local_tm_roofs()
    write_ghi_raster(tmp_path / "ghi.tif")
    if form == "proj":  # a CSV of TM coordinates and the PROJ string
        pd.DataFrame({"id": tm["id"], "geometry": tm.geometry.to_wkt()}).to_csv(tmp_path / "roofs.csv", index=False)
        footprints = {"path": "roofs.csv", "crs": LOCAL_TM}
    elif form == "prj":  # a Shapefile without its .prj, and the .prj (ESRI WKT) delivered beside the config
        tm.to_file(tmp_path / "roofs.shp", engine="pyogrio")
        assert not (tmp_path / "roofs.shp").with_suffix(".prj").exists()
        (tmp_path / "shanghai-local.prj").write_text(CRS.from_proj4(LOCAL_TM).to_wkt("WKT1_ESRI"), encoding="ascii")
        footprints = {"path": "roofs.shp", "crs": "shanghai-local.prj"}
    else:  # WKT2 pasted into the config
        tm.to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
        footprints = {"path": "roofs.gpkg", "crs": CRS.from_proj4(LOCAL_TM).to_wkt()}
    result = run_cli(write_config(tmp_path, footprints=footprints), tmp_path / "run")
    assert result.exit_code == 0, (result.output, result.exception)
    b = gpd.read_parquet(tmp_path / "run" / "buildings.parquet").sort_values("building_id")
    assert list(b["building_id"]) == ["T1", "T2", "T3"]
    np.testing.assert_allclose(b["footprint_area_m2"], true_areas_m2(tm), rtol=0.005)
    west, south, east, north = b.total_bounds  # 8–12 km east of 121.4667° E, about 31.19° N
    assert 121.55 < west < east < 121.6 and 31.18 < south < north < 31.2


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_a_crs_pyproj_does_not_understand_or_a_missing_prj_is_one_line(tmp_path):
    local_tm_roofs().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif")
    result = run_cli(write_config(tmp_path, footprints={"path": "roofs.gpkg", "crs": "+proj=tmerc +lon_0=abc"}),
                     tmp_path / "run")
    assert_one_line_error(result, "roofs.gpkg", "its 'crs:' ('+proj=tmerc +lon_0=abc') is not a coordinate system "
                          "pyproj understands", "a PROJ string, WKT or the path of a .prj file")
    result = run_cli(write_config(tmp_path, footprints={"path": "roofs.gpkg", "crs": "mars"}), tmp_path / "run")
    assert_one_line_error(result, "roofs.gpkg", "its 'crs:' ('mars') is not a coordinate system pyproj understands")
    result = run_cli(write_config(tmp_path, footprints={"path": "roofs.gpkg", "crs": "nope.prj"}), tmp_path / "run")
    assert_one_line_error(result, f"{tmp_path / 'nope.prj'} (its 'crs:' in the config) is not there")


def test_registry_coordinates_in_a_local_crs_are_reprojected(tmp_path):
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", LOCAL_TM, always_xy=True).transform(121.31258, 31.19117)
    path = tmp_path / "reg.csv"
    path.write_text(f"经度,纬度,装机容量(kW),并网日期,状态\n{x:.2f},{y:.2f},100,2023-01-01,并网\n", encoding="utf-8")
    reg = read_registry(VectorSource(path=path, crs=LOCAL_TM))
    assert reg["lon"].iloc[0] == pytest.approx(121.31258, abs=1e-6) and reg["lat"].iloc[0] == pytest.approx(31.19117, abs=1e-6)
    assert reg["reject_reason"].isna().all()


# --- 4. rows never kill a run ------------------------------------------------------------------

def _wkb_two_point_ring(x, y):
    """A polygon whose one ring has two points: what real OSM extracts and GIS exports hold."""
    return b"\x01" + struct.pack("<III", 3, 1, 2) + struct.pack("<dddd", x, y, x, y)


def broken_rows():
    """(id, WKB, WKT, expected reason or 'repaired'/'ok') near the test raster, in WGS84."""
    x, y, d = 121.31, 31.19, 0.0005  # about 50 m
    def box(i):
        return shapely.box(x + 2 * d * i, y, x + 2 * d * i + d, y + d)
    def wkt_of(geom):
        return shapely.to_wkt(geom, rounding_precision=-1)
    rows = [("good1", box(0), "ok"), ("good2", box(1), "ok")]
    rows.append(("two_point_ring", _wkb_two_point_ring(x + 4 * d, y), "invalid_geometry"))
    xs = [x + 6 * d, x + 6.5 * d, x + 7 * d]
    rows.append(("retracing", shapely.Polygon([(xs[0], y), (xs[1], y), (xs[2], y), (xs[1], y)]), "invalid_geometry"))
    rows.append(("with_nan", shapely.Polygon([(x + 8 * d, y), (np.nan, y), (x + 9 * d, y + d), (x + 8 * d, y + d)]),
                 "invalid_geometry"))
    x0 = x + 10 * d  # a shell whose vertex (x0 + d/2, y) touches its own bottom edge
    touching = shapely.Polygon([(x0, y), (x0 + d, y), (x0 + d, y + d), (x0 + d / 2, y), (x0, y + d)])
    rows.append(("self_touching", touching, "repaired"))
    rows.append(("empty_hole", shapely.from_wkt(wkt_of(box(6))[:-1] + ", EMPTY)"), "repaired"))
    rows.append(("empty_part", shapely.from_wkt("MULTIPOLYGON ((" + wkt_of(box(7))[len("POLYGON ("):-1] + "), EMPTY)"),
                 "repaired"))
    return [(i, g if isinstance(g, bytes) else shapely.to_wkb(g), expected) for i, g, expected in rows]


def write_broken(fmt, path):
    rows = broken_rows()
    ids = np.array([r[0] for r in rows], dtype=object)
    wkb = np.array([r[1] for r in rows], dtype=object)
    if fmt == "parquet":  # the WKB as stored, a truncated one added: GeoParquet holds any bytes
        import pyarrow as pa
        import pyarrow.parquet as pq

        gpd.GeoDataFrame({"id": ["x"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326).to_parquet(path)
        schema = pq.read_schema(path)
        geo = json.loads(schema.metadata[b"geo"])
        del geo["columns"]["geometry"]["bbox"]  # a writer that keeps no extent
        schema = schema.with_metadata({**schema.metadata, b"geo": json.dumps(geo).encode()})
        wkb = np.append(wkb, wkb[0][:-5])
        ids = np.append(ids, "truncated")
        pq.write_table(pa.table({"id": pa.array(ids, pa.string()), "geometry": pa.array(wkb, pa.binary())},
                                schema=schema), path)
    elif fmt == "csv":  # WKT: GEOS's WKT reader refuses the same rows, and text that is not WKT
        import pyogrio  # noqa: F401  (the two-point ring has no WKT shapely would write)

        texts = [f"POLYGON (({121.31 + 0.002} 31.19, {121.31 + 0.002} 31.19))" if i == "two_point_ring" else
                 shapely.to_wkt(shapely.from_wkb(g), rounding_precision=-1) for i, g, _ in rows]
        pd.DataFrame({"id": list(ids) + ["garbage"], "geometry": texts + ["NOT WKT AT ALL"]}).to_csv(path, index=False)
    else:  # GDAL writes what it is given; pyogrio's own reader would stop at the two-point ring
        from pyogrio.raw import write

        write(str(path), geometry=wkb, field_data=[ids], fields=["id"], geometry_type="Unknown", crs="EPSG:4326",
              driver="GPKG")
    return path


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fmt", ["parquet", "gpkg", "csv"])
def test_every_reader_turns_what_geos_cannot_build_into_a_rejected_row(tmp_path, fmt):
    from pvsurvey.model.footprints import clean_footprints

    path = write_broken(fmt, tmp_path / f"broken.{fmt}")
    raw = read_vector(path, "wgs84" if fmt == "csv" else None)
    accepted, rejected, stats = clean_footprints(raw, str(path))
    assert len(accepted) + len(rejected) == len(raw)  # input rows = accepted + rejected
    reasons = dict(zip(rejected["building_id"], rejected["reason"]))
    expected = {i: e for i, _, e in broken_rows() if e not in ("ok", "repaired")}
    expected.update({"truncated": "unparsable_geometry"} if fmt == "parquet" else {})
    expected.update({"garbage": "unparsable_geometry"} if fmt == "csv" else {})
    assert reasons == expected
    message = rejected.set_index("building_id")["message"]
    assert "Invalid number of points in LinearRing found 2" in message["two_point_ring"]
    assert "NaN coordinates" in message["with_nan"]
    assert sorted(accepted["building_id"]) == ["empty_hole", "empty_part", "good1", "good2", "self_touching"]
    assert stats["repaired"] == 3
    kept = accepted.set_index("building_id").geometry
    assert shapely.get_num_interior_rings(kept["empty_hole"]) == 0 and kept["empty_part"].geom_type == "Polygon"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_run_survives_every_broken_row_of_a_geoparquet_file(tmp_path):
    write_broken("parquet", tmp_path / "roofs.parquet")
    write_ghi_raster(tmp_path / "ghi.tif")
    result = run_cli(write_config(tmp_path, footprints="roofs.parquet"), tmp_path / "run")
    assert result.exit_code in (0, 3), (result.output, result.exception)  # 3: rows set aside (its threshold is elsewhere)
    counts = json.loads((tmp_path / "run" / "manifest.json").read_text())["counts"]
    assert counts["input_rows"] == 9 == counts["accepted"] + counts["rejected"]
    assert counts["rejected_by_reason"] == {"invalid_geometry": 3, "unparsable_geometry": 1}
    b = gpd.read_parquet(tmp_path / "run" / "buildings.parquet")
    assert (b["usable_area_m2"] > 0).all() and len(b) == 5  # the empty hole no longer crashes GEOS's buffer


def test_a_registry_array_geos_cannot_build_is_the_rows_reason(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text("building_id,capacity_kwp,commissioned_on,status,geometry\n"
                    ",100,2023-01-01,connected,\"POLYGON ((121.31 31.19, 121.31 31.19))\"\n"   # nothing else locates it
                    "A,100,2023-01-01,connected,\"POLYGON ((121.31 31.19, 121.31 31.19))\"\n"  # its id still does
                    ",100,2023-01-01,connected,\"POLYGON ((121.31 31.19, 121.311 31.19, 121.311 31.191, 121.31 31.19))\"\n",
                    encoding="utf-8")
    reg = read_registry(VectorSource(path=path))
    assert list(reg["reject_reason"].fillna("")) == ["invalid_geometry", "", ""]
    assert reg["array_geometry"].iloc[2] is not None


def write_osm_with_broken_ways(path):
    """Four good buildings, a closed way of two nodes (a ring of two points), a closed way
    of three nodes, a way retracing itself (self-intersecting, no area) and a bow-tie."""
    import osmium

    writer = osmium.SimpleWriter(str(path))
    common = dict(version=1, visible=True, changeset=1, timestamp="2024-01-01T00:00:00Z", uid=1, user="test")
    nodes = iter(range(1, 10_000))

    def node(lon, lat):
        nid = next(nodes)
        writer.add_node(osmium.osm.mutable.Node(id=nid, location=(lon, lat), **common))
        return nid

    x, y, d = 121.31, 31.19, 0.0005
    ways = []
    for i in range(4):
        ring = [node(x + 2 * d * i, y), node(x + 2 * d * i + d, y), node(x + 2 * d * i + d, y + d), node(x + 2 * d * i, y + d)]
        ways.append((100 + i, ring + [ring[0]]))
    a, b = node(x + 10 * d, y), node(x + 10.5 * d, y)
    ways.append((200, [a, a]))  # GDAL's polygon has a ring of two points: GEOS refuses it
    ways.append((201, [a, b, a]))
    c = [node(x + 12 * d, y), node(x + 12.5 * d, y), node(x + 13 * d, y)]
    ways.append((202, [c[0], c[1], c[2], c[1], c[0]]))  # retraces itself
    t = [node(x + 14 * d, y), node(x + 15 * d, y + d), node(x + 15 * d, y), node(x + 14 * d, y + d)]
    ways.append((203, t + [t[0]]))  # a bow-tie: repaired into two triangles
    for wid, refs in ways:
        writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags={"building": "industrial"}, **common))
    writer.close()
    return path


@pytest.mark.slow
def test_an_osm_extract_with_a_two_point_ring_and_a_self_intersecting_way_runs_to_the_end(tmp_path):
    write_osm_with_broken_ways(tmp_path / "shanghai.osm.pbf")
    write_ghi_raster(tmp_path / "ghi.tif")
    result = run_cli(write_config(tmp_path, footprints="shanghai.osm.pbf"), tmp_path / "run")
    assert result.exit_code in (0, 3), (result.output, result.exception)
    assert "Traceback" not in result.output and "IllegalArgumentException" not in result.output
    counts = json.loads((tmp_path / "run" / "manifest.json").read_text())["counts"]
    rejected = pd.read_parquet(tmp_path / "run" / "rejected.parquet").set_index("building_id")
    assert counts["input_rows"] == 8 == counts["accepted"] + counts["rejected"]
    assert rejected.loc["w200", "reason"] == "invalid_geometry"
    assert "Invalid number of points in LinearRing found 2" in rejected.loc["w200", "message"]
    assert rejected.loc["w201", "reason"] == "invalid_geometry" and rejected.loc["w202", "reason"] == "invalid_geometry"
    b = gpd.read_parquet(tmp_path / "run" / "buildings.parquet")
    assert sorted(b["building_id"]) == ["w100", "w101", "w102", "w103", "w203"] and counts["repaired_geometries"] == 1


# --- 5. survey names in any language -----------------------------------------------------------

def test_name_file_stems_are_safe_and_stable():
    from pvsurvey.naming import name_file_stem

    assert name_file_stem("shanghai-demo") == "shanghai-demo"  # every name allowed before keeps its files
    assert name_file_stem("金桥开发区屋顶普查") == "金桥开发区屋顶普查"
    assert name_file_stem("金橋開發區") == "金橋開發區"
    assert name_file_stem("金桥开发区屋顶普查") == name_file_stem("金桥开发区屋顶普查")  # the same every night
    nfd = "Ame\u0301lie"  # typed on a system that decomposes accents
    assert name_file_stem(nfd) == name_file_stem("Amélie") == "Amélie"
    for hostile in ("../../etc 金桥", "..", ".hidden", "a/b", "CON", "x" * 300, "金桥" * 80, "a\\b"):
        stem = name_file_stem(hostile)
        assert "/" not in stem and "\\" not in stem and not stem.startswith((".", "-")) and stem
        assert len(stem.encode("utf-8")) <= 129 and stem != hostile
    assert name_file_stem("a/b") != name_file_stem("a_b")  # two names never share a file


def test_survey_names_in_any_language_and_only_one_line(tmp_path):
    base = {"footprints": "a.gpkg", "irradiance": {"ghi": "g.tif"}}
    assert config_from_dict({"name": " 金桥开发区屋顶普查 ", **base}, tmp_path).name == "金桥开发区屋顶普查"
    assert config_from_dict({"name": "Zone industrielle de l'Est", **base}, tmp_path).name == "Zone industrielle de l'Est"
    with pytest.raises(ConfigError, match="key 'name'.*one line of text"):
        config_from_dict({"name": "金桥\n普查", **base}, tmp_path)
    with pytest.raises(ConfigError, match="key 'name'"):
        config_from_dict({"name": "   ", **base}, tmp_path)


@pytest.mark.slow
def test_a_chinese_survey_name_through_a_whole_run(tmp_path, monkeypatch):
    name = "金桥开发区屋顶普查"
    roofs_utm().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif")
    x, y = ORIGIN
    gpd.GeoDataFrame({"park_id": ["金桥-1"], "name": ["金桥出口加工区"], "district": ["浦东新区"]},
                     geometry=[shapely.box(x - 100, y - 100, x + 500, y + 200)], crs="EPSG:32651").to_file(
        tmp_path / "parks.gpkg", engine="pyogrio")
    (tmp_path / "reg.csv").write_bytes("building_id,装机容量(kW),并网日期,状态\r\nA,100,2023/5/1,并网\r\n".encode("gbk"))
    config = write_config(tmp_path, name=name, parks="parks.gpkg", installations="reg.csv")
    monkeypatch.chdir(tmp_path)  # the default run directory: runs/<name>
    result = CliRunner().invoke(commands(), ["run", str(config), "--serial"])
    assert result.exit_code == 0, (result.output, result.exception)
    run_dir = tmp_path / "runs" / name
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["name"] == name and (run_dir / "_COMPLETE").is_file()
    assert (tmp_path / "runs" / f"{name}-history.csv").is_file()
    from pvsurvey.naming import safe_file_stem

    assert [p.name for p in (run_dir / "candidates").iterdir()] == [f"park-{safe_file_stem('金桥-1')}.csv"]
    assert name in (run_dir / "maps" / "index.html").read_text(encoding="utf-8")
    # the park manager's edits come back (saved from Excel in the Chinese code page) into the store named after the survey
    edited = pd.read_csv(run_dir / "candidates.csv", encoding="utf-8-sig", dtype=str)
    status = next(c for c in edited.columns if "状态" in c)
    edited[status] = "已同意"
    edited.to_csv(tmp_path / "edited.csv", index=False, encoding="gb18030")
    result = CliRunner().invoke(commands(), ["candidates", "import", str(tmp_path / "edited.csv"), "--run", str(run_dir)])
    assert result.exit_code == 0, (result.output, result.exception)
    store = pd.read_csv(tmp_path / "runs" / f"{name}-candidate-status.csv", encoding="utf-8-sig")
    assert set(store["status"]) == {"agreed"} and len(store) == len(edited)
