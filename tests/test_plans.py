"""Several named plans: figures per plan from one registry, the final assessment at a
deadline, labels from each plan's own figures, config errors naming the key.

Every expected figure is worked out by hand from the small registry below.
"""

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
from click.testing import CliRunner

from conftest import roofs_utm, write_ghi_raster
from pvsurvey.cli import commands
from pvsurvey.config.loading import config_from_dict
from pvsurvey.config.schema import Plan
from pvsurvey.errors import ConfigError
from pvsurvey.maps import panels
from pvsurvey.model.registry_matching import plan_periods, pv_by_building
from pvsurvey.model.targets import (ProgressSums, plan_document, plan_tables, progress_csv, progress_document,
                                    progress_tables, with_pv_columns)
from pvsurvey.pipeline.inputs import check_plan_names
from pvsurvey.pipeline.run import run_survey
from pvsurvey.store.history import append_history, read_history
from pvsurvey.tools.progress_report import progress_table

BASE = {"name": "t", "footprints": "fp.parquet", "irradiance": {"ghi": "ghi.tif"}}
AFTER_DEADLINE = dt.date(2026, 6, 30)
BEFORE_DEADLINE = dt.date(2025, 6, 30)


def plan(pid="trial", ratio=0.5, mw=250.0, baseline="2022-01-01", deadline="2025-12-31", **extra) -> Plan:
    targets = {"install_ratio": ratio, "new_capacity_mw": mw, **extra.pop("targets", {})}
    return Plan.model_validate({"id": pid, "name": {"zh": f"试验计划{pid}", "en": f"Trial plan {pid}"},
                                "source": "test document No. 1", "baseline_date": baseline, "deadline": deadline,
                                "targets": targets, **extra})


# Three roofs: A and B in park P1 (district D1), C in park P2 (district D2); 1,000 m² usable in all.
BUILDINGS = pa.table({"building_id": ["A", "B", "C"], "park_id": ["P1", "P1", "P2"], "district": ["D1", "D1", "D2"],
                      "usable_area_m2": [100.0, 300.0, 600.0], "capacity_kwp": [10.0, 30.0, 60.0],
                      "annual_yield_kwh": [11e3, 33e3, 66e3]})
PARKS = pd.DataFrame({"park_id": ["P1", "P2"], "park_name": ["一号园", "二号园"], "district": ["D1", "D2"]})
# A registry whose commissioning dates straddle the deadline 2025-12-31 [kWp].
REGISTRY = pd.DataFrame({
    "matched_building_id": ["A", "B", "A", "C", "C"],
    "status": ["connected", "connected", "connected", "connected", "planned"],
    "commissioned_on": ["2021-06-01",   # before the baseline: installed, never new
                        "2023-03-01",   # inside the period
                        "2025-12-31",   # on the deadline: counts
                        "2026-01-01",   # the day after: not the plan's
                        None],
    "capacity_kwp": [50_000.0, 100_000.0, 200_000.0, 400_000.0, 800_000.0],
})


def tables_of(plans, as_of, registry=REGISTRY, default_baseline=dt.date(2022, 1, 1)):
    per_building = pv_by_building(registry, default_baseline, as_of, plan_periods(plans, as_of))
    # two partitions, summed like a run's
    parts = [with_pv_columns(BUILDINGS.slice(0, 2), per_building, 0.0)[1],
             with_pv_columns(BUILDINGS.slice(2, 1), per_building, 0.0)[1]]
    collector = ProgressSums(parts)
    return collector, [plan_tables(collector, PARKS, p, "area", as_of) for p in plans]


