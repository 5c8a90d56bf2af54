"""Shade of neighbouring buildings on each roof: the horizon they raise, the beam
light it blocks over the hourly year and the diffuse light it hides (sky-view factor).

Pure and vectorised over roofs, sample points and neighbour pairs; no loop over
buildings. The sun positions and irradiance are the yield table's hourly year of
each weather cell (:meth:`pvsurvey.model.yield_table.SpecificYieldTable.hourly_year`),
taken once per cell and array orientation, never per building.

Method
------
1. Heights: each building's ``building_height_m`` (the source's height, else
   storeys × storey height); roofs without one are not traced (unshaded, counted)
   and cast no shade.
2. Neighbour pairs: an STRtree over the buildings (those of the partition and its
   halo; from ``COMPILED_MIN_POINTS`` roofs on, a grid in the compiled kernel
   instead) finds, for each roof, the taller buildings whose envelope lies within
   (height difference) / tan 5° of the roof's — beyond it a neighbour can only
   hide the sun below 5° elevation — and never beyond ``shade.max_distance_m``.
3. Horizon: for a point and each neighbour's sun-facing wall (exterior-ring
   edge), the azimuth bins (``shade.azimuth_step_deg``) the wall spans are cast as
   rays from the point; the distance t along each ray to the wall and the height
   difference Δh give the elevation atan(Δh / t); the horizon of a bin is the
   highest over all walls (``numpy.maximum.at`` into a points × bins array; from
   ``COMPILED_MIN_POINTS`` points on, the same in the compiled loop of
   :mod:`pvsurvey.model.shade_kernel`, one point's bins at a time).
4. Every traced roof is first traced from one point, its centre (its envelope's,
   or a point on it where that is off a concave roof). A screen traces the same
   walls brought nearer by the roof's half-diagonal (no part of the roof is
   nearer to them than that). Where even that loss stays under ``shade.screen_frac`` (by
   default 1: the whole) of ``roof.shade_max_loss_frac``, and no taller neighbour's envelope
   touches the roof's (an attached or overlapping outline may stand on any side of the
   centre, or over it), nothing of the roof is deducted and its centre's loss is the
   roof's. The other roofs get sample points: a grid
   (``shade.sample_spacing_m``, at most ``shade.max_points_per_roof``, inside the
   edge setback), all at roof height; neighbours farther than ``FAR_FACTOR``
   half-diagonals of the roof look alike from each of its points and are traced
   once, from its centre (in the centre pass, which keeps their horizon). Against
   a grid of 64 points on every roof (the method before 2026-12-03): the city's
   summed loss is 1 % lower on a dense synthetic city (a roof's centre sees a
   little less than the mean of its points) and its
   shaded area 9 % lower (16 points resolve thin shaded strips less well). Against
   tracing every such roof from its grid (2026-12-04): the shaded area of six partitions
   of that city 0.7 % lower and their loss 1.4 %; the demo's shaded area 1.4 % lower and
   its loss 4.5 % (its large halls' centres see less than their points).
5. Beam loss: per weather cell and orientation, the plane-of-array beam energy of
   each hour is binned by the sun's azimuth and cumulated over its elevation;
   the energy of the hours with the sun below a point's horizon is what the point
   loses (each hour's sun taken at its bin's horizon).
6. Diffuse loss: the sky-view factor of an isotropic sky on a level surface,
   SVF = 1 − Σ sin²(h_b) / B over the B azimuth bins, times the plane-of-array
   sky diffuse (circumsolar light included; ground-reflected light kept).
7. Loss of a point = (beam lost + diffuse lost) / plane-of-array global, over the
   year. Points losing more than ``roof.shade_max_loss_frac`` are the shaded share
   of the roof, deducted from its area; the others' mean loss reduces its yield.

Not modelled: trees, terrain, roof equipment and parapets, the modules' height
above the roof, electrical mismatch of partly shaded strings, reflections.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pvlib
import shapely
from pyproj import CRS, Transformer

from ..config.schema import SurveyConfig, System
from ..coords import metres_per_degree
from .roof import ring_vertices
from .yield_table import SpecificYieldTable, ghi_level

# Neighbours farther than (height difference) / tan(this) can only hide the sun
# below this elevation; the beam energy below 5° is a few tenths of a per cent of
# the year's in Shanghai (the tests measure it), so they are not searched.
MIN_SUN_ELEVATION_DEG = 5.0
# Elevation grid of the cumulated beam energy [°].
ELEVATION_STEP_DEG = 0.5
# Orientation classes of the sun tables [°]: 5° of tilt or 15° of azimuth move a
# roof's shade loss by far less than the loss's own accuracy.
CLASS_TILT_STEP_DEG = 5.0
CLASS_AZIMUTH_STEP_DEG = 15.0
# Point × wall × bin rows handled at once, and sample points whose horizons are
# held at once (each at most 360 / azimuth step rows): bound the working memory.
ROWS_PER_CHUNK = 1_000_000
POINTS_PER_BATCH = 20_000
# Neighbours farther than this many half-diagonals of a roof's envelope are traced from
# the roof's centre only: across the roof their distance changes by under ±50 %. (4, the
# earlier value, moved a dense synthetic city's shaded area by 3 % and its loss by 0.1 %.)
FAR_FACTOR = 2.0
# Nearest distance taken along a ray [m]: a point on a neighbour's wall.
MIN_DISTANCE_M = 0.1
# Sample points from which the horizons are traced in the compiled kernel (shade_kernel.py)
# rather than with numpy: it is 3-4x faster, but loading it costs each process about 1 s
# (and compiling it, once per machine, several seconds), more than numpy spends on a few
# thousand points. From as many roofs on, their neighbours are found there too (on a grid:
# 0.2 s instead of 0.4-0.7 s with an STRtree for a 50,000-roof partition of a dense city).
COMPILED_MIN_POINTS = 5_000


@functools.lru_cache(maxsize=16)
def _tmerc(lon_0: float) -> Transformer:
    crs = CRS.from_proj4(f"+proj=tmerc +lat_0=0 +lon_0={lon_0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m")
    return Transformer.from_crs(4326, crs, always_xy=True)


def local_metres(lon, lat) -> Transformer:
    """WGS84 → metres in a transverse Mercator whose central meridian is the middle
    of the points' 1° band of longitude: the same frame for every partition of a
    city (results do not depend on the partitioning), scale error under 0.004 % and
    grid north within 0.3° of true north (at 35° N) inside the band."""
    return _tmerc(float(np.floor(np.nanmedian(lon))) + 0.5)


# --- the halo: buildings of other partitions that can shade this one's roofs ------------------

def halo_grid(max_abs_lat_deg: float, reach_m: float) -> tuple[float, float]:
    """Cell size [°lon, °lat] of the grid that decides which partitions are neighbours:
    at least ``reach_m`` on each side everywhere up to ``max_abs_lat_deg``."""
    m_lon, m_lat = metres_per_degree(min(abs(max_abs_lat_deg), 89.0))
    return float(reach_m / m_lon), float(reach_m / 110_574.0)  # the shortest degree of latitude


def envelope_cells(bounds, grid: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells (int64 ids) under envelopes ``bounds`` (N × 4, lon/lat): every cell
    between the ones of their lower-left and upper-right corners (one for most
    buildings, which are far smaller than a cell); returns (owner row, cell id).
    Rows with non-finite bounds get none."""
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    ok = np.flatnonzero(np.isfinite(bounds).all(axis=1))
    b = bounds[ok]
    ix0, iy0 = np.floor(b[:, 0] / grid[0]).astype(np.int64), np.floor(b[:, 1] / grid[1]).astype(np.int64)
    nx = np.floor(b[:, 2] / grid[0]).astype(np.int64) - ix0 + 1
    ny = np.floor(b[:, 3] / grid[1]).astype(np.int64) - iy0 + 1
    counts = nx * ny
    row = np.repeat(np.arange(len(b)), counts)
    q = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ix = ix0[row] + q // ny[row]
    iy = iy0[row] + q % ny[row]
    return ok[row], ix * (1 << 32) + (iy & 0xFFFFFFFF)


