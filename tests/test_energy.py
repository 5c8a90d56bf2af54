"""Yield model against a direct pvlib computation on the same hourly weather."""

from pathlib import Path

import numpy as np
import pvlib
import pytest

from pvsurvey.model.yield_table import (SpecificYieldTable, ghi_level, specific_yield_kwh_per_kwp, system_loss_frac)
from pvsurvey.io.weather import read_weather
from pvsurvey.model.climatology import monthly_climate
from pvsurvey.model.weather_year import (annual_ghi_kwh_per_m2, clearsky_year, climate_year, ghi_to_kwh_per_m2_yr,
                                         scale_to_annual_ghi)
from pvsurvey.config.schema import Climate, System

TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"


# README: "The tests check the chain against a pvlib ModelChain (same models) on the
# same weather: equal within 0.01 %." (The chains differ only in the solar position:
# ModelChain refracts with each hour's air temperature, pvsurvey with 12 °C.)
README_TOLERANCE = 1e-4

# Orientations (tilt, azimuth, mount): flat-roof rows, pitched roofs facing all ways
ORIENTATIONS = [(15, 180, "rack"), (10, 150, "flush"), (30, 250, "flush"), (0, 180, "rack"), (45, 90, "rack"),
                (25, 0, "flush")]


def modelchain_specific_yield(weather, lat, lon, tilt, azimuth, mount, system: System) -> float:
    """One pvlib ModelChain with PVWatts models, the reference for our vectorised chain."""
    temp = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
        "open_rack_glass_glass" if mount == "rack" else "close_mount_glass_glass"]
    losses = {name: getattr(system, f"{name}_pct") for name in (
        "soiling", "shading", "snow", "mismatch", "wiring", "connections", "lid", "nameplate_rating", "age",
        "availability")}
    pv = pvlib.pvsystem.PVSystem(
        surface_tilt=tilt, surface_azimuth=azimuth, albedo=system.albedo,
        module_parameters={"pdc0": 1.0, "gamma_pdc": system.temperature_coefficient_per_c},
        inverter_parameters={"pdc0": 1 / (system.dc_ac_ratio * system.inverter_efficiency_nominal),
                             "eta_inv_nom": system.inverter_efficiency_nominal},
        temperature_model_parameters=temp, losses_parameters=losses)
    mc = pvlib.modelchain.ModelChain(pv, pvlib.location.Location(lat, lon), aoi_model="physical",
                                     spectral_model="no_loss", transposition_model=system.transposition_model,
                                     losses_model="pvwatts", temperature_model="sapm")
    mc.run_model(weather[["ghi", "dni", "dhi", "temp_air", "wind_speed"]])
    return float(mc.results.ac.clip(lower=0).sum()) * 8760 / len(weather)  # Wh per W = kWh per kWp


def assert_chain_equals_modelchain(weather, lat, lon, system, orientations=ORIENTATIONS):
    """Our chain on all orientations in one call, each against its own ModelChain."""
    tilt, azimuth, mount = zip(*orientations)
    ours = specific_yield_kwh_per_kwp(weather, lat, lon, list(tilt), list(azimuth), list(mount), system)
    reference = [modelchain_specific_yield(weather, lat, lon, *o, system) for o in orientations]
    np.testing.assert_allclose(ours, reference, rtol=README_TOLERANCE, atol=0)
    return ours


# a system far from the defaults: other losses, temperature coefficient and albedo, and
# an inverter small enough to clip on sunny hours
UNUSUAL_SYSTEM = dict(soiling_pct=5.0, snow_pct=1.0, availability_pct=1.0, temperature_coefficient_per_c=-0.0047,
                      albedo=0.1, dc_ac_ratio=1.6, inverter_efficiency_nominal=0.97)


# The quick loop samples each sweep (both transpositions, an unusual system, both
# hemispheres); the cases marked slow widen it.
@pytest.mark.parametrize("system", [
    pytest.param(System(), id="perez"),
    pytest.param(System(**UNUSUAL_SYSTEM), id="unusual-system"),
    pytest.param(System(transposition_model="haydavies"), id="haydavies", marks=pytest.mark.slow)])
def test_specific_yield_equals_modelchain_on_measured_tmy3(system):
    weather, meta = read_weather(TMY3)
    ours = assert_chain_equals_modelchain(weather, meta["latitude"], meta["longitude"], system)
    assert ((700 < ours) & (ours < 1700)).all()  # Greensboro, NC: a sunny mid-latitude site


@pytest.mark.parametrize("lat,lon,transposition", [
    pytest.param(31.2, 121.4, "haydavies", id="shanghai-haydavies"),
    pytest.param(-33.9, 151.2, "perez", id="sydney"),
    pytest.param(31.2, 121.4, "perez", id="shanghai-perez", marks=pytest.mark.slow),
    pytest.param(18.3, 109.5, "perez", id="sanya", marks=pytest.mark.slow),
    pytest.param(45.8, 126.6, "haydavies", id="harbin", marks=pytest.mark.slow)])
