"""The command line as a user runs it: what each --help shows; real subprocesses, exit codes, one-line errors."""

import re
import subprocess
import sys

import pytest


def pvsurvey(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pvsurvey", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


# What a user must find in each command's --help: the usage line (arguments by
# name), every option with a description, and the lines and examples that say
# what the command is for. --lang/--park/--district are listed where the command
# takes them, and only there.
HELP = {
    (): dict(usage="[OPTIONS] COMMAND [ARGS]...", options=["--version", "--debug", "--quiet"],
             says=["industrial parks", "the targets of the plans in the survey's config"],
             commands=["candidates", "export", "fetch", "map", "progress", "run", "runs", "validate"]),
    ("run",): dict(usage="[OPTIONS] [CONFIG]",
                   options=["--out", "--scheduler", "--workers", "--serial", "--installations", "--as-of", "--wait",
                            "--full", "--publish-url"],
                   says=["Without it, the bundled Shanghai demo runs.", "Exit codes: 0 success", "2 bad input or config",
                         "e.g. tcp://10.0.0.5:8786", "such as s3://bucket/registry.csv", "--as-of [%Y-%m-%d]"]),
    ("progress",): dict(usage="[OPTIONS] RUN_DIR", options=["--lang", "--history", "--plan"],
                        says=["each plan of the run's config", "final assessment at the deadline", "progress.png",
                              "--lang [zh|en]", "[default: zh]", "--plan ID"]),
    ("validate",): dict(usage="[OPTIONS] RUN_DIR", options=["--lang"],
                        says=["metered_kwh_per_yr", "P90-P10 band", "calibration factor", "never applied",
                              "validation.png/.svg", "--lang [zh|en]"]),
    ("export",): dict(usage="[OPTIONS] RUN_DIR",
                      options=["--park", "--district", "--layer", "--format", "--lang", "--out"],
                      says=["of the city, a district or a park", "--layer [candidates|buildings]",
                            "--format [csv|xlsx|geojson|gpkg|fgb|parquet]",
                            "Default: the suffix of --out, else xlsx for candidates",
                            "--lang [zh|en]", "--park ID", "--district NAME"],
                      examples=["pvsurvey export runs/shanghai-demo --park P05 --format xlsx",
                                "pvsurvey export runs/shanghai-demo --layer buildings --district 浦东新区 --format gpkg"]),
    ("candidates",): dict(usage="[OPTIONS] COMMAND [ARGS]...", options=[], says=[], commands=["import", "plan"]),
    ("candidates", "import"): dict(usage="[OPTIONS] FILE", options=["--run"],
                                   says=["the exported CSV or XLSX", "Statuses: identified, contacted, agreed",
                                         "已并网", "[required]"]),
    ("candidates", "plan"): dict(usage="[OPTIONS] RUN_DIR", options=["--park", "--district", "--by", "--lang", "--out"],
                                 says=["cheapest first", "--by [lcoe|payback]", "[default: lcoe]", "--lang [zh|en]",
                                       "--park ID", "--district NAME"]),
    ("map",): dict(usage="[OPTIONS] RUN_DIR", options=["--park", "--lang", "--tiles", "--offline", "--publish"],
                   says=["maps/index.html", "--tiles [osm|tianditu|gaode|none]", "--offline / --online",
                         "--lang [zh|en]", "--park ID", "s3://bucket/maps"]),
    ("runs",): dict(usage="[OPTIONS] RUN_DIR|URL", options=[], says=["default runs/shanghai-demo", "s3://bucket/prefix"]),
    ("fetch",): dict(usage="[OPTIONS] URL DIR", options=["--run"],
                     says=["AWS_ENDPOINT_URL", "'pvsurvey runs URL' lists them"],
                     examples=["pvsurvey fetch s3://pvsurvey/shanghai latest-run && pvsurvey progress latest-run"]),
}
SCOPE_OPTIONS = {"--lang", "--park", "--district"}


def help_text(*command):
    from click.testing import CliRunner

    from pvsurvey.cli import commands

    result = CliRunner().invoke(commands(), [*command, "--help"], prog_name="pvsurvey", terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def options_listed(text: str) -> dict[str, str]:
    """Each option's long name in the Options section, with its description."""
    section = text.split("\nOptions:\n", 1)[1].split("\nCommands:\n", 1)[0]
    entries, name = {}, None
    for line in section.splitlines():
        if line.startswith("  -"):
            names, _, description = line.strip().partition("  ")
            name = next(n for n in names.replace(",", " ").split() if n.startswith("--"))
            entries[name] = description.strip()
        elif name and line.strip():
            entries[name] = (entries[name] + " " + line.strip()).strip()
    return entries


@pytest.mark.parametrize("command", list(HELP), ids=lambda c: " ".join(c) or "pvsurvey")
def test_help_shows_arguments_options_and_examples(command):
    want = HELP[command]
    text = help_text(*command)
    flat = " ".join(text.split())  # as read: the terminal width decides where lines break
    assert text.startswith(f"Usage: pvsurvey {' '.join((*command, want['usage'])) if command else want['usage']}\n")
    listed = options_listed(text)
    assert set(listed) == {*want["options"], "--help"}  # everything there is, nothing hidden
    # and each one says what it does, beyond click's "[default: …]" / "[required]"
    assert all(re.sub(r"\s*\[[^]]*\]$", "", d) for d in listed.values()), listed
    for phrase in want["says"]:
        assert phrase in flat, phrase
    for example in want.get("examples", []):  # kept on one line, as the user would copy it
        assert example in [line.strip() for line in text.splitlines()], example
    if "commands" in want:
        section = text.split("\nCommands:\n", 1)[1]
        listed_commands = [line.split()[0] for line in section.splitlines() if line.strip()]
        assert listed_commands == want["commands"]
        assert all(len(line.split()) > 1 for line in section.splitlines() if line.strip())  # with a summary each
    # --lang, --park and --district: shown exactly where the command takes them
    assert SCOPE_OPTIONS & set(listed) == SCOPE_OPTIONS & set(want["options"])


def test_help_table_covers_every_command_and_option():
    """A new command or option needs its line in HELP above (what its --help must show)."""
    import click

    from pvsurvey.cli import commands

    def walk(group, path=()):
        yield path, group
        for name, cmd in getattr(group, "commands", {}).items():
            yield from walk(cmd, (*path, name))

    seen = {}
    for path, cmd in walk(commands()):
        seen[path] = {opt for p in cmd.params if isinstance(p, click.Option) for opt in p.opts if opt.startswith("--")}
    assert set(seen) == set(HELP)
    for path, opts in seen.items():
        assert opts - {"--online"} == set(HELP[path]["options"]), path


def test_help_from_the_installed_command_and_the_short_flag():
    out = pvsurvey("--help")
    assert out.returncode == 0 and out.stdout.startswith("Usage: pvsurvey [OPTIONS] COMMAND [ARGS]...")
    assert all(f"\n  {name} " in out.stdout for name in HELP[()]["commands"])
    from click.testing import CliRunner

    from pvsurvey.cli import commands

    short = CliRunner().invoke(commands(), ["candidates", "plan", "-h"], prog_name="pvsurvey", terminal_width=80)
    assert short.exit_code == 0 and short.output == help_text("candidates", "plan")


@pytest.mark.slow
def test_demo_run_prints_where_outputs_are(tmp_path):
    out = pvsurvey("run", "--serial", "--out", tmp_path / "demo")
    assert out.returncode == 0, out.stderr  # success: the demo's deliberately bad rows stay under config 'checks'
    assert f"outputs: {tmp_path / 'demo'} (run " in out.stdout
    assert "shanghai-demo: 3,878 buildings surveyed, 3 rows rejected" in out.stdout
    assert "set aside: 4 row(s) — 3 footprint(s) (rejected.parquet), 1 registry row(s)" in out.stdout
    parts = sorted((tmp_path / "demo" / "buildings.parquet").iterdir())  # a dataset: a part per partition
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(4)]


@pytest.mark.slow
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


@pytest.mark.slow
def test_debug_flag_shows_the_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\nfootprints: a.parquet\nirradiance: {ghi: g.tif}\n")
    out = pvsurvey("--debug", "run", cfg, "--serial")
    assert out.returncode != 0 and "Traceback" in out.stderr


def _footprints_with_a_corrupt_row_group(folder):
    """The demo footprints in 1,000-row groups, the geometry chunk of the second
    group overwritten: planning (footers, compressed bytes, the id column) passes,
    the worker reading that group fails."""
    import pyarrow.parquet as pq

    from pvsurvey.config.loading import REPO_ROOT

    path = folder / "footprints.parquet"
    pq.write_table(pq.read_table(REPO_ROOT / "data" / "demo" / "footprints.parquet"), path, row_group_size=1000)
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(1)
    chunk = next(group.column(c) for c in range(group.num_columns) if group.column(c).path_in_schema == "geometry")
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page and chunk.dictionary_page_offset else \
        chunk.data_page_offset
    with open(path, "r+b") as fh:
        fh.seek(start)
        fh.write(b"\xff" * 64)
    return path


@pytest.mark.slow
@pytest.mark.cluster
def test_an_input_error_on_a_worker_is_one_line_without_the_tasks_traceback(tmp_path):
    import json

    from pvsurvey.config.loading import REPO_ROOT

    _footprints_with_a_corrupt_row_group(tmp_path)
    config = tmp_path / "survey.yaml"
    config.write_text(json.dumps({
        "name": "corrupt", "footprints": "footprints.parquet",
        "irradiance": {"ghi": str(REPO_ROOT / "data" / "demo" / "ghi_gldas_0p25.tif"), "units": "kWh/m2/day"},
        "parallel": {"partition_rows": 1000, "in_process_max_rows": 0}}))
    result = pvsurvey("run", config, "--out", tmp_path / "run", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("pvsurvey: error:")]
    assert len(errors) == 1 and "footprints.parquet: cannot read rows 1000–2000" in errors[0], result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]  # the error is one line, and the last
    assert "Traceback" not in result.stderr and "Compute Failed" not in result.stderr, result.stderr
    debug = pvsurvey("--debug", "run", config, "--out", tmp_path / "run", "--workers", "1", cwd=tmp_path)
    assert debug.returncode != 0 and "Compute Failed" in debug.stderr and "Traceback" in debug.stderr
