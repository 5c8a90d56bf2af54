"""Roof model: usable roof area, array orientation and DC capacity.

Pure, vectorised functions over arrays of shapely geometries in a metric CRS
(metres), or in degrees with a projection to metres (:func:`roof_areas_m2`, the
one dispatch between the closed form and GEOS, which the survey and the tests
share). No loop over buildings: every step is one shapely/numpy call over the
whole array.
"""

from __future__ import annotations

import numpy as np
import shapely

from ..columns import WATERFALL_COLUMNS, WATERFALL_STEPS  # noqa: F401 (re-exported)
from ..config.schema import Roof

WINTER_SOLSTICE_DECLINATION_DEG = -23.44
# GB 50797-2012 §6.8: rows must not shade each other 9:00–15:00 true solar time on
# the winter solstice; 9:00 is a 45° hour angle.
NO_SHADE_HOUR_ANGLE_DEG = 45.0


def ground_coverage_ratio_no_winter_shade(latitude_deg, surface_tilt_deg):
    """Ground coverage ratio of south-facing rows that do not shade each other
    from 9:00 to 15:00 solar time on the winter solstice.

    Parameters
    ----------
    latitude_deg : float or array-like
        Site latitude [°], northern hemisphere positive.
    surface_tilt_deg : float or array-like
        Row tilt from horizontal [°].

    Returns
    -------
    numpy.ndarray
        Module slant length over row pitch [unitless, 0..1].

    Notes
    -----
    Row pitch ``d = L cos(β) + L sin(β) cos(ψ) / tan(α)``, with α the solar
    elevation and ψ the solar azimuth from south at 9:00 on the winter solstice;
    GCR = L / d. This is the exact geometry behind the approximate formula
    ``D = 0.707 H / tan(arcsin(0.648 cos Φ − 0.399 sin Φ))`` of GB 50797-2012.
    Above about 60° latitude the sun is too low at 9:00 and the result tends to 0.

    References
    ----------
    .. [1] GB 50797-2012, 光伏发电站设计规范 (Code for design of photovoltaic
       power station), §6.8.
    """
    phi = np.radians(np.abs(np.asarray(latitude_deg, dtype=float)))
    beta = np.radians(np.asarray(surface_tilt_deg, dtype=float))
    delta = np.radians(-abs(WINTER_SOLSTICE_DECLINATION_DEG))
    omega = np.radians(NO_SHADE_HOUR_ANGLE_DEG)
    sin_alpha = np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.cos(omega)
    alpha = np.arcsin(np.clip(sin_alpha, 1e-6, 1.0))
    sin_psi = np.cos(delta) * np.sin(omega) / np.cos(alpha)
    cos_psi = np.sqrt(np.clip(1.0 - sin_psi**2, 0.0, 1.0))
    pitch_per_length = np.cos(beta) + np.sin(beta) * cos_psi / np.tan(alpha)
    return np.clip(1.0 / pitch_per_length, 0.0, 1.0)