def test_figures_at_the_deadline_from_a_registry_that_straddles_it():
    trial = plan(targets={"district_new_capacity_mw": {"D1": 400.0}})
    _, [tables] = tables_of([trial], AFTER_DEADLINE)
    assert tables["status"] == "assessed" and tables["figures_as_of"] == dt.date(2025, 12, 31)
    city = tables["city"].iloc[0]
    # at the deadline: new = 100 MW (2023) + 200 MW (on the deadline); PV on A and B: 400 of 1,000 m²
    assert city["new_kwp_since_baseline"] == 300_000.0
    assert city["installed_kwp"] == 350_000.0
    assert city["install_ratio_area_frac"] == pytest.approx(0.4)
    assert city["install_ratio_count_frac"] == pytest.approx(2 / 3)
    assert city["ratio_margin_frac"] == pytest.approx(-0.1) and not city["ratio_met"]
    assert city["new_capacity_margin_kwp"] == pytest.approx(50_000.0) and city["new_capacity_met"]
    assert city["outcome"] == "missed"  # the ratio was missed
    assert np.isnan(city["remaining_potential_kwp"])  # a run-date figure: not part of the assessment
    d = tables["district"]
    assert d.loc["D1", "install_ratio_area_frac"] == 1.0 and d.loc["D1", "new_kwp_since_baseline"] == 300_000.0
    assert d.loc["D1", "new_capacity_margin_kwp"] == pytest.approx(-100_000.0)  # its own 400 MW target
    assert d.loc["D1", "outcome"] == "missed"
    assert d.loc["D2", "install_ratio_area_frac"] == 0.0 and d.loc["D2", "new_kwp_since_baseline"] == 0.0
    assert d.loc["D2", "new_capacity_met"] is None and d.loc["D2", "outcome"] == "missed"
    p = tables["park"]
    assert p.loc["P1", "outcome"] == "met" and p.loc["P2", "outcome"] == "missed"  # parks: the ratio target only

    # the same registry before the deadline: progress as of that date, no assessment
    _, [before] = tables_of([trial], BEFORE_DEADLINE)
    assert before["status"] == "in_progress" and before["figures_as_of"] == BEFORE_DEADLINE
    assert before["city"].iloc[0]["new_kwp_since_baseline"] == 100_000.0
    assert before["city"].iloc[0]["install_ratio_area_frac"] == pytest.approx(0.4)
    assert "outcome" not in before["city"]


def test_after_the_deadline_the_document_assesses_and_never_forecasts():
    trial = plan()
    collector, [tables] = tables_of([trial], AFTER_DEADLINE)
    # a history with a steady pace: a plan in progress would get a forecast from it
    history = pd.DataFrame({"as_of": ["2024-06-30", "2025-06-30", "2026-06-30"], "plan": "trial",
                            "plan_status": ["in_progress", "in_progress", "assessed"], "level": "city",
                            "new_kwp_since_baseline": [0.0, 100_000.0, 300_000.0],
                            "install_ratio_area_frac": [0.1, 0.2, 0.4]})
    entry = plan_document(tables, AFTER_DEADLINE, history, 5)
    assert "forecast" not in entry and entry["status"] == "assessed" and entry["figures_as_of"] == "2025-12-31"
    a = entry["assessment"]
    assert a["date"] == "2025-12-31" and a["outcome"] == "missed"
    assert a["install_ratio"] == {"target": 0.5, "achieved": pytest.approx(0.4), "met": False,
                                  "margin_frac": pytest.approx(-0.1)}
    assert a["new_capacity"] == {"target_kwp": 250_000.0, "achieved_kwp": 300_000.0, "met": True,
                                 "margin_kwp": pytest.approx(50_000.0)}
    # the top-level keys: the default plan against the run date's figures, and no forecast past its deadline
    cfg = config_from_dict({**BASE, "plans": [trial.model_dump(mode="json")]}, Path("."))
    doc = progress_document(progress_tables(collector, PARKS, cfg, AFTER_DEADLINE), cfg, AFTER_DEADLINE, None,
                            history, [entry])
    assert "forecast" not in doc and doc["default_plan"] == {"id": "trial", "status": "assessed"}
    assert doc["city"]["new_kwp_since_baseline"] == 700_000.0 and doc["city"]["install_ratio_area_frac"] == 1.0
    text = progress_table(doc, "en")
    assert "Final assessment at the deadline 2025-12-31: missed" in text
    assert "installation ratio 40.0 % of 50 %: missed by 10.0 percentage points" in text
    assert "new capacity 300.0 MW of 250 MW: met (50.0 MW above)" in text
    assert "Forecast" not in text and "reached on" not in text
    zh = progress_table(doc, "zh")
    assert "截止日2025-12-31最终考核：未达标" in zh and "未达标，差10.0个百分点" in zh

    # before the deadline the same history gives a forecast (and no assessment)
    _, [running] = tables_of([trial], BEFORE_DEADLINE)
    entry = plan_document(running, BEFORE_DEADLINE, history, 5)
    assert "assessment" not in entry and entry["forecast"]["points"] == 2  # rows up to the as-of date only
    assert entry["forecast"]["new_capacity"]["status"] == "on_pace"


