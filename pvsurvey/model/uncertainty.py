"""How sure are we: P90 / P50 / P10 bands on the survey's figures.

A small, stated uncertainty model (its defaults and their sources are in
:class:`pvsurvey.config.schema.Uncertainty`). Each source of error is a relative
standard deviation [fraction, 1 sigma] with one of three correlation structures:

- **systematic**: one draw for the whole survey (the irradiance source's bias,
  the systematic part of the usable-area factors, the model chain, the typical
  year made without a weather file). It does not average out in a total.
- **per weather cell**: one draw per cell of the irradiance (the local part of
  the irradiance error), independent between cells.
- **per building**: one draw per roof (its own obstructions and layout),
  independent between roofs.

Propagation, without re-running the survey per sample: for a sum ``S = sum_i x_i``
of one quantity (area, capacity, yield) over a set of buildings, with the relative
errors of the three structures,

    Var(S) = S^2 * sum_k s_k^2                (systematic parts k, fully correlated)
           + sum_c (sum_{i in c} x_i)^2 * s_cell^2      (cells c, independent)
           + sum_i x_i^2 * s_building^2        (buildings, independent)

This needs only the sum, the sum of squares and the per-cell sums of each group:
additive over partitions, so the bands cost a few columns of the progress sums.
The sum is then taken as **lognormal with its median at the survey's own figure**
(the point estimate is the P50) and the coefficient of variation above (moment
matching, Fenton 1960): ``sigma_log = sqrt(ln(1 + cv^2))``, ``P90 = S *
exp(-z sigma_log)``, ``P10 = S * exp(+z sigma_log)`` with ``z = 1.2816``. Lognormal
keeps the bands positive and makes a band of one building the same whether
computed per building or as a sum of one.

**P90 is the value exceeded with 90 % probability**: the low, cautious figure.
P10 is exceeded with only 10 % probability: the high one.

The installation ratio (area basis) ``R = A_pv / A_all`` shares its systematic
area factor between numerator and denominator: it cancels. Only the per-building
part remains, linearised: ``sd(R) = s_building / A_all * sqrt((1 - R)^2 * sum_pv
a_i^2 + R^2 * sum_nopv a_i^2)``, taken as normal and clipped to [0, 1]. A count
ratio has no area error (its band is its value). New capacity counts the
registry's systems, not the survey's estimate: no modelled band (the probability
its target is met is 0 or 1); the remaining potential that can close its gap
carries one.

References: Thevenard & Pelland, *Estimating the uncertainty in long-term
photovoltaic yield predictions*, Solar Energy 91 (2013) 432-445 (independent
sources added in quadrature); Fenton, *The sum of log-normal probability
distributions in scatter transmission systems*, IRE Trans. Commun. Syst. 8(1)
(1960) 57-67; IEA-PVPS T13-12:2018 (Reise et al.), *Uncertainties in PV System
Yield Predictions and Assessments* (P90 as an exceedance probability).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Standard normal quantile of 0.9: P90 and P10 lie z standard deviations either side.
Z90 = 1.2815515655446004

# The summed figures that get a band, their kind (which error sources apply) and
# the name of their sum of squares in the progress sums.
BANDED = {
    "usable_area_m2": ("area", "usable_area_sumsq_m4"),
    "capacity_kwp": ("area", "capacity_sumsq_kwp2"),
    "annual_yield_kwh": ("yield", "annual_yield_sumsq_kwh2"),
    "remaining_potential_kwp": ("area", "remaining_potential_sumsq_kwp2"),
    "remaining_potential_kwh": ("yield", "remaining_potential_sumsq_kwh2"),
}
# The sum of squares of the area with PV (the ratio's band).
PV_AREA_SUMSQ = "usable_area_with_pv_sumsq_m4"
SUMSQ_COLUMNS = [sq for _, sq in BANDED.values()] + [PV_AREA_SUMSQ]
# Yield sums kept per weather cell (the per-cell part of the irradiance error).
CELL_SUMMED = ["annual_yield_kwh", "remaining_potential_kwh"]

# Band column names: <stem>_p90_<unit> / <stem>_p10_<unit>.
def band_names(column: str) -> tuple[str, str]:
    """P90 and P10 column names of a figure: ``capacity_kwp`` → ``capacity_p90_kwp``, ``capacity_p10_kwp``."""
    stem, unit = column.rsplit("_", 1)
    return f"{stem}_p90_{unit}", f"{stem}_p10_{unit}"


# Per-building band columns of buildings.parquet, after the figure they bound.
BUILDING_BANDED = ["usable_area_m2", "capacity_kwp", "annual_yield_kwh"]
BUILDING_BAND_COLUMNS = [n for c in BUILDING_BANDED for n in band_names(c)]
# Band columns of the progress tables, parks.csv and districts.csv.
AGGREGATE_BAND_COLUMNS = [n for c in BANDED for n in band_names(c)]
RATIO_BAND_COLUMNS = ["install_ratio_p90_frac", "install_ratio_p10_frac", "ratio_gap_p90_frac",
                      "ratio_gap_p10_frac", "install_ratio_met_prob", "new_capacity_met_prob",
                      "can_close_capacity_gap_p90"]


@dataclass(frozen=True)
class BandParts:
    """The relative standard deviations in use [fraction, 1 sigma], by correlation structure.

    ``area_*`` apply to usable area and capacity; yields get every part.
    """

    area_systematic: float
    area_building: float
    irradiance_systematic: float
    irradiance_cell: float
    model_chain: float
    typical_year: float  # 0 where a weather file is given

    @property
    def area_sys2(self) -> float:
        return self.area_systematic ** 2

    @property
    def yield_sys2(self) -> float:
        """Squared systematic part of a yield: every city-wide source, in quadrature."""
        return (self.area_systematic ** 2 + self.irradiance_systematic ** 2 + self.model_chain ** 2
                + self.typical_year ** 2)

    def systematic2(self, kind: str) -> float:
        return self.yield_sys2 if kind == "yield" else self.area_sys2

    def cell2(self, kind: str) -> float:
        return self.irradiance_cell ** 2 if kind == "yield" else 0.0

    def building2(self, kind: str) -> float:
        return self.area_building ** 2

    def as_dict(self) -> dict:
        return {k: float(getattr(self, k)) for k in ("area_systematic", "area_building", "irradiance_systematic",
                                                      "irradiance_cell", "model_chain", "typical_year")}


def band_parts(uncertainty, has_weather_file: bool) -> BandParts | None:
    """The parts of a config's ``uncertainty`` section (None when bands are off).

    Parameters
    ----------
    uncertainty : pvsurvey.config.schema.Uncertainty
    has_weather_file : bool
        A weather file gives the hourly year: no typical-year part then.
    """
    if uncertainty is None or not uncertainty.enabled:
        return None
    return BandParts(uncertainty.area_systematic_frac, uncertainty.area_building_frac, uncertainty.irradiance_frac(),
                     uncertainty.irradiance_cell_frac, uncertainty.model_chain_frac,
                     0.0 if has_weather_file else uncertainty.typical_year_frac)


def lognormal_band(median, cv):
    """P90 and P10 of a lognormal with this median and coefficient of variation.

    Parameters
    ----------
    median : array_like
        The figure itself (P50) [any unit].
    cv : array_like
        Standard deviation / mean [fraction].

    Returns
    -------
    (p90, p10) : numpy.ndarray
        P90: exceeded with 90 % probability (low); P10: with 10 % (high).
    """
    median = np.asarray(median, dtype=float)
    sigma = np.sqrt(np.log1p(np.square(np.asarray(cv, dtype=float))))
    return median * np.exp(-Z90 * sigma), median * np.exp(Z90 * sigma)


def sum_cv(total, sum_sq, cell_sq, sys2: float, cell2: float, building2: float):
    """Coefficient of variation of a sum with systematic, per-cell and per-building parts.

    Parameters
    ----------
    total : array_like
        The sums ``S`` [unit].
    sum_sq : array_like
        Sums of the buildings' squares ``sum_i x_i^2`` [unit²].
    cell_sq : array_like
        ``sum_c (sum_{i in c} x_i)^2`` over the weather cells [unit²] (0 where no cell part applies).
    sys2, cell2, building2 : float
        Squared relative standard deviations of each structure.
    """
    total = np.asarray(total, dtype=float)
    var = (np.square(total) * sys2 + np.asarray(cell_sq, dtype=float) * cell2
           + np.asarray(sum_sq, dtype=float) * building2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.sqrt(var) / np.where(total > 0, total, 1.0), 0.0)


def building_bands(frame: pd.DataFrame, parts: BandParts) -> dict[str, np.ndarray]:
    """P90 / P10 of each building's usable area, capacity and annual yield.

    One building is a sum of one: its cell part and building part both apply in
    full. Returns the :data:`BUILDING_BAND_COLUMNS` as float32 arrays.
    """
    out = {}
    for column in BUILDING_BANDED:
        kind = BANDED[column][0]
        cv = math.sqrt(parts.systematic2(kind) + parts.cell2(kind) + parts.building2(kind))
        p90, p10 = lognormal_band(frame[column].to_numpy(dtype=float), cv)
        # float32: seven digits are plenty for a range of ±20 %, and half the bytes to write
        out.update(zip(band_names(column), (p90.astype(np.float32), p10.astype(np.float32))))
    return out


def squares(frame) -> dict[str, np.ndarray]:
    """The buildings' squares of the banded figures (summed per group as :data:`SUMSQ_COLUMNS`).

    ``frame`` (a DataFrame or a dict of arrays) holds the progress-sum columns of
    each building (one row per building).
    """
    out = {sq: np.square(np.asarray(frame[col], dtype=float)) for col, (_, sq) in BANDED.items()}
    out[PV_AREA_SUMSQ] = np.square(np.asarray(frame["usable_area_with_pv_m2"], dtype=float))
    return out


def cell_squares(cell_sums: pd.DataFrame | None, index) -> pd.DataFrame:
    """``sum_c S_gc^2`` per group ``g`` from per-(group, cell) sums of :data:`CELL_SUMMED`.

    ``cell_sums`` is indexed by (group, weather cell); the result is reindexed to ``index`` (0 where absent).
    """
    if cell_sums is None or not len(cell_sums):
        return pd.DataFrame(0.0, index=index, columns=CELL_SUMMED)
    sq = np.square(cell_sums[CELL_SUMMED].astype(float)).groupby(level=0).sum()
    return sq.reindex(index).fillna(0.0)


def add_bands(m: pd.DataFrame, parts: BandParts | None, cell_sq: pd.DataFrame | None = None,
              basis: str = "area") -> pd.DataFrame:
    """Band columns on progress metrics (one row per group; :func:`pvsurvey.model.targets.progress_metrics`).

    Adds :data:`AGGREGATE_BAND_COLUMNS` and :data:`RATIO_BAND_COLUMNS`: the P90 /
    P10 of each summed figure, of the installation ratio and of its gap to the
    target, the probability that each target is already met, and whether the
    P90 of the remaining potential still closes the new-capacity gap. Without
    ``parts`` (bands off) the frame comes back unchanged.
    """
    if parts is None:
        return m
    m = m.copy()
    cells = cell_sq if cell_sq is not None else pd.DataFrame(0.0, index=m.index, columns=CELL_SUMMED)
    for column, (kind, sq) in BANDED.items():
        if column not in m:
            continue
        total = m[column].to_numpy(dtype=float)
        cs = cells[column].reindex(m.index).fillna(0.0).to_numpy() if column in cells else np.zeros(len(m))
        cv = sum_cv(total, m[sq].to_numpy(dtype=float) if sq in m else np.zeros(len(m)), cs,
                    parts.systematic2(kind), parts.cell2(kind), parts.building2(kind))
        p90, p10 = lognormal_band(total, cv)
        m[band_names(column)[0]], m[band_names(column)[1]] = p90, p10
    ratio = m["install_ratio_frac"].to_numpy(dtype=float)
    sd = ratio_sd(m, parts) if basis == "area" else np.zeros(len(m))
    m["install_ratio_p90_frac"] = np.clip(ratio - Z90 * sd, 0.0, 1.0)
    m["install_ratio_p10_frac"] = np.clip(ratio + Z90 * sd, 0.0, 1.0)
    target = m["target_install_ratio"].to_numpy(dtype=float)
    # the gap exceeded with 90 % probability is the smaller one (the ratio's high value)
    m["ratio_gap_p90_frac"] = np.clip(target - m["install_ratio_p10_frac"].to_numpy(), 0.0, None)
    m["ratio_gap_p10_frac"] = np.clip(target - m["install_ratio_p90_frac"].to_numpy(), 0.0, None)
    m["install_ratio_met_prob"] = prob_at_least(ratio, sd, target)
    cap_target = m["new_capacity_target_kwp"].where(m["new_capacity_target_kwp"] > 0)
    met = (m["new_kwp_since_baseline"] >= cap_target - 1e-9).astype(float)
    m["new_capacity_met_prob"] = met.where(cap_target.notna())
    if "remaining_potential_p90_kwp" in m:
        closes = m["remaining_potential_p90_kwp"] >= m["new_capacity_gap_kwp"] - 1e-9
        m["can_close_capacity_gap_p90"] = closes.where(cap_target.notna() & m["remaining_potential_kwp"].notna())
    return m


def ratio_sd(m: pd.DataFrame, parts: BandParts) -> np.ndarray:
    """Standard deviation of the area installation ratio [fraction].

    The systematic area factor multiplies numerator and denominator alike and
    cancels; the per-building part, linearised, gives
    ``s_b / A * sqrt((1 - R)^2 * Q_pv + R^2 * (Q_all - Q_pv))`` with ``Q`` the sums
    of squared usable areas (with PV, all).
    """
    area = m["usable_area_m2"].to_numpy(dtype=float)
    ratio = m["install_ratio_area_frac"].to_numpy(dtype=float)
    q_all = m["usable_area_sumsq_m4"].to_numpy(dtype=float) if "usable_area_sumsq_m4" in m else np.zeros(len(m))
    q_pv = m[PV_AREA_SUMSQ].to_numpy(dtype=float) if PV_AREA_SUMSQ in m else np.zeros(len(m))
    inner = np.square(1.0 - ratio) * q_pv + np.square(ratio) * np.clip(q_all - q_pv, 0.0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, parts.area_building * np.sqrt(inner) / np.where(area > 0, area, 1.0), 0.0)


def prob_at_least(value, sd, target):
    """P(true value >= target) for a normal around ``value`` with ``sd`` (a step where sd = 0)."""
    value, sd, target = (np.asarray(v, dtype=float) for v in (value, sd, target))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (value - target) / np.where(sd > 0, sd, 1.0)
    erf = np.vectorize(math.erf, otypes=[float])  # one call per group, never per building
    prob = 0.5 * (1.0 + erf(z / math.sqrt(2.0))) if z.size else z
    return np.where(sd > 0, prob, (value >= target - 1e-12).astype(float))


def forecast_range(as_of_dates, values, target: float, sd_now: float = 0.0, z: float = Z90) -> list[str] | None:
    """The P10-P90 range of the date a target is reached at the current pace.

    Parameters
    ----------
    as_of_dates : sequence of dates
        The runs in the pace window, one value each.
    values : array_like
        The figure at each run (ratio [fraction] or new capacity [kWp]).
    target : float
        The target, in the same unit.
    sd_now : float
        Standard deviation of the figure's level [same unit]: the ratio's band
        (the same roofs in every run, so it shifts the whole line, not its slope).

    Returns
    -------
    [earliest, latest] ISO dates (an 80 % interval), or None without a rising pace.
    The least-squares line's own uncertainty (slope standard error, with three
    runs or more, and its level) is added in quadrature; the time to reach the
    target is linearised in both.
    """
    t = pd.to_datetime(pd.Series(list(as_of_dates)))
    days = ((t - t.iloc[0]).dt.days).to_numpy(dtype=float)
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 2:
        return None
    slope, intercept = np.polyfit(days, v, 1)
    if not slope > 1e-12 * max(float(np.abs(v).max()), 1e-12):  # flat within float noise: no pace
        return None
    mean_d = days.mean()
    hit = (target - intercept) / slope
    s2 = float(np.sum(np.square(v - (slope * days + intercept))) / (n - 2)) if n > 2 else 0.0
    sxx = float(np.sum(np.square(days - mean_d)))
    se_slope = math.sqrt(s2 / sxx) if sxx > 0 else 0.0
    var = (sd_now ** 2 + s2 / n) / slope ** 2 + ((hit - mean_d) * se_slope / slope) ** 2
    half = z * math.sqrt(var)
    last = days.max()
    # never before the last run; at most a century ahead (a pace that slow has no date worth printing)
    early, late = (min(max(d, last), last + 36_525.0) for d in (hit - half, hit + half))
    start = t.iloc[0]
    # rounded to the microday, as pace_and_forecast does: 299.99999999 days is day 300
    return [(start + pd.to_timedelta(round(d, 6), unit="D")).date().isoformat() for d in (early, late)]


def project_bands(capacity_kwp, annual_yield_kwh, parts: BandParts, econ) -> dict[str, np.ndarray]:
    """The P90 yield and the simple payback at the P90 specific yield of candidate projects.

    Parameters
    ----------
    capacity_kwp, annual_yield_kwh : array_like
        Each project's capacity [kWp] and first-year yield [kWh/yr].
    parts : BandParts
    econ : pvsurvey.config.schema.Economics

    Returns
    -------
    dict
        ``annual_yield_p90_kwh`` [kWh/yr]: the yield exceeded with 90 %
        probability, every part applied in full (a project is a roof or a few
        adjoining ones: the per-building part is kept whole, a cautious choice);
        ``simple_payback_p90_yr`` [yr]: the payback if the specific yield is its
        P90 (the capacity, hence the investment, is what gets built: only the
        irradiance, model-chain and typical-year parts apply) — the long, cautious payback.
    """
    from .economics import simple_payback_yr

    cap = np.asarray(capacity_kwp, dtype=float)
    energy = np.asarray(annual_yield_kwh, dtype=float)
    cv_all = math.sqrt(parts.yield_sys2 + parts.irradiance_cell ** 2 + parts.area_building ** 2)
    cv_sy = math.sqrt(parts.irradiance_systematic ** 2 + parts.irradiance_cell ** 2 + parts.model_chain ** 2
                      + parts.typical_year ** 2)
    return {"annual_yield_p90_kwh": lognormal_band(energy, cv_all)[0],
            "simple_payback_p90_yr": np.asarray(simple_payback_yr(cap, lognormal_band(energy, cv_sy)[0], econ))}


def band_definition(parts: BandParts) -> dict:
    """What progress.json says about its bands."""
    return {
        "meaning": "P90 = exceeded with 90 % probability (the cautious, low value); P50 = the figure itself; "
                   "P10 = exceeded with only 10 % probability (the high value)",
        "distribution": "sums lognormal with the figure as median, spread from systematic, per-weather-cell "
                        "and per-building parts (pvsurvey.model.uncertainty); ratios normal, clipped to 0..1",
        "ratio": "the systematic usable-area factor cancels in the installation ratio; its band is the per-building "
                 "part only (a count ratio has none)",
        "new_capacity": "counted from the registry: no modelled band; new_capacity_met_prob is 0 or 1",
        "forecast_range": "80 % interval (P10 to P90) of the date, from the ratio's band and the pace's fit",
        "parts_frac_1sigma": parts.as_dict(),
    }


__all__ = ["Z90", "BANDED", "BandParts", "band_parts", "band_names", "lognormal_band", "sum_cv", "building_bands",
           "squares", "cell_squares", "add_bands", "ratio_sd", "prob_at_least", "forecast_range", "band_definition",
           "BUILDING_BAND_COLUMNS", "AGGREGATE_BAND_COLUMNS", "RATIO_BAND_COLUMNS", "SUMSQ_COLUMNS", "CELL_SUMMED",
           "PV_AREA_SUMSQ", "project_bands"]
