"""Hourly valuation of rooftop-PV projects: self-consumption against the factory's load,
time-of-use prices, the grid connection's limit and the 2025 national rules (issue 16).

Every project's hourly AC output is its annual yield times the normalised hourly shape
of its weather cell × orientation (from the yield table, never per building); its load
is its annual consumption times the normalised hourly shape of its load type. Hour by
hour (8760 local hours of the configured calendar year, China Standard Time):

- delivered  = min(PV, connection limit)  — the inverter's output held at the limit;
- self-used  = min(delivered, load);
- exported   = delivered − self-used where the project's category may export, else 0;
- curtailed  = PV − self-used − exported.

Self-used energy saves the time-of-use price of its hour; exported energy earns the
export price (the market mechanism price after the 136号文 switch, the coal benchmark
before). Projects are grouped by (PV shape, load shape); within a group the hours are
sorted once and each project costs a binary search (exact: see :func:`hourly_energy`),
projects with a connection limit one row of a chunked hourly matrix — no loop over
buildings or projects.

References
----------
.. [1] 上海市发展和改革委员会 (2022). 关于进一步完善我市分时电价机制有关事项的通知,
   沪发改价管〔2022〕50号.
.. [2] 国家能源局 (2025). 分布式光伏发电开发建设管理办法, 国能发新能规〔2025〕7号.
.. [3] 国家发展改革委, 国家能源局 (2025). 关于深化新能源上网电价市场化改革 促进新能源
   高质量发展的通知, 发改价格〔2025〕136号.
.. [4] Luthander, R. et al. (2015). Photovoltaic self-consumption in buildings: A review.
   Applied Energy 142, 80–94 (hourly self-consumption as min(PV, load)).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools

import numpy as np
import pandas as pd

from ..config.schema import DAY_TYPES, Economics, Load, Policy, Tariff

HOURS = 8760
# China Standard Time, the clock of the tariff schedule and the load shapes [h].
UTC_OFFSET_H = 8
# Projects with a connection limit valued per matrix chunk: 2 × chunk × 8760 float64 ≈ 70 MB at 512.
CHUNK = 512
CATEGORIES = ("general", "large")
# Orientation grid of the hourly shapes used by the valuation. Measured on a Shanghai
# clear-sky cell (flush 10° planes facing 90°…270° in 15° steps; one-shift, two-shift and
# warehouse loads at load/yield 0.5 and 1): 15° of azimuth moves the self-consumed share by
# at most 0.5 percentage points and the value of a self-used kWh by at most 0.004 CNY/kWh,
# so a 30° grid (at most 15° off) errs by no more; tilt matters less than azimuth. Coarser
# keys mean fewer pvlib runs and fewer groups.
SHAPE_TILT_STEP_DEG = 10.0
SHAPE_AZIMUTH_STEP_DEG = 30.0


@functools.lru_cache(maxsize=8)
def day_types(year: int) -> np.ndarray:
    """Day type of each of the first 365 days of ``year``: 0 workday, 1 weekend, 2 holiday.

    Working days include the weekend days moved into work by the State Council's notice
    (调休); holidays are the statutory days off and the days joined to them
    (chinese-calendar).
    """
    import chinese_calendar

    out = np.zeros(365, dtype=np.int8)
    start = dt.date(year, 1, 1)
    for i in range(365):  # 365 days, once per year: not per building
        day = start + dt.timedelta(days=i)
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        if on_holiday:
            out[i] = 2 if name is not None else 1
    return out


def _hour_keys(year: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Month (1..12), day type (0..2) and hour of day of each local hour of the year."""
    days = pd.date_range(f"{year}-01-01", periods=365, freq="D")
    month = np.repeat(days.month.to_numpy(), 24)
    day_type = np.repeat(day_types(year), 24)
    hour = np.tile(np.arange(24), 365)
    return month, day_type, hour


