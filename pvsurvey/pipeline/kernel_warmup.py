"""Compile the shade model's kernel on a worker before its first partition needs it.

The kernel (:mod:`pvsurvey.model.shade_kernel`, numba) is compiled on its first use
in a process, or loaded from numba's cache on disk (about 1 s; on a machine's first
run, a fresh install or a new container, compiling costs several seconds). A run
that will trace shade with it starts this in a background thread on every worker
(:meth:`pvsurvey.execution.executor.Executor.warm_up`, as the workers come up while
the client still prepares the round) and as each survey task starts; the task waits
for it just before its roofs are surveyed (:func:`wait`).

Processes of one machine that find the cache cold split the work: each compiles a
part of the kernel no other process is compiling (a file lock per part), then
loads the others' parts from the cache, rather than every worker compiling all of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time

log = logging.getLogger(__name__)

# The longest a process waits for another compiling a part [s] (compiling one takes a few
# seconds): past it, it compiles the part itself.
LOCK_WAIT_S = 120.0
PARTS = ("pairs", "losses")  # pvsurvey.model.shade.compile_kernel's parts, in the order a partition uses them
_lock = threading.Lock()
_thread: threading.Thread | None = None


def start() -> None:
    """Start compiling (or loading) the kernel in a background thread, once per process."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_compile, name="pvsurvey-shade-kernel", daemon=True)
            _thread.start()


def wait() -> None:
    """Wait for :func:`start`'s thread, where one was started (at most a little more
    than ``LOCK_WAIT_S``: then the kernel compiles at its first call, as without it)."""
    thread = _thread
    if thread is not None:
        thread.join(LOCK_WAIT_S + 60.0)


def _compile() -> None:
    try:
        from ..model.shade import compile_kernel

        done = set()
        for part in PARTS:  # first the parts no other process is compiling
            with _part_lock(part, blocking=False) as mine:
                if mine:
                    compile_kernel([part])
                    done.add(part)
        for part in PARTS:  # then the others', from the cache (or compiled here, if theirs failed)
            if part not in done:
                with _part_lock(part, blocking=True):
                    compile_kernel([part])
    except Exception as exc:  # noqa: BLE001 (an optimisation: the task compiles whatever is missing)
        log.debug("shade kernel not compiled ahead: %s", exc)


@contextlib.contextmanager
def _part_lock(part: str, blocking: bool):
    """An exclusive lock, shared by this machine's processes, on compiling ``part``;
    yields whether to go ahead: it is held, or waited for ``LOCK_WAIT_S`` in vain
    (``blocking``), or file locks are not available here (no ``fcntl``, or a lock
    file this user cannot open)."""
    try:
        import fcntl
    except ImportError:  # Windows: every process compiles for itself
        yield True
        return
    path = os.path.join(tempfile.gettempdir(), f"pvsurvey-shade-kernel-{part}.lock")
    try:
        handle = open(path, "a")
    except OSError:  # e.g. another user's lock file: compile without it
        yield True
        return
    with handle:
        deadline = time.monotonic() + (LOCK_WAIT_S if blocking else 0.0)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:  # not at all, or a process stuck holding it: go on without
                    held = False
                    break
                time.sleep(0.05)
        try:
            yield held or blocking
        finally:
            if held:
                fcntl.flock(handle, fcntl.LOCK_UN)
