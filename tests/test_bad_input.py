"""Bad input: one clear line and exit code 2 for fatal problems; a reason code and a
count for row-level ones; every row accounted for. The README's bad-input table
points at these tests."""

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pvlib
import pyarrow as pa
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ORIGIN, roofs_utm, write_ghi_raster
from pvsurvey.cli import commands
from pvsurvey.model.yield_table import SpecificYieldTable
from pvsurvey.io.weather import read_weather
from pvsurvey.config.schema import Climate, SurveyConfig, System
from pvsurvey.errors import InputFileError
from pvsurvey.store.candidate_status import read_candidate_statuses
from pvsurvey.store.run_directory import BUILDINGS, RunDirectory
from pvsurvey.model.footprints import clean_footprints
from pvsurvey.model.registry_matching import REGISTRY_REASONS
from pvsurvey.model.survey import survey_buildings


def write_config(tmp_path, **overrides):
    cfg = {"name": "bad", "footprints": "roofs.gpkg", "irradiance": {"ghi": "ghi.tif", "units": "kWh/m2/day"}}
    cfg.update(overrides)
    path = tmp_path / "survey.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def good_inputs(tmp_path):
    roofs_utm().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif")
    return tmp_path


def run_cli(*args):
    result = CliRunner().invoke(commands(), ["run", *map(str, args), "--serial"])
    return result


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pvsurvey: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_footprints(good_inputs):
    cfg = write_config(good_inputs, footprints="nope.gpkg")
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "footprints file not found", "nope.gpkg")


def test_unreadable_footprints(good_inputs):
    (good_inputs / "garbage.gpkg").write_bytes(b"\x00not a geopackage" * 100)
    cfg = write_config(good_inputs, footprints="garbage.gpkg")
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "garbage.gpkg", "cannot read footprints")


def test_empty_layer(good_inputs):
    roofs_utm().iloc[:0].to_file(good_inputs / "empty.gpkg", engine="pyogrio")
    cfg = write_config(good_inputs, footprints="empty.gpkg")
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "empty.gpkg", "layer is empty")


def test_empty_geoparquet(good_inputs):
    roofs_utm().iloc[:0].to_parquet(good_inputs / "empty.parquet")
    cfg = write_config(good_inputs, footprints="empty.parquet")
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "empty.parquet", "layer is empty")


def test_vector_without_crs(good_inputs):
    roofs_utm().set_crs(None, allow_override=True).to_file(good_inputs / "nocrs.shp", engine="pyogrio")
    cfg = write_config(good_inputs, footprints="nocrs.shp")
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "nocrs.shp", "no coordinate reference system",
                          "crs: wgs84")


def test_raster_without_crs(good_inputs):
    with rasterio.open(good_inputs / "nocrs.tif", "w", driver="GTiff", width=2, height=2, count=1,
                       dtype="float32") as dst:
        dst.write(np.full((1, 2, 2), 3.6, dtype="float32"))
    cfg = write_config(good_inputs, irradiance={"ghi": "nocrs.tif", "units": "kWh/m2/day"})
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "nocrs.tif", "has no CRS", "gdal_edit.py")


def test_raster_not_overlapping(good_inputs):
    roofs_utm().to_crs(4326).translate(xoff=-100).to_frame("geometry").to_parquet(good_inputs / "far.parquet")
    cfg = write_config(good_inputs, footprints="far.parquet")
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "does not overlap the footprints")


def test_implausible_units(good_inputs):
    write_ghi_raster(good_inputs / "yearly.tif", value=1300.0)  # kWh/m²/yr values declared per day
    cfg = write_config(good_inputs, irradiance={"ghi": "yearly.tif", "units": "kWh/m2/day"})
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "474500 kWh/m²/yr", "outside the plausible",
                          "look like kWh/m2/yr")


def test_unknown_units_is_a_config_error(good_inputs):
    cfg = write_config(good_inputs, irradiance={"ghi": "ghi.tif", "units": "MJ/m2"})
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "key 'irradiance.units'")


def test_config_errors(good_inputs):
    cfg = write_config(good_inputs, roof={"setbak_m": 1})
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "unknown key 'roof.setbak_m'")
    (good_inputs / "broken.yaml").write_text("name: [\n")
    assert_one_line_error(run_cli(good_inputs / "broken.yaml"), "not valid YAML")


