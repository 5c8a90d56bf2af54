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
    # rooftop PV in Shanghai yields about 1,000–1,200 kWh/kWp before the shade of neighbours
    usable = b[b["capacity_kwp"] > 0]
    assert (usable["specific_yield_kwh_per_kwp"] / (1 - usable["shade_loss_frac"])).between(950, 1250).all()
    assert usable["shade_loss_frac"].between(0, 0.2).all()
    # industrial roofs: about a tenth of the footprint becomes kWp (0.21 kWp/m² × ~0.5 of it in modules)
    ratio = b["capacity_kwp"].sum() / b["footprint_area_m2"].sum()
    assert 0.08 < ratio < 0.13
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
def test_demo_waterfall_adds_up_per_building_park_district_and_city(demo_run):
    from pvsurvey.columns import WATERFALL_COLUMNS, WATERFALL_STEPS

    b = gpd.read_parquet(demo_run.run_dir / "buildings.parquet")
    # every roof: footprint = the steps + module area; module area × 0.21 kWp/m² = capacity
    np.testing.assert_allclose(b[WATERFALL_COLUMNS].sum(axis=1), b["footprint_area_m2"], rtol=1e-12)
    np.testing.assert_allclose(b["module_area_m2"] * 0.21, b["capacity_kwp"], rtol=1e-12)
    assert (b["unusable_reason"].isna() == (b["capacity_kwp"] > 0)).all()
    # what the demo shows: both constructions, shade, the far side of pitched roofs, a layout step
    assert set(b["roof_construction"]) == {"steel", "concrete", "unknown"} and set(b["mount"]) == {"rack", "flush"}
    assert (b["shade_loss_m2"] > 0).sum() > 20 and (b["shade_loss_frac"] > 0).sum() > 1000
    assert (b[["setback_loss_m2", "obstruction_loss_m2", "orientation_loss_m2", "layout_loss_m2"]].sum() > 0).all()
    assert b["needs_new_roof"].sum() > 100
    parks = pd.read_csv(demo_run.run_dir / "parks.csv", dtype={"park_id": str})
    districts = pd.read_csv(demo_run.run_dir / "districts.csv")
    in_parks = b[b["park_id"].notna()]
    for col in WATERFALL_COLUMNS + ["needs_new_roof"]:
        total = in_parks[col].sum()
        name = "needs_new_roof_count" if col == "needs_new_roof" else col
        assert parks[name].sum() == pytest.approx(total, rel=1e-9)
        assert districts[name].sum() == pytest.approx(total, rel=1e-9)
    np.testing.assert_allclose(parks[WATERFALL_COLUMNS].sum(axis=1), parks["footprint_area_m2"], rtol=1e-9)
    doc = json.loads((demo_run.run_dir / "progress.json").read_text())
    city = doc["waterfall"]["city"]
    assert [s["step"] for s in city["steps"]] == WATERFALL_STEPS + ["module_area_m2"]
    assert city["footprint_area_m2"] == pytest.approx(b["footprint_area_m2"].sum())
    assert sum(s["area_m2"] for s in city["steps"]) == pytest.approx(city["footprint_area_m2"], rel=1e-12)
    assert city["capacity_kwp"] == pytest.approx(b["capacity_kwp"].sum())
    assert doc["waterfall"]["rule_set"] == "shanghai" and len(doc["waterfall"]["parks"]) == 10
    # the rules and every value used, and how the attributes were read, in the manifest
    m = demo_run.manifest
    assert m["roof_rules"]["rule_set"] == "shanghai" and m["roof_rules"]["overridden_by_hand"] == []
    assert m["roof_rules"]["roof"]["setback_m"] == 1.0 and m["roof_rules"]["shade"]["enabled"] is True
    attrs = m["counts"]["building_attributes"]
    assert attrs["height_status"]["negative"] == 1 and attrs["height_status"]["absurd"] == 1
    assert attrs["height_status"]["unparsable"] == 2 and attrs["levels_status"]["unparsable"] == 1
    assert attrs["material_status"]["unrecognised"] > 0 and attrs["material_status"]["missing"] > 0
    assert attrs["shade_status"]["no_height"] >= 1 and attrs["shade_status"]["traced"] > 1000
    traced_from = attrs["shade_traced_from"]  # each traced roof from its grid of points or its centre
    assert traced_from["grid"] + traced_from["centre"] == attrs["shade_status"]["traced"]
    assert traced_from["grid"] > 100 and traced_from["centre"] > 100
    assert sum(attrs["roof_construction"].values()) == len(b)
    from pvsurvey.tools.progress_report import report_progress

    text, _ = report_progress(demo_run.run_dir, "en")  # what 'pvsurvey progress' prints
    assert "Usable roof, step by step (city; rule set shanghai)" in text and "− shade from neighbours" in text
    assert "可利用屋顶面积逐项扣除" in report_progress(demo_run.run_dir, "zh")[0]


@pytest.mark.slow
def test_shade_does_not_depend_on_the_partitioning(tmp_path, demo_run):
    # the halo: buildings of the other partitions shade a partition's roofs, so one partition
    # of all 3,881 rows gives what four partitions of 1,000 give
    cfg = load_config()
    cfg = cfg.model_copy(update={"parallel": cfg.parallel.model_copy(update={"partition_rows": 4000}),
                                 "maps": cfg.maps.model_copy(update={"publish_dir": None})})
    whole = run_survey(cfg, tmp_path / "one", serial=True)
    assert whole.manifest["execution"]["partitions"] == 1 and demo_run.manifest["execution"]["partitions"] == 4
    assert all(demo_run.manifest["execution"]["shade_halo"].values())  # each of the four has neighbours

    def read(run_dir):
        return gpd.read_parquet(run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)

    a, b = read(demo_run.run_dir), read(whole.run_dir)
    for col in ("shade_loss_m2", "shade_loss_frac", "module_area_m2", "capacity_kwp", "annual_yield_kwh"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-12, atol=1e-12, err_msg=col)


