"""Speed work (issue 17) that must not change a single value: each fast path
against the plain computation it replaces, compared exactly."""

import dataclasses
import os
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pvlib
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from pvsurvey.config.loading import config_from_dict
from pvsurvey.config.schema import Climate, System
from pvsurvey.io.vector import plan_partitions, read_partition
from pvsurvey.io.writers import write_geoparquet
from pvsurvey.model.roof import _in_metres, _rebuilt_in_metres, roof_areas_m2, simple_polygon_rings
from pvsurvey.model.shade import COMPILED_MIN_POINTS
from pvsurvey.model.solar_position import solar_positions
from pvsurvey.model.survey import utm_metres
from pvsurvey.model.weather_year import hourly_index
from pvsurvey.model.yield_table import SpecificYieldTable
from pvsurvey.pipeline import WORKER_MODULES
from pvsurvey.execution.executor import Executor
from pvsurvey.pipeline.inputs import may_have_heights, shade_halo, uses_compiled_shade

PLACES = [(31.125, 121.375), (30.875, 120.875), (-33.9, 18.4), (64.1, -21.9), (0.0, 179.9)]


def test_solar_positions_equal_pvlib_to_the_last_bit():
    times = hourly_index()
    ours = solar_positions(times, PLACES)
    for (lat, lon), frame in zip(PLACES, ours):
        reference = pvlib.solarposition.get_solarposition(times, lat, lon)
        pd.testing.assert_frame_equal(frame, reference, check_exact=True)


def test_yield_table_of_many_cells_equals_one_cell_at_a_time():
    lat = np.array([31.1, 31.1, 30.9, 31.6, 31.6, 30.6])
    lon = np.array([121.4, 121.4, 120.9, 121.9, 121.7, 121.1])
    ghi = np.array([1250.0, 1320.0, 1280.0, 1300.0, 1310.0, 1260.0])
    tilt, az = np.array([15.0, 15.0, 10.0, 15.0, 5.0, 15.0]), np.array([180.0, 180.0, 170.0, 180.0, 90.0, 180.0])
    mount = np.array(["rack", "rack", "flush", "rack", "flush", "rack"], dtype=object)
    together = SpecificYieldTable(System(), Climate(), 0.25)
    sy, cells = together.lookup(lat, lon, ghi, tilt, az, mount)
    assert len(set(cells)) == 5  # five weather cells in one lookup: their solar positions computed together
    for i in range(len(lat)):  # a fresh table per roof: pvlib's own get_solarposition for its one cell
        alone = SpecificYieldTable(System(), Climate(), 0.25)
        one, _ = alone.lookup(lat[i:i + 1], lon[i:i + 1], ghi[i:i + 1], tilt[i:i + 1], az[i:i + 1], mount[i:i + 1])
        assert one[0] == sy[i]
    assert "_solpos" not in together.__getstate__()


def _shapes():
    lon0, lat0 = 121.4, 31.2
    box = shapely.box(lon0, lat0, lon0 + 0.001, lat0 + 0.0005)
    ell = shapely.Polygon([(lon0, lat0), (lon0 + 0.001, lat0), (lon0 + 0.001, lat0 + 0.0003), (lon0 + 0.0004, lat0 + 0.0003),
                           (lon0 + 0.0004, lat0 + 0.001), (lon0, lat0 + 0.001)])
    holed = shapely.Polygon(box.exterior.coords, holes=[[(lon0 + 0.0002, lat0 + 0.0001), (lon0 + 0.0005, lat0 + 0.0001),
                                                        (lon0 + 0.0005, lat0 + 0.0003)]])
    multi = shapely.MultiPolygon([box, shapely.affinity.translate(box, 0.002, 0)])
    three_d = shapely.Polygon([(lon0, lat0, 5.0), (lon0 + 0.001, lat0, 5.0), (lon0, lat0 + 0.001, 5.0)])
    rotated = shapely.affinity.rotate(box, 33.0)
    return np.array([box, ell, holed, multi, three_d, rotated, ell], dtype=object)  # (no empty: cleaning sets those aside)


