"""Hourly (time-of-use) valuation: hand-computed cases, the 2025 category rule, the
calendar, the yield table's hourly shapes and the config's checks (issue 16)."""

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import roofs_utm, write_ghi_raster

from pvsurvey.config.loading import config_from_dict
from pvsurvey.config.schema import Climate, Economics, Policy, System, Tariff
from pvsurvey.errors import ConfigError
from pvsurvey.model.candidates import build_candidates
from pvsurvey.model.economics import energy_value_cny_per_kwh, project_economics
from pvsurvey.model.tou import (
    day_types,
    hourly_prices,
    load_profile,
    local_hours,
    project_category,
    shape_keys,
    value_projects,
)
from pvsurvey.model.yield_table import SpecificYieldTable, specific_yield_kwh_per_kwp
from pvsurvey.pipeline.run import run_survey

# A two-period tariff: 'day' 8–20 h at 1.00, 'night' the rest at 0.40 CNY/kWh, all year.
TWO_PERIOD = Tariff(preset=None, prices_cny_per_kwh={"day": 1.0, "night": 0.4},
                    schedule=[{"period": "day", "hours": [[8, 20]]},
                              {"period": "night", "hours": [[0, 8], [20, 24]]}])
FLAT_LOAD = {"workday": [1.0] * 24, "weekend": [1.0] * 24, "holiday": [1.0] * 24}


def econ(**policy):
    """Economics with the two-period tariff, a flat load shape and the given policy."""
    base = Economics()
    shapes = {**base.load.shapes, "flat": FLAT_LOAD}
    return Economics(tariff=TWO_PERIOD, load={"shapes": shapes}, policy=Policy(**policy))


def pv_in_hours(hours, kw_per_hour=None):
    """A PV shape (8760 local hours, sums to 1) with equal output in ``hours`` of every day."""
    day = np.zeros(24)
    day[list(hours)] = 1.0 if kw_per_hour is None else kw_per_hour
    year = np.tile(day, 365)
    return year / year.sum()


def project(yield_kwh, load_kwh, load_shape="flat", limit_kw=np.nan, capacity_kwp=100.0, voltage_kv=np.nan):
    return pd.DataFrame({"annual_yield_kwh": [yield_kwh], "capacity_kwp": [capacity_kwp], "pv_shape_key": ["pv"],
                         "load_shape": [load_shape], "annual_load_kwh": [load_kwh],
                         "grid_capacity_kw": [limit_kw], "connection_voltage_kv": [voltage_kv]})


def test_100_kwp_on_a_flat_load_with_a_two_period_tariff_hand_computed():
    # 100 kWp, 1000 kWh/kWp: 100,000 kWh spread evenly over 6–10 h (two night hours at
    # 0.40, two day hours at 1.00): 100000 / (4 × 365) = 68.49 kW in each of those hours.
    e = econ()
    shapes = {"pv": pv_in_hours(range(6, 10))}
    # a load far above the PV: every kWh is used on site, half of it at night prices
    big = value_projects(project(100_000.0, 50_000.0 * 8760), shapes, e).iloc[0]
    assert big["self_consumed_share"] == pytest.approx(1.0)
    assert big["energy_value_cny"] == pytest.approx(100_000 * (0.5 * 0.4 + 0.5 * 1.0))  # 70,000 CNY
    assert big["value_self_used_cny_per_kwh"] == pytest.approx(0.70)
    # a flat 50 kW load: 50 kWh of each PV hour is used, 18.49 kWh exported at the mechanism price
    small = value_projects(project(100_000.0, 50.0 * 8760), shapes, e).iloc[0]
    self_used = 50.0 * 4 * 365  # 73,000 kWh
    assert small["self_used_kwh"] == pytest.approx(self_used)
    assert small["exported_kwh"] == pytest.approx(100_000 - self_used)
    assert small["curtailed_kwh"] == pytest.approx(0.0, abs=1e-6)
    value = 50.0 * 365 * (2 * 0.4 + 2 * 1.0) + (100_000 - self_used) * 0.38  # 51,100 + 10,260
    assert small["energy_value_cny"] == pytest.approx(value)
    assert small["value_cny_per_kwh"] == pytest.approx(value / 100_000)
    assert small["value_exported_cny_per_kwh"] == pytest.approx(0.38)


