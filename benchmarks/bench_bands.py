"""What the P90/P10 bands cost on 1,000,000 roofs (prints numbers; not a test).

    python benchmarks/bench_bands.py            # 1,000,000 rows, 3 rounds, medians
    python benchmarks/bench_bands.py -n 10000000 --repeat 1

Times, on synthetic rows with the columns the survey gives them, every piece of
work the bands add to a run (pvsurvey.model.uncertainty): each roof's six band
columns (round 2), the sums of squares and the per-weather-cell yields of the
progress sums (round 2, three levels), writing the six columns to Parquet (LZ4,
as the part files), the bands on the aggregates (the client), and the candidate
lists' P90 yield and payback. Their sum is set against the end-to-end time of a
1M run (``bench_survey.py --workers 2``; pass the one measured on this machine
with ``--run-seconds``). Issue 15 allows at most 15 %.

``bench_survey.py --workers 2 --bands --repeat 3`` measures the same end to end
(bands on vs off, interleaved) where a 1M run is short enough to repeat.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthetic import REPO  # noqa: F401  (puts the repository on the path like the other benchmarks)
from pvsurvey.config.schema import Economics, Uncertainty
from pvsurvey.io.writers import PARQUET_COMPRESSION
from pvsurvey.model.targets import progress_metrics, progress_sums
from pvsurvey.model.uncertainty import (SUMSQ_COLUMNS, add_bands, band_parts, building_bands, cell_squares,
                                        project_bands, squares)


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` roofs in 1,000 parks, 16 districts and 36 weather cells, a third with PV."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(100, 20_000, n)
    cap = area * 0.15
    park = rng.integers(0, 1000, n)
    has_pv = rng.random(n) < 0.3
    return pd.DataFrame({"park_id": pd.array([f"P{p:04d}" for p in range(1000)], dtype="string")[park],
                         "district": pd.array([f"D{d:02d}" for d in range(16)], dtype="string")[park % 16],
                         "city": "city", "weather_cell": pd.array([f"c{c}" for c in range(36)], dtype="string")[
                             rng.integers(0, 36, n)],
                         "usable_area_m2": area, "capacity_kwp": cap, "annual_yield_kwh": cap * 1100.0,
                         "has_pv": has_pv, "installed_kwp": np.where(has_pv, cap, 0.0), "new_kwp": 0.0,
                         "pipeline_kwp": 0.0})


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-seconds", type=float, default=18.4,
                    help="end-to-end time of a 1M run to compare with (default: README's 18.4 s, 2 workers)")
    args = ap.parse_args()
    f = frame(args.n)
    parts = band_parts(Uncertainty(), False)
    econ = Economics()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            def sums(with_squares: bool, with_cells: bool):  # round 2's progress sums of one run's roofs
                def run():
                    cells: dict | None = {} if with_cells else None
                    for by in ("park_id", "district", "city"):
                        out = progress_sums(f, by, 50.0, cells)
                        if not with_squares:  # what they cost before the bands (their squares dropped)
                            out.drop(columns=SUMSQ_COLUMNS)
                return run

            def squares_only():  # the squares' share of the sums: the same groupby with and without them
                g = f.assign(**{c: f["usable_area_m2"] for c in SUMSQ_COLUMNS})
                for by in ("park_id", "district", "city"):
                    g.groupby(by, sort=True)[[*SUMSQ_COLUMNS]].sum()

            bands = {}
            times.setdefault("progress sums, three levels, no cells (reference)", []).append(timed(sums(True, False)))
            times.setdefault("round 2: per-cell yields, three levels", []).append(
                timed(sums(True, True)) - times["progress sums, three levels, no cells (reference)"][-1])
            times.setdefault("round 2: sums of squares (6 more columns summed)", []).append(timed(squares_only))
            times.setdefault("round 2: each roof's 6 band columns", []).append(
                timed(lambda: bands.update(building_bands(f, parts))))
            table = pa.table({k: pa.array(v) for k, v in bands.items()})
            times.setdefault("round 2: writing the 6 columns (Parquet, LZ4)", []).append(
                timed(lambda: pq.write_table(table, Path(tmp) / "bands.parquet", compression=PARQUET_COMPRESSION)))
            cells: dict = {}
            park_sums = progress_sums(f, "park_id", 50.0, cells)
            m = progress_metrics(park_sums, 0.5, np.nan)
            times.setdefault("client: bands of 1,000 parks' aggregates", []).append(
                timed(lambda: add_bands(m, parts, cell_squares(cells["park_id"], m.index))))
            projects = f.iloc[: args.n // 2]
            times.setdefault("lists: P90 yield and payback of n/2 projects", []).append(
                timed(lambda: project_bands(projects["capacity_kwp"], projects["annual_yield_kwh"], parts, econ)))
    medians = {k: statistics.median(v) for k, v in times.items()}
    added = sum(v for k, v in medians.items() if "reference" not in k)
    for k, v in medians.items():
        print(f"{k:>58}: {v * 1000:8.1f} ms (median of {len(times[k])})")
    print(f"{'added by the bands':>58}: {added * 1000:8.1f} ms on {args.n:,} rows = "
          f"{100 * added / args.run_seconds:.1f} % of a {args.run_seconds:.1f} s run (the limit: 15 %)")


if __name__ == "__main__":
    main()