def _grow(cells: np.ndarray) -> np.ndarray:
    ix, iy = cells >> 32, cells & 0xFFFFFFFF
    iy = np.where(iy >= 1 << 31, iy - (1 << 32), iy)
    dx, dy = np.meshgrid([-1, 0, 1], [-1, 0, 1])
    return ((ix[:, None] + dx.ravel()) * (1 << 32) + ((iy[:, None] + dy.ravel()) & 0xFFFFFFFF)).ravel()


def halo_cells(bounds, grid: tuple[float, float], grow: bool = False) -> np.ndarray:
    """The distinct grid cells under envelopes ``bounds``; ``grow`` adds the 8 cells
    around each: any building within one cell size (``reach_m``) of these
    envelopes then touches one of them."""
    cells = np.unique(envelope_cells(bounds, grid)[1])  # far fewer cells than buildings: grown once each
    return np.unique(_grow(cells)) if grow else cells


def near_cells(bounds, grid: tuple[float, float], cells: np.ndarray) -> np.ndarray:
    """Which envelopes touch one of ``cells`` (distinct) [bool per row]."""
    owner, own = envelope_cells(bounds, grid)
    return np.bincount(owner, _among(own, cells), minlength=len(np.asarray(bounds).reshape(-1, 4))) > 0


def _among(values: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """``numpy.isin(values, distinct)`` by a hash lookup (numpy.isin sorts both sides, each call)."""
    return pd.Index(distinct).get_indexer(values) >= 0


def halo_strips(envelopes: list, cells: list[np.ndarray], neighbours: list[list[int]]) -> list[dict]:
    """For each partition, the rows of each of its neighbours (:func:`halo_neighbours`)
    whose envelopes touch the cells around its own: the strip its task reads of that
    neighbour (int32 row positions), a superset of the buildings that can shade its roofs.

    ``envelopes``: each partition's :func:`envelope_cells`; ``cells``: its distinct cells."""
    strips = []
    for q, near in enumerate(neighbours):  # partitions, not buildings
        grown = np.unique(_grow(cells[q]))
        strips.append({p: np.unique(envelopes[p][0][_among(envelopes[p][1], grown)]).astype(np.int32) for p in near})
    return strips


def halo_neighbours(cells: list[np.ndarray]) -> list[list[int]]:
    """For each partition (its cells from :func:`halo_cells`), the other partitions
    with a building within reach of one of its buildings."""
    own = pd.DataFrame({"cell": np.concatenate(cells) if cells else np.zeros(0, np.int64),
                        "part": np.repeat(np.arange(len(cells)), [len(c) for c in cells])})
    grown = pd.DataFrame({"cell": _grow(own["cell"].to_numpy()), "near": np.repeat(own["part"].to_numpy(), 9)})
    pairs = grown.merge(own, on="cell").query("near != part")[["near", "part"]].drop_duplicates()
    out = [[] for _ in cells]
    for near, part in zip(pairs["near"], pairs["part"]):  # partitions, not buildings
        out[int(near)].append(int(part))
    return [sorted(x) for x in out]


# A point nearer than this to an outline [m] is tested by GEOS, whose answer on the boundary
# is "outside"; farther, the plain crossing count in floating point gives the same answer.
BOUNDARY_DOUBT_M = 1e-6


class ProjectedVertices:
    """The 2-D vertices of geometries (any CRS), projected once through ``transformer``,
    and what the shade model takes from them: envelopes, walls, whether a point lies on a
    roof, and the geometries themselves only where GEOS must see them (sample points).

    The same figures as the geometries rebuilt from their projected vertices give (the
    same vertices in the same order), without such a copy of every building: on a dense synthetic city
    GEOS building and freeing those copies was a sixth of ``roof_shade``'s time
    (2026-12-04, py-spy).
    """

    def __init__(self, geoms, transformer: Transformer):
        self.geoms = np.asarray(geoms, dtype=object)
        coords, owner = shapely.get_coordinates(self.geoms, return_index=True)
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        self.xy = np.column_stack([x, y])
        self.count = np.bincount(owner, minlength=len(self.geoms))
        self.first = np.cumsum(self.count) - self.count
        # polygons without holes: their vertices are their exterior ring, closing vertex included
        self.simple = (shapely.get_type_id(self.geoms) == 3) & (shapely.get_num_interior_rings(self.geoms) == 0)
        # a vertex off the projection (inf) or NaN: GEOS decides what it means
        self.finite = np.bincount(owner, ~np.isfinite(self.xy).all(axis=1), minlength=len(self.geoms)) == 0

    def positions(self, rows) -> np.ndarray:
        """Positions in ``xy`` of the vertices of geometries ``rows``, geometry after geometry."""
        return ring_vertices(self.count, np.asarray(rows, dtype=np.int64))

    def geometries(self, rows) -> np.ndarray:
        """Geometries ``rows`` rebuilt from their projected vertices [m]."""
        rows = np.asarray(rows, dtype=np.int64)
        return shapely.set_coordinates(self.geoms[rows].copy(), self.xy[self.positions(rows)])

    def bounds(self) -> np.ndarray:
        """``shapely.bounds`` of every geometry in metres (NaN for an empty one) [m], N × 4."""
        out = np.full((len(self.geoms), 4), np.nan)
        has = np.flatnonzero(self.count > 0)
        if len(has):
            start = self.first[has]
            for k, (reduce, axis) in enumerate([(np.minimum, 0), (np.minimum, 1), (np.maximum, 0), (np.maximum, 1)]):
                out[has, k] = reduce.reduceat(self.xy[:, axis], start)
        odd = np.flatnonzero(~self.finite)
        if len(odd):
            out[odd] = shapely.bounds(self.geometries(odd))
        return out

    def walls(self, rows):
        """:func:`walls` of geometries ``rows`` (owner: position in ``rows``)."""
        rows = np.asarray(rows, dtype=np.int64)
        simple = self.simple[rows]
        if simple.all():
            count = self.count[rows]
            return _edges(self.xy[self.positions(rows)], np.repeat(np.arange(len(rows)), count), np.arange(len(rows)),
                          len(rows))
        # multipolygons and polygons with holes through GEOS, each row's edges put back in its place
        per_row = [(np.flatnonzero(simple), self.walls(rows[simple])),
                   (np.flatnonzero(~simple), walls(self.geometries(rows[~simple])))]
        n_edges = np.zeros(len(rows), dtype=np.int64)
        for where, found in per_row:
            n_edges[where] = np.bincount(found[0], minlength=len(where))
        owner = np.repeat(np.arange(len(rows)), n_edges)
        a, b, sign = np.empty((len(owner), 2)), np.empty((len(owner), 2)), np.empty(len(owner))
        for where, (_, fa, fb, fs) in per_row:
            slot = ring_vertices(n_edges, where)
            a[slot], b[slot], sign[slot] = fa, fb, fs
        return owner, a, b, sign

    def contains(self, rows, x, y) -> np.ndarray:
        """``shapely.contains_xy`` of geometries ``rows`` (in metres) and points (``x``, ``y``) [m]:
        a crossing count along the polygons' edges, and GEOS where a point lies within
        ``BOUNDARY_DOUBT_M`` of an edge or the geometry is not a polygon without holes."""
        rows = np.asarray(rows, dtype=np.int64)
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        inside = np.zeros(len(rows), dtype=bool)
        doubt = ~self.simple[rows] | (self.count[rows] < 4) | ~self.finite[rows]
        plain = np.flatnonzero(~doubt)
        if len(plain):
            owner, a, b, _ = self.walls(rows[plain])
            px, py = x[plain][owner], y[plain][owner]
            d = b - a
            with np.errstate(divide="ignore", invalid="ignore"):
                crossing = ((a[:, 1] > py) != (b[:, 1] > py)) & (px < a[:, 0] + (py - a[:, 1]) * d[:, 0] / d[:, 1])
                s = np.clip(((px - a[:, 0]) * d[:, 0] + (py - a[:, 1]) * d[:, 1]) / (d * d).sum(axis=1), 0.0, 1.0)
            s = np.where(np.isfinite(s), s, 0.0)
            near = np.hypot(a[:, 0] + s * d[:, 0] - px, a[:, 1] + s * d[:, 1] - py) <= BOUNDARY_DOUBT_M
            inside[plain] = np.bincount(owner, crossing, minlength=len(plain)) % 2 == 1
            doubt[plain] = np.bincount(owner, near, minlength=len(plain)) > 0
        odd = np.flatnonzero(doubt)
        if len(odd):
            inside[odd] = shapely.contains_xy(self.geometries(rows[odd]), x[odd], y[odd])
        return inside


def sample_points(geoms_m, spacing_m: float, max_points: int, setback_m: float = 0.0):
    """A grid of points on each roof, on its minimum rotated rectangle, kept where
    inside the roof; roofs with no grid point inside get their point on surface.
    ``geoms_m`` are prepared in place (``shapely.prepare``) for the tests.

    Returns
    -------
    owner : numpy.ndarray of int
        Position of each point's roof in ``geoms_m`` (sorted).
    x, y : numpy.ndarray
        Point coordinates [m].
    """
    geoms_m = np.asarray(geoms_m, dtype=object)
    n = len(geoms_m)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    env = shapely.oriented_envelope(geoms_m)
    rect = shapely.get_type_id(env) == 3
    c0 = np.zeros((n, 2))
    e1 = np.zeros((n, 2))
    e2 = np.zeros((n, 2))
    if rect.any():
        ring = shapely.get_coordinates(env[rect]).reshape(-1, 5, 2)  # rectangles: one ring of 5 vertices
        c0[rect], e1[rect], e2[rect] = ring[:, 0], ring[:, 1] - ring[:, 0], ring[:, 3] - ring[:, 0]
    l1, l2 = np.hypot(*e1.T), np.hypot(*e2.T)
    step = np.maximum(spacing_m, np.sqrt(l1 * l2 / max_points))
    n1 = np.clip(np.ceil(np.maximum(l1 - 2 * setback_m, 0.0) / step), 1, max_points).astype(np.int64)
    n2 = np.clip(np.ceil(np.maximum(l2 - 2 * setback_m, 0.0) / step), 1, None).astype(np.int64)
    n2 = np.minimum(n2, np.maximum(1, max_points // n1))
    n1[~rect], n2[~rect] = 0, 0
    counts = n1 * n2
    owner = np.repeat(np.arange(n), counts)
    q = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    i, j = q // n2[owner], q % n2[owner]
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = np.where(l1 > 0, np.minimum(setback_m / l1, 0.5), 0.5)
        m2 = np.where(l2 > 0, np.minimum(setback_m / l2, 0.5), 0.5)
    u = m1[owner] + (i + 0.5) * (1 - 2 * m1[owner]) / n1[owner]
    v = m2[owner] + (j + 0.5) * (1 - 2 * m2[owner]) / n2[owner]
    x = c0[owner, 0] + u * e1[owner, 0] + v * e2[owner, 0]
    y = c0[owner, 1] + u * e1[owner, 1] + v * e2[owner, 1]
    shapely.prepare(geoms_m)  # a roof's points are tested against its prepared outline: half the time
    inside = shapely.contains_xy(geoms_m[owner], x, y) if len(owner) else np.zeros(0, dtype=bool)
    owner, x, y = owner[inside], x[inside], y[inside]
    empty = np.flatnonzero(np.bincount(owner, minlength=n) == 0)  # roofs without a grid point on them
    if len(empty):
        pts = shapely.point_on_surface(geoms_m[empty])
        owner = np.concatenate([owner, empty])
        x = np.concatenate([x, shapely.get_x(pts)])
        y = np.concatenate([y, shapely.get_y(pts)])
        order = np.argsort(owner, kind="stable")
        owner, x, y = owner[order], x[order], y[order]
    return owner, x, y


def walls(geoms_m):
    """Edges of the exterior rings of each building (holes never face a point outside).

    Returns
    -------
    owner : numpy.ndarray of int
        Building of each edge (sorted).
    a, b : numpy.ndarray, shape (E, 2)
        Edge end points [m].
    sign : numpy.ndarray
        +1 where the ring runs anticlockwise, −1 clockwise.
    """
    geoms_m = np.asarray(geoms_m, dtype=object)
    if (shapely.get_type_id(geoms_m) == 3).all():  # polygons only: get_parts copies every geometry
        parts, part_owner = geoms_m, np.arange(len(geoms_m))
    else:
        parts, part_owner = shapely.get_parts(geoms_m, return_index=True)
    # a polygon without holes gives its exterior ring's coordinates (get_exterior_ring copies each)
    holes = shapely.get_num_interior_rings(parts) > 0
    rings = parts.copy()
    rings[holes] = shapely.get_exterior_ring(parts[holes])
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    return _edges(coords, ring_of, part_owner, len(rings))


def _edges(coords, ring_of, ring_owner, n_rings: int):
    """:func:`walls` from closed rings' vertices ``coords`` (ring ``ring_of`` each, rings
    in order) and each ring's geometry ``ring_owner``."""
    same = ring_of[:-1] == ring_of[1:]
    a, b = coords[:-1][same], coords[1:][same]
    ring = ring_of[:-1][same]
    cross = a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1]  # shoelace terms, per edge
    twice_area = np.bincount(ring, cross, minlength=n_rings)
    return ring_owner[ring], a, b, np.sign(twice_area)[ring]


def neighbour_pairs(target_m, target_h, caster_m, caster_h, max_distance_m: float, same=None, boxes=None,
                    far_gap=None):
    """Roof–neighbour pairs where the neighbour is taller and near enough to hide
    the sun above ``MIN_SUN_ELEVATION_DEG``.

    Parameters
    ----------
    target_m, caster_m : arrays of geometries [m]
        Only their envelopes are used: None where ``boxes`` gives them.
    target_h, caster_h : arrays of float
        Heights [m]; NaN never pairs.
    same : array of int, optional
        For each target, its own position among the casters (never its own neighbour), else −1.
    boxes : (target bounds, caster bounds), optional
        ``shapely.bounds`` of both, when the caller has them.
    far_gap : array of float, optional
        Per target, the distance of the envelopes [m] beyond which a caster is far.

    Returns
    -------
    (target index, caster index, height difference [m], distance of their envelopes [m], far) arrays
        By target, each target's far casters first (none without ``far_gap``), and
        each part in caster order.
    """
    target_h, caster_h = np.asarray(target_h, float), np.asarray(caster_h, float)
    far_gap = np.full(len(target_h), np.inf) if far_gap is None else np.asarray(far_gap, float)
    ok_t, ok_c = np.flatnonzero(np.isfinite(target_h)), np.flatnonzero(np.isfinite(caster_h))
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0, bool))
    if len(ok_t) == 0 or len(ok_c) == 0:
        return empty
    tan_min = np.tan(np.radians(MIN_SUN_ELEVATION_DEG))
    lowest = np.nanmin(target_h[ok_t])
    reach = np.minimum(max_distance_m, (caster_h[ok_c] - lowest) / tan_min)
    tall = reach > 0  # a caster no taller than every roof shades none
    ok_c, reach = ok_c[tall], reach[tall]
    if len(ok_c) == 0:
        return empty
    # each caster's envelope grown by its reach, against the roofs' envelopes; then the exact distance
    target_box, caster_box = boxes if boxes is not None else (shapely.bounds(np.asarray(target_m, dtype=object)),
                                                              shapely.bounds(np.asarray(caster_m, dtype=object)))
    if len(ok_t) >= COMPILED_MIN_POINTS:
        found = _pairs_compiled(target_box, target_h, caster_box, caster_h, ok_t, ok_c, reach, same, tan_min,
                                max_distance_m, far_gap)
        if found is not None:
            return found
    box = caster_box[ok_c]
    grown = shapely.box(box[:, 0] - reach, box[:, 1] - reach, box[:, 2] + reach, box[:, 3] + reach)
    tree = shapely.STRtree(shapely.box(*target_box[ok_t].T))  # the roofs' envelopes: all a query without predicate sees
    c, t = tree.query(grown)
    by_roof = np.argsort(t, kind="stable")  # the compiled grid's order: by roof, each roof's casters in order
    t, c = ok_t[t[by_roof]], ok_c[c[by_roof]]
    dh = caster_h[c] - target_h[t]
    keep = dh > 0
    if same is not None:
        keep &= c != np.asarray(same)[t]
    t, c, dh = t[keep], c[keep], dh[keep]
    # the envelopes' distance (never more than the outlines'; theirs, by shapely.distance, cost more than it saves)
    tb, cb = target_box[t], caster_box[c]
    gap = np.hypot(np.maximum(0.0, np.maximum(cb[:, 0] - tb[:, 2], tb[:, 0] - cb[:, 2])),
                   np.maximum(0.0, np.maximum(cb[:, 1] - tb[:, 3], tb[:, 1] - cb[:, 3])))
    near = gap <= np.minimum(dh / tan_min, max_distance_m)
    t, c, dh, gap = t[near], c[near], dh[near], gap[near]
    far = gap > far_gap[t]
    order = _far_first(t, far, len(target_h))
    return t[order], c[order], dh[order], gap[order], far[order]


