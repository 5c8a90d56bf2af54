"""Each footprint format through its real writer and our reader."""

import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import roofs_utm, write_osm_pbf
from pvsurvey.errors import CRSError, InputFileError
from pvsurvey.io.vector import duplicate_id_rows, plan_partitions, read_partition, read_vector
from pvsurvey.model.footprints import clean_footprints

EXPECTED_AREAS = [5000.0, 1200.0, 200.0]


def _areas(gdf):
    return gdf.to_crs("EPSG:32651").area.to_numpy()


def write(fmt, gdf, path):
    if fmt == "parquet":
        gdf.to_parquet(path)
    elif fmt == "csv":  # the Google Open Buildings form: WGS84 WKT in a 'geometry' column
        df = pd.DataFrame(gdf.to_crs(4326).drop(columns="geometry"))
        df["geometry"] = gdf.to_crs(4326).geometry.to_wkt(rounding_precision=10)
        df.to_csv(path, index=False)
    elif fmt == "pbf":
        write_osm_pbf(path, gdf.to_crs(4326))
    else:
        driver = {"gpkg": "GPKG", "geojson": "GeoJSON", "geojsonl": "GeoJSONSeq", "shp": "ESRI Shapefile",
                  "fgb": "FlatGeobuf"}[fmt]
        gdf.to_file(path, driver=driver, engine="pyogrio")
    return path


@pytest.mark.parametrize("fmt", ["parquet", "gpkg", "geojson", "geojsonl", "shp", "fgb", "csv", "pbf"])
def test_each_format_reads_back_with_ids_areas_and_attributes(tmp_path, fmt):
    src = roofs_utm()
    if fmt in ("geojson", "geojsonl"):
        src = src.to_crs(4326)  # RFC 7946 GeoJSON is WGS84
    path = write(fmt, src, tmp_path / f"roofs.{'osm.pbf' if fmt == 'pbf' else fmt}")
    declared = "wgs84" if fmt == "csv" else None
    gdf = read_vector(path, declared)
    assert gdf.crs.to_epsg() == 4326
    assert len(gdf) == 3 and list(gdf["source_row"]) == [0, 1, 2]
    accepted, rejected, _ = clean_footprints(gdf, str(path))
    if fmt == "fgb":  # FlatGeobuf's spatial index reorders features
        accepted = accepted.sort_values("building_id").reset_index(drop=True)
        gdf = gdf.sort_values("id").reset_index(drop=True)
    # OSM and GeoJSONSeq store coordinates to 1e-7° (about 1 cm)
    np.testing.assert_allclose(_areas(gdf), EXPECTED_AREAS, rtol=1e-3 if fmt in ("pbf", "geojsonl") else 1e-6)
    assert len(rejected) == 0
    if fmt == "pbf":
        assert list(accepted["building_id"]) == ["w100", "w101", "w102"]
        assert accepted["roof_shape_src"].iloc[1] == "gabled"
    else:
        assert list(accepted["building_id"]) == ["A", "B", "C"]
        if fmt != "shp":  # shapefile field names are cut to 10 characters
            assert accepted["roof_shape_src"].iloc[1] == "gabled"
        np.testing.assert_allclose(accepted["height_m"].to_numpy(), [12.0, 8.0, np.nan])
    assert accepted["name"].iloc[0] == "一号厂房"


def test_partitions_cover_every_row_once(tmp_path):
    gdf = pd.concat([roofs_utm()] * 7, ignore_index=True)
    gdf["id"] = [f"R{i}" for i in range(len(gdf))]
    for fmt in ("gpkg", "csv"):
        path = write(fmt, gdf, tmp_path / f"many.{fmt}")
        parts = plan_partitions(path, rows_per_partition=5)
        assert [p.start for p in parts] == [0, 5, 10, 15, 20] and parts[-1].stop == 21
        rows = np.concatenate([read_partition(p, "wgs84" if fmt == "csv" else None)["source_row"] for p in parts])
        assert list(rows) == list(range(21))


