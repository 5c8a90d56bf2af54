"""The compiled inner loops of the shade model: each sample point's horizon and its
annual loss, in one pass per point (:func:`trace_losses`), and the roofs' taller
neighbours found on a grid (:func:`near_pairs`).

The method is :mod:`pvsurvey.model.shade`'s (steps 3, 5–7 there); this module only
runs it without the points × walls × bins temporaries that numpy needs. Compiled with
numba (as pvlib compiles its NREL SPA, ``pvlib.spa``, with ``how='numba'``), cached
on disk after the first run (``cache=True``), and never imported unless a roof is
traced. The model's constants come in as arguments: numba freezes a global into the
compiled code, and its cache would not notice a change to it. ``error_model="numpy"``:
a division by zero gives inf or NaN (which the loops already guard against) instead of
Python's exception, so the compiled divisions carry no zero test; the trace of one
partition of the dense synthetic city takes 0.89x the time, the same results to the bit
(2026-12-04). Two shortcuts with the same results to the bit: a wall's bins from fitted
bearings, checked against ``math.atan2`` near a bin's edge (:func:`_wall_bins`), and a bin
whose horizon stands above every sun position in it losing its whole beam light without
an arctangent (:func:`lit_between`); together 0.91-0.93x the kernel's time on that partition
(2026-12-04, night).
"""

from __future__ import annotations

import math

import numba
import numpy as np

# atan(r) on [0, 1] as r·P(r²): a least-squares fit of degree 11 on 4,001 Chebyshev nodes
# (numpy.linalg.lstsq, 2026-12-04), whose largest error is under ATAN_FIT_MAX_ERROR_RAD (1.8e-6,
# tested). Only the speed depends on it: a wall's bins come from its ends' bearings through
# floors and ceilings alone, and where a bearing lies nearer a bin's boundary than the fit's
# error allows, they are taken again with math.atan2 (:func:`_wall_bins`): the same bins, to
# the bit. libm's atan2 was a fifth of the kernel's time (perf, dense synthetic city).
_ATAN_FIT = (0.9999798315905766, -0.3326554194513168, 0.19366988828003653, -0.11664997877294166,
             0.05282219488959988, -0.0117699740898259)
