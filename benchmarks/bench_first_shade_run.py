"""What the first shade run on a machine costs over the next ones (prints numbers; not a test).

    python benchmarks/bench_first_shade_run.py                 # 20,000 roofs, 3 rounds
    python benchmarks/bench_first_shade_run.py --repo ../old   # another checkout's code, same file

The shade model's compiled kernel (``pvsurvey/model/shade_kernel.py``, numba) is
compiled on its first use and kept on disk; every later process loads it. A fresh
install, a new container or a cluster worker without a persistent cache pays the
compile once per process that traces shade. This times ``pvsurvey run --full`` (a
child process, 2 local workers, as ``bench_shade.py`` runs it) on a dense SYNTHETIC
city with heights (``synthetic.city``) in partitions of ``--partition-rows`` roofs
(above ``COMPILED_MIN_POINTS``, so the kernel is used), each round twice: with an
empty numba cache (``NUMBA_CACHE_DIR``, a new folder: cold) and again with the cache
that run filled (warm). Prints each run, the medians and their difference.

Target (issue 17's, for every first run): the first run costs at most 3 s more than
a warm one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from bench_partitions import run_pvsurvey
from synthetic import REPO, generate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20_000, help="footprints (default 20,000)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of a cold and a warm run (default 3)")
    ap.add_argument("--partition-rows", type=int, default=10_000)
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code runs (default this one)")
    args = ap.parse_args()
    path = generate(args.n, city_heights=True)
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "shade.json"  # JSON is YAML
        config.write_text(json.dumps({
            "name": "bench-first-shade-run", "footprints": str(path),
            "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif"), "units": "kWh/m2/day"},
            "shade": {"enabled": True},
            "parallel": {"partition_rows": args.partition_rows, "in_process_max_rows": 0, "workers": 2}}))
        print(f"{args.n:,} synthetic city footprints with heights, partitions of {args.partition_rows:,}, "
              f"2 workers, code of {args.repo} (load average now {os.getloadavg()[0]:.1f})")
        for round_ in range(args.repeat):
            cache = Path(tmp) / f"numba-cache-{round_}"  # empty: the kernel compiles in this round's cold run
            os.environ["NUMBA_CACHE_DIR"] = str(cache)
            for label in ("cold", "warm"):
                wall, _, manifest = run_pvsurvey(config, Path(tmp) / f"run-{round_}-{label}", repo=args.repo)
                times[label].append(wall)
                traced = manifest.get("counts", {}).get("building_attributes", {}).get("shade_status", {})
                print(f"  round {round_ + 1}, {label}: {wall:5.1f} s (steps {manifest.get('timings_s')}; "
                      f"shade {traced})", flush=True)
    cold, warm = statistics.median(times["cold"]), statistics.median(times["warm"])
    pairs = ", ".join(f"{c - w:+.1f}" for c, w in zip(times["cold"], times["warm"]))
    print(f"median cold {cold:.1f} s, warm {warm:.1f} s: the first run costs {cold - warm:+.1f} s "
          f"(pairs {pairs}; target <= +3 s)")


if __name__ == "__main__":
    main()