def hourly_prices(tariff: Tariff, year: int) -> np.ndarray:
    """Price of grid power in each local hour of the year [CNY/kWh], shape (8760,)."""
    table = np.full((13, len(DAY_TYPES), 24), np.nan)
    for rule in tariff.schedule:
        price = tariff.prices_cny_per_kwh[rule.period]
        for start, end in rule.hours:
            for d in rule.day_types:
                table[list(rule.months), DAY_TYPES.index(d), start:end] = price
    month, day_type, hour = _hour_keys(year)
    return table[month, day_type, hour]


def load_profile(load: Load, shape: str, year: int) -> np.ndarray:
    """Hourly share of the annual consumption of a load shape, shape (8760,), sums to 1."""
    s = load.shapes[shape]
    table = np.array([s.workday, s.weekend, s.holiday], dtype=float)
    _, day_type, hour = _hour_keys(year)
    values = table[day_type, hour]
    return values / values.sum()


def local_hours(times: pd.DatetimeIndex) -> np.ndarray:
    """Position of each timestamp in the local (UTC+8) hours of a 365-day year; a
    29 February and hours past the year's end fold back onto the year's start."""
    utc = times.tz_convert("UTC") if times.tz is not None else times
    local = utc + pd.Timedelta(hours=UTC_OFFSET_H)
    pos = (local.dayofyear.to_numpy() - 1) * 24 + local.hour.to_numpy()
    leap = local.is_leap_year & (local.month > 2)
    pos = pos - np.where(leap, 24, 0)
    return np.mod(pos, HOURS)


_LOCAL_HOURS: dict[tuple, np.ndarray] = {}


def _local_hours_cached(times: pd.DatetimeIndex) -> np.ndarray:
    key = (len(times), times[0], times[-1], str(times.tz))
    if key not in _LOCAL_HOURS or len(_LOCAL_HOURS) > 16:
        if len(_LOCAL_HOURS) > 16:
            _LOCAL_HOURS.clear()
        _LOCAL_HOURS[key] = local_hours(times)
    return _LOCAL_HOURS[key]


def to_local_shape(ac: np.ndarray, times: pd.DatetimeIndex) -> np.ndarray:
    """Normalised hourly shape (sums to 1) on the local hours of the year from an hourly
    AC series on ``times`` (a typical year, UTC), or of each row of a (K, hours) array.
    All zero stays all zero."""
    ac = np.nan_to_num(np.asarray(ac, dtype=float))
    rows = np.atleast_2d(ac)
    pos = _local_hours_cached(times)  # once for all rows (and for every cell on one index)
    out = np.stack([np.bincount(pos, weights=row, minlength=HOURS) for row in rows]) if len(rows) else \
        np.zeros((0, HOURS))
    total = out.sum(axis=1, keepdims=True)
    out = np.divide(out, total, out=np.zeros_like(out), where=total > 0)
    return out[0] if ac.ndim == 1 else out


def connection_voltage_kv(capacity_kw, voltage_kv, policy: Policy) -> np.ndarray:
    """Connection voltage [kV]: the data's where given, else the usual one for the size."""
    cap = np.asarray(capacity_kw, dtype=float)
    given = np.asarray(voltage_kv, dtype=float)
    steps = np.asarray(policy.voltage_steps_kv)[np.searchsorted(policy.voltage_steps_kw, cap, side="left")]
    return np.where(np.isfinite(given) & (given > 0), given, steps)


def _general(capacity_kw, voltage_kv, policy: Policy) -> np.ndarray:
    cap = np.asarray(capacity_kw, dtype=float)
    volt = np.asarray(voltage_kv, dtype=float)
    return (cap <= policy.general_max_capacity_kw) & (volt <= policy.general_max_voltage_kv)


def project_category(capacity_kw, voltage_kv, policy: Policy) -> np.ndarray:
    """Category under 国能发新能规〔2025〕7号: 'general' C&I up to the size and voltage
    limits (inclusive), 'large' above either."""
    return np.array(CATEGORIES, dtype=object)[(~_general(capacity_kw, voltage_kv, policy)).astype(np.int64)]


def export_price_cny_per_kwh(econ: Economics) -> float:
    """Export price: the mechanism price for projects connected on or after the
    136号文 switch date, the coal benchmark (``feed_in_cny_per_kwh``) before."""
    p = econ.policy
    return p.mechanism_price_cny_per_kwh if p.commissioning_date >= p.switch_date else econ.feed_in_cny_per_kwh


