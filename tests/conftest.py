"""Shared fixtures: small hand-made inputs written with real writers.

Markers (registered in pyproject.toml) select tests; they never skip one. A test
that uses the ``cluster`` or ``isolated_cluster`` fixture is marked ``cluster``,
one that uses ``s3`` (tests/test_object_storage.py) ``s3``, one that uses
``browser`` (tests/test_maps.py) ``browser``, without a decorator; ``slow`` is
written on the tests themselves. The quick loop while editing:

    python -m pytest -q -m "not slow and not browser and not cluster and not s3"
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from distributed import Client

REPO = Path(__file__).resolve().parent.parent
UTM51N = "EPSG:32651"
# Three roofs near 31.2 N 121.4 E, in UTM 51N: 100 × 50 m, 40 × 30 m, 20 × 10 m.
ORIGIN = (339_000.0, 3_452_000.0)


# fixture → the marker every test that uses it gets
MARKER_OF_FIXTURE = {"cluster": "cluster", "isolated_cluster": "cluster", "s3": "s3", "browser": "browser"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & set(MARKER_OF_FIXTURE):
            item.add_marker(MARKER_OF_FIXTURE[fixture])


def roofs_utm() -> gpd.GeoDataFrame:
    x, y = ORIGIN
    return gpd.GeoDataFrame({
        "id": ["A", "B", "C"],
        "name": ["一号厂房", "=HYPERLINK(\"http://x\",\"y\")", "仓库"],
        "height": [12.0, 8.0, -1.0],
        "roof:shape": ["flat", "gabled", None],
    }, geometry=[shapely.box(x, y, x + 100, y + 50), shapely.box(x + 200, y, x + 240, y + 30),
                 shapely.box(x + 300, y, x + 320, y + 10)], crs=UTM51N)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo surveyed once, serially, for every test that only reads its outputs
    (a reference to compare other runs with): the suite pays for it once."""
    from pvsurvey.pipeline.run import run_survey

    return run_survey(None, tmp_path_factory.mktemp("runs") / "demo", serial=True)


@pytest.fixture
def roofs() -> gpd.GeoDataFrame:
    return roofs_utm()


def write_ghi_raster(path: Path, value: float = 3.6, units_scale: float = 1.0, nodata_cell=None) -> Path:
    """A 4 × 4 cell 0.25° GHI raster over Shanghai (EPSG:4326) of one value [kWh/m²/day]."""
    data = np.full((4, 4), value * units_scale, dtype="float32")
    if nodata_cell is not None:
        data[nodata_cell] = -9999.0
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(120.9, 31.6, 0.25, 0.25), nodata=-9999.0) as dst:
        dst.write(data, 1)
    return path


@pytest.fixture
def ghi_tif(tmp_path) -> Path:
    return write_ghi_raster(tmp_path / "ghi.tif")


def write_osm_pbf(path: Path, gdf_wgs84: gpd.GeoDataFrame) -> Path:
    """Write footprints as closed OSM ways with tags, via pyosmium."""
    import osmium

    if path.exists():
        os.remove(path)
    writer = osmium.SimpleWriter(str(path))
    common = dict(version=1, visible=True, changeset=1, timestamp="2024-01-01T00:00:00Z", uid=1, user="test")
    node_id = 1
    ways = []
    for i, row in enumerate(gdf_wgs84.itertuples()):
        coords = list(row.geometry.exterior.coords)[:-1]
        ids = []
        for lon, lat in coords:
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), **common))
            ids.append(node_id)
            node_id += 1
        tags = {"building": "industrial", "name": row.name}
        if isinstance(getattr(row, "_4", None), str):
            tags["roof:shape"] = row._4
        ways.append(osmium.osm.mutable.Way(id=100 + i, nodes=ids + [ids[0]], tags=tags, **common))
    for way in ways:
        writer.add_way(way)
    writer.close()
    return path


def _dask_cli(*args):
    return [sys.executable, "-c", "import sys; from dask.__main__ import main; sys.exit(main())", *args]


def _start_cluster(tmp_path: Path, wrap_worker: list[str] = ()):
    """A `dask scheduler` and two `dask worker` processes (each command prefixed
    by ``wrap_worker``); yields (address, worker processes), then stops them."""
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen(_dask_cli("scheduler", "--host", "127.0.0.1", "--port", "0",
                                        "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.time() + 60
    while not scheduler_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    for _ in range(2):
        procs.append(subprocess.Popen([*wrap_worker, *_dask_cli(
            "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--host", "127.0.0.1",
            "--dashboard-address", ":0", "--memory-limit", "0")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    yield address, procs[1:]
    for p in procs[1:]:  # workers (nanny and worker process) first, so they do not wait to reconnect
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)
    procs[0].kill()
    procs[0].wait(timeout=30)


@pytest.fixture
def cluster(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1; yields
    (address, worker processes). Each worker runs in its own session, so a test can
    kill one (nanny and worker) with os.killpg."""
    yield from _start_cluster(tmp_path)


@pytest.fixture
def isolated_cluster(tmp_path):
    """Like ``cluster``, but the workers do not see ``tmp_path / "client"``: each
    runs in its own mount namespace with an empty tmpfs over that folder, as
    workers on other machines without a shared filesystem. Yields (address,
    that folder). Needs mount namespaces (root, or unprivileged user namespaces);
    skipped where the OS refuses them, except under CI=true."""
    hidden = tmp_path / "client"
    hidden.mkdir()
    hide = ["unshare", "--mount", "sh", "-c", f"mount -t tmpfs none '{hidden}' && exec \"$@\"", "sh"]
    try:
        probe = subprocess.run([*hide, "true"], capture_output=True, text=True)
        refused = probe.stderr.strip() if probe.returncode else None
    except FileNotFoundError:
        refused = "no unshare command (util-linux)"
    if refused is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot hide a folder from the workers here: {refused}")
        pytest.skip(f"mount namespaces not available: {refused}")
    for address, _ in _start_cluster(tmp_path, hide):
        yield address, hidden