def test_a_one_shift_load_exports_weekend_and_holiday_output():
    # one_shift: 1.0 in 8–17 h on working days, 0.15 otherwise and at weekends, 0.10 on holidays.
    # 2025: 248 working days, 89 weekend days off, 28 holiday days (chinese-calendar)
    assert np.bincount(day_types(2025)).tolist() == [248, 89, 28]
    relative_sum = 248 * (9 * 1.0 + 15 * 0.15) + 89 * 24 * 0.15 + 28 * 24 * 0.10
    load_kwh = relative_sum * 100.0  # 100 kW in the shift, 15 kW base, 10 kW on holidays
    pv_kwh = 50.0 * 9 * 365  # 50 kW in 8–17 h every day
    e = econ()
    r = value_projects(project(pv_kwh, load_kwh, load_shape="one_shift"), {"pv": pv_in_hours(range(8, 17))}, e).iloc[0]
    weekend_export = (50 - 15) * 9 * 89
    holiday_export = (50 - 10) * 9 * 28
    assert r["exported_kwh"] == pytest.approx(weekend_export + holiday_export)  # 38,115 kWh
    assert r["self_used_kwh"] == pytest.approx(50 * 9 * 248 + 15 * 9 * 89 + 10 * 9 * 28)
    # a three-shift plant (1.0 / 0.9 / 0.8 all day) at 60 / 54 / 48 kW exports only 2 kW of holiday hours
    three_sum = 248 * 24 * 1.0 + 89 * 24 * 0.9 + 28 * 24 * 0.8
    three = value_projects(project(pv_kwh, three_sum * 60.0, load_shape="three_shift"),
                           {"pv": pv_in_hours(range(8, 17))}, e).iloc[0]
    assert three["exported_kwh"] == pytest.approx((50 - 48) * 9 * 28)


def test_a_transformer_limit_curtails_exactly_the_hours_above_it():
    # 80 kW in 9–11 h and 120 kW in 11–13 h every day, no load, a 100 kW connection:
    # only the two 120 kW hours lose 20 kWh each
    day_kw = np.zeros(24)
    day_kw[9:11], day_kw[11:13] = 80.0, 120.0
    pv_kwh = day_kw.sum() * 365
    shapes = {"pv": np.tile(day_kw, 365) / pv_kwh}
    e = econ()
    r = value_projects(project(pv_kwh, 0.0, limit_kw=100.0), shapes, e).iloc[0]
    assert r["curtailed_kwh"] == pytest.approx(20.0 * 2 * 365)
    assert r["exported_kwh"] == pytest.approx(pv_kwh - 20.0 * 2 * 365)
    # a limit above the peak curtails nothing
    free = value_projects(project(pv_kwh, 0.0, limit_kw=120.0), shapes, e).iloc[0]
    assert free["curtailed_kwh"] == pytest.approx(0.0, abs=1e-6)


def test_the_category_flips_at_its_size_and_voltage_thresholds():
    p = Policy()
    cats = project_category([6000.0, 6000.001, 500.0, 500.0], [10.0, 10.0, 10.0, 35.0], p)
    assert cats.tolist() == ["general", "large", "general", "large"]
    # a large project (self-use only) curtails its surplus; a general one exports it
    e = econ()
    shapes = {"pv": pv_in_hours(range(10, 14))}
    general = value_projects(project(1e6, 0.0, capacity_kwp=6000.0), shapes, e).iloc[0]
    large = value_projects(project(1e6, 0.0, capacity_kwp=6000.5), shapes, e).iloc[0]
    assert general["project_category"] == "general" and general["exported_kwh"] == pytest.approx(1e6)
    assert large["project_category"] == "large" and large["exported_kwh"] == 0.0
    assert large["curtailed_kwh"] == pytest.approx(1e6)
    # where large projects may sell their surplus (a continuous spot market), they do
    allowed = value_projects(project(1e6, 0.0, capacity_kwp=6000.5), shapes, econ(large_export_allowed=True)).iloc[0]
    assert allowed["exported_kwh"] == pytest.approx(1e6)
    # without a voltage in the data, the size decides it (0.38 kV ≤ 400 kW, 10 kV ≤ 6 MW, else 35 kV)
    assert value_projects(project(1e3, 0.0, capacity_kwp=7000.0), shapes, e).iloc[0]["connection_voltage_kv"] == 35.0


def test_export_price_switches_at_the_136_date():
    shapes = {"pv": pv_in_hours(range(10, 14))}
    before = econ(commissioning_date=dt.date(2025, 5, 31))
    after = econ(commissioning_date=dt.date(2025, 6, 1))
    assert value_projects(project(1e4, 0.0), shapes, before).iloc[0]["value_exported_cny_per_kwh"] == 0.4155
    assert value_projects(project(1e4, 0.0), shapes, after).iloc[0]["value_exported_cny_per_kwh"] == 0.38