def hourly_energy(annual_yield_kwh, pv_shape: np.ndarray, annual_load_kwh, load_shape: np.ndarray,
                  limit_kw, may_export, prices: np.ndarray, chunk: int = CHUNK) -> dict[str, np.ndarray]:
    """Self-used, exported and curtailed energy and the self-used energy's value of N
    projects sharing one PV shape and one load shape.

    Parameters
    ----------
    annual_yield_kwh : array-like, shape (N,)
        PV AC yield before any limit [kWh/yr].
    pv_shape, load_shape : numpy.ndarray, shape (8760,)
        Hourly shares of the annual yield and load (each sums to 1).
    annual_load_kwh : array-like, shape (N,)
        Annual consumption on site [kWh/yr].
    limit_kw : array-like, shape (N,)
        Connection or transformer capacity [kW] (an hour's kWh); NaN or inf: none.
    may_export : array-like of bool, shape (N,)
        Whether the surplus may be exported (else it is curtailed).
    prices : numpy.ndarray, shape (8760,)
        Grid price of each hour [CNY/kWh].

    Returns
    -------
    dict of numpy.ndarray, shape (N,)
        ``self_used_kwh``, ``exported_kwh``, ``curtailed_kwh`` [kWh/yr] and
        ``self_used_value_cny`` [CNY/yr].

    Notes
    -----
    Without a limit, a project's self-used energy is E Σₕ min(sₕ, r lₕ) with r = L / E
    (E yield, L load, s and l the shapes): a piecewise-linear function of r alone, whose
    breakpoints are the hours' ratios tₕ = sₕ / lₕ. With the hours sorted by tₕ once per
    group, Σₕ min(sₕ, r lₕ) = Σ_{tₕ ≤ r} sₕ + r Σ_{tₕ > r} lₕ is two prefix sums read at
    the project's r (a binary search) — exact, and N × log 8760 instead of N × 8760. The
    value is the same sum with sₕ and lₕ weighted by the price pₕ. Projects with a limit
    take the full (chunked) hourly matrices: min(E sₕ, C, L lₕ).
    """
    e = np.asarray(annual_yield_kwh, dtype=float)
    load = np.asarray(annual_load_kwh, dtype=float)
    limit = np.asarray(limit_kw, dtype=float)
    limit = np.where(np.isfinite(limit), limit, np.inf)
    export = np.asarray(may_export, dtype=bool)
    s = np.asarray(pv_shape, dtype=float)
    l = np.asarray(load_shape, dtype=float)
    n = len(e)
    self_used, delivered, value = np.zeros(n), np.zeros(n), np.zeros(n)

    free = np.isinf(limit)
    if free.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(l > 0, s / l, np.inf)
        order = np.argsort(t, kind="stable")
        t_sorted = t[order]
        cum = {k: np.concatenate([[0.0], np.cumsum(v[order])]) for k, v in
               {"s": s, "l": l, "ps": prices * s, "pl": prices * l}.items()}
        ef, lf = e[free], load[free]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(ef > 0, lf / ef, 0.0)
        k = np.searchsorted(t_sorted, r, side="right")  # hours whose PV is all used
        self_used[free] = ef * (cum["s"][k] + r * (cum["l"][-1] - cum["l"][k]))
        value[free] = ef * (cum["ps"][k] + r * (cum["pl"][-1] - cum["pl"][k]))
        delivered[free] = ef  # no limit: every kWh reaches the meter
    rows = np.flatnonzero(~free)
    for start in range(0, len(rows), chunk):
        sel = rows[start:start + chunk]
        pv_kw = np.minimum(e[sel, None] * s[None, :], limit[sel, None])
        used = np.minimum(pv_kw, load[sel, None] * l[None, :])
        self_used[sel] = used.sum(axis=1)
        delivered[sel] = pv_kw.sum(axis=1)
        value[sel] = used @ prices
    # rounding can leave a few 1e-10 kWh below zero; an unlimited project that may export
    # curtails exactly nothing (its LCOE then has the flat valuation's bits)
    exported = np.where(export, np.maximum(delivered - self_used, 0.0), 0.0)
    curtailed = np.maximum(np.where(export, e - delivered, e - self_used), 0.0)
    return {"self_used_kwh": self_used, "exported_kwh": exported, "curtailed_kwh": curtailed,
            "self_used_value_cny": value}


