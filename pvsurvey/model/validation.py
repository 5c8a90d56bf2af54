"""Predicted against metered generation: how far off is the survey, and is its band honest?

For each connected system of the registry that carries its annual metered
generation and matched a surveyed roof, the prediction is the system's own
capacity [kWp] × its roof's specific yield [kWh/kWp/yr]. Its band is the
lognormal of :mod:`pvsurvey.model.uncertainty` with the parts of a specific
yield (irradiance, model chain, typical year: the capacity is known) plus one
year's weather against the long-term mean (a metered year is one year).

Per city, district and park: the number of systems, the **bias** (geometric
mean of metered / predicted, less 1), the **spread** (standard deviation of
ln(metered / predicted)), the share of systems inside their own P90-P10 band
(about 80 % if the band is honest), and a **calibration factor** (the geometric
mean of metered / predicted) with its 95 % confidence interval (Student's t on
the mean of the logs). The factor is reported, never applied: applying it is a
decision for the survey's owner (``system.*`` losses or ``uncertainty``).

Systems in one park share their irradiance and model errors, so the interval is
that of the mean of these systems, not of the city's true bias beyond them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # Student's t quantile (scipy.special: lighter to import than scipy.stats)

from .uncertainty import Z90, BandParts

SYSTEM_COLUMNS = ["registry_id", "building_id", "park_id", "park_name", "district", "capacity_kwp",
                  "specific_yield_kwh_per_kwp", "predicted_kwh_per_yr", "predicted_p90_kwh_per_yr",
                  "predicted_p10_kwh_per_yr", "metered_kwh_per_yr", "metered_to_predicted_ratio", "inside_band"]
SUMMARY_COLUMNS = ["level", "key", "name", "systems", "predicted_kwh_per_yr", "metered_kwh_per_yr", "bias_frac",
                   "spread_log", "inside_band_frac", "calibration_factor", "calibration_low", "calibration_high"]


def system_sd_log(parts: BandParts, interannual_frac: float) -> float:
    """Log-spread [1 sigma] of one registered system's metered year around its prediction.

    Parameters
    ----------
    parts : BandParts
        The run's uncertainty parts; the usable-area parts do not apply (the
        registry gives the capacity).
    interannual_frac : float
        One year's weather against the long-term mean [fraction, 1 sigma].
    """
    cv2 = (parts.irradiance_systematic ** 2 + parts.irradiance_cell ** 2 + parts.model_chain ** 2
           + parts.typical_year ** 2 + interannual_frac ** 2)
    return math.sqrt(math.log1p(cv2))


def compare_systems(matched: pd.DataFrame, buildings: pd.DataFrame, sd_log: float) -> pd.DataFrame:
    """Predicted and metered generation of each metered, connected, matched system.

    Parameters
    ----------
    matched : DataFrame
        The registry outcome (``installations_matched.csv``): ``registry_id``,
        ``matched_building_id``, ``capacity_kwp`` [kWp], ``status``,
        ``metered_kwh_per_yr`` [kWh/yr].
    buildings : DataFrame
        ``building_id``, ``park_id``, ``park_name``, ``district``,
        ``specific_yield_kwh_per_kwp`` [kWh/kWp/yr] of the surveyed roofs.
    sd_log : float
        The band's log-spread (:func:`system_sd_log`).

    Returns
    -------
    DataFrame
        :data:`SYSTEM_COLUMNS`, one row per compared system.
    """
    m = matched.copy()
    metered = pd.to_numeric(m.get("metered_kwh_per_yr"), errors="coerce") if "metered_kwh_per_yr" in m else \
        pd.Series(np.nan, index=m.index)
    keep = (metered > 0) & (m["status"].astype(str) == "connected") & m["matched_building_id"].notna()
    m = m[keep.to_numpy()].assign(metered_kwh_per_yr=metered[keep].to_numpy(dtype=float))
    b = buildings.drop_duplicates("building_id").set_index(buildings["building_id"].drop_duplicates().astype(str))
    on = m["matched_building_id"].astype(str)
    sy = b["specific_yield_kwh_per_kwp"].reindex(on).to_numpy(dtype=float)
    out = pd.DataFrame({
        "registry_id": m["registry_id"].astype(str).to_numpy(),
        "building_id": on.to_numpy(),
        **{c: b[c].reindex(on).to_numpy() if c in b else None for c in ("park_id", "park_name", "district")},
        "capacity_kwp": m["capacity_kwp"].to_numpy(dtype=float),
        "specific_yield_kwh_per_kwp": sy,
    })
    out["predicted_kwh_per_yr"] = out["capacity_kwp"] * sy
    out["predicted_p90_kwh_per_yr"] = out["predicted_kwh_per_yr"] * math.exp(-Z90 * sd_log)
    out["predicted_p10_kwh_per_yr"] = out["predicted_kwh_per_yr"] * math.exp(Z90 * sd_log)
    out["metered_kwh_per_yr"] = m["metered_kwh_per_yr"].to_numpy()
    out = out[np.isfinite(out["predicted_kwh_per_yr"]) & (out["predicted_kwh_per_yr"] > 0)].reset_index(drop=True)
    out["metered_to_predicted_ratio"] = out["metered_kwh_per_yr"] / out["predicted_kwh_per_yr"]
    out["inside_band"] = ((out["metered_kwh_per_yr"] >= out["predicted_p90_kwh_per_yr"])
                          & (out["metered_kwh_per_yr"] <= out["predicted_p10_kwh_per_yr"]))
    return out[SYSTEM_COLUMNS]


def _summary(group: pd.DataFrame, confidence: float) -> dict:
    logs = np.log(group["metered_to_predicted_ratio"].to_numpy(dtype=float))
    n = len(logs)
    mean = float(logs.mean()) if n else math.nan
    sd = float(logs.std(ddof=1)) if n > 1 else math.nan
    half = float(stdtrit(n - 1, 0.5 + confidence / 2) * sd / math.sqrt(n)) if n > 1 else math.nan
    return {"systems": n, "predicted_kwh_per_yr": float(group["predicted_kwh_per_yr"].sum()),
            "metered_kwh_per_yr": float(group["metered_kwh_per_yr"].sum()),
            "bias_frac": math.exp(mean) - 1.0 if n else math.nan, "spread_log": sd,
            "inside_band_frac": float(group["inside_band"].mean()) if n else math.nan,
            "calibration_factor": math.exp(mean) if n else math.nan,
            "calibration_low": math.exp(mean - half) if n > 1 else math.nan,
            "calibration_high": math.exp(mean + half) if n > 1 else math.nan}


def summarise_validation(systems: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Bias, spread, share inside the band and calibration factor per city, district and park.

    Parameters
    ----------
    systems : DataFrame
        :func:`compare_systems`.
    confidence : float
        Level of the calibration factor's interval.

    Returns
    -------
    DataFrame
        :data:`SUMMARY_COLUMNS`: the city first, then each district, then each park.
    """
    rows = [{"level": "city", "key": "city", "name": "", **_summary(systems, confidence)}]
    for level, key, name in (("district", "district", "district"), ("park", "park_id", "park_name")):
        if key not in systems:
            continue
        for value, group in systems.dropna(subset=[key]).groupby(key, sort=True):
            if str(value) == "":
                continue
            rows.append({"level": level, "key": str(value), "name": str(group[name].iloc[0]),
                         **_summary(group, confidence)})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


__all__ = ["system_sd_log", "compare_systems", "summarise_validation", "SYSTEM_COLUMNS", "SUMMARY_COLUMNS"]
