"""Partitions of about ``parallel.partition_rows`` whatever the file's layout: a
GeoParquet file of one huge row group and an OSM extract are rewritten once into
the run cache, and surveyed as the same rows in small row groups would be."""

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from conftest import REPO, roofs_utm, write_ghi_raster, write_osm_pbf
from pvsurvey.config.loading import load_config
from pvsurvey.io.vector import (needs_rewriting, plan_partitions, plan_rewritten, read_partition, read_vector,
                                write_partitioned_geoparquet)
from pvsurvey.pipeline.run import run_survey
from pvsurvey.store.cache import cache_dir

DEMO = REPO / "data" / "demo" / "footprints.parquet"


def _demo_as(folder: Path, row_group_size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    gdf = gpd.read_parquet(DEMO)
    path = folder / "footprints.parquet"
    gdf.to_parquet(path, row_group_size=row_group_size)
    return path


def test_a_one_row_group_file_is_rewritten_in_partitions_naming_the_input(tmp_path):
    one = _demo_as(tmp_path / "one", 10**6)
    assert pq.ParquetFile(one).metadata.num_row_groups == 1
    assert needs_rewriting(one, 500) and not needs_rewriting(one, 3000)  # 3,881 rows ≤ 1.5 × 3,000
    folder = write_partitioned_geoparquet(one, tmp_path / "cache" / "input-x", 500)
    parts = plan_rewritten(folder, one, 500)
    assert [(p.start, p.stop) for p in parts] == [(s, min(s + 500, 3881)) for s in range(0, 3881, 500)]
    assert all(p.named == one and p.path != one and p.file_start == 0 for p in parts)
    direct = read_vector(one)
    read = pd.concat([read_partition(p) for p in parts], ignore_index=True)
    assert list(read["source_row"]) == list(range(3881))
    pd.testing.assert_frame_equal(read.drop(columns="geometry"), direct.drop(columns="geometry"))
    assert read.geometry.geom_equals_exact(direct.geometry, tolerance=0).all()
    # rows decoded alike, including the demo's broken ones
    assert read["geometry"].isna().sum() == direct["geometry"].isna().sum()


def test_an_osm_extract_is_rewritten_as_gdal_reads_it(tmp_path):
    roofs = _many_roofs(40)
    pbf = write_osm_pbf(tmp_path / "many.osm.pbf", roofs)
    assert needs_rewriting(pbf, 10)
    assert len(plan_partitions(pbf, 10)) == 1  # read as it is: one partition
    parts = plan_rewritten(write_partitioned_geoparquet(pbf, tmp_path / "cache" / "input-y", 10), pbf, 10)
    assert len(parts) == 4 and all(p.named == pbf for p in parts)
    direct = read_vector(pbf)
    read = pd.concat([read_partition(p) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(read.drop(columns="geometry"), direct.drop(columns="geometry"))
    assert read.geometry.geom_equals_exact(direct.geometry, tolerance=0).all()


def _many_roofs(n):
    base = roofs_utm()
    frames = []
    for k in range((n + 2) // 3):
        moved = base.copy()
        moved.geometry = moved.geometry.translate(xoff=(k % 10) * 500.0, yoff=(k // 10) * 300.0)
        frames.append(moved)
    gdf = pd.concat(frames, ignore_index=True).iloc[:n].reset_index(drop=True)
    gdf["id"] = [f"R{i}" for i in range(n)]
    gdf.loc[5, "geometry"] = shapely.box(339_000, 3_452_000, 339_000.5, 3_452_000.5)  # too small: rejected
    return gpd.GeoDataFrame(gdf, crs=base.crs).to_crs(4326)


def _demo_config(footprints: Path, partition_rows: int):
    cfg = load_config()
    return cfg.model_copy(update={
        "footprints": cfg.footprints.model_copy(update={"path": footprints}),
        "parallel": cfg.parallel.model_copy(update={"partition_rows": partition_rows})})


def _outputs(run_dir: Path, source: Path):
    buildings = gpd.read_parquet(run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    rejected = pd.read_parquet(run_dir / "rejected.parquet").sort_values("source_row").reset_index(drop=True)
    assert set(rejected["source_file"]) <= {str(source)}
    for frame in (buildings, rejected):
        if "source_file" in frame:
            frame["source_file"] = frame["source_file"].map(lambda s: Path(s).name)
    return buildings, rejected, pd.read_csv(run_dir / "parks.csv")


def _assert_same_outputs(a, b):
    pd.testing.assert_frame_equal(a[0].drop(columns="geometry"), b[0].drop(columns="geometry"))
    assert a[0].geometry.geom_equals_exact(b[0].geometry, tolerance=0).all()
    pd.testing.assert_frame_equal(a[1], b[1])
    pd.testing.assert_frame_equal(a[2], b[2])


@pytest.mark.slow
def test_a_one_row_group_geoparquet_is_surveyed_like_small_row_groups_and_rewritten_once(tmp_path):
    small = _demo_as(tmp_path / "small", 500)
    one = _demo_as(tmp_path / "one", 10**6)
    ref = run_survey(_demo_config(small, 500), tmp_path / "ref", serial=True)
    assert ref.manifest["execution"]["partitions"] == 8 and ref.manifest["execution"]["footprints_rewritten"] is None
    first = run_survey(_demo_config(one, 500), tmp_path / "run", serial=True)
    rewritten = first.manifest["execution"]["footprints_rewritten"]
    assert first.manifest["execution"]["partitions"] == 8
    assert rewritten["written_now"] and rewritten["files"] == 8
    assert first.manifest["inputs"]["footprints"]["path"] == str(one)
    expected = _outputs(ref.run_dir, small)
    _assert_same_outputs(_outputs(first.run_dir, one), expected)
    rejected = pd.read_parquet(first.run_dir / "rejected.parquet")
    assert len(rejected) and set(rejected["source_file"]) == {str(one)}
    assert (cache_dir(first.run_dir) / rewritten["entry"]).is_dir()

    second = run_survey(_demo_config(one, 500), tmp_path / "run", serial=True)
    again = second.manifest["execution"]["footprints_rewritten"]
    assert again["entry"] == rewritten["entry"] and not again["written_now"]  # kept by the cache's pruning
    assert second.manifest["partitions"]["reused"] == 8  # cache keys name the input, not the rewritten copy
    assert (cache_dir(first.run_dir) / rewritten["entry"]).is_dir()
    _assert_same_outputs(_outputs(second.run_dir, one), expected)


@pytest.mark.slow
def test_an_osm_extract_in_several_partitions_is_surveyed_like_one(tmp_path):
    pbf = write_osm_pbf(tmp_path / "many.osm.pbf", _many_roofs(40))
    write_ghi_raster(tmp_path / "ghi.tif")
    cfg = load_config()
    cfg = cfg.model_copy(update={"footprints": cfg.footprints.model_copy(update={"path": pbf}),
                                 "parks": None, "installations": None,
                                 "irradiance": cfg.irradiance.model_copy(update={"ghi": tmp_path / "ghi.tif"})})
    runs = {}
    for rows in (1000, 10):
        c = cfg.model_copy(update={"parallel": cfg.parallel.model_copy(update={"partition_rows": rows})})
        runs[rows] = run_survey(c, tmp_path / f"run{rows}", serial=True)
    assert runs[1000].manifest["execution"]["partitions"] == 1 and runs[10].manifest["execution"]["partitions"] == 4
    many, one = _outputs(runs[10].run_dir, pbf), _outputs(runs[1000].run_dir, pbf)
    assert len(many[1]) >= 1 and list(many[1]["source_row"]) == [5]
    pd.testing.assert_frame_equal(many[0].drop(columns="geometry"), one[0].drop(columns="geometry"))
    pd.testing.assert_frame_equal(many[1], one[1])
    counts = runs[10].manifest["counts"]
    assert counts["input_rows"] == 40 == counts["accepted"] + counts["rejected"]
    assert json.dumps(runs[10].manifest["execution"]["footprints_rewritten"])  # recorded


def test_a_big_geopackage_layer_splits_by_feature_offset_without_a_rewrite(tmp_path):
    gdf = _many_roofs(40)
    path = tmp_path / "many.gpkg"
    gdf.to_file(path, engine="pyogrio")
    import pyogrio

    # GDAL seeks to a GeoPackage feature by offset directly: no need to rewrite the layer
    assert pyogrio.read_info(path)["capabilities"]["fast_set_next_by_index"]
    assert not needs_rewriting(path, 10)
    parts = plan_partitions(path, 10)
    assert [(p.start, p.stop) for p in parts] == [(0, 10), (10, 20), (20, 30), (30, 40)]
    read = pd.concat([read_partition(p) for p in parts], ignore_index=True)
    assert list(read["source_row"]) == list(range(40)) and list(read["id"]) == list(gdf["id"])