def test_two_plans_with_different_baselines_count_different_new_capacity():
    plans = [plan("trial"), plan("next", 0.6, 2000.0, "2025-12-31", "2030-12-31"),
             plan("late", 0.5, 250.0, "2023-06-30", "2025-12-31")]
    per_building = pv_by_building(REGISTRY, dt.date(2022, 1, 1), AFTER_DEADLINE,
                                  plan_periods(plans, AFTER_DEADLINE))
    assert per_building.loc["A", "new_kwp@trial"] == 200_000.0 and per_building.loc["B", "new_kwp@trial"] == 100_000.0
    assert per_building.loc["C", "new_kwp@next"] == 400_000.0 and per_building.loc["A", "new_kwp@next"] == 0.0
    _, tables = tables_of(plans, AFTER_DEADLINE)
    new = {t["plan"].id: t["city"].iloc[0]["new_kwp_since_baseline"] for t in tables}
    assert new == {"trial": 300_000.0, "next": 400_000.0, "late": 200_000.0}
    assert [t["status"] for t in tables] == ["assessed", "in_progress", "assessed"]
    # the plan in progress counts the PV of the run date: C's system of 2026 included
    assert tables[1]["city"].iloc[0]["install_ratio_area_frac"] == 1.0
    # progress.csv: one block of rows per plan, the plan column first
    table = progress_csv(tables)
    assert list(table.columns[:4]) == ["plan", "plan_status", "figures_as_of", "level"]
    city = table[table["level"] == "city"].set_index("plan")
    assert city.loc["next", "new_kwp_since_baseline"] == 400_000.0 and city.loc["late", "figures_as_of"] == "2025-12-31"
    # a plan before its baseline: not started, nothing new yet
    _, [early] = tables_of([plans[1]], BEFORE_DEADLINE)
    assert early["status"] == "not_started" and early["city"].iloc[0]["new_kwp_since_baseline"] == 0.0


def test_a_plan_with_a_scope_covers_its_districts_and_parks_only():
    by_district = plan("d2", scope={"districts": ["D2"]})
    by_park = plan("p1", scope={"parks": ["P1"]})
    _, (d2, p1) = tables_of([by_district, by_park], AFTER_DEADLINE)
    assert d2["total_level"] == "scope" and list(d2["district"].index) == ["D2"] and list(d2["park"].index) == ["P2"]
    assert d2["city"].iloc[0]["usable_area_m2"] == 600.0 and d2["city"].iloc[0]["new_kwp_since_baseline"] == 0.0
    assert p1["city"].iloc[0]["usable_area_m2"] == 400.0 and p1["city"].iloc[0]["new_kwp_since_baseline"] == 300_000.0
    assert list(p1["district"].index) == [] and list(p1["park"].index) == ["P1"]
    table = progress_csv([d2, p1])
    assert list(table.loc[table["level"] == "scope", "name"]) == ["districts: D2", "parks: P1"]


