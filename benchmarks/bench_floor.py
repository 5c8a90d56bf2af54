"""How far a whole run is from the floor of any survey (prints numbers; not a test).

    python benchmarks/bench_floor.py                       # 1,000,000 footprints, 3 rounds
    python benchmarks/bench_floor.py -n 200000 --repeat 1
    python benchmarks/bench_floor.py --compare /work/main    # also another checkout's run, each round

The floor: what any survey of these footprints must at least do, in one process
with two threads (one per core of the reference machine) — read the GeoParquet
file (pyarrow, row group by row group), decode the WKB (shapely), put every
vertex in the UTM zone of its roof (pyproj, zones as
:func:`pvsurvey.coords.utm_epsg` picks them) and measure each roof's footprint
and its 1 m setback through GEOS (``shapely.area(shapely.buffer(g, -1,
join_style="mitre"))``, as :func:`pvsurvey.model.roof.buffered_area_m2`). It is
timed as a child process from interpreter start to exit, like the run.

The run: ``pvsurvey run --full`` (a child process, the project's defaults: a
local cluster of one worker per core) on the same file, written in 100,000-row
groups (``--group-rows``, default 50,000 = the default ``parallel.partition_rows``:
read as it is, no rewrite), with this repository's code, every output written
(parts, merged buildings, PV columns, progress, candidate lists, maps, manifest).

The two alternate ``--repeat`` times; the medians and their ratio are printed
(issue 17: run ≤ 2.0 × floor, stretch 1.5 ×), with the run's peak RSS and PSS summed
over all its processes (PSS: the pages forked workers share with their fork server
counted once; issue 17: ≤ 2 GB at 10M) and its own step timings (manifest ``timings_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from bench_partitions import PeakAndCPU, _mb, run_pvsurvey
from synthetic import REPO, generate

FLOOR = r"""
import sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np, pyarrow.parquet as pq, shapely
from pyproj import Transformer
from pvsurvey.coords import utm_epsg

path = sys.argv[1]
groups = pq.ParquetFile(path).metadata.num_row_groups
transformers = {}

def zone_transformer(code):
    if code not in transformers:
        transformers[code] = Transformer.from_crs(4326, int(code), always_xy=True)
    return transformers[code]

def one(i):
    table = pq.ParquetFile(path).read_row_group(i, columns=["geometry"])
    geoms = shapely.from_wkb(table.column(0).to_numpy(zero_copy_only=False))
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    lon, lat = shapely.get_coordinates(shapely.centroid(geoms)).T
    zone = utm_epsg(lon, lat)[owner]
    out = np.empty_like(xy)
    for code in np.unique(zone):
        sel = zone == code
        out[sel, 0], out[sel, 1] = zone_transformer(code).transform(xy[sel, 0], xy[sel, 1])
    metric = shapely.set_coordinates(geoms, out)
    footprint = shapely.area(metric)
    inset = shapely.area(shapely.buffer(metric, -1.0, join_style="mitre"))
    return len(geoms), float(footprint.sum()), float(inset.sum())

with ThreadPoolExecutor(2) as pool:  # shapely and pyarrow release the GIL
    results = list(pool.map(one, range(groups)))
print(sum(r[0] for r in results), sum(r[1] for r in results), sum(r[2] for r in results))
"""


def floor_once(path: Path) -> tuple[float, float, str]:
    """The floor as a child process: wall seconds, its CPU seconds (user + system), its output."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", FLOOR, str(path)], env=env, check=True, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.stdout.strip()


