"""The survey on a real dask.distributed cluster: `dask scheduler` and two `dask worker`
processes on 127.0.0.1, as a planner's existing cluster would be."""

import json
import subprocess
import sys
import time

import geopandas as gpd
import pandas as pd
import pytest
from distributed import Client

from pvsurvey.config import load_config
from pvsurvey.workflow import run_survey



def _dask_cli(*args):
    return [sys.executable, "-c", "import sys; from dask.__main__ import main; sys.exit(main())", *args]


@pytest.fixture
def cluster(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen(_dask_cli("scheduler", "--host", "127.0.0.1", "--port", "0",
                                        "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.time() + 60
    while not scheduler_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    for _ in range(2):
        procs.append(subprocess.Popen(_dask_cli("worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                                                "--host", "127.0.0.1", "--dashboard-address", ":0",
                                                "--memory-limit", "0"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for p in reversed(procs):  # workers first, so they do not wait to reconnect
        p.kill()
        p.wait(timeout=30)


def test_real_cluster_gives_the_local_result(cluster, tmp_path):
    cfg = load_config()
    remote = run_survey(cfg, tmp_path / "remote", scheduler=cluster)
    local = run_survey(cfg, tmp_path / "local", serial=True)
    assert remote.manifest["execution"]["mode"] == "cluster"
    a = gpd.read_parquet(local.run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    b = gpd.read_parquet(remote.run_dir / "buildings.parquet").sort_values("building_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert remote.manifest["counts"] == local.manifest["counts"]


def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    from pvsurvey.errors import PVSurveyError

    with pytest.raises(PVSurveyError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_survey(load_config(), tmp_path / "x", scheduler="tcp://127.0.0.1:9")
