"""Inputs and published runs on object storage: a real S3 API (moto's server on
127.0.0.1) spoken to by s3fs, pyarrow and GDAL, as a cluster on Kubernetes would
read a bucket. Credentials and the endpoint come from the environment, as on a
worker pod."""

import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import s3fs
import yaml
from moto.server import ThreadedMotoServer

from pvsurvey.config import DEMO_CONFIG, REPO_ROOT, load_config
from pvsurvey.errors import InputFileError
from pvsurvey.workflow import run_survey

BUCKET = "pvsurvey-test"
DEMO = REPO_ROOT / "data" / "demo"
INPUTS = ("footprints.parquet", "parks.geojson", "installations-2025-06-30.csv", "ghi_gldas_0p25.tif")


@pytest.fixture(scope="module")
def s3():
    """An S3 endpoint with the demo inputs in s3://pvsurvey-test/in/; the endpoint and
    keys are set in the environment, which the cluster fixture's workers inherit."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    for name in INPUTS:
        fs.put_file(str(DEMO / name), f"{BUCKET}/in/{name}")
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()
    for k, v in saved.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    server.stop()


def _config(tmp_path: Path, **inputs) -> Path:
    """The demo config with its inputs replaced (URLs or paths)."""
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["footprints"] = {"path": inputs.get("footprints", f"s3://{BUCKET}/in/footprints.parquet")}
    data["parks"] = inputs.get("parks", f"s3://{BUCKET}/in/parks.geojson")
    data["installations"] = inputs.get("installations", f"s3://{BUCKET}/in/installations-2025-06-30.csv")
    data["irradiance"]["ghi"] = inputs.get("ghi", f"s3://{BUCKET}/in/ghi_gldas_0p25.tif")
    data["maps"].pop("publish_dir")
    data.update(inputs.get("extra", {}))
    path = tmp_path / "s3.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _buildings(run_dir: Path) -> pd.DataFrame:
    frame = gpd.read_parquet(run_dir / "buildings.parquet")
    return frame.drop(columns="geometry").sort_values("building_id").reset_index(drop=True)


def test_inputs_on_object_storage_give_the_local_result_on_a_real_cluster(s3, cluster, tmp_path):
    remote = run_survey(_config(tmp_path), tmp_path / "remote", scheduler=cluster[0])
    local = run_survey(load_config(), tmp_path / "local", serial=True)
    assert remote.manifest["execution"]["mode"] == "cluster"
    pd.testing.assert_frame_equal(_buildings(remote.run_dir), _buildings(local.run_dir))
    assert remote.manifest["counts"] == local.manifest["counts"]
    for name in ("progress.csv", "candidates.csv", "installations_matched.csv"):
        assert (remote.run_dir / name).read_bytes() == (local.run_dir / name).read_bytes(), name
    footprints = remote.manifest["inputs"]["footprints"]
    assert footprints["path"] == f"s3://{BUCKET}/in/footprints.parquet"
    assert footprints["etag"] == s3.info(f"{BUCKET}/in/footprints.parquet")["ETag"].strip('"')
    assert footprints["size_bytes"] == (DEMO / "footprints.parquet").stat().st_size


def test_an_unchanged_object_is_reused_and_a_replaced_one_surveyed_again(s3, tmp_path):
    s3.put_file(str(DEMO / "footprints.parquet"), f"{BUCKET}/night/footprints.parquet")
    cfg = _config(tmp_path, footprints=f"s3://{BUCKET}/night/footprints.parquet")
    first = run_survey(cfg, tmp_path / "runs" / "demo", serial=True)
    assert first.manifest["partitions"]["reused"] == 0
    second = run_survey(cfg, tmp_path / "runs" / "demo", serial=True)
    assert second.manifest["partitions"]["surveyed"] == 0
    assert second.manifest["partitions"]["reused"] == first.manifest["partitions"]["surveyed"] > 0
    # a new object under the same name (new ETag and time): its partitions are surveyed again
    edited = gpd.read_parquet(DEMO / "footprints.parquet").iloc[:-1]
    local = tmp_path / "edited.parquet"
    edited.to_parquet(local, row_group_size=1000)
    s3.put_file(str(local), f"{BUCKET}/night/footprints.parquet")
    third = run_survey(cfg, tmp_path / "runs" / "demo", serial=True)
    assert third.manifest["partitions"]["reused"] == 0
    assert third.manifest["counts"]["input_rows"] == len(edited)


@pytest.mark.parametrize("inputs, message", [
    ({"footprints": f"s3://{BUCKET}/in/missing.parquet"},
     f"footprints file not found: s3://{BUCKET}/in/missing.parquet"),
    ({"footprints": f"s3://{BUCKET}/in/parks.geojson"}, "on object storage must be GeoParquet"),
    ({"ghi": f"s3://{BUCKET}/in/missing.tif"}, f"irradiance raster not found: s3://{BUCKET}/in/missing.tif"),
    ({"installations": f"s3://{BUCKET}/in/missing.csv"}, f"installations file not found: s3://{BUCKET}/in/missing.csv"),
])
def test_missing_or_unsplittable_objects_stop_with_one_line(s3, tmp_path, inputs, message):
    with pytest.raises(InputFileError, match=message.replace(".", r"\.")):
        run_survey(_config(tmp_path, **inputs), tmp_path / "x", serial=True)
    assert not (tmp_path / "x").exists()


def test_errors_in_a_copied_object_name_the_url(s3, tmp_path):
    s3.pipe_file(f"{BUCKET}/in/bad-registry.csv", b"id,foo\n1,2\n")
    with pytest.raises(InputFileError, match=rf"^s3://{BUCKET}/in/bad-registry\.csv: the installations registry"):
        run_survey(_config(tmp_path, installations=f"s3://{BUCKET}/in/bad-registry.csv"), tmp_path / "x", serial=True)