def test_metric_roofs_rebuilt_from_projected_rings_equal_a_second_projection():
    geoms = _shapes()
    lon, lat = np.full(len(geoms), 121.4), np.full(len(geoms), 31.2)
    to_metres = utm_metres(lon, lat)
    index, xy, counts = simple_polygon_rings(geoms)
    xy_m = np.column_stack(to_metres(xy[:, 0], xy[:, 1], np.repeat(index, counts)))
    for rows in (np.arange(len(geoms)), np.array([6, 1, 5, 0]), np.array([3, 2, 4])):
        fast = _rebuilt_in_metres(geoms, rows, index, xy_m, counts, to_metres)
        plain = _in_metres(geoms[rows], rows, to_metres)
        assert list(shapely.to_wkb(fast)) == list(shapely.to_wkb(plain))
    # and the areas and azimuths it feeds: a UTM rectangle 1e-3° × 5e-4° at 31.2° N is about 95 m × 55 m
    footprint, inset, azimuth = roof_areas_m2(geoms, 1.0, np.ones(len(geoms), dtype=bool), to_metres)
    assert 5000 < footprint[0] < 5500 and np.isfinite(azimuth[[0, 1, 5]]).all()


def test_the_shade_models_projected_vertices_give_what_projected_geometries_give():
    """``ProjectedVertices`` (each vertex projected once, no metric copy of a building)
    against every building rebuilt from its projected vertices: the same envelopes, walls
    and geometries, and the same answer to "is this point on the roof" as GEOS, on the
    boundary too (outside)."""
    from pvsurvey.model.shade import ProjectedVertices, local_metres, walls

    rng = np.random.default_rng(3)
    x, y = 121.4 + rng.uniform(0, 0.02, 200), 31.2 + rng.uniform(0, 0.02, 200)
    boxes = [shapely.affinity.rotate(shapely.box(a, b, a + rng.uniform(1e-4, 8e-4), b + rng.uniform(1e-4, 5e-4)),
                                     rng.uniform(0, 90)) for a, b in zip(x, y)]
    nan_vertex = shapely.from_wkt("POLYGON ((121.4 31.2, nan 31.2, 121.41 31.21, 121.4 31.2))")
    triangle = shapely.Polygon([(121.41, 31.21), (121.411, 31.21), (121.41, 31.211)])  # its envelope's centre: on it
    geoms = np.array(list(_shapes()) + boxes + [triangle, shapely.Polygon(), None, nan_vertex], dtype=object)
    transformer = local_metres(np.full(4, 121.4), np.full(4, 31.2))
    lon_lat = shapely.get_coordinates(geoms)  # the plain way: every building rebuilt from its projected vertices
    metric = shapely.set_coordinates(geoms.copy(), np.column_stack(transformer.transform(lon_lat[:, 0], lon_lat[:, 1])))
    vertices = ProjectedVertices(geoms, transformer)
    assert np.array_equal(vertices.bounds(), shapely.bounds(metric), equal_nan=True)
    solid = np.flatnonzero(~shapely.is_empty(geoms) & ~shapely.is_missing(geoms))
    for rows in (solid, solid[::-1], np.flatnonzero(vertices.simple & (vertices.count > 0))):
        assert list(shapely.to_wkb(vertices.geometries(rows))) == list(shapely.to_wkb(metric[rows]))
        for got, want in zip(vertices.walls(rows), walls(metric[rows])):
            assert np.array_equal(got, want, equal_nan=True)
    # points: inside, outside, envelope centres, on vertices, on edges, a hair off an edge
    rows = np.repeat(np.arange(len(geoms)), 6)
    box = shapely.bounds(metric)
    a, b = np.nan_to_num(box[rows, :2]), np.nan_to_num(box[rows, 2:])
    u = rng.uniform(-0.2, 1.2, (len(rows), 2))
    px, py = a[:, 0] + u[:, 0] * (b[:, 0] - a[:, 0]), a[:, 1] + u[:, 1] * (b[:, 1] - a[:, 1])
    px[::6], py[::6] = (a[::6, 0] + b[::6, 0]) / 2, (a[::6, 1] + b[::6, 1]) / 2
    first = vertices.first[rows[1::6]]
    px[1::6], py[1::6] = vertices.xy[first].T if len(vertices.xy) else (0, 0)
    mid = 0.5 * (vertices.xy[first] + vertices.xy[np.minimum(first + 1, len(vertices.xy) - 1)])
    px[2::6], py[2::6] = mid.T
    px[3::6], py[3::6] = mid[:, 0] + 1e-7, mid[:, 1] - 1e-7
    got = vertices.contains(rows, px, py)
    want = shapely.contains_xy(metric[rows], px, py)
    assert np.array_equal(got, want)
    on_boundary = shapely.distance(shapely.boundary(metric[rows]), shapely.points(px, py)) <= 1e-6
    assert 100 < got.sum() < len(rows) - 100 and on_boundary.sum() > 300  # GEOS's answers there are the ones taken