def _pairs_compiled(target_box, target_h, caster_box, caster_h, ok_t, ok_c, reach, same, tan_min: float,
                    max_distance_m: float, far_gap):
    """:func:`neighbour_pairs`' pairs from ``ok_t`` roofs and ``ok_c`` casters in the compiled
    kernel (:func:`pvsurvey.model.shade_kernel.near_pairs`: a grid of cells a third of the
    longest reach wide); the same pairs, found without building boxes or a tree. None
    where the grid would be too large (buildings spread over a country)."""
    from .shade_kernel import near_pairs

    tb, cb = target_box[ok_t], caster_box[ok_c]
    lo = np.minimum(tb[:, :2].min(axis=0), (cb[:, :2] - reach[:, None]).min(axis=0))
    hi = np.maximum(tb[:, 2:].max(axis=0), (cb[:, 2:] + reach[:, None]).max(axis=0))
    cell_m = max(50.0, float(reach.max()) / 3.0)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    nx, ny = (np.floor((hi - lo) / cell_m).astype(np.int64) + 1).tolist()
    if nx * ny > 4_000_000:
        return None
    mine = np.full(len(caster_h), -1, dtype=np.int64)
    mine[ok_c] = np.arange(len(ok_c))
    own = np.full(len(ok_t), -1, dtype=np.int64) if same is None else np.asarray(same, np.int64)[ok_t]
    own = np.where(own >= 0, mine[np.maximum(own, 0)], -1)
    t, c, dh, gap, far = near_pairs(np.ascontiguousarray(tb), np.ascontiguousarray(target_h[ok_t]),
                                    np.ascontiguousarray(cb), np.ascontiguousarray(caster_h[ok_c]),
                                    np.ascontiguousarray(reach, float), own, float(tan_min), float(max_distance_m),
                                    cell_m, float(lo[0]), float(lo[1]), nx, ny, np.ascontiguousarray(far_gap[ok_t]))
    return ok_t[t], ok_c[c], dh, gap, far


