"""Tasks on workers that do not share the client's files.

On an HPC queue or a Kubernetes cluster with a ReadWriteMany volume, every
worker mounts the run directory and a task reads and writes its part files
there. Where workers share nothing with the client (a Kubernetes cluster
without such a volume, a cloud Dask service), each task instead runs in a
temporary folder on its worker that stands in for the run's store
(:func:`pvsurvey.store.runs.store_dir`): the store's files the task reads are sent
with it, the files it writes come back with its result, and the client writes
them into the store — hard links as hard links, a cache entry's ``result.pkl``
last, so a half-received entry is never taken for a whole one. The inputs
themselves (footprints, raster) must still be readable by the workers: object
storage, or a path they mount.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from pathlib import Path

from ..io.writers import atomic_write
from ..store.cache import RESULT_FILE, link
from .collector import run_task

# A task's files on their way: relative path in the store -> its bytes, or the
# relative path of the file it is a hard link of.
Files = dict[str, "bytes | str"]


def remap(obj, old: Path, new: Path):
    """``obj`` with every :class:`~pathlib.Path` under ``old`` moved under ``new``.

    Looks into dataclasses (a changed copy), lists, tuples and dict values;
    anything else (frames, configs) is kept as it is, not copied.
    """
    if isinstance(obj, Path):
        try:
            return new / obj.relative_to(old)
        except ValueError:
            return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changed = {}
        for f in dataclasses.fields(obj):
            if f.init:
                value = getattr(obj, f.name)
                moved = remap(value, old, new)
                if moved is not value:
                    changed[f.name] = moved
        return dataclasses.replace(obj, **changed) if changed else obj
    if isinstance(obj, (list, tuple)):
        moved = [remap(v, old, new) for v in obj]
        return type(obj)(moved) if any(a is not b for a, b in zip(moved, obj)) else obj
    if isinstance(obj, dict):
        moved = {k: remap(v, old, new) for k, v in obj.items()}
        return moved if any(moved[k] is not v for k, v in obj.items()) else obj
    return obj


def paths_under(obj, root: Path) -> list[Path]:
    """The paths under ``root`` that ``obj`` names (where :func:`remap` looks)."""
    found: list[Path] = []

    def visit(value):
        if isinstance(value, Path):
            if value.is_relative_to(root):
                found.append(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                visit(getattr(value, f.name))
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)

    visit(obj)
    return found


def task_inputs(item, root: Path) -> Files:
    """The store's files a task reads (named by its item), to send with it."""
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in paths_under(item, root) if path.is_file()}


def run_shipped(fn, item, ctx, root: str, inputs: Files):
    """On a worker: ``fn(item, ctx)`` in a temporary stand-in for the store at
    ``root``; returns its result (paths as the client knows them) and the files
    it wrote."""
    root_path = Path(root)
    with tempfile.TemporaryDirectory(prefix="pvsurvey-task-") as tmp:
        mirror = Path(tmp)
        for rel, data in inputs.items():
            target = mirror / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        result = run_task(fn, remap(item, root_path, mirror), remap(ctx, root_path, mirror))
        return remap(result, mirror, root_path), _written(mirror, set(inputs))


def _written(mirror: Path, skip: set[str]) -> Files:
    files: Files = {}
    seen: dict[tuple[int, int], str] = {}
    for folder, _, names in os.walk(mirror):
        for name in sorted(names):
            path = Path(folder) / name
            rel = path.relative_to(mirror).as_posix()
            if rel in skip:
                continue
            stat = path.stat()
            inode = (stat.st_dev, stat.st_ino)
            if inode in seen:  # a cache entry's hard link of a part file: sent once
                files[rel] = seen[inode]
            else:
                seen[inode] = rel
                files[rel] = path.read_bytes()
    return files


def receive(files: Files, root: Path) -> None:
    """Write a task's files into the store: contents first, then hard links,
    then cache results (an entry counts once its ``result.pkl`` is there)."""
    def order(rel_data):
        rel, data = rel_data
        return (Path(rel).name == RESULT_FILE, isinstance(data, str))

    for rel, data in sorted(files.items(), key=order):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            link(root / data, target)
        else:
            atomic_write(target, lambda tmp: tmp.write_bytes(data))


def probe_write(folder: str) -> str | None:
    """On a worker: leave a file in ``folder``; its name, or None where the
    worker cannot write there."""
    name = f".pvsurvey-probe-{uuid.uuid4().hex}"
    try:
        Path(folder, name).write_bytes(b"")
    except OSError:
        return None
    return name
