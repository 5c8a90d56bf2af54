"""Per-building zonal statistics: hand-computed means, nodata, tiles, and agreement with
an independent reference (shapely pixel intersections) and with exactextract."""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.transform import from_origin

from pvsurvey.errors import PVSurveyError
from pvsurvey.io.raster import (is_high_resolution, open_irradiance, raster_pixel_size_m, sample_ghi_kwh_per_m2_yr,
                               zonal_ghi_kwh_per_m2_yr)
from pvsurvey.model.zonal import ZonalError, zonal_stats

from conftest import UTM51N

# A 1 m raster in UTM 51N: 20 rows × 30 columns, value = 1000 + 10 × column + row [kWh/m²/yr],
# so the mean over any area is 1000 + 10 × (mean column position) + (mean row position).
WEST, NORTH = 339_000.0, 3_452_020.0
TRANSFORM = from_origin(WEST, NORTH, 1.0, 1.0)
ROWS, COLS = 20, 30
NODATA = -9999.0


def gradient() -> np.ndarray:
    r, c = np.mgrid[0:ROWS, 0:COLS]
    return (1000.0 + 10.0 * c + r).astype("float32")


def box_px(col0, row0, col1, row1):
    """A box given in pixel coordinates (columns from the west, rows from the north)."""
    return shapely.box(WEST + col0, NORTH - row1, WEST + col1, NORTH - row0)


def write_tif(path, data, units_scale=1.0, nodata=NODATA):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype="float32", crs=UTM51N, transform=TRANSFORM, nodata=nodata) as dst:
        dst.write((data * units_scale).astype("float32"), 1)
    return path


def to_wgs84(geoms):
    gs = gpd.GeoSeries(geoms, crs=UTM51N).to_crs(4326)
    c = gpd.GeoSeries(geoms, crs=UTM51N).centroid.to_crs(4326)
    return gs.values, c.x.to_numpy(), c.y.to_numpy()


def reference_mean(values, transform, geom, valid):
    """Area-weighted mean from shapely intersections of the footprint with every pixel."""
    rows, cols = np.mgrid[0:values.shape[0], 0:values.shape[1]]
    corners = [transform * (cols + dc, rows + dr) for dc, dr in ((0, 0), (1, 0), (1, 1), (0, 1))]
    ring = np.stack([np.stack([x, y], axis=-1) for x, y in corners], axis=-2)  # (rows, cols, 4, 2)
    pixels = shapely.polygons(ring.reshape(-1, 4, 2))
    cover = shapely.area(shapely.intersection(pixels, geom)).reshape(values.shape) * valid
    return float((cover * values).sum() / cover.sum()), float(cover.sum() / abs(transform.determinant))