def _ray_rows(px, py, ax, ay, bx, by, step_deg: float):
    """Azimuth bins each wall spans as seen from its point; returns (row, bin, distance)."""
    n_bins = int(round(360.0 / step_deg))
    alpha_a = np.degrees(np.arctan2(ax - px, ay - py)) % 360.0
    alpha_b = np.degrees(np.arctan2(bx - px, by - py)) % 360.0
    delta = (alpha_b - alpha_a + 180.0) % 360.0 - 180.0
    start = np.where(delta >= 0, alpha_a, alpha_b)
    width = np.abs(delta)
    first = np.ceil(start / step_deg - 0.5).astype(np.int64)
    last = np.floor((start + width) / step_deg - 0.5).astype(np.int64)
    count = last - first + 1
    narrow = count <= 0  # a wall between two bin centres: its middle's bin, at its nearest distance
    first = np.where(narrow, np.floor((start + width / 2) / step_deg).astype(np.int64), first)
    count = np.where(narrow, 1, count)
    row = np.repeat(np.arange(len(px)), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    bins = (first[row] + offset) % n_bins
    centre = np.radians((np.arange(n_bins) + 0.5) * step_deg)
    ux, uy = np.sin(centre)[bins], np.cos(centre)[bins]
    dx, dy = (bx - ax)[row], (by - ay)[row]
    wx, wy = (ax - px)[row], (ay - py)[row]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (wx * dy - wy * dx) / (ux * dy - uy * dx)
    # nearest distance from the point to the wall, for narrow walls and grazing rays
    odd = np.flatnonzero(narrow[row] | ~np.isfinite(t) | (t <= 0))
    if len(odd):
        ox, oy, qx, qy = dx[odd], dy[odd], wx[odd], wy[odd]
        seg2 = ox * ox + oy * oy
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.clip(np.where(seg2 > 0, -(qx * ox + qy * oy) / seg2, 0.0), 0.0, 1.0)
        t[odd] = np.hypot(qx + s * ox, qy + s * oy)
    return row, bins, np.maximum(t, MIN_DISTANCE_M)


def horizons(owner, px, py, pairs, wall_owner, wall_a, wall_b, wall_sign, step_deg: float, margin_m=None):
    """Horizon each point sees per azimuth bin, as the tangent of its elevation.

    Parameters
    ----------
    owner, px, py : arrays
        Sample points: their roof (target index, sorted) and position [m].
    pairs : (target, caster, height difference) from :func:`neighbour_pairs`.
    wall_owner, wall_a, wall_b, wall_sign : from :func:`walls` of the casters.

    margin_m : array, optional
        Per point: also return the horizon of the walls brought this much nearer
        (a screen for the points within that distance of this one).

    Returns
    -------
    numpy.ndarray, shape (points, bins)
        tan(elevation) of the highest neighbour in each bin (0: none), the largest
        over walls taken with ``numpy.maximum.at`` (no sort); with ``margin_m``, a
        pair of them (as seen, and brought nearer).
    """
    n_bins = int(round(360.0 / step_deg))
    slope = np.zeros(len(px) * n_bins)
    near = None if margin_m is None else np.zeros(len(px) * n_bins)
    t, c, dh = pairs
    p_start = np.searchsorted(owner, t)
    p_count = np.searchsorted(owner, t, side="right") - p_start
    w_start = np.searchsorted(wall_owner, c)
    w_count = np.searchsorted(wall_owner, c, side="right") - w_start
    per_pair = p_count * w_count
    total = np.cumsum(per_pair)
    lo = 0
    while lo < len(t):  # chunks of pairs (a pair never split), to bound the rows in memory
        done = total[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(total, done + ROWS_PER_CHUNK, side="right")), lo + 1)
        counts = per_pair[lo:hi]
        pair = np.repeat(np.arange(lo, hi), counts)
        lo = hi
        if len(pair) == 0:
            continue
        q = np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts)
        pt = p_start[pair] + q // w_count[pair]
        wl = w_start[pair] + q % w_count[pair]
        ax, ay, bx, by = wall_a[wl, 0], wall_a[wl, 1], wall_b[wl, 0], wall_b[wl, 1]
        # walls facing the point: it lies outside the edge (right of an anticlockwise ring)
        cross = (bx - ax) * (py[pt] - ay) - (by - ay) * (px[pt] - ax)
        facing = wall_sign[wl] * cross < 0
        pt, pair = pt[facing], pair[facing]
        ax, ay, bx, by = ax[facing], ay[facing], bx[facing], by[facing]
        row, bins, dist = _ray_rows(px[pt], py[pt], ax, ay, bx, by, step_deg)
        key, rise = pt[row] * n_bins + bins, dh[pair[row]]
        np.maximum.at(slope, key, rise / dist)
        if near is not None:
            np.maximum.at(near, key, rise / np.maximum(dist - margin_m[pt[row]], MIN_DISTANCE_M))
    if near is not None:
        return slope.reshape(len(px), n_bins), near.reshape(len(px), n_bins)
    return slope.reshape(len(px), n_bins)