def _footprints(path, columns: dict):
    frame = gpd.GeoDataFrame(columns, geometry=[shapely.box(121.4 + i * 1e-3, 31.2, 121.4005 + i * 1e-3, 31.2005)
                                                for i in range(4)], crs=4326)
    frame.to_parquet(path, row_group_size=2)
    return path


def test_shade_halo_only_where_a_file_has_heights(tmp_path):
    cfg = config_from_dict({"name": "halo", "footprints": "x.parquet", "irradiance": {"ghi": "g.tif"}},
                           tmp_path)
    plain = plan_partitions(_footprints(tmp_path / "plain.parquet", {"id": list("abcd")}), 2)
    assert len(plain) == 2 and not may_have_heights(plain)
    assert shade_halo(cfg, plain) == (None, None, None)  # no height, no storeys: nothing to trace
    tall = plan_partitions(_footprints(tmp_path / "tall.parquet", {"id": list("abcd"), "height": [9.0] * 4}), 2)
    assert may_have_heights(tall)
    halo, grid, strips = shade_halo(cfg, tall)
    assert halo == {0: [1], 1: [0]} and grid is not None  # 1 m apart: each shades the other
    assert {q: {p: list(rows) for p, rows in s.items()} for q, s in strips.items()} == {0: {1: [0, 1]}, 1: {0: [0, 1]}}
    storeys = plan_partitions(_footprints(tmp_path / "storeys.parquet", {"id": list("abcd"), "层数": [3] * 4}), 2)
    assert may_have_heights(storeys)
    # a column the config renames to height_m (footprints.columns): heights after the rename
    odd = plan_partitions(_footprints(tmp_path / "odd.parquet", {"id": list("abcd"), "h_mean": [9.0] * 4}), 2)
    assert not may_have_heights(odd)
    assert may_have_heights([dataclasses.replace(p, columns=(("h_mean", "height_m"),)) for p in odd])
    # the compiled kernel (warmed up on the workers ahead) only with heights and a partition large enough
    assert not uses_compiled_shade(cfg, tall)  # partitions of 2 rows: numpy traces them
    big = [dataclasses.replace(p, stop=p.start + COMPILED_MIN_POINTS) for p in tall]
    assert uses_compiled_shade(cfg, big) and not uses_compiled_shade(cfg, [dataclasses.replace(p, stop=-1) for p in plain])
    assert uses_compiled_shade(cfg, [dataclasses.replace(p, stop=-1) for p in tall])  # rows not counted yet
    off = cfg.model_copy(update={"shade": cfg.shade.model_copy(update={"enabled": False})})
    assert not uses_compiled_shade(off, big)


