"""``pvsurvey progress RUN_DIR``: where the city, its districts and parks stand."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli, handle_errors


@cli.command("progress")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the table and chart labels.")
@click.option("--history", "history_file", type=click.Path(dir_okay=False, path_type=Path),
              help="History CSV (default: <name>-history.csv beside the run directory).")
@handle_errors
def progress_command(run_dir, lang, history_file):
    """Print progress toward the 50 % installation ratio and the 1 GW new-capacity
    targets (city, then districts, then parks furthest from target first) and
    write the trajectory chart (progress.png, progress.svg) into RUN_DIR."""
    from ..tools.progress_report import report_progress

    text, charts = report_progress(run_dir, lang, history_file)
    click.echo(text)
    for path in charts:
        click.echo(f"chart: {path}")
