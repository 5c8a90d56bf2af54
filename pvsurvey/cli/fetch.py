"""``pvsurvey fetch URL DIR``: a run copied to object storage, as a run directory."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli, handle_errors


@cli.command("fetch")
@click.argument("url")
@click.argument("target", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--run", "run_id", metavar="RUN_ID",
              help="The run to download (default: the one LATEST names); 'pvsurvey runs URL' lists them.")
@handle_errors
def fetch_command(url, target, run_id):
    """Download a run that 'pvsurvey run --publish-url URL' copied to object storage
    (s3://bucket/prefix, gs://..., az://...) into the new directory DIR, which the
    other commands then read like any run directory:

    \b
        pvsurvey fetch s3://pvsurvey/shanghai latest-run && pvsurvey progress latest-run

    Credentials and endpoint come from the environment (AWS_*, AWS_ENDPOINT_URL, ...)."""
    from ..errors import InputFileError
    from ..locations import is_url
    from ..store.object_storage import fetch_run

    if not is_url(url):
        raise InputFileError(f"{url}: not an object-storage URL; a local run directory needs no fetching")
    fetched = fetch_run(url, target, run_id)
    click.echo(f"run {fetched}: {target.absolute()}")
