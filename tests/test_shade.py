"""Shade of neighbouring buildings: pvsurvey's horizon model against an independent,
plain ray-cast of shadow polygons hour by hour over the same weather year."""

import geopandas as gpd
import numpy as np
import pvlib
import pytest
import shapely

from pvsurvey.config.loading import config_from_dict
from pvsurvey.model.shade import MIN_SUN_ELEVATION_DEG, envelope_cells, neighbour_pairs, roof_shade, sample_points
from pvsurvey.model.yield_table import SpecificYieldTable, ghi_level

UTM51N = "EPSG:32651"
ORIGIN = (339_000.0, 3_452_000.0)  # 31.2° N 121.3° E
GHI = 1300.0


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    cfg = config_from_dict({"name": "shade", "footprints": "x.gpkg", "irradiance": {"ghi": "g.tif"},
                            "roof": {"setback_m": 0.0}}, tmp_path_factory.mktemp("cfg"))
    return cfg, SpecificYieldTable(cfg.system, cfg.climate)


def _wgs84(geoms_m):
    moved = [shapely.affinity.translate(g, *ORIGIN) for g in geoms_m]
    return gpd.GeoSeries(moved, crs=UTM51N).to_crs(4326).values


def _plane_of_array(cfg, weather, solpos, tilt=15.0, azimuth=180.0):
    zenith = solpos["apparent_zenith"]
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azimuth, zenith, solpos["azimuth"], weather["dni"], weather["ghi"], weather["dhi"],
        dni_extra=pvlib.irradiance.get_extra_radiation(weather.index),
        airmass=pvlib.atmosphere.get_relative_airmass(zenith), albedo=cfg.system.albedo,
        model=cfg.system.transposition_model)
    return (np.nan_to_num(poa[k].to_numpy()) for k in ("poa_direct", "poa_sky_diffuse", "poa_global"))


def ray_cast_loss(cfg, weather, solpos, roof, roof_h, neighbours, heights):
    """Annual insolation loss of ``roof`` (metres) computed plainly: each hour, each
    taller neighbour's shadow on the roof's plane is the hull of its footprint and
    the footprint moved by Δh / tan(elevation) away from the sun; the lit share of
    the roof weights that hour's beam light. The sky diffuse is weighted by the
    sky-view factor found by casting rays every 2° from a 2.5 m grid on the roof."""
    beam, sky, total = _plane_of_array(cfg, weather, solpos)
    elevation = 90.0 - solpos["apparent_zenith"].to_numpy()
    sun_az = np.radians(solpos["azimuth"].to_numpy())
    hours = np.flatnonzero((elevation > 0) & (beam > 0))
    shadows = []
    for nb, h in zip(neighbours, heights):
        dh = h - roof_h
        if dh <= 0:
            continue
        length = dh / np.tan(np.radians(elevation[hours]))
        coords = shapely.get_coordinates(nb)
        moved = shapely.polygons([coords + [-np.sin(a) * ln, -np.cos(a) * ln]
                                  for a, ln in zip(sun_az[hours], length)])
        shadows.append(shapely.convex_hull(shapely.union(np.full(len(hours), nb), moved)))
    beam_lost = 0.0
    if shadows:
        shadow = shapely.union_all(np.stack(shadows), axis=0)
        shaded = shapely.area(shapely.intersection(shadow, roof)) / roof.area
        beam_lost = float((shaded * beam[hours]).sum())
    minx, miny, maxx, maxy = roof.bounds
    gx, gy = np.meshgrid(np.arange(minx + 1.25, maxx, 2.5), np.arange(miny + 1.25, maxy, 2.5))
    x, y = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(roof, x, y)
    x, y = x[inside], y[inside]
    points = shapely.points(x, y)
    hidden = np.zeros(len(x))
    angles = np.radians(np.arange(1.0, 360.0, 2.0))
    for angle in angles:
        rays = shapely.linestrings(np.stack([np.column_stack([x, y]),
                                             np.column_stack([x + 3000 * np.sin(angle), y + 3000 * np.cos(angle)])],
                                            axis=1))
        horizon = np.zeros(len(x))
        for nb, h in zip(neighbours, heights):
            if h <= roof_h:
                continue
            hit = shapely.intersection(rays, nb)
            seen = ~shapely.is_empty(hit)
            dist = np.maximum(shapely.distance(points, hit), 0.1)
            horizon = np.where(seen, np.maximum(horizon, np.degrees(np.arctan2(h - roof_h, dist))), horizon)
        hidden += np.sin(np.radians(horizon)) ** 2 / len(angles)
    return (beam_lost + hidden.mean() * sky.sum()) / total.sum()


