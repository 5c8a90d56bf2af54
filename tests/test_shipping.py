"""Files that travel with tasks to workers that do not share the run's store
(pvsurvey.shipping), without a cluster: a task's round trip by hand."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from pvsurvey.store.cache import RESULT_FILE, has_entry, load_entry, store_entry
from pvsurvey.execution.shipping import receive, remap, run_shipped, task_inputs


@dataclass
class Task:
    index: int
    source: Path | None
    pieces: list = field(default_factory=list)
    sizes: dict = field(default_factory=dict)


@dataclass
class Ctx:
    out_dir: Path
    cache_dir: Path
    elsewhere: Path


def test_remap_moves_the_paths_under_a_root_and_keeps_the_rest(tmp_path):
    root, other = tmp_path / "store", tmp_path / "inputs"
    task = Task(3, root / "a" / "x.parquet", [root / "b.parquet", other / "c.parquet"],
                {"park-1": (root / "p" / "1.parquet", 12)})
    moved = remap(task, root, Path("/mirror"))
    assert moved.source == Path("/mirror/a/x.parquet")
    assert moved.pieces == [Path("/mirror/b.parquet"), other / "c.parquet"]
    assert moved.sizes == {"park-1": (Path("/mirror/p/1.parquet"), 12)}
    assert task.source == root / "a" / "x.parquet"  # a copy: the item itself is unchanged
    untouched = Task(1, other / "c.parquet")
    assert remap(untouched, root, Path("/mirror")) is untouched


def _task(task: Task, ctx: Ctx) -> Task:
    """Reads its input, writes a part and keeps it in a cache entry (a hard link)."""
    data = task.source.read_bytes()
    part = ctx.out_dir / "parts" / f"part-{task.index}.bin"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[::-1])
    store_entry(ctx.cache_dir / "key1", {"part.bin": part}, {"rows": len(data)})
    return Task(task.index, part)


def test_a_task_round_trip_brings_back_its_files_and_hard_links(tmp_path):
    store = tmp_path / "store"
    source = store / ".partial-1" / "_parts" / "in.bin"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"abc")
    ctx = Ctx(store / ".partial-1", store / ".cache", tmp_path / "inputs")
    task = Task(7, source)

    inputs = task_inputs(task, store)
    assert inputs == {".partial-1/_parts/in.bin": b"abc"}
    source.unlink()  # the worker must not need the client's copy
    result, files = run_shipped(_task, task, ctx, str(store), inputs)

    part = ".partial-1/parts/part-7.bin"
    assert result.source == store / part  # as the client knows it
    kept = ".cache/key1/part.bin"
    # the part and the entry's hard link of it: the bytes travel once, the other names them
    (with_bytes,) = [name for name in (part, kept) if isinstance(files[name], bytes)]
    assert files[with_bytes] == b"cba"
    assert files[kept if with_bytes == part else part] == with_bytes
    assert ".partial-1/_parts/in.bin" not in files  # inputs do not come back
    receive(files, store)
    assert (store / part).read_bytes() == b"cba"
    assert os.stat(store / part).st_ino == os.stat(store / ".cache/key1/part.bin").st_ino
    assert has_entry(store / ".cache/key1")
    target = tmp_path / "again.bin"
    assert load_entry(store / ".cache/key1", {"part.bin": target}) == {"rows": 3}
    assert target.read_bytes() == b"cba"


def test_a_cache_result_is_received_after_its_files(tmp_path, monkeypatch):
    written = []
    real = Path.write_bytes
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: (written.append(self.name), real(self, data))[1])
    receive({f"e/{RESULT_FILE}": b"r", "e/b.parquet": b"b", "e/a.parquet": b"a"}, tmp_path)
    assert len(written) == 3 and RESULT_FILE in written[-1]
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["a.parquet", "b.parquet", RESULT_FILE]
