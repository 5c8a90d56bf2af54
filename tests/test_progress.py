"""Progress toward the targets: hand-computable ratios, every matching rule, the history."""

import codecs
import datetime as dt
import json
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import REPO
from pvsurvey.errors import InputFileError
from pvsurvey.io.registry import read_registry, usable_rows
from pvsurvey.config.schema import VectorSource
from pvsurvey.model.registry_matching import (REGISTRY_REASONS, match_by_id, match_registry, pv_by_building,
                                              resolve_matches)
from pvsurvey.model.targets import pace_and_forecast, progress_metrics, progress_sums
from pvsurvey.store.history import append_history, read_history

BASELINE = dt.date(2022, 1, 1)


def four_buildings(has_pv):
    return pd.DataFrame({
        "park_id": ["P1"] * 4, "usable_area_m2": [100.0, 200.0, 300.0, 400.0],
        "capacity_kwp": [10.0, 20.0, 30.0, 40.0], "annual_yield_kwh": [11e3, 22e3, 33e3, 44e3],
        "has_pv": has_pv, "installed_kwp": np.where(has_pv, [5.0, 15.0, 25.0, 35.0], 0.0),
        "new_kwp": np.where(has_pv, [0.0, 15.0, 0.0, 35.0], 0.0), "pipeline_kwp": 0.0})


def test_area_and_count_ratios_of_four_buildings():
    sums = progress_sums(four_buildings([False, True, False, True]), "park_id", min_candidate_kwp=0)
    m = progress_metrics(sums, 0.5, np.nan).loc["P1"]
    assert m["install_ratio_area_frac"] == pytest.approx(0.6)  # (200 + 400) / 1000
    assert m["install_ratio_count_frac"] == pytest.approx(0.5)  # 2 of 4
    assert m["installed_kwp"] == 50.0 and m["remaining_potential_kwp"] == 40.0  # 10 + 30 without PV
    assert m["ratio_gap_frac"] == 0.0 and bool(m["can_close_ratio_gap"])
    # PV only on the 100 m² roof: 10 %; 40 % of 1000 m² still to equip, and 900 m² are free
    m = progress_metrics(progress_sums(four_buildings([True, False, False, False]), "park_id", 0), 0.5, 100.0).loc["P1"]
    assert m["install_ratio_area_frac"] == pytest.approx(0.1)
    assert m["ratio_gap_area_m2"] == pytest.approx(400.0) and bool(m["can_close_ratio_gap"])
    assert m["new_capacity_gap_kwp"] == pytest.approx(100.0) and not bool(m["can_close_capacity_gap"])  # only 90 kWp left
    # partition sums add up to the whole
    parts = [progress_sums(four_buildings([False, True, False, True]).iloc[s], "park_id", 0) for s in (slice(0, 1), slice(1, 4))]
    pd.testing.assert_frame_equal(pd.concat(parts).groupby(level=0).sum(), sums)