def _ours(setting, geoms_m, heights):
    cfg, table = setting
    wgs = _wgs84(geoms_m)
    centre = shapely.centroid(wgs)
    n = len(wgs)
    return roof_shade(wgs, shapely.get_x(centre), shapely.get_y(centre), np.asarray(heights, float),
                      np.full(n, GHI), np.full(n, 15.0), np.full(n, 180.0), table, cfg)


def _reference(setting, geoms_m, heights):
    cfg, table = setting
    wgs = _wgs84(geoms_m[:1])
    centre = shapely.centroid(wgs)
    row, col = table.cells(shapely.get_y(centre), shapely.get_x(centre))
    weather, solpos = table.hourly_year(row[0], col[0], float(ghi_level(GHI)))
    moved = [shapely.affinity.translate(g, *ORIGIN) for g in geoms_m]
    return ray_cast_loss(cfg, weather, solpos, moved[0], heights[0], moved[1:], heights[1:])


HALL = shapely.box(0, 0, 100, 50)
SCENES = {
    # a 40 m block due south of an 8 m hall, at several distances
    "south block 5 m away, 60 m tall": ([HALL, shapely.box(20, -25, 80, -5)], [8.0, 60.0]),
    "south block 10 m away": ([HALL, shapely.box(20, -30, 80, -10)], [8.0, 40.0]),
    "south block 30 m away": ([HALL, shapely.box(20, -50, 80, -30)], [8.0, 40.0]),
    "south block 60 m away": ([HALL, shapely.box(20, -80, 80, -60)], [8.0, 40.0]),
    # a hall between two blocks, east and west
    "blocks east and west": ([HALL, shapely.box(-40, -10, -10, 60), shapely.box(110, -10, 140, 60)],
                             [8.0, 30.0, 30.0]),
    # a far neighbour (beyond 4 half-diagonals of the roof): traced from the roof's centre
    "small roof, tower 70 m south": ([shapely.box(0, 0, 20, 20), shapely.box(-10, -100, 30, -70)], [8.0, 60.0]),
}


QUICK_SCENE = "south block 10 m away"  # the quick loop's sample; the sweep is slow (1-2 s a scene)


@pytest.mark.parametrize("scene", [s if s == QUICK_SCENE else pytest.param(s, marks=pytest.mark.slow) for s in SCENES])
def test_annual_loss_matches_an_independent_ray_cast(setting, scene):
    geoms, heights = SCENES[scene]
    ours = _ours(setting, geoms, heights)["mean_loss_frac"][0]
    reference = _reference(setting, geoms, heights)
    assert 0.005 < reference < 0.25  # losses of half a per cent to about 21 % (60 m block 5 m south)
    assert abs(ours - reference) <= max(0.2 * reference, 0.003), (ours, reference)


def test_a_roof_taller_than_everything_around_loses_nothing(setting):
    geoms = [HALL, shapely.box(20, -30, 80, -10), shapely.box(-40, -10, -10, 60), shapely.box(110, 0, 130, 40)]
    out = _ours(setting, geoms, [50.0, 40.0, 49.9, 12.0])
    assert out["mean_loss_frac"][0] == 0.0 and out["shaded_frac"][0] == 0.0 and out["kept_loss_frac"][0] == 0.0
    assert not out["traced"][0]
    assert _reference(setting, geoms, [50.0, 40.0, 49.9, 12.0]) == 0.0


def test_heavily_shaded_parts_are_deducted_and_the_rest_keeps_its_loss(setting):
    cfg, _ = setting
    geoms, heights = SCENES["south block 5 m away, 60 m tall"]
    out = _ours(setting, geoms, heights)
    # the strip next to the tall block loses more than 20 %: deducted; the rest keeps a smaller loss
    assert 0.05 < out["shaded_frac"][0] < 0.6
    assert 0 < out["kept_loss_frac"][0] < cfg.roof.shade_max_loss_frac < out["mean_loss_frac"][0] / out["shaded_frac"][0]
    # the block itself (taller than the hall) is not shaded by it
    assert out["mean_loss_frac"][1] == 0.0


