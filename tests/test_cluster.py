"""The survey on a real dask.distributed cluster: `dask scheduler` and two `dask worker`
processes on 127.0.0.1, as a planner's existing cluster would be."""

import geopandas as gpd
import pandas as pd
import pytest

from pvsurvey.config import load_config
from pvsurvey.workflow import run_survey


def test_real_cluster_gives_the_local_result(cluster, tmp_path):
    cfg = load_config()
    remote = run_survey(cfg, tmp_path / "remote", scheduler=cluster[0])
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


def test_local_workers_keep_freed_memory_and_run_without_the_profiler():
    from pvsurvey.parallel import Executor

    with Executor(workers=1) as executor:
        settings = executor._client().run(lambda: (
            __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"), __import__("os").environ.get("MALLOC_MMAP_THRESHOLD_"),
            __import__("dask").config.get("distributed.worker.profile.enabled")))
    assert list(settings.values()) == [(str(256 << 20), str(64 << 20), False)]
    import dask
    assert dask.config.get("distributed.worker.profile.enabled") is True  # this process's config is left alone