def test_registry_without_required_columns(good_inputs):
    (good_inputs / "reg.csv").write_text("building_id,capacity\nA,100\n")
    cfg = write_config(good_inputs, installations="reg.csv")
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "reg.csv", "missing capacity_kwp, commissioned_on, status")


def test_missing_weather_file(good_inputs):
    cfg = write_config(good_inputs, irradiance={"ghi": "ghi.tif", "weather": "nope.epw"})
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "weather file not found")


def test_parks_without_columns(good_inputs):
    gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.box(121, 31, 122, 32)], crs=4326).to_file(
        good_inputs / "parks.geojson")
    cfg = write_config(good_inputs, parks="parks.geojson")
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), "parks need the columns park_id, name and district")


# --- the files beside the runs: read before the survey, not after it -------------------------

def assert_nothing_surveyed(folder):
    assert not any(p.name.startswith("run") for p in folder.iterdir()), sorted(p.name for p in folder.iterdir())


def test_a_history_that_is_not_one_stops_the_run_before_the_survey(good_inputs):
    history = good_inputs / "bad-history.csv"  # beside the run directory, for the survey named 'bad'
    history.write_text("id,value\n1,2\n", encoding="utf-8")
    cfg = write_config(good_inputs)
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), f"{history}: not a progress history",
                          "no column as_of, level, key", "move it away (pvsurvey then starts a new history)")
    assert_nothing_surveyed(good_inputs)
    assert history.read_text(encoding="utf-8") == "id,value\n1,2\n"  # left as it was


def test_a_history_file_key_naming_a_directory_stops_the_run_before_the_survey(good_inputs):
    cfg = write_config(good_inputs, progress={"history_file": "."})
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"),
                          f"key 'progress.history_file': {good_inputs} is a directory",
                          f"e.g. {good_inputs / 'bad-history.csv'}")
    assert_nothing_surveyed(good_inputs)