def test_unknown_heights_cast_and_take_no_shade(setting):
    geoms, _ = SCENES["south block 10 m away"]
    out = _ours(setting, geoms, [np.nan, 40.0])
    assert not out["traced"].any() and out["mean_loss_frac"].sum() == 0.0
    out = _ours(setting, geoms, [8.0, np.nan])
    assert not out["traced"].any()


def test_neighbours_beyond_reach_are_not_paired():
    # a 10 m height difference hides the sun above 5° only within 10 / tan 5° = 114 m
    near = [shapely.box(0, 0, 10, 10), shapely.box(0, -110, 10, -100), shapely.box(0, -130, 10, -120)]
    t, c, dh, gap, far = neighbour_pairs(near, np.array([5.0, 15.0, 15.0]), near, np.array([5.0, 15.0, 15.0]),
                                         300.0, same=np.arange(3))
    reach = 10 / np.tan(np.radians(MIN_SUN_ELEVATION_DEG))
    assert 100 < reach < 120
    assert list(zip(t, c)) == [(0, 1)] and dh[0] == 10.0 and gap[0] == 100.0  # the envelopes 100 m apart


def test_the_compiled_pair_search_finds_the_pairs_the_tree_finds(monkeypatch):
    """Large partitions pair roofs with their taller neighbours on a grid in the compiled
    kernel, small ones with an STRtree: the same pairs, height differences and distances
    (roofs without a height, a halo of casters that are no roofs, no roof its own neighbour)."""
    import pvsurvey.model.shade as shade

    rng = np.random.default_rng(11)
    n, halo = 400, 150
    x, y = rng.uniform(0, 2000, n + halo), rng.uniform(0, 1500, n + halo)
    boxes = shapely.box(x, y, x + rng.uniform(8, 90, n + halo), y + rng.uniform(8, 60, n + halo))
    heights = rng.choice([4.0, 9.0, 15.0, 30.0, 80.0, np.nan], n + halo)
    # and the same block with a second one 1,000 km away: a grid too large to build, the tree again
    spread = np.append(boxes, shapely.box(1e6, 1e6, 1e6 + 60, 1e6 + 40))
    far_gap = rng.uniform(0, 150, n)
    for geoms, h in ((boxes, heights), (spread, np.append(heights, 30.0))):
        for far_apart in (None, far_gap):
            found = {}
            for name, threshold in (("tree", 10**9), ("compiled", 0)):
                monkeypatch.setattr(shade, "COMPILED_MIN_POINTS", threshold)
                t, c, dh, gap, far = neighbour_pairs(geoms[:n], h[:n], geoms, h, 300.0, same=np.arange(n),
                                                     far_gap=far_apart)
                # by roof, its far casters first, each part in caster order
                assert list(zip(t, ~far, c)) == sorted(zip(t, ~far, c))
                assert np.array_equal(far, gap > (np.inf if far_apart is None else far_apart[t]))
                found[name] = list(zip(t.tolist(), c.tolist(), dh.tolist(), gap.tolist(), far.tolist()))
            assert len(found["tree"]) > 1000 and any(c >= n for _, c, _, _, _ in found["tree"])
            assert far_apart is None or 0.2 < np.mean([f for *_, f in found["tree"]]) < 0.8
            assert found["compiled"] == found["tree"]


def test_far_neighbours_go_first_within_each_roof_as_a_sort_would_put_them():
    from pvsurvey.model.shade import _far_first

    rng = np.random.default_rng(2)
    for _ in range(50):
        n_roofs = int(rng.integers(1, 40))
        roof = np.sort(rng.integers(0, n_roofs, int(rng.integers(0, 300))))
        far = rng.random(len(roof)) < rng.random()
        assert np.array_equal(_far_first(roof, far, n_roofs), np.lexsort((~far, roof)))
    assert list(_far_first(np.array([0, 0, 0, 2, 2]), np.array([False, True, True, False, True]), 3)) == [1, 2, 0, 4, 3]


