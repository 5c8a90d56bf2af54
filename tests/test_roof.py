"""Roof model: hand-computed geometry, and row spacing against the sun's shadow."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pvlib
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from pvsurvey.config.schema import Roof
from pvsurvey.model.roof import (capacity_kwp, closed_form_inset, convex_ring_long_axis,
                                 ground_coverage_ratio_no_winter_shade, roof_areas_m2, roof_model,
                                 simple_polygon_rings, sunny_side_azimuth_deg)
from pvsurvey.model.survey import utm_metres


def test_flat_100_by_50_roof_with_1m_setback():
    params = Roof(setback_m=1.0, obstruction_frac=0.8, ground_coverage_ratio=0.5, min_usable_area_m2=10)
    roof = shapely.box(0, 0, 100, 50)
    r = roof_model([roof], ["flat"], None, [31.2], params)
    # (100 - 2) × (50 - 2) = 4704 m² after the setback; × 0.8 obstruction = 3763.2 m²
    assert r["footprint_area_m2"][0] == pytest.approx(5000.0)
    assert r["usable_area_m2"][0] == pytest.approx(3763.2)
    assert r["surface_tilt_deg"][0] == 15.0 and r["surface_azimuth_deg"][0] == 180.0
    # 3763.2 m² × 0.5 coverage × 0.21 kWp/m² = 395.136 kWp
    assert capacity_kwp(r["usable_area_m2"], r["coverage_frac"], 0.21)[0] == pytest.approx(395.136)


def test_roof_below_minimum_is_unusable():
    params = Roof(setback_m=1.0, obstruction_frac=1.0, min_usable_area_m2=10)
    # 5 × 4 m shed: 3 × 2 = 6 m² after setback < 10 m²
    r = roof_model([shapely.box(0, 0, 5, 4)], ["flat"], None, [31.0], params)
    assert r["usable_area_m2"][0] == 0.0


def test_pitched_roof_uses_the_sunny_half_on_the_slope():
    params = Roof(setback_m=0.0, obstruction_frac=1.0, pitched_tilt_deg=30.0, flush_coverage_frac=0.9)
    # ridge along x (east-west): planes face south (180) and north (0)
    r = roof_model([shapely.box(0, 0, 40, 10)], ["pitched"], None, [31.0], params)
    assert r["surface_azimuth_deg"][0] == pytest.approx(180.0)
    assert r["usable_area_m2"][0] == pytest.approx(0.5 * 400 / np.cos(np.radians(30)))
    assert r["coverage_frac"][0] == 0.9
    # the source's roof angle wins over the default pitch
    r = roof_model([shapely.box(0, 0, 40, 10)], ["pitched"], [20.0], [31.0], params)
    assert r["surface_tilt_deg"][0] == 20.0


def test_sunny_side_of_rotated_ridges():
    # ridge running north-south: planes face east (90) and west (270), equally far from south
    assert sunny_side_azimuth_deg([shapely.box(0, 0, 10, 40)])[0] in (90.0, 270.0)
    # ridge turned 30° anticlockwise from east runs on a 60° bearing: planes face 150° and 330°
    rotated = shapely.affinity.rotate(shapely.box(0, 0, 40, 10), 30, origin=(0, 0))
    assert sunny_side_azimuth_deg([rotated])[0] == pytest.approx(150.0)


def test_convex_ring_long_axis_by_hand():
    # a 40 m × 10 m rectangle turned 30° anticlockwise, far out in UTM coordinates:
    # its own rectangle, long side 40 m on a 60° bearing; planes face 150° (and 330°)
    rect = shapely.affinity.translate(shapely.affinity.rotate(shapely.box(0, 0, 40, 10), 30, origin=(0, 0)),
                                      351_234.5, 3_456_789.25)
    # a gabled outline, 30 m wide, eaves at 10 m, apex at 14 m: its minimum-area rectangle
    # is the 30 × 14 box (420 m²; a rectangle on a gable edge is larger), long side east-west
    gable = shapely.Polygon([(0, 0), (30, 0), (30, 10), (15, 14), (0, 10)])
    _, xy, counts = simple_polygon_rings([rect, gable])
    axis, ambiguous = convex_ring_long_axis(xy, counts)
    assert not ambiguous.any()
    assert np.hypot(*axis[0]) == pytest.approx(40.0, abs=1e-6)
    assert np.degrees(np.arctan2(*axis[0])) % 180 == pytest.approx(60.0, abs=1e-7)
    assert np.hypot(*axis[1]) == pytest.approx(30.0, abs=1e-9)
    assert abs(axis[1][1]) < 1e-9  # east-west
    # ties have no single answer and are flagged for GEOS: a square, and a right
    # isosceles triangle (its 10 × 10 box and the rectangle on its hypotenuse, both 100 m²)
    square = shapely.affinity.rotate(shapely.box(0, 0, 12, 12), 17, origin=(0, 0))
    triangle = shapely.Polygon([(0, 0), (10, 0), (0, 10)])
    _, xy, counts = simple_polygon_rings([square, triangle])
    assert convex_ring_long_axis(xy, counts)[1].all()


def test_convex_orientation_equals_geos_oriented_envelope():
    """The closed-form orientation against GEOS's minimum-area rectangle, on random
    rotated rectangles and convex hulls (GEOS run on vertices near the origin, where
    its rounding is below 1e-9°; at UTM coordinates it rounds by up to ~0.003°)."""
    rng = np.random.default_rng(7)
    shapes = [shapely.affinity.rotate(shapely.box(0, 0, *rng.uniform(5, 120, 2)), rng.uniform(0, 180))
              for _ in range(400)]
    shapes += [shapely.convex_hull(shapely.multipoints(rng.normal(size=(rng.integers(4, 12), 2)) * 30))
               for _ in range(400)]
    shapes = np.array([s for s in shapes if s.geom_type == "Polygon"], dtype=object)
    index, xy, counts = simple_polygon_rings(shapes)
    axis, ambiguous = convex_ring_long_axis(xy + [400_000.0, 3_400_000.0], counts)
    ridge = np.degrees(np.arctan2(axis[:, 0], axis[:, 1])) % 180
    geos = shapely.get_coordinates(shapely.get_exterior_ring(shapely.oriented_envelope(shapes[index]))).reshape(-1, 5, 2)
    a, b = geos[:, 1] - geos[:, 0], geos[:, 2] - geos[:, 1]
    long_edge = np.where((np.hypot(*a.T) >= np.hypot(*b.T))[:, None], a, b)
    geos_ridge = np.degrees(np.arctan2(long_edge[:, 0], long_edge[:, 1])) % 180
    gap = np.abs((ridge - geos_ridge + 90) % 180 - 90)[~ambiguous]
    assert ambiguous.mean() < 0.1
    assert gap.max() < 1e-6
    # and the survey's azimuths: the same whether the orientation comes from the rings or from GEOS
    areas = roof_areas_m2(shapes, 1.0, np.ones(len(shapes), dtype=bool))
    assert np.allclose(np.mod(areas[2], 180), np.mod(sunny_side_azimuth_deg(shapes), 180), atol=1e-6)


def sun_at_true_solar_time(latitude_deg, longitude_deg, hours, day="2024-12-21"):
    """pvlib's solar position (NREL SPA) at the given true-solar-time hours of ``day``
    (the 2024 winter solstice): UTC = solar time − longitude/15 h − equation of time."""
    midnight = pd.Timestamp(day, tz="UTC")
    hours = np.asarray(hours, dtype=float)
    times = midnight + pd.to_timedelta(hours - longitude_deg / 15.0, unit="h")
    for _ in range(2):  # the equation of time at the instant itself
        eot_min = pvlib.solarposition.get_solarposition(times, latitude_deg, longitude_deg)["equation_of_time"]
        times = midnight + pd.to_timedelta(hours - longitude_deg / 15.0 - eot_min.to_numpy() / 60.0, unit="h")
    return pvlib.solarposition.get_solarposition(times, latitude_deg, longitude_deg)


def shaded_slope_length(pitch_m, tilt_deg, sun, slope_length_m=1.0):
    """How far up the next row [m along its slope] the shadow of the row before it
    reaches, for each sun position (0 or less: the next row is in full sun).

    Two long east–west rows of modules of slope length L, tilted south, lower edges
    ``pitch_m`` apart on a flat roof (y north, z up). The ray from the top edge of the
    first row away from the sun, P − t·s, meets the plane of the next row at
    (pitch + u cos β, u sin β); u is solved for as a 2 × 2 linear system.
    """
    beta = np.radians(tilt_deg)
    top = slope_length_m * np.array([np.cos(beta), np.sin(beta)])  # (north, up) of the top edge
    up_slope = np.array([np.cos(beta), np.sin(beta)])
    elevation = np.radians(sun["elevation"].to_numpy())  # geometric: no refraction, as the rule
    azimuth = np.radians(sun["azimuth"].to_numpy())
    out = []
    for el, az in zip(elevation, azimuth):
        to_sun = np.array([np.cos(el) * np.cos(az), np.sin(el)])  # (north, up) part of the sun vector
        # top − t·to_sun = (pitch, 0) + u·up_slope  →  [−to_sun | −up_slope] (t, u) = (pitch, 0) − top
        t, u = np.linalg.solve(np.column_stack([-to_sun, -up_slope]), np.array([pitch_m, 0.0]) - top)
        assert t > 0  # the shadow falls behind (north of) the first row
        out.append(u)
    return np.array(out)


# (latitude, longitude, tilt): Shanghai's default rows, steeper ones, and other Chinese cities
GB50797_SITES = [(31.2, 121.47, 15.0), (31.2, 121.47, 30.0), (39.9, 116.4, 10.0), (23.1, 113.3, 25.0),
                 (45.75, 126.6, 15.0)]


@pytest.mark.parametrize("latitude,longitude,tilt", GB50797_SITES)
def test_gcr_rows_just_clear_the_winter_solstice_shadow_from_9_to_15(latitude, longitude, tilt):
    """GB 50797-2012: rows must not shade each other 9:00–15:00 true solar time on the
    winter solstice. At pitch = L / GCR the top edge's shadow, cast with the sun as
    pvlib computes it, ends exactly at the next row's lower edge at 9:00 and 15:00,
    falls short of it in between, and a 1 % tighter pitch shades the next row."""
    pitch = 1.0 / float(ground_coverage_ratio_no_winter_shade(latitude, tilt))  # slope length 1 m
    rule = sun_at_true_solar_time(latitude, longitude, [9.0, 15.0])
    # the shadow just reaches the next row: within 0.1 mm on a 1 m module
    np.testing.assert_allclose(shaded_slope_length(pitch, tilt, rule), 0.0, atol=1e-4)
    day = sun_at_true_solar_time(latitude, longitude, np.arange(9.25, 15.0, 0.25))
    assert (shaded_slope_length(pitch, tilt, day) < -1e-3).all()
    # a 1 % tighter pitch puts the lowest ~1 cm of the next row in shade at 9:00 and 15:00
    assert (shaded_slope_length(0.99 * pitch, tilt, rule) > 5e-3).all()
    # and outside the rule's hours the sun is low enough to shade even the rule's pitch
    assert (shaded_slope_length(pitch, tilt, sun_at_true_solar_time(latitude, longitude, [8.5, 15.5])) > 1e-3).all()


def test_gcr_at_shanghai_and_its_trends():
    # README: GCR 0.68 at 31.2° N for 15° rows (rows about 1.47 module lengths apart)
    gcr = float(ground_coverage_ratio_no_winter_shade(31.2, 15.0))
    assert round(gcr, 2) == 0.68
    # steeper rows or higher latitude need wider spacing
    assert ground_coverage_ratio_no_winter_shade(31.2, 30.0) < gcr
    assert ground_coverage_ratio_no_winter_shade(40.0, 15.0) < gcr
    # flat modules cover the roof; southern hemisphere mirrors the northern one
    assert ground_coverage_ratio_no_winter_shade(31.2, 0.0) == pytest.approx(1.0)
    assert ground_coverage_ratio_no_winter_shade(-31.2, 15.0) == pytest.approx(gcr)


def test_inset_matches_geos_buffer_on_awkward_shapes():
    shapes = [
        shapely.Polygon([(0, 0), (40, 0), (40, 40), (20, 10), (0, 40)]),  # concave
        shapely.Polygon([(0, 0), (50, 0), (50, 50), (0, 50)], [[(20, 20), (30, 20), (30, 30), (20, 30)]]),
        shapely.Polygon([(0, 0), (3, 0), (0, 2.5)]),  # vanishes at 1 m
        shapely.box(0, 0, 1.5, 100),
        shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)]),
        shapely.Polygon([(0, 0), (10, 0), (10, 0), (10, 10), (0, 10)]),  # repeated vertex
        shapely.reverse(shapely.box(0, 0, 20, 30)),  # clockwise ring
    ]
    expected = shapely.area(shapely.buffer(shapes, -1.0, join_style="mitre"))
    np.testing.assert_allclose(roof_areas_m2(shapes, 1.0)[1], np.nan_to_num(expected), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-200, 200), st.floats(-200, 200)), min_size=3, max_size=12),
       st.floats(0.1, 5.0))
def test_closed_form_inset_equals_buffer_for_convex_polygons(points, setback):
    hull = shapely.convex_hull(shapely.MultiPoint(points))
    if hull.geom_type != "Polygon" or hull.area < 1e-3:
        return
    expected = shapely.area(shapely.buffer(hull, -setback, join_style="mitre"))
    assert roof_areas_m2([hull], setback)[1][0] == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_closed_form_reports_area_and_flags():
    ring = shapely.get_coordinates(shapely.box(0, 0, 100, 50).exterior)
    area, inset, exact = closed_form_inset(ring, np.array([5]), 1.0)
    assert area[0] == pytest.approx(5000.0) and inset[0] == pytest.approx(4704.0) and exact[0]


def test_roofs_in_degrees_are_measured_in_their_own_utm_zone():
    # the survey's path: WGS84 footprints, each measured in the UTM zone of its centroid
    # (zone 50 west of 120° E, zone 51 east of it); convex, concave, holed and pitched roofs
    shapes_m = [
        (shapely.box(0, 0, 100, 50), 32651),
        (shapely.Polygon([(0, 0), (40, 0), (40, 40), (20, 10), (0, 40)]), 32651),
        (shapely.Polygon([(0, 0), (50, 0), (50, 50), (0, 50)], [[(20, 20), (30, 20), (30, 30), (20, 30)]]), 32650),
        (shapely.box(0, 0, 40, 10), 32650),
    ]
    origin = {32651: (350_000, 3_450_000), 32650: (780_000, 3_450_000)}  # 121.4° E and 119.9° E at 31.2° N
    wgs84 = np.array([gpd.GeoSeries([shapely.affinity.translate(g, *origin[z])], crs=z).to_crs(4326).values[0]
                      for g, z in shapes_m], dtype=object)
    lon, lat = shapely.get_x(shapely.centroid(wgs84)), shapely.get_y(shapely.centroid(wgs84))
    pitched = np.array([False, False, False, True])
    footprint, inset, azimuth = roof_areas_m2(wgs84, 1.0, pitched, to_metres=utm_metres(lon, lat))
    # the reference: GEOS on each roof reprojected to its zone
    metric = np.array([gpd.GeoSeries([g], crs=4326).to_crs(z).values[0] for g, (_, z) in zip(wgs84, shapes_m)],
                      dtype=object)
    np.testing.assert_allclose(footprint, shapely.area(metric), rtol=1e-9)
    np.testing.assert_allclose(inset, shapely.area(shapely.buffer(metric, -1.0, join_style="mitre")), rtol=1e-9)
    assert footprint[0] == pytest.approx(5000.0, rel=1e-6) and inset[0] == pytest.approx(4704.0, rel=1e-6)
    assert np.isnan(azimuth[:3]).all() and azimuth[3] == pytest.approx(180.0, abs=0.1)  # ridge east-west


# --- the deduction waterfall, rule sets and roof construction ---------------------------------

from pvsurvey.columns import WATERFALL_COLUMNS  # noqa: E402
from pvsurvey.config.schema import RULE_SETS, Shade  # noqa: E402
from pvsurvey.model.roof import blend_waterfalls, roof_from_areas  # noqa: E402
from pvsurvey.model.roof_construction import (chinese_number, needs_new_roof, parse_heights,  # noqa: E402
                                              parse_years, roof_construction)


def _areas(footprint, inset, shape, construction, params, **kw):
    n = len(footprint)
    return roof_from_areas(np.asarray(footprint, float), np.asarray(inset, float), np.asarray(shape), None,
                           np.full(n, 31.2), np.full(n, 180.0), params,
                           construction=np.asarray(construction, dtype=object), **kw)


def test_waterfall_of_a_flat_concrete_roof_by_hand():
    params = Roof(setback_m=1.0, obstruction_frac=0.8, ground_coverage_ratio=0.5)
    r = roof_model([shapely.box(0, 0, 100, 50)], ["flat"], None, [31.2], params,
                   construction=np.array(["concrete"], dtype=object))
    # 5000 m² − (98 × 48 = 4704 after the setback) = 296; × 0.8 leaves 3763.2 (940.8 obstructions);
    # rows at GCR 0.5: 1881.6 m² of modules, 1881.6 m² between the rows
    expected = {"setback_loss_m2": 296.0, "obstruction_loss_m2": 940.8, "orientation_loss_m2": 0.0,
                "shade_loss_m2": 0.0, "construction_loss_m2": 0.0, "small_roof_loss_m2": 0.0,
                "layout_loss_m2": 1881.6, "module_area_m2": 1881.6}
    for key, value in expected.items():
        assert r[key][0] == pytest.approx(value, abs=1e-9), key
    assert r["usable_area_m2"][0] == pytest.approx(3763.2) and r["mount"][0] == "rack"
    assert r["unusable_reason"][0] is None


def test_waterfall_of_a_colour_steel_roof_by_hand():
    params = Roof(setback_m=1.0, obstruction_frac=0.8, flush_coverage_frac=0.9, steel_sheet_pitch_deg=2.86)
    # the same roof under colour-steel sheet: flush modules on both planes at the sheet's pitch
    r = _areas([5000.0], [4704.0], ["flat"], ["steel"], params)
    surface = 3763.2 / np.cos(np.radians(2.86))
    assert r["usable_area_m2"][0] == pytest.approx(surface)
    assert r["module_area_m2"][0] == pytest.approx(0.9 * surface)
    assert r["layout_loss_m2"][0] == pytest.approx(3763.2 - 0.9 * surface)
    assert r["mount"][0] == "flush" and r["surface_tilt_deg"][0] == 2.86
    # a pitched roof keeps its sunny plane: the other half of the set-back, obstructed area goes
    p = _areas([5000.0], [4704.0], ["pitched"], ["steel"], params)
    assert p["orientation_loss_m2"][0] == pytest.approx(0.5 * 3763.2)
    assert p["usable_area_m2"][0] == pytest.approx(0.5 * 3763.2 / np.cos(np.radians(10.0)))


def test_the_shade_sees_the_modules_as_the_waterfall_lays_them():
    """The shade's losses are those of each roof's modules as its waterfall lays them
    (module_orientation, without building the waterfall): tilted rows facing
    flat_azimuth_deg on concrete, flush at the sheet's pitch facing the sunny side on
    steel, a pitched roof's own tilt (else pitched_tilt_deg) and sunny side (else south)."""
    from pvsurvey.model.roof import module_orientation

    params = Roof(flat_tilt_deg=15.0, flat_azimuth_deg=180.0, steel_sheet_pitch_deg=2.86, pitched_tilt_deg=25.0)
    shape = np.array(["flat", "flat", "pitched", "pitched", "flat"])
    tilt_src = np.array([np.nan, np.nan, 32.0, np.nan, np.nan])
    sunny = np.array([200.0, 200.0, 150.0, np.nan, np.nan])
    construction = np.array(["concrete", "steel", "concrete", "steel", "steel"], dtype=object)
    tilt, azimuth, rows = module_orientation(shape, tilt_src, sunny, params, construction)
    assert tilt.tolist() == [15.0, 2.86, 32.0, 25.0, 2.86]
    assert azimuth.tolist() == [180.0, 200.0, 150.0, 180.0, 180.0]
    assert rows.tolist() == [True, False, False, False, False]
    n = len(shape)
    r = roof_from_areas(np.full(n, 500.0), np.full(n, 400.0), shape, tilt_src, np.full(n, 31.2), sunny, params,
                        construction=construction)
    assert r["surface_tilt_deg"].tolist() == tilt.tolist() and r["surface_azimuth_deg"].tolist() == azimuth.tolist()
    assert (r["mount"] == "rack").tolist() == rows.tolist()


