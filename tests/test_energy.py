"""Yield model against a direct pvlib computation on the same hourly weather."""

from pathlib import Path

import numpy as np
import pvlib
import pytest

from pvsurvey.model.yield_table import (SpecificYieldTable, ghi_level, specific_yield_kwh_per_kwp, system_loss_frac)
from pvsurvey.io.weather import read_weather
from pvsurvey.model.weather_year import (annual_ghi_kwh_per_m2, clearsky_year, ghi_to_kwh_per_m2_yr,
                                         scale_to_annual_ghi)
from pvsurvey.config.schema import Climate, System

TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"


def modelchain_specific_yield(weather, lat, lon, tilt, azimuth, mount, system: System) -> float:
    """One pvlib ModelChain with PVWatts models, the reference for our vectorised chain."""
    temp = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
        "open_rack_glass_glass" if mount == "rack" else "close_mount_glass_glass"]
    pv = pvlib.pvsystem.PVSystem(
        surface_tilt=tilt, surface_azimuth=azimuth, albedo=system.albedo,
        module_parameters={"pdc0": 1.0, "gamma_pdc": system.temperature_coefficient_per_c},
        inverter_parameters={"pdc0": 1 / (system.dc_ac_ratio * system.inverter_efficiency_nominal),
                             "eta_inv_nom": system.inverter_efficiency_nominal},
        temperature_model_parameters=temp, losses_parameters={})
    mc = pvlib.modelchain.ModelChain(pv, pvlib.location.Location(lat, lon), aoi_model="physical",
                                     spectral_model="no_loss", transposition_model=system.transposition_model,
                                     losses_model="pvwatts", temperature_model="sapm")
    mc.run_model(weather[["ghi", "dni", "dhi", "temp_air", "wind_speed"]])
    return float(mc.results.ac.clip(lower=0).sum())


@pytest.mark.parametrize("tilt,azimuth,mount", [(15, 180, "rack"), (10, 150, "flush"), (30, 250, "flush")])
def test_specific_yield_equals_modelchain_on_measured_tmy3(tilt, azimuth, mount):
    weather, meta = read_weather(TMY3)
    system = System()
    ours = specific_yield_kwh_per_kwp(weather, meta["latitude"], meta["longitude"], [tilt], [azimuth],
                                      [mount], system)[0]
    reference = modelchain_specific_yield(weather, meta["latitude"], meta["longitude"], tilt, azimuth, mount, system)
    assert ours == pytest.approx(reference, rel=0.01)
    assert 900 < ours < 1700  # Greensboro, NC: a sunny mid-latitude site


def test_specific_yield_on_scaled_clearsky_shanghai_year():
    lat, lon = 31.2, 121.4
    weather = scale_to_annual_ghi(clearsky_year(lat, lon, Climate()), 1310.0, lat, lon)
    assert annual_ghi_kwh_per_m2(weather) == pytest.approx(1310.0)
    system = System(transposition_model="haydavies")
    ours = specific_yield_kwh_per_kwp(weather, lat, lon, [15.0], [180.0], ["rack"], system)[0]
    assert ours == pytest.approx(modelchain_specific_yield(weather, lat, lon, 15, 180, "rack", system), rel=0.01)
    # Shanghai rooftop systems report about 1,000–1,200 kWh/kWp a year
    assert 1000 < ours < 1200


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
    # and the level's yield is the pvlib chain on that cell's clear-sky year scaled to the level
    lat, lon = (484 + 0.5) * 0.25 - 90, (1205 + 0.5) * 0.25 - 180
    year = scale_to_annual_ghi(clearsky_year(lat, lon, Climate()), level[0], lat, lon)
    direct = specific_yield_kwh_per_kwp(year, lat, lon, [15], [180], ["rack"], System())[0]
    assert sy[0] == pytest.approx(direct * 1300.0 / level[0], rel=1e-6)
    assert len(table._cache) == 1


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