def test_progress_sums_equal_a_pandas_groupby_of_every_figure():
    # keys as a partition holds them: missing (NA and None), "" itself, Arrow text, one numeric level
    rng = np.random.default_rng(7)
    n = 400
    has_pv = rng.random(n) < 0.3
    usable = np.where(rng.random(n) < 0.2, 0.0, rng.uniform(50, 5000, n))
    frame = pd.DataFrame({
        "park_id": pd.array(rng.choice(["P2", "P1", "", None, "园区3"], n), dtype="string[pyarrow]"),
        "district": rng.choice([3, 1, 2], n), "usable_area_m2": usable, "capacity_kwp": usable * 0.15,
        "annual_yield_kwh": usable * 160.0, "has_pv": has_pv, "installed_kwp": np.where(has_pv, 100.0, 0.0),
        "new_kwp": np.where(has_pv, 50.0, 0.0), "pipeline_kwp": rng.choice([0.0, 30.0], n),
        "new_kwp@p2030": np.where(has_pv, 20.0, 0.0), "pv_kwp@p2030": np.where(has_pv, 80.0, 0.0)})
    for by in ("park_id", "district"):
        sums = progress_sums(frame, by, min_candidate_kwp=100.0)
        # the reference: each figure per building, summed by pandas per key as text ("" for none)
        b, free, pv = frame, ~frame["has_pv"], frame["pv_kwp@p2030"] > 0
        with_pv = np.where(b["has_pv"] & (usable > 0), usable, 0.0)
        with_pv_plan = np.where(pv & (usable > 0), usable, 0.0)
        ref = pd.DataFrame({
            by: b[by].astype("string").fillna("").to_numpy(dtype=object), "building_count": 1,
            "usable_building_count": (usable > 0).astype(int), "usable_area_m2": usable,
            "usable_area_with_pv_m2": with_pv, "buildings_with_pv": (b["has_pv"] & (usable > 0)).astype(int),
            "installed_kwp": b["installed_kwp"], "new_kwp_since_baseline": b["new_kwp"],
            "pipeline_kwp": b["pipeline_kwp"], "capacity_kwp": b["capacity_kwp"],
            "annual_yield_kwh": b["annual_yield_kwh"], "remaining_potential_kwp": np.where(free, b["capacity_kwp"], 0.0),
            "remaining_potential_kwh": np.where(free, b["annual_yield_kwh"], 0.0),
            "candidate_area_without_pv_m2": np.where(free & (b["capacity_kwp"] >= 100.0), usable, 0.0),
            "usable_area_sumsq_m4": usable ** 2, "capacity_sumsq_kwp2": b["capacity_kwp"] ** 2,
            "annual_yield_sumsq_kwh2": b["annual_yield_kwh"] ** 2,
            "remaining_potential_sumsq_kwp2": np.where(free, b["capacity_kwp"], 0.0) ** 2,
            "remaining_potential_sumsq_kwh2": np.where(free, b["annual_yield_kwh"], 0.0) ** 2,
            "usable_area_with_pv_sumsq_m4": with_pv ** 2,
            "new_kwp_since_baseline@p2030": b["new_kwp@p2030"], "installed_kwp@p2030": b["pv_kwp@p2030"],
            "usable_area_with_pv_m2@p2030": with_pv_plan, "buildings_with_pv@p2030": (pv & (usable > 0)).astype(int),
            "usable_area_with_pv_sumsq_m4@p2030": with_pv_plan ** 2}).groupby(by, sort=True).sum()
        assert sorted(sums.columns) == sorted(ref.columns)
        assert list(sums.index) == list(ref.index)  # "" first, then sorted text: NA and None count as ""
        pd.testing.assert_frame_equal(sums[ref.columns], ref, check_index_type=False, check_dtype=False, rtol=1e-12)
        assert (sums["building_count"].dtype.kind, sums["buildings_with_pv@p2030"].dtype.kind) == ("i", "i")
    assert list(progress_sums(frame, "district", 0.0).index) == ["1", "2", "3"]


def test_ratio_gap_not_closable_when_candidates_too_small():
    sums = progress_sums(four_buildings([False, False, False, False]), "park_id", min_candidate_kwp=35.0)
    m = progress_metrics(sums, 0.5, np.nan).loc["P1"]
    assert m["ratio_gap_area_m2"] == pytest.approx(500.0)
    assert not bool(m["can_close_ratio_gap"])  # only the 400 m² roof reaches 35 kWp


@pytest.fixture
def buildings():
    # three 20 × 20 m roofs about 100 m apart near 31.2 N (degrees ≈ metres / 111 km)
    d = 20 / 111_000
    return gpd.GeoDataFrame({"building_id": ["A", "B", "C"]}, geometry=[
        shapely.box(121.4, 31.2, 121.4 + d, 31.2 + d),
        shapely.box(121.401, 31.2, 121.401 + d, 31.2 + d),
        shapely.box(121.402, 31.2, 121.402 + d, 31.2 + d)], crs=4326)


def registry_frame(rows):
    frame = pd.DataFrame(rows)
    for col, default in (("building_id", pd.NA), ("lon", np.nan), ("lat", np.nan), ("array_geometry", None),
                         ("reject_reason", pd.NA), ("capacity_kwp", 100.0), ("status", "connected"),
                         ("commissioned_on", dt.date(2023, 1, 1))):
        if col not in frame:
            frame[col] = [default] * len(frame)
        else:
            frame[col] = [default if pd.isna(v) else v for v in frame[col]]
    frame["building_id"] = frame["building_id"].astype("string")
    frame["reject_reason"] = frame["reject_reason"].astype("string")
    frame["registry_row"] = np.arange(len(frame))
    return frame


