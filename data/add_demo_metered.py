"""Add SYNTHETIC metered annual generation to the demo registry (deterministic).

    pvsurvey run --out /tmp/demo            # a demo run without metered values is fine
    python data/add_demo_metered.py /tmp/demo

Each connected system commissioned on or before 2024-06-30 (a full metered year
by the registry's date, 2025-06-30) gets ``metered_kwh_per_yr`` = its predicted
yield in that run (capacity × the specific yield of the roof it matched) ×
``BIAS`` × a lognormal scatter of log-sd ``SCATTER``: what ``pvsurvey validate``
should recover (bias -7 %). Other rows stay blank. See data/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

REGISTRY = Path(__file__).resolve().parent / "demo" / "installations-2025-06-30.csv"
SEED = 15  # issue 15
BIAS = 0.93  # metered / predicted: systems yield 7 % less than modelled
SCATTER = 0.08  # log-sd between systems (soiling, outages, orientation of real arrays)
METERED_BY = "2024-06-30"


def main(run_dir: str) -> None:
    run = Path(run_dir)
    registry = pd.read_csv(REGISTRY, dtype=str, keep_default_na=False)
    matched = pd.read_csv(run / "installations_matched.csv", encoding="utf-8-sig", dtype={"registry_id": str,
                          "matched_building_id": str})
    sy = pd.read_parquet(run / "buildings.parquet", columns=["building_id", "specific_yield_kwh_per_kwp"]) \
        .set_index("building_id")["specific_yield_kwh_per_kwp"]
    m = matched.set_index("registry_id").reindex(registry["registry_id"])
    date = pd.to_datetime(registry["commissioned_on"], errors="coerce")
    full_year = (registry["status"] == "connected").to_numpy() & (date <= pd.Timestamp(METERED_BY)).to_numpy()
    predicted = m["capacity_kwp"].to_numpy(dtype=float) * sy.reindex(m["matched_building_id"]).to_numpy(dtype=float)
    rng = np.random.default_rng(SEED)
    noise = np.exp(rng.normal(0.0, SCATTER, len(registry)))
    metered = predicted * BIAS * noise
    ok = full_year & np.isfinite(metered)
    registry["metered_kwh_per_yr"] = np.where(ok, np.round(metered, -1), np.nan)
    registry["metered_kwh_per_yr"] = registry["metered_kwh_per_yr"].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
    registry.to_csv(REGISTRY, index=False, encoding="utf-8")
    print(f"{int(ok.sum())} of {len(registry)} rows metered -> {REGISTRY}")


if __name__ == "__main__":
    main(sys.argv[1])