def test_waterfall_steps_add_up_to_the_footprint_exactly():
    rng = np.random.default_rng(7)
    n = 2000
    footprint = rng.uniform(1, 40_000, n)
    inset = footprint * rng.uniform(-0.1, 1.0, n)
    shape = rng.choice(["flat", "pitched"], n)
    shaded = rng.choice([0.0, 0.3, 1.0], n)
    excluded = rng.random(n) < 0.2
    for rule_set in RULE_SETS:
        params = Roof(rule_set=rule_set)
        steel = _areas(footprint, inset, shape, np.full(n, "steel"), params, shaded_frac=shaded, excluded=excluded)
        concrete = _areas(footprint, inset, shape, np.full(n, "concrete"), params, shaded_frac=shaded,
                          excluded=excluded)
        for r in (steel, concrete, blend_waterfalls(steel, concrete, rng.random(n))):
            total = np.sum([r[c] for c in WATERFALL_COLUMNS], axis=0)
            np.testing.assert_allclose(total, footprint, rtol=1e-12)
            assert (r["module_area_m2"] >= 0).all()
            usable = r["module_area_m2"] > 0
            assert (pd.isna(r["unusable_reason"]) == usable).all()  # every unusable roof has its reason


def test_unusable_roofs_carry_the_step_that_excluded_them():
    params = Roof(setback_m=1.0, obstruction_frac=0.8, min_usable_area_m2=10.0)
    r = _areas([150.0, 5000.0, 5000.0, 20.0, 5000.0], [0.0, 4704.0, 4704.0, 8.0, 4704.0], ["flat"] * 5,
               ["concrete"] * 5, params, shaded_frac=np.array([0, 1.0, 0, 0, 0.25]),
               excluded=np.array([False, False, True, False, False]))
    assert list(r["unusable_reason"]) == ["setback", "shade", "needs_new_roof", "too_small", None]
    assert r["shade_loss_m2"][1] == pytest.approx(3763.2) and r["construction_loss_m2"][2] == pytest.approx(3763.2)
    assert r["small_roof_loss_m2"][3] == pytest.approx(6.4) and r["shade_loss_m2"][4] == pytest.approx(940.8)


