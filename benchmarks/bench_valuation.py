"""Cost of the hourly (time-of-use) valuation of candidate projects (prints numbers; not a test).

    python benchmarks/bench_valuation.py                      # 940,000 projects: a 1M-footprint run's candidates
    python benchmarks/bench_valuation.py -n 100000 --repeat 5
    python benchmarks/bench_valuation.py --compare RUN_FLAT RUN_HOURLY   # ranking under both valuations

The timing mode builds the candidates' valuation inputs as a 1M-footprint run has them —
the documented 10M run ranked 9.4M projects, so 1M footprints give about 940,000 — spread
over the 25 weather cells of the synthetic footprints' extent (0.25° cells over Shanghai)
and the synthetic run's roofs (flat: tilted rows 15°/180° on concrete, flush 0°/180° on
steel; ``--pitched-frac`` adds pitched planes at any azimuth, a harder case), and times,
interleaved and as medians:

- ``flat``: the economics of the flat valuation (what a run cost before);
- ``hourly``: the load estimate of every building, the shape keys, the hourly valuation
  and the economics on its figures;
- ``shapes``: the hourly PV shapes the projects need, computed with pvlib once per process
  (per weather cell × orientation), from cold and from the yield table's cached cells.

Target (issue 16): the valuation adds at most 10 % to a 1,000,000-footprint run; the run's
time is the documented 18.4–18.9 s on 2 workers (README, Performance).

Issue 16 target: valuation ≤ 10 % of a 1M run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pvsurvey.config.schema import Climate, Economics, System
from pvsurvey.model.candidates import _valuation, building_loads
from pvsurvey.model.tou import shape_keys
from pvsurvey.model.yield_table import SpecificYieldTable

EXTENT = (120.80, 30.70, 121.95, 31.95)  # benchmarks/synthetic.py
RUN_1M_S = 18.65  # README, Performance: 1M footprints, 2 workers, 18.4–18.9 s


def projects(n: int, table: SpecificYieldTable, limited_frac: float, pitched_frac: float = 0.0, seed: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(buildings, projects) as a run has them: one roof per project, as in the synthetic runs."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(EXTENT[1], EXTENT[3], n)
    lon = rng.uniform(EXTENT[0], EXTENT[2], n)
    row, col = table.cells(lat, lon)
    family = rng.choice(3, n, p=[0.6, 0.4 - pitched_frac, pitched_frac])
    tilt = np.choose(family, [15.0, 0.0, 10.0])
    az = np.where(family == 2, rng.uniform(0, 360, n), 180.0)
    mount = np.where(family == 0, "rack", "flush").astype(object)
    cap = rng.lognormal(np.log(300), 0.8, n) + 50
    area = cap / 0.21 / 0.6
    buildings = pd.DataFrame({
        "weather_cell": table.cell_id(row, col), "surface_tilt_deg": tilt, "surface_azimuth_deg": az,
        "mount": mount, "footprint_area_m2": area, "levels": np.where(rng.random(n) < 0.5, np.nan, 2.0),
        "building_type": rng.choice(np.array(["industrial", "warehouse", "office", None], dtype=object), n),
        "annual_consumption_kwh": np.where(rng.random(n) < 0.2, cap * rng.uniform(500, 5000, n), np.nan),
        "capacity_kwp": cap, "annual_yield_kwh": cap * rng.uniform(1000, 1150, n)})
    limit = np.where(rng.random(n) < limited_frac, cap * rng.uniform(0.5, 1.2, n), np.nan)
    return buildings, pd.DataFrame({"capacity_kwp": cap, "annual_yield_kwh": buildings["annual_yield_kwh"],
                                    "grid_capacity_kw": limit, "connection_voltage_kv": np.nan})


def hourly(buildings, agg, econ, shapes):
    load, shape = building_loads(buildings, econ)
    agg = agg.assign(annual_load_kwh=load, load_shape_code=shape,
                     **{c: buildings[c].to_numpy() for c in ("weather_cell", "surface_tilt_deg",
                                                              "surface_azimuth_deg", "mount")})
    return _valuation(agg, econ, shapes)


def time_it(fn) -> float:
    """CPU seconds of this process: on a shared, oversubscribed machine the wall clock
    mostly measures the other jobs."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def timing(args) -> None:
    table = SpecificYieldTable(System(), Climate())
    buildings, agg = projects(args.n, table, args.limited_frac, args.pitched_frac)
    econ, flat = Economics(), Economics(valuation="flat")
    keys = pd.unique(shape_keys(buildings["weather_cell"], buildings["surface_tilt_deg"],
                                buildings["surface_azimuth_deg"], buildings["mount"]))
    cold = time_it(lambda: table.hourly_shapes(keys))
    warm_table = SpecificYieldTable(System(), Climate())
    warm_table._cells = table._cells  # the survey's cells (solar position, clear-sky year) already computed
    warm = time_it(lambda: warm_table.hourly_shapes(keys))
    print(f"{args.n:,} projects, {len(keys)} hourly PV shapes (weather cell × orientation), "
          f"{args.limited_frac:.0%} with a connection limit")
    print(f"shapes: {cold:.2f} s from cold, {warm:.2f} s with the survey's cells cached (once per worker process)")
    print("(CPU seconds of this process)")
    times = {"flat": [], "hourly": []}
    for _ in range(args.repeat):  # interleaved
        times["flat"].append(time_it(lambda: _valuation(agg.assign(grid_capacity_kw=np.nan), flat, None)))
        times["hourly"].append(time_it(lambda: hourly(buildings, agg, econ, table.hourly_shapes)))
    f, h = statistics.median(times["flat"]), statistics.median(times["hourly"])
    print(f"flat economics: median {f:.2f} s ({', '.join(f'{t:.2f}' for t in times['flat'])})")
    print(f"hourly valuation + economics: median {h:.2f} s ({', '.join(f'{t:.2f}' for t in times['hourly'])})")
    extra = h - f + 2 * warm  # each of the 2 workers computes the shapes it needs once
    print(f"added by the hourly valuation (+ the shapes in each of 2 workers, cells cached): {extra:.2f} CPU-s = "
          f"{extra / (2 * RUN_1M_S):.1%} of the documented 1M run's {2 * RUN_1M_S:.1f} CPU-s "
          f"(2 workers × {RUN_1M_S} s wall)")


