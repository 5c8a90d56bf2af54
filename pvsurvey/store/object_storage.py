"""Finished runs and maps copied to object storage (an fsspec URL such as
``s3://bucket/pvsurvey/shanghai``), for readers who have no access to the
machine that ran them: officials' web servers, park managers' downloads
(:func:`fetch_run` makes a copy a run directory again), other teams' jobs.

Layout under ``output.publish_url``::

    <url>/runs/<run-id>/...   every file of a run; its _COMPLETE marker is written last
    <url>/LATEST              the newest complete run's id (one line)

Object stores have no rename and no symlink, but one PUT replaces an object
whole: ``LATEST`` is written only after the run's last file, so a reader who
resolves ``LATEST`` then reads ``runs/<id>/`` sees the previous run or the new
one, never a mixture. Runs beyond ``output.keep_runs`` and copies left
incomplete by a killed upload are removed afterwards. One client publishes to a
URL at a time: the run lock on ``--out`` serialises the nightly runs that share it.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputFileError, PVSurveyError
from ..io.storage import STORE_HINT, filesystem
from .run_directory import COMPLETE_MARKER
from .runs import run_summary

log = logging.getLogger(__name__)

LATEST = "LATEST"


class PublishError(PVSurveyError, RuntimeError):
    """A copy to object storage failed (the local run stays published)."""


def _store(url: str):
    fs, root = filesystem(url)
    return fs, root.rstrip("/")


@contextmanager
def _failing(url: str, what: str):
    """Turn a store failure (botocore, aiohttp, google errors: no common base) into one line naming the URL."""
    try:
        yield
    except PVSurveyError:
        raise
    except Exception as exc:
        raise PublishError(f"{url}: {what} failed ({type(exc).__name__}: {exc}); {STORE_HINT}") from None


def check_writable(url: str) -> None:
    """Write and remove a probe object, so that a run which could not publish stops before the survey.

    Raises
    ------
    PublishError
        No package for the protocol, no credentials, no such bucket, no write permission.
    """
    with _failing(url, "a test write"):
        fs, root = _store(url)
        probe = f"{root}/.pvsurvey-write-check-{uuid.uuid4().hex[:8]}"
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)


def _upload(fs, local_dir: Path, target: str, files: list[Path]) -> None:
    if files:  # one call: the async stores (s3fs, gcsfs, adlfs) send the files concurrently
        fs.put([str(p) for p in files], [f"{target}/{p.relative_to(local_dir).as_posix()}" for p in files])


def copy_run_to_url(run_path: Path, url: str, keep_runs: int) -> str:
    """Copy a published run to ``<url>/runs/<run-id>/`` and point ``<url>/LATEST`` at it.

    Returns
    -------
    str
        The URL of the copy.
    """
    run_id = run_path.name
    with _failing(url, f"copying run {run_id} (published locally in {run_path.parent})"):
        fs, root = _store(url)
        target = f"{root}/runs/{run_id}"
        files = sorted(p for p in run_path.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER)
        log.info("copying run %s to %s: %d files, %.1f MB", run_id, url, len(files),
                 sum(p.stat().st_size for p in files) / 1e6)
        _upload(fs, run_path, target, files)
        fs.put_file(str(run_path / COMPLETE_MARKER), f"{target}/{COMPLETE_MARKER}")
        fs.pipe_file(f"{root}/{LATEST}", f"{run_id}\n".encode())  # the atomic step
        _prune(fs, root, keep_runs, run_id)
    return f"{url.rstrip('/')}/runs/{run_id}"


def latest_run_id(url: str) -> str | None:
    """The run ``<url>/LATEST`` names (None before the first publish)."""
    with _failing(url, "reading LATEST"):
        fs, root = _store(url)
        try:
            return fs.cat_file(f"{root}/{LATEST}").decode().strip() or None
        except FileNotFoundError:
            return None


def fetch_run(url: str, target: Path, run_id: str | None = None) -> str:
    """Download a run copied to ``url`` (``LATEST``'s unless ``run_id``) into the
    new directory ``target``, a run directory for every other command.

    The files land in a hidden sibling first and are renamed into place last, so
    a failed download leaves nothing behind.

    Returns
    -------
    str
        The run's id.

    Raises
    ------
    InputFileError
        ``target`` exists and is not empty; no run published; no complete run of that id.
    PublishError
        The store cannot be read (credentials, bucket, network).
    """
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputFileError(f"{target}: already exists; give a new directory to download the run into")
    run_id = run_id or latest_run_id(url)
    if run_id is None:
        raise InputFileError(f"{url}: no run published here (no {LATEST}); runs are copied by 'pvsurvey run "
                             "--publish-url' or output.publish_url")
    with _failing(url, f"downloading run {run_id}"):
        fs, root = _store(url)
        source = f"{root}/runs/{run_id}"
        if not fs.exists(f"{source}/{COMPLETE_MARKER}"):
            raise InputFileError(f"{url}: no complete run {run_id} in runs/; 'pvsurvey runs {url}' lists them")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            files = fs.find(source)
            log.info("downloading run %s from %s: %d files", run_id, url, len(files))
            fs.get(files, [str(partial / f[len(source) + 1:]) for f in files])
            if target.exists():
                target.rmdir()
            partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return run_id


def _run_ids(fs, root: str) -> tuple[list[str], list[str]]:
    """Complete and incomplete run ids under ``<root>/runs/``, oldest first (ids sort by time)."""
    fs.invalidate_cache(root)  # listings cached by this process may predate another writer's
    listed = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(f"{root}/runs", detail=False)} \
        if fs.exists(f"{root}/runs") else set()
    complete = {p.rsplit("/", 2)[-2] for p in fs.glob(f"{root}/runs/*/{COMPLETE_MARKER}")}
    return sorted(complete), sorted(listed - complete)


def _prune(fs, root: str, keep_runs: int, current: str) -> None:
    complete, incomplete = _run_ids(fs, root)
    old = [r for r in complete[:-keep_runs] if r != current] if keep_runs > 0 else []
    for run_id in old + [r for r in incomplete if r != current]:
        fs.rm(f"{root}/runs/{run_id}", recursive=True)


def remote_run_summaries(url: str) -> list[dict]:
    """Headline figures of every complete run under ``url``, newest first."""
    latest = latest_run_id(url)
    rows = []
    with _failing(url, "listing the runs"):
        fs, root = _store(url)
        for run_id in reversed(_run_ids(fs, root)[0]):
            try:
                manifest = json.loads(fs.cat_file(f"{root}/runs/{run_id}/manifest.json"))
            except (FileNotFoundError, ValueError):
                continue
            rows.append(run_summary(run_id, manifest, run_id == latest))
    return rows


def publish_maps_to_url(maps_dir: Path, url: str, pages: list[str], prune: bool = True) -> list[str]:
    """Upload a run's maps under stable names: the offline assets, then ``pages``
    in order, the last one (the overview) alone after the others — each object is
    replaced whole, so a page never links to one not yet there. With ``prune``,
    park maps of parks no longer in the run are removed."""
    with _failing(url, "publishing the maps"):
        fs, root = _store(url)
        lib = maps_dir / "lib"
        _upload(fs, maps_dir, root, sorted(p for p in lib.rglob("*") if p.is_file()) if lib.is_dir() else [])
        _upload(fs, maps_dir, root, [maps_dir / n for n in pages[:-1]])
        if pages:
            fs.put_file(str(maps_dir / pages[-1]), f"{root}/{pages[-1]}")
        if prune:
            keep = {p.name for p in maps_dir.glob("park-*.html")}
            stale = [p for p in fs.glob(f"{root}/park-*.html") if p.rsplit("/", 1)[-1] not in keep]
            if stale:
                fs.rm(stale)
    return [f"{url.rstrip('/')}/{n}" for n in pages]