def sun_tables(weather: pd.DataFrame, solar_position: pd.DataFrame, surface_tilt_deg, surface_azimuth_deg,
               system: System, step_deg: float):
    """The year's plane-of-array energy of K orientations, for the shade losses.

    Parameters
    ----------
    weather, solar_position : DataFrame
        An hourly year (``ghi``, ``dni``, ``dhi`` [W/m²]) and its solar position.
    surface_tilt_deg, surface_azimuth_deg : array-like, shape (K,)
        Module orientations [°].

    Returns
    -------
    beam_below : numpy.ndarray, shape (K, B, L)
        Beam energy [Wh/m²] of the hours whose sun is in azimuth bin b and below
        l × ``ELEVATION_STEP_DEG`` elevation.
    sky_diffuse, total : numpy.ndarray, shape (K,)
        Annual plane-of-array sky diffuse and global energy [Wh/m²].
    """
    n_bins = int(round(360.0 / step_deg))
    n_levels = int(round(90.0 / ELEVATION_STEP_DEG)) + 2
    zenith = solar_position["apparent_zenith"].to_numpy()
    sun_azimuth = solar_position["azimuth"].to_numpy()
    up = (90.0 - zenith) > 0
    tilt = np.atleast_1d(np.asarray(surface_tilt_deg, dtype=float))[None, :]
    az = np.atleast_1d(np.asarray(surface_azimuth_deg, dtype=float))[None, :]
    z, sa = zenith[up, None], sun_azimuth[up, None]
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, az, z, sa, weather["dni"].to_numpy()[up, None], weather["ghi"].to_numpy()[up, None],
        weather["dhi"].to_numpy()[up, None],
        dni_extra=pvlib.irradiance.get_extra_radiation(weather.index[up]).to_numpy()[:, None],
        airmass=pvlib.atmosphere.get_relative_airmass(zenith[up])[:, None], albedo=system.albedo,
        model=system.transposition_model)
    beam = np.nan_to_num(np.asarray(poa["poa_direct"], dtype=float))
    sky = np.nan_to_num(np.asarray(poa["poa_sky_diffuse"], dtype=float)).sum(axis=0)
    total = np.nan_to_num(np.asarray(poa["poa_global"], dtype=float)).sum(axis=0)
    elevation = 90.0 - zenith[up]
    bins = (np.floor(sun_azimuth[up] / step_deg).astype(np.int64)) % n_bins
    level = np.minimum(np.floor(elevation / ELEVATION_STEP_DEG).astype(np.int64) + 1, n_levels - 1)
    k = beam.shape[1]
    table = np.zeros((k, n_bins, n_levels))
    for i in range(k):  # orientations, a handful per cell
        np.add.at(table[i], (bins, level), beam[:, i])
    return np.cumsum(table, axis=2), sky, total