def test_switching_the_rule_set_moves_the_figures_and_the_waterfall_explains_it():
    from pvsurvey.columns import WATERFALL_COLUMNS
    from pvsurvey.io.vector import plan_partitions, read_partition
    from pvsurvey.model.footprints import clean_footprints
    from pvsurvey.model.survey import survey_buildings

    cfg = load_config()
    part = plan_partitions(cfg.footprints.path, 1000)[1]
    buildings, _, _ = clean_footprints(read_partition(part), "demo")
    ghi = np.full(len(buildings), 1300.0)
    table = SpecificYieldTable(cfg.system, cfg.climate)
    sums = {}
    for rule_set in ("shanghai", "swiss_sfoe_2016", "nrel_gagnon_2016"):
        c = cfg.model_copy(update={"roof": cfg.roof.model_validate({"rule_set": rule_set})})
        b, _ = survey_buildings(buildings, ghi, np.zeros(len(ghi), dtype=bool), None, c, table, "demo", 2025)
        sums[rule_set] = b[WATERFALL_COLUMNS + ["footprint_area_m2", "capacity_kwp"]].sum()
    base = sums["shanghai"]
    for rule_set in ("swiss_sfoe_2016", "nrel_gagnon_2016"):
        other = sums[rule_set]
        assert other["footprint_area_m2"] == pytest.approx(base["footprint_area_m2"])
        assert abs(other["capacity_kwp"] / base["capacity_kwp"] - 1) > 0.02
        # the change in module area is the sum of the changes of the steps, step by step
        diff = other[WATERFALL_COLUMNS] - base[WATERFALL_COLUMNS]
        assert diff["module_area_m2"] == pytest.approx(-diff.drop("module_area_m2").sum(), rel=1e-9)
        assert other["setback_loss_m2"] == 0 and other["obstruction_loss_m2"] == 0


@pytest.mark.slow
def test_every_demo_roof_adds_up_and_every_unusable_one_has_its_reason():
    """Every building of the demo, under each rule set and under strict rules that leave roofs
    unusable at each step: footprint = the steps + module area, and a roof without modules
    carries the step that took its last square metre."""
    from pvsurvey.columns import WATERFALL_COLUMNS
    from pvsurvey.io.vector import plan_partitions, read_partition
    from pvsurvey.model.footprints import clean_footprints
    from pvsurvey.model.roof import UNUSABLE_REASONS
    from pvsurvey.model.survey import survey_buildings

    cfg = load_config()
    parts = [clean_footprints(read_partition(p), "demo")[0] for p in plan_partitions(cfg.footprints.path, 1000)]
    table = SpecificYieldTable(cfg.system, cfg.climate)
    strict = {"setback_m": 12.0, "min_usable_area_m2": 1500.0, "exclude_needs_new_roof": True,
              "shade_max_loss_frac": 0.01}
    seen = set()
    for rules in ({"rule_set": "shanghai"}, {"rule_set": "swiss_sfoe_2016"}, {"rule_set": "nrel_gagnon_2016"}, strict):
        c = cfg.model_copy(update={"roof": cfg.roof.model_validate(rules)})
        for buildings in parts:
            ghi = np.full(len(buildings), 1300.0)
            b, _ = survey_buildings(buildings, ghi, np.zeros(len(ghi), dtype=bool), None, c, table, "demo", 2025)
            np.testing.assert_allclose(b[WATERFALL_COLUMNS].sum(axis=1), b["footprint_area_m2"], rtol=1e-12)
            assert (b[WATERFALL_COLUMNS[:-2]] >= 0).all().all() and (b["module_area_m2"] >= 0).all()
            reason = b["unusable_reason"]
            assert (reason.isna() == (b["module_area_m2"] > 0)).all()
            assert set(reason.dropna()) <= set(UNUSABLE_REASONS)
            # the reason is the step that took the roof's last square metre
            for code, step in (("setback", "setback_loss_m2"), ("too_small", "small_roof_loss_m2"),
                               ("needs_new_roof", "construction_loss_m2"), ("shade", "shade_loss_m2")):
                rows = b[reason == code]
                assert (rows[step] > 0).all(), code
            whole = b[reason == "setback"]
            np.testing.assert_allclose(whole["setback_loss_m2"], whole["footprint_area_m2"], rtol=1e-12)
            seen |= set(reason.dropna())
    assert seen == set(UNUSABLE_REASONS)  # the strict rules reach every reason on the demo


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
            "roof": {"setback_m": 1.0, "obstruction_frac": 0.8, "ground_coverage_ratio": 0.5,
                     "unknown_steel_share": 0.0},  # no roof material: surveyed as concrete, tilted rows
            **overrides}
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
    with pytest.raises(InputFileError) as err:
        run_survey(cfg, tmp_path / "run", serial=True)
    # the file, the count per reason and what the commonest means
    assert str(err.value).startswith(f"{cfg.footprints.path}: no footprint was accepted (no_irradiance: ")
    assert str(err.value).endswith("— the commonest: irradiance raster has nodata under the footprint")
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
