"""End-to-end survey benchmark on synthetic footprints (prints numbers; not a test).

    python benchmarks/bench_survey.py                 # 1,000,000 footprints, local cluster
    python benchmarks/bench_survey.py -n 10000000 --workers 1 --workers 2
    python benchmarks/bench_survey.py --workers 1 --workers 2 --repeat 3 --ceiling   # scaling
    python benchmarks/bench_survey.py --workers 1 --workers 2 --repeat 3 --running   # scaling, workers up
    python benchmarks/bench_survey.py --files-sent --repeat 3   # workers sharing the run's files or not
    python benchmarks/bench_survey.py --workers 2 --bands --repeat 3   # the P90/P10 bands on vs off

Target (issue: survey core) on a 2-core machine: 1M footprints end to end in
≤ 20 s wall and ≤ 4 GB peak RSS (the whole process tree: client and workers).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from synthetic import REPO, generate
from pvsurvey.config.loading import config_from_dict
from pvsurvey.pipeline.run import run_survey


def _name(process) -> str:
    try:
        return " ".join(process.cmdline()[1:3])[:40] or process.name()
    except psutil.Error:
        return "ended"


class PeakRSS:
    """Samples the memory of this process and all its children: the summed RSS
    every 50 ms (what the targets name; it counts shared libraries once per
    process), with the per-process breakdown at the RSS peak, and the summed PSS
    (shared pages split between processes) every second — reading PSS walks the
    page tables, which at 50 ms took enough CPU to skew the 1-vs-2-worker ratio."""

    PSS_EVERY = 20  # samples

    def __init__(self):
        self.peak = 0
        self.peak_pss = 0
        self.breakdown: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        tick = 0
        while not self._stop.is_set():
            total = pss = 0
            sizes = []
            with_pss = tick % self.PSS_EVERY == 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    if with_pss:
                        info = p.memory_full_info()
                        pss += info.pss
                    else:
                        info = p.memory_info()
                except psutil.Error:  # a child that just ended
                    continue
                total += info.rss
                sizes.append((p, info.rss))
            if total > self.peak:
                self.peak, self.breakdown = total, [(_name(p), rss) for p, rss in sizes]
            self.peak_pss = max(self.peak_pss, pss)
            tick += 1
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000, help="footprints (default 1,000,000)")
    ap.add_argument("--partition-rows", type=int, default=50_000)
    ap.add_argument("--workers", type=int, action="append", help="local workers; repeat to compare")
    ap.add_argument("--serial", action="store_true", help="also time the serial twin")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of all modes, interleaved; medians printed")
    ap.add_argument("--running", action="store_true",
                    help="start each worker count's cluster before timing (as an existing cluster given to "
                         "--scheduler): the runs leave out the workers' boot")
    ap.add_argument("--files-sent", action="store_true",
                    help="on one running 2-worker cluster, compare workers that share the run directory with "
                         "workers that get each task's files through the client (parallel.shared_filesystem)")
    ap.add_argument("--bands", action="store_true",
                    help="also time each run with the P90/P10 bands off (uncertainty.enabled: false), interleaved")
    ap.add_argument("--ceiling", action="store_true",
                    help="also measure how much a pure CPU loop gains from a second process on this machine")
    args = ap.parse_args()
    path = generate(args.n)
    cfg = config_from_dict({
        "name": "bench", "footprints": str(path),
        "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif"), "units": "kWh/m2/day"},
        "parallel": {"partition_rows": args.partition_rows},
    }, REPO)
    modes = [("serial", None)] if args.serial else []
    modes += [("dask", w) for w in (args.workers or [None])] if not args.files_sent else []
    if args.bands:  # the same runs without the bands (issue 15: they may cost at most 15 %)
        modes += [("bands off", w) for m, w in modes if m == "dask"]
    scheduler = None
    running = {w: _start_cluster(w) for m, w in modes if args.running and m == "dask"}
    if args.files_sent:
        scheduler = _start_cluster(args.workers[0] if args.workers else 2)
        modes += [("files shared", None), ("files sent", None)]
    if args.ceiling:
        print(f"machine ceiling: a pure CPU loop runs {cpu_ceiling():.2f}x faster in 2 processes than in 1")
    walls: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):  # modes interleaved, so that the machine's drift hits each alike
            for mode, workers in modes:
                with PeakRSS() as rss:
                    t0 = time.perf_counter()
                    # reuse=False: every mode surveys every partition (no results from the previous mode)
                    run_cfg = cfg.model_copy(update={"parallel": cfg.parallel.model_copy(
                        update={"shared_filesystem": mode != "files sent"}),
                        "uncertainty": cfg.uncertainty.model_copy(update={"enabled": mode != "bands off"})})
                    result = run_survey(run_cfg, Path(tmp) / "run", workers=workers, serial=mode == "serial",
                                        reuse=False, scheduler=scheduler if mode.startswith("files")
                                        else running.get(workers) if mode in ("dask", "bands off") else None)
                    wall = time.perf_counter() - t0
                n = result.manifest["counts"]["input_rows"]
                label = mode if mode not in ("dask", "bands off") else \
                    f"{'dask' if mode == 'dask' else 'bands off'}, {workers or 'all-core'} workers"
                walls.setdefault(label, []).append(wall)
                print(f"{label:>22}: {n:,} footprints in {wall:6.1f} s wall = {n / wall:10,.0f} buildings/s; "
                      f"peak RSS {rss.peak / 2**30:5.2f} GiB (PSS {rss.peak_pss / 2**30:4.2f} GiB); "
                      f"steps {result.manifest['timings_s']}")
                print("    at the RSS peak: " + ", ".join(f"{name} {size / 2**20:,.0f} MB"
                                                        for name, size in rss.breakdown))
    if args.repeat > 1 or len(walls) > 1:
        medians = {label: statistics.median(w) for label, w in walls.items()}
        print("median wall: " + "; ".join(f"{label} {m:.1f} s" for label, m in medians.items()))
        if "dask, 1 workers" in medians and "dask, 2 workers" in medians:
            print(f"2 workers vs 1: {medians['dask, 1 workers'] / medians['dask, 2 workers']:.2f}x throughput")
        for label in [k for k in medians if k.startswith("bands off")]:
            on = medians.get(label.replace("bands off", "dask"))
            if on:
                print(f"bands on vs off ({label[len('bands off, '):]}): {on / medians[label]:.3f}x wall "
                      f"(+{100 * (on / medians[label] - 1):.1f} %)")
        if "files sent" in medians:
            print(f"files sent with the tasks vs shared: {medians['files sent'] / medians['files shared']:.2f}x wall")


def _start_cluster(workers: int | None) -> str:
    """A running local cluster for --running and --files-sent (the workers' boot left out)."""
    from pvsurvey.execution.executor import start_local_cluster

    cluster = start_local_cluster(workers)
    _CLUSTERS.append(cluster)  # alive until the process ends
    return cluster.scheduler_address


_CLUSTERS = []


def _spin(_):
    total = 0
    for i in range(4_000_000):
        total += i * i
    return total


def cpu_ceiling() -> float:
    """How much faster 2 processes finish 8 units of pure CPU work than 1 (2.0 on
    two idle physical cores; less where the cores are shared or throttled)."""
    from concurrent.futures import ProcessPoolExecutor

    walls = []
    for n in (1, 2):
        with ProcessPoolExecutor(n) as pool:
            list(pool.map(_spin, range(n)))  # start the processes first
            t0 = time.perf_counter()
            list(pool.map(_spin, range(8)))
            walls.append(time.perf_counter() - t0)
    return walls[0] / walls[1]


if __name__ == "__main__":
    main()
