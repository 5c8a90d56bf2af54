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
@click.option("--plan", "plan", metavar="ID",
              help="Only the plan with this id (default: every plan of the run's config).")
@handle_errors
def progress_command(run_dir, lang, history_file, plan):
    """Print where each plan of the run's config stands against its own targets
    (installation ratio and new capacity; city, then districts, then parks
    furthest from target first): before its deadline the progress and the
    forecast, after it the final assessment at the deadline. Writes the
    trajectory chart (progress.png, progress.svg) into RUN_DIR."""
    from ..tools.progress_report import report_progress

    text, charts = report_progress(run_dir, lang, history_file, plan)
    click.echo(text)
    for path in charts:
        click.echo(f"chart: {path}")
