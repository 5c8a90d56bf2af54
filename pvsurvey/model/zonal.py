"""Per-building zonal statistics over a raster block (pure compute, no file access).

What is computed
    For each footprint, the area-weighted mean of the raster under it: every
    pixel counts with the share of its area that the footprint covers (the
    definition exactextract uses), the covered area of valid pixels, and the
    share of that area whose value lies above a threshold. Buildings smaller
    than a pixel get the area-weighted mean of the pixels they touch (the pixel
    under them when they lie inside one).

How
    By Green's theorem, ∬ v dA over a polygon equals ∮ F(x) dy around its
    rings, where F(x) is the integral of the pixel row from the block's left
    edge to x. Within one pixel F is linear in x, so once every edge is cut at
    the row and column lines of the pixels it crosses, the integral along each
    piece is exact: its signed height times F at its middle, read from one
    row-wise prefix sum of the block. A footprint's sum is the sum over its
    pieces. Nothing is rasterized or sorted and there is no loop over
    buildings: the cost is one prefix sum per block and quantity (values,
    valid pixels, pixels above the threshold) plus a few array operations per
    piece (about two per building per pixel row, plus one per column crossed).

Semantics
    - Overlapping footprints are measured independently: a pixel under two
      roofs counts fully for both, exactly as if each building were alone.
    - Holes are subtracted; the parts of a multipolygon add up.
    - Masked, nodata and non-finite pixels are left out of the mean, the
      valid area and the share above the threshold.
    - A footprint reaching past the block is measured on its part inside the
      block; the sums of :func:`block_sums` add up over blocks, so a raster
      cut into tiles gives the same result as one big block (to float
      rounding, ~1e-12 relative).
    - A footprint with no area inside the block (a zero-area polygon, or a
      point) gets the pixel under its centroid, as the centroid sampler does.
    - Any affine transform works, rotated and sheared ones included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

from ..errors import PVSurveyError


# Areas below this [px²] are float rounding, not a measurement.
AREA_EPS_PX = 1e-9


class ZonalError(PVSurveyError, ValueError):
    """Wrong input to the zonal statistics (block shape, tile size)."""


@dataclass(frozen=True)
class Pieces:
    """Footprint edges cut at pixel-row lines, in pixel coordinates.

    Attributes
    ----------
    building : numpy.ndarray of int64
        Index of the footprint (into the geometries given) of each piece.
    row : numpy.ndarray of int64
        Pixel row the piece lies in [px, from the top of the raster].
    xa, xb : numpy.ndarray of float64
        Column coordinate of the piece's two ends [px, from the left edge of
        the raster; pixel ``c`` spans ``c … c + 1``].
    dy : numpy.ndarray of float64
        Signed height of the piece [px], times the orientation sign of its
        ring, so that Σ dy · mean(F over xa … xb) is +∬ v dA for every ring
        whatever its winding (holes negative).
    """

    building: np.ndarray
    row: np.ndarray
    xa: np.ndarray
    xb: np.ndarray
    dy: np.ndarray

    def __len__(self) -> int:
        return len(self.building)

    def take(self, index) -> "Pieces":
        """The pieces at ``index`` (an integer array or a boolean mask)."""
        return Pieces(self.building[index], self.row[index], self.xa[index], self.xb[index], self.dy[index])


@dataclass(frozen=True)
class ZonalStats:
    """Statistics of each building's roof.

    Attributes
    ----------
    mean : numpy.ndarray of float64
        Area-weighted mean raster value under the roof [raster units]; NaN
        where no valid pixel lies under it.
    valid_px : numpy.ndarray of float64
        Area of valid pixels under the roof [pixels; a pixel half covered
        counts ½]; 1 or 0 where the centroid fallback was used.
    frac_above : numpy.ndarray of float64
        Share of the valid roof area whose value is strictly above the
        threshold [0..1]; NaN without a threshold or without valid pixels.
    fallback : numpy.ndarray of bool
        True where the footprint had no area inside the raster and the pixel
        under its centroid was used.
    """

    mean: np.ndarray
    valid_px: np.ndarray
    frac_above: np.ndarray
    fallback: np.ndarray


def centroid_xy_of(geoms) -> tuple[np.ndarray, np.ndarray]:
    """Centroid coordinates of each geometry; NaN for None and empty geometries."""
    geoms = np.asarray(geoms, dtype=object)
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    ok = ~shapely.is_missing(geoms)
    ok[ok] = ~shapely.is_empty(geoms[ok])
    if ok.any():
        c = shapely.centroid(geoms[ok])
        x[ok], y[ok] = shapely.get_x(c), shapely.get_y(c)
    return x, y


def _empty_pieces() -> Pieces:
    i = np.empty(0, dtype=np.int64)
    f = np.empty(0, dtype=float)
    return Pieces(i, i.copy(), f, f.copy(), f.copy())


@dataclass(frozen=True)
class Edges:
    """Non-horizontal ring edges of footprints in pixel coordinates.

    Attributes
    ----------
    building : numpy.ndarray of int64
        Index of the footprint of each edge.
    u0, v0, u1, v1 : numpy.ndarray of float64
        Column and row coordinates of the edge's start and end [px].
    sign : numpy.ndarray of float64
        ±1: orientation of the edge's ring, negative for holes, so that every
        ring adds its area with the right sign whatever its winding.
    """

    building: np.ndarray
    u0: np.ndarray
    v0: np.ndarray
    u1: np.ndarray
    v1: np.ndarray
    sign: np.ndarray

    def __len__(self) -> int:
        return len(self.building)

    def take(self, index) -> "Edges":
        """The edges at ``index`` (an integer array or a boolean mask)."""
        return Edges(self.building[index], self.u0[index], self.v0[index], self.u1[index], self.v1[index],
                     self.sign[index])


def ring_edges(geoms, transform: Affine) -> Edges:
    """Every ring edge of the footprints, in the raster's pixel coordinates.

    Parameters
    ----------
    geoms : array_like of shapely geometries
        Footprints in the raster's CRS: polygons and multipolygons (other
        types, None and empty geometries give no edge, nor does a footprint
        with a non-finite coordinate).
    transform : affine.Affine
        Affine transform of the raster (pixel → CRS coordinates); any affine,
        rotated ones included.

    Returns
    -------
    Edges
        Grouped by footprint, in input order; horizontal edges are left out
        (they contribute nothing).
    """
    geoms = np.asarray(geoms, dtype=object)
    f = np.empty(0, dtype=float)
    empty = Edges(np.empty(0, dtype=np.int64), f, f, f, f, f)
    if len(geoms) == 0:
        return empty
    type_id = shapely.get_type_id(geoms)
    if (type_id == 3).all():  # plain polygons: no need to split parts
        parts, part_of = geoms, np.arange(len(geoms))
    else:
        parts, part_of = shapely.get_parts(geoms, return_index=True)
        polygon = shapely.get_type_id(parts) == 3
        parts, part_of = parts[polygon], part_of[polygon]
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    if len(rings) == 0:
        return empty
    # the first ring of each polygon is its exterior, the others are holes
    exterior = np.r_[True, ring_of[1:] != ring_of[:-1]]
    xy, coord_of = shapely.get_coordinates(rings, return_index=True)
    inv = ~transform
    u = inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c
    v = inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f
    same = coord_of[1:] == coord_of[:-1]  # consecutive vertices of one ring make an edge
    u0, v0, u1, v1 = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
    ring = coord_of[:-1][same]
    building = part_of[ring_of[ring]].astype(np.int64)
    # orientation of each ring in pixel coordinates (shoelace about the ring's first vertex, to keep
    # the products small far from the raster origin); holes count negative
    first = np.flatnonzero(np.r_[True, coord_of[1:] != coord_of[:-1]])
    ref_u, ref_v = np.zeros(len(rings)), np.zeros(len(rings))
    ref_u[coord_of[first]], ref_v[coord_of[first]] = u[first], v[first]
    du0, dv0, du1, dv1 = u0 - ref_u[ring], v0 - ref_v[ring], u1 - ref_u[ring], v1 - ref_v[ring]
    twice_area = np.bincount(ring, weights=du0 * dv1 - du1 * dv0, minlength=len(rings))
    sign = (np.sign(twice_area) * np.where(exterior, 1.0, -1.0))[ring]
    finite = np.isfinite(u0) & np.isfinite(v0) & np.isfinite(u1) & np.isfinite(v1)
    if not finite.all():  # a footprint that did not project is dropped whole, not half
        broken = np.zeros(len(geoms), dtype=bool)
        broken[building[~finite]] = True
        finite = ~broken[building]
    keep = finite & (v0 != v1) & (sign != 0)
    return Edges(building[keep], u0[keep], v0[keep], u1[keep], v1[keep], sign[keep])


def edge_pieces(edges: Edges, row_start: int | None = None, row_stop: int | None = None) -> Pieces:
    """Cut edges at the pixel-row lines, keeping rows ``row_start … row_stop - 1``.

    Parameters
    ----------
    edges : Edges
        From :func:`ring_edges`.
    row_start, row_stop : int, optional
        Rows to keep [px] (default: all rows the edges cross). Pieces outside
        the raster cover no pixel, so limit them to the raster or block.

    Returns
    -------
    Pieces
    """
    if len(edges) == 0:
        return _empty_pieces()
    u0, v0, u1, v1 = edges.u0, edges.v0, edges.u1, edges.v1
    r_lo = np.floor(np.minimum(v0, v1))
    r_hi = np.ceil(np.maximum(v0, v1))  # rows r_lo … r_hi - 1
    if row_start is not None:
        r_lo = np.maximum(r_lo, row_start)
    if row_stop is not None:
        r_hi = np.minimum(r_hi, row_stop)
    counts = np.maximum(r_hi - r_lo, 0).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return _empty_pieces()
    edge = np.repeat(np.arange(len(counts)), counts)
    row = r_lo.astype(np.int64)[edge] + (np.arange(total) - (np.cumsum(counts) - counts)[edge])
    e_u0, e_v0 = u0[edge], v0[edge]
    ya = np.clip(e_v0, row, row + 1)
    yb = np.clip(v1[edge], row, row + 1)
    slope = ((u1 - u0) / (v1 - v0))[edge]  # du/dv
    xa = e_u0 + (ya - e_v0) * slope
    xb = e_u0 + (yb - e_v0) * slope
    dy = (yb - ya) * edges.sign[edge]
    keep = dy != 0
    return Pieces(edges.building[edge][keep], row[keep], xa[keep], xb[keep], dy[keep])


def pixel_pieces(x, y, transform: Affine, shape: tuple[int, int] | None = None, building=None) -> Pieces:
    """Pieces of the pixel under each point (the outline of that one pixel).

    Parameters
    ----------
    x, y : array_like
        Points in the raster's CRS.
    shape : (int, int), optional
        ``(height, width)`` of the raster [px]: points outside it give no piece.
    building : array_like of int, optional
        Building index of each point (default ``0 … len(x) - 1``).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    building = np.arange(len(x), dtype=np.int64) if building is None else np.asarray(building, dtype=np.int64)
    inv = ~transform
    col = np.floor(inv.a * x + inv.b * y + inv.c)
    row = np.floor(inv.d * x + inv.e * y + inv.f)
    ok = np.isfinite(col) & np.isfinite(row)
    if shape is not None:
        ok[ok] = (row[ok] >= 0) & (row[ok] < shape[0]) & (col[ok] >= 0) & (col[ok] < shape[1])
    b, r, c = building[ok], row[ok].astype(np.int64), col[ok]
    # right side +F(c + 1), left side −F(c): their sum is the pixel's value
    return Pieces(np.r_[b, b], np.r_[r, r], np.r_[c + 1, c], np.r_[c + 1, c], np.r_[np.ones(len(b)), -np.ones(len(b))])


