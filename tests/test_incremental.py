"""Nightly reruns reuse the partitions whose rows and model inputs did not change."""

import json

import geopandas as gpd
import pandas as pd
import pytest

from conftest import REPO, write_ghi_raster
from pvsurvey.config.loading import config_from_dict
from pvsurvey.pipeline.run import run_survey


def config(tmp_path, **overrides):
    return config_from_dict({"name": "inc", "footprints": "fp.parquet", "installations": str(
        REPO / "data/demo/installations-2025-06-30.csv"), "irradiance": {"ghi": "ghi.tif"},
        "parallel": {"partition_rows": 1000}, **overrides}, tmp_path)


@pytest.mark.slow
def test_unchanged_partitions_are_reused_and_give_the_same_result(tmp_path):
    fp = gpd.read_parquet(REPO / "data/demo/footprints.parquet")
    fp.to_parquet(tmp_path / "fp.parquet", row_group_size=1000)
    write_ghi_raster(tmp_path / "ghi.tif", value=3.6)
    run_dir = tmp_path / "runs" / "inc"
    first = run_survey(config(tmp_path), run_dir, serial=True)
    assert first.manifest["partitions"] == {**first.manifest["partitions"], "reused": 0, "surveyed": 4}
    before = gpd.read_parquet(run_dir / "buildings.parquet")

    # nothing changed but the night: every partition is reused, the result is the same
    second = run_survey(config(tmp_path), run_dir, serial=True)
    assert second.manifest["partitions"]["reused"] == 4
    pd.testing.assert_frame_equal(before, gpd.read_parquet(run_dir / "buildings.parquet"))
    assert second.manifest["counts"] == first.manifest["counts"]

    # one row group edited (a roof redrawn): its partition is surveyed again, and the partitions
    # whose roofs it can shade (its halo: the demo's third row group shares parks with the second,
    # and the fourth holds sheds around every park); the first is reused
    halo = first.manifest["execution"]["shade_halo"]
    assert halo["2"] == [1, 3] and "2" not in [str(p) for p in halo["0"]]
    fp.loc[2500, "geometry"] = fp.loc[2500, "geometry"].buffer(-0.00001)
    fp.to_parquet(tmp_path / "fp.parquet", row_group_size=1000)
    third = run_survey(config(tmp_path), run_dir, serial=True)
    assert (third.manifest["partitions"]["reused"], third.manifest["partitions"]["surveyed"]) == (1, 3)
    after = gpd.read_parquet(run_dir / "buildings.parquet").set_index("source_row")
    assert after.loc[2500, "footprint_area_m2"] < before.set_index("source_row").loc[2500, "footprint_area_m2"]
    # without shade, only the edited partition
    unshaded = config(tmp_path, shade={"enabled": False})
    run_survey(unshaded, run_dir, serial=True)
    fp.loc[2600, "geometry"] = fp.loc[2600, "geometry"].buffer(-0.00001)
    fp.to_parquet(tmp_path / "fp.parquet", row_group_size=1000)
    again = run_survey(unshaded, run_dir, serial=True)
    assert (again.manifest["partitions"]["reused"], again.manifest["partitions"]["surveyed"]) == (3, 1)

    # a model parameter changes every partition's result: nothing is reused
    fourth = run_survey(config(tmp_path, roof={"setback_m": 1.5}), run_dir, serial=True)
    assert fourth.manifest["partitions"]["reused"] == 0
    assert fourth.manifest["partitions"]["finished_from_cache"] == 0
    # and the cache keeps only what the latest run used: 4 surveyed and 4 finished partitions
    names = sorted(p.name for p in (tmp_path / "runs" / "inc.runs" / ".cache").iterdir())
    assert names == sorted(fourth.manifest["partitions"]["cache_entries"]) and len(names) == 9  # and the yields
    assert sum(n.startswith("finish-") for n in names) == 4