def test_each_task_reads_only_the_strip_of_its_neighbours_within_shade_reach(tmp_path):
    """Six halls in a west-east row, about 95 m apart (edges 47 m apart), in two partitions of
    three; with a 50 m reach (grid cells of 50 m) the strip of each partition that the other's
    task reads is the hall nearest to it, and only its row is decoded, with its own source_row."""
    cfg = config_from_dict({"name": "strips", "footprints": "x.parquet", "irradiance": {"ghi": "g.tif"},
                            "shade": {"max_distance_m": 50.0}}, tmp_path)
    frame = gpd.GeoDataFrame({"id": list("abcdef"), "height_m": [9.0, 9.0, 30.0, 30.0, 9.0, 9.0]},
                             geometry=[shapely.box(121.4 + i * 1e-3, 31.2, 121.4005 + i * 1e-3, 31.2005)
                                       for i in range(6)], crs=4326)
    frame.to_parquet(tmp_path / "row.parquet", row_group_size=3)
    parts = plan_partitions(tmp_path / "row.parquet", 3)
    halo, _, strips = shade_halo(cfg, parts)
    assert halo == {0: [1], 1: [0]}
    assert {q: {p: list(rows) for p, rows in s.items()} for q, s in strips.items()} == {0: {1: [0]}, 1: {0: [2]}}
    strip = read_partition(parts[0], None, strips[1][0])
    assert list(strip["id"]) == ["c"] and list(strip["source_row"]) == [2]
    assert shapely.equals(strip.geometry.values[0], frame.geometry.values[2])
    whole = read_partition(parts[1])
    assert list(whole["id"]) == ["d", "e", "f"] and list(whole["source_row"]) == [3, 4, 5]


def test_row_groups_kept_for_the_neighbours_tasks_read_as_the_file_reads(tmp_path):
    """A worker keeps the row groups it decoded (keep=True) for the tasks of the neighbouring
    partitions: the same frames as a plain read, strips included; a file rewritten in place is
    read again, and the least recently used row groups go first once the budget is spent."""
    from pvsurvey.io.row_groups import KEPT, RowGroupCache

    path = tmp_path / "row.parquet"
    frame = gpd.GeoDataFrame({"id": list("abcdef"), "height_m": [9.0, 9.0, 30.0, 30.0, 9.0, 9.0]},
                             geometry=[shapely.box(121.4 + i * 1e-3, 31.2, 121.4005 + i * 1e-3, 31.2005)
                                       for i in range(6)], crs=4326)
    frame.to_parquet(path, row_group_size=3)
    parts = plan_partitions(path, 3)
    KEPT.clear()
    for rows in (None, [2], [0, 2], None):  # the second read of each row group comes from KEPT
        for part in parts:
            pd.testing.assert_frame_equal(read_partition(part, None, rows, keep=True), read_partition(part, None, rows))
    assert len(KEPT) == 2
    frame.assign(height_m=1.0).to_parquet(path, row_group_size=3)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # however coarse the file system's clock
    assert list(read_partition(parts[0], None, keep=True)["height_m"]) == [1.0] * 3
    assert len(KEPT) == 3  # kept beside the old file's, which no read will name again
    KEPT.clear()

    reads = []
    small = RowGroupCache(max_bytes=250)
    table = pa.table({"x": np.arange(10.0)})  # 80 bytes of Arrow data each

    def read(name):
        return lambda: (reads.append(name), (table.schema, table))[1]

    for name in ("a", "b", "c", "a", "d", "b"):  # three fit: d drops b (a was used again after it)
        small.read(path, [ord(name)], read(name))
    assert reads == ["a", "b", "c", "d", "b"] and len(small) == 3


