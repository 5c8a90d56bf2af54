"""Regenerate pvsurvey/model/data/climatology.npz, the monthly climate behind the
typical year made without a weather file (deterministic).

    pip install gsee-climate-data==1.0.0 pvcz==0.3.0    # only needed to rebuild it
    python data/make_climatology.py

Writes one compressed NumPy archive (about 0.5 MB) with

- ``ghi_lat``, ``ghi_lon`` [°]: centres of the 3° cells of the MERRA-2 PDFs
  that ``gsee-climate-data`` 1.0.0 ships (land and near-land cells);
- ``ghi_monthly_w_m2`` (lat, lon, 12), uint16 in 0.1 W/m²: the mean of each
  month's distribution of daily mean GHI (0 where the cell has no data);
- ``ghi_daily_ratio`` (lat, lon, 12, Q), uint8 in 1/64: Q quantiles of the
  daily mean GHI over the month's mean, at probabilities (k + 0.5) / Q — the
  day-to-day spread of the month (its clearness distribution);
- ``temp_lat``, ``temp_lon`` [°]: centres of the 0.25° GLDAS grid;
- ``temp_air_mean_c`` (lat, lon), int8 in 0.25 °C: the annual mean air
  temperature of the GLDAS NOAH 0.25° climatology (column ``T_ambient_mean``
  of pvcz 0.3.0; -128 where GLDAS has no land);
- ``wind_speed_rms_m_s`` (lat, lon), uint8 in 0.1 m/s: the root-mean-square
  10 m wind speed of the same climatology (column ``wind_speed_rms``).

See data/README.md for the sources and licences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "pvsurvey" / "model" / "data" / "climatology.npz"
QUANTILES = 12
RATIO_STEP = 1.0 / 64.0
TEMP_NODATA = -128
TEMP_STEP_C = 0.25
WIND_STEP_M_S = 0.1


def ghi_tables():
    """Monthly mean daily GHI and daily-ratio quantiles from the MERRA-2 PDFs."""
    import gsee_climate_data

    d = gsee_climate_data.load()
    xk = np.clip(d["xk"].astype(np.float64), 0.0, None)  # kernel-smoothed bins reach below 0 W/m²
    pk = np.nan_to_num(d["pk"].astype(np.float64)).clip(0.0, None)
    total = pk.sum(axis=-1, keepdims=True)
    valid = total[..., 0] > 0  # (lat, lon, month)
    p = np.divide(pk, total, out=np.zeros_like(pk), where=total > 0)
    mean = (p * xk).sum(axis=-1)
    cdf = np.cumsum(p, axis=-1)
    probs = (np.arange(QUANTILES) + 0.5) / QUANTILES
    q = np.zeros(mean.shape + (QUANTILES,))
    for idx in zip(*np.nonzero(valid)):  # ~27,000 cell-months, once, offline
        q[idx] = np.interp(probs, cdf[idx], xk[idx])
    ratio = np.divide(q, mean[..., None], out=np.zeros_like(q), where=mean[..., None] > 0)
    cell_valid = valid.all(axis=-1) & (mean > 0).all(axis=-1)
    monthly = np.where(cell_valid[..., None], np.round(mean * 10.0), 0).astype(np.uint16)
    ratio_q = np.where(cell_valid[..., None, None], np.round(np.clip(ratio, 0, 255 * RATIO_STEP) / RATIO_STEP),
                       0).astype(np.uint8)
    return d["lat"].astype(np.float32), d["lon"].astype(np.float32), monthly, ratio_q


def temperature_table():
    """Annual mean air temperature on pvcz's own 0.25° grid, int8 in 0.25 °C, and
    the root-mean-square 10 m wind speed, uint8 in 0.1 m/s."""
    import pvcz

    df = pvcz.get_pvcz_data()
    lat = np.arange(-89.875, 90.0, 0.25)
    lon = np.arange(-179.875, 180.0, 0.25)
    row = np.round((df["lat"].to_numpy() - lat[0]) / 0.25).astype(int)
    col = np.round((df["lon"].to_numpy() - lon[0]) / 0.25).astype(int)
    t = df["T_ambient_mean"].to_numpy(dtype=float)
    ok = np.isfinite(t)
    out = np.full((len(lat), len(lon)), TEMP_NODATA, dtype=np.int8)
    # annual means below -31.75 °C (inland Antarctica, Greenland) clip: no PV survey goes there
    out[row[ok], col[ok]] = np.clip(np.round(t[ok] / TEMP_STEP_C), -127, 127).astype(np.int8)
    w = df["wind_speed_rms"].to_numpy(dtype=float)
    wind = np.zeros((len(lat), len(lon)), dtype=np.uint8)
    wind[row[ok], col[ok]] = np.clip(np.round(np.nan_to_num(w[ok]) / WIND_STEP_M_S), 0, 255).astype(np.uint8)
    return lat.astype(np.float32), lon.astype(np.float32), out, wind


def main() -> None:
    ghi_lat, ghi_lon, monthly, ratio = ghi_tables()
    temp_lat, temp_lon, temp, wind = temperature_table()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, ghi_lat=ghi_lat, ghi_lon=ghi_lon, ghi_monthly_w_m2=monthly, ghi_daily_ratio=ratio,
                        temp_lat=temp_lat, temp_lon=temp_lon, temp_air_mean_c=temp, wind_speed_rms_m_s=wind)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): {int((monthly[..., 0] > 0).sum())} GHI cells, "
          f"{int((temp != TEMP_NODATA).sum())} temperature cells")


if __name__ == "__main__":
    main()
