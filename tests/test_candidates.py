"""Candidate projects: grouping, statuses across runs, and the gap-closing plan."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from pvsurvey.model.candidates import build_candidates, gap_closing_plan, group_adjoining
from pvsurvey.model.economics import project_economics
from pvsurvey.config.schema import Economics

M = 1 / 111_000  # about a metre in degrees near 31° N (north-south)


def roofs(rows):
    """rows: (building_id, owner, park, x_m, width_m, capacity_kwp, has_pv)."""
    geoms = [shapely.box(121.4 + x * M * 1.17, 31.2, 121.4 + (x + w) * M * 1.17, 31.2 + 40 * M) for _, _, _, x, w, _, _ in rows]
    return gpd.GeoDataFrame({
        "building_id": [r[0] for r in rows], "owner": [r[1] for r in rows], "park_id": [r[2] for r in rows],
        "park_name": "测试园区", "district": "测试区", "name": [f"厂房{r[0]}" for r in rows],
        "usable_area_m2": [r[4] * 40 * 0.8 for r in rows], "capacity_kwp": [r[5] for r in rows],
        "annual_yield_kwh": [r[5] * 1100.0 for r in rows], "has_pv": [r[6] for r in rows],
        "pv_status": ["connected" if r[6] else "none" for r in rows]}, geometry=geoms, crs=4326)


def test_adjoining_roofs_of_one_owner_form_one_project():
    b = roofs([("A", "甲公司", "P1", 0, 50, 200, False), ("B", "甲公司", "P1", 52, 50, 200, False),  # 2 m apart
               ("C", "乙公司", "P1", 104, 50, 200, False),                                         # other owner
               ("D", "甲公司", "P1", 300, 50, 200, False),                                         # far away
               ("E", None, "P1", 356, 50, 200, False), ("F", None, "P1", 408, 50, 200, False)])    # no owner
    labels = group_adjoining(b)
    assert labels[0] == labels[1] and len(set(labels)) == 5
    c = build_candidates(b, Economics(min_candidate_kwp=50)).set_index("project_id")
    assert c.loc["C-A", "building_ids"] == "A;B" and c.loc["C-A", "capacity_kwp"] == 400
    assert c.loc["C-A", "annual_yield_kwh"] == pytest.approx(440_000)
    assert sorted(c.index) == ["C-A", "C-C", "C-D", "C-E", "C-F"]


def test_minimum_size_pv_roofs_and_economics():
    b = roofs([("A", None, "P1", 0, 50, 40, False), ("B", None, "P1", 100, 50, 60, False),
               ("C", None, "P1", 200, 50, 500, True)])
    c = build_candidates(b, Economics(min_candidate_kwp=50))
    assert list(c["project_id"]) == ["C-B"]  # A is below 50 kWp, C already has PV
    expected = project_economics(np.array([60.0]), np.array([66_000.0]), Economics())
    for col in ("capex_cny", "simple_payback_yr", "lcoe_cny_per_kwh", "co2_avoided_t_per_yr", "coal_saved_tce_per_yr"):
        assert c[col].iloc[0] == pytest.approx(expected[col].iloc[0])
    assert c["co2_avoided_t_per_yr"].iloc[0] == pytest.approx(66_000 * 0.42 / 1000)  # Shanghai 0.42 tCO2/MWh
    assert c["coal_saved_tce_per_yr"].iloc[0] == pytest.approx(66_000 * 0.302 / 1000)


def test_statuses_carry_over_and_the_registry_marks_connected():
    b = roofs([("A", None, "P1", 0, 50, 300, False), ("B", None, "P1", 100, 50, 300, True)])
    store = pd.DataFrame({"project_id": ["C-A", "C-B"], "status": ["contacted", "agreed"], "notes": ["王经理 3月回电", ""]})
    c = build_candidates(b, Economics(), store).set_index("project_id")
    assert c.loc["C-A", "status"] == "contacted" and c.loc["C-A", "notes"] == "王经理 3月回电"
    assert c.loc["C-B", "status"] == "connected" and c.loc["C-B", "status_source"] == "registry"


def plan_frame(rows):
    """rows: (project_id, usable_area_m2, capacity_kwp, lcoe, payback, status)."""
    return pd.DataFrame(rows, columns=["project_id", "usable_area_m2", "capacity_kwp", "lcoe_cny_per_kwh",
                                       "simple_payback_yr", "status"]).assign(capex_cny=lambda f: f["capacity_kwp"] * 3000)


def test_gap_closing_plan_picks_exactly_the_cheapest_prefix():
    # park: 10,000 m² usable, 2,000 m² with PV → 20 %; 50 % needs 3,000 m² more
    c = plan_frame([("C-1", 1500, 200, 0.30, 6.0, "identified"),
                    ("C-2", 1000, 150, 0.25, 5.0, "contacted"),
                    ("C-3", 2500, 350, 0.28, 4.0, "identified"),
                    ("C-4", 4000, 600, 0.40, 7.0, "identified"),
                    ("C-5", 9000, 999, 0.10, 1.0, "rejected")])   # refused: never planned
    plan = gap_closing_plan(c, 10_000, 2_000, new_kwp=0, target_ratio=0.5, target_new_kwp=None)
    # cheapest first by LCOE: C-2 (1,000 m²) then C-3 (2,500 m²) → 3,500 ≥ 3,000
    assert list(plan["projects"]["project_id"]) == ["C-2", "C-3"]
    assert plan["closes_ratio_gap"] and plan["ratio_after"] == pytest.approx(0.55)
    # by payback: C-3 (2,500) then C-2 (1,000)
    assert list(gap_closing_plan(c, 10_000, 2_000, 0, 0.5, None, rank_by="payback")["projects"]["project_id"]) == ["C-3", "C-2"]
    # a capacity target of 700 kWp needs C-2, C-3 and C-1 (150 + 350 + 200)
    plan = gap_closing_plan(c, 10_000, 2_000, new_kwp=0, target_ratio=0.5, target_new_kwp=700)
    assert list(plan["projects"]["project_id"]) == ["C-2", "C-3", "C-1"] and plan["closes_capacity_gap"]
    # without PV yet, 100 % needs 10,000 m²: the open projects hold 9,000 (C-5 was refused)
    plan = gap_closing_plan(c, 10_000, 0, 0, 1.0, None)
    assert not plan["closes_ratio_gap"] and len(plan["projects"]) == 4  # all that is left, still short
    assert gap_closing_plan(c, 10_000, 6_000, 0, 0.5, None)["projects"].empty  # already met


def test_project_pv_takes_the_most_advanced_roof():
    from pvsurvey.model.candidates import project_pv

    per_building = pd.DataFrame({"pv_status": ["connected", "planned", "under_construction"]}, index=["B", "C", "D"])
    any_pv, state = project_pv(pd.Series(["A", "B", "A;C", "C;D", "E;B"]), per_building)
    assert list(any_pv) == [False, True, False, False, True]
    assert list(state) == ["none", "connected", "planned", "under_construction", "connected"]


def test_single_roof_projects_equal_the_groupby_they_skip(monkeypatch):
    import pvsurvey.model.candidates as candidates

    b = roofs([("A", None, "P1", 0, 50, 300, False), ("B", "甲公司", None, 100, 50, 80, False),
               ("C", None, None, 200, 50, 500, True), ("D", None, None, 300, 30, 120, False),
               ("E", "乙公司", "P1", 400, 20, 40, False)])
    b.loc[1, "pv_status"] = "under_construction"
    # what a real roof may lack: a waterfall step, a grid limit, a voltage
    b["setback_loss_m2"] = [10.0, np.nan, 5.0, 7.5, 1.0]
    b["grid_capacity_kw"] = [np.nan, 50.0, np.nan, 200.0, np.nan]
    b["connection_voltage_kv"] = [10.0, np.nan, 0.4, np.nan, 0.4]
    store = pd.DataFrame({"project_id": ["C-C", "C-D"], "status": ["agreed", "rejected"], "notes": ["", "屋顶漏水"]})
    fast = build_candidates(b, Economics(min_candidate_kwp=50), store)
    assert np.bincount(group_adjoining(b)).max() == 1  # every project one roof: the fast path ran
    monkeypatch.setattr(candidates, "_single_roof_projects", lambda roofs, group: candidates._grouped_projects(roofs))
    grouped = build_candidates(b, Economics(min_candidate_kwp=50), store)
    pd.testing.assert_frame_equal(pd.DataFrame(fast.drop(columns="geometry")),
                                  pd.DataFrame(grouped.drop(columns="geometry")))
    assert fast.geometry.equals(grouped.geometry)
    assert sorted(fast["project_id"]) == ["C-A", "C-B", "C-C", "C-D"]  # E is below 50 kWp
    row = fast.set_index("project_id").loc["C-B"]  # a missing step counts 0 in the project's sum, as pandas' sum
    assert row["setback_loss_m2"] == 0.0 and row["status"] == "under_construction"
    assert fast.set_index("project_id").loc["C-C", "status"] == "connected"


def test_round_two_links_a_part_the_registry_leaves_alone_and_rewrites_the_rest(tmp_path):
    import os

    import pyarrow.parquet as pq

    from pvsurvey.io.writers import write_geoparquet
    from pvsurvey.model.candidates import apply_statuses, project_pv, stored_candidates, stored_projects
    from pvsurvey.pipeline.pv_and_projects import FinishContext, FinishTask, finish_partition
    from pvsurvey.store.run_directory import candidate_part

    b = roofs([("A", None, None, 0, 50, 300, False), ("B", None, None, 100, 50, 200, False),
               ("C", None, None, 200, 50, 120, False), ("D", None, None, 300, 50, 90, False)])
    projects = build_candidates(b, Economics(min_candidate_kwp=50))
    part = tmp_path / "round1.parquet"
    write_geoparquet(stored_projects(projects), part)  # as round 1 writes it

    def finish(per_building, statuses, out):
        ctx = FinishContext(Economics(min_candidate_kwp=50), statuses, out, out / "_parts")
        result = finish_partition(FinishTask(0, None, part, per_building, 4), ctx)
        return result.candidates, candidate_part(out, "part-00000")

    nothing = pd.DataFrame({"pv_status": pd.Series([], dtype=object)})
    counts, path = finish(nothing, None, tmp_path / "same")
    assert os.stat(path).st_ino == os.stat(part).st_ino  # linked, not rewritten
    assert counts == {"projects": 4, "capacity_kwp": 710.0, "by_status": {"identified": 4}}

    # B gets connected PV, a manager tracks C and D (D's also connected): B leaves, D stays "connected"
    per_building = pd.DataFrame({"pv_status": ["connected", "connected"]}, index=["B", "D"])
    store = pd.DataFrame({"project_id": ["C-C", "C-D"], "status": ["agreed", "contacted"], "notes": ["周五签约", ""]})
    counts, path = finish(per_building, store, tmp_path / "changed")
    assert os.stat(path).st_ino != os.stat(part).st_ino
    got = gpd.read_parquet(path)
    # the reference: the whole table through pandas, as round 2 did before it went through Arrow
    frame = pd.DataFrame(pq.read_table(part).drop_columns(["geometry"]).to_pandas())
    any_pv, building_pv = project_pv(frame["building_ids"], per_building)
    ref = apply_statuses(frame.drop(columns=["status", "notes", "status_source"]).assign(
        any_pv=any_pv, building_pv=building_pv), store)
    ref = stored_candidates(ref[~any_pv | ref["project_id"].isin(store["project_id"]).to_numpy()]).reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")), ref, check_dtype=False)
    assert list(got["project_id"]) == ["C-A", "C-C", "C-D"]
    assert list(got["status"]) == ["identified", "agreed", "connected"]
    assert list(got["notes"]) == ["", "周五签约", ""]
    assert got.geometry.equals(projects.set_index("project_id").loc[["C-A", "C-C", "C-D"]].geometry.reset_index(drop=True))
    assert counts == {"projects": 3, "capacity_kwp": 510.0, "by_status": {"identified": 1, "agreed": 1, "connected": 1}}
