"""Row groups of local GeoParquet files, decoded once per process and kept while
they are read again.

With shade from neighbouring buildings, every partition is read by its own task
and, in strips, by the task of each partition within shade reach of it (up to a
dozen on a dense city). Tasks run in file order on each worker, so a worker
reads most row groups several times within a few tasks: on the dense synthetic
city of ``benchmarks/bench_shade.py`` each 50,000-row group took 10–35 ms of
CPU to decompress and decode, nine times per task. Kept here, a row group is
decoded once per worker while it is still within reach.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

# What a process keeps [bytes]: the dozen 50,000-row groups (about 10 MB each
# decoded) a task and the next ones on the same worker read on a dense city
# (benchmarks/bench_shade.py); well inside the 2 GB per worker of issue 19.
KEPT_BYTES = 160 * 2**20


class RowGroupCache:
    """The last row groups read, least recently used dropped first, at most
    ``max_bytes`` (Arrow's ``nbytes``) in all; safe to share between threads.

    A file is known by its path, size and modification time: a file rewritten
    between two runs on a long-lived worker is read again.
    """

    def __init__(self, max_bytes: int = KEPT_BYTES):
        self.max_bytes = max_bytes
        self._tables: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def read(self, path, row_groups, read):
        """``read()`` (the file's Arrow schema and the table of its ``row_groups``,
        ``path`` a local file), or what an earlier read of the same row groups gave."""
        stat = os.stat(path)
        key = (os.fspath(path), stat.st_size, stat.st_mtime_ns, tuple(row_groups))
        with self._lock:
            kept = self._tables.get(key)
            if kept is not None:
                self._tables.move_to_end(key)
                return kept
        kept = read()
        size = kept[1].nbytes
        with self._lock:
            if key not in self._tables and size <= self.max_bytes:
                self._tables[key] = kept
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, dropped) = self._tables.popitem(last=False)
                    self._bytes -= dropped.nbytes
        return kept

    def clear(self) -> None:
        with self._lock:
            self._tables.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._tables)


KEPT = RowGroupCache()


def release_kept() -> None:
    """Drop every row group this process keeps (run on each worker at the end of a
    survey round: a worker of a long-lived cluster keeps nothing between runs)."""
    KEPT.clear()