def test_calendar_and_shanghai_schedule():
    types = day_types(2025)
    # 国办发明电〔2024〕12号: 1 Oct holiday, Sun 28 Sep a working day (调休), Sat 4 Jan 2025 a weekend
    assert types[dt.date(2025, 10, 1).timetuple().tm_yday - 1] == 2
    assert types[dt.date(2025, 9, 28).timetuple().tm_yday - 1] == 0
    assert types[dt.date(2025, 1, 4).timetuple().tm_yday - 1] == 1
    prices = hourly_prices(Tariff(), 2025).reshape(365, 24)
    jul15, apr15 = dt.date(2025, 7, 15).timetuple().tm_yday - 1, dt.date(2025, 4, 15).timetuple().tm_yday - 1
    # 沪发改价管〔2022〕50号 on a 0.65 flat price: July 12–14 h sharp = 0.65 × 1.8 × 1.25
    assert prices[jul15, 12] == pytest.approx(0.65 * 1.8 * 1.25) and prices[jul15, 3] == pytest.approx(0.26)
    assert prices[apr15, 9] == pytest.approx(1.04) and prices[apr15, 13] == pytest.approx(0.65)
    assert load_profile(Economics().load, "one_shift", 2025).sum() == pytest.approx(1.0)


def test_yield_table_hourly_shapes_sum_to_its_specific_yield_and_peak_at_local_noon():
    table = SpecificYieldTable(System(), Climate())
    row, col = table.cells(np.array([31.2]), np.array([121.5]))
    key = shape_keys(table.cell_id(row, col), [20.0], [180.0], ["rack"])[0]
    shape = table.hourly_shapes([key])[key]
    assert shape.sum() == pytest.approx(1.0)
    # Shanghai (121.5° E) is 0.1 h behind UTC+8: the output peaks in the 11–13 h local hours
    assert int(np.argmax(shape.reshape(365, 24).sum(axis=0))) in (11, 12)
    # the hourly series behind the shape is the yield table's own (same sum)
    base, solpos, lat, lon = table._cell(int(row[0]), int(col[0]))
    from pvsurvey.model.weather_year import annual_ghi_kwh_per_m2
    from pvsurvey.model.yield_table import hourly_ac_kw_per_kwp
    year, solpos = table.hourly_year(int(row[0]), int(col[0]), float(annual_ghi_kwh_per_m2(base)))
    hourly = hourly_ac_kw_per_kwp(year, lat, lon, [20.0], [180.0], ["rack"], System(), solar_position=solpos)
    sy = specific_yield_kwh_per_kwp(year, lat, lon, [20.0], [180.0], ["rack"], System(), solar_position=solpos)
    assert hourly.sum() == pytest.approx(sy[0])
    # the shape's own array-based Erbs split gives the same hours as the yield table's year
    from pvsurvey.model.tou import to_local_shape
    np.testing.assert_allclose(shape, to_local_shape(hourly[0], year.index), rtol=1e-9, atol=1e-15)
    assert local_hours(pd.DatetimeIndex(["2025-01-01 00:30"], tz="UTC"))[0] == 8


def test_build_candidates_hourly_and_flat_presets():
    poly = shapely.box(121.5, 31.2, 121.501, 31.201)
    roofs = gpd.GeoDataFrame({
        "building_id": ["a"], "park_id": ["P"], "park_name": ["p"], "district": ["d"], "name": ["n"], "owner": ["o"],
        "usable_area_m2": [1000.0], "capacity_kwp": [100.0], "annual_yield_kwh": [100_000.0],
        "weather_cell": ["file"], "surface_tilt_deg": [0.0], "surface_azimuth_deg": [180.0], "mount": ["flush"],
        "footprint_area_m2": [2000.0], "levels": [1.0], "building_type": ["warehouse"],
        "annual_consumption_kwh": [np.nan], "grid_capacity_kw": [np.nan], "connection_voltage_kv": [np.nan]},
        geometry=[poly], crs=4326)
    shape = pv_in_hours(range(6, 10))
    e = econ()
    hourly = build_candidates(roofs, e, shapes=lambda keys: {k: shape for k in keys}).iloc[0]
    # warehouse: 2000 m² × 1 storey × 40 kWh/m²/yr
    assert hourly["annual_load_kwh"] == pytest.approx(80_000.0)
    load_kw = 80_000.0 * load_profile(e.load, "warehouse", 2025).reshape(365, 24)
    pv_kw = 100_000.0 * shape.reshape(365, 24)
    self_used = np.minimum(pv_kw, load_kw)
    assert hourly["self_consumed_share"] == pytest.approx(self_used.sum() / 100_000.0)
    value = (self_used * hourly_prices(TWO_PERIOD, 2025).reshape(365, 24)).sum() + (pv_kw - self_used).sum() * 0.38
    assert hourly["annual_savings_cny"] == pytest.approx(value - 100.0 * e.om_cny_per_kw_yr)
    # the flat preset keeps the old figures
    flat = Economics(valuation="flat")
    old = build_candidates(roofs, flat, shapes=lambda keys: {k: shape for k in keys}).iloc[0]
    ref = project_economics([100.0], [100_000.0], flat).iloc[0]
    assert old["annual_savings_cny"] == pytest.approx(ref["annual_savings_cny"])
    assert old["value_cny_per_kwh"] == pytest.approx(energy_value_cny_per_kwh(flat))