def test_parquet_partitions_follow_row_groups(tmp_path):
    gdf = pd.concat([roofs_utm()] * 10, ignore_index=True)
    path = tmp_path / "rg.parquet"
    gdf.to_parquet(path, row_group_size=4)
    parts = plan_partitions(path, rows_per_partition=8)
    assert [(p.start, p.stop) for p in parts] == [(0, 8), (8, 16), (16, 24), (24, 30)]
    assert [len(read_partition(p)) for p in parts] == [8, 8, 8, 6]


def test_derived_ids_are_stable_and_catch_duplicates(tmp_path):
    src = roofs_utm().drop(columns="id")
    src = pd.concat([src, src.iloc[[0]]], ignore_index=True)  # the same roof twice
    path = write("geojsonl", src.to_crs(4326), tmp_path / "ms.geojsonl")  # the Microsoft form: no ids
    first, rej1, _ = clean_footprints(read_vector(path), str(path))
    second, rej2, _ = clean_footprints(read_vector(path), str(path))
    assert list(first["building_id"]) == list(second["building_id"])
    assert first["building_id"].str.match(r"^g\d+$").all()
    assert list(rej1["reason"]) == ["duplicate_id"] and rej1["source_row"].iloc[0] == 3


def test_duplicate_ids_across_partitions(tmp_path):
    gdf = roofs_utm()
    gdf.loc[2, "id"] = "A"
    path = write("gpkg", gdf, tmp_path / "dup.gpkg")
    parts = plan_partitions(path, rows_per_partition=2)
    dup = duplicate_id_rows(parts, "id")
    assert list(dup) == [2]
    accepted, rejected, _ = clean_footprints(read_partition(parts[1]), str(path), "id", dup)
    assert len(accepted) == 0 and list(rejected["reason"]) == ["duplicate_id"]


def test_neighbours_cleaned_together_find_each_partitions_own_duplicates(tmp_path):
    # a task cleans its neighbours' edge strips at once: without ids, the same roof in two
    # partitions is a duplicate in neither (each partition's own task keeps it), twice in one is
    src = roofs_utm().drop(columns="id")
    src = pd.concat([src, src.iloc[[0]]], ignore_index=True).to_crs(4326)
    raw = pd.concat([src.iloc[:3], src.iloc[:1], src.iloc[[3]]], ignore_index=True).assign(source_row=np.arange(5))
    accepted, rejected, _ = clean_footprints(raw, "strips", groups=np.array([7, 7, 7, 8, 8]))
    assert list(accepted["source_row"]) == [0, 1, 2, 3]
    assert list(rejected["source_row"]) == [4] and list(rejected["reason"]) == ["duplicate_id"]
    alone, _, _ = clean_footprints(raw, "one partition")
    assert list(alone["source_row"]) == [0, 1, 2]


def test_csv_without_crs_is_an_error(tmp_path):
    path = write("csv", roofs_utm(), tmp_path / "g.csv")
    with pytest.raises(CRSError, match="no coordinate reference system.*crs: wgs84"):
        read_vector(path)


def test_gcj02_declared_input_is_shifted_to_wgs84(tmp_path):
    from pvsurvey.coords import wgs84_to_gcj02

    wgs = roofs_utm().to_crs(4326)
    gcj = wgs.copy()
    gcj.geometry = shapely.transform(wgs.geometry.values, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1])))
    path = write("gpkg", gcj, tmp_path / "gcj.gpkg")
    back = read_vector(path, "gcj02")
    def offset_m(a, b):
        return a.to_crs(32651).centroid.distance(b.to_crs(32651).centroid).max()

    assert offset_m(gcj, wgs) > 300  # GCJ-02 is hundreds of metres off in Shanghai
    assert offset_m(back, wgs) < 0.001


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "a.xyz").write_text("x")
    with pytest.raises(InputFileError, match="unsupported file type '.xyz'"):
        plan_partitions(tmp_path / "a.xyz", 10)
    with pytest.raises(InputFileError, match="not found"):
        plan_partitions(tmp_path / "nope.gpkg", 10)


