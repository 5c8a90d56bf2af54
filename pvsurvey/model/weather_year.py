"""Hourly typical-year weather for a weather cell, scaled to a target annual GHI.

Pure functions: they take numbers and DataFrames and return DataFrames in
pvlib's own names (``ghi``, ``dni``, ``dhi`` [W/m²], ``temp_air`` [°C],
``wind_speed`` [m/s]) on an hourly UTC index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

from ..config.schema import Climate

# A non-leap year; timestamps at half past the hour stand for the whole hour.
TYPICAL_YEAR = 2023


def hourly_index(year: int = TYPICAL_YEAR) -> pd.DatetimeIndex:
    """8760 hourly UTC timestamps centred in their hours."""
    return pd.date_range(f"{year}-01-01 00:30", periods=8760, freq="h", tz="UTC")


def synthetic_temperature(times: pd.DatetimeIndex, longitude_deg: float, climate: Climate) -> np.ndarray:
    """Air temperature [°C] from an annual mean, a seasonal and a diurnal cosine.

    The coldest day is 20 January and the warmest hour 15:00 local solar time,
    as in the Shanghai normals; used only when no weather file is given.
    """
    doy = times.day_of_year.to_numpy()
    solar_hour = (times.hour.to_numpy() + times.minute.to_numpy() / 60 + longitude_deg / 15.0) % 24
    seasonal = -climate.temp_air_seasonal_amplitude_c * np.cos(2 * np.pi * (doy - 20) / 365.0)
    diurnal = climate.temp_air_diurnal_amplitude_c * np.cos(2 * np.pi * (solar_hour - 15.0) / 24.0)
    return climate.temp_air_mean_c + seasonal + diurnal


def clearsky_year(latitude_deg: float, longitude_deg: float, climate: Climate,
                  year: int = TYPICAL_YEAR, solar_position: pd.DataFrame | None = None) -> pd.DataFrame:
    """Clear-sky hourly year (Ineichen–Perez with pvlib's bundled Linke turbidity)
    plus synthetic temperature and constant wind.

    Returns GHI, DNI and DHI of the clear sky [W/m²]; :func:`scale_to_annual_ghi`
    then brings it to the long-term total of the irradiance raster.

    References
    ----------
    .. [1] Ineichen, P. and Perez, R. (2002). A new airmass independent
       formulation for the Linke turbidity coefficient. Solar Energy 73(3).
    """
    times = hourly_index(year)
    location = pvlib.location.Location(latitude_deg, longitude_deg, tz="UTC")
    clear = location.get_clearsky(times, model="ineichen", solar_position=solar_position)
    return pd.DataFrame({
        "ghi": clear["ghi"].to_numpy(),
        "temp_air": synthetic_temperature(times, longitude_deg, climate),
        "wind_speed": np.full(len(times), climate.wind_speed_m_s),
    }, index=times)


def annual_ghi_kwh_per_m2(weather: pd.DataFrame) -> float:
    """Annual GHI [kWh/m²/yr] of an hourly year."""
    hours = 8760.0 / len(weather)
    return float(np.nansum(weather["ghi"].to_numpy())) * hours / 1000.0


def scale_to_annual_ghi(weather: pd.DataFrame, target_kwh_per_m2_yr: float,
                        latitude_deg: float, longitude_deg: float,
                        solar_position: pd.DataFrame | None = None) -> pd.DataFrame:
    """Scale an hourly year so its annual GHI equals the target.

    Measured DNI and DHI (from a weather file) are scaled by the same factor;
    where they are absent, the scaled GHI is split with the Erbs decomposition.

    Parameters
    ----------
    weather : DataFrame
        Hourly ``ghi`` [W/m²], ``temp_air`` [°C], ``wind_speed`` [m/s], UTC index.
    target_kwh_per_m2_yr : float
        Long-term annual GHI to reach [kWh/m²/yr].

    References
    ----------
    .. [1] Erbs, D. G., Klein, S. A. and Duffie, J. A. (1982). Estimation of the
       diffuse radiation fraction for hourly, daily and monthly-average global
       radiation. Solar Energy 28(4), 293–302.
    """
    factor = target_kwh_per_m2_yr / annual_ghi_kwh_per_m2(weather)
    out = weather[["temp_air", "wind_speed"]].copy()
    out["ghi"] = weather["ghi"].to_numpy() * factor
    if {"dni", "dhi"} <= set(weather.columns):
        out["dni"] = weather["dni"].to_numpy() * factor
        out["dhi"] = weather["dhi"].to_numpy() * factor
        return out
    solpos = (solar_position if solar_position is not None
              else pvlib.solarposition.get_solarposition(out.index, latitude_deg, longitude_deg))
    parts = pvlib.irradiance.erbs(out["ghi"], solpos["zenith"], out.index)
    out["dni"] = np.asarray(parts["dni"], dtype=float)
    out["dhi"] = np.asarray(parts["dhi"], dtype=float)
    return out


def ghi_to_kwh_per_m2_yr(values, units: str) -> np.ndarray:
    """Convert a raster's GHI values to annual irradiation [kWh/m²/yr].

    ``kWh/m2/day`` × 365; ``W/m2`` (mean irradiance) × 8760 h / 1000.
    """
    values = np.asarray(values, dtype=float)
    if units == "kWh/m2/day":
        return values * 365.0
    if units == "kWh/m2/yr":
        return values
    if units == "W/m2":
        return values * 8.76
    raise ValueError(f"unknown irradiance units {units!r}")