def test_intermediate_parquet_reads_back_equal(tmp_path):
    frame = gpd.GeoDataFrame({"building_id": ["a", "b", None], "usable_area_m2": [1.5, np.nan, 3.0],
                              "park_id": pd.array(["P1", None, "P1"], dtype="string")},
                             geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 3), None], crs=4326)
    write_geoparquet(frame, tmp_path / "final.parquet")
    write_geoparquet(frame, tmp_path / "part.parquet", intermediate=True)
    final, part = pq.read_table(tmp_path / "final.parquet"), pq.read_table(tmp_path / "part.parquet")
    assert part.equals(final) and part.schema.metadata[b"geo"] == final.schema.metadata[b"geo"]
    meta = pq.ParquetFile(tmp_path / "part.parquet").metadata.row_group(0).column(0)
    assert meta.compression == "LZ4" and not meta.is_stats_set
    pd.testing.assert_frame_equal(gpd.read_parquet(tmp_path / "part.parquet"), frame)


def test_outputs_dictionary_encode_their_text_columns_only(tmp_path):
    """Parquet outputs: dictionary pages for text (few distinct values), plain pages for
    numbers and geometries (nearly all distinct); the file reads back equal."""
    rng = np.random.default_rng(3)
    n = 2000
    frame = gpd.GeoDataFrame({"park_id": pd.array(rng.choice(["P1", "P2", None], n), dtype="string"),
                              "usable_area_m2": rng.uniform(10, 5000, n)},
                             geometry=[shapely.box(x, 0, x + 1, 1) for x in range(n)], crs=4326)
    write_geoparquet(frame, tmp_path / "out.parquet")
    group = pq.ParquetFile(tmp_path / "out.parquet").metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: set(group.column(i).encodings) for i in range(group.num_columns)}
    assert "RLE_DICTIONARY" in encodings["park_id"]
    assert "RLE_DICTIONARY" not in encodings["usable_area_m2"] and "RLE_DICTIONARY" not in encodings["geometry"]
    pd.testing.assert_frame_equal(gpd.read_parquet(tmp_path / "out.parquet"), frame)


