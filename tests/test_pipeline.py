"""End to end: the demo, a hand-made survey, and the Dask run against its serial twin."""

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pvlib
import pytest
import shapely

from conftest import REPO, roofs_utm, write_ghi_raster
from pvsurvey.config.loading import config_from_dict, load_config
from pvsurvey.model.yield_table import SpecificYieldTable
from pvsurvey.errors import InputFileError
from pvsurvey.config.schema import Climate, System
from pvsurvey.pipeline.run import run_survey


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return run_survey(None, tmp_path_factory.mktemp("runs") / "demo", serial=True)


@pytest.mark.slow
def test_demo_outputs_and_accounting(demo_run):
    run_dir, manifest = demo_run.run_dir, demo_run.manifest
    for name in ("rejected.parquet", "parks.csv", "districts.csv", "manifest.json", "_COMPLETE"):
        assert (run_dir / name).is_file(), name
    for name in ("buildings.parquet", "candidates.parquet"):  # datasets: a directory of part files
        files = list((run_dir / name).iterdir())
        assert files and all(p.suffix == ".parquet" and p.is_file() for p in files), name
    buildings = gpd.read_parquet(run_dir / "buildings.parquet")
    rejected = pd.read_parquet(run_dir / "rejected.parquet")
    source = gpd.read_parquet(REPO / "data/demo/footprints.parquet")
    # input rows = accepted + rejected, and every source row appears exactly once
    assert len(buildings) + len(rejected) == len(source) == manifest["counts"]["input_rows"]
    rows = np.sort(np.concatenate([buildings["source_row"], rejected["source_row"]]))
    assert (rows == np.arange(len(source))).all()
    assert sorted(rejected["reason"]) == ["duplicate_id", "empty_geometry", "too_small"]
    assert manifest["counts"]["repaired_geometries"] == 1  # the bow-tie
    assert buildings.crs.to_epsg() == 4326
    assert {"building_id", "park_id", "district", "footprint_area_m2", "usable_area_m2", "capacity_kwp",
            "ghi_kwh_per_m2_yr", "specific_yield_kwh_per_kwp", "annual_yield_kwh"} <= set(buildings.columns)
    assert buildings["building_id"].is_unique
    assert (buildings["usable_area_m2"] <= buildings["footprint_area_m2"]).all()


@pytest.mark.slow
def test_demo_figures_are_plausible_for_shanghai(demo_run):
    b = gpd.read_parquet(demo_run.run_dir / "buildings.parquet")
    # GLDAS climatology: about 3.6 kWh/m²/day = 1,300 kWh/m²/yr
    assert 1250 < b["ghi_kwh_per_m2_yr"].median() < 1400
    # rooftop PV in Shanghai yields about 1,000–1,200 kWh/kWp
    usable = b[b["capacity_kwp"] > 0]
    assert usable["specific_yield_kwh_per_kwp"].between(950, 1250).all()
    # flat industrial roofs: about a tenth of the footprint becomes kWp (0.21 kWp/m² × ~0.45 usable share)
    ratio = b["capacity_kwp"].sum() / b["footprint_area_m2"].sum()
    assert 0.07 < ratio < 0.13
    halls = b[b["name"].str.contains("厂房", na=False) & (b["footprint_area_m2"] > 2000)]
    assert halls["footprint_area_m2"].between(2000, 30000).all() and len(halls) > 500


@pytest.mark.slow
def test_park_and_district_tables_add_up(demo_run):
    b = gpd.read_parquet(demo_run.run_dir / "buildings.parquet")
    parks = pd.read_csv(demo_run.run_dir / "parks.csv", dtype={"park_id": str})
    districts = pd.read_csv(demo_run.run_dir / "districts.csv")
    assert len(parks) == 10 and parks["building_count"].gt(100).all()
    in_parks = b[b["park_id"].notna()]
    for col in ("capacity_kwp", "annual_yield_kwh", "usable_area_m2"):
        assert parks[col].sum() == pytest.approx(in_parks[col].sum(), rel=1e-9)
        assert districts[col].sum() == pytest.approx(in_parks[col].sum(), rel=1e-9)
    p01 = parks.set_index("park_id").loc["P01"]
    assert p01["park_name"] == "漕河泾新兴技术开发区" and p01["district"] == "徐汇区"
    assert p01["capacity_kwp"] == pytest.approx(b.loc[b["park_id"] == "P01", "capacity_kwp"].sum())
    assert demo_run.manifest["totals"]["buildings_outside_parks"] == b["park_id"].isna().sum() > 0


