"""A file's layout must not decide a run's cost (prints numbers; not a test).

    python benchmarks/bench_partitions.py                       # 1,000,000 footprints, 3 rounds
    python benchmarks/bench_partitions.py -n 200000 --repeat 1

Times ``pvsurvey run --full`` (a child process, local cluster, one worker per
core) on the same synthetic footprints written as ONE row group (as geopandas
writes a million rows by default) and in 100,000-row groups, with
``parallel.partition_rows`` = 100,000 (and ``in_process_max_rows`` 0: always
the local cluster) so that the second file is read as it is
and the first is rewritten into 100,000-row files in the run cache
(:func:`pvsurvey.pipeline.inputs.plan_footprints`). The first run of the
one-row-group file rewrites it (printed apart: it happens once per file); the
timed rounds, interleaved, reuse the rewrite as later nights do. Prints the
medians, their ratio and the peak RSS of each process (client, each worker).

Target (issue 14, item 5): one row group ≤ 1.15 × the 100,000-row-group wall,
with the same peak memory per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from synthetic import REPO, generate


class PeakPerProcess:
    """Each process's own peak RSS (this process's children, sampled every 50 ms),
    labelled 'client' (the ``pvsurvey run`` process), 'worker' (a Dask worker
    process), 'fork server' (the process the workers are forked from) or
    'other', and the peak of their sum (of RSS: pages the forked workers share
    with the fork server count in each)."""

    def __init__(self, root: psutil.Process):
        self.root, self.peaks, self.labels, self.peak_sum = root, {}, {}, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _label(self, p: psutil.Process) -> str:
        if p.pid == self.root.pid:
            return "client"
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            return "other"
        if "multiprocessing.forkserver" in cmd:  # parallel.worker_start: forkserver (the workers are its forks)
            return "fork server" if p.ppid() == self.root.pid else "worker"
        return "worker" if "spawn_main" in cmd and "resource_tracker" not in cmd else "other"

    def _tree(self) -> list[psutil.Process]:
        """The run's process and all its descendants now (none once it has ended)."""
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []

    def _run(self):
        while not self._stop.is_set():
            total = 0
            for p in self._tree():
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if p.pid not in self.labels:
                    self.labels[p.pid] = self._label(p)
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0), rss)
            self.peak_sum = max(self.peak_sum, total)
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def by_role(self) -> dict[str, list[int]]:
        roles: dict[str, list[int]] = {}
        for pid, peak in self.peaks.items():
            roles.setdefault(self.labels[pid], []).append(peak)
        return {k: sorted(v, reverse=True) for k, v in roles.items()}


class PeakAndCPU(PeakPerProcess):
    """Each process's peak RSS (:class:`PeakPerProcess`) and its CPU seconds (user +
    system, the last reading before it ended): on a machine shared with other work
    the CPU time of the run is steadier than its wall time. Also the peak of the
    processes' PSS summed (``peak_pss_sum``, every 0.2 s): each shared page counted
    once, split between the processes that share it (the forked workers and their
    fork server), so the sum is the memory the run holds together."""

    def __init__(self, root):
        super().__init__(root)
        self.cpu = {}
        self.peak_pss_sum = 0

    def _run(self):
        def cpu_loop():
            while not self._stop.is_set():
                pss = 0
                for p in self._tree():
                    try:
                        t = p.cpu_times()
                        self.cpu[p.pid] = t.user + t.system
                        pss += p.memory_full_info().pss  # /proc/PID/smaps_rollup: about 0.2 ms
                    except psutil.Error:
                        continue
                self.peak_pss_sum = max(self.peak_pss_sum, pss)
                time.sleep(0.2)

        thread = threading.Thread(target=cpu_loop, daemon=True)
        thread.start()
        super()._run()
        thread.join()