@pytest.mark.cluster
def test_workers_start_early_only_for_a_full_local_survey_of_many_rows(tmp_path):
    from pvsurvey.cli.run import footprint_rows, start_workers_early

    path = tmp_path / "footprints.parquet"
    write_geoparquet(gpd.GeoDataFrame({"id": ["a", "b", "c"]}, geometry=[shapely.box(121, 31, 121.001, 31.001)] * 3,
                                      crs=4326), path)
    assert footprint_rows(path) == 3 and footprint_rows(tmp_path) == 3
    assert footprint_rows(tmp_path / "missing.parquet") is None and footprint_rows("s3://bucket/f.parquet") is None
    cfg = config_from_dict({"name": "early", "footprints": str(path), "irradiance": {"ghi": "ghi.tif"},
                            "parallel": {"in_process_max_rows": 2}}, tmp_path)
    assert start_workers_early(cfg, None, 1, False, full=False) is None  # the cache may spare every row
    assert start_workers_early(cfg, None, 1, True, full=True) is None  # --serial
    assert start_workers_early(cfg, "tcp://10.0.0.5:8786", 1, False, full=True) is None  # a cluster of its own
    small = cfg.model_copy(update={"parallel": cfg.parallel.model_copy(update={"in_process_max_rows": 3})})
    assert start_workers_early(small, None, 1, False, full=True) is None  # kept in this process anyway
    executor = start_workers_early(cfg, None, 1, False, full=True)
    try:
        assert executor.distributes(3) and executor.preload == WORKER_MODULES
        # asked while they boot, a warm-up runs on the workers once they are up (the shade kernel's, in a run)
        executor.warm_up(lambda: __import__("os").environ.__setitem__("PVSURVEY_TEST_WARMED", "yes"))
        client = executor._client()  # the workers booted with the task code already imported
        assert all(client.run(lambda: "pvsurvey.pipeline.survey_task" in __import__("sys").modules).values())
        deadline = time.monotonic() + 30
        while not all(v == "yes" for v in client.run(lambda: __import__("os").environ.get("PVSURVEY_TEST_WARMED"))
                      .values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(v == "yes" for v in client.run(lambda: __import__("os").environ.get("PVSURVEY_TEST_WARMED"))
                   .values())
        assert "PVSURVEY_TEST_WARMED" not in os.environ  # not in this process
    finally:
        executor.close()
    here = []  # without workers (serial, or every round in this process) it runs here
    Executor(serial=True).warm_up(lambda: here.append("warmed"))
    assert here == ["warmed"]


def test_a_run_that_warms_the_kernel_up_gives_the_same_survey(tmp_path, monkeypatch, demo_run):
    """A run that will trace shade in the compiled kernel compiles (or loads) it ahead
    in a background thread, and each task waits for it before surveying its roofs: the
    demo (which has heights) with the threshold lowered so that the warm-up runs, in
    one process, ends with the thread done and the same buildings and candidates."""
    import pvsurvey.pipeline.inputs as inputs
    from pvsurvey.pipeline import kernel_warmup
    from pvsurvey.pipeline.run import run_survey

    monkeypatch.setattr(inputs, "COMPILED_MIN_POINTS", 0)
    monkeypatch.setattr(kernel_warmup, "_thread", None)
    warmed = run_survey(None, tmp_path / "demo", serial=True)
    assert kernel_warmup._thread is not None and not kernel_warmup._thread.is_alive()
    for name in ("buildings.parquet", "candidates.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(warmed.run_dir / name), pd.read_parquet(demo_run.run_dir / name))
    assert warmed.manifest["counts"] == demo_run.manifest["counts"]


def test_the_halo_reads_a_files_bbox_columns_where_it_has_them(tmp_path, monkeypatch):
    """A GeoParquet file with a bbox covering (GeoParquet 1.1: geopandas' float64 columns,
    Overture's float32 ones) gives the halo its envelopes without decoding a geometry:
    the same neighbours and strips as the outlines give (float64), or the same and
    perhaps a few more rows (float32 boxes are widened by a step to hold the outlines)."""
    import json

    import pyarrow as pa

    import pvsurvey.pipeline.inputs as inputs
    from pvsurvey.io.vector import covering_bounds_wgs84

    rng = np.random.default_rng(3)
    x, y = 121.4 + rng.uniform(0, 0.03, 600), 31.2 + rng.uniform(0, 0.03, 600)
    frame = gpd.GeoDataFrame({"id": np.arange(600).astype(str), "height": rng.uniform(5, 60, 600)},
                             geometry=shapely.box(x, y, x + rng.uniform(1e-4, 6e-4, 600), y + 3e-4), crs=4326)
    cfg = config_from_dict({"name": "bbox", "footprints": "x.parquet", "irradiance": {"ghi": "g.tif"}}, tmp_path)
    frame.to_parquet(tmp_path / "plain.parquet", row_group_size=100)
    frame.to_parquet(tmp_path / "covering.parquet", row_group_size=100, write_covering_bbox=True)
    # Overture's layout: a float32 bbox struct (rounded to nearest), declared as the covering
    true = shapely.bounds(frame.geometry.values)
    table = pa.table(frame.drop(columns="geometry").to_dict("list") | {
        "bbox": pa.StructArray.from_arrays([pa.array(true[:, i].astype(np.float32)) for i in (0, 2, 1, 3)],
                                           names=["xmin", "xmax", "ymin", "ymax"]),
        "geometry": shapely.to_wkb(frame.geometry.values)})
    covering = {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"], "covering": {"bbox": covering}}}}
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo).encode()}), tmp_path / "overture.parquet",
                   row_group_size=100)

    def halo(name):
        neighbours, grid, strips = shade_halo(cfg, plan_partitions(tmp_path / name, 200))
        return neighbours, grid, {q: {p: set(rows.tolist()) for p, rows in s.items()} for q, s in strips.items()}

    expected = halo("plain.parquet")
    assert covering_bounds_wgs84(plan_partitions(tmp_path / "plain.parquet", 200)[0]) is None
    overture_parts = plan_partitions(tmp_path / "overture.parquet", 200)
    boxes = np.concatenate([covering_bounds_wgs84(p) for p in overture_parts])
    assert (boxes[:, :2] <= true[:, :2]).all() and (boxes[:, 2:] >= true[:, 2:]).all()  # they hold the outlines
    assert np.abs(boxes - true).max() < 1e-4
    # a task reads the rows without the boxes (the geometry has them): the same frame as without a covering
    plain_rows = read_partition(plan_partitions(tmp_path / "plain.parquet", 200)[1])
    for name in ("covering.parquet", "overture.parquet"):
        rows = read_partition(plan_partitions(tmp_path / name, 200)[1])
        assert "bbox" not in rows.columns
        pd.testing.assert_frame_equal(rows, plain_rows)
    monkeypatch.setattr(inputs, "geoframe_from_arrow", None)  # no geometry decoded: only the bbox columns serve
    assert halo("covering.parquet") == expected
    neighbours, grid, strips = halo("overture.parquet")
    # (the grid's cells follow the northernmost box: a widened one moves them by 1e-8 of their size)
    assert grid == pytest.approx(expected[1], rel=1e-7)
    assert all(set(neighbours[q]) >= set(expected[0][q]) for q in expected[0])
    assert all(strips[q][p] >= rows for q, s in expected[2].items() for p, rows in s.items())
    assert sum(len(r) for s in strips.values() for r in s.values()) <= 1.1 * sum(
        len(r) for s in expected[2].values() for r in s.values())