BASE = {"name": "t", "footprints": "fp.parquet", "irradiance": {"ghi": "ghi.tif"}}


@pytest.mark.parametrize("economics,message", [
    ({"tariff": {"preset": None, "prices_cny_per_kwh": {"a": 1.0},
                 "schedule": [{"period": "a", "hours": [[0, 23]]}]}}, "schedule gap: month 1, workday, hour 23"),
    ({"tariff": {"preset": None, "prices_cny_per_kwh": {"a": 1.0, "b": 0.5},
                 "schedule": [{"period": "a", "hours": [[0, 24]]}, {"period": "b", "months": [7], "hours": [[12, 13]]}]}},
     "schedule overlap: month 7, workday, hour 12"),
    ({"tariff": {"prices_cny_per_kwh": {"flat": -0.1}}}, "prices must be ≥ 0 CNY/kWh; flat=-0.1"),
    ({"load": {"shapes": {"one_shift": {"workday": [1.0] * 23, "weekend": [0.1] * 24, "holiday": [0.1] * 24}}}},
     "must cover every hour of the year"),
    ({"tariff": {"preset": "nowhere"}}, "unknown tariff preset 'nowhere'"),
    ({"calendar_year": 2099}, "no holidays for 2099"),
])
def test_bad_tariff_or_load_is_one_config_line_naming_the_key(tmp_path, economics, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({**BASE, "economics": economics}, tmp_path)
    text = str(err.value)
    assert message in text and "\n" not in text and "economics." in text


def test_sorted_breakpoints_equal_the_hourly_matrix_on_random_projects():
    # the fast path (no limit) against min(E s, L l) summed over 8760 hours, on 300 projects
    rng = np.random.default_rng(16)
    day = np.clip(np.sin(np.linspace(0, np.pi, 24) - 0.3), 0, None) * rng.uniform(0.2, 1.0, (365, 24))
    s = (day / day.sum()).ravel()
    e = Economics()
    l = load_profile(e.load, "one_shift", 2025)
    prices = hourly_prices(e.tariff, 2025)
    yields = rng.uniform(1e4, 1e6, 300)
    loads = yields * rng.uniform(0.0, 4.0, 300)
    loads[:5] = 0.0
    from pvsurvey.model.tou import hourly_energy
    got = hourly_energy(yields, s, loads, l, np.full(300, np.nan), np.ones(300, bool), prices)
    used = np.minimum(yields[:, None] * s[None, :], loads[:, None] * l[None, :])
    np.testing.assert_allclose(got["self_used_kwh"], used.sum(axis=1), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(got["self_used_value_cny"], used @ prices, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(got["exported_kwh"], yields - used.sum(axis=1), rtol=1e-9, atol=1e-6)


@pytest.mark.slow
def test_mapped_consumption_and_transformer_columns_reach_the_candidates(tmp_path):
    # end to end through a real file: a mapped consumption column and a recognised transformer header
    roofs = roofs_utm().assign(用电量_kWh=[2.0e6, None, None], 变压器容量=[100.0, None, None])
    roofs.to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif", value=1300.0 / 365.0)
    cfg = config_from_dict({"name": "tou", "footprints": {"path": "roofs.gpkg",
                                                          "columns": {"annual_consumption_kwh": "用电量_kWh"}},
                            "irradiance": {"ghi": "ghi.tif"},
                            "roof": {"unknown_steel_share": 0.0}}, tmp_path)
    result = run_survey(cfg, tmp_path / "run", serial=True)
    b = gpd.read_parquet(result.run_dir / "buildings.parquet").set_index("building_id")
    assert b.loc["A", "annual_consumption_kwh"] == 2.0e6 and b.loc["A", "grid_capacity_kw"] == 100.0
    c = gpd.read_parquet(result.run_dir / "candidates.parquet").set_index("project_id").loc["C-A"]
    assert c["annual_load_kwh"] == 2.0e6
    # the 100 kW connection clips exactly the PV above 100 kW, whatever the load
    table = SpecificYieldTable(System(), Climate())
    key = shape_keys([b.loc["A", "weather_cell"]], [b.loc["A", "surface_tilt_deg"]],
                     [b.loc["A", "surface_azimuth_deg"]], [b.loc["A", "mount"]])[0]
    pv_kw = c["annual_yield_kwh"] * table.hourly_shapes([key])[key]
    assert c["annual_curtailed_kwh"] == pytest.approx(np.maximum(pv_kw - 100.0, 0.0).sum(), rel=1e-9)
    assert c["annual_curtailed_kwh"] > 0 and c["project_category"] == "general"