def test_envelopes_fall_in_every_grid_cell_between_their_corners():
    grid = (0.01, 0.02)
    bounds = np.array([[0.001, 0.001, 0.002, 0.002],  # inside cell (0, 0)
                       [0.005, 0.019, 0.025, 0.061],  # x cells 0..2, y cells 0..3
                       [-0.001, 0.001, 0.001, 0.001],  # across x = 0: cells -1 and 0
                       [np.nan, 0.0, 0.0, 0.0]])  # no envelope
    owner, cells = envelope_cells(bounds, grid)
    ix, iy = cells >> 32, cells & 0xFFFFFFFF
    iy = np.where(iy >= 1 << 31, iy - (1 << 32), iy)
    found = {(int(o), int(x), int(y)) for o, x, y in zip(owner, ix, iy)}
    assert found == {(0, 0, 0), *{(1, x, y) for x in range(3) for y in range(4)}, (2, -1, 0), (2, 0, 0)}
    assert len(owner) == len(found)  # each cell once


def test_sample_points_lie_on_the_roof_inside_the_setback():
    l_shape = shapely.Polygon([(0, 0), (60, 0), (60, 20), (20, 20), (20, 40), (0, 40)])
    owner, x, y = sample_points(np.array([shapely.box(0, 0, 100, 50), l_shape, shapely.box(0, 0, 1, 1)]), 8.0, 64, 1.0)
    assert set(owner) == {0, 1, 2}
    assert (np.bincount(owner) <= 64).all()
    assert shapely.contains_xy(l_shape, x[owner == 1], y[owner == 1]).all()
    first = (owner == 0)
    assert x[first].min() >= 1.0 and x[first].max() <= 99.0 and y[first].min() >= 1.0


def test_the_sun_below_the_search_elevation_carries_little_beam_light(setting):
    # neighbours beyond Δh / tan 5° are not searched: they could only hide the sun below 5°
    cfg, table = setting
    row, col = table.cells([31.2], [121.3])
    weather, solpos = table.hourly_year(row[0], col[0], float(ghi_level(GHI)))
    for tilt, azimuth in ((15.0, 180.0), (10.0, 90.0), (10.0, 270.0)):
        beam, _, total = _plane_of_array(cfg, weather, solpos, tilt, azimuth)
        low = (90.0 - solpos["apparent_zenith"].to_numpy()) < MIN_SUN_ELEVATION_DEG
        assert beam[low].sum() / total.sum() < 0.005


def test_batches_of_roofs_give_the_same_result(setting, monkeypatch):
    import pvsurvey.model.shade as shade

    geoms, heights = SCENES["blocks east and west"]
    whole = _ours(setting, geoms, heights)
    monkeypatch.setattr(shade, "POINTS_PER_BATCH", 7)
    monkeypatch.setattr(shade, "ROWS_PER_CHUNK", 50)
    batched = _ours(setting, geoms, heights)
    for key in ("shaded_frac", "kept_loss_frac", "mean_loss_frac"):
        np.testing.assert_allclose(batched[key], whole[key], rtol=1e-12, atol=1e-15)


def test_the_manifest_tells_shade_switched_off_from_no_taller_neighbour(setting):
    """A hall beside a 40 m block: traced with shade on; with ``shade.enabled`` false
    neither roof was looked at, and the count says so rather than 'no taller neighbour'."""
    from pvsurvey.model.footprints import clean_footprints
    from pvsurvey.model.survey import survey_buildings

    cfg, table = setting
    geoms, _ = SCENES["south block 10 m away"]
    raw = gpd.GeoDataFrame({"height_m": [8.0, 40.0], "source_row": [0, 1]}, geometry=_wgs84(geoms), crs=4326)
    buildings, _, _ = clean_footprints(raw, "scene.parquet")
    counts = {}
    for enabled in (True, False):
        stats = {}
        off = cfg.model_copy(update={"shade": cfg.shade.model_copy(update={"enabled": enabled})})
        survey_buildings(buildings, np.full(2, 1300.0), np.zeros(2, dtype=bool), None, off, table,
                         "scene.parquet", 2026, stats=stats)
        counts[enabled] = stats["shade_status"], stats.get("shade_traced_from")
    assert counts[True] == ({"traced": 1, "no_taller_neighbour": 1}, {"grid": 1, "centre": 0})
    assert counts[False] == ({"shade_off": 2}, None)