def test_a_csv_row_with_more_fields_is_set_aside_in_its_partition_and_the_rest_read(tmp_path):
    """One row with an unquoted comma in a footprint CSV: that row is set aside as
    malformed_row in whichever partition holds it, every other row is read with its
    own id, number, geometry and types; a quote never closed is one line naming its line."""
    roofs = roofs_utm().to_crs(4326)
    n = len(roofs)
    rows = [f"R{i},{3 + i * 1.5},\"{roofs.geometry.iloc[i % n].wkt}\"" for i in range(25)]
    rows[13] = "R13,19.5,extra,\"POLYGON ((0 0, 1 0, 1 1, 0 0))\""  # 4 fields: an unquoted comma
    (tmp_path / "f.csv").write_text("building_id,height_m,geometry\n" + "\n".join(rows) + "\n")
    parts = plan_partitions(tmp_path / "f.csv", 10)
    frames = [read_partition(p, "EPSG:4326") for p in parts]
    assert [len(f) for f in frames] == [10, 10, 5]
    accepted, rejected, _ = clean_footprints(pd.concat(frames, ignore_index=True), "f.csv", "building_id")
    assert list(rejected["source_row"]) == [13] and list(rejected["reason"]) == ["malformed_row"]
    assert rejected["message"].iloc[0].endswith("4 fields where the header has 3")
    kept = accepted.sort_values("source_row")
    assert list(kept["building_id"]) == [f"R{i}" for i in range(25) if i != 13]
    assert list(kept["source_row"]) == [i for i in range(25) if i != 13]
    columns = ["building_id", "height_m", "source_row"]
    assert (frames[1][columns].dtypes == frames[0][columns].dtypes).all()  # the types of a clean partition
    np.testing.assert_allclose(kept["height_m"], [3 + i * 1.5 for i in range(25) if i != 13])
    (tmp_path / "q.csv").write_text("building_id,geometry\nA,\"POLYGON ((0 0, 1 0, 1 1, 0 0))\"\nB,\"POLYGON ((0 0\n")
    with pytest.raises(InputFileError, match=r"q.csv: line 3: a quoted value opens \(\"\) and is never closed"):
        read_partition(plan_partitions(tmp_path / "q.csv", 10)[0], "EPSG:4326")


def test_a_shapefile_without_its_dbf_is_one_line(tmp_path):
    """GDAL reads a .shp without its .dbf, every attribute silently gone (ids become
    row numbers, no heights): one line naming the missing file instead."""
    write("shp", roofs_utm(), tmp_path / "f.shp")
    assert len(read_vector(tmp_path / "f.shp")) == 3
    (tmp_path / "f.dbf").unlink()
    with pytest.raises(InputFileError, match=r"f.shp: no f.dbf beside it, so none of the footprints' attributes"):
        plan_partitions(tmp_path / "f.shp", 10)


def test_a_file_of_several_layers_reads_the_named_or_the_only_polygon_layer(tmp_path):
    """GDAL reads the first layer of a GeoPackage and warns; a survey of the wrong layer
    would look like a survey. Two polygon layers: one line naming them and the key;
    the named one is read; beside a point layer, the only polygon layer is read."""
    roofs = roofs_utm()
    path = tmp_path / "two.gpkg"
    roofs.iloc[:1].to_file(path, layer="sheds", engine="pyogrio")
    roofs.to_file(path, layer="halls", engine="pyogrio")
    with pytest.raises(InputFileError) as err:
        read_vector(path, what="footprints")
    assert "2 layers ('sheds' (Polygon), 'halls' (Polygon))" in str(err.value)
    assert "'footprints: {path: two.gpkg, layer: sheds}'" in str(err.value)
    assert len(read_vector(path, layer="halls", what="footprints")) == len(roofs)
    mixed = tmp_path / "mixed.gpkg"
    roofs.set_geometry(roofs.centroid).to_file(mixed, layer="entrances", engine="pyogrio")
    roofs.to_file(mixed, layer="roofs", engine="pyogrio")
    parts = plan_partitions(mixed, 10)
    assert {p.layer for p in parts} == {"roofs"}
    np.testing.assert_allclose(_areas(read_partition(parts[0], None)), EXPECTED_AREAS)


