"""Metres per degree: the one degree-to-metre conversion, against the ellipsoid."""

import numpy as np
import pytest
from pyproj import Geod

from pvsurvey.coords import metres_per_degree


def test_metres_per_degree_is_within_its_stated_error_of_the_wgs84_ellipsoid():
    a, f = 6_378_137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    lat = np.linspace(-89.0, 89.0, 1781)
    s2 = np.sin(np.radians(lat)) ** 2
    exact_lat = np.pi / 180 * a * (1 - e2) / (1 - e2 * s2) ** 1.5          # π/180 · M
    exact_lon = np.pi / 180 * a / np.sqrt(1 - e2 * s2) * np.cos(np.radians(lat))  # π/180 · N cos φ
    k_lon, k_lat = metres_per_degree(lat)
    assert np.abs(k_lat - exact_lat).max() < 0.04 and np.abs(k_lon - exact_lon).max() < 0.16
    assert (np.abs(k_lon / exact_lon - 1).max() < 6e-6) and (np.abs(k_lat / exact_lat - 1).max() < 6e-6)


def test_metres_per_degree_at_shanghai_matches_geodesic_distances():
    geod = Geod(ellps="WGS84")
    k_lon, k_lat = metres_per_degree(31.2)
    step = 30 / 95_000  # about 30 m
    _, _, east = geod.inv(121.4, 31.2, 121.4 + step, 31.2)
    _, _, north = geod.inv(121.4, 31.2 - step / 2, 121.4, 31.2 + step / 2)
    assert k_lon * step == pytest.approx(east, abs=1e-3) and k_lat * step == pytest.approx(north, abs=1e-3)
