"""The installations registry's rows: a CSV that pandas cannot split as written (empty, a row
with more fields than the header, a quote never closed) and numbers that are not a system's
(an infinite or impossible capacity, an infinite metered yield). A whole-file problem is one
line and exit code 2; a bad row is set aside with its reason, and the other rows keep their
``registry_row``."""

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import roofs_utm, write_ghi_raster
from pvsurvey.cli import commands
from pvsurvey.config.schema import VectorSource
from pvsurvey.errors import InputFileError
from pvsurvey.io.registry import MAX_ROOFTOP_KWP, read_registry, usable_rows
from pvsurvey.model.registry_matching import REGISTRY_REASONS

HEADER = "registry_id,building_id,capacity_kwp,commissioned_on,status\n"


def registry(tmp_path, text, name="reg.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return read_registry(VectorSource(path=path))


def refused(tmp_path, text) -> str:
    """The one-line message a registry ``text`` is refused with (reg.csv named first)."""
    with pytest.raises(InputFileError) as err:
        registry(tmp_path, text)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'reg.csv'}: ") and "\n" not in message
    return message


def reasons(reg):
    return list(reg["reject_reason"].fillna(""))


@pytest.mark.parametrize("text", ["", "\n\n"], ids=["no bytes", "blank lines"])
def test_an_empty_registry_csv_is_one_line_naming_the_file(tmp_path, text):
    message = refused(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'reg.csv'}: the installations file is empty (no header row); ")
    assert "remove 'installations' from the config" in message


def test_a_row_with_more_fields_is_set_aside_and_every_other_row_keeps_its_number(tmp_path):
    reg = registry(tmp_path, HEADER
                   + "R1,A,100,2023-01-01,connected\n"
                   + "R2,B,100,2023-01-01,connected,extra\n"      # line 3: one field too many
                   + "R3,C,5,2023-01-01,connected\n"
                   + "\n"                                          # blank: skipped, as pandas does
                   + "R4,D,5\n"                                    # fewer fields: padded, as before
                   + '"R5\nsecond line",E,5,2023-01-01,connected,x,y\n'  # quoted line break, 2 too many
                   + "R6,F,1,2023-01-01,connected\n")
    assert list(reg["registry_row"]) == [0, 1, 2, 3, 4, 5]
    assert reasons(reg) == ["", "malformed_row", "", "unknown_status", "malformed_row", ""]
    assert list(reg["registry_id"].fillna("")) == ["R1", "", "R3", "R4", "", "R6"]
    assert list(reg["building_id"].fillna("")) == ["A", "", "C", "D", "", "F"]
    assert list(reg["capacity_kwp"].iloc[[0, 2, 3, 5]]) == [100.0, 5.0, 5.0, 1.0]
    assert list(usable_rows(reg)["registry_row"]) == [0, 2, 5]


def test_a_first_row_with_more_fields_does_not_shift_the_columns(tmp_path):
    # pandas alone reads this without an error, taking R1 and A for an index and shifting every row
    reg = registry(tmp_path, HEADER + "R1,A,100,2023-01-01,connected,x\n" + "R2,B,80,2023-01-01,connected\n"
                   + "R3,C,70,2023-01-01,connected\n")
    assert reasons(reg) == ["malformed_row", "", ""]
    assert list(reg["registry_id"].iloc[1:]) == ["R2", "R3"] and list(reg["capacity_kwp"].iloc[1:]) == [80.0, 70.0]
    assert list(reg["status"].iloc[1:]) == ["connected", "connected"]


def test_a_well_formed_registry_reads_as_before(tmp_path):
    reg = registry(tmp_path, HEADER + 'R1,"A ""west""",100,2023-01-01,connected\n' + "R2,B,50\n")
    assert list(reg["building_id"]) == ['A "west"', "B"] and reasons(reg) == ["", "unknown_status"]


@pytest.mark.parametrize("text, line", [
    (HEADER + "R1,A,100,2023-01-01,connected\n" + 'R2,"B,100,2023-01-01,connected\n' + "R3,C,1,2023-01-01,connected\n", 3),
    # a quoted line break before it counts as a line; a row with too many fields first must not hide it
    (HEADER + 'R1,"A\nB",100,2023-01-01,connected,x\n' + "R2,B,1,2023-01-01,connected\n" + 'R3,C,"1,2023\n', 5),
], ids=["quote", "after a ragged row"])
def test_a_quote_never_closed_is_one_line_naming_the_line_where_it_opens(tmp_path, text, line):
    message = refused(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'reg.csv'}: line {line}: a quoted value opens (\") and is never closed")
    assert "close the quote on that line, or re-export the sheet as CSV" in message


def test_infinite_and_impossible_capacities_are_set_aside(tmp_path):
    values = ["inf", "3e400", "-inf", "nan", "1e19", "1e308", "1000000", "1000001", "250"]
    reg = registry(tmp_path, HEADER + "".join(f"R{i},A,{v},2023-01-01,connected\n" for i, v in enumerate(values)))
    assert MAX_ROOFTOP_KWP == 1_000_000.0
    assert reasons(reg) == ["invalid_capacity"] * 4 + ["implausible_capacity"] * 2 + ["", "implausible_capacity", ""]
    assert reg["capacity_kwp"].iloc[4] == 1e19  # kept as written, for the report
    assert list(usable_rows(reg)["registry_row"]) == [6, 8]