def test_unknown_material_blends_both_constructions_by_the_configured_share():
    params = Roof()
    steel = _areas([5000.0], [4704.0], ["flat"], ["steel"], params)
    concrete = _areas([5000.0], [4704.0], ["flat"], ["concrete"], params)
    r = blend_waterfalls(steel, concrete, np.array([0.25]))
    assert r["module_area_m2"][0] == pytest.approx(0.25 * steel["module_area_m2"][0]
                                                   + 0.75 * concrete["module_area_m2"][0])
    assert r["mount"][0] == "rack"
    assert r["coverage_frac"][0] == pytest.approx(r["module_area_m2"][0] / r["usable_area_m2"][0])


def test_rule_sets_by_hand():
    # Swiss SFOE 2016: 70 % of a flat roof below 1,000 m², 80 % from 1,000 m², 70 % of a pitched plane
    swiss = Roof(rule_set="swiss_sfoe_2016")
    r = _areas([800.0, 2000.0], [800.0, 2000.0], ["flat", "flat"], ["concrete", "concrete"], swiss)
    assert list(r["module_area_m2"]) == pytest.approx([560.0, 1600.0])
    assert r["setback_loss_m2"].sum() == 0 and r["obstruction_loss_m2"].sum() == 0
    p = _areas([800.0], [800.0], ["pitched"], ["concrete"], swiss)
    assert p["module_area_m2"][0] == pytest.approx(0.7 * 400.0 / np.cos(np.radians(10.0)))
    # NREL (Gagnon et al. 2016): flat roofs 0.70 of the roof in modules, tilted planes 0.98
    nrel = Roof(rule_set="nrel_gagnon_2016")
    r = _areas([800.0, 800.0], [800.0, 800.0], ["flat", "pitched"], ["concrete", "concrete"], nrel)
    assert list(r["module_area_m2"]) == pytest.approx([560.0, 0.98 * 400.0 / np.cos(np.radians(10.0))])
    assert nrel.shade_max_loss_frac == 0.2 and nrel.min_usable_area_m2 == 10.0
    # a key written by hand wins over its preset, and is reported as overridden
    mine = Roof(rule_set="swiss_sfoe_2016", setback_m=0.5)
    assert mine.setback_m == 0.5 and mine.large_roof_coverage_frac == 0.8 and mine.overridden_keys() == ["setback_m"]
    assert Roof().overridden_keys() == [] and Roof(rule_set="nrel_gagnon_2016").overridden_keys() == []


