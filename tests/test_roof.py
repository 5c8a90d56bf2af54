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
from pvsurvey.model.roof import (capacity_kwp, closed_form_inset, ground_coverage_ratio_no_winter_shade,
                                 roof_areas_m2, roof_model, sunny_side_azimuth_deg)
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