@pytest.mark.slow  # compiles the kernel on a machine's first run (several seconds), loads it after (~1 s)
def test_the_compiled_kernel_finds_the_losses_numpy_finds(setting, monkeypatch):
    """Large partitions trace their horizons in the compiled kernel, small ones with
    numpy: both give the same losses on the ray-cast scenes and on a dense random
    block of 150 buildings (walls at every angle, far and near neighbours, roofs
    traced from their centre and from grids of points)."""
    import pvsurvey.model.shade as shade

    rng = np.random.default_rng(7)
    x, y = np.meshgrid(np.arange(10) * 60.0, np.arange(15) * 45.0)
    boxes = shapely.box(x.ravel(), y.ravel(), x.ravel() + rng.uniform(15, 50, 150), y.ravel() + rng.uniform(10, 35, 150))
    block = [shapely.affinity.rotate(b, 17.0, origin=(0, 0)) for b in boxes]
    scenes = [*SCENES.values(), (block, rng.choice([6.0, 12.0, 24.0, 45.0, 90.0], 150))]
    for geoms, heights in scenes:
        monkeypatch.setattr(shade, "COMPILED_MIN_POINTS", 10**9)
        with_numpy = _ours(setting, geoms, heights)
        monkeypatch.setattr(shade, "COMPILED_MIN_POINTS", 0)
        compiled = _ours(setting, geoms, heights)
        # the centre pass (one point per roof) with numpy, the grids of points compiled
        monkeypatch.setattr(shade, "COMPILED_MIN_POINTS", len(geoms) + 1)
        mixed = _ours(setting, geoms, heights)
        assert with_numpy["mean_loss_frac"].max() > 0.005
        for key in ("shaded_frac", "kept_loss_frac", "mean_loss_frac", "traced"):
            np.testing.assert_allclose(compiled[key], with_numpy[key], rtol=1e-9, atol=1e-12, err_msg=key)
            np.testing.assert_allclose(mixed[key], with_numpy[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert (with_numpy["shaded_frac"] > 0).sum() >= 5 and with_numpy["traced"].sum() >= 100


def test_the_kernel_compiled_ahead_is_the_one_partitions_call(setting, monkeypatch):
    """``compile_kernel`` (a worker's warm-up) compiles the kernel with the argument
    types of a real call: after both, each function has one compiled version (a
    second would mean the warm-up compiled for nothing), and a call still gives losses."""
    import pvsurvey.model.shade as shade
    import pvsurvey.model.shade_kernel as kernel

    shade.compile_kernel()
    monkeypatch.setattr(shade, "COMPILED_MIN_POINTS", 0)
    geoms, heights = SCENES["south block 10 m away"]
    out = _ours(setting, geoms, heights)
    assert out["traced"].any()
    for fn in (kernel.near_pairs, kernel.trace_losses):  # (the functions they call are compiled into them)
        assert len(fn.signatures) == 1, (fn, fn.signatures)
    with pytest.raises(ValueError, match="unknown part"):
        shade.compile_kernel(["everything"])


@pytest.mark.slow  # compiles the kernel's helpers for Python callers (cached after the first run)
def test_the_fitted_bearing_stays_within_its_stated_error():
    from pvsurvey.model import shade_kernel as kernel

    angle = np.linspace(-np.pi, np.pi, 40_001)
    for radius in (1e-3, 1.0, 250.0):
        x, y = radius * np.sin(angle), radius * np.cos(angle)
        fitted = np.array([kernel._bearing_fit(a, b) for a, b in zip(x, y)])
        error = np.abs((fitted - np.arctan2(x, y) + np.pi) % (2 * np.pi) - np.pi)  # across ±π alike
        assert error.max() < kernel.ATAN_FIT_MAX_ERROR_RAD
        assert error.max() > kernel.ATAN_FIT_MAX_ERROR_RAD / 10  # a fit, not atan2 itself


@pytest.mark.slow
def test_a_wall_spans_the_same_bins_with_the_fitted_bearings_as_with_atan2():
    """The kernel takes a wall's bins from fitted bearings, and from math.atan2 again near a
    boundary: the same bins as math.atan2 alone, on random walls and on walls whose ends
    lie on bin centres and edges, across north, half a turn wide, or NaN."""
    from pvsurvey.model import shade_kernel as kernel

    rng = np.random.default_rng(5)
    for step_deg in (1.0, 3.0, 7.5):
        turn = 360.0 / step_deg
        per_radian = turn / (2 * np.pi)
        ends = [rng.normal(0.0, 50.0, (3000, 4))]
        # ends on bin edges and centres (half bins), a little either side, and across north
        half = np.radians(rng.integers(0, int(2 * turn), (3000, 2)) * step_deg / 2.0)
        nudge = rng.choice([0.0, 1e-12, -1e-12, 1e-7, -1e-7], (3000, 2))
        r, bearing = rng.uniform(1.0, 300.0, (3000, 2)), half + nudge
        ends.append(np.column_stack([r[:, 0] * np.sin(bearing[:, 0]), r[:, 0] * np.cos(bearing[:, 0]),
                                     r[:, 1] * np.sin(bearing[:, 1]), r[:, 1] * np.cos(bearing[:, 1])]))
        opposite = rng.normal(0.0, 50.0, (500, 2))  # half a turn apart, give or take a rounding
        ends.append(np.column_stack([opposite, -opposite * rng.choice([1.0, 1.0 + 1e-15, 2.0], (500, 1))]))
        ends.append(np.array([[0.0, 0.0, 1.0, 1.0], [np.nan, 1.0, 1.0, 1.0], [-0.0, -5.0, 0.0, -5.0],
                              [0.0, 5.0, -1e-9, 5.0]]))
        n_fallback = 0
        for ax, ay, bx, by in np.concatenate(ends):
            fitted = kernel._wall_bins(ax, ay, bx, by, per_radian, turn, True)
            exact = kernel._wall_bins(ax, ay, bx, by, per_radian, turn, False)
            assert fitted == exact, (step_deg, ax, ay, bx, by)
            alpha = np.degrees(np.arctan2([ax, bx], [ay, by])) / step_deg * 2.0  # in half bins
            n_fallback += bool(np.any(np.abs(alpha - np.round(alpha)) < 1e-6))
        assert n_fallback > 1000  # the edges were really probed


@pytest.mark.slow
def test_a_horizon_above_the_sun_hides_the_whole_bin_without_interpolating(setting):
    """Where a bin's horizon stands over every sun position of the year in it, the
    kernel adds the bin's whole beam energy rather than interpolate between two equal
    levels: the same losses to the bit, on random horizons and on the limits themselves."""
    from pvsurvey.model import shade_kernel as kernel
    from pvsurvey.model.shade import ELEVATION_STEP_DEG, sun_tables

    cfg, table = setting
    row, col = table.cells([31.2], [121.3])
    weather, solpos = table.hourly_year(row[0], col[0], float(ghi_level(GHI)))
    beam_below, sky, total = sun_tables(weather, solpos, [15.0, 10.0], [180.0, 90.0], cfg.system, 3.0)
    lit = kernel.lit_between(beam_below, ELEVATION_STEP_DEG)
    bright = np.isfinite(lit[:, :, 1])
    assert bright.sum() > 20 and (lit[:, :, 1][bright] > lit[:, :, 0][bright]).all()
    interpolated = lit.copy()
    interpolated[:, :, 1] = np.inf  # always interpolate
    rng = np.random.default_rng(3)
    limits = np.where(np.isfinite(lit), lit, 0.0)
    per_level = 180.0 / np.pi / ELEVATION_STEP_DEG
    for trial in range(300):
        cls = trial % 2
        slope = rng.uniform(0.0, 4.0, 120) * (rng.random(120) < 0.7)
        if trial % 3 == 0:
            slope = np.where(rng.random(120) < 0.5, limits[cls, :, 1], limits[cls, :, 0])
        args = (cls, np.ascontiguousarray(beam_below), sky, total, per_level)
        assert kernel._loss(slope, args[0], args[1], lit, *args[2:]) == \
            kernel._loss(slope, args[0], args[1], interpolated, *args[2:])


def test_processes_compiling_the_kernel_take_a_part_each(tmp_path, monkeypatch):
    """The warm-up's lock per part of the kernel: a second holder is refused at once
    (it compiles another part meanwhile), one that must wait goes ahead after
    ``LOCK_WAIT_S`` (a process stuck holding it never stops a run), and so does one
    whose lock file cannot be opened."""
    import time

    from pvsurvey.pipeline import kernel_warmup

    monkeypatch.setattr(kernel_warmup.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(kernel_warmup, "LOCK_WAIT_S", 0.3)
    with kernel_warmup._part_lock("pairs", blocking=False) as first:
        with kernel_warmup._part_lock("pairs", blocking=False) as second:
            assert first and not second
        with kernel_warmup._part_lock("losses", blocking=False) as other:
            assert other
        t0 = time.monotonic()
        with kernel_warmup._part_lock("pairs", blocking=True) as waited:
            assert waited and time.monotonic() - t0 >= 0.3
    with kernel_warmup._part_lock("pairs", blocking=False) as again:  # released
        assert again
    (tmp_path / "pvsurvey-shade-kernel-other.lock").mkdir()  # a lock file that cannot be opened: go ahead
    with kernel_warmup._part_lock("other", blocking=False) as unopened:
        assert unopened


def _screened(setting, screen_frac):
    """``setting`` with ``shade.screen_frac`` set."""
    cfg, table = setting
    return cfg.model_copy(update={"shade": cfg.shade.model_copy(update={"screen_frac": screen_frac})}), table


def test_the_screen_share_decides_which_roofs_get_their_grid(setting):
    (hall, block), heights = SCENES["south block 60 m away"]

    def loss_with(screen_frac, geoms):
        return _ours(_screened(setting, screen_frac), geoms, heights)

    # the whole threshold: the hall's screened loss stays under it, so the hall is traced from its
    # centre only and loses what a 1 m roof at its centre loses, with nothing deducted
    centre_only = loss_with(1.0, [hall, block])
    tiny = shapely.box(49.5, 24.5, 50.5, 25.5)  # the hall's centre, the same height
    at_centre = loss_with(1.0, [tiny, block])["mean_loss_frac"][0]
    assert at_centre > 0.005
    assert centre_only["mean_loss_frac"][0] == pytest.approx(at_centre, rel=1e-5)  # two local frames
    assert centre_only["shaded_frac"][0] == 0.0 and not centre_only["gridded"][0] and centre_only["traced"][0]
    # no screen: the hall is traced from its grid of points, whose mean differs from its centre's
    # loss and still matches the independent ray-cast
    gridded = loss_with(0.0, [hall, block])
    grid = gridded["mean_loss_frac"][0]
    assert gridded["gridded"][0] and not gridded["gridded"][1]  # the block, taller than the hall, is not traced
    assert abs(grid - at_centre) > 1e-4
    reference = _reference(setting, [hall, block], heights)
    assert abs(grid - reference) <= max(0.2 * reference, 0.003), (grid, reference)


def test_a_roof_touching_a_taller_neighbour_gets_its_grid(setting):
    """Outlines that overlap (an annex drawn over part of a hall): the hall's centre lies
    under the taller annex, so it sees no wall and its screen nothing; the hall is traced
    from its grid all the same, and the strip north of the annex's wall is deducted as
    with no screen at all."""
    hall, annex = shapely.box(0, 0, 40, 40), shapely.box(-10, -60, 50, 25)
    out = _ours(setting, [hall, annex], [5.0, 8.0])
    tiny = shapely.box(19.5, 19.5, 20.5, 20.5)  # the hall's centre, under the annex
    assert _ours(setting, [tiny, annex], [5.0, 8.0])["mean_loss_frac"][0] == 0.0
    every = _ours(_screened(setting, 0.0), [hall, annex], [5.0, 8.0])  # every roof from its grid
    assert out["shaded_frac"][0] > 0.05
    for key in ("shaded_frac", "kept_loss_frac", "mean_loss_frac"):
        assert out[key][0] == every[key][0]
