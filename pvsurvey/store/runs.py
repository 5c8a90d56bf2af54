"""Run directories: dated runs, an atomically swapped pointer, a lock, retention.

Layout for ``--out runs/shanghai-demo``::

    runs/shanghai-demo.runs/20250630T020000Z-1a2b3c/   one directory per published run
    runs/shanghai-demo -> shanghai-demo.runs/<latest>   the "latest" pointer (a symlink)
    runs/shanghai-demo.lock                             held while a run writes

A run is built in a hidden ``.partial-*`` directory of the store, gets its
``_COMPLETE`` marker, and is published by renaming a new symlink over the
pointer — one ``rename(2)``, atomic on POSIX — so a reader sees the previous run
or the new one, never a mixture, whenever the writer is killed.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputFileError, RunLockedError
from .run_directory import COMPLETE_MARKER, MANIFEST



def store_dir(run_dir: Path) -> Path:
    """The folder holding the dated runs behind ``run_dir``."""
    return run_dir.with_name(run_dir.name + ".runs")


def lock_path(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + ".lock")


@contextmanager
def run_lock(run_dir: Path, wait: bool = False, timeout_s: float = 6 * 3600):
    """Hold the output's lock for the life of the block.

    The lock is an ``flock`` on ``<run_dir>.lock``: the kernel drops it when the
    holder dies, even by ``kill -9``, so a crashed run never blocks the next.

    Raises
    ------
    RunLockedError
        Another run holds the lock (and ``wait`` is False, or the wait timed out).
    """
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if not wait or time.monotonic() > deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    raise RunLockedError(f"{run_dir}: another run is writing it ({holder}); wait for it to finish "
                                         "or run with --wait") from None
                time.sleep(1.0)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def new_partial_dir(run_dir: Path) -> Path:
    """A fresh hidden directory in the store to build a run in."""
    store = store_dir(run_dir)
    store.mkdir(parents=True, exist_ok=True)
    path = store / f".partial-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    return path


def new_run_id() -> str:
    """A sortable, unique name for a run: UTC time and a random suffix."""
    return f"{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def publish(partial: Path, run_dir: Path, keep_runs: int, run_id: str | None = None) -> Path:
    """Give a finished run its dated name and point ``run_dir`` at it atomically.

    Returns the dated directory. Older runs beyond ``keep_runs`` and leftovers of
    killed runs are removed afterwards; a failure there never undoes the publish.
    """
    if not (partial / COMPLETE_MARKER).is_file():
        raise RuntimeError(f"{partial} has no {COMPLETE_MARKER} marker; refusing to publish it")
    _adopt_plain_directory(run_dir)
    final = partial.with_name(run_id or new_run_id())
    os.rename(partial, final)
    link = run_dir.with_name(f".{run_dir.name}.link-{uuid.uuid4().hex[:8]}")
    os.symlink(os.path.relpath(final, run_dir.parent), link)
    os.replace(link, run_dir)  # the atomic step
    prune(run_dir, keep_runs)
    return final


def _adopt_plain_directory(run_dir: Path) -> None:
    """A real directory where the pointer goes (an older layout) joins the store."""
    if run_dir.is_symlink() or not run_dir.exists():
        return
    if not (run_dir / COMPLETE_MARKER).is_file() and not (run_dir / MANIFEST).is_file():
        raise InputFileError(f"{run_dir} exists and is not a pvsurvey run directory; choose another --out")
    os.rename(run_dir, store_dir(run_dir) / f"adopted-{uuid.uuid4().hex[:6]}")


def completed_runs(run_dir: Path) -> list[Path]:
    """Published runs behind ``run_dir``, oldest first."""
    store = store_dir(run_dir)
    if not store.is_dir():
        return []
    runs = [p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / COMPLETE_MARKER).is_file()]
    return sorted(runs, key=lambda p: (p / COMPLETE_MARKER).stat().st_mtime)


def prune(run_dir: Path, keep_runs: int) -> list[Path]:
    """Remove runs beyond the newest ``keep_runs`` (never the current one) and
    partial directories of runs that died (the caller holds the lock)."""
    current = run_dir.resolve() if run_dir.is_symlink() else None
    removed = []
    runs = completed_runs(run_dir)
    for old in runs[:-keep_runs] if keep_runs > 0 else []:
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
    store = store_dir(run_dir)
    for leftover in store.glob(".partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for link in run_dir.parent.glob(f".{run_dir.name}.link-*"):
        link.unlink(missing_ok=True)
    return removed


def run_summaries(run_dir: Path) -> list[dict]:
    """Headline figures of every published run behind ``run_dir``, newest first."""
    import json

    current = run_dir.resolve() if run_dir.is_symlink() else None
    rows = []
    for path in reversed(completed_runs(run_dir)):
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows.append(run_summary(path.name, manifest, path.resolve() == current))
    return rows


def run_summary(run_id: str, m: dict, latest: bool) -> dict:
    """One run's headline figures from its manifest (a row of ``pvsurvey runs``)."""
    t, c = m.get("totals", {}), m.get("counts", {})
    return {
        "run_id": run_id, "latest": latest, "finished_at": m.get("finished_at", "")[:19],
        "as_of": m.get("as_of"), "buildings": c.get("accepted"), "rejected": c.get("rejected"),
        "capacity_mwp": (t.get("capacity_kwp") or 0) / 1000, "install_ratio": t.get("install_ratio_area_frac"),
        "new_mw": (t.get("new_kwp_since_baseline") or 0) / 1000,
        "seconds": sum(v for v in m.get("timings_s", {}).values() if isinstance(v, (int, float))),
    }