def test_numbers_read_from_distinct_values_equal_a_regex_on_every_row():
    """``_numeric`` parses each distinct value once; the same numbers as the regex on
    every row (the plain path), whatever the column's type, missing values included."""
    import pyarrow as pa

    from pvsurvey.model.footprints import _numeric

    def every_row(series):
        text = series.astype("string").str.extract(r"(-?\d+\.?\d*)", expand=False)
        return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    columns = [
        pd.Series(["12", "12m", None, "三层", "-3", "1e5", "", " 7.5 ", "12", "9 米"] * 3,
                  dtype=pd.ArrowDtype(pa.large_string())),
        pd.Series(["12", 12, 12.0, None, np.nan, pd.NA, "x", 1e-5, 1e20, np.inf, True], dtype=object),
        pd.Series([1.5, np.nan, 1.5, 1e-7, 3e22, np.inf, 0.1 + 0.2, -4.0]),
        pd.Series([3, None, 3, 4], dtype="Int64"),
        pd.Series(["a", "5", "5", None], dtype="category"),
        pd.Series(["4", "5", None, "4"], dtype="string"),
        pd.Series([], dtype=object),
    ]
    for series in columns:
        got, want = _numeric(series, len(series)), every_row(series)
        assert np.array_equal(got, want, equal_nan=True), (series.dtype, got, want)
    assert np.array_equal(_numeric(columns[0], 30)[:10], [12, 12, np.nan, np.nan, -3, 1, np.nan, 7.5, 12, 9],
                          equal_nan=True)
    assert np.isnan(_numeric(None, 3)).all()


