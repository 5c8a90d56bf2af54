"""End-to-end survey benchmark on synthetic footprints (prints numbers; not a test).

    python benchmarks/bench_survey.py                 # 1,000,000 footprints, local cluster
    python benchmarks/bench_survey.py -n 10000000 --workers 1 --workers 2

Target (issue: survey core) on a 2-core machine: 1M footprints end to end in
≤ 20 s wall and ≤ 4 GB peak RSS (the whole process tree: client and workers).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from synthetic import DATA, REPO
from pvsurvey.config import config_from_dict
from pvsurvey.workflow import run_survey


class PeakRSS:
    """Samples the memory of this process and all its children every 50 ms: the
    summed RSS (what the targets name; it counts shared libraries once per
    process) and the summed PSS (shared pages split between processes), with the
    per-process breakdown at the RSS peak."""

    def __init__(self):
        self.peak = 0
        self.peak_pss = 0
        self.breakdown: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = pss = 0
            parts = []
            for p in [me, *me.children(recursive=True)]:
                try:
                    info = p.memory_full_info()
                    name = " ".join(p.cmdline()[1:3])[:40] or p.name()
                except psutil.Error:  # a child that just ended
                    continue
                total += info.rss
                pss += info.pss
                parts.append((name, info.rss))
            if total > self.peak:
                self.peak, self.breakdown = total, parts
            self.peak_pss = max(self.peak_pss, pss)
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
    args = ap.parse_args()
    # generate in a child process, so that the generator's memory is not counted below
    subprocess.run([sys.executable, "-c", f"from synthetic import write_footprints; write_footprints({args.n})"],
                   check=True, cwd=Path(__file__).parent)
    path = DATA / f"footprints_{args.n}.parquet"
    cfg = config_from_dict({
        "name": "bench", "footprints": str(path),
        "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif"), "units": "kWh/m2/day"},
        "parallel": {"partition_rows": args.partition_rows},
    }, REPO)
    modes = [("serial", None)] if args.serial else []
    modes += [("dask", w) for w in (args.workers or [None])]
    with tempfile.TemporaryDirectory() as tmp:
        for mode, workers in modes:
            with PeakRSS() as rss:
                t0 = time.perf_counter()
                # reuse=False: every mode surveys every partition (no results from the previous mode)
                result = run_survey(cfg, Path(tmp) / "run", workers=workers, serial=mode == "serial", reuse=False)
                wall = time.perf_counter() - t0
            n = result.manifest["counts"]["input_rows"]
            label = mode if mode == "serial" else f"dask, {workers or 'all-core'} workers"
            print(f"{label:>22}: {n:,} footprints in {wall:6.1f} s wall = {n / wall:10,.0f} buildings/s; "
                  f"peak RSS {rss.peak / 2**30:5.2f} GiB (PSS {rss.peak_pss / 2**30:4.2f} GiB); "
                  f"steps {result.manifest['timings_s']}")
            print("    at the RSS peak: " + ", ".join(f"{name} {size / 2**20:,.0f} MB" for name, size in rss.breakdown))


if __name__ == "__main__":
    main()
