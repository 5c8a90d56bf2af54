"""Yield: pvsurvey's table against one pvlib ModelChain per building (prints numbers).

    python benchmarks/bench_yield.py [-n 1000000] [--sample 20]

The ModelChain way is timed on a sample of buildings and extrapolated; both use
the same models (PVWatts, Perez, SAPM) and the same scaled clear-sky years.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pvlib

from pvsurvey.model.yield_table import SpecificYieldTable
from pvsurvey.model.weather_year import clearsky_year, scale_to_annual_ghi
from pvsurvey.config.schema import Climate, System


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(30.7, 31.9, args.n), rng.uniform(120.8, 121.9, args.n)
    ghi = rng.uniform(1290, 1340, args.n)
    tilt = np.where(rng.random(args.n) < 0.8, 15.0, rng.uniform(5, 30, args.n))
    azimuth = np.where(tilt == 15.0, 180.0, rng.uniform(90, 270, args.n))
    mount = np.where(tilt == 15.0, "rack", "flush").astype(object)
    system = System()

    t0 = time.perf_counter()
    table = SpecificYieldTable(system, Climate())
    ours, _ = table.lookup(lat, lon, ghi, tilt, azimuth, mount)
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    direct = []
    for i in range(args.sample):
        weather = scale_to_annual_ghi(clearsky_year(lat[i], lon[i], Climate()), ghi[i], lat[i], lon[i])
        params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
            "open_rack_glass_glass" if mount[i] == "rack" else "close_mount_glass_glass"]
        pv = pvlib.pvsystem.PVSystem(surface_tilt=tilt[i], surface_azimuth=azimuth[i], albedo=system.albedo,
                                     module_parameters={"pdc0": 1.0, "gamma_pdc": system.temperature_coefficient_per_c},
                                     inverter_parameters={"pdc0": 1 / (1.2 * 0.96), "eta_inv_nom": 0.96},
                                     temperature_model_parameters=params, losses_parameters={})
        mc = pvlib.modelchain.ModelChain(pv, pvlib.location.Location(lat[i], lon[i]), aoi_model="physical",
                                         spectral_model="no_loss", transposition_model="perez",
                                         losses_model="pvwatts", temperature_model="sapm")
        mc.run_model(weather)
        direct.append(float(mc.results.ac.clip(lower=0).sum()))
    t_mc = (time.perf_counter() - t0) / args.sample
    diff = np.abs(np.array(direct) / ours[:args.sample] - 1)
    print(f"pvsurvey table: {args.n:,} buildings in {t_ours:.2f} s ({args.n / t_ours:,.0f} buildings/s, "
          f"{len(table._cache):,} table entries)")
    print(f"ModelChain per building: {t_mc * 1000:.0f} ms each -> {t_mc * args.n / 3600:,.1f} h for {args.n:,} "
          f"({t_mc * args.n / t_ours:,.0f}x slower)")
    print(f"agreement on the {args.sample} sampled buildings: max {100 * diff.max():.2f} %, median "
          f"{100 * np.median(diff):.2f} % (the table uses 2 % GHI levels, 1° tilt and 5° azimuth steps and the "
          f"weather cell's centre)")


if __name__ == "__main__":
    main()
