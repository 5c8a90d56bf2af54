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
    ring = shapely.get_exterior_ring(geoms[index])
    return index, shapely.get_coordinates(ring), shapely.get_num_coordinates(ring)


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
    rebuild = np.flatnonzero(~exact | pitched)
    if len(rebuild):
        geoms_m = geoms[rebuild] if to_metres is None else _in_metres(geoms[rebuild], rebuild, to_metres)
        rest = ~exact[rebuild]
        footprint[rebuild[rest]] = shapely.area(geoms_m[rest])
        inset[rebuild[rest]] = buffered_area_m2(geoms_m[rest], setback_m)
        sel = pitched[rebuild]
        azimuth[rebuild[sel]] = sunny_side_azimuth_deg(geoms_m[sel])
    return footprint, inset, azimuth


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
    rect = shapely.oriented_envelope(geoms_m)
    is_rect = shapely.get_type_id(rect) == 3  # degenerate shapes come back as lines/points
    if not is_rect.any():
        return out
    coords = shapely.get_coordinates(shapely.get_exterior_ring(rect[is_rect])).reshape(-1, 5, 2)
    edge_a = coords[:, 1] - coords[:, 0]
    edge_b = coords[:, 2] - coords[:, 1]
    long_edge = np.where((np.hypot(*edge_a.T) >= np.hypot(*edge_b.T))[:, None], edge_a, edge_b)
    ridge_bearing = np.degrees(np.arctan2(long_edge[:, 0], long_edge[:, 1]))
    normal = np.mod(ridge_bearing + 90.0, 180.0)  # one normal in [0, 180); the other is +180
    other = normal + 180.0
    out[is_rect] = np.where(np.abs(normal - 180.0) <= np.abs(other - 180.0), normal, other)
    return out


def roof_model(geoms_m, roof_shape, roof_tilt_deg, latitude_deg, params: Roof):
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

    Returns
    -------
    dict of numpy.ndarray
        ``footprint_area_m2``, ``usable_area_m2`` [m²], ``surface_tilt_deg``,
        ``surface_azimuth_deg`` [°] and ``coverage_frac`` [0..1].
    """
    footprint, inset, azimuth = roof_areas_m2(geoms_m, params.setback_m, np.asarray(roof_shape) == "pitched")
    return roof_from_areas(footprint, inset, roof_shape, roof_tilt_deg, latitude_deg, azimuth, params)


def roof_from_areas(footprint_area_m2, inset_area_m2, roof_shape, roof_tilt_deg, latitude_deg,
                    pitched_azimuth_deg, params: Roof):
    """The roof model once the footprint and set-back areas are known.

    Parameters
    ----------
    footprint_area_m2, inset_area_m2 : array of float
        Footprint area and its area after the edge setback [m²].
    roof_shape, roof_tilt_deg, latitude_deg, params
        As in :func:`roof_model`.
    pitched_azimuth_deg : array of float
        Azimuth of the sunnier plane of pitched roofs [°] (ignored for flat ones).

    Notes
    -----
    Flat roofs: usable = set-back area × the obstruction share; modules in
    tilted rows at the ground coverage ratio, facing ``flat_azimuth_deg``.
    Pitched roofs: the sunnier of two planes — half the set-back footprint,
    enlarged by 1/cos(pitch) to the sloped area — × the obstruction share,
    modules flush at the flush coverage. Roofs whose usable area falls below the
    minimum get 0.
    """
    footprint = np.asarray(footprint_area_m2, dtype=float)
    shrunk = np.asarray(inset_area_m2, dtype=float)
    n = len(footprint)
    pitched = np.asarray(roof_shape) == "pitched"
    tilt_src = np.asarray(roof_tilt_deg, dtype=float) if roof_tilt_deg is not None else np.full(n, np.nan)
    tilt = np.where(pitched, np.where(np.isfinite(tilt_src), tilt_src, params.pitched_tilt_deg), params.flat_tilt_deg)
    azimuth = np.where(pitched, np.asarray(pitched_azimuth_deg, dtype=float), float(params.flat_azimuth_deg))

    plane_area = np.where(pitched, 0.5 * shrunk / np.cos(np.radians(tilt)), shrunk)
    usable = plane_area * params.obstruction_frac
    usable = np.where(usable >= params.min_usable_area_m2, usable, 0.0)

    if params.ground_coverage_ratio == "auto":
        gcr = ground_coverage_ratio_no_winter_shade(latitude_deg, params.flat_tilt_deg)
    else:
        gcr = float(params.ground_coverage_ratio)
    coverage = np.where(pitched, params.flush_coverage_frac, np.broadcast_to(gcr, (n,)))
    return {
        "footprint_area_m2": footprint,
        "usable_area_m2": usable,
        "surface_tilt_deg": tilt,
        "surface_azimuth_deg": azimuth,
        "coverage_frac": coverage,
    }


def capacity_kwp(usable_area_m2, coverage_frac, module_power_density_kwp_per_m2):
    """DC capacity [kWp] = usable area [m²] × coverage [0..1] × module power density [kWp/m²]."""
    return np.asarray(usable_area_m2) * np.asarray(coverage_frac) * module_power_density_kwp_per_m2