def compare(flat_run: Path, hourly_run: Path) -> None:
    def read(run):
        return pd.read_parquet(Path(run) / "candidates.parquet").drop(columns="geometry")

    def ranks(df, key):
        order = df.sort_values([key, "project_id"], kind="stable")["project_id"].to_numpy()
        return pd.Series(np.arange(1, len(order) + 1), index=order)

    h, f = read(hourly_run), read(flat_run)
    print(f"{len(h)} projects (hourly run), {len(f)} (flat run)")
    print("| ranked by | projects whose rank changes | moved > 100 places | median move | top 100 in both |")
    print("|---|---|---|---|---|")
    for key in ("lcoe_cny_per_kwh", "simple_payback_yr", "npv_cny"):
        sign = -1 if key == "npv_cny" else 1
        rh = ranks(h.assign(_k=sign * h[key]), "_k")
        rf = ranks(f.assign(_k=sign * f[key]), "_k").reindex(rh.index)
        move = (rh - rf).abs()
        median = f"{move[move > 0].median():.0f}" if (move > 0).any() else "–"
        print(f"| {key} | {int((move > 0).sum())} | {int((move > 100).sum())} | {median} | "
              f"{len(set(rh.index[rh <= 100]) & set(rf.index[rf <= 100]))} |")
    m = h.merge(f, on="project_id", suffixes=("", "_flat"))
    m["band"] = pd.cut(m["self_consumed_share"], [0, 0.3, 0.5, 0.7, 0.9, 1.0 + 1e-9])
    print()
    print("| self-consumed share | projects | value CNY/kWh (hourly) | self-used kWh worth | payback hourly | payback flat |")
    print("|---|---|---|---|---|---|")
    for band, g in m.groupby("band", observed=True):
        print(f"| {band} | {len(g)} | {g['value_cny_per_kwh'].median():.3f} | "
              f"{g['value_self_used_cny_per_kwh'].median():.3f} | {g['simple_payback_yr'].median():.2f} | "
              f"{g['simple_payback_yr_flat'].median():.2f} |")
    print(f"\nfirst-year savings, all projects: hourly / flat = {h['annual_savings_cny'].sum() / f['annual_savings_cny'].sum():.3f}; "
          f"flat value {f['value_cny_per_kwh'].iloc[0]:.4f} CNY/kWh, hourly median {h['value_cny_per_kwh'].median():.3f} "
          f"(range {h['value_cny_per_kwh'].min():.3f}–{h['value_cny_per_kwh'].max():.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=940_000, help="projects (default: a 1M-footprint run's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limited-frac", type=float, default=0.0, help="share of projects with a connection limit")
    parser.add_argument("--pitched-frac", type=float, default=0.0,
                        help="share of pitched planes at any azimuth (the synthetic 1M run has none: flat roofs)")
    parser.add_argument("--compare", nargs=2, metavar=("RUN_FLAT", "RUN_HOURLY"), type=Path)
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        timing(args)


if __name__ == "__main__":
    main()
