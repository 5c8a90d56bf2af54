"""The command line as a user runs it: real subprocesses, exit codes, one-line errors."""

import subprocess
import sys

import pytest


def pvsurvey(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pvsurvey", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_help_lists_the_run_command():
    out = pvsurvey("--help")
    assert out.returncode == 0 and "run" in out.stdout
    out = pvsurvey("run", "--help")
    assert "--scheduler" in out.stdout and "bundled" in out.stdout


def test_demo_run_prints_where_outputs_are(tmp_path):
    out = pvsurvey("run", "--serial", "--out", tmp_path / "demo")
    assert out.returncode == 0, out.stderr  # success: the demo's deliberately bad rows stay under config 'checks'
    assert f"outputs: {tmp_path / 'demo'} (run " in out.stdout
    assert "shanghai-demo: 3,878 buildings surveyed, 3 rows rejected" in out.stdout
    assert "set aside: 4 row(s) — 3 footprint(s) (rejected.parquet), 1 registry row(s)" in out.stdout
    parts = sorted((tmp_path / "demo" / "buildings.parquet").iterdir())  # a dataset: a part per partition
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(4)]


@pytest.mark.parametrize("text,message", [
    ("name: x\nfootprints: a.parquet\nirradiance: {ghi: g.tif}\nroof: {setback_m: -2}\n",
     "key 'roof.setback_m': Input should be greater than or equal to 0"),
    ("name: x\nfootprints: a.parquet\nirradiance: {ghi: g.tif}\n", "irradiance raster not found"),
])
def test_bad_config_gives_one_line_and_exit_code_2(tmp_path, text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = pvsurvey("run", cfg, "--serial", "--out", tmp_path / "run")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pvsurvey: error: ") and message in lines[0]
    assert "Traceback" not in out.stderr


def test_debug_flag_shows_the_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\nfootprints: a.parquet\nirradiance: {ghi: g.tif}\n")
    out = pvsurvey("--debug", "run", cfg, "--serial")
    assert out.returncode != 0 and "Traceback" in out.stderr