def test_every_label_follows_the_plan():
    odd = plan("odd", ratio=0.4, mw=800.0, baseline="2026-03-31", deadline="2029-09-30")
    odd = odd.model_copy(update={"name": odd.name.model_copy(update={"zh": "区级试点计划", "en": "District pilot"})})
    _, [tables] = tables_of([odd], dt.date(2027, 1, 1))
    entry = plan_document(tables, dt.date(2027, 1, 1), None, 5)
    cfg = config_from_dict({**BASE, "plans": [odd.model_dump(mode="json")]}, Path("."))
    collector, _ = tables_of([odd], dt.date(2027, 1, 1))
    doc = progress_document(progress_tables(collector, PARKS, cfg, dt.date(2027, 1, 1)), cfg, dt.date(2027, 1, 1),
                            None, None, [entry])
    for lang, name in (("en", "District pilot"), ("zh", "区级试点计划")):
        text = progress_table(doc, lang)
        assert name in text and "2026-03-31" in text and "2029-09-30" in text
        assert "800 MW" in text and "40.0%" in text
        for default in ("1 GW", "50 %", "50.0%", "2025", "百一"):
            assert default not in text, (lang, default)
        html = panels.plan_html(entry, entry["total"], lang)
        assert name in html and "800 MW" in html and "40 %" in html and "2029-09-30" in html
        for default in ("1,000 MW", "50 %", "2025", "百一"):
            assert default not in html, (lang, default)
    # after its deadline, the panel says met or missed, and by how much, in the plan's own terms
    _, [done] = tables_of([odd], dt.date(2030, 1, 1))
    entry = plan_document(done, dt.date(2030, 1, 1), None, 5)
    html = panels.plan_html(entry, entry["total"], "en")
    assert "final assessment at the deadline 2029-09-30: missed" in html
    assert "short by 800.0 MW" in html  # nothing was commissioned after its baseline


