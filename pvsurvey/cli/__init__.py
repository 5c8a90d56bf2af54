"""Command line: ``pvsurvey COMMAND``. One thin module per command.

Errors pvsurvey raises on purpose become one line on stderr and exit code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import logging
import sys
import warnings

import click

from .. import __version__
from ..errors import PVSurveyError

EXIT_INPUT_ERROR = 2
EXIT_ROWS_REJECTED = 3  # the run succeeded, but some input rows were set aside


def handle_errors(func):
    """Turn PVSurveyError into one clear line and exit code 2 (traceback with --debug)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except PVSurveyError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"pvsurvey: error: {exc}", err=True)
            sys.exit(EXIT_INPUT_ERROR)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pvsurvey")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(debug: bool, quiet: bool):
    """Survey rooftop-PV potential of industrial parks and track progress toward
    the targets of the plans in the survey's config (installation ratio of usable
    roofs, new capacity)."""
    # pvsurvey's own messages at INFO; the libraries' (dask's many) only when they warn
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("pvsurvey").setLevel(logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO))
    if not debug:  # a library's warning (GDAL on a broken feature) in one line, not a site-packages path and source
        warnings.showwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"pvsurvey: warning: {' '.join(str(message).split())}", err=True)


def commands() -> click.Group:
    """The ``pvsurvey`` command group with every command registered."""
    from . import candidates, fetch, map, progress, run, runs, validate  # noqa: F401,A004  (each module registers its commands)

    return cli


def main():
    commands()(prog_name="pvsurvey")