@pytest.mark.slow
def test_manifest_records_inputs_versions_counts_and_timings(demo_run):
    m = json.loads((demo_run.run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and m["config"]["name"] == "shanghai-demo"
    assert len(m["inputs"]["footprints"]["sha256"]) == 64
    assert m["packages"]["pvlib"] == pvlib.__version__
    assert set(m["timings_s"]) >= {"check_inputs", "survey", "write_outputs"}
    assert m["counts"]["rejected_by_reason"] == {"duplicate_id": 1, "empty_geometry": 1, "too_small": 1}


@pytest.mark.slow
@pytest.mark.cluster
def test_dask_run_equals_serial_run(tmp_path, demo_run):
    cfg = load_config()  # every round on the local cluster, however small
    cfg = cfg.model_copy(update={"parallel": cfg.parallel.model_copy(update={"in_process_max_rows": 0})})
    dask_run = run_survey(cfg, tmp_path / "dask", workers=2)
    assert dask_run.manifest["execution"]["partitions"] == 4  # the demo's 1,000-row row groups
    assert dask_run.manifest["execution"]["mode"] == "local"
    for name in ("candidates.csv", "progress.csv", "candidates/park-P05.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(demo_run.run_dir / name), pd.read_csv(dask_run.run_dir / name))
    serial = gpd.read_parquet(demo_run.run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    parallel = gpd.read_parquet(dask_run.run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(serial.drop(columns="geometry"), parallel.drop(columns="geometry"))
    assert serial.geometry.geom_equals_exact(parallel.geometry, tolerance=0).all()
    pd.testing.assert_frame_equal(pd.read_csv(demo_run.run_dir / "parks.csv"), pd.read_csv(dask_run.run_dir / "parks.csv"))


def square_where(x, ctx):
    return x * x + ctx, os.getpid()


@pytest.mark.slow
@pytest.mark.cluster
def test_small_rounds_stay_in_this_process_and_big_ones_start_the_cluster():
    from pvsurvey.execution.executor import Executor

    with Executor(workers=1, in_process_max_rows=100) as ex:
        assert ex.map(square_where, [1, 2, 3], 10, rows_to_compute=100) == [(11, os.getpid()), (14, os.getpid()),
                                                                             (19, os.getpid())]
        assert ex.client is None and ex.mode == "in-process"
        out = ex.map(square_where, [1, 2, 3], 10, rows_to_compute=101)  # too many rows: the cluster
        assert [v for v, _ in out] == [11, 14, 19] and {pid for _, pid in out} != {os.getpid()}
        assert ex.mode == "local" and len(ex.client.scheduler_info()["workers"]) == 1
        assert ex.map(square_where, [4], 0, rows_to_compute=1)[0][1] != os.getpid()  # once started, every round


def _hand_made_config(tmp_path, **overrides):
    fp = tmp_path / "roofs.gpkg"
    roofs_utm().to_file(fp, engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif", value=1300.0 / 365.0)
    data = {"name": "hand", "footprints": "roofs.gpkg",
            "irradiance": {"ghi": "ghi.tif", "units": "kWh/m2/day"},
            "roof": {"setback_m": 1.0, "obstruction_frac": 0.8, "ground_coverage_ratio": 0.5}, **overrides}
    return config_from_dict(data, tmp_path)


def test_hand_made_survey_gives_exact_capacity_and_yield(tmp_path):
    cfg = _hand_made_config(tmp_path)
    result = run_survey(cfg, tmp_path / "run", serial=True)
    b = gpd.read_parquet(result.run_dir / "buildings.parquet").set_index("building_id")
    a = b.loc["A"]
    assert a["footprint_area_m2"] == pytest.approx(5000.0, rel=1e-9)
    assert a["usable_area_m2"] == pytest.approx(3763.2, rel=1e-9)
    assert a["capacity_kwp"] == pytest.approx(395.136, rel=1e-9)
    assert a["ghi_kwh_per_m2_yr"] == pytest.approx(1300.0, rel=1e-6)
    # the same specific yield as the table computed directly for this roof
    table = SpecificYieldTable(System(), Climate())
    centre = shapely.centroid(b.geometry["A"])
    sy, _ = table.lookup([centre.y], [centre.x], [a["ghi_kwh_per_m2_yr"]], [15.0], [180.0], ["rack"])
    assert a["specific_yield_kwh_per_kwp"] == pytest.approx(sy[0], rel=1e-9)
    assert a["annual_yield_kwh"] == pytest.approx(395.136 * sy[0], rel=1e-9)
    # B is gabled: flush modules on the sunny half; C keeps (20 - 2) × (10 - 2) × 0.8 = 115.2 m²
    assert b.loc["B", "roof_shape"] == "pitched" and b.loc["B", "coverage_frac"] == 0.9
    assert b.loc["C", "usable_area_m2"] == pytest.approx(18 * 8 * 0.8, rel=1e-9)


def test_roofs_on_nodata_or_outside_the_raster_are_rejected(tmp_path):
    cfg = _hand_made_config(tmp_path)
    # roofs sit near 31.18 N 121.3 E: row 1, column 1 of the 0.25° raster starting at 120.9 E 31.6 N
    write_ghi_raster(tmp_path / "ghi.tif", value=3.6, nodata_cell=(1, 1))
    with pytest.raises(InputFileError, match="no footprint was accepted"):
        run_survey(cfg, tmp_path / "run", serial=True)
    rejected_dir = tmp_path / "run"
    assert not rejected_dir.exists()  # nothing published


def test_weather_file_drives_the_yield(tmp_path):
    tmy3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"
    cfg = _hand_made_config(tmp_path, irradiance={"ghi": "ghi.tif", "units": "kWh/m2/day", "weather": str(tmy3)})
    result = run_survey(cfg, tmp_path / "run", serial=True)
    b = gpd.read_parquet(result.run_dir / "buildings.parquet")
    assert set(b["weather_cell"]) == {"file"}
    assert result.manifest["weather"]["format"] == "tmy3"
    assert b["specific_yield_kwh_per_kwp"].between(900, 1400).all()


def test_rounds_after_the_survey_report_progress_in_the_log(caplog):
    from pvsurvey.pipeline.outputs import _log_tasks_done

    progress = _log_tasks_done("finishing", "partitions", every_s=0.0)
    with caplog.at_level("INFO", logger="pvsurvey"):
        for done in (1, 2, 3):
            progress(done, 3)
    assert [r.getMessage().rsplit(" after", 1)[0] for r in caplog.records] == [
        "finishing: 1/3 partitions done", "finishing: 2/3 partitions done", "finishing: 3/3 partitions done"]
    quiet = _log_tasks_done("finishing", "partitions", every_s=3600.0)
    caplog.clear()
    with caplog.at_level("INFO", logger="pvsurvey"):
        quiet(3, 3)  # a short round finishes without a line
    assert not caplog.records