def read_outputs(run_dir):
    buildings = gpd.read_parquet(run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    candidates = pd.read_csv(run_dir / "candidates.csv", encoding="utf-8-sig")
    return buildings, candidates, json.loads((run_dir / "progress.json").read_text())["city"]


@pytest.mark.slow
def test_a_night_with_a_new_registry_finishes_only_the_partitions_it_touches(tmp_path):
    """The registry changes every night; partitions whose registry rows did not
    change link last night's final files, and the run equals one without a cache."""
    fp = gpd.read_parquet(REPO / "data/demo/footprints.parquet")
    fp.to_parquet(tmp_path / "fp.parquet", row_group_size=1000)
    write_ghi_raster(tmp_path / "ghi.tif", value=3.6)
    run_dir = tmp_path / "runs" / "inc"
    last_night = run_survey(config(tmp_path), run_dir, serial=True)

    registry = pd.read_csv(REPO / "data/demo/installations-2025-06-30.csv")
    located = registry[registry["building_id"].notna() & (registry["status"] == "connected")]
    gone = located["building_id"].iloc[0]  # tonight's registry no longer lists this system
    assert read_outputs(last_night.run_dir)[0].set_index("building_id").loc[gone, "has_pv"]
    registry[registry["building_id"] != gone].to_csv(tmp_path / "tonight.csv", index=False)
    night = run_survey(config(tmp_path, installations="tonight.csv"), run_dir, serial=True)
    p = night.manifest["partitions"]
    assert (p["reused"], p["finished_from_cache"]) == (4, 3)  # one partition holds that building
    fresh = run_survey(config(tmp_path, installations="tonight.csv"), tmp_path / "fresh", serial=True, reuse=False)
    assert fresh.manifest["partitions"]["finished_from_cache"] == 0
    (b_night, c_night, city_night), (b_fresh, c_fresh, city_fresh) = read_outputs(run_dir), read_outputs(fresh.run_dir)
    pd.testing.assert_frame_equal(b_night, b_fresh)
    pd.testing.assert_frame_equal(c_night, c_fresh)
    assert city_night == city_fresh
    assert not b_night.set_index("building_id").loc[gone, "has_pv"]


def test_a_damaged_cached_part_is_computed_again_not_published_again(tmp_path):
    """A run's part files are hard links of the cache's: one truncated in the run
    directory is truncated in the cache too. The next run finishes that partition
    again (its entry removed) and publishes whole files."""
    import pyarrow.parquet as pq

    fp = gpd.read_parquet(REPO / "data/demo/footprints.parquet").iloc[:2000]
    fp.to_parquet(tmp_path / "fp.parquet", row_group_size=1000)
    write_ghi_raster(tmp_path / "ghi.tif", value=3.6)
    run_dir = tmp_path / "runs" / "inc"
    run_survey(config(tmp_path), run_dir, serial=True)
    before = gpd.read_parquet(run_dir / "buildings.parquet")
    damaged = sorted((run_dir / "buildings.parquet").glob("*.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:100])  # in place: the cache's link sees it too
    again = run_survey(config(tmp_path), run_dir, serial=True)
    # the surveys of both partitions are whole and reused; the damaged one's finishing is done again
    assert (again.manifest["partitions"]["reused"], again.manifest["partitions"]["finished_from_cache"]) == (2, 1)
    for part in (run_dir / "buildings.parquet").glob("*.parquet"):
        pq.read_metadata(part)  # whole
    pd.testing.assert_frame_equal(before, gpd.read_parquet(run_dir / "buildings.parquet"))


def test_a_retried_task_may_link_over_its_first_attempt(tmp_path):
    """A worker that dies after storing a partition leaves the part file behind;
    the retry links the cached copy over it."""
    from pvsurvey.store.cache import link as _link

    (tmp_path / "cached.parquet").write_bytes(b"new")
    (tmp_path / "part.parquet").write_bytes(b"left by the first attempt")
    _link(tmp_path / "cached.parquet", tmp_path / "part.parquet")
    _link(tmp_path / "cached.parquet", tmp_path / "part.parquet")  # already the same file
    assert (tmp_path / "part.parquet").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cached.parquet", "part.parquet"]


def test_slices_of_one_hashing_digest_as_the_slices_themselves():
    """Round 2's keys hash the registry outcome once and digest each partition's
    rows from it: equal to hashing each partition's slice on its own."""
    import numpy as np
    import pandas as pd

    from pvsurvey.store.cache import frame_digest, row_hashes, rows_digest

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"kwp": rng.random(40), "status": [f"s{i % 3}" for i in range(40)],
                          "year": pd.array([i if i % 4 else None for i in range(40)], dtype="Int64")},
                         index=pd.Index([f"B{i}" for i in range(40)], name="building_id"))
    frame["kind"] = pd.Categorical(frame["status"])
    hashes = row_hashes(frame)
    for rows in (np.array([], dtype=int), np.array([3]), np.array([0, 5, 6, 39]), np.arange(40)):
        assert rows_digest(hashes[rows], frame.columns) == frame_digest(frame.iloc[rows])
    assert frame_digest(frame.iloc[[0, 5]]) != frame_digest(frame.iloc[[0, 6]])


def test_a_cached_result_of_other_code_is_never_reused(tmp_path, monkeypatch):
    """The cache salt holds a digest of pvsurvey's source, so an upgrade or a fix between two
    nights recomputes everything even where the version number stayed."""
    import hashlib

    from pvsurvey.pipeline import inputs

    package = REPO / "pvsurvey"
    expected = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        expected.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
    assert inputs.code_digest() == expected.hexdigest()

    cfg = config(tmp_path)
    prints = {"ghi": None, "weather": None, "parks": None}
    salt = inputs.cache_salt(cfg, prints, None)
    assert inputs.cache_salt(cfg, prints, None) == salt
    monkeypatch.setattr(inputs, "code_digest", lambda: "0" * 64)
    assert inputs.cache_salt(cfg, prints, None) != salt