def random_rectangles(rng, n, x0, y0, x1, y1, size=(0.3, 12.0)):
    cx, cy = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    length, width = rng.uniform(*size, n), rng.uniform(*size, n)
    angle = rng.uniform(0, np.pi, n)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * 0.5
    dx, dy = corners[None, :, 0] * length[:, None], corners[None, :, 1] * width[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return shapely.polygons(np.stack([cx[:, None] + dx * cos - dy * sin, cy[:, None] + dx * sin + dy * cos], -1))


# --- pure compute -------------------------------------------------------------------------

def test_rectangles_by_hand():
    geoms = [
        box_px(2, 2, 6, 5),          # columns 2–5, rows 2–4: 1000 + 35 + 3
        box_px(1.5, 0, 4.5, 2),      # half of column 1, columns 2, 3, half of column 4; rows 0, 1
        box_px(7.2, 3.1, 7.7, 3.6),  # inside pixel (row 3, column 7), a quarter of a pixel
        box_px(0, 0, 30, 20),        # the whole raster
    ]
    s = zonal_stats(gradient(), TRANSFORM, geoms, threshold=1035.0)
    # mean column (0.5·1 + 2 + 3 + 0.5·4) / 3 = 2.5; whole raster: mean column 14.5, mean row 9.5
    np.testing.assert_allclose(s.mean, [1038.0, 1025.5, 1073.0, 1154.5], rtol=1e-12)
    np.testing.assert_allclose(s.valid_px, [12.0, 6.0, 0.25, 600.0], rtol=1e-12)
    # columns 2, 3 hold 1020–1034 (below), columns 4, 5 hold 1040–1054 (above)
    np.testing.assert_allclose(s.frac_above[0], 0.5)
    assert s.frac_above[2] == 1.0 and not s.fallback.any()


def test_without_threshold_frac_is_nan():
    s = zonal_stats(gradient(), TRANSFORM, [box_px(2, 2, 6, 5)])
    assert np.isnan(s.frac_above).all() and s.mean[0] == pytest.approx(1038.0)


def test_holes_multipolygons_overlaps_and_winding():
    ring = box_px(2, 2, 12, 10).difference(box_px(4, 4, 8, 8))   # 80 − 16 px
    multi = shapely.MultiPolygon([box_px(2, 2, 4, 4), box_px(10, 2, 12, 4)])
    cw = shapely.orient_polygons(box_px(2, 2, 6, 5), exterior_cw=True)
    overlap = box_px(4, 2, 8, 5)                                 # shares columns 4–5 with box_px(2, 2, 6, 5)
    s = zonal_stats(gradient(), TRANSFORM, [ring, multi, cw, box_px(2, 2, 6, 5), overlap])
    # ring: Σ columns = 8·(2 + … + 11) − 4·(4 + … + 7) = 432, Σ rows = 10·(2 + … + 9) − 4·(4 + … + 7) = 352
    assert s.valid_px[0] == pytest.approx(64.0)
    assert s.mean[0] == pytest.approx(1000 + 10 * 432 / 64 + 352 / 64)
    assert s.mean[1] == pytest.approx(1000 + 10 * 6.5 + 2.5)    # columns 2, 3, 10, 11; rows 2, 3
    assert s.mean[2] == pytest.approx(1038.0)                   # clockwise exterior: the same
    # overlapping roofs are measured independently: both keep columns 4–5
    assert s.mean[3] == pytest.approx(1038.0) and s.mean[4] == pytest.approx(1000 + 55 + 3)


def test_nodata_edges_and_fallback():
    data = gradient()
    data[:, 5] = NODATA                               # column 5 is nodata
    data[10, 10] = np.nan                             # a NaN pixel
    geoms = [
        box_px(3, 0, 7, 2),                           # columns 3, 4, (5), 6
        box_px(5, 3, 6, 9),                           # only nodata
        box_px(-5, 0, 2, 2),                          # half off the raster's west edge: columns 0, 1
        box_px(-10, 0, -2, 5),                        # wholly off the raster
        box_px(10, 10, 11, 11),                       # only the NaN pixel
        shapely.Polygon([(WEST + 20.5, NORTH - 12.5), (WEST + 21.5, NORTH - 12.5), (WEST + 22.5, NORTH - 12.5)]),
    ]
    s = zonal_stats(np.ma.masked_equal(data, NODATA), TRANSFORM, geoms)
    assert s.mean[0] == pytest.approx(1000 + 10 * (3 + 4 + 6) / 3 + 0.5)
    assert s.valid_px[0] == pytest.approx(6.0)
    assert np.isnan(s.mean[1]) and s.valid_px[1] == 0 and not s.fallback[1]
    assert s.mean[2] == pytest.approx(1000 + 5 + 0.5) and s.valid_px[2] == pytest.approx(4.0)
    assert np.isnan(s.mean[3]) and np.isnan(s.mean[4])
    # a zero-area footprint has no area to weigh: the pixel under its centroid (row 12, column 21)
    assert s.fallback[5] and s.mean[5] == pytest.approx(1000 + 210 + 12)
    # the same through the nodata value instead of a mask
    s2 = zonal_stats(data, TRANSFORM, geoms, nodata=NODATA)
    np.testing.assert_array_equal(np.isnan(s.mean), np.isnan(s2.mean))
    np.testing.assert_allclose(s.mean[~np.isnan(s.mean)], s2.mean[~np.isnan(s2.mean)])


@pytest.mark.parametrize("transform", [TRANSFORM, TRANSFORM * Affine.rotation(25) * Affine.scale(1.5, 0.8)],
                         ids=["north-up", "rotated"])
def test_random_footprints_match_pixel_intersections(transform):
    rng = np.random.default_rng(3)
    data = (1000 + 100 * rng.standard_normal((ROWS, COLS))).astype("float32")
    data[rng.random(data.shape) < 0.05] = NODATA
    x0, y0, x1, y1 = shapely.bounds(shapely.polygons(np.array([[transform * (0, 0), transform * (COLS, 0),
                                                                 transform * (COLS, ROWS), transform * (0, ROWS)]])))[0]
    geoms = random_rectangles(rng, 40, x0, y0, x1, y1)
    geoms[0] = geoms[1].union(geoms[2])  # a multipolygon or a concave union
    s = zonal_stats(data, transform, geoms, nodata=NODATA)
    valid = data != NODATA
    checked = 0
    for i, g in enumerate(geoms):
        if s.fallback[i] or s.valid_px[i] < 1e-6:
            continue
        mean, area = reference_mean(data.astype(float), transform, g, valid)
        assert s.mean[i] == pytest.approx(mean, rel=1e-9)
        assert s.valid_px[i] == pytest.approx(area, rel=1e-7)
        checked += 1
    assert checked > 25


def test_bad_input():
    with pytest.raises(ZonalError) as err:
        zonal_stats(np.zeros((2, 2, 2)), TRANSFORM, [box_px(0, 0, 1, 1)])
    assert isinstance(err.value, PVSurveyError) and isinstance(err.value, ValueError)
    assert len(zonal_stats(gradient(), TRANSFORM, []).mean) == 0
    s = zonal_stats(gradient(), TRANSFORM, [None, shapely.Polygon(), shapely.Point(WEST + 1.5, NORTH - 2.5)])
    assert np.isnan(s.mean[:2]).all() and not s.fallback[:2].any()
    assert s.fallback[2] and s.mean[2] == 1000 + 10 + 2  # no area: the pixel under the point


# --- reading the raster tile by tile ----------------------------------------------------------

def test_zonal_from_raster_units_threshold_and_outside(tmp_path):
    info = open_irradiance(write_tif(tmp_path / "sebe.tif", gradient(), units_scale=1 / 365), "kWh/m2/day")
    geoms, lon, lat = to_wgs84([box_px(2, 2, 6, 5), box_px(-10, 0, -2, 5), box_px(7.2, 3.1, 7.7, 3.6)])
    ghi, frac, outside = zonal_ghi_kwh_per_m2_yr(info, geoms, lon, lat, threshold_kwh_per_m2_yr=1035.0)
    # the projection round trip moves corners by nanometres, not pixels
    assert ghi[0] == pytest.approx(1038.0, rel=1e-6) and frac[0] == pytest.approx(0.5, abs=1e-6)
    assert np.isnan(ghi[1]) and list(outside) == [False, True, False]
    assert ghi[2] == pytest.approx(1073.0, rel=1e-6)
    ghi2, frac2, _ = zonal_ghi_kwh_per_m2_yr(info, geoms, lon, lat)
    np.testing.assert_allclose(ghi2, ghi)
    assert np.isnan(frac2).all()
    assert zonal_ghi_kwh_per_m2_yr(info, [], [], [])[0].shape == (0,)
    with pytest.raises(ZonalError):
        zonal_ghi_kwh_per_m2_yr(info, geoms, lon[:1], lat)
    with pytest.raises(ZonalError):
        zonal_ghi_kwh_per_m2_yr(info, geoms, lon, lat, tile_px=0)


def test_tiles_give_the_same_result_as_one_block(tmp_path):
    rng = np.random.default_rng(7)
    data = (1000 + 100 * rng.standard_normal((ROWS, COLS))).astype("float32")
    data[4:6, :] = NODATA
    info = open_irradiance(write_tif(tmp_path / "noisy.tif", data), "kWh/m2/yr")
    utm = random_rectangles(rng, 60, WEST - 3, NORTH - ROWS - 3, WEST + COLS + 3, NORTH + 3)
    utm[0] = box_px(5.5, 1.5, 14.5, 9.5)  # straddles the tile lines at 8 (rows) and 8, 16 (columns) px
    geoms, lon, lat = to_wgs84(utm)
    one = zonal_ghi_kwh_per_m2_yr(info, geoms, lon, lat, 1000.0, tile_px=4096)
    for tile_px in (8, 3, 1):
        tiled = zonal_ghi_kwh_per_m2_yr(info, geoms, lon, lat, 1000.0, tile_px=tile_px)
        np.testing.assert_allclose(tiled[0], one[0], rtol=1e-9)
        np.testing.assert_allclose(tiled[1], one[1], atol=1e-9)
        np.testing.assert_array_equal(tiled[2], one[2])
    # and the same as the pure function on the whole block
    block = np.ma.masked_equal(data, NODATA)
    ref = zonal_stats(block, TRANSFORM, gpd.GeoSeries(geoms, crs=4326).to_crs(UTM51N).values, threshold=1000.0)
    np.testing.assert_allclose(one[0], ref.mean, rtol=1e-9)


def test_a_south_up_raster_reads_as_its_north_up_twin(tmp_path):
    """A GeoTIFF stored south-up (positive pixel height, as NetCDF conversions write them):
    the same bounds, zonal means and sampled values as the same pixels stored north-up."""
    rng = np.random.default_rng(3)
    data = (1000 + 100 * rng.standard_normal((ROWS, COLS))).astype("float32")
    north_up = open_irradiance(write_tif(tmp_path / "north.tif", data), "kWh/m2/yr")
    with rasterio.open(tmp_path / "south.tif", "w", driver="GTiff", width=COLS, height=ROWS, count=1,
                       dtype="float32", crs=UTM51N, nodata=NODATA,
                       transform=Affine(1.0, 0.0, WEST, 0.0, 1.0, NORTH - ROWS)) as dst:
        dst.write(data[::-1], 1)  # its first row is the southernmost
    south_up = open_irradiance(tmp_path / "south.tif", "kWh/m2/yr")
    assert south_up.bounds == north_up.bounds == (WEST, NORTH - ROWS, WEST + COLS, NORTH)
    geoms, lon, lat = to_wgs84(random_rectangles(rng, 40, WEST, NORTH - ROWS, WEST + COLS, NORTH))
    for read in (lambda info: zonal_ghi_kwh_per_m2_yr(info, geoms, lon, lat, 1000.0),
                 lambda info: sample_ghi_kwh_per_m2_yr(info, lon, lat)):
        for ours, theirs in zip(read(south_up), read(north_up)):
            np.testing.assert_array_equal(ours, theirs)
    _, lon, lat = to_wgs84([box_px(4.4, 7.4, 4.6, 7.6)])  # the middle of the pixel in row 7 (from the north), column 4
    assert sample_ghi_kwh_per_m2_yr(south_up, lon, lat)[0][0] == pytest.approx(float(data[7, 4]), rel=1e-6)


def test_high_resolution_helper(tmp_path, ghi_tif):
    fine = open_irradiance(write_tif(tmp_path / "fine.tif", gradient()), "kWh/m2/yr")
    assert raster_pixel_size_m(fine) == pytest.approx(1.0) and is_high_resolution(fine)
    coarse = open_irradiance(ghi_tif, "kWh/m2/day")  # 0.25° over Shanghai: ~27.7 km north-south
    assert raster_pixel_size_m(coarse) == pytest.approx(27_700, rel=0.01)
    assert not is_high_resolution(coarse)


def test_agrees_with_exactextract(tmp_path):
    if os.environ.get("CI") == "true":
        import exactextract  # on CI the comparison must run
    else:
        exactextract = pytest.importorskip("exactextract")
    rng = np.random.default_rng(11)
    r, c = np.mgrid[0:200, 0:300]
    data = (1100 + 150 * np.sin(c / 40) * np.cos(r / 30) + 60 * rng.standard_normal((200, 300))).astype("float32")
    data[50:60, 100:200] = NODATA
    path = tmp_path / "big.tif"
    with rasterio.open(path, "w", driver="GTiff", width=300, height=200, count=1, dtype="float32", crs=UTM51N,
                       transform=TRANSFORM, nodata=NODATA, tiled=True, blockxsize=64, blockysize=64,
                       compress="deflate") as dst:
        dst.write(data, 1)
    utm = random_rectangles(rng, 300, WEST, NORTH - 200, WEST + 300, NORTH, size=(2.0, 40.0))
    ref = exactextract.exact_extract(str(path), gpd.GeoDataFrame(geometry=utm, crs=UTM51N), ["mean"],
                                     output="pandas")["mean"].to_numpy(dtype=float)
    geoms, lon, lat = to_wgs84(utm)
    ours, _, _ = zonal_ghi_kwh_per_m2_yr(open_irradiance(path, "kWh/m2/yr"), geoms, lon, lat, tile_px=64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    rel = np.abs(ours / ref - 1)[~np.isnan(ref)]
    assert rel.max() < 0.01           # the bar
    assert np.median(rel) < 1e-6      # in fact the same definition, to rounding


def test_zonal_on_a_geographic_climatology(ghi_tif, roofs):
    """On the demo's 0.25° raster (EPSG:4326) roofs inside one cell get that cell's value."""
    info = open_irradiance(ghi_tif, "kWh/m2/day")
    geoms, lon, lat = to_wgs84(roofs.geometry.values)
    ghi, frac, outside = zonal_ghi_kwh_per_m2_yr(info, geoms, lon, lat, threshold_kwh_per_m2_yr=1000.0)
    np.testing.assert_allclose(ghi, 3.6 * 365, rtol=1e-6)
    assert (frac == 1.0).all() and not outside.any()


def test_mask_band_and_integer_raster(tmp_path):
    """A dataset mask (no nodata value) is honoured; integer rasters work too."""
    path = tmp_path / "masked.tif"
    data = gradient().astype("uint16")
    with rasterio.open(path, "w", driver="GTiff", width=COLS, height=ROWS, count=1, dtype="uint16", crs=UTM51N,
                       transform=TRANSFORM) as dst:
        dst.write(data, 1)
        mask = np.full((ROWS, COLS), 255, dtype="uint8")
        mask[:, 5] = 0  # column 5 masked out
        dst.write_mask(mask)
    info = open_irradiance(path, "kWh/m2/yr")
    geoms, lon, lat = to_wgs84([box_px(3, 0, 7, 2)])
    ghi, _, _ = zonal_ghi_kwh_per_m2_yr(info, geoms, lon, lat)
    assert ghi[0] == pytest.approx(1000 + 10 * (3 + 4 + 6) / 3 + 0.5, rel=1e-6)


def test_survey_uses_roof_means_on_a_rooftop_raster(tmp_path):
    """End to end: a 1 m raster switches the survey from centroid sampling to roof means."""
    from pvsurvey.config.loading import config_from_dict
    from pvsurvey.pipeline.run import run_survey

    x0, y0 = 339_000.0, 3_452_000.0
    # west half 1,000 kWh/m²/yr, east half 1,400: a roof across the middle averages its halves
    values = np.full((200, 200), 1000.0, dtype="float32")
    values[:, 100:] = 1400.0
    with rasterio.open(tmp_path / "roof.tif", "w", driver="GTiff", width=200, height=200, count=1, dtype="float32",
                       crs="EPSG:32651", transform=from_origin(x0, y0 + 200, 1.0, 1.0)) as dst:
        dst.write(values, 1)
    roofs = gpd.GeoDataFrame({"id": ["across", "west"]}, geometry=[
        shapely.box(x0 + 80, y0 + 50, x0 + 140, y0 + 90),    # 20 m west, 40 m east of the edge
        shapely.box(x0 + 10, y0 + 10, x0 + 50, y0 + 40)], crs="EPSG:32651")
    roofs.to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    cfg = config_from_dict({"name": "hires", "footprints": "roofs.gpkg",
                            "irradiance": {"ghi": "roof.tif", "units": "kWh/m2/yr"}}, tmp_path)
    result = run_survey(cfg, tmp_path / "run", serial=True)
    b = gpd.read_parquet(result.run_dir / "buildings.parquet").set_index("building_id")
    assert b.loc["across", "ghi_kwh_per_m2_yr"] == pytest.approx((20 * 1000 + 40 * 1400) / 60, rel=2e-3)
    assert b.loc["west", "ghi_kwh_per_m2_yr"] == pytest.approx(1000.0, rel=1e-6)
