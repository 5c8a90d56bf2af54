"""Every task runs with Python's cyclic garbage collector paused.

A task makes hundreds of thousands of objects the collector tracks (each shapely
geometry is one), so it runs a collection every 700 of them, and now and then a full
one that walks every object of the process: the libraries' own (numba alone brings
about 130,000) and the partition's geometries. None of that frees anything, since a
task's arrays and frames hold no reference cycles that outlive it: reference counting
frees them. Measured on 1,000,000 synthetic roofs (2026-12-04, alternated runs, medians):
on two local workers 19.3 → 17.9 s and 30.2 → 28.6 CPU-s without heights (four pairs),
32.1 → 29.6 s and 52.2 → 48.7 CPU-s on the dense city with shade (four pairs); in one
process (``--serial``) 26.5 → 20.7 s and 60.5 → 46.1 s (two pairs each). Decoding one
partition's 50,000 outlines (``shapely.from_wkb``) took 0.13 s with numba loaded and 0.02 s
with the collector paused. The few cycles a task does leave are collected after it, as usual
(the demo's 18 tasks, run in one process, left 20 unreachable objects in all). The switch is
the process's: a program that runs a survey in its own process (``--serial``, or rounds small
enough to stay in the client) has its other threads run without the collector too, for as long
as the tasks run.
"""

from __future__ import annotations

import contextlib
import gc
import threading

_lock = threading.Lock()
_pauses = 0  # tasks running with the collector paused (a worker may run several on threads)
_resume = False  # whether the collector was on before the first of them


@contextlib.contextmanager
def collector_paused():
    """Pause the cyclic garbage collector (``gc.disable``) until the last of the
    overlapping pauses ends; it is then switched back on if it was on before."""
    global _pauses, _resume
    with _lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


def run_task(fn, item, ctx):
    """``fn(item, ctx)`` with the collector paused: how every round runs each task."""
    with collector_paused():
        return fn(item, ctx)