class Workspace:
    """Reusable prefix-sum buffers, so successive tiles do not fault in fresh memory."""

    def __init__(self):
        self._bufs: dict[tuple[str, str], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, int], dtype) -> np.ndarray:
        size = shape[0] * shape[1]
        key = (name, np.dtype(dtype).str)
        buf = self._bufs.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self._bufs[key] = buf
        return buf[:size].reshape(shape)


def _prefix(a: np.ndarray, ws: Workspace, name: str, dtype) -> np.ndarray:
    """Row-wise prefix sums with a leading zero column: ``c[r, k]`` = Σ a[r, :k]."""
    h, w = a.shape
    c = ws.get(name, (h, w + 1), dtype)
    c[:, 0] = 0
    np.cumsum(a, axis=1, dtype=dtype, out=c[:, 1:])
    return c


def _column_split(pieces: Pieces, col_off: int, width: int):
    """Cut pieces at the pixel-column lines of a block ``width`` pixels wide.

    Inside one pixel, F (the row integral from the block's left edge) is
    linear in x, so a sub-piece's integral is its signed height times F at its
    middle. The part of a piece left of the block adds nothing (F = 0); the
    part right of it becomes one sub-piece at x = width (F = the row total).

    Returns
    -------
    piece : numpy.ndarray of int64
        Index of the piece of each sub-piece.
    col : numpy.ndarray of int64
        Block column of the sub-piece (``width - 1`` for the part right of the block).
    x_mid : numpy.ndarray of float64
        Middle of the sub-piece, block-local [px]; ``col <= x_mid <= col + 1``.
    dy : numpy.ndarray of float64
        Signed height of the sub-piece [px].
    """
    xa, xb = pieces.xa - col_off, pieces.xb - col_off
    lo, hi = np.minimum(xa, xb), np.maximum(xa, xb)
    length = hi - lo
    vertical = length == 0
    a, b = np.clip(lo, 0, width), np.clip(hi, 0, width)
    k0 = np.floor(a)
    k1 = np.where(vertical, k0 + ((lo >= 0) & (lo < width)), np.ceil(b))  # columns k0 … k1 - 1
    count = np.maximum(k1 - k0, 0).astype(np.int64)
    piece = np.repeat(np.arange(len(xa)), count)
    col = k0.astype(np.int64)[piece] + (np.arange(len(piece)) - np.repeat(np.cumsum(count) - count, count))
    start = np.maximum(a[piece], col)
    stop = np.minimum(b[piece], col + 1)
    x_mid = 0.5 * (start + stop)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(vertical[piece], 1.0, (stop - start) / np.where(vertical, 1.0, length)[piece])
    dy = pieces.dy[piece] * share
    beyond = np.flatnonzero((hi > width) | (vertical & (lo >= width)))  # a vertical piece on the right edge too
    if len(beyond):
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(vertical[beyond], 1.0,
                             (hi[beyond] - np.maximum(lo[beyond], width)) / np.where(vertical, 1.0, length)[beyond])
        piece = np.r_[piece, beyond]
        col = np.r_[col, np.full(len(beyond), width - 1, dtype=np.int64)]
        x_mid = np.r_[x_mid, np.full(len(beyond), float(width))]
        dy = np.r_[dy, pieces.dy[beyond] * share]
    return piece, col, x_mid, dy