def test_heights_and_storeys_are_parsed_and_bad_values_counted():
    text = pd.Series(["12", "12m", "9 米", "-3", "9999", "约10米", None, "", "7.5"], dtype="string")
    levels = pd.Series([None, None, None, "2", "三层", "十二层", "3F", "many", "-1"], dtype="string")
    kind = pd.Series(["factory", "office", None, "office", "office", "residential", "warehouse", None, None])
    out = parse_heights(text, levels, kind, Shade())
    np.testing.assert_array_equal(out["height_m"], [12, 12, 9, np.nan, np.nan, np.nan, np.nan, np.nan, 7.5])
    assert list(out["height_status"]) == ["ok", "ok", "ok", "negative", "absurd", "unparsable", "missing", "missing",
                                          "ok"]
    assert list(out["levels_status"]) == ["missing"] * 3 + ["ok", "ok", "ok", "ok", "unparsable", "negative"]
    # storeys × the storey height of the building type (office 3.6 m, residential 2.8 m, warehouse 5 m)
    np.testing.assert_allclose(out["building_height_m"], [12, 12, 9, 7.2, 10.8, 12 * 2.8, 15.0, np.nan, 7.5])
    assert list(out["height_source"]) == ["height"] * 3 + ["levels"] * 4 + ["none", "height"]
    assert chinese_number("二十一") == 21 and chinese_number("一百二十八") == 128 and np.isnan(chinese_number("层"))


