"""Project economics of rooftop-PV candidates: CO₂, standard coal, capex, savings,
simple payback, LCOE and NPV — pure and vectorised, one element per project.

Every function takes the capacity [kWp] and/or the first-year annual yield
[kWh/yr] of N projects as arrays, Series or scalars (they broadcast) and the
parameters as one :class:`pvsurvey.config.schema.Economics`. A pandas Series in gives a
Series out on the same index; anything else gives a numpy array. NaN in gives
NaN out; negative capacity or yield is an error.

Conventions (all results in 2024 real terms, no tax, subsidy, financing,
inverter replacement or residual value):

- the investment (capex) is paid at the start of year 1 (t = 0, undiscounted);
- energy, savings and O&M fall at the end of each year t = 1 … lifetime and are
  discounted by (1 + r)⁻ᵗ (end-of-year discounting, as in [1]_ and [2]_);
- the yield of year t is E₁ (1 − d)ᵗ⁻¹ (module degradation d per year);
- prices and O&M stay constant in real terms; every kWh is worth
  ``self_consumed_frac × tariff + (1 − self_consumed_frac) × feed_in`` [CNY/kWh].

Because the price, O&M and discount schedules are the same for every project,
the sums over years reduce to two scalars — the annuity factor Σ (1 + r)⁻ᵗ and
the degraded-energy factor Σ (1 − d)ᵗ⁻¹ (1 + r)⁻ᵗ — computed once; each project
then costs a handful of array operations.

References
----------
.. [1] OECD/NEA and IEA (2020). Projected Costs of Generating Electricity, 2020
   Edition. Paris: OECD Publishing. Ch. 2, "Methodology": LCOE = Σ (investment
   + O&M + …)ₜ (1 + r)⁻ᵗ / Σ electricityₜ (1 + r)⁻ᵗ.
.. [2] Short, W., Packey, D. J. and Holt, T. (1995). A Manual for the Economic
   Evaluation of Energy Efficiency and Renewable Energy Technologies.
   NREL/TP-462-5173 (LCOE, NPV, simple payback; end-of-year convention).
.. [3] 上海市生态环境局 (2022). 关于调整本市温室气体排放核算指南相关排放因子数值的通知:
   purchased electricity 4.2 tCO₂/10⁴ kWh.
.. [4] 中国光伏行业协会 CPIA (2024). 中国光伏产业发展路线图 (2023–2024年).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import PVSurveyError
from ..config.schema import Economics

#: Columns of :func:`project_economics`, in order (registered in pvsurvey.columns).
ECONOMICS_COLUMNS = [
    "co2_avoided_t_per_yr", "coal_saved_tce_per_yr", "capex_cny", "annual_savings_cny",
    "simple_payback_yr", "lcoe_cny_per_kwh", "npv_cny",
]


class EconomicsInputError(PVSurveyError, ValueError):
    """Capacity or yield given to the economics is negative."""


def _array(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype="float64")
    if np.any(arr < 0):  # NaN compares False: NaN passes through
        raise EconomicsInputError(
            f"{name}: {int(np.sum(arr < 0))} negative value(s); capacity and yield must be ≥ 0")
    return arr


def _like(result: np.ndarray, *inputs):
    """Wrap ``result`` as a Series on the index of the first Series input, if any."""
    for value in inputs:
        if isinstance(value, pd.Series):
            return pd.Series(np.array(np.broadcast_to(result, value.shape)), index=value.index)
    result = np.asarray(result)
    return float(result) if result.ndim == 0 else result


def _capex(p: np.ndarray, econ: Economics) -> np.ndarray:
    return p * 1000.0 * econ.capex_cny_per_w  # kWp × 1000 W/kW × CNY/W


def _savings(p: np.ndarray, e: np.ndarray, econ: Economics) -> np.ndarray:
    return e * energy_value_cny_per_kwh(econ) - econ.om_cny_per_kw_yr * p


def energy_value_cny_per_kwh(econ: Economics) -> float:
    """Value of one kWh of PV yield [CNY/kWh]: saved tariff on the self-consumed share,
    feed-in price on the exported rest.

    Parameters
    ----------
    econ : pvsurvey.config.schema.Economics

    Returns
    -------
    float
        ``self_consumed_frac × tariff_cny_per_kwh + (1 − self_consumed_frac) ×
        feed_in_cny_per_kwh`` [CNY/kWh].
    """
    f = econ.self_consumed_frac
    return f * econ.tariff_cny_per_kwh + (1.0 - f) * econ.feed_in_cny_per_kwh


def annuity_factor(econ: Economics) -> float:
    """Present value of 1 CNY paid at the end of every year of the lifetime [yr].

    Parameters
    ----------
    econ : pvsurvey.config.schema.Economics

    Returns
    -------
    float
        Σₜ (1 + r)⁻ᵗ for t = 1 … ``lifetime_yr`` (= lifetime when r = 0).
    """
    t = np.arange(1, econ.lifetime_yr + 1)
    return float(np.sum((1.0 + econ.discount_rate) ** -t))


def discounted_energy_factor(econ: Economics) -> float:
    """Discounted lifetime energy per kWh of first-year yield [yr].

    Parameters
    ----------
    econ : pvsurvey.config.schema.Economics

    Returns
    -------
    float
        Σₜ (1 − d)ᵗ⁻¹ (1 + r)⁻ᵗ for t = 1 … ``lifetime_yr``, d the degradation
        and r the discount rate; times E₁ [kWh] it is the discounted energy.
    """
    t = np.arange(1, econ.lifetime_yr + 1)
    return float(np.sum((1.0 - econ.degradation_per_yr) ** (t - 1)
                        * (1.0 + econ.discount_rate) ** -t))


def co2_avoided_t_per_yr(annual_yield_kwh, econ: Economics = Economics()):
    """CO₂ emissions avoided by the PV yield [tCO₂/yr].

    Parameters
    ----------
    annual_yield_kwh : array-like or Series
        First-year AC yield [kWh/yr].
    econ : pvsurvey.config.schema.Economics
        ``emission_factor_t_per_mwh`` [tCO₂/MWh] is used.

    Returns
    -------
    ndarray or Series
        yield [kWh] × emission factor [tCO₂/MWh] / 1000 [tCO₂/yr].

    References
    ----------
    Shanghai's purchased-electricity factor, 0.42 tCO₂/MWh (上海市生态环境局 2022).
    """
    e = _array(annual_yield_kwh, "annual_yield_kwh")
    return _like(e * econ.emission_factor_t_per_mwh / 1000.0, annual_yield_kwh)


def coal_saved_tce_per_yr(annual_yield_kwh, econ: Economics = Economics()):
    """Standard coal (标准煤) saved by the PV yield [tce/yr].

    Parameters
    ----------
    annual_yield_kwh : array-like or Series
        First-year AC yield [kWh/yr].
    econ : pvsurvey.config.schema.Economics
        ``coal_kgce_per_kwh`` [kgce/kWh], the coal burnt per kWh of coal power supplied.

    Returns
    -------
    ndarray or Series
        yield [kWh] × coal factor [kgce/kWh] / 1000 [tce/yr].
    """
    e = _array(annual_yield_kwh, "annual_yield_kwh")
    return _like(e * econ.coal_kgce_per_kwh / 1000.0, annual_yield_kwh)


def capex_cny(capacity_kwp, econ: Economics = Economics()):
    """Turnkey investment of the system [CNY].

    Parameters
    ----------
    capacity_kwp : array-like or Series
        DC capacity [kWp].
    econ : pvsurvey.config.schema.Economics
        ``capex_cny_per_w`` [CNY/W].

    Returns
    -------
    ndarray or Series
        capacity [kWp] × 1000 [W/kW] × capex [CNY/W] [CNY].
    """
    return _like(_capex(_array(capacity_kwp, "capacity_kwp"), econ), capacity_kwp)


def annual_savings_cny(capacity_kwp, annual_yield_kwh, econ: Economics = Economics()):
    """First-year net savings: avoided grid purchases plus feed-in revenue, less O&M [CNY/yr].

    Parameters
    ----------
    capacity_kwp : array-like or Series
        DC capacity [kWp].
    annual_yield_kwh : array-like or Series
        First-year AC yield [kWh/yr].
    econ : pvsurvey.config.schema.Economics

    Returns
    -------
    ndarray or Series
        yield × (f × tariff + (1 − f) × feed-in) − O&M [CNY/kW/yr] × capacity
        [CNY/yr], f the self-consumed share. Negative when O&M exceeds the
        value of the energy.
    """
    out = _savings(_array(capacity_kwp, "capacity_kwp"), _array(annual_yield_kwh, "annual_yield_kwh"), econ)
    return _like(out, capacity_kwp, annual_yield_kwh)


def simple_payback_yr(capacity_kwp, annual_yield_kwh, econ: Economics = Economics()):
    """Simple (undiscounted) payback time [yr].

    Parameters
    ----------
    capacity_kwp : array-like or Series
        DC capacity [kWp].
    annual_yield_kwh : array-like or Series
        First-year AC yield [kWh/yr].
    econ : pvsurvey.config.schema.Economics

    Returns
    -------
    ndarray or Series
        capex [CNY] / first-year net savings [CNY/yr] [yr]; ``inf`` where the
        savings are ≤ 0 (the project never pays back).

    References
    ----------
    Short, Packey and Holt (1995), NREL/TP-462-5173, §4.2.
    """
    p = _array(capacity_kwp, "capacity_kwp")
    e = _array(annual_yield_kwh, "annual_yield_kwh")
    cost, savings = np.broadcast_arrays(_capex(p, econ), _savings(p, e, econ))
    out = np.full(savings.shape, np.inf)
    np.divide(cost, savings, out=out, where=savings > 0)
    out[np.isnan(savings) | np.isnan(cost)] = np.nan
    return _like(out, capacity_kwp, annual_yield_kwh)


def lcoe_cny_per_kwh(capacity_kwp, annual_yield_kwh, econ: Economics = Economics()):
    """Levelised cost of electricity [CNY/kWh].

    LCOE = (capex + Σₜ O&Mₜ (1 + r)⁻ᵗ) / Σₜ Eₜ (1 + r)⁻ᵗ, t = 1 … lifetime,
    Eₜ = E₁ (1 − d)ᵗ⁻¹, with capex at t = 0 and O&M and energy at the end of
    each year (end-of-year discounting, the convention of [1]_ and [2]_).

    Parameters
    ----------
    capacity_kwp : array-like or Series
        DC capacity [kWp].
    annual_yield_kwh : array-like or Series
        First-year AC yield E₁ [kWh/yr].
    econ : pvsurvey.config.schema.Economics
        capex, O&M, ``discount_rate`` r, ``lifetime_yr`` and ``degradation_per_yr`` d.

    Returns
    -------
    ndarray or Series
        [CNY/kWh]; ``inf`` where the yield is 0 and the cost is not, NaN
        where both are 0.

    References
    ----------
    .. [1] OECD/NEA and IEA (2020). Projected Costs of Generating Electricity,
       2020 Edition, Ch. 2.
    .. [2] Short, Packey and Holt (1995). NREL/TP-462-5173, §4.4.
    """
    p = _array(capacity_kwp, "capacity_kwp")
    e = _array(annual_yield_kwh, "annual_yield_kwh")
    cost = _capex(p, econ) + p * econ.om_cny_per_kw_yr * annuity_factor(econ)
    energy = e * discounted_energy_factor(econ)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = cost / energy
    return _like(out, capacity_kwp, annual_yield_kwh)


def npv_cny(capacity_kwp, annual_yield_kwh, econ: Economics = Economics()):
    """Net present value of the project over its lifetime [CNY].

    NPV = −capex + Σₜ (Eₜ × v − O&M) (1 + r)⁻ᵗ, t = 1 … lifetime, v the value
    of a kWh (:func:`energy_value_cny_per_kwh`), Eₜ = E₁ (1 − d)ᵗ⁻¹,
    end-of-year discounting.

    Parameters
    ----------
    capacity_kwp : array-like or Series
        DC capacity [kWp].
    annual_yield_kwh : array-like or Series
        First-year AC yield E₁ [kWh/yr].
    econ : pvsurvey.config.schema.Economics

    Returns
    -------
    ndarray or Series
        [CNY]; > 0 where the project earns more than the discount rate.

    References
    ----------
    Short, Packey and Holt (1995). NREL/TP-462-5173, §4.1.
    """
    p = _array(capacity_kwp, "capacity_kwp")
    e = _array(annual_yield_kwh, "annual_yield_kwh")
    out = (-_capex(p, econ)
           + e * energy_value_cny_per_kwh(econ) * discounted_energy_factor(econ)
           - p * econ.om_cny_per_kw_yr * annuity_factor(econ))
    return _like(out, capacity_kwp, annual_yield_kwh)


def project_economics(capacity_kwp, annual_yield_kwh, econ: Economics = Economics(),
                      energy_value_cny=None, delivered_kwh=None) -> pd.DataFrame:
    """Every economic figure of N projects as one table.

    Parameters
    ----------
    capacity_kwp : array-like or Series, shape (N,)
        DC capacity [kWp].
    annual_yield_kwh : array-like or Series, shape (N,)
        First-year AC yield [kWh/yr].
    econ : pvsurvey.config.schema.Economics
    energy_value_cny : array-like, shape (N,), optional
        First-year value of each project's energy [CNY/yr] from the hourly valuation
        (:func:`pvsurvey.model.tou.value_projects`); default: the flat value
        ``yield × energy_value_cny_per_kwh(econ)``.
    delivered_kwh : array-like, shape (N,), optional
        First-year energy used or exported, curtailment excluded [kWh/yr]; default:
        the yield. It is the energy of the LCOE, CO₂ and coal figures.

    Returns
    -------
    DataFrame
        Columns :data:`ECONOMICS_COLUMNS` — ``co2_avoided_t_per_yr`` [tCO₂/yr],
        ``coal_saved_tce_per_yr`` [tce/yr], ``capex_cny`` [CNY],
        ``annual_savings_cny`` [CNY/yr], ``simple_payback_yr`` [yr],
        ``lcoe_cny_per_kwh`` [CNY/kWh], ``npv_cny`` [CNY] — on the index of the
        first Series input (else a RangeIndex).

    Notes
    -----
    With the hourly valuation, every later year's value is the first year's times
    (1 − d)ᵗ⁻¹: degradation lowers each hour's output alike (the self-consumed share
    rises slightly as the output shrinks; neglected, conservative).

    Examples
    --------
    >>> econ_df = project_economics(df["capacity_kwp"], df["annual_yield_kwh"], cfg.economics)
    >>> df = df.join(econ_df)
    """
    index = next((v.index for v in (capacity_kwp, annual_yield_kwh)
                  if isinstance(v, pd.Series)), None)
    p, e = np.broadcast_arrays(np.atleast_1d(_array(capacity_kwp, "capacity_kwp")),
                               np.atleast_1d(_array(annual_yield_kwh, "annual_yield_kwh")))
    if energy_value_cny is None:
        return pd.DataFrame({
            "co2_avoided_t_per_yr": co2_avoided_t_per_yr(e, econ),
            "coal_saved_tce_per_yr": coal_saved_tce_per_yr(e, econ),
            "capex_cny": capex_cny(p, econ),
            "annual_savings_cny": annual_savings_cny(p, e, econ),
            "simple_payback_yr": simple_payback_yr(p, e, econ),
            "lcoe_cny_per_kwh": lcoe_cny_per_kwh(p, e, econ),
            "npv_cny": npv_cny(p, e, econ),
        }, index=index)
    v = np.broadcast_to(np.asarray(energy_value_cny, dtype=float), p.shape)
    d = np.broadcast_to(_array(e if delivered_kwh is None else delivered_kwh, "delivered_kwh"), p.shape)
    cost = _capex(p, econ)
    savings = v - econ.om_cny_per_kw_yr * p
    payback = np.full(p.shape, np.inf)
    np.divide(cost, savings, out=payback, where=savings > 0)
    payback[np.isnan(savings) | np.isnan(cost)] = np.nan
    lcoe = lcoe_cny_per_kwh(p, d, econ)
    return pd.DataFrame({
        "co2_avoided_t_per_yr": co2_avoided_t_per_yr(d, econ),
        "coal_saved_tce_per_yr": coal_saved_tce_per_yr(d, econ),
        "capex_cny": cost,
        "annual_savings_cny": savings,
        "simple_payback_yr": payback,
        "lcoe_cny_per_kwh": lcoe,
        "npv_cny": -cost + v * discounted_energy_factor(econ) - p * econ.om_cny_per_kw_yr * annuity_factor(econ),
    }, index=index)
