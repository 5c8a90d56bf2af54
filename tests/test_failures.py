"""Failures: a run killed at any point leaves the last published run whole; a second
run on the same output waits or fails clearly; a dead Dask worker costs a retry."""

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import REPO
from pvsurvey.cli import commands
from pvsurvey.config.loading import config_from_dict, load_config
from pvsurvey.store.runs import run_lock, store_dir
from pvsurvey.pipeline.run import run_survey

sys.path.insert(0, str(REPO / "benchmarks"))
from synthetic import rectangles  # noqa: E402

# every test runs a survey (the module's published run alone takes ~10 s)
pytestmark = pytest.mark.slow


def digest(path):
    """A file's SHA-256, or a dataset directory's (its part names and bytes)."""
    if path.is_dir():
        return {p.name: digest(p) for p in sorted(path.iterdir())}
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("kill") / "demo"
    run_survey(None, run_dir, serial=True)
    return run_dir


@pytest.mark.parametrize("delay_s", [0.0, 0.8, 1.6])
def test_kill_9_mid_run_leaves_the_published_run_whole_and_a_rerun_succeeds(published, delay_s):
    before = {name: digest(published / name) for name in ("manifest.json", "buildings.parquet", "progress.json")}
    target = os.readlink(published)
    # --full: survey every partition, so the run is still going when the kill comes
    proc = subprocess.Popen([sys.executable, "-m", "pvsurvey", "run", "--serial", "--full", "--out", str(published)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while not list(store_dir(published).glob(".partial-*")) and time.time() < deadline:
        time.sleep(0.05)  # wait until the run has started writing
    time.sleep(delay_s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # the pointer, the files behind it and their content are exactly as before
    assert os.readlink(published) == target and (published / "_COMPLETE").is_file()
    assert {name: digest(published / name) for name in before} == before
    assert len(gpd.read_parquet(published / "buildings.parquet")) == 3878
    # the lock died with the process: a rerun goes through and cleans up the leftovers
    result = run_survey(None, published, serial=True)
    assert os.readlink(published) != target and result.manifest["counts"]["accepted"] == 3878
    assert not list(store_dir(published).glob(".partial-*"))


def test_second_run_on_the_same_output_fails_clearly(published):
    with run_lock(published):
        result = CliRunner().invoke(commands(), ["run", "--serial", "--out", str(published)])
    assert result.exit_code == 2
    assert "another run is writing it (pid" in result.stderr and "--wait" in result.stderr


def test_second_run_with_wait_waits_for_the_first(published):
    release = threading.Event()

    def hold():
        with run_lock(published):
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    threading.Timer(1.5, release.set).start()
    t0 = time.time()
    result = run_survey(None, published, serial=True, wait=True)
    holder.join()
    assert time.time() - t0 >= 1.4 and result.manifest["status"] == "complete"


def test_old_runs_beyond_retention_are_removed(tmp_path):
    cfg = load_config()
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"keep_runs": 2})})
    for _ in range(3):
        run_survey(cfg, tmp_path / "demo", serial=True)
    runs = [p for p in store_dir(tmp_path / "demo").iterdir() if not p.name.startswith(".")]
    assert len(runs) == 2 and (tmp_path / "demo").resolve() in [p.resolve() for p in runs]


def _kill_config(folder, shared_filesystem="auto"):
    return config_from_dict({"name": "kill", "footprints": "fp.parquet",
                             "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif")},
                             "parallel": {"partition_rows": 1_000, "shared_filesystem": shared_filesystem}}, folder)


@pytest.fixture(scope="module")
def kill_footprints(tmp_path_factory):
    """20,000 footprints in 20 partitions, and their serial survey (the reference of both runs below)."""
    folder = tmp_path_factory.mktemp("kill-input")
    n = 20_000
    gpd.GeoDataFrame({"id": [f"K{i}" for i in range(n)]}, geometry=rectangles(n, seed=7), crs=4326).to_parquet(
        folder / "fp.parquet", row_group_size=1_000)
    return folder, run_survey(_kill_config(folder), folder / "serial", serial=True)


@pytest.mark.parametrize("shared_filesystem", ["auto", False], ids=["files-shared", "files-sent"])
def test_a_worker_killed_mid_run_costs_a_retry_not_the_run(cluster, tmp_path, shared_filesystem, kill_footprints):
    address, workers = cluster
    folder, serial = kill_footprints
    cfg = _kill_config(folder, shared_filesystem)
    killed = []

    def kill_one_worker(done, total):
        if done == 2 and not killed:  # partitions still running and queued on both workers
            os.killpg(workers[0].pid, signal.SIGKILL)
            killed.append(done)

    result = run_survey(cfg, tmp_path / "cluster", scheduler=address, on_tasks_done=kill_one_worker)
    assert killed and workers[0].wait(timeout=30) is not None
    assert result.manifest["execution"]["files"] == ("sent with the tasks" if shared_filesystem is False else "shared")
    a = pd.read_parquet(serial.run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    b = pd.read_parquet(result.run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    assert len(b) == result.manifest["counts"]["accepted"] == serial.manifest["counts"]["accepted"]
    pd.testing.assert_frame_equal(a, b)