def test_specific_yield_equals_modelchain_on_scaled_clearsky_years(lat, lon, transposition):
    weather = scale_to_annual_ghi(clearsky_year(lat, lon, Climate()), 1310.0, lat, lon)
    assert annual_ghi_kwh_per_m2(weather) == pytest.approx(1310.0)
    ours = assert_chain_equals_modelchain(weather, lat, lon, System(transposition_model=transposition))
    if lat == 31.2:  # Shanghai rooftop systems report about 1,000–1,200 kWh/kWp a year
        assert 1000 < ours[0] < 1200  # 15° rows facing south


def test_pvwatts_loss_breakdown_total():
    assert system_loss_frac(System()) == pytest.approx(0.1408, abs=5e-5)  # PVWatts v5 manual: 14.08 %


def test_table_scales_within_a_level_and_caches():
    table = SpecificYieldTable(System(), Climate(), cell_deg=0.25)
    ghi = np.array([1300.0, 1305.0])
    sy, cell = table.lookup([31.1, 31.1], [121.4, 121.4], ghi, [15, 15], [180, 180], ["rack", "rack"])
    level = ghi_level(ghi)
    # same level → the yield is the level's yield scaled linearly by the building's GHI
    assert level[0] == level[1]
    assert sy[1] / sy[0] == pytest.approx(1305.0 / 1300.0)
    assert cell[0] == cell[1] == f"{int((31.1 + 90) / 0.25)}_{int((121.4 + 180) / 0.25)}"
    # and the level's yield is the pvlib chain on that cell's climatology year scaled to the level
    lat, lon = (484 + 0.5) * 0.25 - 90, (1205 + 0.5) * 0.25 - 180
    year = scale_to_annual_ghi(climate_year(lat, lon, monthly_climate(lat, lon), Climate()), level[0], lat, lon,
                               daily=True)
    direct = specific_yield_kwh_per_kwp(year, lat, lon, [15], [180], ["rack"], System())[0]
    assert sy[0] == pytest.approx(direct * 1300.0 / level[0], rel=1e-6)
    assert len(table._cache) == 1
    # climate.typical_year: clearsky is the clear sky scaled to the level, split by the hourly Erbs
    clear = SpecificYieldTable(System(), Climate(typical_year="clearsky"), cell_deg=0.25)
    sy_clear, _ = clear.lookup([31.1], [121.4], ghi[:1], [15], [180], ["rack"])
    year = scale_to_annual_ghi(clearsky_year(lat, lon, Climate()), level[0], lat, lon)
    direct = specific_yield_kwh_per_kwp(year, lat, lon, [15], [180], ["rack"], System())[0]
    assert sy_clear[0] == pytest.approx(direct * 1300.0 / level[0], rel=1e-6)


def test_weather_file_table_uses_one_cell():
    weather, meta = read_weather(TMY3)
    table = SpecificYieldTable(System(), Climate(), weather=weather,
                               weather_location=(meta["latitude"], meta["longitude"]))
    g = annual_ghi_kwh_per_m2(weather)
    sy, cell = table.lookup([31.0, 40.0], [121.0, -80.0], [g, g], [15, 15], [180, 180], ["rack", "rack"])
    assert list(cell) == ["file", "file"] and sy[0] == pytest.approx(sy[1])
    direct = specific_yield_kwh_per_kwp(weather, meta["latitude"], meta["longitude"], [15], [180], ["rack"], System())[0]
    assert sy[0] == pytest.approx(direct, rel=0.005)


def test_unit_conversions():
    np.testing.assert_allclose(ghi_to_kwh_per_m2_yr([3.6], "kWh/m2/day"), [1314.0])
    np.testing.assert_allclose(ghi_to_kwh_per_m2_yr([150.0], "W/m2"), [1314.0])
    np.testing.assert_allclose(ghi_to_kwh_per_m2_yr([1314.0], "kWh/m2/yr"), [1314.0])


def test_a_keys_yield_has_the_same_bits_alone_or_in_a_batch():
    """Entries are computed in batches whose make-up depends on the partitioning
    (and on what an earlier run cached); equal costs must rank the same way."""
    tilts = np.array([10.0, 20.0, 30.0, 0.0, 15.0, 25.0, 5.0])
    azimuths = np.array([180.0, 170.0, 200.0, 180.0, 90.0, 270.0, 180.0])
    mounts = np.array(["rack", "flush", "flush", "rack", "flush", "flush", "rack"], dtype=object)
    lat, lon, ghi = np.full(7, 31.2), np.full(7, 121.4), np.full(7, 1300.0)
    batch, _ = SpecificYieldTable(System(), Climate()).lookup(lat, lon, ghi, tilts, azimuths, mounts)
    alone = [SpecificYieldTable(System(), Climate()).lookup(lat[i:i + 1], lon[i:i + 1], ghi[i:i + 1], tilts[i:i + 1],
                                                           azimuths[i:i + 1], mounts[i:i + 1])[0][0] for i in range(7)]
    assert batch.tolist() == alone  # exact equality, not a tolerance