ATAN_FIT_MAX_ERROR_RAD = 2e-6


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bearing_fit(x, y):
    """``math.atan2(x, y)`` [rad] within ``ATAN_FIT_MAX_ERROR_RAD``: the bearing of (x, y),
    clockwise from north (+y), in [−π, π]."""
    ax, ay = abs(x), abs(y)
    big, small = max(ax, ay), min(ax, ay)
    r = small / big if big > 0.0 else 0.0
    r2 = r * r
    c = _ATAN_FIT
    a = r * (c[0] + r2 * (c[1] + r2 * (c[2] + r2 * (c[3] + r2 * (c[4] + r2 * c[5])))))
    if ax > ay:
        a = 0.5 * math.pi - a
    if y < 0.0:
        a = math.pi - a
    return -a if x < 0.0 else a


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _off_integer(v):
    """Distance of ``v`` to the nearest integer (NaN for NaN)."""
    return abs(v - math.floor(v + 0.5))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _wall_bins(ax, ay, bx, by, per_radian, turn, fitted):
    """The azimuth bins a wall from (ax, ay) to (bx, by) spans, seen from the origin: its
    first bin (unwrapped), how many, and whether it is narrow (between two bin centres:
    its middle's bin alone). ``per_radian``: bins per radian; ``turn``: bins in a full turn.

    ``fitted``: the ends' bearings come from the fit (:func:`_bearing_fit`) and are taken
    again with ``math.atan2`` where any decision lies nearer its boundary than the fit's
    error allows; else from ``math.atan2`` alone. Either way the same bins."""
    # the fit's error on a bearing, and on the difference of two, with room for the sums' rounding [bins]
    guard = 4.0 * ATAN_FIT_MAX_ERROR_RAD * per_radian + 1e-9 * turn
    exact = not fitted
    for _ in range(2):  # the fit, then math.atan2 where the fit was too near a boundary
        if exact:
            alpha_a, alpha_b = math.atan2(ax, ay) * per_radian, math.atan2(bx, by) * per_radian
        else:
            alpha_a, alpha_b = _bearing_fit(ax, ay) * per_radian, _bearing_fit(bx, by) * per_radian
        if alpha_a < 0.0:
            alpha_a += turn
        if alpha_b < 0.0:
            alpha_b += turn
        delta = alpha_b - alpha_a
        if delta >= 0.5 * turn:
            delta -= turn
        elif delta < -0.5 * turn:
            delta += turn
        start = alpha_a if delta >= 0.0 else alpha_b
        width = abs(delta)
        first = math.ceil(start - 0.5)
        count = math.floor(start + width - 0.5) - first + 1
        narrow = count <= 0
        if narrow:
            first = math.floor(start + width / 2.0)
            count = 1
        if exact:
            break
        # every floor, ceiling and comparison above clear of its boundary by the guard (NaN: not clear)
        clear = min(alpha_a, turn - alpha_a) >= guard and min(alpha_b, turn - alpha_b) >= guard \
            and abs(width - 0.5 * turn) >= guard and _off_integer(start - 0.5) >= guard \
            and _off_integer(start + width - 0.5) >= guard \
            and (not narrow or _off_integer(start + width / 2.0) >= guard)
        if clear:
            break
        exact = True
    return first, count, narrow


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cast(px, py, first_pair, last_pair, pair_caster, pair_dh, wall_first, ax, ay, bx, by, sign,
          step_deg, ray_x, ray_y, min_distance_m, slope, margin_m, nearer):
    """Raise ``slope`` (and ``nearer``: the walls ``margin_m`` nearer, when it is ≥ 0)
    to the walls of casters ``first_pair:last_pair`` facing point (px, py); ``ray_x``,
    ``ray_y``: the unit ray through each bin's centre; distances no shorter than
    ``min_distance_m``."""
    n_bins = slope.shape[0]
    turn = 360.0 / step_deg  # a full turn, in bins
    per_radian = turn / (2.0 * math.pi)
    for k in range(first_pair, last_pair):
        c = pair_caster[k]
        rise = pair_dh[k]
        for w in range(wall_first[c], wall_first[c + 1]):
            x0, y0, x1, y1 = ax[w], ay[w], bx[w], by[w]
            dx, dy = x1 - x0, y1 - y0
            wx, wy = x0 - px, y0 - py
            # facing the point: it lies outside the edge (right of an anticlockwise ring)
            if not sign[w] * (dx * (py - y0) - dy * (px - x0)) < 0.0:
                continue
            # the bins between the bearings of the wall's ends; a narrow wall, at its nearest distance
            first, count, narrow = _wall_bins(wx, wy, x1 - px, y1 - py, per_radian, turn, True)
            across = wx * dy - wy * dx
            for b in range(first, first + count):
                if b >= n_bins:
                    b %= n_bins
                den = ray_x[b] * dy - ray_y[b] * dx
                t = across / den if den != 0.0 else math.nan
                if narrow or not t > 0.0 or not math.isfinite(t):
                    # nearest distance from the point to the wall, for narrow walls and grazing rays
                    seg2 = dx * dx + dy * dy
                    s = -(wx * dx + wy * dy) / seg2 if seg2 > 0.0 else 0.0
                    s = min(max(s, 0.0), 1.0)
                    t = math.hypot(wx + s * dx, wy + s * dy)
                t = max(t, min_distance_m)
                v = rise / t
                if v > slope[b]:
                    slope[b] = v
                if margin_m >= 0.0:
                    v = rise / max(t - margin_m, min_distance_m)
                    if v > nearer[b]:
                        nearer[b] = v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _loss(slope, cls, beam_below, lit_between, sky, total, per_level):
    """Annual loss [0..1] of a horizon ``slope`` (tan of each bin's elevation) for
    orientation class ``cls`` (:func:`pvsurvey.model.shade.point_losses`); below
    ``lit_between[cls, b, 0]`` a bin's horizon hides none of its beam light, from
    ``lit_between[cls, b, 1]`` on all of it (no arctangent taken either way);
    ``per_level``: the table's elevation levels per radian."""
    n_bins, n_levels = beam_below.shape[1], beam_below.shape[2]
    beam_lost = 0.0
    hidden_sky = 0.0
    for b in range(n_bins):
        s = slope[b]
        if s == 0.0:
            continue
        if s >= lit_between[cls, b, 1]:  # what the interpolation gives there: both levels hold the whole
            beam_lost += beam_below[cls, b, n_levels - 1]
        elif s >= lit_between[cls, b, 0]:
            kf = min(math.atan(s) * per_level, n_levels - 1.0)
            k0 = min(int(kf), n_levels - 2)
            lo = beam_below[cls, b, k0]
            beam_lost += lo + (beam_below[cls, b, k0 + 1] - lo) * (kf - k0)
        hidden_sky += s * s / (1.0 + s * s)  # sin² of the elevation from its tangent
    loss = (beam_lost + hidden_sky / n_bins * sky[cls]) / total[cls]
    if not math.isfinite(loss):
        return 0.0
    return min(max(loss, 0.0), 1.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def trace_losses(point_first, px, py, point_class, margin_m, near_first, near_split, near_caster, near_dh,
                 far_first, far_caster, far_dh, cx, cy, far_horizon, keep_far, wall_first, ax, ay, bx, by, sign,
                 step_deg, min_distance_m, beam_below, elevation_step_deg, lit_between, sky, total):
    """Annual loss [0..1] of every sample point, from its horizon.

    Parameters
    ----------
    point_first : int64 array, shape (R + 1,)
        Points of roof r are ``point_first[r]:point_first[r + 1]`` of ``px``, ``py`` [m],
        ``point_class`` (orientation class) and ``margin_m`` [m].
    margin_m : float array
        Per point: also the loss with every wall brought this much nearer (the
        screen), or empty for none.
    near_first, near_split, near_caster, near_dh : neighbours traced from each point
        Roof r's are ``near_first[r]:near_first[r + 1]``: caster index and height difference [m];
        those before ``near_split[r]`` are traced first (see ``keep_far``).
    far_first, far_caster, far_dh : neighbours traced once per roof
        From its centre (``cx``, ``cy`` [m]), the horizon shared by its points.
    far_horizon : float array, shape (R, B) or (0, B)
        Each roof's far horizon already traced (by a pass with ``keep_far``), in place
        of ``far_first`` and the rest.
    keep_far : float array, shape (R, B) or (0, B)
        Filled with each roof's horizon of its pairs before ``near_split``: the
        centre pass (one point per roof, at its centre) keeps the horizon of the far
        neighbours for the points traced next, rather than have them traced again.
    wall_first : int64 array, shape (C + 1,)
        Walls of caster c are ``wall_first[c]:wall_first[c + 1]`` of ``ax, ay, bx, by``
        [m] with ring orientation ``sign`` (+1 anticlockwise).
    step_deg, min_distance_m : the azimuth bins' width [°] and the nearest distance along a ray [m].
    beam_below, sky, total : the classes' sun tables (:func:`pvsurvey.model.shade.sun_tables`),
        ``beam_below`` on elevation levels ``elevation_step_deg`` [°] apart.
    lit_between : float array, shape (C, B, 2)
        Per class and bin, the horizons (tan of their elevation) below which the table
        holds no beam light to interpolate, and from which it holds all (:func:`lit_between`).

    Returns
    -------
    loss, screen : float arrays, shape (P,)
        The loss, and the loss with the walls brought nearer (zeros without ``margin_m``).
    """
    n_points = px.shape[0]
    n_bins = beam_below.shape[1]
    with_margin = margin_m.shape[0] > 0
    per_level = 180.0 / math.pi / elevation_step_deg
    # explicit loops rather than numpy's array expressions or numpy.zeros here: each of those costs the
    # first (cold-cache) compile a third of a second to a second (numpy.zeros here: 0.6 s), the same results
    loss, screen = np.empty(n_points), np.empty(n_points)
    for p in range(n_points):
        loss[p] = screen[p] = 0.0
    ray_x, ray_y = np.empty(n_bins), np.empty(n_bins)
    far, slope, nearer = np.empty(n_bins), np.empty(n_bins), np.empty(n_bins)
    for b in range(n_bins):
        centre = (b + 0.5) * step_deg * (math.pi / 180.0)
        ray_x[b], ray_y[b] = math.sin(centre), math.cos(centre)
        far[b] = slope[b] = nearer[b] = 0.0
    for r in range(point_first.shape[0] - 1):
        if point_first[r + 1] == point_first[r]:
            continue
        kept = far_horizon.shape[0] > 0
        for b in range(n_bins):
            far[b] = far_horizon[r, b] if kept else 0.0
        if not kept and far_first[r + 1] > far_first[r]:
            _cast(cx[r], cy[r], far_first[r], far_first[r + 1], far_caster, far_dh, wall_first, ax, ay, bx, by,
                  sign, step_deg, ray_x, ray_y, min_distance_m, far, -1.0, nearer)
        for p in range(point_first[r], point_first[r + 1]):
            for b in range(n_bins):
                slope[b] = far[b]
                nearer[b] = 0.0
            margin = margin_m[p] if with_margin else -1.0
            _cast(px[p], py[p], near_first[r], near_split[r], near_caster, near_dh, wall_first, ax, ay, bx, by,
                  sign, step_deg, ray_x, ray_y, min_distance_m, slope, margin, nearer)
            if keep_far.shape[0] > 0:
                for b in range(n_bins):
                    keep_far[r, b] = slope[b]
            _cast(px[p], py[p], near_split[r], near_first[r + 1], near_caster, near_dh, wall_first, ax, ay, bx, by,
                  sign, step_deg, ray_x, ray_y, min_distance_m, slope, margin, nearer)
            cls = point_class[p]
            loss[p] = _loss(slope, cls, beam_below, lit_between, sky, total, per_level)
            if with_margin:
                screen[p] = _loss(nearer, cls, beam_below, lit_between, sky, total, per_level)
    return loss, screen


@numba.njit(cache=True, nogil=True, error_model="numpy")
def near_pairs(target_box, target_h, caster_box, caster_h, reach, same, tan_min, max_distance_m, cell_m, x0, y0,
               nx, ny, far_gap):
    """Roof–neighbour pairs by a grid of ``cell_m`` squares (``nx`` × ``ny`` from
    (``x0``, ``y0``) [m]): :func:`pvsurvey.model.shade.neighbour_pairs`' pairs, without
    building boxes or a tree.

    Parameters
    ----------
    target_box, caster_box : float arrays, shape (N, 4), (M, 4)
        Envelopes [m] of the roofs with a height and of the casters that may shade one.
    target_h, caster_h : float arrays
        Heights [m].
    reach : float array, shape (M,)
        How far each caster is searched [m] (from the lowest roof).
    same : int array, shape (N,)
        Each roof's own position among the casters (−1: none).
    far_gap : float array, shape (N,)
        Per roof, the envelopes' distance [m] beyond which a caster is far (inf: none is).

    Returns
    -------
    target, caster, height difference [m], envelopes' distance [m], far : arrays
        Pairs whose envelopes lie within min(Δh / ``tan_min``, ``max_distance_m``), Δh > 0,
        each roof once per caster; by roof, each roof's far casters first, and each part
        in caster order.
    """
    # the roofs of each cell (a roof in every cell its envelope touches), as offsets into one array
    n = target_box.shape[0]
    first_x, first_y = np.empty(n, np.int64), np.empty(n, np.int64)
    last_x, last_y = np.empty(n, np.int64), np.empty(n, np.int64)
    count = np.empty(nx * ny + 1, np.int64)  # zeros, in a loop (numpy.zeros costs the first compile 0.3 s)
    for q in range(nx * ny + 1):
        count[q] = 0
    for i in range(n):
        first_x[i], first_y[i] = int((target_box[i, 0] - x0) // cell_m), int((target_box[i, 1] - y0) // cell_m)
        last_x[i], last_y[i] = int((target_box[i, 2] - x0) // cell_m), int((target_box[i, 3] - y0) // cell_m)
        for cx in range(first_x[i], last_x[i] + 1):
            for cy in range(first_y[i], last_y[i] + 1):
                count[cx * ny + cy + 1] += 1
    start = np.empty(nx * ny + 1, np.int64)  # the cumulative sum, in a loop (a faster first compile)
    total = 0
    for q in range(nx * ny + 1):
        total += count[q]
        start[q] = total
    members = np.empty(total, np.int64)
    fill = np.empty(nx * ny, np.int64)
    for q in range(nx * ny):
        fill[q] = start[q]
    for i in range(n):
        for cx in range(first_x[i], last_x[i] + 1):
            for cy in range(first_y[i], last_y[i] + 1):
                members[fill[cx * ny + cy]] = i
                fill[cx * ny + cy] += 1
    size = max(16, 4 * n)
    out_t, out_c = np.empty(size, np.int64), np.empty(size, np.int64)
    out_dh, out_gap = np.empty(size), np.empty(size)
    k = 0
    for j in range(caster_box.shape[0]):
        gx0, gy0 = caster_box[j, 0] - reach[j], caster_box[j, 1] - reach[j]
        gx1, gy1 = caster_box[j, 2] + reach[j], caster_box[j, 3] + reach[j]
        qx0, qy0 = max(int((gx0 - x0) // cell_m), 0), max(int((gy0 - y0) // cell_m), 0)
        qx1, qy1 = min(int((gx1 - x0) // cell_m), nx - 1), min(int((gy1 - y0) // cell_m), ny - 1)
        for cx in range(qx0, qx1 + 1):
            for cy in range(qy0, qy1 + 1):
                for m in range(start[cx * ny + cy], start[cx * ny + cy + 1]):
                    i = members[m]
                    # a roof in several cells is taken in the first of them the search covers
                    if max(first_x[i], qx0) != cx or max(first_y[i], qy0) != cy:
                        continue
                    if target_box[i, 0] > gx1 or target_box[i, 2] < gx0 or target_box[i, 1] > gy1 \
                            or target_box[i, 3] < gy0:  # beyond the caster's reach
                        continue
                    rise = caster_h[j] - target_h[i]
                    if not rise > 0.0 or same[i] == j:
                        continue
                    gap_x = max(0.0, max(caster_box[j, 0] - target_box[i, 2], target_box[i, 0] - caster_box[j, 2]))
                    gap_y = max(0.0, max(caster_box[j, 1] - target_box[i, 3], target_box[i, 1] - caster_box[j, 3]))
                    gap = math.hypot(gap_x, gap_y)
                    if not gap <= min(rise / tan_min, max_distance_m):
                        continue
                    if k == out_t.shape[0]:  # grow the outputs (in a loop: a helper costs the first compile 0.4 s)
                        grown_t, grown_c = np.empty(2 * k, np.int64), np.empty(2 * k, np.int64)
                        grown_dh, grown_gap = np.empty(2 * k), np.empty(2 * k)
                        for q in range(k):
                            grown_t[q], grown_c[q] = out_t[q], out_c[q]
                            grown_dh[q], grown_gap[q] = out_dh[q], out_gap[q]
                        out_t, out_c, out_dh, out_gap = grown_t, grown_c, grown_dh, grown_gap
                    out_t[k], out_c[k], out_dh[k], out_gap[k] = i, j, rise, gap
                    k += 1
    # by roof, far casters first, each part in caster order (a counting sort: a sort of the pairs cost
    # more than finding them)
    fill, n_far = np.empty(n + 1, np.int64), np.empty(n, np.int64)
    fill[n] = 0
    for i in range(n):
        fill[i] = n_far[i] = 0
    for q in range(k):
        fill[out_t[q] + 1] += 1
        if out_gap[q] > far_gap[out_t[q]]:
            n_far[out_t[q]] += 1
    for i in range(n):
        fill[i + 1] += fill[i]
    fill_near = np.empty(n, np.int64)
    for i in range(n):
        fill_near[i] = fill[i] + n_far[i]
    by_t, by_c, by_dh, by_gap = np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k), np.empty(k)
    by_far = np.empty(k, np.bool_)
    for q in range(k):
        i = out_t[q]
        far = out_gap[q] > far_gap[i]
        if far:
            at = fill[i]
            fill[i] += 1
        else:
            at = fill_near[i]
            fill_near[i] += 1
        by_t[at], by_c[at], by_dh[at], by_gap[at], by_far[at] = i, out_c[q], out_dh[q], out_gap[q], far
    return by_t, by_c, by_dh, by_gap, by_far


def lit_between(beam_below: np.ndarray, elevation_step_deg: float) -> np.ndarray:
    """Per class and azimuth bin of ``beam_below`` (C, B, L), the tangents of two
    elevations (C, B, 2): below the first a horizon hides none of the bin's beam light
    (one level under the first level with any; ∞ where the sun never shines in the
    bin), from the second on all of it (a hundredth of a level over the first level
    that holds the bin's whole: the floor of the interpolation's level is then past
    it; ∞ where only the last level does, or where that lies at the zenith).
    :func:`_loss` takes neither arctangent there: in Shanghai the sun never stands
    below about 35° due south, and it never stands high in the east or the west."""
    n_levels = beam_below.shape[2]
    lit = beam_below > 0.0
    first = np.where(lit.any(axis=2), lit.argmax(axis=2), n_levels + 1)
    below = np.tan(np.radians(np.maximum(first - 1, 0) * elevation_step_deg))
    whole = (beam_below == beam_below[:, :, -1:]).argmax(axis=2)  # cumulated: equal from there on
    above = np.tan(np.radians((whole + 0.01) * elevation_step_deg))
    never_whole = (whole >= n_levels - 1) | (first >= n_levels) | ((whole + 0.01) * elevation_step_deg >= 90.0)
    return np.stack([np.where(first >= n_levels, np.inf, below), np.where(never_whole, np.inf, above)], axis=2)
