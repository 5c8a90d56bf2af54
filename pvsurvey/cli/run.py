"""``pvsurvey run [CONFIG]``: survey every roof of a config (the demo by default)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from . import EXIT_ROWS_REJECTED, cli, handle_errors


def make_task_counter(label: str):
    """Partitions done as they finish: a bar on a terminal, log-friendly lines otherwise."""
    state = {"t0": time.perf_counter(), "last": 0.0}
    tty = sys.stderr.isatty()

    def on_tasks_done(done: int, total: int):
        elapsed = time.perf_counter() - state["t0"]
        if tty:
            width = 30
            filled = int(width * done / total)
            click.echo(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                       f"partitions {elapsed:5.1f}s", err=True, nl=done == total)
        elif done == total or elapsed - state["last"] >= 10:
            state["last"] = elapsed
            click.echo(f"{label}: {done}/{total} partitions done after {elapsed:.1f}s", err=True)

    return on_tasks_done


def footprint_rows(path) -> int | None:
    """Rows of a local GeoParquet file (or folder of them) from the files' footers;
    None for any other source (counted later, when the inputs are checked)."""
    try:
        import pyarrow.parquet as pq

        path = Path(path)
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        if not files or any(f.suffix.lower() not in (".parquet", ".geoparquet") for f in files):
            return None
        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    except Exception:  # a bad file is reported by the checks, with its own message
        return None


def start_workers_early(cfg, scheduler, workers, serial: bool, full: bool):
    """The run's executor with its local workers already booting, when the run will
    surely need them: a full survey (``--full``: nothing is taken from the cache) of
    more footprint rows than ``parallel.in_process_max_rows``, on this machine. They
    then boot, and import the task code, while this process imports its own
    (about 3 s on the reference machine, 2026-12-03); None otherwise (the run starts
    them itself when the rows to compute are known)."""
    from ..execution.executor import Executor
    from ..pipeline import WORKER_MODULES

    if serial or not full or (scheduler or cfg.parallel.scheduler) is not None:
        return None
    rows = footprint_rows(cfg.footprints.path)
    if rows is None or rows <= cfg.parallel.in_process_max_rows:
        return None
    executor = Executor(None, workers or cfg.parallel.workers, False, cfg.parallel.in_process_max_rows,
                        cfg.parallel.shared_filesystem, preload=WORKER_MODULES, start=cfg.parallel.worker_start)
    executor.start(rows)
    return executor


@cli.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to write (replaced as a whole when the run succeeds). "
                   "Default: runs/<name>.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on an existing dask.distributed cluster, e.g. tcp://10.0.0.5:8786.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Local worker processes (default: one per CPU core).")
@click.option("--serial", is_flag=True, help="Run in one process without Dask (debugging).")
@click.option("--installations", metavar="PATH|URL",
              help="Installed-PV registry replacing the config's (e.g. another snapshot); a path or an "
                   "object-storage URL such as s3://bucket/registry.csv.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Date the progress figures describe (default: config progress.as_of, else today).")
@click.option("--wait", is_flag=True, help="Wait for another run writing the same output instead of failing.")
@click.option("--full", is_flag=True, help="Survey every partition again, even those unchanged since the last run.")
@click.option("--publish-url", metavar="URL",
              help="Copy the finished run to object storage (s3://bucket/prefix, gs://..., az://...) as "
                   "runs/<run-id>/ with a LATEST object; default: the config's output.publish_url.")
@handle_errors
def run_command(config, out_dir, scheduler, workers, serial, installations, as_of, wait, full, publish_url):
    """Survey usable roof area, capacity and yield of every building.

    CONFIG is a survey YAML file (see pipelines/). Without it, the bundled
    Shanghai demo runs.

    Exit codes: 0 success (the summary counts the rows set aside); 3 success,
    but more rows were set aside than the config's 'checks' allow (default: over
    1 % of footprint rows rejected, over 20 registry rows unmatched, or any park
    rejected; see rejected.parquet and installations_matched.csv); 2 bad input
    or config; 1 unexpected failure.
    """
    import logging

    from ..config.loading import load_config
    from ..execution.executor import dask_log_level

    # a task's traceback, logged by its worker, would come before the one-line error: --debug shows it
    debug = click.get_current_context().find_root().params.get("debug")
    with dask_log_level(logging.INFO if debug else logging.CRITICAL):
        cfg = load_config(config)
        executor = start_workers_early(cfg, scheduler, workers, serial, full)
        try:
            from ..pipeline.run import run_survey  # the whole stack: seconds of imports, the workers booting meanwhile

            result = run_survey(cfg, out_dir, scheduler=scheduler, workers=workers, serial=serial,
                                on_tasks_done=make_task_counter("survey"), as_of=as_of.date() if as_of else None,
                                installations=installations, wait=wait, reuse=not full, publish_url=publish_url,
                                executor=executor)
        finally:
            if executor is not None:
                executor.close()
    m = result.manifest
    c, t = m["counts"], m["totals"]
    click.echo(
        f"{m['name']}: {c['accepted']:,} buildings surveyed, {c['rejected']:,} rows rejected; "
        f"usable roof {t['usable_area_m2'] / 1e6:,.2f} km², capacity {t['capacity_kwp'] / 1e3:,.1f} MWp, "
        f"yield {t['annual_yield_kwh'] / 1e6:,.1f} GWh/yr ({m['timings_s']['survey']:.1f} s; "
        f"{m['partitions']['reused']} of {m['partitions']['reused'] + m['partitions']['surveyed']} "
        f"partitions unchanged and reused)")
    if t.get("usable_area_p90_m2") is not None:  # the ranges (README: How sure are we)
        ratio = (f", installation ratio {100 * t['install_ratio_p90_frac']:.1f}–{100 * t['install_ratio_p10_frac']:.1f} %"
                 if t.get("install_ratio_p90_frac") is not None and t.get("install_ratio_area_frac") is not None else "")
        click.echo(f"P90–P10 (exceeded with 90 % / 10 % probability): usable roof {t['usable_area_p90_m2'] / 1e6:,.2f}–"
                   f"{t['usable_area_p10_m2'] / 1e6:,.2f} km², capacity {t['capacity_p90_kwp'] / 1e3:,.0f}–"
                   f"{t['capacity_p10_kwp'] / 1e3:,.0f} MWp, yield {t['annual_yield_p90_kwh'] / 1e6:,.0f}–"
                   f"{t['annual_yield_p10_kwh'] / 1e6:,.0f} GWh/yr{ratio}")
    if m.get("validation"):
        v, cal = m["validation"]["city"], m["validation"]["calibration"]
        if v.get("systems"):
            interval = f" (95 %: {cal['low']:.3f}–{cal['high']:.3f})" if cal.get("low") is not None else ""
            click.echo(f"against metered generation: {v['systems']:,} systems, bias {100 * v['bias_frac']:+.1f} %, "
                       f"{100 * v['inside_band_frac']:.0f} % inside their P90–P10 band; calibration factor "
                       f"{cal['factor']:.3f}{interval}, not applied (validation_summary.csv)")
    if t.get("install_ratio_area_frac") is not None:
        click.echo(f"progress as of {m['as_of']}: installation ratio {100 * t['install_ratio_area_frac']:.1f} % "
                   f"of usable roof area, {t['new_kwp_since_baseline'] / 1e3:,.1f} MW new since the baseline "
                   f"(pvsurvey progress {result.run_dir})")
        for plan in t.get("plans") or []:
            click.echo(f"  {plan_summary(plan)}")
    click.echo(f"outputs: {result.run_dir} (run {m['run_id']})")
    if result.published_url:
        click.echo(f"copied to: {result.published_url}")
    for name in m["outputs"]:
        click.echo(f"  {name}")
    set_aside = rows_set_aside(m)
    click.echo(set_aside_line(set_aside))
    crossed = thresholds_crossed(m, set_aside)
    if crossed:
        click.echo(f"exit code {EXIT_ROWS_REJECTED}: {'; '.join(crossed)} (thresholds: config 'checks')", err=True)
        sys.exit(EXIT_ROWS_REJECTED)


def plan_summary(plan: dict) -> str:
    """One line per plan of the run's summary, from the plan's own figures."""
    from ..tools.progress_report import capacity_label, ratio_label

    head = f"{plan['name']['en']} ({plan['baseline_date']} to {plan['deadline']})"
    ratio, new = plan["install_ratio_frac"], (plan["new_kwp_since_baseline"] or 0) / 1e3
    cap = plan["new_capacity_target_kwp"]
    figures = (f"ratio {100 * ratio:.1f} % of {ratio_label(plan['target_install_ratio'])}, {new:,.1f} MW new"
               + (f" of {capacity_label(cap)}" if cap else ""))
    if plan["status"] == "assessed":
        return f"{head}: {plan['outcome']} at the deadline ({figures} as of {plan['figures_as_of']})"
    if plan["status"] == "not_started":
        return f"{head}: not started (ratio now {100 * ratio:.1f} % of {ratio_label(plan['target_install_ratio'])})"
    return f"{head}: in progress, {figures}"


def rows_set_aside(manifest: dict) -> dict[str, int]:
    """Input rows not used, by input: rejected footprints and parks, unusable or unmatched registry rows."""
    counts = manifest["counts"]
    registry = counts.get("registry") or {}
    parks = manifest.get("parks") or {}
    return {"footprints": int(counts["rejected"]),
            "registry": int(sum((registry.get("unmatched_by_reason") or {}).values())),
            "parks": len(parks.get("rejected", []))}


def set_aside_line(set_aside: dict[str, int]) -> str:
    """The summary line that always says how many rows were set aside, and where they are."""
    return (f"set aside: {sum(set_aside.values()):,} row(s) — {set_aside['footprints']:,} footprint(s) "
            f"(rejected.parquet), {set_aside['registry']:,} registry row(s) (installations_matched.csv), "
            f"{set_aside['parks']:,} park(s) (manifest.json)")


def thresholds_crossed(manifest: dict, set_aside: dict[str, int]) -> list[str]:
    """What makes this run worth a look: the config's ``checks`` thresholds it crossed."""
    checks = manifest["config"]["checks"]
    input_rows = manifest["counts"]["input_rows"]
    crossed = []
    share = set_aside["footprints"] / input_rows if input_rows else 0.0
    if share > checks["max_rejected_footprint_frac"]:
        crossed.append(f"{100 * share:.2f} % of footprint rows rejected > "
                       f"{100 * checks['max_rejected_footprint_frac']:.2f} %")
    if set_aside["registry"] > checks["max_unmatched_registry_rows"]:
        crossed.append(f"{set_aside['registry']:,} registry rows unmatched > {checks['max_unmatched_registry_rows']:,}")
    if set_aside["parks"] > checks["max_rejected_parks"]:
        crossed.append(f"{set_aside['parks']:,} park(s) rejected > {checks['max_rejected_parks']:,}")
    return crossed
