"""``pvsurvey runs RUN_DIR``: the published runs behind a run directory."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli, handle_errors


@cli.command("runs")
@click.argument("run_dir", metavar="RUN_DIR|URL", default="runs/shanghai-demo")
@handle_errors
def runs_command(run_dir):
    """List past runs (newest first) with their headline figures. RUN_DIR is the
    run directory given to 'pvsurvey run --out' (default runs/shanghai-demo), or
    the object storage given as output.publish_url (s3://bucket/prefix)."""
    from ..errors import InputFileError
    from ..locations import is_url
    from ..store.runs import run_summaries, store_dir
    from ..store.object_storage import remote_run_summaries

    if is_url(run_dir):
        rows = remote_run_summaries(run_dir)
        if not rows:
            raise InputFileError(f"{run_dir}: no published run in {run_dir.rstrip('/')}/runs/")
    else:
        run_dir = Path(run_dir)
        rows = run_summaries(run_dir)
        if not rows:
            raise InputFileError(f"{run_dir}: no published run in {store_dir(run_dir)}")
    click.echo(f"{'run':<30} {'as of':<10} {'buildings':>10} {'rejected':>8} {'MWp':>10} {'ratio':>7} "
               f"{'new MW':>8} {'time s':>7}")
    for r in rows:
        ratio = "" if r["install_ratio"] is None else f"{100 * r['install_ratio']:.1f}%"
        mark = "*" if r["latest"] else " "
        click.echo(f"{mark}{r['run_id']:<29} {r['as_of'] or '':<10} {r['buildings'] or 0:>10,} {r['rejected'] or 0:>8,} "
                   f"{r['capacity_mwp']:>10,.1f} {ratio:>7} {r['new_mw']:>8,.1f} {r['seconds']:>7.1f}")
    click.echo("* = latest (what the run directory points at, or LATEST names)")
