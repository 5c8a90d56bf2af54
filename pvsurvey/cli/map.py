"""``pvsurvey map RUN_DIR``: (re)write the interactive maps of a run."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli, handle_errors


@cli.command("map")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--park", "park_id", metavar="ID", help="Only this park's map (a park_id of parks.csv).")
@click.option("--lang", type=click.Choice(["zh", "en"]), help="Language of labels (default: the config's maps.lang).")
@click.option("--tiles", type=click.Choice(["osm", "tianditu", "gaode", "none"]),
              help="Base map (default: the config's maps.tiles). tianditu needs maps.tianditu_key or TIANDITU_KEY; "
                   "gaode shifts the drawn overlays to GCJ-02.")
@click.option("--offline/--online", default=None,
              help="Offline: Leaflet and plugins from lib/ beside the HTML, nothing but tiles from the network "
                   "(default: the config's maps.offline).")
@click.option("--publish", "publish_dir", metavar="DIR|URL",
              help="Also copy the maps to this folder, or object-storage URL (s3://bucket/maps), under stable "
                   "names (index.html, park-<id>.html).")
@handle_errors
def map_command(run_dir, park_id, lang, tiles, offline, publish_dir):
    """Write the city overview (maps/index.html) and one map per park
    (maps/park-<id>.html) of RUN_DIR, a directory written by 'pvsurvey run'."""
    from ..locations import is_url, location
    from ..tools.map_writer import write_maps

    publish_dir = location(publish_dir)
    written = write_maps(run_dir, park=park_id, lang=lang, tiles=tiles, offline=offline, publish_dir=publish_dir)
    click.echo(f"maps: {(run_dir / 'maps').absolute()}")
    for path in written:
        click.echo(f"  {path.name}")
    if publish_dir is not None:
        click.echo(f"published to: {publish_dir if is_url(publish_dir) else publish_dir.absolute()}")