def test_the_capacity_bound_applies_in_kwp_after_the_unit(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text("registry_id,building_id,装机容量(MW),commissioned_on,status\n"
                    "R1,A,999,2023-01-01,connected\nR2,A,1001,2023-01-01,connected\n", encoding="utf-8")
    reg = read_registry(VectorSource(path=path))
    assert list(reg["capacity_kwp"]) == [999_000.0, 1_001_000.0]
    assert reasons(reg) == ["", "implausible_capacity"]


def test_an_infinite_metered_yield_is_not_metered_and_the_row_still_counts(tmp_path):
    reg = registry(tmp_path, "building_id,capacity_kwp,commissioned_on,status,metered_kwh_per_yr\n"
                   "A,100,2023-01-01,connected,inf\nB,100,2023-01-01,connected,-inf\n"
                   "C,100,2023-01-01,connected,1e400\nA,100,2023-01-01,connected,110000\n")
    assert reg["metered_kwh_per_yr"].isna().tolist() == [True, True, True, False]
    assert reg["metered_kwh_per_yr"].iloc[3] == 110_000.0
    assert reasons(reg) == ["", "", "", ""]


# --- through the CLI ------------------------------------------------------------------------

def write_inputs(tmp_path, registry_text):
    roofs_utm().to_file(tmp_path / "roofs.gpkg", engine="pyogrio")
    write_ghi_raster(tmp_path / "ghi.tif")
    (tmp_path / "reg.csv").write_text(registry_text, encoding="utf-8")
    config = {"name": "reg", "footprints": "roofs.gpkg", "irradiance": {"ghi": "ghi.tif", "units": "kWh/m2/day"},
              "installations": "reg.csv"}
    (tmp_path / "survey.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path / "survey.yaml"


def invoke(*args):
    return CliRunner().invoke(commands(), [*map(str, args)])


@pytest.mark.parametrize("text, fragment", [
    ("", "the installations file is empty (no header row)"),
    (HEADER + 'R1,"A,100,2023-01-01,connected\n', "line 2: a quoted value opens (\") and is never closed"),
], ids=["empty", "quote"])
def test_a_run_on_an_unsplittable_registry_stops_with_one_line(tmp_path, text, fragment):
    result = invoke("run", write_inputs(tmp_path, text), "--out", tmp_path / "run", "--serial")
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pvsurvey: error: ") and "Traceback" not in result.output
    assert "reg.csv: " in lines[0] and fragment in lines[0]


@pytest.mark.slow
def test_a_run_sets_aside_a_malformed_row_and_impossible_numbers_and_validates(tmp_path):
    config = write_inputs(tmp_path, "building_id,capacity_kwp,commissioned_on,status,metered_kwh_per_yr\n"
                          "A,100,2023-01-01,connected,inf\n"
                          "B,50,2023-01-01,connected,x,y\n"         # malformed
                          "B,inf,2023-01-01,connected,\n"
                          "C,1e19,2023-01-01,connected,\n"
                          "C,20,2023-01-01,connected,24000\n")
    result = invoke("run", config, "--out", tmp_path / "run", "--serial")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output
    assert "3 registry row(s) (installations_matched.csv)" in result.output
    matched = pd.read_csv(tmp_path / "run" / "installations_matched.csv", encoding="utf-8-sig")
    assert list(matched["registry_row"]) == [0, 1, 2, 3, 4]
    assert list(matched["unmatched_reason"].fillna("")) == ["", "malformed_row", "invalid_capacity",
                                                            "implausible_capacity", ""]
    assert list(matched["matched_building_id"].fillna("")) == ["A", "", "", "", "C"]
    # every reason comes with its message
    assert list(matched["unmatched_message"].dropna()) == [REGISTRY_REASONS[c] for c in
                                                            matched["unmatched_reason"].dropna()]
    progress = (tmp_path / "run" / "progress.json").read_text(encoding="utf-8")
    assert "Infinity" not in progress and "NaN" not in progress  # the rejected capacities count nowhere
    validated = invoke("validate", tmp_path / "run", "--lang", "en")
    assert validated.exit_code == 0, (validated.output, validated.exception)
    assert "Traceback" not in validated.output


def test_a_row_repeated_to_the_last_value_counts_once_and_a_repeated_id_is_told(tmp_path, caplog):
    """A sheet pasted twice would count its capacity twice: an exact copy of an earlier
    row is set aside (duplicate_row); rows that share an id but differ (phases of one
    project?) both count, and the log says which id repeats."""
    with caplog.at_level("WARNING", logger="pvsurvey.io.registry"):
        reg = registry(tmp_path, HEADER
                       + "R1,A,100,2023-01-01,connected\n"
                       + "R2,B,50,2023-02-01,connected\n"
                       + "R1,A,100,2023-01-01,connected\n"        # the first row again, every value alike
                       + "R2,B,80,2024-05-01,connected\n")        # R2 again, a second phase
    assert reasons(reg) == ["", "", "duplicate_row", ""]
    assert usable_rows(reg)["registry_row"].tolist() == [0, 1, 3]
    assert reg.loc[reg["reject_reason"].isna(), "capacity_kwp"].sum() == pytest.approx(230.0)
    warned = [r.getMessage() for r in caplog.records if "registry id(s) name several rows" in r.getMessage()]
    assert len(warned) == 1 and "1 registry id(s)" in warned[0] and "(e.g. R2)" in warned[0]
    assert REGISTRY_REASONS["duplicate_row"].startswith("the same row as an earlier one")