def point_losses(slope, point_class, tables):
    """Annual insolation loss [0..1] of each point from its horizon.

    ``slope`` (points × bins) is the tangent of each bin's horizon elevation
    (:func:`horizons`); ``point_class`` gives each point's orientation class;
    ``tables`` the :func:`sun_tables` of the classes (beam_below (C, B, L), sky (C,), total (C,)).
    """
    beam_below, sky, total = tables
    n_points = len(point_class)
    n_bins, n_levels = beam_below.shape[1:]
    flat_slope = slope.reshape(-1)
    at = np.flatnonzero(flat_slope)  # only the bins with a neighbour above the horizon
    s = flat_slope[at]
    point = at // n_bins
    kf = np.minimum(np.arctan(s) * (180.0 / np.pi / ELEVATION_STEP_DEG), n_levels - 1.0)
    k0 = np.minimum(kf.astype(np.int64), n_levels - 2)
    f = kf - k0
    flat = beam_below.reshape(-1)
    # table row of (class, bin): class × bins + bin, where at = point × bins + bin
    at = (point_class[point] * n_bins + (at - point * n_bins)) * n_levels + k0
    blocked = flat[at] + (flat[at + 1] - flat[at]) * f
    beam_lost = np.bincount(point, blocked, minlength=n_points)
    s *= s  # sin² of the elevation from its tangent: s² / (1 + s²)
    hidden_sky = np.bincount(point, s / (1.0 + s), minlength=n_points) / n_bins
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = (beam_lost + hidden_sky * sky[point_class]) / total[point_class]
    return np.clip(np.nan_to_num(loss), 0.0, 1.0)


def roof_shade(geoms_wgs84, lon, lat, height_m, ghi_kwh_per_m2_yr, surface_tilt_deg, surface_azimuth_deg,
               yield_table: SpecificYieldTable, config: SurveyConfig, casters=None) -> dict[str, np.ndarray]:
    """Shade of neighbouring buildings on each roof.

    Parameters
    ----------
    geoms_wgs84 : array of geometries
        The roofs (WGS84).
    lon, lat, height_m, ghi_kwh_per_m2_yr : arrays
        Centroid [°], building height [m] (NaN: unknown, not traced), GHI [kWh/m²/yr].
    surface_tilt_deg, surface_azimuth_deg : arrays
        Orientation of each roof's modules [°] (the plane-of-array of the losses).
    yield_table : SpecificYieldTable
        Its hourly year of each weather cell gives the sun positions and irradiance.
    config : SurveyConfig
        ``shade.*`` and ``roof.shade_max_loss_frac``, ``roof.setback_m``.
    casters : (geometries WGS84, heights) , optional
        Buildings of the halo: they shade the roofs but are not roofs here.

    Returns
    -------
    dict of numpy.ndarray
        ``shaded_frac`` (share of the roof losing more than the threshold),
        ``kept_loss_frac`` (mean loss of the rest), ``mean_loss_frac`` (mean loss of
        the whole roof), ``traced`` (the roof had a taller neighbour within reach),
        ``gridded`` (traced from its grid of points; the other traced roofs from their
        centre).
    """
    sh = config.shade
    n = len(lon)
    out = {"shaded_frac": np.zeros(n), "kept_loss_frac": np.zeros(n), "mean_loss_frac": np.zeros(n),
           "traced": np.zeros(n, dtype=bool), "gridded": np.zeros(n, dtype=bool)}
    height = np.asarray(height_m, dtype=float)
    if n == 0 or not np.isfinite(height).any():
        return out
    geoms = np.asarray(geoms_wgs84, dtype=object)
    caster_geoms, caster_h, same = geoms, height, np.arange(n)
    if casters is not None and len(casters[0]):
        caster_geoms = np.concatenate([geoms, np.asarray(casters[0], dtype=object)])
        caster_h = np.concatenate([height, np.asarray(casters[1], dtype=float)])
    vertices = ProjectedVertices(caster_geoms, local_metres(lon, lat))  # the roofs first, then the halo
    caster_box = vertices.bounds()
    # far neighbours (beyond FAR_FACTOR half-diagonals of the roof) look alike from every point of it: the
    # points traced finely below share their horizon, traced from the roof's centre. Pairs by roof, its far
    # neighbours first (the centre pass keeps their horizon for the fine one)
    box = caster_box[:n]
    half_diagonal = 0.5 * np.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    pairs = neighbour_pairs(None, height, None, caster_h, sh.max_distance_m, same, (box, caster_box),
                            FAR_FACTOR * half_diagonal)
    traced = np.flatnonzero(np.bincount(pairs[0], minlength=n))  # np.unique, without its hashing or sort
    if len(traced) == 0:
        return out
    out["traced"][traced] = True
    m = len(traced)
    local = np.full(n, -1)
    local[traced] = np.arange(m)
    t = local[pairs[0]]
    roof_class, tables = _sun_tables_of(traced, lat, lon, ghi_kwh_per_m2_yr, surface_tilt_deg, surface_azimuth_deg,
                                        yield_table, config)
    used = np.flatnonzero(np.bincount(pairs[1], minlength=len(caster_geoms)))
    wall_owner, wall_a, wall_b, wall_sign = vertices.walls(used)
    wall_owner = used[wall_owner]
    tb = caster_box[traced]
    half_diagonal = half_diagonal[traced]
    c, dh, far = pairs[1], pairs[2], pairs[4]

    # every roof's loss seen from its centre; and a screen: the same walls brought nearer by the
    # roof's half-diagonal (no part of the roof is nearer to them). Roofs whose screened loss stays
    # under the threshold have no part over it (nothing deducted) and their centre's loss varies
    # little across them: it is the roof's. The others are traced from a grid of points. A screen,
    # not a strict bound: seen from a point off the centre, a near wall also spans a few more bins.
    cx, cy = 0.5 * (tb[:, 0] + tb[:, 2]), 0.5 * (tb[:, 1] + tb[:, 3])  # the envelope's centre
    outside = ~vertices.contains(traced, cx, cy)
    if outside.any():  # a concave roof whose envelope's centre is off it: a point on it
        on = shapely.point_on_surface(vertices.geometries(traced[outside]))
        cx[outside], cy[outside] = shapely.get_x(on), shapely.get_y(on)
    walls_ = (wall_owner, wall_a, wall_b, wall_sign)
    far_end = np.searchsorted(t, np.arange(m)) + np.bincount(t, far, minlength=m).astype(np.int64)
    loss_of_roof, screen, far_horizon = _losses(np.arange(m), cx, cy, (t, c, dh), None, walls_, roof_class, tables,
                                                sh.azimuth_step_deg, half_diagonal, far_end)
    # a neighbour whose envelope touches or overlaps the roof's may stand on any side of its centre,
    # even over it (attached or overlapping outlines): the screen says nothing of it; on the demo
    # these roofs held the 10 % of the shaded area that half the threshold let through (2026-12-04)
    touching = np.bincount(t, pairs[3] <= 0.0, minlength=m) > 0
    fine = (screen > sh.screen_frac * config.roof.shade_max_loss_frac) | touching
    shaded_of_roof, kept_of_roof = np.zeros(m), loss_of_roof.copy()

    dense = np.flatnonzero(fine)
    out["gridded"][traced[dense]] = True
    if len(dense):
        # sample points of the roofs traced finely
        owner, px, py = sample_points(vertices.geometries(traced[dense]), sh.sample_spacing_m, sh.max_points_per_roof,
                                      config.roof.setback_m)
        owner = dense[owner]
        in_dense = fine[t]
        td, cd, dhd, fd = t[in_dense], c[in_dense], dh[in_dense], far[in_dense]
        loss = _losses(owner, px, py, (td[~fd], cd[~fd], dhd[~fd]), (cx, cy, (td[fd], cd[fd], dhd[fd]), far_horizon),
                       walls_, roof_class, tables, sh.azimuth_step_deg)
        # per roof: the heavily shaded share, and the mean loss of the rest
        points = np.bincount(owner, minlength=m).astype(float)[dense]
        shaded = loss > config.roof.shade_max_loss_frac
        n_shaded = np.bincount(owner, shaded.astype(float), minlength=m)[dense]
        kept_sum = np.bincount(owner, np.where(shaded, 0.0, loss), minlength=m)[dense]
        shaded_of_roof[dense] = n_shaded / points
        kept_of_roof[dense] = np.where(points > n_shaded, kept_sum / np.maximum(points - n_shaded, 1.0), 0.0)
        loss_of_roof[dense] = np.bincount(owner, loss, minlength=m)[dense] / points
    out["shaded_frac"][traced] = shaded_of_roof
    out["kept_loss_frac"][traced] = kept_of_roof
    out["mean_loss_frac"][traced] = loss_of_roof
    return out


