"""Incremental nightly rerun against a full run (prints numbers; not a test).

    python benchmarks/bench_incremental.py [-n 1000000] [--changed 0.01]

Writes N synthetic footprints in row groups of N/100 (100 partitions), runs a full
survey with a registry, edits the roofs of 1 % of the partitions and the registry
(a normal night), and runs again in the same process: the second run reuses the
unchanged partitions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from synthetic import REPO, rectangles
from pvsurvey.config.loading import config_from_dict
from pvsurvey.pipeline.run import run_survey


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--changed", type=float, default=0.01, help="share of partitions edited (default 1 %%)")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    group = args.n // 100
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp = gpd.GeoDataFrame({"id": [f"S{i}" for i in range(args.n)]}, geometry=rectangles(args.n), crs=4326)
        fp.to_parquet(tmp / "fp.parquet", row_group_size=group)
        rng = np.random.default_rng(1)
        pick = rng.choice(args.n, 2000, replace=False)
        registry = pd.DataFrame({"building_id": fp["id"].to_numpy()[pick], "capacity_kwp": 100.0,
                                 "commissioned_on": "2023-05-01", "status": "connected"})
        registry.to_csv(tmp / "reg.csv", index=False)
        cfg = config_from_dict({"name": "inc", "footprints": "fp.parquet", "installations": "reg.csv",
                                "irradiance": {"ghi": str(REPO / "data/demo/ghi_gldas_0p25.tif")},
                                "parallel": {"partition_rows": group}}, tmp)
        t0 = time.perf_counter()
        full = run_survey(cfg, tmp / "runs" / "inc", workers=args.workers)
        t_full = time.perf_counter() - t0

        edited = rng.choice(100, max(1, int(round(100 * args.changed))), replace=False)
        for g in edited:  # a redrawn roof in each edited partition
            fp.loc[g * group, "geometry"] = fp.loc[g * group, "geometry"].buffer(-1e-6)
        fp.to_parquet(tmp / "fp.parquet", row_group_size=group)
        registry.loc[len(registry)] = [fp["id"].iloc[5], 80.0, "2024-11-20", "connected"]  # tonight's new system
        registry.to_csv(tmp / "reg.csv", index=False)
        t0 = time.perf_counter()
        night = run_survey(cfg, tmp / "runs" / "inc", workers=args.workers)
        t_night = time.perf_counter() - t0
    p = night.manifest["partitions"]
    print(f"full run: {args.n:,} footprints in {t_full:.2f} s; steps {full.manifest['timings_s']}")
    print(f"night with {len(edited)} of 100 partitions edited and a new registry: {t_night:.2f} s "
          f"({100 * t_night / t_full:.1f} % of the full run; {p['reused']} partitions reused, {p['surveyed']} surveyed); "
          f"steps {night.manifest['timings_s']}")


if __name__ == "__main__":
    main()