@dataclass(frozen=True)
class BlockSums:
    """Sums of one block per building; they add up over blocks.

    Attributes
    ----------
    value_sum : numpy.ndarray
        Σ covered area × value over valid pixels [raster units × px²].
    valid_px : numpy.ndarray
        Covered area of valid pixels [px²].
    above_px : numpy.ndarray
        Covered area of valid pixels above the threshold [px²]; zeros without one.
    area_px : numpy.ndarray
        Covered area inside the block, valid or not [px²].
    """

    value_sum: np.ndarray
    valid_px: np.ndarray
    above_px: np.ndarray
    area_px: np.ndarray


def block_sums(values, pieces: Pieces, n: int, row_off: int = 0, col_off: int = 0,
               threshold: float | None = None, nodata: float | None = None,
               workspace: Workspace | None = None) -> BlockSums:
    """Sums of one block under the footprints whose pieces are given.

    Parameters
    ----------
    values : numpy.ndarray or numpy.ma.MaskedArray, 2-D
        The block [raster units]; masked, nodata and non-finite pixels are invalid.
    pieces : Pieces
        In raster pixel coordinates, with building indices below ``n``; every
        piece of a footprint in the block's rows must be given (a footprint's
        pieces only add up to its area together). Their rows must lie in the
        block; their ends may lie left or right of it (the block's part is
        measured).
    n : int
        Number of footprints (length of the sums).
    row_off, col_off : int
        Position of the block's top-left pixel in the raster [px].
    threshold : float, optional
        Value [raster units] above which a pixel counts in ``above_px``.
    nodata : float, optional
        Value marking invalid pixels (besides the mask).
    workspace : Workspace, optional
        Buffers reused between blocks.

    Returns
    -------
    BlockSums
    """
    values = np.asanyarray(values)
    if values.ndim != 2 or 0 in values.shape:
        raise ZonalError(f"the raster block must be 2-D and not empty (got shape {values.shape})")
    if len(pieces) == 0:
        return BlockSums(*np.zeros((4, n)))
    rows = pieces.row - row_off
    if rows.min() < 0 or rows.max() >= values.shape[0]:
        raise ZonalError("a piece lies in a row outside the raster block; read the rows of every piece")
    ws = workspace or Workspace()
    height, width = values.shape
    data = np.ma.getdata(values)
    valid = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, dtype=bool)
    mask = np.ma.getmask(values)
    if mask is not np.ma.nomask:
        valid &= ~mask
    if nodata is not None and not np.isnan(nodata):
        valid &= data != nodata
    all_valid = bool(valid.all())

    piece, col, x_mid, dy = _column_split(pieces, col_off, width)
    flat = rows[piece] * (width + 1) + col  # index of c[row, col] in the prefix-sum table
    flat_right = flat + 1
    frac = x_mid - col
    # F at the sub-piece's middle interpolates c[row, col] and c[row, col + 1]
    w_left, w_right = dy * (1.0 - frac), dy * frac
    building = pieces.building[piece]

    def integrate(c: np.ndarray) -> np.ndarray:
        cf = c.ravel()
        return np.bincount(building, weights=cf[flat] * w_left + cf[flat_right] * w_right, minlength=n)

    area = np.bincount(building, weights=dy * x_mid, minlength=n)  # F of a block of ones is x
    value_sum = integrate(_prefix(data if all_valid else np.where(valid, data, 0), ws, "value", np.float64))
    valid_px = area if all_valid else integrate(_prefix(valid, ws, "valid", np.int32))
    if threshold is None:
        above_px = np.zeros(n)
    else:
        above_px = integrate(_prefix(valid & (data > threshold), ws, "above", np.int32))
    return BlockSums(value_sum, valid_px, above_px, area)