def test_every_matching_rule_and_every_miss(buildings):
    d = 20 / 111_000
    reg = registry_frame([
        {"building_id": "B"},                                          # by id
        {"lon": 121.4 + d / 2, "lat": 31.2 + d / 2},                   # inside A
        {"lon": 121.402 + d + 10 / 95_400, "lat": 31.2 + d / 2},       # 10 m east of C: nearest
        {"array_geometry": shapely.box(121.401 - d / 4, 31.2, 121.401 + d / 4, 31.2 + d)},  # overlaps B
        {"building_id": "Z"},                                          # unknown id
        {"lon": 121.41, "lat": 31.2},                                  # ~900 m from any roof
        {},                                                            # no location at all
        {"building_id": "A", "capacity_kwp": 50.0},                    # second system on A
    ])
    cands = match_registry(usable_rows(reg), buildings, max_distance_m=30.0)
    out = resolve_matches(reg, cands).set_index("registry_row")
    assert list(out["matched_building_id"].iloc[:4]) == ["B", "A", "C", "B"]
    assert list(out["match_method"].iloc[:4]) == ["id", "contains", "nearest", "polygon"]
    assert out["match_distance_m"].iloc[2] == pytest.approx(10.0, abs=0.5)
    assert list(out["unmatched_reason"].iloc[4:7]) == ["unknown_building_id", "no_building_within_distance", "no_location"]
    # every miss says what it means; a match has no message
    assert list(out["unmatched_message"].iloc[4:7]) == [REGISTRY_REASONS[c] for c in out["unmatched_reason"].iloc[4:7]]
    assert out["unmatched_message"].iloc[[0, 1, 2, 3, 7]].isna().all()
    # far beyond the surveyed roofs: a data error, not a miss
    far = resolve_matches(reg, cands, survey_bounds=(121.39, 31.19, 121.403, 31.21)).set_index("registry_row")
    assert far["unmatched_reason"].iloc[5] == "no_building_within_distance"  # 0.007° east: within the margin
    far = resolve_matches(reg, cands, survey_bounds=(121.30, 31.19, 121.35, 31.21)).set_index("registry_row")
    assert far["unmatched_reason"].iloc[5] == "outside_survey_area"
    assert far["unmatched_message"].iloc[5] == REGISTRY_REASONS["outside_survey_area"]
    per = pv_by_building(out.reset_index(), BASELINE, dt.date(2025, 6, 30))
    assert per.loc["A", "installed_kwp"] == 150.0  # rows on one building add up
    assert per.loc["B", "installed_kwp"] == 200.0


def test_a_cached_partition_matched_by_ids_alone_gives_the_same_candidates(buildings):
    """A night's cached partitions use the id rule on plain arrays (parallel.SurveyContext.registry_by_id)."""
    from pvsurvey.pipeline.survey_task import SurveyContext

    reg = usable_rows(registry_frame([{"building_id": "B"}, {"building_id": "Z"}, {"building_id": "A"},
                                      {"building_id": "B", "capacity_kwp": 20.0}]))
    ctx = SurveyContext(None, None, None, None, None, registry=reg)
    fast = match_by_id(*ctx.registry_by_id(), np.array(["A", "B", "C"], dtype=object))
    full = match_registry(reg, buildings, max_distance_m=30.0)
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), full.reset_index(drop=True))
    assert list(fast["registry_row"]) == [0, 2, 3] and list(fast["building_id"]) == ["B", "A", "B"]


@pytest.mark.parametrize("order", [["Q", "P", "R"], ["R", "Q", "P"]])
def test_overlapping_outlines_match_the_same_building_however_partitioned(order):
    """A point inside two overlapping outlines goes to the smaller id, an array to the
    building it overlaps most — in one partition or split over several, in any order."""
    d = 20 / 111_000
    outlines = {"P": shapely.box(121.4, 31.2, 121.4 + d, 31.2 + d),             # P and Q overlap
                "Q": shapely.box(121.4 + d / 2, 31.2, 121.4 + 1.5 * d, 31.2 + d),
                "R": shapely.box(121.4 + 1.4 * d, 31.2, 121.4 + 2.4 * d, 31.2 + d)}  # overlaps Q a little
    frame = gpd.GeoDataFrame({"building_id": order}, geometry=[outlines[b] for b in order], crs=4326)
    reg = registry_frame([
        {"lon": 121.4 + 0.75 * d, "lat": 31.2 + d / 2},  # inside P and Q
        {"array_geometry": shapely.box(121.4 + 1.3 * d, 31.2, 121.4 + 2.3 * d, 31.2 + d)},  # mostly R, some Q
    ])
    usable = usable_rows(reg)
    whole = resolve_matches(reg, match_registry(usable, frame, 30.0))
    split = resolve_matches(reg, pd.concat([match_registry(usable, frame.iloc[[i]], 30.0) for i in range(3)],
                                           ignore_index=True))
    for out in (whole, split):
        assert list(out["matched_building_id"]) == ["P", "R"]
        assert list(out["match_method"]) == ["contains", "polygon"]