def test_the_halo_boxes_read_from_wkb_bytes_equal_the_decoded_outlines_bounds(tmp_path):
    """``wkb_bounds_wgs84`` (geoarrow-c's box kernel on the WKB bytes) gives each row the
    envelope shapely gives its decoded outline, NaN for a null or empty one; it declines
    (None) a file in metres and one with a row it cannot parse, and the halo then
    decodes as before; and it leaves pyarrow's reading of GeoParquet as it was."""
    import json

    import pyarrow as pa

    import pvsurvey.pipeline.inputs as inputs
    from pvsurvey.io.vector import wkb_bounds_wgs84

    rng = np.random.default_rng(5)
    x, y = 121.4 + rng.uniform(0, 0.03, 300), 31.2 + rng.uniform(0, 0.03, 300)
    geoms = list(shapely.box(x, y, x + rng.uniform(1e-4, 6e-4, 300), y + 3e-4))
    geoms[3] = shapely.Polygon()  # empty
    geoms[4] = None
    geoms[5] = shapely.MultiPolygon([shapely.box(121.40, 31.20, 121.401, 31.201),
                                     shapely.box(121.45, 31.25, 121.451, 31.2504)])
    geoms[6] = shapely.from_wkt("POLYGON Z ((121.4 31.2 5, 121.41 31.2 6, 121.41 31.21 7, 121.4 31.2 5))")
    geoms[7] = shapely.box(121.4, 31.2, 121.42, 31.22).difference(shapely.box(121.405, 31.205, 121.41, 31.21))
    geoms[8] = shapely.from_wkt("POLYGON ((121.4 31.2, nan 31.2, 121.41 31.21, 121.4 31.2))")  # bounds skip NaN
    frame = gpd.GeoDataFrame({"id": np.arange(300).astype(str)}, geometry=geoms, crs=4326)
    frame.to_parquet(tmp_path / "lonlat.parquet", row_group_size=70)
    frame.to_crs(32651).to_parquet(tmp_path / "utm.parquet", row_group_size=70)
    for part in plan_partitions(tmp_path / "lonlat.parquet", 140):
        got = wkb_bounds_wgs84(part)
        decoded = shapely.bounds(read_partition(part).geometry.values)
        assert got.shape == decoded.shape and np.array_equal(got, decoded, equal_nan=True)
    whole = wkb_bounds_wgs84(plan_partitions(tmp_path / "lonlat.parquet", 1000)[0])
    assert np.isnan(whole[[3, 4]]).all() and np.array_equal(whole[5], [121.40, 31.20, 121.451, 31.2504])
    assert np.array_equal(whole[8], [121.4, 31.2, 121.41, 31.21])
    assert wkb_bounds_wgs84(plan_partitions(tmp_path / "utm.parquet", 1000)[0]) is None
    # a row of bytes that are no WKB: declined here; the decoding path (one line, or the row set aside) takes it
    table = pq.read_table(tmp_path / "lonlat.parquet")
    wkb = table.column("geometry").to_pylist()
    wkb[10] = b"\x01\x03\x00\x00\x00\xff\xff"
    broken = table.set_column(table.schema.get_field_index("geometry"), table.schema.field("geometry"),
                              pa.array(wkb, pa.binary()))
    pq.write_table(broken, tmp_path / "broken.parquet")
    assert wkb_bounds_wgs84(plan_partitions(tmp_path / "broken.parquet", 1000)[0]) is None
    assert pq.read_schema(tmp_path / "lonlat.parquet").field("geometry").type == pa.binary()
    # the halo step takes the fast path where it can, with the same neighbours and strips as decoding gives
    cfg = config_from_dict({"name": "wkb", "footprints": "x.parquet", "irradiance": {"ghi": "g.tif"}}, tmp_path)
    frame["height"] = rng.uniform(5, 60, 300)
    frame.to_parquet(tmp_path / "heights.parquet", row_group_size=50)
    parts = plan_partitions(tmp_path / "heights.parquet", 100)
    fast = shade_halo(cfg, parts)
    assert any(fast[0].values())  # the partitions have neighbours
    original = inputs.wkb_bounds_wgs84
    try:
        inputs.wkb_bounds_wgs84 = lambda part: None
        slow = shade_halo(cfg, parts)
    finally:
        inputs.wkb_bounds_wgs84 = original
    assert fast[0] == slow[0] and fast[1] == slow[1]
    assert {q: {p: r.tolist() for p, r in s.items()} for q, s in fast[2].items()} == \
        {q: {p: r.tolist() for p, r in s.items()} for q, s in slow[2].items()}