def _far_first(group, far, n_groups: int) -> np.ndarray:
    """The order that puts, within each run of equal ``group`` (sorted), the ``far`` rows
    first, each part in its order: ``numpy.lexsort((~far, group))`` without a sort."""
    n_all = np.bincount(group, minlength=n_groups)
    n_far = np.bincount(group, far, minlength=n_groups).astype(np.int64)
    start = (np.cumsum(n_all) - n_all)[group]
    far_before = np.cumsum(far) - far  # far rows before each row
    rank_far = far_before - far_before[start]  # among its group's far rows
    rank = np.where(far, rank_far, n_far[group] + (np.arange(len(group)) - start - rank_far))
    order = np.empty(len(group), dtype=np.int64)
    order[start + rank] = np.arange(len(group))
    return order


def _losses(owner, px, py, near_pairs, far, walls_, roof_class, tables, step_deg: float, margin_m=None, far_end=None):
    """Loss of each point (roof ``owner``, sorted): its horizon from ``near_pairs``,
    and from ``far`` = (roof centres x, y, pairs, their horizons or None) traced once
    per roof and shared by its points. With ``margin_m`` (per point), also the loss
    with every wall brought that much nearer (:func:`horizons`).

    ``far_end`` (the centre pass, one point per roof at its centre): each roof's
    pairs before it are its far neighbours, whose horizon is returned as well (None
    where it is not kept).

    From ``COMPILED_MIN_POINTS`` points on, in the compiled kernel
    (:func:`_losses_compiled`), else with numpy, roofs batch by batch (bounded memory)."""
    if len(owner) >= COMPILED_MIN_POINTS:
        return _losses_compiled(owner, px, py, near_pairs, far, walls_, roof_class, tables, step_deg, margin_m,
                                far_end)
    loss = np.zeros(len(owner))
    screen = None if margin_m is None else np.zeros(len(owner))
    roofs = np.unique(owner)
    first = np.searchsorted(owner, roofs)
    first = np.append(first, len(owner))
    i = 0
    while i < len(roofs):
        j = max(int(np.searchsorted(first, first[i] + POINTS_PER_BATCH, side="right")) - 1, i + 1)
        p0, p1 = first[i], first[j]
        r0, r1 = roofs[i], roofs[j - 1] + 1
        q0, q1 = np.searchsorted(near_pairs[0], [r0, r1])
        slope = horizons(owner[p0:p1], px[p0:p1], py[p0:p1], tuple(a[q0:q1] for a in near_pairs), *walls_, step_deg,
                         None if margin_m is None else margin_m[p0:p1])
        if margin_m is not None:
            slope, nearer = slope
            screen[p0:p1] = point_losses(nearer, roof_class[owner[p0:p1]], tables)
        if far is not None:
            cx, cy, far_pairs = far[:3]
            q0, q1 = np.searchsorted(far_pairs[0], [r0, r1])
            if q1 > q0:  # the far horizon of each roof, given to each of its points
                batch = roofs[i:j]
                far_slope = horizons(batch, cx[batch], cy[batch], tuple(a[q0:q1] for a in far_pairs), *walls_,
                                     step_deg)
                np.maximum(slope, far_slope[np.searchsorted(batch, owner[p0:p1])], out=slope)
        loss[p0:p1] = point_losses(slope, roof_class[owner[p0:p1]], tables)
        i = j
    if far_end is not None:
        return loss, screen, None
    return loss if margin_m is None else (loss, screen)