def simple_polygon_rings(geoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exterior-ring vertices of the single-ring polygons among ``geoms``.

    Returns
    -------
    index : numpy.ndarray of int
        Positions in ``geoms`` of the polygons without holes.
    xy : numpy.ndarray, shape (M, 2)
        Their closed rings' vertices, ring after ring.
    counts : numpy.ndarray of int
        Vertices per ring (closing vertex included).
    """
    geoms = np.asarray(geoms, dtype=object)
    index = np.flatnonzero((shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0))
    simple = geoms[index]  # a polygon without holes: its coordinates are its exterior ring's
    return index, shapely.get_coordinates(simple), shapely.get_num_coordinates(simple)


def ring_vertices(counts, rings) -> np.ndarray:
    """Positions, in the vertex array of :func:`simple_polygon_rings`, of the vertices
    of the rings ``rings`` (ring after ring, closing vertices included)."""
    counts = np.asarray(counts)
    first = (np.cumsum(counts) - counts)[rings]
    n = counts[rings]
    return np.repeat(first - (np.cumsum(n) - n), n) + np.arange(n.sum())


def closed_form_inset(xy_m, counts, setback_m: float):
    """Area and inset area of closed rings given as vertex arrays [m, m²].

    Parameters
    ----------
    xy_m : numpy.ndarray, shape (M, 2)
        Closed rings' vertices in metres, ring after ring.
    counts : numpy.ndarray of int
        Vertices per ring, closing vertex included.
    setback_m : float
        Inward offset d [m].

    Returns
    -------
    area : numpy.ndarray
        Ring area [m²] (shoelace formula).
    inset : numpy.ndarray
        Area after shrinking by d: ``A − P·d + d²·Σ tan(τ_k/2)``, τ_k the exterior
        turning angle at vertex k — the exact inner parallel polygon of a convex
        ring while no edge shrinks to nothing.
    exact : numpy.ndarray of bool
        Where the closed form holds (convex, no edge vanishes, inset > 0); the
        other rings need a real buffer.
    """
    counts = np.asarray(counts)
    n_edges = counts - 1
    ring_ok = n_edges >= 3
    last = np.cumsum(counts) - 1
    is_start = np.ones(len(xy_m), dtype=bool)
    is_start[last] = False
    starts = np.flatnonzero(is_start)
    edge = xy_m[starts + 1] - xy_m[starts]
    first_edge = np.concatenate([[0], np.cumsum(n_edges)[:-1]]).astype(np.int64)
    ring_of_edge = np.repeat(np.arange(len(counts)), n_edges)
    last_edge = first_edge + n_edges - 1
    prev = np.arange(len(edge)) - 1
    prev[first_edge] = last_edge  # a ring's first edge follows its last
    nxt = np.arange(len(edge)) + 1
    nxt[last_edge] = first_edge
    # shoelace relative to each ring's first vertex keeps precision with UTM-size numbers
    origin = xy_m[starts][first_edge][ring_of_edge]
    rel = xy_m[starts] - origin
    twice_area = np.add.reduceat(rel[:, 0] * (rel[:, 1] + edge[:, 1]) - (rel[:, 0] + edge[:, 0]) * rel[:, 1], first_edge)
    area = np.abs(twice_area) / 2.0
    length = np.hypot(edge[:, 0], edge[:, 1])
    cross = edge[prev, 0] * edge[:, 1] - edge[prev, 1] * edge[:, 0]
    dot = (edge[prev] * edge).sum(axis=1)
    turn = np.arctan2(cross, dot) * np.sign(twice_area)[ring_of_edge]  # > 0 at convex vertices
    convex = np.logical_and.reduceat((turn >= -1e-12) & (length > 1e-9), first_edge)
    t_half = np.tan(np.clip(turn, 0.0, None) / 2.0)
    d = float(setback_m)
    keeps_edges = np.logical_and.reduceat(length - d * (t_half + t_half[nxt]) > 0, first_edge)
    inset = area - np.add.reduceat(length, first_edge) * d + d * d * np.add.reduceat(t_half, first_edge)
    return area, inset, ring_ok & convex & keeps_edges & (inset > 0)


def roof_areas_m2(geoms, setback_m: float, pitched=None, to_metres=None):
    """Footprint area, set-back area [m²] and sunny-side azimuth [°] of each roof:
    the one place that picks the closed form or GEOS.

    Parameters
    ----------
    geoms : array of shapely geometries
        Footprints in a metric CRS, or in any other (WGS84) with ``to_metres``.
    setback_m : float
        Edge setback [m].
    pitched : array of bool, optional
        Roofs whose sunny-side azimuth is wanted (NaN for the others); default none.
    to_metres : callable, optional
        ``to_metres(x, y, rows) -> (x_m, y_m)``: vertices of the geometries at
        positions ``rows`` of ``geoms``, in metres
        (:func:`pvsurvey.model.survey.utm_metres` puts each roof in its own UTM
        zone). None when ``geoms`` are metric already.

    Returns
    -------
    footprint_area_m2, inset_area_m2, azimuth_deg : numpy.ndarray
        Inset: what is left after shrinking by ``setback_m``, as
        ``shapely.area(shapely.buffer(geom_m, -setback_m, join_style="mitre"))``;
        NaN where GEOS cannot buffer a degenerate shape (the caller rejects it).

    Notes
    -----
    Convex single-ring footprints (most roofs) are measured straight from their
    (projected) vertices by :func:`closed_form_inset`, several times faster than
    GEOS; only the other shapes, and pitched roofs (for their orientation), are
    rebuilt as metric geometries, and the other shapes measured by GEOS
    (:func:`buffered_area_m2`).
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    footprint = np.zeros(n)
    inset = np.zeros(n)
    exact = np.zeros(n, dtype=bool)
    index, xy, counts = simple_polygon_rings(geoms)
    if len(index):
        if to_metres is not None:
            xy = np.column_stack(to_metres(xy[:, 0], xy[:, 1], np.repeat(index, counts)))
        area, shrunk, ok = closed_form_inset(xy, counts, setback_m)
        footprint[index] = area
        inset[index[ok]] = shrunk[ok]
        exact[index[ok]] = True
    pitched = np.zeros(n, dtype=bool) if pitched is None else np.asarray(pitched, dtype=bool)
    azimuth = np.full(n, np.nan)
    if len(index):  # convex rings: their orientation straight from the projected vertices
        ring = np.flatnonzero(exact[index] & pitched[index])
        if len(ring):
            long_axis, ambiguous = convex_ring_long_axis(xy[ring_vertices(counts, ring)], counts[ring])
            sunny = _sunny_side_of_ridge(long_axis)
            # a north-south ridge: east and west planes are equally sunny, and rounding
            # picks one; GEOS (what the survey always asked) keeps that pick where it was
            ambiguous |= np.abs(np.mod(sunny, 180.0) - 90.0) < _NORTH_SOUTH_RIDGE_DEG
            azimuth[index[ring[~ambiguous]]] = sunny[~ambiguous]
    rebuild = np.flatnonzero(~exact | (pitched & ~np.isfinite(azimuth)))
    if len(rebuild):
        geoms_m = geoms[rebuild] if to_metres is None else _rebuilt_in_metres(geoms, rebuild, index, xy, counts,
                                                                               to_metres)
        rest = ~exact[rebuild]
        footprint[rebuild[rest]] = shapely.area(geoms_m[rest])
        inset[rebuild[rest]] = buffered_area_m2(geoms_m[rest], setback_m)
        sel = pitched[rebuild] & ~np.isfinite(azimuth[rebuild])
        azimuth[rebuild[sel]] = sunny_side_azimuth_deg(geoms_m[sel])
    return footprint, inset, azimuth


def _rebuilt_in_metres(geoms, rows, index, xy_m, counts, to_metres):
    """``geoms`` at positions ``rows`` as metric geometries: the single-ring
    polygons (``index``) from their ring vertices already projected (``xy_m``,
    ``counts`` as :func:`simple_polygon_rings` gives them: every vertex is
    projected once), the other shapes through ``to_metres`` (:func:`_in_metres`).
    Either way the same vertices in the same order, so the same geometries."""
    out = np.empty(len(rows), dtype=object)
    ring_of = np.full(len(geoms), -1)
    ring_of[index] = np.arange(len(index))
    ring = ring_of[rows]
    usable = np.zeros(len(rows), dtype=bool)
    has = ring >= 0
    # proper rings only (≥ 4 vertices) and plain x/y: anything else goes the general way
    usable[has] = (counts[ring[has]] >= 4) & ~shapely.has_z(geoms[rows[has]])
    if usable.any():
        which = ring[usable]
        vertex = ring_vertices(counts, which)
        out[usable] = shapely.polygons(shapely.linearrings(xy_m[vertex],
                                                           indices=np.repeat(np.arange(len(which)), counts[which])))
    if (~usable).any():
        out[~usable] = _in_metres(geoms[rows[~usable]], rows[~usable], to_metres)
    return out


def _in_metres(geoms, rows, to_metres):
    """``geoms`` (at positions ``rows``) rebuilt from their vertices in metres."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    x_m, y_m = to_metres(coords[:, 0], coords[:, 1], rows[owner])
    return shapely.set_coordinates(geoms.copy(), np.column_stack([x_m, y_m]))


def buffered_area_m2(geoms_m, setback_m: float) -> np.ndarray:
    """Inset area [m²] through GEOS (any shape: holes, concave, multi-part).

    NaN where GEOS cannot buffer a degenerate shape (the caller rejects it).
    """
    geoms_m = np.asarray(geoms_m, dtype=object)
    if len(geoms_m) == 0:
        return np.zeros(0)
    try:
        with np.errstate(invalid="ignore"):  # degenerate shapes give NaN, rejected by the caller
            return np.nan_to_num(shapely.area(shapely.buffer(geoms_m, -setback_m, join_style="mitre")))
    except shapely.errors.GEOSException:
        out = np.full(len(geoms_m), np.nan)
        for i, geom in enumerate(geoms_m):  # rare fallback: find the shapes GEOS refuses
            try:
                out[i] = np.nan_to_num(shapely.area(shapely.buffer(geom, -setback_m, join_style="mitre")))
            except shapely.errors.GEOSException:
                pass
        return out


def sunny_side_azimuth_deg(geoms_m):
    """Azimuth of the sunnier plane of a gabled roof whose ridge runs along the
    long axis of the footprint's minimum rotated rectangle.

    Parameters
    ----------
    geoms_m : array of shapely.Polygon
        Footprints in a metric, north-up CRS.

    Returns
    -------
    numpy.ndarray
        Azimuth [°] clockwise from north of the roof-plane normal closest to
        south (180 = south).
    """
    geoms_m = np.asarray(geoms_m, dtype=object)
    out = np.full(len(geoms_m), 180.0)
    if len(geoms_m) == 0:
        return out
    try:
        rect = shapely.oriented_envelope(geoms_m)
    except shapely.errors.GEOSException:  # degenerate shapes (NaN/inf vertices): south for them
        rect = np.empty(len(geoms_m), dtype=object)
        for i, geom in enumerate(geoms_m):  # rare fallback: find the shapes GEOS refuses
            try:
                rect[i] = shapely.oriented_envelope(geom)
            except shapely.errors.GEOSException:
                rect[i] = None
    is_rect = shapely.get_type_id(rect) == 3  # degenerate shapes come back as lines/points
    if not is_rect.any():
        return out
    coords = shapely.get_coordinates(shapely.get_exterior_ring(rect[is_rect])).reshape(-1, 5, 2)
    edge_a = coords[:, 1] - coords[:, 0]
    edge_b = coords[:, 2] - coords[:, 1]
    long_edge = np.where((np.hypot(*edge_a.T) >= np.hypot(*edge_b.T))[:, None], edge_a, edge_b)
    out[is_rect] = _sunny_side_of_ridge(long_edge)
    return out


def _sunny_side_of_ridge(ridge):
    """Azimuth [°] of the roof-plane normal closest to south, for ridges along the
    vectors ``ridge`` (shape (N, 2), east and north components, any length)."""
    ridge_bearing = np.degrees(np.arctan2(ridge[:, 0], ridge[:, 1]))
    normal = np.mod(ridge_bearing + 90.0, 180.0)  # one normal in [0, 180); the other is +180
    other = normal + 180.0
    return np.where(np.abs(normal - 180.0) <= np.abs(other - 180.0), normal, other)


# Relative tolerance under which two rectangle areas (or sides) count as equal:
# far above the rounding of UTM-size coordinates (~1e-12), far below any real difference.
_TIE_REL = 1e-7
# Ridges closer than this to north-south [°] are left to GEOS, whose answer at UTM
# coordinates carries up to ~0.003° of rounding (measured on random rectangles).
_NORTH_SOUTH_RIDGE_DEG = 0.01


def convex_ring_long_axis(xy_m, counts):
    """Long side of the minimum-area rectangle around each convex closed ring,
    from its vertices (no geometry built), vectorised over rings.

    Parameters
    ----------
    xy_m : numpy.ndarray, shape (M, 2)
        Closed convex rings' vertices in metres, ring after ring (as
        :func:`simple_polygon_rings` gives them).
    counts : numpy.ndarray of int
        Vertices per ring, closing vertex included (≥ 4).

    Returns
    -------
    long_axis : numpy.ndarray, shape (R, 2)
        A vector along the rectangle's long side, per ring (its length is the
        rectangle's long side [m]).
    ambiguous : numpy.ndarray of bool
        Rings with no single answer (a square rectangle, or rectangles of equal
        area on different axes): the caller asks GEOS, whose pick is the reference.

    Notes
    -----
    The minimum-area rectangle enclosing a convex polygon has a side collinear
    with one of the polygon's edges [1]_: each edge direction is tried against
    all vertices of its ring (n² pairs for n vertices, a few dozen for a roof),
    and the smallest rectangle kept — the rectangle ``shapely.oriented_envelope``
    finds (GEOS ≥ 3.12, MinimumAreaRectangle), without building one geometry per roof.

    References
    ----------
    .. [1] H. Freeman and R. Shapira, "Determining the minimum-area encasing
       rectangle for an arbitrary closed curve", Communications of the ACM 18(7),
       409–413, 1975.
    """
    counts = np.asarray(counts, dtype=np.int64)
    long_axis = np.zeros((len(counts), 2))
    ambiguous = np.zeros(len(counts), dtype=bool)
    first = np.cumsum(counts) - counts
    for size in np.unique(counts):  # rings of one vertex count as one (R, n, 2) block: a handful of sizes
        rings = np.flatnonzero(counts == size)
        block = xy_m[first[rings, None] + np.arange(size)]  # (R, n + 1, 2), the ring closed
        long_axis[rings], ambiguous[rings] = _block_long_axis(block)
    return long_axis, ambiguous


def _block_long_axis(block):
    """:func:`convex_ring_long_axis` of R closed rings of n vertices, shape (R, n + 1, 2)."""
    rel = block[:, :-1] - block[:, :1]  # relative to each ring's first vertex: UTM-size precision
    rel_x, rel_y = np.ascontiguousarray(rel[..., 0]), np.ascontiguousarray(rel[..., 1])
    edge = block[:, 1:] - block[:, :-1]  # (R, n, 2)
    length = np.hypot(edge[..., 0], edge[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        along = edge / length[..., None]
    normal = np.stack([-along[..., 1], along[..., 0]], axis=-1)
    # every vertex on every edge's direction and its normal: the extents of the
    # rectangle on each edge, a running max/min over the n vertices (fast on (R, n)
    # arrays, unlike a reduction over a short last axis)
    extent = []
    for axis in (along, normal):
        ux, uy = np.ascontiguousarray(axis[..., 0]), np.ascontiguousarray(axis[..., 1])
        high, low = np.full(ux.shape, -np.inf), np.full(ux.shape, np.inf)
        for v in range(rel.shape[1]):
            on = rel_x[:, v, None] * ux + rel_y[:, v, None] * uy
            np.maximum(high, on, out=high)
            np.minimum(low, on, out=low)
        extent.append(high - low)
    width, depth = extent  # (R, n)
    area = np.where(length > 0, width * depth, np.inf)
    best = np.argmin(area, axis=1)  # the first smallest
    rows = np.arange(len(block))
    axes = np.where((width >= depth)[..., None], along * width[..., None], normal * depth[..., None])
    long_axis = axes[rows, best]
    # Ties — a square, or two different rectangles of the same area (a triangle) — have
    # no one answer: which one GEOS returns rests on rounding, so they are left to it.
    tied = area <= area[rows, best][:, None] * (1.0 + _TIE_REL)
    unit = axes / np.hypot(axes[..., 0], axes[..., 1])[..., None]
    sine = np.abs(unit[..., 0] * unit[rows, best, 1][:, None] - unit[..., 1] * unit[rows, best, 0][:, None])
    w, d = width[rows, best], depth[rows, best]
    ambiguous = (tied & (sine > _TIE_REL)).any(axis=1) | (np.abs(w - d) <= _TIE_REL * np.maximum(w, d))
    return long_axis, ambiguous


# The deduction waterfall: the steps from the footprint to the module area, in
# m² of footprint (the last one, the module area, in m² of modules), in order.
# footprint = Σ steps + module area, exactly, for every roof.
# (The names live in pvsurvey.columns: WATERFALL_STEPS, WATERFALL_COLUMNS.)
# unusable_reason: the step that left a roof without modules.
UNUSABLE_REASONS = {
    "setback": "the edge setback leaves nothing (a roof narrower than twice the setback)",
    "shade": "every part of the roof loses more than roof.shade_max_loss_frac of its insolation to neighbours",
    "needs_new_roof": "the roof will not outlast the PV and roof.exclude_needs_new_roof is set",
    "too_small": "what is left is smaller than roof.min_usable_area_m2",
}


def roof_model(geoms_m, roof_shape, roof_tilt_deg, latitude_deg, params: Roof, **waterfall):
    """Usable roof area, array orientation and module coverage of each roof.

    Parameters
    ----------
    geoms_m : array of shapely.Polygon or MultiPolygon
        Footprints in a metric CRS [m].
    roof_shape : array of str
        'flat' or 'pitched' per roof.
    roof_tilt_deg : array of float or None
        Roof pitch from the source [°]; NaN where unknown (the default pitch of
        ``params`` applies to pitched roofs).
    latitude_deg : array of float
        Latitude of each roof [°], for the row spacing of flat roofs.
    params : pvsurvey.config.schema.Roof
        Setback, obstruction, tilt and coverage parameters.
    **waterfall
        ``construction``, ``shaded_frac``, ``excluded`` of :func:`roof_from_areas`.

    Returns
    -------
    dict of numpy.ndarray
        As :func:`roof_from_areas`.
    """
    footprint, inset, azimuth = roof_areas_m2(geoms_m, params.setback_m, np.asarray(roof_shape) == "pitched")
    return roof_from_areas(footprint, inset, roof_shape, roof_tilt_deg, latitude_deg, azimuth, params, **waterfall)


def module_orientation(roof_shape, roof_tilt_deg, pitched_azimuth_deg, params: Roof, construction=None):
    """How the modules lie on each roof, as :func:`roof_from_areas` lays them.

    Parameters
    ----------
    roof_shape, roof_tilt_deg, pitched_azimuth_deg, params, construction
        As for :func:`roof_from_areas`.

    Returns
    -------
    surface_tilt_deg, surface_azimuth_deg : numpy.ndarray of float
        Module tilt and azimuth [°]: a pitched roof's own (its tilt, else
        ``params.pitched_tilt_deg``; its sunny side, else south), flush on steel sheet
        at ``params.steel_sheet_pitch_deg`` facing the sunny side, tilted rows on
        concrete flat roofs at ``params.flat_tilt_deg`` / ``params.flat_azimuth_deg``.
    rows : numpy.ndarray of bool
        Roofs carrying tilted rows (flat, not steel).
    """
    pitched = np.asarray(roof_shape) == "pitched"
    n = len(pitched)
    steel = (np.zeros(n, dtype=bool) if construction is None
             else np.asarray(construction, dtype=object) == "steel")
    rows = ~pitched & ~steel  # concrete flat roofs: tilted rows
    tilt_src = np.asarray(roof_tilt_deg, dtype=float) if roof_tilt_deg is not None else np.full(n, np.nan)
    tilt = np.where(pitched, np.where(np.isfinite(tilt_src), tilt_src, params.pitched_tilt_deg),
                    np.where(rows, params.flat_tilt_deg, params.steel_sheet_pitch_deg))
    sunny = np.asarray(pitched_azimuth_deg, dtype=float)
    azimuth = np.where(rows, float(params.flat_azimuth_deg), np.where(np.isfinite(sunny), sunny, 180.0))
    return tilt, azimuth, rows


def roof_from_areas(footprint_area_m2, inset_area_m2, roof_shape, roof_tilt_deg, latitude_deg,
                    pitched_azimuth_deg, params: Roof, construction=None, shaded_frac=None, excluded=None):
    """The roof model once the footprint and set-back areas are known: the
    deduction waterfall of each roof, its usable area, orientation and modules.

    Parameters
    ----------
    footprint_area_m2, inset_area_m2 : array of float
        Footprint area and its area after the edge setback [m²].
    roof_shape, roof_tilt_deg, latitude_deg, params
        As in :func:`roof_model`.
    pitched_azimuth_deg : array of float
        Azimuth of the sunnier plane [°] of pitched roofs and of colour-steel
        roofs (ignored for tilted rows; NaN taken as south).
    construction : array of str, optional
        'steel' (colour-steel / metal sheet: flush modules at the sheet's pitch)
        or 'concrete' (tilted rows on flat roofs) per roof; default concrete.
        Blend the two for roofs of unknown material with :func:`blend_waterfalls`.
    shaded_frac : array of float, optional
        Share of the roof (after the orientation step) losing more than
        ``params.shade_max_loss_frac`` of its insolation to neighbours [0..1].
    excluded : array of bool, optional
        Roofs deducted at the construction step (a new roof needed first).

    Returns
    -------
    dict of numpy.ndarray
        ``footprint_area_m2``; the steps of ``WATERFALL_STEPS`` and
        ``module_area_m2`` [m²], which add up to the footprint; ``usable_area_m2``
        [m² of roof surface]; ``surface_tilt_deg``, ``surface_azimuth_deg`` [°];
        ``coverage_frac`` (module area / usable area); ``mount`` ('rack' or
        'flush'); ``unusable_reason`` (None where modules fit).

    Notes
    -----
    Footprint → setback (the inset) → obstructions (× ``obstruction_frac``) →
    orientation (pitched roofs keep their sunnier plane, half the rest) → shade
    (the heavily shaded share) → construction (roofs needing a new roof, when
    excluded) → small roofs (usable surface under ``min_usable_area_m2``) →
    layout → module area. All steps are in m² of footprint. Usable area is the
    roof surface left after the small-roof step: footprint m² for tilted rows,
    ÷ cos(tilt) for flush modules on a sloped plane. Module area = usable area ×
    coverage (the GB 50797 ground coverage ratio of tilted rows, the flush
    coverage of flush modules, or the large-roof coverage of big flat roofs), so
    the layout step (usable footprint − module area) is the row spacing of
    tilted rows, and for flush modules the coverage gap less the slope's extra
    surface (negative on planes steeper than acos(coverage)).
    """
    footprint = np.asarray(footprint_area_m2, dtype=float)
    inset = np.clip(np.asarray(inset_area_m2, dtype=float), 0.0, footprint)
    n = len(footprint)
    pitched = np.asarray(roof_shape) == "pitched"
    tilt, azimuth, rows = module_orientation(roof_shape, roof_tilt_deg, pitched_azimuth_deg, params, construction)
    shaded = np.zeros(n) if shaded_frac is None else np.clip(np.asarray(shaded_frac, dtype=float), 0.0, 1.0)
    excluded = np.zeros(n, dtype=bool) if excluded is None else np.asarray(excluded, dtype=bool)

    setback = footprint - inset
    a_obstructed = inset * params.obstruction_frac
    obstruction = inset - a_obstructed
    orientation = np.where(pitched, 0.5 * a_obstructed, 0.0)  # the plane facing away from the sun
    a_plane = a_obstructed - orientation
    shade = a_plane * shaded
    a_lit = a_plane - shade
    construction_loss = np.where(excluded, a_lit, 0.0)
    a_built = a_lit - construction_loss
    slope = np.where(rows, 1.0, 1.0 / np.cos(np.radians(tilt)))  # roof surface per footprint m²
    small = np.where(a_built * slope < params.min_usable_area_m2, a_built, 0.0)
    a_usable = a_built - small
    usable = a_usable * slope

    if params.ground_coverage_ratio == "auto":
        gcr = np.broadcast_to(ground_coverage_ratio_no_winter_shade(latitude_deg, params.flat_tilt_deg), (n,))
    else:
        gcr = np.full(n, float(params.ground_coverage_ratio))
    coverage = np.where(rows, gcr, params.flush_coverage_frac)
    if params.large_roof_area_m2 is not None:
        coverage = np.where(~pitched & (footprint >= params.large_roof_area_m2), params.large_roof_coverage_frac,
                            coverage)
    module = usable * coverage
    layout = a_usable - module

    reason = np.select([inset <= 0, (a_plane > 0) & (shaded >= 1.0), excluded & (a_lit > 0), module <= 0],
                       ["setback", "shade", "needs_new_roof", "too_small"], default="")
    return {
        "footprint_area_m2": footprint,
        "setback_loss_m2": setback,
        "obstruction_loss_m2": obstruction,
        "orientation_loss_m2": orientation,
        "shade_loss_m2": shade,
        "construction_loss_m2": construction_loss,
        "small_roof_loss_m2": small,
        "layout_loss_m2": layout,
        "module_area_m2": module,
        "usable_area_m2": usable,
        "surface_tilt_deg": tilt,
        "surface_azimuth_deg": azimuth,
        "coverage_frac": coverage,
        "mount": np.where(rows, "rack", "flush").astype(object),
        "unusable_reason": np.where(reason == "", None, reason).astype(object),
    }


def blend_waterfalls(steel: dict, concrete: dict, steel_share) -> dict:
    """Waterfall of roofs surveyed as a blend of both constructions (unknown
    material): areas weighted by ``steel_share`` [0..1 per roof]; orientation,
    mount and reason those of the larger share (steel at 0.5)."""
    w = np.asarray(steel_share, dtype=float)
    major = w >= 0.5
    out = {}
    for key, a in steel.items():
        b = concrete[key]
        if key in WATERFALL_COLUMNS or key in ("usable_area_m2", "footprint_area_m2"):
            out[key] = w * a + (1.0 - w) * b
        else:
            out[key] = np.where(major, a, b)
    usable = out["usable_area_m2"]
    mixed = (w > 0) & (w < 1) & (usable > 0)
    out["coverage_frac"] = np.where(mixed, out["module_area_m2"] / np.where(mixed, usable, 1.0),
                                    out["coverage_frac"])
    out["unusable_reason"] = np.where(out["module_area_m2"] > 0, None, out["unusable_reason"]).astype(object)
    return out


def waterfall_summary(sums: dict) -> dict:
    """The waterfall of summed roofs (a park, a district, the city): each step [m²]
    and its share of the footprint, then the usable area, capacity and yield."""
    footprint = float(sums.get("footprint_area_m2", 0.0) or 0.0)
    steps = [{"step": name, "area_m2": float(sums.get(name, 0.0) or 0.0)} for name in WATERFALL_COLUMNS]
    for step in steps:
        step["share_frac"] = step["area_m2"] / footprint if footprint > 0 else 0.0
    return {"footprint_area_m2": footprint, "steps": steps,
            **{k: float(sums.get(k, 0.0) or 0.0) for k in ("usable_area_m2", "capacity_kwp", "annual_yield_kwh")},
            **{k: int(sums.get(k, 0) or 0) for k in ("building_count", "usable_building_count",
                                                        "needs_new_roof_count")}}


def capacity_kwp(usable_area_m2, coverage_frac, module_power_density_kwp_per_m2):
    """DC capacity [kWp] = usable area [m²] × coverage [0..1] × module power density [kWp/m²]
    (= module area × module power density)."""
    return np.asarray(usable_area_m2) * np.asarray(coverage_frac) * module_power_density_kwp_per_m2