def finish(sums: BlockSums, threshold: float | None, fallback: np.ndarray | None = None) -> ZonalStats:
    """Per-building statistics from the summed :class:`BlockSums`."""
    v = sums.valid_px
    n = len(v)
    ok = v > AREA_EPS_PX
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, sums.value_sum / np.where(ok, v, 1.0), np.nan)
        if threshold is None:
            frac = np.full(n, np.nan)
        else:
            frac = np.where(ok, np.clip(sums.above_px / np.where(ok, v, 1.0), 0.0, 1.0), np.nan)
    fallback = np.zeros(n, dtype=bool) if fallback is None else fallback
    return ZonalStats(mean, np.where(ok, v, 0.0), frac, fallback)


def zonal_stats(values, transform: Affine, geoms, threshold: float | None = None,
                nodata: float | None = None,
                centroid_xy: tuple[np.ndarray, np.ndarray] | None = None) -> ZonalStats:
    """Area-weighted mean, valid area and share above a threshold under each footprint.

    Parameters
    ----------
    values : numpy.ndarray or numpy.ma.MaskedArray, 2-D
        Raster block [raster units]; masked, nodata and non-finite pixels are
        invalid.
    transform : affine.Affine
        Affine transform of the block (its top-left pixel, pixel → CRS).
    geoms : array_like of shapely geometries
        Footprints in the raster's CRS (polygons, multipolygons).
    threshold : float, optional
        For ``frac_above`` [raster units]: the share of the valid roof area
        whose value is strictly greater.
    nodata : float, optional
        Value marking invalid pixels (besides the mask).
    centroid_xy : (numpy.ndarray, numpy.ndarray), optional
        Points [raster CRS] for the fallback of footprints with no area in the
        block (default: their centroids).

    Returns
    -------
    ZonalStats
        One value per footprint; NaN for a footprint wholly outside the block
        whose centroid is outside it too.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> from affine import Affine
    >>> block = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> stats = zonal_stats(block, Affine(1, 0, 0, 0, -1, 2), [shapely.box(0.5, 0, 2, 1)], threshold=3.5)
    >>> float(stats.mean[0]), float(stats.valid_px[0]), float(stats.frac_above[0])
    (3.6666666666666665, 1.5, 0.6666666666666666)
    """
    values = np.asanyarray(values)
    if values.ndim != 2 or 0 in values.shape:
        raise ZonalError(f"the raster block must be 2-D and not empty (got shape {values.shape})")
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    pieces = edge_pieces(ring_edges(geoms, transform), 0, values.shape[0])
    ws = Workspace()
    sums = block_sums(values, pieces, n, threshold=threshold, nodata=nodata, workspace=ws)
    fallback = sums.area_px <= AREA_EPS_PX
    if fallback.any():
        if centroid_xy is None:
            fx, fy = centroid_xy_of(geoms[fallback])
        else:
            fx, fy = (np.asarray(a, dtype=float)[fallback] for a in centroid_xy)
        extra = pixel_pieces(fx, fy, transform, values.shape, np.flatnonzero(fallback))
        fallback = np.zeros(n, dtype=bool)
        fallback[extra.building] = True
        more = block_sums(values, extra, n, threshold=threshold, nodata=nodata, workspace=ws)
        sums = BlockSums(*(getattr(sums, f) + getattr(more, f) for f in ("value_sum", "valid_px", "above_px",
                                                                           "area_px")))
    return finish(sums, threshold, fallback)