@pytest.mark.parametrize("change,message", [
    ({"plans": [{**plan().model_dump(mode="json"), "deadline": "2021-12-31"}]},
     "key 'plans.0.deadline': Value error, must be after the baseline_date 2022-01-01"),
    ({"plans": [{**plan().model_dump(mode="json"), "targets": {"install_ratio": 1.2, "new_capacity_mw": 1}}]},
     "key 'plans.0.targets.install_ratio': Input should be less than or equal to 1"),
    ({"plans": [{**plan().model_dump(mode="json"),
                 "targets": {"install_ratio": 0.5, "new_capacity_mw": 1, "park_new_capacity_mw": {"P1": -5}}}]},
     "key 'plans.0.targets.park_new_capacity_mw.P1': Input should be greater than or equal to 0"),
    ({"targets": {"deadline": "2020-01-01"}}, "key 'targets.deadline'"),
    ({"targets": {"install_ratio": 0}}, "key 'targets.install_ratio'"),
    ({"plans": [plan().model_dump(mode="json")] * 2}, "key 'plans': Value error, plan ids must be unique"),
    ({"plans": []}, "key 'plans': Value error, give at least one plan"),
    ({"plans": [plan().model_dump(mode="json")], "targets": {}}, "give either 'targets'"),
    ({"plans": [{**plan().model_dump(mode="json"), "scope": "town"}]}, "key 'plans.0.scope'"),
])
def test_bad_plans_fail_with_one_line_naming_the_key(change, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({**BASE, **change}, Path("."))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_districts_and_parks_of_a_plan_fail_once_parks_are_read():
    parks = gpd.GeoDataFrame(PARKS, geometry=[shapely.box(0, 0, 1, 1)] * 2, crs=4326)
    good = plan("next", scope={"districts": ["D2"], "parks": ["P1"]}, targets={"park_install_ratio": {"P2": 0.3}})
    cfg = config_from_dict({**BASE, "plans": [plan().model_dump(mode="json"), good.model_dump(mode="json")]},
                           Path("."))
    check_plan_names(cfg, parks)  # all known
    cases = [({"scope": {"districts": ["D9"]}}, "key 'plans.1.scope.districts' (plan 'next'): unknown district 'D9'"),
             ({"scope": {"parks": ["P1", "PX"]}}, "key 'plans.1.scope.parks' (plan 'next'): unknown park 'PX'"),
             ({"targets": {"install_ratio": 0.5, "new_capacity_mw": 1, "district_install_ratio": {"D7": 0.5}}},
              "key 'plans.1.targets.district_install_ratio' (plan 'next'): unknown district 'D7'")]
    for change, message in cases:
        bad = {**good.model_dump(mode="json"), **change}
        cfg = config_from_dict({**BASE, "plans": [plan().model_dump(mode="json"), bad]}, Path("."))
        with pytest.raises(ConfigError) as err:
            check_plan_names(cfg, parks)
        assert message in str(err.value) and "\n" not in str(err.value)
        with pytest.raises(ConfigError, match="no parks file"):
            check_plan_names(cfg, None)
    legacy = config_from_dict({**BASE, "targets": {"park_install_ratio": {"PX": 0.5}}}, Path("."))
    with pytest.raises(ConfigError, match="key 'targets.park_install_ratio' .*unknown park 'PX'"):
        check_plan_names(legacy, parks)


def test_targets_key_and_plans_mapping_both_load():
    legacy = config_from_dict({**BASE, "targets": {"install_ratio": 0.4, "new_capacity_mw": 800}}, Path("."))
    assert len(legacy.plans) == 1 and legacy.default_plan.targets.install_ratio == 0.4
    assert legacy.default_plan.source == "沪经信节〔2022〕167号"  # the 百一 plan's name and period, own numbers
    assert legacy.targets.new_capacity_mw == 800 and str(legacy.targets.deadline) == "2025-12-31"
    default = config_from_dict(BASE, Path("."))
    assert [p.id for p in default.plans] == ["baiyi-2022-2025"]
    assert (default.default_plan.targets.install_ratio, default.default_plan.targets.new_capacity_mw) == (0.5, 1000)
    body = {k: v for k, v in plan().model_dump(mode="json").items() if k != "id"}
    mapping = config_from_dict({**BASE, "plans": {"first": body, "second": {**body, "scope": "city"}}}, Path("."))
    assert [p.id for p in mapping.plans] == ["first", "second"] and mapping.default_plan.id == "first"
    # a run's recorded config loads again as it was
    again = config_from_dict(mapping.model_dump(mode="json"), Path("."))
    assert again.plans == mapping.plans


def test_history_keeps_a_plan_column_and_reads_old_rows_as_the_default_plans(tmp_path):
    path = tmp_path / "h.csv"
    pd.DataFrame({"as_of": ["2024-06-30"], "run_finished_at": ["x"], "level": ["city"], "key": ["city"],
                  "name": [""], "new_kwp_since_baseline": [5.0]}).to_csv(path, index=False)
    assert list(read_history(path, "baiyi-2022-2025")["plan"]) == ["baiyi-2022-2025"]
    _, tables = tables_of([plan("trial"), plan("next", 0.6, 2000.0, "2025-12-31", "2030-12-31")], AFTER_DEADLINE)
    rows = progress_csv(tables)
    out = append_history(path, rows, AFTER_DEADLINE, "y", "baiyi-2022-2025")
    assert set(out["plan"]) == {"baiyi-2022-2025", "trial", "next"}
    city = out[(out["level"] == "city") & (out["as_of"] == "2026-06-30")].set_index("plan")
    assert city.loc["trial", "figures_as_of"] == "2025-12-31" and city.loc["trial", "outcome"] == "missed"
    assert city.loc["next", "plan_status"] == "in_progress"


# ------------------------------------------------------------- a whole run, twice


def _write_inputs(tmp: Path) -> None:
    roofs = roofs_utm()
    roofs.to_file(tmp / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp / "ghi.tif")
    wgs = roofs.to_crs(4326)
    pad = 0.0003
    a_b = shapely.box(*shapely.union_all(wgs.geometry.values[:2]).buffer(pad).bounds)
    c = shapely.box(*wgs.geometry.values[2].buffer(pad).bounds)
    gpd.GeoDataFrame({"park_id": ["P1", "P2"], "name": ["一号园", "二号园"], "district": ["D1", "D2"]},
                     geometry=[a_b, c], crs=4326).to_file(tmp / "parks.geojson")
    (tmp / "registry.csv").write_text(
        "building_id,capacity_kwp,commissioned_on,status\n"
        "A,50000,2021-06-01,connected\nB,100000,2023-03-01,connected\nA,200000,2025-12-31,connected\n"
        "C,400000,2026-01-01,connected\nC,800000,,planned\n", encoding="utf-8")


@pytest.mark.slow
def test_a_run_after_the_deadline_shows_every_plan_with_its_own_labels(tmp_path):
    _write_inputs(tmp_path)
    plans = {
        "pilot": {"name": {"zh": "区级试点计划", "en": "District pilot plan"}, "source": "试点文件第1号",
                  "baseline_date": "2022-01-01", "deadline": "2025-12-31",
                  "targets": {"install_ratio": 0.4, "new_capacity_mw": 800}},
        "next": {"name": {"zh": "下一期（假设）", "en": "Next period (hypothetical)"}, "source": "hypothetical",
                 "baseline_date": "2025-12-31", "deadline": "2030-12-31",
                 "targets": {"install_ratio": 0.6, "new_capacity_mw": 2000}, "scope": {"districts": ["D2"]}},
    }
    cfg = config_from_dict({"name": "plans", "footprints": "roofs.gpkg", "parks": "parks.geojson",
                            "installations": "registry.csv", "irradiance": {"ghi": "ghi.tif"},
                            "plans": plans, "maps": {"lang": "en", "tiles": "none"}}, tmp_path)
    run_dir = tmp_path / "runs" / "plans"
    run_survey(cfg, run_dir, serial=True, as_of=BEFORE_DEADLINE)
    first = json.loads((run_dir / "progress.json").read_text())
    assert [p["status"] for p in first["plans"]] == ["in_progress", "not_started"]
    result = run_survey(cfg, run_dir, serial=True, as_of=AFTER_DEADLINE)
    doc = json.loads((run_dir / "progress.json").read_text())
    buildings = gpd.read_parquet(run_dir / "buildings.parquet").set_index("building_id")
    area = buildings["usable_area_m2"]
    pilot, nxt = doc["plans"]
    assert pilot["status"] == "assessed" and "forecast" not in pilot and "forecast" not in doc
    assert pilot["total"]["new_kwp_since_baseline"] == 300_000.0  # 100 MW (2023) + 200 MW (on the deadline)
    assert pilot["total"]["install_ratio_area_frac"] == pytest.approx((area["A"] + area["B"]) / area.sum())
    assert nxt["status"] == "in_progress" and nxt["total_level"] == "scope"
    assert nxt["total"]["new_kwp_since_baseline"] == 400_000.0 and [d["district"] for d in nxt["districts"]] == ["D2"]
    assert [p["outcome"] for p in result.manifest["totals"]["plans"]] == [pilot["assessment"]["outcome"], None]

    table = pd.read_csv(run_dir / "progress.csv", encoding="utf-8-sig")
    assert set(table["plan"]) == {"pilot", "next"}
    history = pd.read_csv(tmp_path / "runs" / "plans-history.csv", encoding="utf-8-sig")
    # the plan not yet started on 2025-06-30 has no row then; the assessed one is dated at its deadline
    assert sorted(map(tuple, history[history["level"].isin(["city", "scope"])][["as_of", "plan"]].values)) == [
        ("2025-06-30", "pilot"), ("2026-06-30", "next"), ("2026-06-30", "pilot")]
    assert set(history.loc[history["plan"] == "pilot", "figures_as_of"]) == {"2025-06-30", "2025-12-31"}

    out = CliRunner().invoke(commands(), ["progress", str(run_dir), "--lang", "en", "--plan", "pilot"])
    assert out.exit_code == 0, out.output
    assert "District pilot plan" in out.output and "of 800 MW" in out.output and "Next period" not in out.output
    assert "Final assessment at the deadline 2025-12-31" in out.output and "Forecast" not in out.output
    both = CliRunner().invoke(commands(), ["progress", str(run_dir), "--lang", "zh"])
    assert "区级试点计划" in both.output and "下一期（假设）" in both.output and "占2 GW" in both.output
    bad = CliRunner().invoke(commands(), ["progress", str(run_dir), "--plan", "nope"])
    assert bad.exit_code == 2 and "no plan 'nope' in this run; use one of: pilot, next" in bad.output

    index = (run_dir / "maps" / "index.html").read_text()
    for text in ("District pilot plan", "Next period (hypothetical)", "target 40 %", "800 MW", "target 60 %",
                 "2,000 MW", "final assessment at the deadline 2025-12-31"):
        assert text in index, text
    for default in ("1,000 MW", "target 50 %", "百一"):
        assert default not in index, default
    park = (run_dir / "maps" / "park-P2.html").read_text()
    assert "District pilot plan" in park and "Next period (hypothetical)" in park
    assert "Next period" not in (run_dir / "maps" / "park-P1.html").read_text()  # P1 is outside its scope