def test_roof_materials_and_years():
    params = Roof()
    construction, status = roof_construction(pd.Series(["彩钢瓦", "Metal ", "混凝土", "concrete", "glass", None]),
                                             params)
    assert list(construction) == ["steel", "steel", "concrete", "concrete", "unknown", "unknown"]
    assert list(status) == ["ok", "ok", "ok", "ok", "unrecognised", "missing"]
    year, status = parse_years(pd.Series(["2010", "2008-05-01", "1980年", "2031", "old", None]), 2025)
    np.testing.assert_array_equal(year, [2010, 2008, 1980, np.nan, np.nan, np.nan])
    assert list(status) == ["ok", "ok", "ok", "future", "unparsable", "missing"]
    # steel sheet lasts 25 years: a 2010 steel roof has 10 left (< 25, the PV's); concrete 50: 35 left
    flagged = needs_new_roof(np.array(["steel", "concrete", "concrete", "steel", "unknown"], dtype=object),
                             np.array([2010, 2010, 1995, np.nan, 2010]), 2025, 25, params)
    assert list(flagged) == [True, False, True, False, True]


def test_a_low_pitch_steel_roofs_two_planes_yield_as_a_level_array():
    # the survey takes the mean yield of a 2.86° roof's two opposite planes as a level array's
    from pvsurvey.config.schema import Climate, System
    from pvsurvey.model.yield_table import SpecificYieldTable

    table = SpecificYieldTable(System(), Climate())
    azimuths = np.arange(0.0, 180.0, 30.0)
    n = len(azimuths)
    args = ([31.2] * n, [121.4] * n, [1300.0] * n)
    a, _ = table.lookup(*args, [2.86] * n, azimuths, ["flush"] * n)
    b, _ = table.lookup(*args, [2.86] * n, azimuths + 180.0, ["flush"] * n)
    level, _ = table.lookup(*args, [0.0] * n, [180.0] * n, ["flush"] * n)
    np.testing.assert_allclose(0.5 * (a + b), level, rtol=0.003)


def test_sunny_side_of_shapes_geos_refuses_is_south():
    bad = shapely.Polygon([(0, 0), (0, np.inf), (10, 0)])
    out = sunny_side_azimuth_deg([shapely.box(0, 0, 40, 10), bad])
    assert out[0] == pytest.approx(180.0) and out[1] == 180.0
