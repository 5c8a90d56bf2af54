"""Roof model: usable roof area, array orientation and DC capacity.

Pure, vectorised functions over arrays of shapely geometries in a metric CRS
(metres). No loop over buildings: every step is one shapely/numpy call over the
whole array.
"""

from __future__ import annotations

import numpy as np
import shapely

from .params import Roof

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
    roof_tilt_deg : array of float
        Roof pitch from the source [°]; NaN where unknown (the default pitch of
        ``params`` applies to pitched roofs).
    latitude_deg : array of float
        Latitude of each roof [°], for the row spacing of flat roofs.
    params : pvsurvey.params.Roof
        Setback, obstruction, tilt and coverage parameters.

    Returns
    -------
    dict of numpy.ndarray
        ``footprint_area_m2``, ``usable_area_m2`` [m²], ``surface_tilt_deg``,
        ``surface_azimuth_deg`` [°] and ``coverage_frac`` [0..1].

    Notes
    -----
    Flat roofs: usable = area of the footprint shrunk by the setback × the
    obstruction share; modules in south-facing tilted rows at the ground coverage
    ratio. Pitched roofs: the sunnier of two planes (half the shrunk footprint,
    enlarged by 1/cos(pitch) to the sloped area) × the obstruction share, modules
    flush at the flush coverage. Roofs whose usable area falls below the minimum
    get 0.
    """
    geoms_m = np.asarray(geoms_m, dtype=object)
    n = len(geoms_m)
    footprint = shapely.area(geoms_m)
    # mitre joins keep the exact (L-2s)(W-2s) of rectangles and are faster than round ones
    shrunk = shapely.area(shapely.buffer(geoms_m, -params.setback_m, join_style="mitre")) if params.setback_m > 0 else footprint
    shrunk = np.nan_to_num(shrunk, nan=0.0)

    pitched = np.asarray(roof_shape) == "pitched"
    tilt_src = np.asarray(roof_tilt_deg, dtype=float) if roof_tilt_deg is not None else np.full(n, np.nan)
    tilt = np.where(pitched, np.where(np.isfinite(tilt_src), tilt_src, params.pitched_tilt_deg), params.flat_tilt_deg)
    azimuth = np.full(n, float(params.flat_azimuth_deg))
    if pitched.any():
        azimuth[pitched] = sunny_side_azimuth_deg(geoms_m[pitched])

    plane_area = np.where(pitched, 0.5 * shrunk / np.cos(np.radians(tilt)), shrunk)
    usable = plane_area * params.obstruction_frac
    usable = np.where(usable >= params.min_usable_area_m2, usable, 0.0)

    if params.ground_coverage_ratio == "auto":
        gcr = ground_coverage_ratio_no_winter_shade(latitude_deg, params.flat_tilt_deg)
    else:
        gcr = np.full(n, float(params.ground_coverage_ratio))
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