def test_nearest_rule_respects_the_distance(buildings):
    d = 20 / 111_000
    reg = registry_frame([{"lon": 121.4 - 40 / 95_400, "lat": 31.2 + d / 2}])  # 40 m west of A
    assert len(match_registry(usable_rows(reg), buildings, 30.0)) == 0
    assert list(match_registry(usable_rows(reg), buildings, 50.0)["building_id"]) == ["A"]


def test_new_capacity_counts_only_systems_after_the_baseline():
    reg = registry_frame([
        {"commissioned_on": dt.date(2021, 12, 31), "capacity_kwp": 100.0},  # before the baseline
        {"commissioned_on": dt.date(2022, 1, 2), "capacity_kwp": 200.0},
        {"commissioned_on": dt.date(2025, 7, 1), "capacity_kwp": 400.0},    # after the as-of date
        {"commissioned_on": None, "status": "planned", "capacity_kwp": 800.0},
    ]).assign(matched_building_id=["A", "A", "B", "C"])
    per = pv_by_building(reg, BASELINE, dt.date(2025, 6, 30))
    assert per.loc["A", "installed_kwp"] == 300.0 and per.loc["A", "new_kwp"] == 200.0
    assert per.loc["B", "installed_kwp"] == 0.0 and per.loc["B", "pv_status"] == "under_construction"
    assert per.loc["C", "pipeline_kwp"] == 800.0 and per.loc["C", "pv_status"] == "planned"
    assert list(per["has_pv"]) == [True, False, False]


def test_forecast_of_a_constant_pace_is_exact():
    # 100 kWp a day from 2024-01-01: 1,000,000 kWp is reached on day 10,000
    days = [0, 30, 61, 91]
    history = pd.DataFrame({"as_of": pd.to_datetime("2024-01-01") + pd.to_timedelta(days, unit="D"),
                            "new_kwp": [100.0 * d for d in days]})
    f = pace_and_forecast(history, "new_kwp", 1_000_000.0)
    assert f["pace_per_day"] == pytest.approx(100.0)
    assert f["forecast_date"] == (dt.date(2024, 1, 1) + dt.timedelta(days=10_000)).isoformat()
    assert pace_and_forecast(history.iloc[:1], "new_kwp", 1e6)["status"] == "too_few_points"
    assert pace_and_forecast(history, "new_kwp", 5_000.0)["status"] == "met"
    flat = history.assign(new_kwp=5.0)
    assert pace_and_forecast(flat, "new_kwp", 1e6)["status"] == "no_progress"
    # 1 kWp a year towards 1 GW: a million years, past any date pandas can write
    slow = history.assign(new_kwp=[d / 365.0 for d in days])
    far = pace_and_forecast(slow, "new_kwp", 1e6)
    assert far["status"] == "no_progress" and far["forecast_date"] is None
    assert far["pace_per_day"] == pytest.approx(1 / 365.0)


def test_every_registry_reason_code_has_a_message():
    import inspect
    import re

    from pvsurvey.io import registry
    from pvsurvey.model import registry_matching

    # the codes the reader flags and the codes matching sets, read from the code itself
    codes = set(re.findall(r'flag\(.*, "(\w+)"\)', inspect.getsource(registry)))
    codes |= set(re.findall(r'reason\[.*\] = "(\w+)"', inspect.getsource(registry_matching)))
    assert len(codes) == 13  # invalid_geometry: an array polygon GEOS cannot build, and nothing else locates the row;
    # malformed_row: more fields than the header; implausible_capacity: above MAX_ROOFTOP_KWP; duplicate_row
    assert all(REGISTRY_REASONS.get(code, "").strip() for code in codes)
    assert set(REGISTRY_REASONS) == codes  # and no message for a code that never occurs


