"""The survey on a real dask.distributed cluster: `dask scheduler` and two `dask worker`
processes on 127.0.0.1, as a planner's existing cluster would be."""

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from pvsurvey.config.loading import load_config
from pvsurvey.errors import PVSurveyError
from pvsurvey.pipeline.run import run_survey


@pytest.mark.slow
def test_real_cluster_gives_the_local_result(cluster, tmp_path):
    cfg = load_config()
    remote = run_survey(cfg, tmp_path / "remote", scheduler=cluster[0])
    local = run_survey(cfg, tmp_path / "local", serial=True)
    assert remote.manifest["execution"]["mode"] == "cluster"
    a = gpd.read_parquet(local.run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    b = gpd.read_parquet(remote.run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert remote.manifest["counts"] == local.manifest["counts"]


@pytest.mark.slow
def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    from pvsurvey.errors import PVSurveyError

    with pytest.raises(PVSurveyError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_survey(load_config(), tmp_path / "x", scheduler="tcp://127.0.0.1:9")


@pytest.mark.slow
@pytest.mark.cluster
def test_local_workers_keep_freed_memory_and_run_without_the_profiler():
    from pvsurvey.execution.executor import Executor

    with Executor(workers=1) as executor:
        settings = executor._client().run(lambda: (
            __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"), __import__("os").environ.get("MALLOC_MMAP_THRESHOLD_"),
            __import__("dask").config.get("distributed.worker.profile.enabled")))
    assert list(settings.values()) == [(str(256 << 20), str(64 << 20), False)]
    import dask
    assert dask.config.get("distributed.worker.profile.enabled") is True  # this process's config is left alone



def _worker_start_facts():
    import os
    import sys

    import psutil

    parent = psutil.Process(os.getppid())
    return (os.getppid(), " ".join(parent.cmdline()), "pvsurvey.pipeline.pv_and_projects" in sys.modules,
            os.environ.get("MALLOC_TRIM_THRESHOLD_"))


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("start", ["forkserver", "spawn"])
def test_local_workers_fork_from_one_process_that_imported_the_task_code(start):
    import os

    from pvsurvey.execution.executor import Executor

    with Executor(workers=2, preload=("pvsurvey.pipeline.pv_and_projects",), start=start) as executor:
        facts = list(executor._client().run(_worker_start_facts).values())
    assert len(facts) == 2
    for _, parent, imported, trim in facts:
        assert imported and trim == str(256 << 20)  # the task code before any task, the malloc settings kept
        if start == "forkserver":  # both forked by multiprocessing's fork server, not started by this process
            assert "multiprocessing.forkserver" in parent
        else:
            assert "multiprocessing.forkserver" not in parent
    parents = {ppid for ppid, *_ in facts}
    assert len(parents) == 1 and (parents == {os.getpid()}) == (start == "spawn")


def _collector_on(item, ctx):
    import gc

    return gc.isenabled()


@pytest.mark.cluster
def test_tasks_run_with_the_cyclic_collector_paused():
    """Each task, on a worker or in this process, runs with the cyclic garbage collector
    off (it walked every object of the process for nothing); overlapping pauses on two
    threads end together, and a collector that was off stays off."""
    import gc
    import threading

    from pvsurvey.execution.collector import collector_paused
    from pvsurvey.execution.executor import Executor

    assert gc.isenabled()
    with Executor(serial=True) as executor:
        assert executor.map(_collector_on, [0, 1], None) == [False, False]
    assert gc.isenabled()
    with Executor(workers=1) as executor:
        assert executor.map(_collector_on, [0, 1, 2], None) == [False, False, False]
        assert list(executor._client().run(gc.isenabled).values()) == [True]  # on again between tasks
    inside, release = threading.Event(), threading.Event()

    def other_task():
        with collector_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_task)
    thread.start()
    inside.wait(10)
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's task still runs
    release.set()
    thread.join()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def _kept_after_reading(part, ctx):
    from pvsurvey.io.row_groups import KEPT
    from pvsurvey.io.vector import read_partition

    read_partition(part, None, keep=True)
    return len(KEPT)


def _kept_count():
    from pvsurvey.io.row_groups import KEPT

    return len(KEPT)


def test_workers_keep_no_row_groups_once_the_survey_round_is_over(tmp_path):
    """Row groups a worker keeps for its tasks' halos (pvsurvey.io.row_groups) are dropped on
    every worker and here once the round ends: a long-lived cluster holds nothing between runs."""
    import shapely

    from pvsurvey.execution.executor import Executor
    from pvsurvey.io.row_groups import release_kept
    from pvsurvey.io.vector import plan_partitions

    gpd.GeoDataFrame({"id": list("abcd")}, geometry=[shapely.box(121.4 + i * 1e-3, 31.2, 121.4005 + i * 1e-3, 31.2005)
                                                     for i in range(4)], crs=4326).to_parquet(tmp_path / "f.parquet",
                                                                                               row_group_size=2)
    parts = plan_partitions(tmp_path / "f.parquet", 2)
    with Executor(workers=1) as executor:
        assert executor.map(_kept_after_reading, parts, None) == [1, 2]  # one worker: both row groups kept there
        assert list(executor._client().run(_kept_count).values()) == [2]
        executor.run_everywhere(release_kept)
        assert list(executor._client().run(_kept_count).values()) == [0]
    assert _kept_count() == 0


def _same_outputs(a: Path, b: Path) -> None:
    for name in ("progress.csv", "candidates.csv", "installations_matched.csv", "parks.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    left = gpd.read_parquet(a / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    right = gpd.read_parquet(b / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(left.drop(columns="geometry"), right.drop(columns="geometry"))
    assert left.geometry.geom_equals_exact(right.geometry, 0).all()


@pytest.mark.slow
def test_workers_without_the_run_directory_get_their_files_from_the_client(isolated_cluster, tmp_path):
    address, hidden = isolated_cluster
    cfg = load_config()
    remote = run_survey(cfg, hidden / "remote", scheduler=address)
    local = run_survey(cfg, tmp_path / "local", serial=True)
    assert remote.manifest["execution"]["files"] == "sent with the tasks"
    assert local.manifest["execution"]["files"] == "shared"
    assert remote.manifest["counts"] == local.manifest["counts"]
    _same_outputs(local.run_dir, remote.run_dir)
    assert remote.manifest["partitions"]["surveyed"] == remote.manifest["execution"]["partitions"] > 1

    # the cache is the client's: a second night takes every partition from it
    again = run_survey(cfg, hidden / "remote", scheduler=address)
    assert again.manifest["partitions"]["surveyed"] == 0
    assert again.manifest["partitions"]["finished_from_cache"] == remote.manifest["execution"]["partitions"]
    _same_outputs(local.run_dir, again.run_dir)


@pytest.mark.slow
def test_inputs_the_workers_cannot_read_stop_the_run_in_one_line(isolated_cluster, tmp_path):
    address, hidden = isolated_cluster
    cfg = load_config()
    footprints = hidden / "footprints.parquet"
    shutil.copyfile(cfg.footprints.path, footprints)
    cfg = cfg.model_copy(update={"footprints": cfg.footprints.model_copy(update={"path": footprints})})
    with pytest.raises(PVSurveyError, match=r"footprints.parquet: the cluster's workers cannot read it \(2 of them"):
        run_survey(cfg, tmp_path / "out", scheduler=address)


@pytest.mark.slow
def test_files_sent_with_the_tasks_on_request(cluster, tmp_path):
    """``parallel.shared_filesystem: false`` sends the files even to workers that
    could share them (runs wherever the isolated cluster cannot)."""
    cfg = load_config()
    cfg = cfg.model_copy(update={"parallel": cfg.parallel.model_copy(update={"shared_filesystem": False})})
    remote = run_survey(cfg, tmp_path / "remote", scheduler=cluster[0])
    local = run_survey(cfg, tmp_path / "local", serial=True)
    assert remote.manifest["execution"]["files"] == "sent with the tasks"
    _same_outputs(local.run_dir, remote.run_dir)


@pytest.mark.slow
def test_a_rewritten_input_reaches_workers_that_share_no_disk(isolated_cluster, tmp_path, demo_run):
    """A one-row-group file only the client can read: rewritten into the run cache, each
    partition's file travels with its task; the result is the serial one of the original."""
    address, hidden = isolated_cluster
    cfg = load_config()
    footprints = hidden / "one-group.parquet"
    gpd.read_parquet(cfg.footprints.path).to_parquet(footprints, row_group_size=10**6)
    cfg = cfg.model_copy(update={"footprints": cfg.footprints.model_copy(update={"path": footprints}),
                                 "parallel": cfg.parallel.model_copy(update={"partition_rows": 1000})})
    remote = run_survey(cfg, hidden / "remote", scheduler=address)
    local = demo_run
    assert remote.manifest["execution"]["files"] == "sent with the tasks"
    assert remote.manifest["execution"]["footprints_rewritten"]["files"] == 4 == remote.manifest["execution"]["partitions"]
    assert remote.manifest["counts"] == local.manifest["counts"]
    for name in ("progress.csv", "candidates.csv", "parks.csv"):
        assert (local.run_dir / name).read_bytes() == (remote.run_dir / name).read_bytes(), name
    rejected = pd.read_parquet(remote.run_dir / "rejected.parquet")
    assert set(rejected["source_file"]) == {str(footprints)}
    expected = pd.read_parquet(local.run_dir / "rejected.parquet")
    pd.testing.assert_frame_equal(rejected.drop(columns="source_file").sort_values("source_row").reset_index(drop=True),
                                  expected.drop(columns="source_file").sort_values("source_row").reset_index(drop=True))
