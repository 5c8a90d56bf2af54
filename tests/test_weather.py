"""Weather files: TMY3 (pvlib's bundled file), and EPW and PVGIS TMY written from it."""

import json
from pathlib import Path

import numpy as np
import pvlib
import pytest

from pvsurvey.errors import InputFileError
from pvsurvey.io.weather import read_weather
from pvsurvey.model.weather_year import annual_ghi_kwh_per_m2

TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"


@pytest.fixture(scope="module")
def tmy3():
    return pvlib.iotools.read_tmy3(TMY3, coerce_year=2023, map_variables=True)


def write_epw(path, data, meta):
    header = [f"LOCATION,Greensboro,NC,USA,TMY3,723170,{meta['latitude']},{meta['longitude']},-5.0,{meta['altitude']}",
              "DESIGN CONDITIONS,0", "TYPICAL/EXTREME PERIODS,0", "GROUND TEMPERATURES,0",
              "HOLIDAYS/DAYLIGHT SAVINGS,No,0,0,0", "COMMENTS 1,written by the pvsurvey tests",
              "COMMENTS 2,", "DATA PERIODS,1,1,Data,Sunday, 1/ 1,12/31"]
    rows = []
    for r in data.itertuples():  # (itertuples: iterrows takes seconds over 8,760 hours)
        start = r.Index - np.timedelta64(1, "h")  # TMY3 stamps the end of the hour; EPW numbers hours 1–24
        fields = [2023, start.month, start.day, start.hour + 1, 60, "?", r.temp_air,
                  r.temp_dew, r.relative_humidity, r.pressure * 100, 0, 0, 0, r.ghi, r.dni, r.dhi, 0, 0, 0, 0,
                  r.wind_direction, r.wind_speed, 0, 0, 0, 0, 9, 999999999, 0, 0, 0, 88, 0, 0, 0]
        rows.append(",".join(str(f) for f in fields))
    path.write_text("\n".join(header + rows) + "\n")
    return path


def write_pvgis_json(path, data, meta):
    hourly = [{"time(UTC)": ts.tz_convert("UTC").strftime("%Y%m%d:%H%M"), "T2m": r.temp_air, "RH": r.relative_humidity,
               "G(h)": r.ghi, "Gb(n)": r.dni, "Gd(h)": r.dhi, "IR(h)": 0.0, "WS10m": r.wind_speed,
               "WD10m": r.wind_direction, "SP": r.pressure * 100} for r in data.itertuples() for ts in [r.Index]]
    doc = {"inputs": {"location": {"latitude": meta["latitude"], "longitude": meta["longitude"],
                                   "elevation": meta["altitude"]}, "meteo_data": {}},
           "outputs": {"months_selected": [{"month": m, "year": 2023} for m in range(1, 13)], "tmy_hourly": hourly},
           "meta": {"inputs": {}, "outputs": {}}}
    path.write_text(json.dumps(doc))
    return path


def test_tmy3(tmy3):
    data, meta = read_weather(TMY3)
    assert meta["format"] == "tmy3" and meta["latitude"] == pytest.approx(36.1)
    assert len(data) == 8760 and data.index.tz is not None
    assert annual_ghi_kwh_per_m2(data) == pytest.approx(tmy3[0]["ghi"].sum() / 1000)


def test_epw(tmp_path, tmy3):
    path = write_epw(tmp_path / "greensboro.epw", *tmy3)
    data, meta = read_weather(path)
    assert meta["format"] == "epw" and meta["longitude"] == pytest.approx(tmy3[1]["longitude"])
    assert {"ghi", "dni", "dhi", "temp_air", "wind_speed"} <= set(data.columns)
    assert annual_ghi_kwh_per_m2(data) == pytest.approx(tmy3[0]["ghi"].sum() / 1000, rel=1e-6)


def test_pvgis_tmy_json(tmp_path, tmy3):
    path = write_pvgis_json(tmp_path / "tmy_31.2_121.4.json", *tmy3)
    data, meta = read_weather(path)
    assert meta["format"] == "pvgis" and meta["latitude"] == pytest.approx(tmy3[1]["latitude"])
    assert annual_ghi_kwh_per_m2(data) == pytest.approx(tmy3[0]["ghi"].sum() / 1000, rel=1e-6)


def test_missing_and_garbage_weather(tmp_path):
    with pytest.raises(InputFileError, match="weather file not found"):
        read_weather(tmp_path / "none.epw")
    bad = tmp_path / "bad.epw"
    bad.write_text("LOCATION,x\nnot an epw\n")
    with pytest.raises(InputFileError, match="cannot read it as EPW weather"):
        read_weather(bad)