def run_once(config: Path, out: Path, repo: Path = REPO) -> tuple[float, float, int, dict, dict]:
    """:func:`bench_partitions.run_pvsurvey` with ``repo``'s code: wall, CPU seconds of
    the process tree (steadier than the wall time on a shared machine), the peaks of
    all processes' RSS and of their PSS summed (PSS counts the pages the forked workers
    share with their fork server once), manifest, and each process's own peak RSS by
    role (client, worker, fork server, other: the nannies that restart a dead worker)."""
    wall, peaks, manifest = run_pvsurvey(config, out, PeakAndCPU, repo=repo)
    return wall, sum(peaks.cpu.values()), (peaks.peak_sum, peaks.peak_pss_sum), manifest, peaks.by_role()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000, help="footprints (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of floor and run, interleaved (default 3)")
    ap.add_argument("--group-rows", type=int, default=50_000,
                    help="row groups of the file (default 50,000: the default parallel.partition_rows, so that "
                         "the run reads the file as it is)")
    ap.add_argument("--compare", type=Path, action="append", default=[],
                    help="another checkout (e.g. /work/main) whose run is timed in each round too")
    ap.add_argument("--config", type=json.loads, default={},
                    help="more config keys for the run, as JSON (e.g. '{\"parallel\": {\"partition_rows\": 25000}}')")
    args = ap.parse_args()
    path = generate(args.n, row_group_size=args.group_rows)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.json"  # JSON is YAML
        config.write_text(json.dumps({"name": "bench-floor", "footprints": str(path),
                                      "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif"),
                                                     "units": "kWh/m2/day"}, **args.config}))
        print(f"{args.n:,} footprints in {args.group_rows:,}-row groups, {os.cpu_count()} cores "
              f"(load average now {os.getloadavg()[0]:.1f}); floor and run interleaved, {args.repeat} rounds")
        floors, runs, peaks, pss_peaks, floor_cpus, run_cpus = [], [], [], [], [], []
        others: dict[Path, list[tuple[float, float]]] = {repo: [] for repo in args.compare}
        for round_ in range(args.repeat):
            wall, cpu, sums = floor_once(path)
            floors.append(wall)
            floor_cpus.append(cpu)
            print(f"  round {round_ + 1}: floor {wall:6.1f} s, {cpu:6.1f} CPU-s  (rows, footprint m², inset m²: "
                  f"{sums})", flush=True)
            wall, cpu, (peak, pss), manifest, roles = run_once(config, Path(tmp) / "run")
            runs.append(wall)
            run_cpus.append(cpu)
            peaks.append(peak)
            pss_peaks.append(pss)
            steps = ", ".join(f"{k} {v:.1f}" for k, v in manifest["timings_s"].items() if v >= 0.05)
            each = "; ".join(f"{role} {_mb(values)}" for role, values in sorted(roles.items()))
            print(f"  round {round_ + 1}: run   {wall:6.1f} s, {cpu:6.1f} CPU-s  ({manifest['execution']['mode']}, "
                  f"{manifest['execution']['partitions']} partitions; peak RSS {peak / 2**20:,.0f} MB together "
                  f"({each}), peak PSS {pss / 2**20:,.0f} MB together; steps s: {steps})", flush=True)
            for repo, timings in others.items():
                wall, cpu, (peak, _), _, _ = run_once(config, Path(tmp) / f"run-{repo.name}", repo)
                timings.append((wall, cpu))
                print(f"  round {round_ + 1}: run of {repo}: {wall:6.1f} s, {cpu:6.1f} CPU-s "
                      f"(peak RSS {peak / 2**20:,.0f} MB)", flush=True)
    floor, run = statistics.median(floors), statistics.median(runs)
    floor_cpu, run_cpu = statistics.median(floor_cpus), statistics.median(run_cpus)
    print(f"median floor {floor:.1f} s, median run {run:.1f} s ({args.n / run:,.0f} roofs/s), "
          f"ratio {run / floor:.2f}x (target ≤ 2.0x); peak RSS {statistics.median(peaks) / 2**20:,.0f} MB, "
          f"PSS {statistics.median(pss_peaks) / 2**20:,.0f} MB (all processes together; target ≤ 2 GB at 10M)")
    print(f"CPU seconds: floor {floor_cpu:.1f}, run {run_cpu:.1f} (medians; ratio {run_cpu / floor_cpu:.2f}x)")
    for repo, timings in others.items():
        other = statistics.median(w for w, _ in timings)
        other_cpu = statistics.median(c for _, c in timings)
        print(f"median run of {repo} {other:.1f} s and {other_cpu:.1f} CPU-s, ratio {other / floor:.2f}x the floor; "
              f"this run {run / other:.2f}x its time, {run_cpu / other_cpu:.2f}x its CPU")


if __name__ == "__main__":
    main()