def _losses_compiled(owner, px, py, near_pairs, far, walls_, roof_class, tables, step_deg: float, margin_m=None,
                     far_end=None):
    """:func:`_losses` in the compiled kernel (:func:`pvsurvey.model.shade_kernel.trace_losses`):
    the same horizons and losses, with no points × walls × bins arrays."""
    from .shade_kernel import lit_between, trace_losses

    wall_owner, wall_a, wall_b, wall_sign = walls_
    n_roofs = len(roof_class)
    n_bins = int(round(360.0 / step_deg))
    roofs = np.arange(n_roofs + 1)
    point_first = np.searchsorted(owner, roofs)
    near_first = np.searchsorted(near_pairs[0], roofs)
    no_horizons = np.zeros((0, n_bins))
    far_horizon = None
    if far is None:
        cx = cy = np.zeros(n_roofs)
        far_pairs = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    else:
        cx, cy, far_pairs, far_horizon = far
    far_first = np.searchsorted(far_pairs[0], roofs)
    keep_far = no_horizons if far_end is None else np.zeros((n_roofs, n_bins))
    # every caster a pair names gets its range of walls (empty for one without any): the kernel
    # indexes wall_first by caster without bounds checks
    n_casters = 1 + max(int(np.max(a, initial=-1)) for a in (wall_owner, near_pairs[1], far_pairs[1]))
    wall_first = np.searchsorted(wall_owner, np.arange(n_casters + 1))
    beam_below, sky, total = tables
    loss, screen = trace_losses(
        point_first, np.ascontiguousarray(px, float), np.ascontiguousarray(py, float),
        np.ascontiguousarray(roof_class[owner], np.int64),
        np.zeros(0) if margin_m is None else np.asarray(margin_m, float),
        near_first, near_first[:-1] if far_end is None else np.asarray(far_end, np.int64),
        np.asarray(near_pairs[1], np.int64), np.asarray(near_pairs[2], float),
        far_first, np.asarray(far_pairs[1], np.int64), np.asarray(far_pairs[2], float),
        np.asarray(cx, float), np.asarray(cy, float), no_horizons if far_horizon is None else far_horizon, keep_far,
        wall_first, np.ascontiguousarray(wall_a[:, 0]), np.ascontiguousarray(wall_a[:, 1]),
        np.ascontiguousarray(wall_b[:, 0]), np.ascontiguousarray(wall_b[:, 1]), np.asarray(wall_sign, float),
        float(step_deg), MIN_DISTANCE_M, np.ascontiguousarray(beam_below, float), ELEVATION_STEP_DEG,
        lit_between(beam_below, ELEVATION_STEP_DEG), np.asarray(sky, float), np.asarray(total, float))
    if far_end is not None:
        return loss, screen, keep_far
    return loss if margin_m is None else (loss, screen)


def compile_kernel(parts=("pairs", "losses")) -> None:
    """Compile the compiled kernel's functions, or load them from numba's cache on
    disk, before a partition needs them: on a scene of two buildings, through the
    same wrappers as a real call (so with its argument types: numba compiles one
    version per set of types). A worker that will trace shade does it ahead, in a
    background thread (:mod:`pvsurvey.pipeline.kernel_warmup`).

    Parameters
    ----------
    parts : iterable of {"pairs", "losses"}
        :func:`pvsurvey.model.shade_kernel.near_pairs` (the taller neighbours) and
        :func:`pvsurvey.model.shade_kernel.trace_losses` (the horizons and losses), in
        this order.
    """
    box = np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0]])
    height = np.array([5.0, 20.0])
    both = np.arange(2)
    for part in parts:
        if part == "pairs":
            _pairs_compiled(box, height, box, height, both, both, np.full(2, 50.0), both, 0.1, 100.0, np.full(2, 15.0))
        elif part == "losses":
            n_bins = 120
            roof, hall = shapely.box(*box[0]), shapely.box(*box[1])
            walls_ = walls(np.array([roof, hall], dtype=object))
            one = np.zeros(1, dtype=np.int64)
            tables = (np.zeros((1, n_bins, int(90 / ELEVATION_STEP_DEG) + 1)), np.ones(1), np.ones(1))
            _losses_compiled(one, np.array([5.0]), np.array([5.0]), (one, one + 1, np.array([15.0])), None, walls_,
                             one, tables, 360.0 / n_bins, np.array([7.0]), one)
        else:
            raise ValueError(f"unknown part of the kernel: {part!r}")


def _sun_tables_of(traced, lat, lon, ghi_kwh_per_m2_yr, surface_tilt_deg, surface_azimuth_deg,
                   yield_table: SpecificYieldTable, config: SurveyConfig):
    """Each traced roof's class (weather cell × orientation class) and the classes' :func:`sun_tables`.

    Each weather cell's year is taken at the median irradiance level of its roofs
    (a loss is a ratio: the level barely moves it), orientations to 5° of tilt and
    15° of azimuth; the tables are kept on the yield table (its worker computes each once)."""
    sh = config.shade
    row, col = yield_table.cells(np.asarray(lat)[traced], np.asarray(lon)[traced])
    keys = pd.DataFrame({
        "row": row, "col": col,
        "tilt": np.round(np.asarray(surface_tilt_deg, float)[traced] / CLASS_TILT_STEP_DEG) * CLASS_TILT_STEP_DEG,
        "az": np.mod(np.round(np.asarray(surface_azimuth_deg, float)[traced] / CLASS_AZIMUTH_STEP_DEG)
                     * CLASS_AZIMUTH_STEP_DEG, 360.0)})
    classes = keys.drop_duplicates().reset_index(drop=True)
    roof_class = pd.MultiIndex.from_frame(classes).get_indexer(pd.MultiIndex.from_frame(keys))
    level = ghi_level(np.asarray(ghi_kwh_per_m2_yr, float)[traced])
    beam_below, sky, total = [None] * len(classes), np.zeros(len(classes)), np.zeros(len(classes))
    kept = yield_table.__dict__.setdefault("_shade_sun_tables", {})
    yield_table.prepare_cells(zip(classes["row"].tolist(), classes["col"].tolist()))  # sun positions in one go
    for (r, cl), members in classes.groupby(["row", "col"], sort=False).groups.items():  # weather cells
        in_cell = np.isin(roof_class, members)
        cell_level = float(ghi_level(np.median(level[in_cell])))
        key = (int(r), int(cl), cell_level, sh.azimuth_step_deg, config.system.albedo, config.system.transposition_model)
        missing = [m for m in members if key + (classes.loc[m, "tilt"], classes.loc[m, "az"]) not in kept]
        if missing:
            year, solpos = yield_table.hourly_year(r, cl, cell_level)
            b, d, g = sun_tables(year, solpos, classes.loc[missing, "tilt"], classes.loc[missing, "az"], config.system,
                                 sh.azimuth_step_deg)
            for i, m in enumerate(missing):
                kept[key + (classes.loc[m, "tilt"], classes.loc[m, "az"])] = (b[i], d[i], g[i])
        for m in members:
            beam_below[m], sky[m], total[m] = kept[key + (classes.loc[m, "tilt"], classes.loc[m, "az"])]
    return roof_class, (np.stack(beam_below), sky, total)
