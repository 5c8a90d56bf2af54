"""``pvsurvey export`` and ``pvsurvey candidates import|plan``: the park managers'
lists of buildable projects (可建设项目清单)."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli, handle_errors
from ..errors import ConfigError

EXPORT_FORMATS = ("csv", "xlsx", "geojson", "gpkg", "fgb", "parquet")

SCOPE = [click.option("--park", "park", metavar="ID", help="One park's projects."),
         click.option("--district", "district", metavar="NAME", help="One district's projects.")]


def scope_options(func):
    for option in reversed(SCOPE):
        func = option(func)
    return func


@cli.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@scope_options
@click.option("--layer", type=click.Choice(["candidates", "buildings"]), default="candidates", show_default=True,
              help="The candidate-project list, or every surveyed building (survey columns, PV status, "
                   "candidate project id) as one file for GIS.")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS),
              help="csv/xlsx for Excel; gpkg, fgb (FlatGeobuf), parquet (one GeoParquet file) or geojson for "
                   "GIS/QGIS. Default: the suffix of --out, else xlsx for candidates, gpkg for buildings.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, help="Header language.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default RUN_DIR/exports/LAYER[-park-ID|-district-NAME].FORMAT).")
@handle_errors
def export_command(run_dir, park, district, layer, fmt, lang, out):
    """Export the candidate-project list of the city, a district or a park, with
    the latest statuses and notes from the park managers; or, with --layer
    buildings, the surveyed buildings as one GeoPackage / FlatGeobuf / GeoParquet file.

    \b
    Examples:
      pvsurvey export runs/shanghai-demo --park P05 --format xlsx
      pvsurvey export runs/shanghai-demo --layer buildings --district 浦东新区 --format gpkg
    """
    fmt = _format_of(fmt, out)
    if layer == "buildings":
        from ..tools.building_export import export_buildings

        path = export_buildings(run_dir, fmt or "gpkg", lang, park, district, out)
    else:
        from ..tools.candidate_lists import export_candidates

        path = export_candidates(run_dir, fmt or "xlsx", lang, park, district, out)
    click.echo(f"wrote {path}")


def _format_of(fmt: str | None, out: Path | None) -> str | None:
    """The format to write: ``--format``, else the one ``--out`` names by its suffix
    (``list.csv`` is a CSV); one line when they disagree or the suffix is none of them."""
    if out is None:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    suffix = {"geoparquet": "parquet", "json": "geojson"}.get(suffix, suffix)
    if suffix not in EXPORT_FORMATS:
        raise ConfigError(f"--out {out}: a file ending in .{' .'.join(EXPORT_FORMATS)} (the format it is written in)")
    if fmt is not None and fmt != suffix:
        raise ConfigError(f"--out {out} names a .{suffix} file but --format is {fmt}; give one of them, or both alike")
    return suffix


@cli.group("candidates")
def candidates_group():
    """Candidate projects: take back edited lists, plan the cheapest way to the targets."""


@candidates_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The run the list was exported from (its status store sits beside it).")
@handle_errors
def import_command(file, run_dir):
    """Keep the statuses and notes of an edited list (the exported CSV or XLSX).

    Statuses: identified, contacted, agreed, under_construction, connected,
    rejected (or 已联系, 已同意, 在建, 已并网, 放弃 …). They stay with each project id
    across nightly runs; the registry marks a project connected by itself.
    """
    from ..tools.candidate_lists import import_statuses

    result = import_statuses(file, run_dir)
    click.echo(f"{result['updated']} project(s) updated, {result['unchanged']} unchanged -> {result['store']}")
    if result["unknown_projects"]:
        click.echo(f"warning: {len(result['unknown_projects'])} project id(s) not in this run, kept for later: "
                   f"{', '.join(result['unknown_projects'][:10])}", err=True)
    for row in result["bad_statuses"]:
        what = f"unknown status {row['status']!r}" if row["status"].strip() else "no status"
        click.echo(f"warning: {row['project_id']}: {what} left out (allowed: {', '.join(result['allowed'])})", err=True)


@candidates_group.command("plan")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@scope_options
@click.option("--by", "rank_by", type=click.Choice(["lcoe", "payback"]), default="lcoe", show_default=True,
              help="Cheapest first by levelised cost or by simple payback.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, help="Header language.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Plan file, .csv or .xlsx (default RUN_DIR/exports/plan[-scope]-BY.csv).")
@handle_errors
def plan_command(run_dir, park, district, rank_by, lang, out):
    """The shortest list of candidates, cheapest first, that lifts the
    installation ratio to its target and the new capacity to its target — or
    the statement that the remaining potential cannot."""
    from ..tools.candidate_lists import plan_gap

    plan = plan_gap(run_dir, park, district, rank_by, out, lang)
    n = len(plan["projects"])
    click.echo(f"{plan['scope']}: ratio {100 * plan['ratio_before']:.1f} % -> {100 * plan['ratio_after']:.1f} % "
               f"(target {100 * plan['target_ratio']:.0f} %), new capacity {plan['new_kwp_before'] / 1e3:,.1f} -> "
               f"{plan['new_kwp_after'] / 1e3:,.1f} MW"
               + (f" (target {plan['target_new_kwp'] / 1e3:,.0f} MW)" if plan["target_new_kwp"] else ""))
    click.echo(f"{n} project(s), {plan['capex_cny'] / 1e6:,.1f} M CNY, cheapest first by {rank_by}: {plan['path']}")
    if not plan["closes_ratio_gap"]:
        click.echo("the remaining candidates cannot close the installation-ratio gap", err=True)
    if plan["target_new_kwp"] and not plan["closes_capacity_gap"]:
        click.echo("the remaining candidates cannot close the new-capacity gap", err=True)