def value_projects(frame: pd.DataFrame, pv_shapes: dict, econ: Economics) -> pd.DataFrame:
    """Hourly valuation of N projects.

    Parameters
    ----------
    frame : DataFrame, N rows
        ``annual_yield_kwh`` [kWh/yr], ``capacity_kwp`` [kWp], ``pv_shape_key`` (a key
        of ``pv_shapes``) or ``pv_shape_code`` (a position in ``pv_shapes``, then a
        sequence), ``load_shape`` (a key of ``econ.load.shapes``) or ``load_shape_code``
        (its position there),
        ``annual_load_kwh`` [kWh/yr], ``grid_capacity_kw`` [kW] (NaN: no limit) and
        ``connection_voltage_kv`` [kV] (NaN: the usual one for the size).
    pv_shapes : dict or sequence
        Hourly shape (8760 local hours, sums to 1) of each PV shape key (or code).
    econ : pvsurvey.config.schema.Economics

    Returns
    -------
    DataFrame on ``frame``'s index
        ``project_category``, ``connection_voltage_kv``, ``self_used_kwh``,
        ``exported_kwh``, ``curtailed_kwh`` [kWh/yr], ``self_consumed_share`` (self-used
        / yield), ``value_self_used_cny_per_kwh``, ``value_exported_cny_per_kwh``,
        ``value_cny_per_kwh`` (value of the delivered kWh) [CNY/kWh] and
        ``energy_value_cny`` (first-year value of the energy) [CNY/yr].
    """
    year = econ.calendar_year
    prices = hourly_prices(econ.tariff, year)
    policy = econ.policy
    # the category counts the installed (DC) capacity, held at the connection's limit
    size_kw = np.fmin(frame["capacity_kwp"].to_numpy(dtype=float), frame["grid_capacity_kw"].to_numpy(dtype=float))
    volt = connection_voltage_kv(size_kw, frame["connection_voltage_kv"].to_numpy(dtype=float), policy)
    general = _general(size_kw, volt, policy)
    may_export = general | policy.large_export_allowed
    n = len(frame)
    res = {k: np.zeros(n) for k in ("self_used_kwh", "exported_kwh", "curtailed_kwh", "self_used_value_cny")}
    e_all = frame["annual_yield_kwh"].to_numpy(dtype=float)
    load_all = frame["annual_load_kwh"].to_numpy(dtype=float)
    limit_all = frame["grid_capacity_kw"].to_numpy(dtype=float)
    # integer codes: text columns (Arrow strings in pandas 3) cost more than the valuation
    if "pv_shape_code" in frame:
        pv_code, pv_list = frame["pv_shape_code"].to_numpy(dtype=np.int64), pv_shapes
    else:
        pv_code, pv_keys = pd.factorize(frame["pv_shape_key"].to_numpy(dtype=object))
        pv_list = [pv_shapes[k] for k in pv_keys]
    if "load_shape_code" in frame:
        load_code, load_keys = frame["load_shape_code"].to_numpy(dtype=np.int64), list(econ.load.shapes)
    else:
        load_code, load_keys = pd.factorize(frame["load_shape"].to_numpy(dtype=object))
    group = pv_code.astype(np.int64) * max(len(load_keys), 1) + load_code
    # each group one contiguous slice; a few thousand groups sort as 16-bit keys (radix sort, O(N))
    order = np.argsort(group.astype(np.uint16) if group.max(initial=0) < 65536 else group, kind="stable")
    bounds = np.r_[np.flatnonzero(np.r_[True, np.diff(group[order]) != 0]), n] if n else np.zeros(1, dtype=int)
    e_s, load_s, limit_s, export_s = e_all[order], load_all[order], limit_all[order], may_export[order]
    loads = {i: load_profile(econ.load, k, year) for i, k in enumerate(load_keys)}
    sorted_res = {k: np.empty(n) for k in res}
    for a, b in itertools.pairwise(bounds):  # one pass per (PV shape, load shape) group
        part = hourly_energy(e_s[a:b], pv_list[pv_code[order[a]]], load_s[a:b], loads[load_code[order[a]]],
                             limit_s[a:b], export_s[a:b], prices)
        for k, v in part.items():
            sorted_res[k][a:b] = v
    for k, values in sorted_res.items():
        res[k][order] = values
    pe = export_price_cny_per_kwh(econ)
    e = frame["annual_yield_kwh"].to_numpy(dtype=float)
    delivered = res["self_used_kwh"] + res["exported_kwh"]
    value = res["self_used_value_cny"] + res["exported_kwh"] * pe
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame({
            "project_category": pd.Categorical.from_codes((~general).astype(np.int8), CATEGORIES),
            "connection_voltage_kv": volt,
            "self_used_kwh": res["self_used_kwh"],
            "exported_kwh": res["exported_kwh"],
            "curtailed_kwh": res["curtailed_kwh"],
            "self_consumed_share": np.where(e > 0, res["self_used_kwh"] / e, np.nan),
            "value_self_used_cny_per_kwh": np.where(res["self_used_kwh"] > 0,
                                                    res["self_used_value_cny"] / res["self_used_kwh"], np.nan),
            "value_exported_cny_per_kwh": np.where(may_export, pe, np.nan),
            "value_cny_per_kwh": np.where(delivered > 0, value / delivered, np.nan),
            "energy_value_cny": value,
        }, index=frame.index)
    return out


