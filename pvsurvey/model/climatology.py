"""The monthly climate behind the typical year made without a weather file.

A packaged, read-only table (``data/climatology.npz``, 0.23 MB, rebuilt by
``data/make_climatology.py``), read like pvlib reads its bundled Linke
turbidity table: no user file, no network. It holds

- per 3° cell of NASA MERRA-2 (2011–2015, land and near-land cells, as the
  ``gsee-climate-data`` 1.0.0 package ships them): the mean daily GHI of each
  month and 12 quantiles of the day-to-day spread within the month;
- per 0.25° land cell: the annual mean air temperature and the
  root-mean-square 10 m wind speed of the GLDAS NOAH 0.25° climatology that
  the ``pvcz`` 0.3.0 package ships (the mean wind taken as √π/2 of the RMS,
  as for Rayleigh-distributed speeds).

A point outside the cells with data takes the nearest cell that has them (a
ship's or an island's location far from land).

References
----------
.. [1] Gelaro, R. et al. (2017). The Modern-Era Retrospective Analysis for
   Research and Applications, Version 2 (MERRA-2). Journal of Climate 30(14),
   5419–5454.
.. [2] Pfenninger, S. and Staffell, I. (2016). Long-term patterns of European
   PV output using 30 years of validated hourly reanalysis and satellite data.
   Energy 114, 1251–1265 (the monthly PDFs of daily irradiance).
.. [3] Karin, T., Jones, C. B. and Jain, A. (2019). Photovoltaic degradation
   climate zones. IEEE 46th PVSC (the GLDAS temperature climatology of pvcz).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TABLE = Path(__file__).resolve().parent / "data" / "climatology.npz"
RATIO_STEP = 1.0 / 64.0  # the daily-ratio quantiles are stored in 1/64
TEMP_NODATA = -128
TEMP_STEP_C = 0.25  # the temperatures are stored in 0.25 °C
WIND_STEP_M_S = 0.1  # the wind speeds in 0.1 m/s
# Mean over root-mean-square of a Rayleigh-distributed wind speed, sqrt(pi)/2: the
# distribution IEC 61400-1 (2019) assumes for wind speeds at a site.
RAYLEIGH_MEAN_OVER_RMS = float(np.sqrt(np.pi) / 2.0)


@dataclass(frozen=True)
class MonthlyClimate:
    """The climate of one place, month by month.

    Attributes
    ----------
    ghi_w_m2 : numpy.ndarray, shape (12,)
        Mean daily GHI of each month, January first [W/m², 24-hour mean].
    daily_ratio : numpy.ndarray, shape (12, Q)
        Quantiles of a day's mean GHI over its month's mean [-] at
        probabilities (k + 0.5) / Q, ascending.
    temp_air_mean_c : float
        Annual mean air temperature [°C].
    wind_speed_m_s : float
        Mean 10 m wind speed [m/s].
    """

    ghi_w_m2: np.ndarray
    daily_ratio: np.ndarray
    temp_air_mean_c: float
    wind_speed_m_s: float


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    with np.load(TABLE) as z:
        t = {k: z[k] for k in z.files}
    t["ghi_ok"] = np.argwhere(t["ghi_monthly_w_m2"][..., 0] > 0)
    t["temp_ok"] = np.argwhere(t["temp_air_mean_c"] != TEMP_NODATA)
    return t


def _nearest(lat_deg: float, lon_deg: float, grid_lat, grid_lon, ok) -> tuple[int, int]:
    """The cell with data nearest to a point (equirectangular distance, wrapping
    in longitude: exact enough to pick a neighbour)."""
    lat = grid_lat[ok[:, 0]].astype(float)
    dlon = (grid_lon[ok[:, 1]].astype(float) - lon_deg + 180.0) % 360.0 - 180.0
    dist = (lat - lat_deg) ** 2 + (dlon * np.cos(np.radians(lat_deg))) ** 2
    i, j = ok[int(np.argmin(dist))]
    return int(i), int(j)


def monthly_climate(latitude_deg: float, longitude_deg: float) -> MonthlyClimate:
    """The bundled monthly climate at a point [°]."""
    t = _table()
    i, j = _nearest(latitude_deg, longitude_deg, t["ghi_lat"], t["ghi_lon"], t["ghi_ok"])
    ghi = t["ghi_monthly_w_m2"][i, j].astype(float) / 10.0
    ratio = t["ghi_daily_ratio"][i, j].astype(float) * RATIO_STEP
    ti, tj = _nearest(latitude_deg, longitude_deg, t["temp_lat"], t["temp_lon"], t["temp_ok"])
    temp = float(t["temp_air_mean_c"][ti, tj]) * TEMP_STEP_C
    wind = float(t["wind_speed_rms_m_s"][ti, tj]) * WIND_STEP_M_S * RAYLEIGH_MEAN_OVER_RMS
    return MonthlyClimate(ghi_w_m2=ghi, daily_ratio=ratio, temp_air_mean_c=temp, wind_speed_m_s=wind)
