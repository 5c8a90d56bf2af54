"""The Sun's position over one hourly year at many places at once.

``pvlib.solarposition.get_solarposition(times, lat, lon)`` (NREL SPA in numpy,
pvlib's defaults) spends nine tenths of its time on what depends on the time
alone: the Earth's heliocentric position, nutation, the Sun's apparent right
ascension and declination, sidereal time. A survey asks it for every weather
cell over the same 8760 hours; :func:`solar_positions` computes the time-only
part once and only the observer's part (hour angle, parallax, refraction,
azimuth) per place, with the very functions and arguments pvlib's numpy SPA
uses, so each table equals ``get_solarposition``'s to the last bit
(tests/test_solar_position.py compares them).

References
----------
.. [1] Reda, I. and Andreas, A. (2004). Solar position algorithm for solar
   radiation applications. Solar Energy 76(5), 577–589.
   doi:10.1016/j.solener.2003.12.003
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# pvlib.solarposition.spa_python's defaults (pvlib 0.16), which get_solarposition
# uses when given neither altitude nor pressure: sea level, the standard
# atmosphere, 12 °C, ΔT 67 s and 0.5667° of refraction at the horizon.
_ALTITUDE_M = 0.0
_PRESSURE_MBAR = 101325.0 / 100.0
_TEMPERATURE_C = 12.0
_DELTA_T_S = 67.0
_ATMOS_REFRACT_DEG = 0.5667


def _unixtime(times: pd.DatetimeIndex) -> np.ndarray:
    """Seconds since 1970-01-01 UTC, as pvlib converts its times."""
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    epoch = epoch.tz_convert(times.tz) if times.tz is not None else epoch.tz_localize(None)
    return np.array((times - epoch) / pd.Timedelta("1s"))


def solar_positions(times: pd.DatetimeIndex, places) -> list[pd.DataFrame]:
    """``pvlib.solarposition.get_solarposition(times, lat, lon)`` for each
    ``(lat, lon)`` of ``places`` [°], the time-only part of SPA computed once.

    Returns
    -------
    list of DataFrame
        One per place, in order, with pvlib's columns (``apparent_zenith``,
        ``zenith``, ``apparent_elevation``, ``elevation``, ``azimuth`` [°],
        ``equation_of_time`` [min]) on ``times``.
    """
    from pvlib import spa

    jd = spa.julian_day(_unixtime(times))
    jde = spa.julian_ephemeris_day(jd, _DELTA_T_S)
    jc = spa.julian_century(jd)
    jce = spa.julian_ephemeris_century(jde)
    jme = spa.julian_ephemeris_millennium(jce)
    R = spa.heliocentric_radius_vector(jme)
    L = spa.heliocentric_longitude(jme)
    B = spa.heliocentric_latitude(jme)
    Theta = spa.geocentric_longitude(L)
    beta = spa.geocentric_latitude(B)
    x0 = spa.mean_elongation(jce)
    x1 = spa.mean_anomaly_sun(jce)
    x2 = spa.mean_anomaly_moon(jce)
    x3 = spa.moon_argument_latitude(jce)
    x4 = spa.moon_ascending_longitude(jce)
    nutation = np.empty((2, len(x0)))
    spa.longitude_obliquity_nutation(jce, x0, x1, x2, x3, x4, nutation)
    delta_psi, delta_epsilon = nutation[0], nutation[1]
    epsilon = spa.true_ecliptic_obliquity(spa.mean_ecliptic_obliquity(jme), delta_epsilon)
    lamd = spa.apparent_sun_longitude(Theta, delta_psi, spa.aberration_correction(R))
    v = spa.apparent_sidereal_time(spa.mean_sidereal_time(jd, jc), delta_psi, epsilon)
    alpha = spa.geocentric_sun_right_ascension(lamd, epsilon, beta)
    delta = spa.geocentric_sun_declination(lamd, epsilon, beta)
    eot = spa.equation_of_time(spa.sun_mean_longitude(jme), alpha, delta_psi, epsilon)
    xi = spa.equatorial_horizontal_parallax(R)
    out = []
    for lat, lon in places:  # the observer's part, per place (spa.solar_position_numpy's second half)
        H = spa.local_hour_angle(v, lon, alpha)
        u = spa.uterm(lat)
        x = spa.xterm(u, lat, _ALTITUDE_M)
        y = spa.yterm(u, lat, _ALTITUDE_M)
        delta_alpha = spa.parallax_sun_right_ascension(x, xi, H, delta)
        delta_prime = spa.topocentric_sun_declination(delta, x, y, xi, delta_alpha, H)
        H_prime = spa.topocentric_local_hour_angle(H, delta_alpha)
        e0 = spa.topocentric_elevation_angle_without_atmosphere(lat, delta_prime, H_prime)
        delta_e = spa.atmospheric_refraction_correction(_PRESSURE_MBAR, _TEMPERATURE_C, e0, _ATMOS_REFRACT_DEG)
        e = spa.topocentric_elevation_angle(e0, delta_e)
        gamma = spa.topocentric_astronomers_azimuth(H_prime, delta_prime, lat)
        out.append(pd.DataFrame({"apparent_zenith": spa.topocentric_zenith_angle(e),
                                 "zenith": spa.topocentric_zenith_angle(e0),
                                 "apparent_elevation": e, "elevation": e0,
                                 "azimuth": spa.topocentric_azimuth_angle(gamma),
                                 "equation_of_time": eot}, index=times))
    return out
