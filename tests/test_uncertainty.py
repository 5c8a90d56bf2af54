"""The uncertainty bands (pvsurvey.model.uncertainty) and the check against metered
generation (pvsurvey.model.validation): hand-computed cases, a Monte Carlo
reference, and round trips through a run's files."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from pvsurvey.config.schema import Uncertainty
from pvsurvey.model.targets import progress_metrics, progress_sums
from pvsurvey.model.uncertainty import (Z90, BandParts, add_bands, band_parts, building_bands, cell_squares,
                                        forecast_range, lognormal_band, prob_at_least, sum_cv)
from pvsurvey.model.validation import compare_systems, summarise_validation, system_sd_log

PARTS = BandParts(area_systematic=0.1, area_building=0.2, irradiance_systematic=0.08, irradiance_cell=0.05,
                  model_chain=0.04, typical_year=0.03)


def _buildings(area, pv=None, cells=None, sy=1000.0):
    n = len(area)
    area = np.asarray(area, dtype=float)
    cap = area * 0.15
    return pd.DataFrame({"city": "city", "usable_area_m2": area, "capacity_kwp": cap, "annual_yield_kwh": cap * sy,
                         "has_pv": np.zeros(n, bool) if pv is None else np.asarray(pv, bool),
                         "installed_kwp": 0.0, "new_kwp": 0.0, "pipeline_kwp": 0.0,
                         "weather_cell": ["c0"] * n if cells is None else cells})


def _city(frame, parts, target=0.5):
    cells = {}
    sums = progress_sums(frame, "city", 0.0, cells)
    m = progress_metrics(sums, target, 1000.0)
    return add_bands(m, parts, cell_squares(cells["city"], m.index)).iloc[0]


def test_two_buildings_by_hand_correlated_and_independent():
    # two roofs of 100 and 300 m²: S = 400
    # systematic 10 % and per-building 20 %: Var = 400²·0.01 + (100² + 300²)·0.04 = 1600 + 4000
    assert sum_cv(400.0, 100.0 ** 2 + 300.0 ** 2, 0.0, 0.1 ** 2, 0.0, 0.2 ** 2) == pytest.approx(math.sqrt(5600) / 400)
    # fully correlated (all 20 % systematic): the sum's spread is 20 %, like each roof's
    assert sum_cv(400.0, 1e5, 0.0, 0.04, 0.0, 0.0) == pytest.approx(0.2)
    # fully independent (all 20 % per building): sqrt(1e5 · 0.04) / 400 = 63.25 / 400
    assert sum_cv(400.0, 1e5, 0.0, 0.0, 0.0, 0.04) == pytest.approx(math.sqrt(4000) / 400)
    # lognormal with the figure as median: sigma_log = sqrt(ln(1 + 0.2²)) = 0.19804
    p90, p10 = lognormal_band(400.0, 0.2)
    assert p90 == pytest.approx(400 * math.exp(-1.2815516 * 0.1980422), rel=1e-6)
    assert p10 == pytest.approx(400 * math.exp(+1.2815516 * 0.1980422), rel=1e-6)
    assert p90 == pytest.approx(310.34, abs=0.05)  # by hand: exp(-0.25380) = 0.77586
    # the same through the progress sums of two buildings (area: systematic 10 %, per building 20 %)
    row = _city(_buildings([100.0, 300.0]), PARTS)
    cv = math.sqrt(5600) / 400
    assert row["usable_area_p90_m2"] == pytest.approx(lognormal_band(400.0, cv)[0])
    assert row["capacity_p10_kwp"] == pytest.approx(lognormal_band(60.0, cv)[1])


def test_cell_part_correlates_roofs_of_one_cell_only():
    frame = _buildings([100.0, 300.0])
    same = _city(frame, PARTS)
    apart = _city(frame.assign(weather_cell=["c0", "c1"]), PARTS)
    y = frame["annual_yield_kwh"].to_numpy()
    sys2 = 0.1 ** 2 + 0.08 ** 2 + 0.04 ** 2 + 0.03 ** 2
    for row, cell_sq in ((same, y.sum() ** 2), (apart, (y ** 2).sum())):
        var = y.sum() ** 2 * sys2 + cell_sq * 0.05 ** 2 + (y ** 2).sum() * 0.2 ** 2
        assert row["annual_yield_p90_kwh"] == pytest.approx(lognormal_band(y.sum(), math.sqrt(var) / y.sum())[0])
    assert same["annual_yield_p90_kwh"] < apart["annual_yield_p90_kwh"]  # one cell: a wider band


def test_one_building_band_is_the_same_as_a_sum_of_one():
    frame = _buildings([250.0])
    row = _city(frame, PARTS)
    per_building = building_bands(frame, PARTS)
    for col in ("usable_area_p90_m2", "capacity_p10_kwp", "annual_yield_p90_kwh", "annual_yield_p10_kwh"):
        assert per_building[col][0] == pytest.approx(row[col])


def test_city_band_is_wider_than_the_sum_of_independent_bands_and_matches_monte_carlo():
    rng = np.random.default_rng(1)
    area = rng.uniform(500, 20_000, 400)
    cells = rng.choice(["a", "b", "c"], 400)
    frame = _buildings(area, cells=list(cells))
    row = _city(frame, PARTS)
    y = frame["annual_yield_kwh"].to_numpy()
    # every roof's own band, treated as independent (what a naive sum would do)
    cv_b2 = PARTS.yield_sys2 + PARTS.irradiance_cell ** 2 + PARTS.area_building ** 2
    naive_p90, naive_p10 = lognormal_band(y.sum(), math.sqrt((y ** 2).sum() * cv_b2) / y.sum())
    assert row["annual_yield_p10_kwh"] - row["annual_yield_p90_kwh"] > 3 * (naive_p10 - naive_p90)
    # reference: draw the model's errors (multiplicative, lognormal with these relative spreads)
    draws = 20_000

    def factor(cv, size):
        s = math.sqrt(math.log1p(cv ** 2))
        return np.exp(rng.normal(-s * s / 2, s, size))  # mean 1, relative sd cv

    sys = np.prod([factor(c, (draws, 1)) for c in (0.1, 0.08, 0.04, 0.03)], axis=0)
    cell_ids = pd.factorize(cells)[0]
    per_cell = factor(0.05, (draws, 3))[:, cell_ids]
    total = (y[None, :] * sys * per_cell * factor(0.2, (draws, len(y)))).sum(axis=1)
    # the analytic band has the figure as its median; compare spreads relative to the median
    q10, q50, q90 = np.quantile(total, [0.1, 0.5, 0.9])
    assert row["annual_yield_p90_kwh"] / y.sum() == pytest.approx(q10 / q50, rel=0.02)
    assert row["annual_yield_p10_kwh"] / y.sum() == pytest.approx(q90 / q50, rel=0.02)


def test_ratio_band_cancels_the_systematic_area_factor():
    rng = np.random.default_rng(2)
    area = rng.uniform(1000, 10_000, 300)
    pv = rng.random(300) < 0.3
    frame = _buildings(area, pv=pv)
    row = _city(frame, PARTS)
    no_sys = _city(frame, BandParts(0.0, 0.2, 0.08, 0.05, 0.04, 0.03))
    assert row["install_ratio_p90_frac"] == pytest.approx(no_sys["install_ratio_p90_frac"])
    # Monte Carlo of the ratio with a systematic and a per-building factor
    draws = 20_000
    f = rng.normal(1, 0.1, (draws, 1)) * rng.normal(1, 0.2, (draws, 300))
    ratios = (area * pv * f).sum(axis=1) / (area * f).sum(axis=1)
    sd = (row["install_ratio_p10_frac"] - row["install_ratio_p90_frac"]) / (2 * Z90)
    assert sd == pytest.approx(ratios.std(), rel=0.05)
    r = row["install_ratio_frac"]
    assert row["install_ratio_met_prob"] == pytest.approx(prob_at_least(r, sd, 0.5))
    assert row["ratio_gap_p90_frac"] == pytest.approx(0.5 - row["install_ratio_p10_frac"])


def test_probability_met_by_hand():
    # value one z above the target: 90 %; at the target: 50 %; no spread: a step
    assert prob_at_least(0.5 + Z90 * 0.1, 0.1, 0.5) == pytest.approx(0.9)
    assert prob_at_least(0.5, 0.1, 0.5) == pytest.approx(0.5)
    assert prob_at_least([0.4, 0.6], [0.0, 0.0], 0.5).tolist() == [0.0, 1.0]


def test_forecast_range_by_hand():
    dates = [dt.date(2024, 1, 1), dt.date(2024, 1, 11), dt.date(2024, 1, 21)]
    # exactly linear, 0.001 a day from 0.20: 0.50 on day 300; no spread: a single date
    early, late = forecast_range(dates, [0.20, 0.21, 0.22], 0.5, 0.0)
    assert early == late == (dt.date(2024, 1, 1) + dt.timedelta(days=300)).isoformat()
    # a level known to ±0.01 (1 sigma): ± z · 0.01 / 0.001 = ± 12.8 days
    early, late = forecast_range(dates, [0.20, 0.21, 0.22], 0.5, 0.01)
    assert (dt.date.fromisoformat(late) - dt.date.fromisoformat(early)).days in (25, 26)
    assert forecast_range(dates, [0.2, 0.2, 0.2], 0.5, 0.01) is None  # no pace, no date


def test_config_parts_and_weather_file():
    unc = Uncertainty()
    assert band_parts(unc, False).irradiance_systematic == pytest.approx(0.085)
    assert band_parts(unc, True).typical_year == 0.0
    assert band_parts(Uncertainty(irradiance_source="satellite"), False).irradiance_systematic == 0.05
    assert band_parts(Uncertainty(enabled=False), False) is None


def test_metered_bias_is_recovered_within_its_interval():
    rng = np.random.default_rng(3)
    n = 300
    buildings = pd.DataFrame({"building_id": [f"B{i}" for i in range(n)], "park_id": ["P1", "P2"] * (n // 2),
                              "park_name": ["一", "二"] * (n // 2), "district": "某区",
                              "specific_yield_kwh_per_kwp": rng.uniform(1000, 1150, n)})
    cap = rng.uniform(50, 2000, n)
    bias, scatter = 0.9, 0.08
    metered = cap * buildings["specific_yield_kwh_per_kwp"] * bias * np.exp(rng.normal(0, scatter, n))
    matched = pd.DataFrame({"registry_id": [f"R{i}" for i in range(n)], "matched_building_id": buildings["building_id"],
                            "capacity_kwp": cap, "status": "connected", "metered_kwh_per_yr": metered})
    matched.loc[0, "status"] = "planned"  # not connected: not compared
    matched.loc[1, "metered_kwh_per_yr"] = np.nan  # not metered: not compared
    sd_log = system_sd_log(PARTS, 0.039)
    systems = compare_systems(matched, buildings, sd_log)
    assert len(systems) == n - 2
    city = summarise_validation(systems).iloc[0]
    assert city["calibration_low"] < bias < city["calibration_high"]
    assert city["calibration_high"] < 1.0  # a 10 % bias is seen, not lost in the interval
    assert city["bias_frac"] == pytest.approx(bias - 1, abs=0.02)
    assert city["spread_log"] == pytest.approx(scatter, rel=0.15)
    # half-width by hand: t(0.975, n-1) · sd / sqrt(n), on the logs
    logs = np.log(systems["metered_to_predicted_ratio"])
    half = 1.968 * logs.std(ddof=1) / math.sqrt(len(logs))
    assert math.log(city["calibration_high"]) - logs.mean() == pytest.approx(half, rel=0.01)
    inside = (systems["metered_kwh_per_yr"] >= systems["predicted_kwh_per_yr"] * math.exp(-Z90 * sd_log)) & \
        (systems["metered_kwh_per_yr"] <= systems["predicted_kwh_per_yr"] * math.exp(Z90 * sd_log))
    assert city["inside_band_frac"] == pytest.approx(inside.mean())


@pytest.mark.slow
def test_demo_run_bands_and_validation_round_trip(tmp_path):
    from click.testing import CliRunner

    from pvsurvey.cli import commands
    from pvsurvey.pipeline.run import run_survey
    from pvsurvey.store.run_directory import RunDirectory

    run_dir = tmp_path / "demo"
    run_survey(None, run_dir, serial=True)
    run = RunDirectory(run_dir)
    doc = run.progress()
    cfg = run.config
    parts = band_parts(Uncertainty(**cfg["uncertainty"]), False)
    b = pd.read_parquet(run.file("buildings.parquet"), columns=["usable_area_m2", "usable_area_p90_m2",
                                                                 "annual_yield_kwh", "annual_yield_p10_kwh"])
    cv_area = math.sqrt(parts.area_systematic ** 2 + parts.area_building ** 2)
    assert np.allclose(b["usable_area_p90_m2"], lognormal_band(b["usable_area_m2"], cv_area)[0])
    cv_yield = math.sqrt(parts.yield_sys2 + parts.irradiance_cell ** 2 + parts.area_building ** 2)
    assert np.allclose(b["annual_yield_p10_kwh"], lognormal_band(b["annual_yield_kwh"], cv_yield)[1])
    city = doc["city"]
    assert city["usable_area_p90_m2"] < city["usable_area_m2"] < city["usable_area_p10_m2"]
    # the city's band is wider than the band of independent roofs: its systematic part dominates
    naive = math.sqrt((b["usable_area_m2"] ** 2).sum()) * cv_area / b["usable_area_m2"].sum()
    assert lognormal_band(1.0, naive)[0] > city["usable_area_p90_m2"] / city["usable_area_m2"]
    assert city["install_ratio_p90_frac"] < city["install_ratio_frac"] < city["install_ratio_p10_frac"]
    # progress.csv, parks.csv and the history carry the same figures as progress.json
    table = run.table("progress.csv")
    row = table[(table["level"] == "city") & (table["plan"] == doc["plans"][0]["id"])].iloc[0]
    assert row["install_ratio_p90_frac"] == pytest.approx(doc["plans"][0]["total"]["install_ratio_p90_frac"])
    parks = run.table("parks.csv").set_index("park_id")
    for park in doc["parks"]:
        assert parks.loc[park["park_id"], "annual_yield_p90_kwh"] == pytest.approx(park["annual_yield_p90_kwh"])
    # the demo's synthetic metered generation is drawn around 0.93 (data/add_demo_metered.py)
    validation = json.loads(run.file("validation.json").read_text(encoding="utf-8"))
    cal = validation["calibration"]
    assert cal["low"] < 0.93 < cal["high"] and cal["applied"] is False
    assert run.manifest["validation"]["calibration"] == cal
    summary = run.table("validation_summary.csv")
    city_row = summary[summary["level"] == "city"].iloc[0]
    assert city_row["calibration_factor"] == pytest.approx(cal["factor"])
    systems = run.table("validation.csv")
    assert len(systems) == validation["compared_systems"] == city_row["systems"] > 600
    assert systems["inside_band"].astype(str).str.lower().eq("true").mean() == pytest.approx(
        validation["city"]["inside_band_frac"])
    result = CliRunner().invoke(commands(), ["validate", str(run_dir), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "calibration factor: 0.93" in result.output
    assert (run_dir / "validation.svg").is_file() and (run_dir / "validation.png").is_file()


@pytest.mark.parametrize("section, key", [({"area_building_frac": 2}, "uncertainty.area_building_frac"),
                                          ({"irradiance_source": "model"}, "uncertainty.irradiance_source"),
                                          ({"model_chain": 0.04}, "uncertainty.model_chain")])
def test_a_bad_uncertainty_value_is_one_line_naming_the_key(tmp_path, section, key):
    from pvsurvey.config.loading import config_from_dict
    from pvsurvey.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        config_from_dict({"name": "x", "footprints": "f.parquet", "irradiance": {"ghi": "g.tif"},
                          "uncertainty": section}, tmp_path)
    assert key in str(err.value) and "\n" not in str(err.value)
