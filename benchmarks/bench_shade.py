"""What the shade of neighbouring buildings costs a survey (prints numbers; not a test).

    python benchmarks/bench_shade.py                    # 1,000,000 footprints, 1 round
    python benchmarks/bench_shade.py -n 200000 --repeat 3
    python benchmarks/bench_shade.py --repeat 3 --compare ../old   # also another checkout, shade on
    python benchmarks/bench_shade.py --variant '{"screen_frac": 1.0}'   # also other shade settings

Times ``pvsurvey run --full`` (a child process, a local cluster of 2 workers, as
``bench_survey.py`` runs it) on the same dense SYNTHETIC city with heights
(``synthetic.city``: factories, warehouses, office towers and residential slabs
on 100 m x 70 m plots, 5-144 m tall) with ``shade.enabled`` true and false, the
two interleaved round by round. Prints each run, the medians of wall and CPU time
(client + workers: steadier than the wall on a shared machine), their ratios and
the peak RSS of each process (client, each worker), and how many roofs were traced.
Each ``--variant`` (``shade.*`` settings as JSON) is run with shade on in every round
too: its time against shade off, and its city's shaded area and yield against the
default settings' (what the speed costs in the figures).

Target (issue 19): shading costs at most 60 % more survey time (ratio <= 1.60),
and the peak memory per worker stays under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from bench_partitions import PeakAndCPU, _mb, run_pvsurvey
from synthetic import REPO, generate


def run_once(config: Path, out: Path, repo: Path = REPO) -> tuple[float, float, dict, dict]:
    """:func:`bench_partitions.run_pvsurvey` (``repo``'s code): wall, CPU seconds of
    the process tree, peak RSS per role, manifest."""
    wall, peaks, manifest = run_pvsurvey(config, out, PeakAndCPU, repo)
    return wall, sum(peaks.cpu.values()), peaks.by_role(), manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000, help="footprints (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of both modes, interleaved; medians printed")
    ap.add_argument("--workers", type=int, default=2, help="local workers (default 2)")
    ap.add_argument("--partition-rows", type=int, default=50_000)
    ap.add_argument("--compare", type=Path, action="append", default=[],
                    help="another checkout whose run with shade on is timed in each round too")
    ap.add_argument("--variant", type=json.loads, action="append", default=[],
                    help="shade settings (JSON, e.g. '{\"screen_frac\": 1.0}') also run with shade on in each round")
    args = ap.parse_args()
    path = generate(args.n, city_heights=True)
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    worker_peaks: dict[str, list[int]] = {}
    totals: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        configs = {}
        modes = [("shade on", {"enabled": True}), ("shade off", {"enabled": False})]
        modes += [(f"shade on {json.dumps(v, sort_keys=True)}", {**v, "enabled": True}) for v in args.variant]
        for i, (label, shade) in enumerate(modes):
            cfg = {"name": f"bench-shade-{i}", "footprints": str(path),
                   "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif"), "units": "kWh/m2/day"},
                   "shade": shade,
                   "parallel": {"partition_rows": args.partition_rows, "in_process_max_rows": 0,
                                "workers": args.workers}}
            configs[label] = Path(tmp) / f"mode-{i}.json"
            configs[label].write_text(json.dumps(cfg))  # JSON is YAML
        print(f"{args.n:,} synthetic city footprints with heights ({path.name}), {args.workers} workers, "
              f"partition_rows {args.partition_rows:,}, {os.cpu_count()} cores "
              f"(load average now {os.getloadavg()[0]:.1f})")
        for round_ in range(args.repeat):  # interleaved, so that the machine's drift hits both alike
            for label, config in configs.items():
                wall, cpu, peaks, manifest = run_once(config, config.with_suffix(".run"))
                totals.setdefault(label, manifest.get("totals", {}))
                walls.setdefault(label, []).append(wall)
                cpus.setdefault(label, []).append(cpu)
                worker_peaks.setdefault(label, []).append(max(peaks.get("worker", [0])))
                status = manifest.get("counts", {}).get("building_attributes", {}).get("shade_status") or {}
                steps = manifest.get("timings_s", {})
                print(f"  round {round_ + 1}, {label:>9}: {wall:6.1f} s wall, {cpu:6.1f} s CPU; peak RSS client "
                      f"{_mb(peaks.get('client', []))}, workers {_mb(peaks.get('worker', []))}; "
                      f"shade {status or 'n/a'}; steps {steps}", flush=True)
            for repo in args.compare:  # the same run with shade on, another checkout's code
                wall, cpu, _, manifest = run_once(configs["shade on"], Path(tmp) / "run-compare", repo)
                walls.setdefault(str(repo), []).append(wall)
                cpus.setdefault(str(repo), []).append(cpu)
                print(f"  round {round_ + 1}, shade on with {repo}: {wall:6.1f} s wall, {cpu:6.1f} s CPU; "
                      f"steps {manifest.get('timings_s', {})}", flush=True)
    med = {label: statistics.median(w) for label, w in walls.items()}
    med_cpu = {label: statistics.median(c) for label, c in cpus.items()}
    for label, wall in med.items():
        if label not in worker_peaks:  # another checkout's (--compare)
            print(f"median shade on with {label}: {wall:6.1f} s wall, {med_cpu[label]:6.1f} s CPU; this checkout's "
                  f"{med['shade on'] / wall:.2f}x its wall, {med_cpu['shade on'] / med_cpu[label]:.2f}x its CPU")
            continue
        print(f"median {label:>9}: {wall:6.1f} s wall, {med_cpu[label]:6.1f} s CPU (client + workers); "
              f"peak RSS per worker {max(worker_peaks[label]) / 2**20:,.0f} MB (largest over the rounds)")
    base = totals.get("shade on", {})
    for label in [m for m in totals if m not in ("shade on", "shade off")]:
        t = totals[label]
        print(f"{label}: {med[label] / med['shade off']:.2f}x survey time, {med_cpu[label] / med_cpu['shade off']:.2f}x "
              f"CPU time; shaded area {_change(t, base, 'shade_loss_m2')}, yield {_change(t, base, 'annual_yield_kwh')} "
              "against the default settings")
    print(f"shade on vs off: {med['shade on'] / med['shade off']:.2f}x survey time, "
          f"{med_cpu['shade on'] / med_cpu['shade off']:.2f}x CPU time (target <= 1.60x); "
          f"peak RSS per worker {max(worker_peaks['shade on']) / 2**30:.2f} GiB (target < 2 GB)")


def _change(totals: dict, base: dict, key: str) -> str:
    """``totals[key]`` against ``base[key]``, as a signed percentage."""
    if not base.get(key) or totals.get(key) is None:
        return "n/a"
    return f"{100.0 * (totals[key] / base[key] - 1.0):+.2f} %"


if __name__ == "__main__":
    main()
