"""Economics of one project against figures computed by hand in the test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pvsurvey import columns
from pvsurvey.model import economics
from pvsurvey.errors import PVSurveyError
from pvsurvey.config.schema import Economics

# Explicit parameters (the defaults may be re-sourced; the hand computation must not move).
ECON = Economics(capex_cny_per_w=3.0, self_consumed_frac=0.7, tariff_cny_per_kwh=0.75,
                 feed_in_cny_per_kwh=0.4155, om_cny_per_kw_yr=40.0, discount_rate=0.06,
                 lifetime_yr=25, degradation_per_yr=0.004, emission_factor_t_per_mwh=0.42,
                 coal_kgce_per_kwh=0.302)
# One project: 500 kWp on a roof yielding 550,000 kWh in its first year (1,100 kWh/kWp).
KWP = 500.0
KWH = 550_000.0


def _lcoe_npv_by_loop(kwp, kwh, econ):
    """LCOE and NPV year by year: capex at t=0, O&M and energy at the end of year t."""
    capex = kwp * 1000 * econ.capex_cny_per_w
    om = kwp * econ.om_cny_per_kw_yr
    value = econ.self_consumed_frac * econ.tariff_cny_per_kwh \
        + (1 - econ.self_consumed_frac) * econ.feed_in_cny_per_kwh
    cost_pv, energy_pv, npv = capex, 0.0, -capex
    for t in range(1, econ.lifetime_yr + 1):
        energy_t = kwh * (1 - econ.degradation_per_yr) ** (t - 1)
        discount = (1 + econ.discount_rate) ** t
        cost_pv += om / discount
        energy_pv += energy_t / discount
        npv += (energy_t * value - om) / discount
    return cost_pv / energy_pv, npv


def test_one_project_equals_hand_computation():
    # CO₂: 550,000 kWh × 0.42 tCO₂/MWh / 1000 = 231 t
    assert economics.co2_avoided_t_per_yr(KWH, ECON) == pytest.approx(231.0, rel=1e-12)
    # standard coal: 550,000 kWh × 0.302 kgce/kWh / 1000 = 166.1 tce
    assert economics.coal_saved_tce_per_yr(KWH, ECON) == pytest.approx(166.1, rel=1e-12)
    # capex: 500 kWp × 1000 W/kW × 3.0 CNY/W = 1,500,000 CNY
    assert economics.capex_cny(KWP, ECON) == pytest.approx(1_500_000.0, rel=1e-12)
    # a kWh is worth 0.7 × 0.75 + 0.3 × 0.4155 = 0.64965 CNY;
    # savings: 550,000 × 0.64965 − 40 × 500 = 357,307.5 − 20,000 = 337,307.5 CNY/yr
    assert economics.energy_value_cny_per_kwh(ECON) == pytest.approx(0.64965, rel=1e-12)
    assert economics.annual_savings_cny(KWP, KWH, ECON) == pytest.approx(337_307.5, rel=1e-12)
    # payback: 1,500,000 / 337,307.5 = 4.44698 yr
    assert economics.simple_payback_yr(KWP, KWH, ECON) == pytest.approx(1_500_000 / 337_307.5, rel=1e-12)
    assert economics.simple_payback_yr(KWP, KWH, ECON) == pytest.approx(4.44698, abs=1e-5)

    lcoe, npv = _lcoe_npv_by_loop(KWP, KWH, ECON)
    assert economics.lcoe_cny_per_kwh(KWP, KWH, ECON) == pytest.approx(lcoe, rel=1e-12)
    assert economics.npv_cny(KWP, KWH, ECON) == pytest.approx(npv, rel=1e-12)
    # order of magnitude by hand: annuity factor at 6 %, 25 yr = 12.7834; the
    # degraded-energy factor is a little lower (12.2 …), so the LCOE is
    # (1.5e6 + 20,000 × 12.7834) / (550,000 × 12.2…) ≈ 0.26 CNY/kWh
    assert economics.annuity_factor(ECON) == pytest.approx((1 - 1.06 ** -25) / 0.06, rel=1e-12)
    assert 0.25 < lcoe < 0.27
    assert npv > 0


def test_project_economics_table_and_registry():
    caps = pd.Series([KWP, 100.0, 0.0, 50.0], index=["a", "b", "c", "d"])
    yields = pd.Series([KWH, 110_000.0, 0.0, 0.0], index=caps.index)
    table = economics.project_economics(caps, yields, ECON)
    assert list(table.columns) == economics.ECONOMICS_COLUMNS
    assert list(table.index) == list(caps.index)
    lcoe, npv = _lcoe_npv_by_loop(KWP, KWH, ECON)
    row = table.loc["a"]
    assert row["co2_avoided_t_per_yr"] == pytest.approx(231.0)
    assert row["coal_saved_tce_per_yr"] == pytest.approx(166.1)
    assert row["capex_cny"] == pytest.approx(1_500_000.0)
    assert row["annual_savings_cny"] == pytest.approx(337_307.5)
    assert row["simple_payback_yr"] == pytest.approx(1_500_000 / 337_307.5)
    assert row["lcoe_cny_per_kwh"] == pytest.approx(lcoe)
    assert row["npv_cny"] == pytest.approx(npv)
    # a second row of another size: the vectorised figures equal its own loop
    lcoe_b, npv_b = _lcoe_npv_by_loop(100.0, 110_000.0, ECON)
    assert table.loc["b", "lcoe_cny_per_kwh"] == pytest.approx(lcoe_b)
    assert table.loc["b", "npv_cny"] == pytest.approx(npv_b)
    # no energy: never pays back; no cost and no energy: no LCOE
    assert math.isinf(table.loc["d", "simple_payback_yr"])
    assert math.isinf(table.loc["d", "lcoe_cny_per_kwh"])
    assert math.isnan(table.loc["c", "lcoe_cny_per_kwh"])
    # every column is registered with a unit and both labels
    for name in economics.ECONOMICS_COLUMNS:
        col = columns.COLUMNS[name]
        assert col.unit and col.label_zh and col.label_en
    assert columns.label("coal_saved_tce_per_yr", "zh", with_unit=False) == "节约标准煤"


def test_vectorised_shapes_and_errors():
    arr = economics.lcoe_cny_per_kwh(np.array([KWP, 2 * KWP]), np.array([KWH, 2 * KWH]), ECON)
    assert isinstance(arr, np.ndarray) and arr[0] == pytest.approx(arr[1])
    assert isinstance(economics.simple_payback_yr(KWP, KWH, ECON), float)
    # O&M above the energy's value: negative savings, infinite payback
    assert economics.annual_savings_cny(100.0, 1000.0, ECON) < 0
    assert math.isinf(economics.simple_payback_yr(100.0, 1000.0, ECON))
    assert math.isnan(economics.simple_payback_yr(np.nan, KWH, ECON))
    # no discounting, no degradation: LCOE = (capex + N × O&M) / (N × E)
    flat = ECON.model_copy(update={"discount_rate": 0.0, "degradation_per_yr": 0.0})
    assert economics.lcoe_cny_per_kwh(KWP, KWH, flat) == pytest.approx(
        (1_500_000 + 25 * 20_000) / (25 * KWH))
    with pytest.raises(PVSurveyError, match="capacity_kwp") as err:
        economics.capex_cny([-1.0], ECON)
    assert isinstance(err.value, ValueError)