# --- a folder of GeoParquet files (a dataset split by region, as large sources ship) ---------

def _demo_split(folder, rows=(1500, 1200)):
    """The demo footprints as three files of a folder (row groups of 500), rows in name order;
    a Spark-style marker file, a hidden file and a writer's _temporary folder beside them are skipped."""
    import geopandas as gpd

    from pvsurvey.config.loading import REPO_ROOT

    gdf = gpd.read_parquet(REPO_ROOT / "data" / "demo" / "footprints.parquet")
    folder.mkdir(parents=True, exist_ok=True)
    cuts = [0, rows[0], rows[0] + rows[1], len(gdf)]
    (folder / "sub").mkdir(exist_ok=True)
    names = ["a-west.parquet", "b-centre.parquet", "sub/c-east.parquet"]
    for name, lo, hi in zip(names, cuts[:-1], cuts[1:]):
        gdf.iloc[lo:hi].to_parquet(folder / name, row_group_size=500)
    (folder / "_SUCCESS").write_text("")
    (folder / ".hidden.parquet").write_text("not parquet")
    (folder / "_temporary").mkdir(exist_ok=True)
    (folder / "_temporary" / "attempt.parquet").write_text("a writer's unfinished file")
    return gdf


def test_a_folder_of_geoparquet_files_is_one_source_with_rows_numbered_across_files(tmp_path):
    gdf = _demo_split(tmp_path / "fp")
    parts = plan_partitions(tmp_path / "fp", rows_per_partition=1000)
    # row groups of 500 gathered to reach 1,000 rows, never across a file's end
    assert [p.path.name for p in parts] == ["a-west.parquet"] * 2 + ["b-centre.parquet"] * 2 + ["c-east.parquet"] * 2
    assert [(p.start, p.stop) for p in parts] == [(0, 1000), (1000, 1500), (1500, 2500), (2500, 2700),
                                                   (2700, 3700), (3700, 3881)]
    assert len(gdf) == 3881 and [p.index for p in parts] == list(range(6))
    read = pd.concat([read_partition(p) for p in parts], ignore_index=True)
    assert list(read["source_row"]) == list(range(len(gdf)))
    assert list(read["id"]) == list(gdf["id"])


def test_a_dataset_folder_named_like_a_file_is_a_folder(tmp_path):
    """Spark, pyarrow and pvsurvey's own runs write datasets as folders named *.parquet."""
    _demo_split(tmp_path / "footprints.parquet")
    parts = plan_partitions(tmp_path / "footprints.parquet", rows_per_partition=1000)
    assert len({p.path for p in parts}) == 3 and parts[-1].stop == 3881


def test_duplicate_ids_across_files_of_a_folder(tmp_path):
    gdf = _demo_split(tmp_path / "fp")
    first_id = gdf["id"].iloc[0]
    extra = gdf.iloc[[10]].copy()
    extra["id"] = first_id
    extra.to_parquet(tmp_path / "fp" / "sub" / "d-more.parquet")
    parts = plan_partitions(tmp_path / "fp", rows_per_partition=1000)
    from pvsurvey.config.loading import REPO_ROOT

    demo = plan_partitions(REPO_ROOT / "data" / "demo" / "footprints.parquet", 1000)
    own = list(duplicate_id_rows(demo, "id"))  # the demo carries a duplicate on purpose
    assert own and list(duplicate_id_rows(parts, "id")) == own + [len(gdf)]  # the extra file's row, numbered last


def test_folder_problems_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="a folder without GeoParquet files"):
        plan_partitions(tmp_path / "empty", 10)
    gdf = _demo_split(tmp_path / "fp")
    gdf.iloc[:5].to_crs(32651).to_parquet(tmp_path / "fp" / "z-utm.parquet")
    with pytest.raises(InputFileError, match=r"z-utm\.parquet: its coordinate system .* differs from"):
        plan_partitions(tmp_path / "fp", 1000)
