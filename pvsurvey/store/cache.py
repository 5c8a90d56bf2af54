"""Results kept between nightly runs: one directory per key, holding a task's
output files (hard links, so keeping them costs no copy) and its small result.

An entry appears in one rename, so a reader sees it whole or not at all; two
workers storing the same key leave one entry.
"""

from __future__ import annotations


import hashlib
import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from ..io.writers import atomic_write
from .runs import store_dir

import pickle
import uuid


log = logging.getLogger(__name__)

RESULT_FILE = "result.pkl"


def link(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst`` (a hard link on the same file system, else a copy),
    replacing what a retried task's first attempt may have left there."""
    dst.unlink(missing_ok=True)  # one task owns this name; a rename over a hard link of itself is a no-op
    try:
        os.link(src, dst)  # same file system: no copy
    except OSError:
        shutil.copyfile(src, dst)


def entry_name(key: str, round_: str = "") -> str:
    """The entry of a key: round 1's under the bare key, later rounds' prefixed."""
    return f"{round_}-{key}" if round_ else key


def entry_path(cache_dir: Path | None, key: str | None, round_: str = "") -> Path | None:
    """Where a result is kept; None without a cache or a key."""
    return cache_dir / entry_name(key, round_) if cache_dir is not None and key else None


def has_entry(entry: Path | None) -> bool:
    """Whether ``entry`` holds a result to reuse. An entry with a Parquet file whose
    footer cannot be read (truncated or overwritten: its files are hard links of a
    published run's, so damage to one is damage to both) is removed and is none: the
    partition is surveyed again rather than its damage published again."""
    if entry is None or not (entry / RESULT_FILE).is_file():
        return False
    from ..io.datasets import damaged_part  # (geopandas: only where a cache is read)

    damaged = damaged_part(*sorted(entry.glob("*.parquet")))
    if damaged is not None:
        log.warning("%s: damaged (%s); its partition is computed again", *damaged)
        shutil.rmtree(entry, ignore_errors=True)
        return False
    return True


def store_entry(entry: Path, files: dict[str, Path], result) -> None:
    """Keep ``files`` (name in the entry -> file written by the task) and ``result``."""
    tmp = entry.with_name(f".{entry.name}.{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    for name, path in files.items():
        link(path, tmp / name)
    with open(tmp / RESULT_FILE, "wb") as fh:
        pickle.dump(result, fh)
    try:
        os.rename(tmp, entry)
    except OSError:  # another worker stored the same key first
        shutil.rmtree(tmp, ignore_errors=True)


def load_entry(entry: Path, targets: dict[str, Path]):
    """Link the entry's files to ``targets`` (name in the entry -> destination;
    names the entry lacks are skipped) and return its stored result."""
    with open(entry / RESULT_FILE, "rb") as fh:
        result = pickle.load(fh)
    for name, dst in targets.items():
        if (entry / name).is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            link(entry / name, dst)
    return result


def read_pickle(path: Path):
    """A kept object, or None when absent or unreadable (a cache is never required)."""
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return None


def write_pickle(path: Path, obj) -> None:
    """Keep an object (whole or not at all: :func:`pvsurvey.io.writers.atomic_write`)."""
    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh)

    atomic_write(path, dump)


def frame_digest(frame: pd.DataFrame | None) -> str:
    """A digest of a small table's values and index (order matters)."""
    if frame is None or not len(frame):
        return "none"
    return rows_digest(row_hashes(frame), frame.columns)


def row_hashes(frame: pd.DataFrame):
    """One hash per row of values and index: a row's hash does not depend on the
    other rows, so hashing a table once serves the digests of all its slices."""
    return pd.util.hash_pandas_object(frame, index=True).to_numpy()


def rows_digest(hashes, columns) -> str:
    """:func:`frame_digest` of the rows with these :func:`row_hashes`."""
    if not len(hashes):
        return "none"
    return hashlib.sha256(hashes.tobytes() + ",".join(map(str, columns)).encode()).hexdigest()[:32]


def combine(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def cache_dir(run_dir: Path) -> Path:
    """Partition results kept for the next run (beside the dated runs)."""
    return store_dir(run_dir) / ".cache"


def yields_entry(salt: str) -> str:
    """The cache file of the pvlib yields computed under one cache salt."""
    return f"yields-{salt[:32]}.pkl"


def prune_cache(run_dir: Path, keep: set) -> None:
    """Drop cached results the latest run did not use (the cache holds one run)."""
    root = cache_dir(run_dir)
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name not in keep:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
