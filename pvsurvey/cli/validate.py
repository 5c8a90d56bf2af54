"""``pvsurvey validate RUN_DIR``: the survey's yields against the registry's metered generation."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli, handle_errors


@cli.command("validate")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the text and chart labels.")
@handle_errors
def validate_command(run_dir, lang):
    """Compare the predicted annual yield of each connected system of the
    registry that carries its metered generation (metered_kwh_per_yr) with that
    metered year: bias, spread and the share inside each system's own P90-P10
    band, per city, district and park, and a calibration factor with its 95 %
    interval (reported, never applied). Writes validation.csv,
    validation_summary.csv, validation.json and validation.png/.svg into RUN_DIR."""
    from ..tools.validation_report import report_validation

    text, files, _ = report_validation(run_dir, lang)
    click.echo(text)
    for path in files:
        click.echo(f"written: {path}")