def run_pvsurvey(config: Path, out: Path, monitor=None, repo: Path = REPO):
    """``pvsurvey run CONFIG --out OUT --full`` with ``repo``'s code, watched by
    ``monitor`` (a :class:`PeakPerProcess` class): wall time, the monitor, manifest."""
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "pvsurvey", "-q", "run", str(config), "--out", str(out), "--full"]
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with (monitor or PeakPerProcess)(proc) as peaks:
        _, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        raise SystemExit(f"pvsurvey run failed ({proc.returncode}):\n{stderr.decode()[-3000:]}")
    return wall, peaks, json.loads((out / "manifest.json").read_text())


def run_once(config: Path, out: Path) -> tuple[float, dict, dict]:
    """:func:`run_pvsurvey`: wall, peaks per role, manifest."""
    wall, peaks, manifest = run_pvsurvey(config, out)
    return wall, peaks.by_role(), manifest


def _mb(values) -> str:
    return ", ".join(f"{v / 2**20:,.0f}" for v in values) + " MB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000, help="footprints (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds of both layouts, interleaved (default 3)")
    ap.add_argument("--partition-rows", type=int, default=100_000)
    ap.add_argument("--group-rows", type=int, default=100_000, help="row groups of the reference file")
    ap.add_argument("--workers", type=int, help="local workers (default: one per core)")
    args = ap.parse_args()
    files = {"one row group": generate(args.n, row_group_size=args.n),
             f"{args.group_rows:,}-row groups": generate(args.n, row_group_size=args.group_rows)}
    walls: dict[str, list[float]] = {}
    worker_peaks: dict[str, list[int]] = {}
    client_peaks: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        configs = {}
        for i, (label, path) in enumerate(files.items()):
            cfg = {"name": f"bench-{i}", "footprints": str(path),
                   "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif"), "units": "kWh/m2/day"},
                   "parallel": {"partition_rows": args.partition_rows, "in_process_max_rows": 0,
                                **({"workers": args.workers} if args.workers else {})}}
            configs[label] = Path(tmp) / f"bench-{i}.json"
            configs[label].write_text(json.dumps(cfg))  # JSON is YAML
        print(f"{args.n:,} footprints, partition_rows {args.partition_rows:,}, "
              f"{os.cpu_count()} cores (load average now {os.getloadavg()[0]:.1f})")
        first = "one row group"
        wall, peaks, manifest = run_once(configs[first], Path(tmp) / "run-0")
        rewritten = manifest["execution"]["footprints_rewritten"]
        print(f"first night, {first}: {wall:6.1f} s wall, of which rewriting {rewritten['seconds']:.1f} s "
              f"({rewritten['files']} files); peak RSS client {_mb(peaks.get('client', []))}, "
              f"workers {_mb(peaks.get('worker', []))}")
        for round_ in range(args.repeat):
            for i, (label, config) in enumerate(configs.items()):
                wall, peaks, manifest = run_once(config, Path(tmp) / f"run-{i}")
                ex = manifest["execution"]
                walls.setdefault(label, []).append(wall)
                worker_peaks.setdefault(label, []).append(max(peaks.get("worker", [0])))
                client_peaks.setdefault(label, []).append(max(peaks.get("client", [0])))
                how = "rewrite reused" if ex["footprints_rewritten"] else "read as it is"
                print(f"  round {round_ + 1}, {label:>22}: {wall:6.1f} s wall, {ex['partitions']} partitions "
                      f"({how}, {ex['mode']}); peak RSS client {_mb(peaks.get('client', []))}, "
                      f"workers {_mb(peaks.get('worker', []))}")
    med = {label: statistics.median(w) for label, w in walls.items()}
    ref = [label for label in med if label != first][0]
    for label in med:
        print(f"median {label:>22}: {med[label]:6.1f} s wall; peak RSS per worker "
              f"{statistics.median(worker_peaks[label]) / 2**20:,.0f} MB, client "
              f"{statistics.median(client_peaks[label]) / 2**20:,.0f} MB")
    ratio = med[first] / med[ref]
    ref_mem = statistics.median(worker_peaks[ref])
    mem = f"{statistics.median(worker_peaks[first]) / ref_mem:.2f}x" if ref_mem else "n/a"
    print(f"one row group vs {ref}: {ratio:.2f}x wall (target ≤ 1.15x), {mem} peak RSS per worker")


if __name__ == "__main__":
    main()