def test_registry_reader_flags_bad_rows_and_needs_columns(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text("registry_id,building_id,lon,lat,capacity_kwp,commissioned_on,status\n"
                    "R1,A,,,120,2023-05-01,connected\n"
                    "R2,,121.4,31.2,abc,2023-05-01,connected\n"
                    "R3,,121.4,31.2,-5,2023-05-01,connected\n"
                    "R4,A,,,50,2023-13-45,connected\n"
                    "R5,A,,,50,,connected\n"
                    "R6,A,,,50,,maybe\n"
                    "R7,,500,31.2,50,2023-05-01,并网\n"
                    "R8,B,,,80,,规划\n", encoding="utf-8")
    reg = read_registry(VectorSource(path=path))
    assert list(reg["reject_reason"].fillna("")) == ["", "invalid_capacity", "invalid_capacity", "invalid_date",
                                                     "connected_without_date", "unknown_status",
                                                     "invalid_coordinates", ""]
    assert reg["status"].iloc[6] == "connected" and reg["status"].iloc[7] == "planned"  # Chinese spellings
    assert all(REGISTRY_REASONS.get(code) for code in reg["reject_reason"].dropna())  # each with a message
    assert len(usable_rows(reg)) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("building_id,capacity_kwp\nA,10\n")
    with pytest.raises(InputFileError, match="needs the columns capacity_kwp, commissioned_on, status.*missing commissioned_on, status"):
        read_registry(VectorSource(path=bad))


def pvsurvey(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pvsurvey", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.mark.slow
def test_two_registry_snapshots_give_a_history_a_forecast_and_a_report(tmp_path):
    run = tmp_path / "runs" / "shanghai-demo"
    first = pvsurvey("run", "--serial", "--out", run, "--installations",
                     REPO / "data/demo/installations-2024-06-30.csv", "--as-of", "2024-06-30", cwd=tmp_path)
    assert first.returncode == 0, first.stderr  # the demo's bad rows stay under the config's 'checks'
    second = pvsurvey("run", "--serial", "--out", run, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    history = pd.read_csv(tmp_path / "runs" / "shanghai-demo-history.csv", encoding="utf-8-sig")
    city = history[history["level"] == "city"]
    assert list(city["as_of"]) == ["2024-06-30", "2025-06-30"]
    assert city["new_kwp_since_baseline"].is_monotonic_increasing
    assert len(history[history["level"] == "park"]) == 20
    doc = json.loads((run / "progress.json").read_text())
    assert doc["forecast"]["points"] == 2 and doc["forecast"]["new_capacity"]["status"] == "on_pace"
    # the demo registry exercises every rule, with exactly one row that matches nothing
    assert set(doc["registry"]["matched_by"]) == {"id", "contains", "nearest", "polygon"}
    assert doc["registry"]["unmatched_by_reason"] == {"no_building_within_distance": 1}
    matched = pd.read_csv(run / "installations_matched.csv", encoding="utf-8-sig")
    assert len(matched) == doc["registry"]["rows"]
    b = gpd.read_parquet(run / "buildings.parquet")
    assert b["installed_kwp"].sum() == pytest.approx(doc["city"]["installed_kwp"])
    assert doc["city"]["install_ratio_area_frac"] == pytest.approx(
        b.loc[b["has_pv"], "usable_area_m2"].sum() / b.loc[b["usable_area_m2"] > 0, "usable_area_m2"].sum())
    # some parks are half built with PV, some hardly at all
    ratios = {p["park_id"]: p["install_ratio_area_frac"] for p in doc["parks"]}
    assert ratios["P01"] > 0.45 and ratios["P10"] < 0.05

    report = pvsurvey("progress", run, "--lang", "en", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert lines[1].startswith("Name") and lines[3].startswith("City")
    parks = [line.split()[0] for line in lines if line.startswith("P") and line[1:3].isdigit()]
    assert parks[0] == "P10" and parks[-1] == "P01"  # furthest from target first
    assert (run / "progress.png").stat().st_size > 10_000 and (run / "progress.svg").is_file()
    zh = pvsurvey("progress", run, "--lang", "zh", cwd=tmp_path)
    assert "全市" in zh.stdout and "屋顶光伏目标进展" in zh.stdout
    assert "安装比例" in (run / "progress.svg").read_text(encoding="utf-8")


# ------------------------------------------------------------- the history as Excel leaves it

def _history_rows(new_kwp: float) -> pd.DataFrame:
    """A run's history rows: the city, a district and a park, Chinese names included."""
    return pd.DataFrame({"plan": "baiyi-2022-2025", "plan_status": "in_progress", "level": ["city", "district", "park"],
                         "key": ["city", "徐汇区", "P01"], "name": ["", "徐汇区", "漕河泾新兴技术开发区"],
                         "usable_area_m2": [556546.5810547941, 556546.5810547941, 0.1],
                         "install_ratio_area_frac": [0.26326384386096957, 0.26326384386096957, 0.0],
                         "new_kwp_since_baseline": [new_kwp, new_kwp, 0.0]})


def test_a_history_saved_as_gbk_reads_as_the_utf8_one_and_is_rewritten_as_utf8(tmp_path):
    written = tmp_path / "utf8-bom.csv"
    append_history(written, _history_rows(7099.2), dt.date(2025, 6, 30), "2025-07-01T01:00:00+00:00", "baiyi-2022-2025")
    expected = read_history(written, "baiyi-2022-2025")
    assert list(expected["name"].fillna("")) == ["", "徐汇区", "漕河泾新兴技术开发区"]
    text = written.read_text(encoding="utf-8-sig")
    for encoding in ("gbk", "gb18030", "utf-8"):  # Excel on Chinese Windows; a plain UTF-8 editor
        saved = tmp_path / f"{encoding}.csv"
        saved.write_bytes(text.encode(encoding))
        pd.testing.assert_frame_equal(read_history(saved, "baiyi-2022-2025"), expected)
    # the next run appends to the GBK file: rewritten as UTF-8 with BOM, the old rows as they were
    gbk = tmp_path / "gbk.csv"
    append_history(gbk, _history_rows(9000.0), dt.date(2025, 12, 31), "2026-01-01T01:00:00+00:00", "baiyi-2022-2025")
    assert gbk.read_bytes().startswith(codecs.BOM_UTF8)
    again = pd.read_csv(gbk, encoding="utf-8-sig", dtype={"key": str, "name": str, "plan": str})
    pd.testing.assert_frame_equal(again[again["as_of"] == "2025-06-30"].reset_index(drop=True), expected)
    assert list(again.loc[again["as_of"] == "2025-12-31", "new_kwp_since_baseline"]) == [9000.0, 9000.0, 0.0]


def test_history_dates_as_excel_writes_them_are_read_as_iso_dates(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes("as_of,level,key,name,new_kwp_since_baseline\n2025/6/30,city,city,,5.0\n,,,,\n"
                     "2025-12-31,city,city,,6.0\n".encode("gbk"))
    history = read_history(path, "baiyi-2022-2025")
    assert list(history["as_of"]) == ["2025-06-30", "2025-12-31"]  # the spreadsheet's empty row dropped
    # a rerun for 2025-06-30 replaces that date's row, not adds a second one
    out = append_history(path, _history_rows(7.0).iloc[:1], dt.date(2025, 6, 30), "x", "baiyi-2022-2025")
    assert list(out["as_of"]) == ["2025-06-30", "2025-12-31"] and list(out["new_kwp_since_baseline"]) == [7.0, 6.0]
    path.write_text("as_of,level,key\n2025-06-30,city,city\nlast june,city,city\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"h\.csv, line 3: as_of 'last june' is not a date; write it as YYYY-MM-DD"):
        read_history(path)


def test_an_empty_history_is_none_yet_and_a_foreign_file_one_clear_error(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(b"")
    assert read_history(path) is None  # 0 bytes: nothing to keep; the next run writes it whole
    append_history(path, _history_rows(1.0), dt.date(2025, 6, 30), "x", "baiyi-2022-2025")
    assert len(read_history(path)) == 3
    path.write_text("id,value\n1,2\n", encoding="utf-8")
    with pytest.raises(InputFileError) as raised:
        read_history(path)
    assert str(raised.value) == (f"{path}: not a progress history (no column as_of, level, key; it has id, value); "
                                 "move it away (pvsurvey then starts a new history), or set progress.history_file "
                                 "to another file")
    path.write_text('as_of,level,key\n"2025-06-30,city,city\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"h\.csv: not a readable progress history \(.*EOF inside string.*\); "
                                             r"repair it, or move it away"):
        read_history(path)
    path.write_bytes("as_of,level,key\n2025-06-30,city,\u00e9\n".encode("utf-16-le"))  # no BOM: neither encoding
    with pytest.raises(InputFileError, match=r"h\.csv: text that is neither UTF-8 nor GBK/GB18030 .*; save it again "
                                             r"as UTF-8 \(Excel: 'CSV UTF-8'\) or GBK, or move it away"):
        read_history(path)
    with pytest.raises(InputFileError, match="a directory, not a progress history"):
        read_history(tmp_path)
