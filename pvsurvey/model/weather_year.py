"""Hourly typical-year weather for a weather cell — from the bundled monthly
climatology (:func:`climate_year`) or the clear sky (:func:`clearsky_year`) —
scaled to a target annual GHI and split into DNI and DHI.

Pure functions: they take numbers and DataFrames and return DataFrames in
pvlib's own names (``ghi``, ``dni``, ``dhi`` [W/m²], ``temp_air`` [°C],
``wind_speed`` [m/s]) on an hourly UTC index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

from ..config.schema import Climate
from .climatology import MonthlyClimate, monthly_climate

# A non-leap year; timestamps at half past the hour stand for the whole hour.
TYPICAL_YEAR = 2023


def hourly_index(year: int = TYPICAL_YEAR) -> pd.DatetimeIndex:
    """8760 hourly UTC timestamps centred in their hours."""
    return pd.date_range(f"{year}-01-01 00:30", periods=8760, freq="h", tz="UTC")


def synthetic_temperature(times: pd.DatetimeIndex, longitude_deg: float, climate: Climate,
                          temp_air_mean_c: float | None = None, latitude_deg: float = 0.0) -> np.ndarray:
    """Air temperature [°C] from an annual mean, a seasonal and a diurnal cosine.

    The coldest day is 20 January (20 July south of the equator) and the
    warmest hour 15:00 local solar time, as in the Shanghai normals; used only
    when no weather file is given. ``temp_air_mean_c`` (the climatology's
    annual mean at the place) stands in for the config's when given.
    """
    doy = times.day_of_year.to_numpy()
    solar_hour = (times.hour.to_numpy() + times.minute.to_numpy() / 60 + longitude_deg / 15.0) % 24
    coldest_doy = 20 if latitude_deg >= 0 else 201
    seasonal = -climate.temp_air_seasonal_amplitude_c * np.cos(2 * np.pi * (doy - coldest_doy) / 365.0)
    diurnal = climate.temp_air_diurnal_amplitude_c * np.cos(2 * np.pi * (solar_hour - 15.0) / 24.0)
    mean = climate.temp_air_mean_c if temp_air_mean_c is None else temp_air_mean_c
    return mean + seasonal + diurnal


def clearsky_year(latitude_deg: float, longitude_deg: float, climate: Climate,
                  year: int = TYPICAL_YEAR, solar_position: pd.DataFrame | None = None) -> pd.DataFrame:
    """Clear-sky hourly year (Ineichen–Perez with pvlib's bundled Linke turbidity)
    plus synthetic temperature and constant wind (``climate.typical_year: clearsky``).

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
    normals = monthly_climate(latitude_deg, longitude_deg)
    return pd.DataFrame({
        "ghi": clear["ghi"].to_numpy(),
        "temp_air": synthetic_temperature(times, longitude_deg, climate, normals.temp_air_mean_c
                                          if climate.temp_air_mean_c is None else None, latitude_deg),
        "wind_speed": np.full(len(times), normals.wind_speed_m_s if climate.wind_speed_m_s is None
                              else climate.wind_speed_m_s),
    }, index=times)


def _seed(latitude_deg: float, longitude_deg: float) -> list[int]:
    """A seed from the place (to 0.001°): the same cell gives the same year in every run."""
    return [int(round((latitude_deg + 90.0) * 1000)), int(round((longitude_deg + 360.0) * 1000))]


def climate_year(latitude_deg: float, longitude_deg: float, monthly: MonthlyClimate, climate: Climate,
                 year: int = TYPICAL_YEAR, solar_position: pd.DataFrame | None = None) -> pd.DataFrame:
    """Hourly year with a monthly climate: each month's mean GHI, its day-to-day
    spread, and the place's mean temperature and wind.

    Each local solar day of month *m* gets a daily mean GHI of
    ``monthly.ghi_w_m2[m] × r``, with the month's ratios *r* taken at evenly
    spaced probabilities of its quantile function (``monthly.daily_ratio``,
    rescaled so that they average 1) and shuffled over the month's days by a
    generator seeded from the place (the same year in every run). Within a day
    GHI follows the shape of the Ineichen–Perez clear sky, scaled to the day's
    total. :func:`scale_to_annual_ghi` then brings the year to the irradiance
    raster's annual total and splits GHI into DNI and DHI (Erbs): the
    climatology gives the shape of the year, the raster its level.

    Parameters
    ----------
    latitude_deg, longitude_deg : float
        Place [°].
    monthly : MonthlyClimate
        Its monthly climate (:func:`pvsurvey.model.climatology.monthly_climate`).
    climate : pvsurvey.config.schema.Climate
        Seasonal and diurnal temperature amplitudes [°C]; its annual mean
        temperature [°C] and wind [m/s] when set, else the climatology's.

    Returns
    -------
    DataFrame
        Hourly ``ghi`` [W/m²], ``temp_air`` [°C], ``wind_speed`` [m/s] on
        :func:`hourly_index`.

    References
    ----------
    .. [1] Ineichen, P. and Perez, R. (2002). A new airmass independent
       formulation for the Linke turbidity coefficient. Solar Energy 73(3).
    .. [2] Pfenninger, S. and Staffell, I. (2016). Long-term patterns of
       European PV output using 30 years of validated hourly reanalysis and
       satellite data. Energy 114, 1251–1265 (daily irradiance drawn from
       monthly PDFs of MERRA-2, as GSEE's climate interface does).
    """
    times = hourly_index(year)
    location = pvlib.location.Location(latitude_deg, longitude_deg, tz="UTC")
    clear = location.get_clearsky(times, model="ineichen", solar_position=solar_position)["ghi"].to_numpy()
    n_days = 365
    day = local_solar_day(times, longitude_deg)
    day_month = pd.date_range(f"{year}-01-01", periods=n_days, freq="D").month.to_numpy() - 1
    rng = np.random.default_rng(_seed(latitude_deg, longitude_deg))
    q = np.asarray(monthly.daily_ratio, dtype=float)
    q_probs = (np.arange(q.shape[1]) + 0.5) / q.shape[1]
    ratio = np.empty(n_days)
    for m in range(12):  # twelve months: evenly spaced draws from each month's distribution, shuffled
        days = np.flatnonzero(day_month == m)
        probs = (np.arange(len(days)) + 0.5) / len(days)
        r = np.interp(probs, q_probs, q[m])
        r = r / r.mean() if r.mean() > 0 else np.ones_like(r)
        ratio[days] = rng.permutation(r)
    daily_wh = np.asarray(monthly.ghi_w_m2, dtype=float)[day_month] * ratio * 24.0
    clear_wh = np.bincount(day, weights=clear, minlength=n_days)
    factor = np.divide(daily_wh, clear_wh, out=np.zeros(n_days), where=clear_wh > 0)
    return pd.DataFrame({
        "ghi": clear * factor[day],
        "temp_air": synthetic_temperature(times, longitude_deg, climate, monthly.temp_air_mean_c
                                          if climate.temp_air_mean_c is None else None, latitude_deg),
        "wind_speed": np.full(len(times), monthly.wind_speed_m_s if climate.wind_speed_m_s is None
                              else climate.wind_speed_m_s),
    }, index=times)


def local_solar_day(times: pd.DatetimeIndex, longitude_deg: float) -> np.ndarray:
    """Day of the year (0–364) of each hour in local mean solar time: the hours of
    one day of sunshine belong together (those before 0 h UTC on 1 January wrap
    to 31 December)."""
    local = times + pd.to_timedelta(longitude_deg / 15.0, unit="h")
    return (local.day_of_year.to_numpy() - 1) % 365


def erbs_daily_diffuse_fraction(clearness_index, sunset_hour_angle_deg) -> np.ndarray:
    """Daily diffuse fraction H_d/H [-] from the daily clearness index K_T.

    References
    ----------
    .. [1] Erbs, D. G., Klein, S. A. and Duffie, J. A. (1982). Estimation of the
       diffuse radiation fraction for hourly, daily and monthly-average global
       radiation. Solar Energy 28(4), 293–302; as Duffie, J. A. and Beckman,
       W. A., Solar Engineering of Thermal Processes, 4th ed. (2013), Eq. 2.11.1.
    """
    k = np.clip(np.asarray(clearness_index, dtype=float), 0.0, None)
    short = 1.0 - 0.2727 * k + 2.4495 * k ** 2 - 11.9514 * k ** 3 + 9.3879 * k ** 4
    long = 1.0 + 0.2832 * k - 2.5557 * k ** 2 + 0.8448 * k ** 3
    winter = np.asarray(sunset_hour_angle_deg) <= 81.4
    fraction = np.where(winter, np.where(k < 0.715, short, 0.143), np.where(k < 0.722, long, 0.175))
    return np.clip(fraction, 0.0, 1.0)


def split_by_daily_clearness(ghi, times: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float,
                             zenith) -> tuple[np.ndarray, np.ndarray]:
    """DNI and DHI [W/m²] from hourly GHI with the daily Erbs correlation.

    Each local solar day's clearness index (its GHI over the extraterrestrial
    irradiation on the horizontal) gives the day's diffuse fraction, applied
    to each of its hours; with the sun under 5° everything is diffuse. For the
    climatology's years, whose hours follow the clear-sky shape within a day:
    the hourly Erbs correlation, fitted on hours whose clearness scatters
    within a day, gives them too much diffuse light (measured against pvlib's
    typical years: diffuse share 0.69–0.72 where the real years have 0.56–0.60).
    """
    ghi = np.asarray(ghi, dtype=float)
    zenith = np.asarray(zenith, dtype=float)
    day = local_solar_day(times, longitude_deg)
    cos_zenith = np.cos(np.radians(zenith))
    extra_h = pvlib.irradiance.get_extra_radiation(times).to_numpy() * np.clip(cos_zenith, 0.0, None)
    kt = np.divide(np.bincount(day, weights=ghi, minlength=365), np.bincount(day, weights=extra_h, minlength=365),
                   out=np.zeros(365), where=np.bincount(day, weights=extra_h, minlength=365) > 0)
    declination = pvlib.solarposition.declination_spencer71(np.arange(1, 366))
    sunset = np.degrees(np.arccos(np.clip(-np.tan(np.radians(latitude_deg)) * np.tan(declination), -1.0, 1.0)))
    dhi = ghi * erbs_daily_diffuse_fraction(kt, sunset)[day]
    low_sun = cos_zenith < np.sin(np.radians(5.0))
    dhi = np.where(low_sun, ghi, dhi)
    dni = np.where(low_sun, 0.0, (ghi - dhi) / np.where(low_sun, 1.0, cos_zenith))
    return dni, dhi


def annual_ghi_kwh_per_m2(weather: pd.DataFrame) -> float:
    """Annual GHI [kWh/m²/yr] of an hourly year."""
    hours = 8760.0 / len(weather)
    return float(np.nansum(weather["ghi"].to_numpy())) * hours / 1000.0


def scale_to_annual_ghi(weather: pd.DataFrame, target_kwh_per_m2_yr: float,
                        latitude_deg: float, longitude_deg: float,
                        solar_position: pd.DataFrame | None = None, daily: bool = False) -> pd.DataFrame:
    """Scale an hourly year so its annual GHI equals the target.

    Measured DNI and DHI (from a weather file) are scaled by the same factor;
    where they are absent, the scaled GHI is split with the Erbs decomposition:
    the hourly correlation, or with ``daily`` the daily one
    (:func:`split_by_daily_clearness`, for :func:`climate_year`'s years).

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
    if daily:
        out["dni"], out["dhi"] = split_by_daily_clearness(out["ghi"].to_numpy(), out.index, latitude_deg,
                                                          longitude_deg, solpos["zenith"].to_numpy())
        return out
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
