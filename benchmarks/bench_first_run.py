"""What the first run on a machine costs over the next ones (prints numbers; not a test).

    python benchmarks/bench_first_run.py                      # 20,000 roofs with heights, 3 rounds
    python benchmarks/bench_first_run.py --plain -n 1000000   # issue 17's run: 1M footprints, no heights
    python benchmarks/bench_first_run.py --repo ../old        # another checkout's code, same file

A first run after ``pip install`` (or in a new container) finds two caches empty:
pvsurvey's own bytecode (``pip install -e`` compiles none; the first run compiles and
writes it, in every process that imports the code before it is written) and, where
a roof is traced for shade, the compiled kernel (``pvsurvey/model/shade_kernel.py``,
numba, kept on disk after its first compile). This times ``pvsurvey run --full`` (a
child process, 2 local workers) each round twice: cold (``--repo``'s ``__pycache__``
folders deleted, ``PYTHONDONTWRITEBYTECODE`` unset, an empty ``NUMBA_CACHE_DIR``) and
warm (the same caches, as the cold run left them). Prints each run, the medians and
their difference. The libraries' own bytecode is written by pip at install and the
page cache cannot be dropped here, so both runs find those warm.

The file: a dense SYNTHETIC city with heights (``synthetic.city``) in partitions of
``--partition-rows`` roofs, above ``COMPILED_MIN_POINTS`` so the kernel is used; with
``--plain``, the synthetic footprints without heights of ``bench_floor.py`` (no shade
traced) in the default partitions.

Target (issue 17): the first run costs at most 3 s more than a warm one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from bench_partitions import run_pvsurvey
from synthetic import REPO, generate


def clear_bytecode(repo: Path) -> int:
    """Delete the ``__pycache__`` folders of ``repo``'s package; how many there were."""
    folders = list((repo / "pvsurvey").rglob("__pycache__"))
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return len(folders)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20_000, help="footprints (default 20,000)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of a cold and a warm run (default 3)")
    ap.add_argument("--partition-rows", type=int, default=10_000, help="with heights (default 10,000)")
    ap.add_argument("--plain", action="store_true", help="footprints without heights, default partitions")
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code runs (default this one)")
    args = ap.parse_args()
    path = generate(args.n, row_group_size=50_000) if args.plain else generate(args.n, city_heights=True)
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "first.json"  # JSON is YAML
        parallel = {"in_process_max_rows": 0, "workers": 2}
        if not args.plain:
            parallel["partition_rows"] = args.partition_rows
        config.write_text(json.dumps({
            "name": "bench-first-run", "footprints": str(path),
            "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif"), "units": "kWh/m2/day"},
            "parallel": parallel}))
        print(f"{args.n:,} synthetic footprints ({path.name}), "
              f"{'default partitions' if args.plain else f'partitions of {args.partition_rows:,}'}, 2 workers, "
              f"code of {args.repo} (load average now {os.getloadavg()[0]:.1f})")
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the runs write pvsurvey's bytecode, as a user's do
        for round_ in range(args.repeat):
            os.environ["NUMBA_CACHE_DIR"] = str(Path(tmp) / f"numba-cache-{round_}")  # empty in the cold run
            cleared = clear_bytecode(args.repo)
            for label in ("cold", "warm"):
                wall, _, manifest = run_pvsurvey(config, Path(tmp) / f"run-{round_}-{label}", repo=args.repo)
                times[label].append(wall)
                traced = manifest.get("counts", {}).get("building_attributes", {}).get("shade_status", {})
                print(f"  round {round_ + 1}, {label}: {wall:5.1f} s (steps {manifest.get('timings_s')}; "
                      f"shade {traced}{f'; {cleared} bytecode folders deleted before' if label == 'cold' else ''})",
                      flush=True)
    cold, warm = statistics.median(times["cold"]), statistics.median(times["warm"])
    pairs = ", ".join(f"{c - w:+.1f}" for c, w in zip(times["cold"], times["warm"]))
    print(f"median cold {cold:.1f} s, warm {warm:.1f} s: the first run costs {cold - warm:+.1f} s "
          f"(pairs {pairs}; target <= +3 s)")


if __name__ == "__main__":
    main()