def shape_keys(weather_cell, surface_tilt_deg, surface_azimuth_deg, mount, codes: bool = False):
    """Key of the hourly shape of each roof: 'cell|tilt|azimuth|mount' on the shape grid
    (the text is built once per distinct combination); with ``codes``, (each roof's
    position in the distinct keys, the distinct keys)."""
    tilt = np.round(np.asarray(surface_tilt_deg, dtype=float) / SHAPE_TILT_STEP_DEG) * SHAPE_TILT_STEP_DEG
    az = np.mod(np.round(np.asarray(surface_azimuth_deg, dtype=float) / SHAPE_AZIMUTH_STEP_DEG)
                * SHAPE_AZIMUTH_STEP_DEG, 360.0)
    tilt = np.where(np.isfinite(tilt), tilt, 0.0)
    az = np.where(np.isfinite(az), az, 180.0)
    def factorize(values):  # a Series of Arrow strings factorises without leaving Arrow
        return pd.factorize(values if isinstance(values, pd.Series) else np.asarray(values, dtype=object))

    cell_code, cells = factorize(weather_cell)
    mount_code, mounts = factorize(mount)
    cells, mounts = np.asarray(cells, dtype=object), np.asarray(mounts, dtype=object)
    # tilt (0..90 in 5° steps) and azimuth (0..350 in 10° steps) are small integers once divided
    t_code = np.round(tilt / SHAPE_TILT_STEP_DEG).astype(np.int64)
    a_code = np.round(az / SHAPE_AZIMUTH_STEP_DEG).astype(np.int64)
    combined = ((cell_code.astype(np.int64) * 64 + t_code) * 64 + a_code) * max(len(mounts), 1) + mount_code
    uniq, inverse = np.unique(combined, return_inverse=True)
    rest, m = np.divmod(uniq, max(len(mounts), 1))
    rest, a = np.divmod(rest, 64)
    c, t = np.divmod(rest, 64)
    text = np.array([f"{cells[ci]}|{ti * SHAPE_TILT_STEP_DEG:g}|{ai * SHAPE_AZIMUTH_STEP_DEG:g}|{mounts[mi]}"
                     for ci, ti, ai, mi in zip(c, t, a, m)], dtype=object)  # distinct keys only
    return (inverse.ravel(), text) if codes else text[inverse.ravel()]
