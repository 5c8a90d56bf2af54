"""Irradiance raster: validation at start, and window reads under each partition."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import rasterio
from pyproj import CRS, Transformer
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from ..errors import CRSError, InputFileError, IrradianceUnitsError
from ..model.weather_year import ghi_to_kwh_per_m2_yr
from ..locations import Location, location, name_of
from .storage import is_file, open_raster
from ..model.zonal import (AREA_EPS_PX, BlockSums, Edges, Pieces, Workspace, ZonalError, block_sums, edge_pieces,
                           finish, pixel_pieces, ring_edges)

# Long-term annual GHI on Earth lies between about 600 (polar, cloudy) and
# 2,700 kWh/m²/yr (Atacama); values far outside mean wrong units.
PLAUSIBLE_ANNUAL_GHI = (300.0, 3300.0)


@dataclass(frozen=True)
class RasterInfo:
    path: Location
    units: str
    crs_wkt: str
    bounds: tuple[float, float, float, float]  # in the raster's CRS
    nodata: float | None
    median_kwh_per_m2_yr: float


def open_irradiance(path: Location, units: str) -> RasterInfo:
    """Check the GHI raster before any work: readable, has a CRS, plausible values.

    Raises
    ------
    InputFileError, CRSError, IrradianceUnitsError
        One line naming the file and the fix.
    """
    path = location(path)
    if not is_file(path):
        raise InputFileError(f"irradiance raster not found: {path} (check 'irradiance.ghi' in the config)")
    try:
        with open_raster(path) as src:
            if src.crs is None:
                raise CRSError(f"{path}: the irradiance raster has no CRS; assign one, e.g. "
                               f"'gdal_edit.py -a_srs EPSG:4326 {name_of(path)}'")
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


def pixel_centres_kwh_per_m2_yr(info: RasterInfo, bounds_wgs84, max_pixels: int = 10_000):
    """Lon, lat [°] and annual GHI [kWh/m²/yr] of the valid pixel centres of a
    coarse raster within WGS84 bounds; None when the window holds more pixels
    than ``max_pixels`` (a rooftop raster) or none."""
    with open_raster(info.path) as src:
        to_raster = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_wkt(info.crs_wkt), always_xy=True)
        left, bottom, right, top = to_raster.transform_bounds(*bounds_wgs84)
        window = rasterio.windows.from_bounds(left, bottom, right, top, src.transform).round_offsets().round_lengths()
        window = Window(window.col_off, window.row_off, max(1, window.width), max(1, window.height))
        try:
            window = window.intersection(Window(0, 0, src.width, src.height))
        except rasterio.errors.WindowError:  # the bounds miss the raster
            return None
        if window.width * window.height > max_pixels or window.width * window.height == 0:
            return None
        block = src.read(1, window=window, masked=True).filled(np.nan).astype(float)
        rows, cols = np.nonzero(np.isfinite(block))
        xs, ys = rasterio.transform.xy(src.window_transform(window), rows, cols)
    lon, lat = Transformer.from_crs(CRS.from_wkt(info.crs_wkt), CRS.from_epsg(4326), always_xy=True).transform(xs, ys)
    return np.asarray(lon), np.asarray(lat), ghi_to_kwh_per_m2_yr(block[rows, cols], info.units)


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
    with open_raster(info.path) as src:
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


# ---------------------------------------------------------------------------
# High-resolution rasters: per-building zonal statistics, tile by tile

# Above this pixel size a rooftop raster is a climatology: sample the cell under the centroid.
HIGH_RESOLUTION_MAX_PIXEL_M = 5.0
# Side of the square tiles read one at a time [px]: about 110 MB of prefix-sum buffers and window at
# 2048 (240 MB peak for a call on 100,000 roofs, everything included but GDAL's block cache).
ZONAL_TILE_PX = 2048


@functools.lru_cache(maxsize=16)
def raster_pixel_size_m(info: RasterInfo) -> float:
    """Larger side of the raster's pixels [m].

    Projected CRSs use their linear unit; geographic ones the length of a
    degree at the raster's centre latitude (WGS84 ellipsoid). Cached per
    raster: calling it once per partition costs nothing.
    """
    with open_raster(info.path) as src:
        res_x, res_y = src.res
    crs = CRS.from_wkt(info.crs_wkt)
    if crs.is_geographic:
        from pyproj import Geod

        west, south, east, north = info.bounds
        lat = float(np.clip((south + north) / 2, -89.0, 89.0))
        lon = (west + east) / 2
        geod = Geod(ellps="WGS84")
        _, _, dx = geod.inv(lon, lat, lon + res_x, lat)
        _, _, dy = geod.inv(lon, lat - res_y / 2, lon, lat + res_y / 2)
        return float(max(dx, dy))
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return float(max(res_x, res_y) * factor)


def is_high_resolution(info: RasterInfo, max_pixel_size_m: float = HIGH_RESOLUTION_MAX_PIXEL_M) -> bool:
    """True when the raster's pixels are small next to roofs (≤ ``max_pixel_size_m`` [m]).

    Such a raster (1 m rooftop irradiance from UMEP SEBE or GRASS r.sun) calls
    for :func:`zonal_ghi_kwh_per_m2_yr`; a coarser one (a 0.25° climatology)
    for :func:`sample_ghi_kwh_per_m2_yr`.
    """
    return raster_pixel_size_m(info) <= max_pixel_size_m


def _to_raster_crs(info: RasterInfo, geoms_wgs84) -> np.ndarray:
    import shapely

    crs = CRS.from_wkt(info.crs_wkt)
    geoms = np.asarray(geoms_wgs84, dtype=object)
    if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return geoms
    to_raster = Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)

    def project(xy):
        x, y = to_raster.transform(xy[:, 0], xy[:, 1], errcheck=False)
        return np.column_stack([x, y])

    return shapely.transform(geoms, project)


def _groups(key: np.ndarray):
    """(key, indices) of each distinct key, in key order."""
    order = np.argsort(key, kind="stable")
    key = key[order]
    bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1], True])
    for start, stop in zip(bounds[:-1], bounds[1:]):
        yield int(key[start]), order[start:stop]


def _tiles_of_edges(edges: Edges, n: int, shape: tuple[int, int], tile_px: int):
    """(tile row, tile column, edge indices) for every tile some footprint reaches.

    An edge goes to each tile of its rows and of its footprint's column extent:
    a tile needs every edge of a footprint in its rows for its sums to be complete.
    """
    height, width = shape
    u_min = np.full(n, np.inf)
    u_max = np.full(n, -np.inf)
    np.minimum.at(u_min, edges.building, np.minimum(edges.u0, edges.u1))
    np.maximum.at(u_max, edges.building, np.maximum(edges.u0, edges.u1))
    on = (u_max > 0) & (u_min < width)
    tc0 = (np.floor(np.clip(u_min, 0, width - 1)) // tile_px).astype(np.int64)
    tc1 = ((np.ceil(np.clip(u_max, 1, width)) - 1) // tile_px).astype(np.int64)
    r_lo = np.maximum(np.floor(np.minimum(edges.v0, edges.v1)), 0)
    r_hi = np.minimum(np.ceil(np.maximum(edges.v0, edges.v1)), height) - 1
    keep = np.flatnonzero(on[edges.building] & (r_hi >= r_lo))
    tr0 = (r_lo[keep] // tile_px).astype(np.int64)
    tr1 = (r_hi[keep] // tile_px).astype(np.int64)
    b = edges.building[keep]
    n_tr, n_tc = tr1 - tr0 + 1, tc1[b] - tc0[b] + 1
    count = n_tr * n_tc
    edge = np.repeat(keep, count)  # most edges reach one tile
    k = np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    tile_row = np.repeat(tr0, count) + k // np.repeat(n_tc, count)
    tile_col = np.repeat(tc0[b], count) + k % np.repeat(n_tc, count)
    n_tile_cols = -(-width // tile_px)
    for key, idx in _groups(tile_row * n_tile_cols + tile_col):
        yield key // n_tile_cols, key % n_tile_cols, edge[idx]


def zonal_ghi_kwh_per_m2_yr(info: RasterInfo, geoms_wgs84, lon, lat,
                            threshold_kwh_per_m2_yr: float | None = None,
                            tile_px: int = ZONAL_TILE_PX) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted mean annual GHI [kWh/m²/yr] under each roof, read tile by tile.

    Every pixel counts with the share of its area under the footprint (as in
    exactextract; see :mod:`pvsurvey.model.zonal`). The raster is read in windows of
    at most ``tile_px`` × ``tile_px`` pixels, and only where footprints are,
    so memory stays bounded however large the raster and however spread the
    footprints.

    Parameters
    ----------
    info : RasterInfo
        From :func:`open_irradiance`.
    geoms_wgs84 : array_like of shapely geometries
        Footprints [WGS84 lon/lat].
    lon, lat : array_like
        Their centroids [°]: the fallback pixel of a footprint with no area
        inside the raster, as in :func:`sample_ghi_kwh_per_m2_yr`.
    threshold_kwh_per_m2_yr : float, optional
        For ``frac_above`` [kWh/m²/yr].
    tile_px : int
        Side of the tiles read one at a time [px].

    Returns
    -------
    ghi : numpy.ndarray
        Mean over the valid pixels under the roof [kWh/m²/yr]; NaN outside the
        raster or where only nodata lies under the roof. A roof partly off the
        raster gets the mean of its part on it.
    frac_above : numpy.ndarray
        Share of the valid roof area above the threshold [0..1]; NaN without a
        threshold or without valid pixels.
    outside : numpy.ndarray of bool
        True where neither the footprint nor its centroid touch the raster.
    """
    if tile_px < 1:
        raise ZonalError(f"tile size must be at least 1 px (got {tile_px})")
    geoms = np.asarray(geoms_wgs84, dtype=object)
    n = len(geoms)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if len(lon) != n or len(lat) != n:
        raise ZonalError(f"lon and lat must have one value per footprint (got {len(lon)}, {len(lat)} for {n})")
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    factor = float(ghi_to_kwh_per_m2_yr(1.0, info.units))
    threshold = None if threshold_kwh_per_m2_yr is None else float(threshold_kwh_per_m2_yr) / factor
    totals = np.zeros((4, n))  # value sum, valid area, area above the threshold, area on the raster
    ws = Workspace()

    with open_raster(info.path) as src:
        height, width, transform, nodata = src.height, src.width, src.transform, src.nodata
        # a nodata value is compared in the compute; only a real mask band needs a masked read
        masked = not set(src.mask_flag_enums[0]) <= {MaskFlags.nodata, MaskFlags.all_valid}

        def add_tile(pieces: Pieces, tile_row: int, tile_col: int) -> None:
            """Read the tile's window under the pieces once and add their sums."""
            lo = np.minimum(pieces.xa, pieces.xb)
            hi = np.maximum(pieces.xa, pieces.xb)
            # pieces left of the window add 0; F of pieces right of it is the window's row total
            c0 = max(tile_col * tile_px, int(np.floor(lo.min())))
            c1 = min((tile_col + 1) * tile_px, width, int(np.ceil(hi.max())))
            if c1 <= c0:  # every piece lies left of the tile: none of it is under a roof
                return
            r0, r1 = int(pieces.row.min()), int(pieces.row.max()) + 1
            block = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=masked)
            local, inverse = np.unique(pieces.building, return_inverse=True)
            pieces = Pieces(inverse, pieces.row, pieces.xa, pieces.xb, pieces.dy)
            sums = block_sums(block, pieces, len(local), r0, c0, threshold, nodata, ws)
            totals[:, local] += (sums.value_sum, sums.valid_px, sums.above_px, sums.area_px)

        edges = ring_edges(_to_raster_crs(info, geoms), transform)
        if len(edges):
            for tile_row, tile_col, idx in _tiles_of_edges(edges, n, (height, width), tile_px):
                pieces = edge_pieces(edges.take(idx), tile_row * tile_px, min((tile_row + 1) * tile_px, height))
                if len(pieces):
                    add_tile(pieces, tile_row, tile_col)

        # a footprint with no area on the raster gets the pixel under its centroid, as the centroid sampler
        fallback = totals[3] <= AREA_EPS_PX
        to_raster = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_wkt(info.crs_wkt), always_xy=True)
        x, y = to_raster.transform(lon[fallback], lat[fallback], errcheck=False)
        extra = pixel_pieces(x, y, transform, (height, width), np.flatnonzero(fallback))
        if len(extra):
            n_tile_cols = -(-width // tile_px)
            col = np.where(extra.dy > 0, extra.xa - 1, extra.xa).astype(np.int64)  # the pixel of both sides
            for key, idx in _groups((extra.row // tile_px) * n_tile_cols + col // tile_px):
                add_tile(extra.take(idx), key // n_tile_cols, key % n_tile_cols)
        outside = fallback.copy()
        outside[extra.building] = False

    stats = finish(BlockSums(*totals), threshold)
    return stats.mean * factor, stats.frac_above, outside
