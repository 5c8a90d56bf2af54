"""Irradiance raster: validation at start, and window reads under each partition."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS, Transformer
from rasterio.windows import Window

from ..errors import CRSError, InputFileError, IrradianceUnitsError
from ..irradiance import ghi_to_kwh_per_m2_yr

# Long-term annual GHI on Earth lies between about 600 (polar, cloudy) and
# 2,700 kWh/m²/yr (Atacama); values far outside mean wrong units.
PLAUSIBLE_ANNUAL_GHI = (300.0, 3300.0)


@dataclass(frozen=True)
class RasterInfo:
    path: Path
    units: str
    crs_wkt: str
    bounds: tuple[float, float, float, float]  # in the raster's CRS
    nodata: float | None
    median_kwh_per_m2_yr: float


def open_irradiance(path: Path, units: str) -> RasterInfo:
    """Check the GHI raster before any work: readable, has a CRS, plausible values.

    Raises
    ------
    InputFileError, CRSError, IrradianceUnitsError
        One line naming the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"irradiance raster not found: {path} (check 'irradiance.ghi' in the config)")
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise CRSError(f"{path}: the irradiance raster has no CRS; assign one, e.g. "
                               f"'gdal_edit.py -a_srs EPSG:4326 {path.name}'")
            # a decimated read is enough to judge the units, even for a huge raster
            scale = max(1, int(np.ceil(max(src.width, src.height) / 512)))
            sample = src.read(1, masked=True, out_shape=(max(1, src.height // scale), max(1, src.width // scale)))
            info = RasterInfo(path, units, src.crs.to_wkt(), tuple(src.bounds), src.nodata, float("nan"))
    except (CRSError, InputFileError):
        raise
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read the irradiance raster ({exc})") from None
    values = sample.compressed()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise InputFileError(f"{path}: the irradiance raster holds only nodata")
    median = float(np.median(ghi_to_kwh_per_m2_yr(values, units)))
    low, high = PLAUSIBLE_ANNUAL_GHI
    if not low <= median <= high:
        guesses = [u for u in ("kWh/m2/day", "kWh/m2/yr", "W/m2")
                   if low <= float(np.median(ghi_to_kwh_per_m2_yr(values, u))) <= high]
        hint = f"; the values look like {guesses[0]}" if guesses else ""
        raise IrradianceUnitsError(
            f"{path}: median {np.median(values):.4g} read as '{units}' gives {median:.0f} kWh/m²/yr, "
            f"outside the plausible {low:.0f}–{high:.0f}; set 'irradiance.units' to the raster's units{hint}")
    return RasterInfo(path, units, info.crs_wkt, info.bounds, info.nodata, median)


def sample_ghi_kwh_per_m2_yr(info: RasterInfo, lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Annual GHI [kWh/m²/yr] of the raster cell under each WGS84 point.

    Reads only the window that covers the points.

    Returns
    -------
    ghi : numpy.ndarray
        NaN where the point is outside the raster or on nodata.
    outside : numpy.ndarray of bool
        True where the point lies outside the raster.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ghi = np.full(len(lon), np.nan)
    outside = np.ones(len(lon), dtype=bool)
    if len(lon) == 0:
        return ghi, outside
    with rasterio.open(info.path) as src:
        to_raster = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_wkt(info.crs_wkt), always_xy=True)
        x, y = to_raster.transform(lon, lat)
        rows, cols = rasterio.transform.rowcol(src.transform, x, y, op=np.floor)
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width) & np.isfinite(x) & np.isfinite(y)
        outside = ~inside
        if not inside.any():
            return ghi, outside
        r0, r1 = rows[inside].min(), rows[inside].max() + 1
        c0, c1 = cols[inside].min(), cols[inside].max() + 1
        block = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
    values = block.filled(np.nan).astype(float)[rows[inside] - r0, cols[inside] - c0]
    ghi[inside] = ghi_to_kwh_per_m2_yr(values, info.units)
    return ghi, outside