def test_a_candidate_status_store_unreadable_stops_the_run_before_the_survey(good_inputs):
    store = good_inputs / "bad-candidate-status.csv"
    store.write_text('project_id,status\n"C-1,agreed\n', encoding="utf-8")  # an unclosed quote
    cfg = write_config(good_inputs)
    assert_one_line_error(run_cli(cfg, "--out", good_inputs / "run"), f"{store}: not a readable candidate-status store",
                          "EOF inside string", "move it away and run 'pvsurvey candidates import' again")
    assert_nothing_surveyed(good_inputs)
    store.write_text("id,value\n1,2\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"not a candidate-status store \(no column project_id, status; it has id, "
                                             r"value\)"):
        read_candidate_statuses(store)
    store.write_bytes(b"")
    assert read_candidate_statuses(store) is None  # empty: no statuses
    store.write_bytes("project_id,status\nP01-1,agreed\n".encode("gbk"))
    assert read_candidate_statuses(store).to_dict("records") == [{"project_id": "P01-1", "status": "agreed",
                                                                   "notes": ""}]


@pytest.mark.slow
def test_a_history_saved_as_gbk_or_emptied_is_read_by_run_and_progress(good_inputs):
    cfg, run, history = write_config(good_inputs), good_inputs / "run", good_inputs / "bad-history.csv"
    assert run_cli(cfg, "--out", run, "--as-of", "2025-06-30").exit_code == 0
    first = pd.read_csv(history, encoding="utf-8-sig")
    history.write_bytes(history.read_text(encoding="utf-8-sig").encode("gbk"))  # as Excel saves it
    second = run_cli(cfg, "--out", run, "--as-of", "2025-12-31")
    assert second.exit_code == 0, second.output
    assert history.read_bytes().startswith(b"\xef\xbb\xbf")  # rewritten as pvsurvey writes it
    both = pd.read_csv(history, encoding="utf-8-sig")
    pd.testing.assert_frame_equal(both[both["as_of"] == "2025-06-30"].reset_index(drop=True), first)
    assert len(both) == 2 * len(first)
    gbk = good_inputs / "gbk-history.csv"
    gbk.write_bytes(history.read_text(encoding="utf-8-sig").encode("gbk"))
    for args in ([], ["--history", gbk]):
        report = CliRunner().invoke(commands(), ["progress", str(run), "--lang", "en", *map(str, args)])
        assert report.exit_code == 0 and "Traceback" not in report.output, report.output
    gbk.write_text("id,value\n1,2\n", encoding="utf-8")
    assert_one_line_error(CliRunner().invoke(commands(), ["progress", str(run), "--history", str(gbk)]),
                          f"{gbk}: not a progress history", "no column as_of, level, key")
    history.write_bytes(b"")  # emptied: no history yet
    third = run_cli(cfg, "--out", run, "--as-of", "2026-06-30")
    assert third.exit_code == 0, third.output
    assert set(pd.read_csv(history, encoding="utf-8-sig")["as_of"]) == {"2026-06-30"}


def damaged_run(folder):
    """A finished run directory (as far as its readers check) whose second buildings
    part is truncated, as a full disk or a killed copy leaves it."""
    run = folder / "run"
    parts = run / "buildings.parquet"
    parts.mkdir(parents=True)
    roofs_utm().to_crs(4326).assign(building_id=["A", "B", "C"], specific_yield_kwh_per_kwp=1100.0).to_parquet(
        parts / "part-00000.parquet")
    good = (parts / "part-00000.parquet").read_bytes()
    (parts / "part-00001.parquet").write_bytes(good[:len(good) // 2])
    (run / "manifest.json").write_text(json.dumps({"name": "bad", "config": {"name": "bad"}}), encoding="utf-8")
    (run / "_COMPLETE").write_text("")
    (run / "installations_matched.csv").write_text("registry_id,matched_building_id,metered_kwh_per_yr\nR1,A,1000\n",
                                                   encoding="utf-8-sig")
    return run


@pytest.mark.parametrize("command", ["map", "validate"])
def test_a_damaged_run_file_is_one_line_naming_it(tmp_path, command):
    run = damaged_run(tmp_path)
    result = CliRunner().invoke(commands(), [command, str(run)])
    assert_one_line_error(result, f"{run / 'buildings.parquet' / 'part-00001.parquet'}: damaged (",
                          "run 'pvsurvey run' again with the run's config to rebuild the run directory")
    assert "Traceback" not in result.output


def test_a_read_failing_past_the_footers_is_one_line_too(tmp_path):
    run = RunDirectory(damaged_run(tmp_path))
    (run.file(BUILDINGS) / "part-00001.parquet").unlink()
    assert len(run.buildings()) == 3  # the footers read: the dataset is whole again
    with pytest.raises(InputFileError, match=r"buildings\.parquet: cannot read \(Couldn't deserialize\); a file of "
                                             r"it may be damaged: run 'pvsurvey run' again"):
        with run.reading(BUILDINGS):
            raise pa.ArrowInvalid("Couldn't deserialize")


# --- row-level problems -----------------------------------------------------------------

def messy_footprints():
    x, y = ORIGIN
    good = shapely.box(x, y, x + 100, y + 50)
    rows = [
        ("ok", good),
        ("null", None),
        ("empty", shapely.Polygon()),
        ("point", shapely.Point(x, y)),
        ("line", shapely.LineString([(x, y), (x + 10, y)])),
        ("bowtie", shapely.Polygon([(x + 200, y), (x + 230, y + 30), (x + 230, y), (x + 200, y + 30)])),
        ("flat", shapely.Polygon([(x + 300, y)] * 4)),  # one repeated point: nothing to repair
        ("ok", shapely.box(x + 400, y, x + 450, y + 50)),  # duplicate id
        ("huge", shapely.box(x - 3000, y - 3000, x + 3000, y + 3000)),  # 36 km²
        ("tiny", shapely.box(x + 500, y, x + 501, y + 1)),  # 1 m²
        ("z", shapely.force_3d(shapely.box(x + 600, y, x + 640, y + 30), 12.0)),
        ("far", shapely.box(x + 900_000, y, x + 900_050, y + 50)),  # outside the raster
    ]
    return gpd.GeoDataFrame({"id": [r[0] for r in rows]}, geometry=[r[1] for r in rows], crs="EPSG:32651")


def test_row_level_problems_are_quarantined_with_reasons_and_counted(tmp_path):
    messy_footprints().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif")
    cfg = write_config(tmp_path)
    result = run_cli(cfg, "--out", tmp_path / "run")
    assert result.exit_code == 3, result.output  # success, but 9 of 12 rows rejected > checks' 1 %
    assert "75.00 % of footprint rows rejected > 1.00 %" in result.output
    rejected = pd.read_parquet(tmp_path / "run" / "rejected.parquet").set_index("source_row")
    reasons = rejected["reason"].to_dict()
    assert reasons == {1: "null_geometry", 2: "empty_geometry", 3: "not_polygon", 4: "not_polygon",
                       6: "invalid_geometry", 7: "duplicate_id", 8: "too_large", 9: "too_small", 11: "outside_raster"}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["input_rows"] == 12 == counts["accepted"] + counts["rejected"]
    assert counts["rejected_by_reason"] == {"duplicate_id": 1, "empty_geometry": 1, "invalid_geometry": 1,
                                            "not_polygon": 2, "null_geometry": 1, "outside_raster": 1,
                                            "too_large": 1, "too_small": 1}
    assert counts["repaired_geometries"] == 1  # the bow-tie became two triangles
    b = gpd.read_parquet(tmp_path / "run" / "buildings.parquet").set_index("building_id")
    assert b.loc["bowtie", "footprint_area_m2"] == pytest.approx(2 * 0.5 * 30 * 15, rel=1e-6)
    assert not b.geometry.has_z.any() and b.loc["z", "footprint_area_m2"] == pytest.approx(1200.0, rel=1e-6)


def test_roofs_on_nodata_are_rejected(tmp_path):
    roofs_utm().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif", nodata_cell=(1, 1))
    extra = gpd.GeoDataFrame({"id": ["D"]}, geometry=[shapely.box(121.45, 31.05, 121.4505, 31.0505)], crs=4326)
    pd.concat([roofs_utm().to_crs(4326), extra]).to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    result = run_cli(write_config(tmp_path), "--out", tmp_path / "run")
    assert result.exit_code == 3
    rejected = pd.read_parquet(tmp_path / "run" / "rejected.parquet")
    assert list(rejected["reason"]) == ["no_irradiance"] * 3 and list(rejected["building_id"]) == ["A", "B", "C"]


def test_registry_row_problems_are_reported_not_dropped(tmp_path):
    roofs_utm().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif")
    (tmp_path / "reg.csv").write_text(
        "building_id,lon,lat,capacity_kwp,commissioned_on,status\n"
        "A,,,100,2023-01-01,connected\n"
        "A,,,lots,2023-01-01,connected\n"
        "B,,,-3,2023-01-01,connected\n"
        "C,,,10,01/02/2023,connected\n"
        ",2.35,48.85,10,2023-01-01,connected\n"   # Paris: far outside the surveyed area
        ",999,31.2,10,2023-01-01,connected\n", encoding="utf-8")
    result = run_cli(write_config(tmp_path, installations="reg.csv"), "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output  # 5 unmatched rows: under checks' 20, counted in the summary
    assert "5 registry row(s) (installations_matched.csv)" in result.output
    strict = run_cli(write_config(tmp_path, installations="reg.csv", checks={"max_unmatched_registry_rows": 4}),
                     "--out", tmp_path / "run")
    assert strict.exit_code == 3 and "5 registry rows unmatched > 4" in strict.output
    matched = pd.read_csv(tmp_path / "run" / "installations_matched.csv", encoding="utf-8-sig")
    assert len(matched) == 6
    assert list(matched["unmatched_reason"].fillna("")) == ["", "invalid_capacity", "invalid_capacity", "invalid_date",
                                                            "outside_survey_area", "invalid_coordinates"]
    # every reason that occurs comes with a plain-English message, and only those rows have one
    assert matched["unmatched_message"].isna().tolist() == matched["unmatched_reason"].isna().tolist()
    assert (matched["unmatched_message"].dropna().str.strip().str.len() > 0).all()
    assert matched["unmatched_message"].iloc[4] == REGISTRY_REASONS["outside_survey_area"]


# --- fuzzing the survey function ------------------------------------------------------------

coordinate = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False, allow_infinity=False)
near = st.floats(min_value=-200.0, max_value=200.0, allow_nan=False, allow_infinity=False)


@st.composite
def polygons(draw):
    kind = draw(st.sampled_from(["random", "sliver", "holes", "huge", "empty", "bowtie", "tiny"]))
    if kind == "empty":
        return shapely.Polygon()
    if kind == "huge":
        pts = draw(st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=8))
    else:
        pts = draw(st.lists(st.tuples(near, near), min_size=3, max_size=10))
    x, y = ORIGIN
    pts = [(x + a, y + b) for a, b in pts] if kind != "huge" else pts
    if kind == "sliver":
        pts = [(px, y + 1e-9 * i) for i, (px, _) in enumerate(pts)]
    if kind == "tiny":
        pts = [(x + a * 1e-4, y + b * 1e-4) for a, b in pts]
    if kind == "bowtie" and len(pts) >= 4:
        pts = [pts[0], pts[2], pts[1], pts[3]]
    shell = shapely.Polygon(pts)
    if kind == "holes":
        return shapely.Polygon(pts, [[(x + 1, y + 1), (x + 2, y + 1), (x + 2, y + 2)]])
    return shell


# one weather cell (a weather file) keeps the fuzzing about geometry, not about clear-sky years
_WEATHER, _META = read_weather(Path(pvlib.__file__).parent / "data" / "723170TYA.CSV")
GHI_TABLE = SpecificYieldTable(System(), Climate(), weather=_WEATHER,
                               weather_location=(_META["latitude"], _META["longitude"]))
CONFIG = SurveyConfig.model_validate({"name": "fuzz", "footprints": {"path": "x"}, "irradiance": {"ghi": "x"}})


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(polygons(), min_size=1, max_size=12))
def test_survey_function_never_raises_and_accounts_for_every_row(geoms):
    raw = gpd.GeoDataFrame({"id": [f"F{i}" for i in range(len(geoms))]}, geometry=geoms, crs="EPSG:32651")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wgs = raw.to_crs(4326)
    wgs["source_row"] = np.arange(len(wgs))
    accepted, rejected, _ = clean_footprints(wgs, "fuzz")
    n = len(accepted)
    ghi = np.full(n, 1300.0)
    surveyed, rejected_more = survey_buildings(accepted, ghi, np.zeros(n, dtype=bool), None, CONFIG, GHI_TABLE, "fuzz")
    more = 0 if rejected_more is None else len(rejected_more)
    assert len(surveyed) + more + len(rejected) == len(geoms)
    assert (surveyed["footprint_area_m2"] >= 0).all() and (surveyed["usable_area_m2"] >= 0).all()
    assert (surveyed["usable_area_m2"] <= surveyed["footprint_area_m2"] + 1e-6).all()
    assert np.isfinite(surveyed[["capacity_kwp", "annual_yield_kwh"]].to_numpy()).all()


def test_a_readers_warning_on_a_broken_feature_is_one_line(good_inputs):
    """A GeoJSON footprint whose coordinates are text: GDAL warns and gives it no
    geometry; the run sets it aside (null_geometry) and the warning is one line,
    not a site-packages path and a line of pyogrio's source."""
    roofs = roofs_utm().to_crs(4326)
    features = json.loads(roofs.to_json())
    features["features"][1]["geometry"]["coordinates"] = "x"
    (good_inputs / "roofs.geojson").write_text(json.dumps(features))
    result = run_cli(write_config(good_inputs, footprints="roofs.geojson"), "--out", good_inputs / "run")
    assert result.exit_code == 3, (result.output, result.exception)  # rows set aside
    warned = [line for line in result.stderr.splitlines() if "OGRGeoJSONReadPolygon" in line]
    assert warned and all(line.startswith("pvsurvey: warning: ") for line in warned)
    assert "site-packages" not in result.stderr and "ogr_read(" not in result.stderr
    rejected = pd.read_parquet(good_inputs / "run" / "rejected.parquet")
    assert list(rejected["source_row"]) == [1] and list(rejected["reason"]) == ["null_geometry"]
