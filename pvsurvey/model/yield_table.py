"""Yield model: specific yield [kWh/kWp/yr] with pvlib, once per distinct
(weather cell, irradiance level, tilt, azimuth, mount) — never per building.

The chain follows PVWatts v5 (Dobos 2014) as pvlib implements it: transposition
(Perez 1990 or Hay–Davies), the physical incidence-angle modifier on beam light,
the SAPM cell-temperature model, PVWatts DC with a temperature coefficient, the
PVWatts loss breakdown, and the PVWatts inverter with a DC/AC ratio.

References
----------
.. [1] Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
.. [2] Perez, R. et al. (1990). Modeling daylight availability and irradiance
   components from direct and global irradiance. Solar Energy 44(5), 271–289.
.. [3] King, D. L. et al. (2004). Sandia Photovoltaic Array Performance Model.
   SAND2004-3535 (cell temperature, Eq. 11–12).
.. [4] Holmgren, W. F., Hansen, C. W. and Mikofski, M. A. (2018). pvlib python.
   Journal of Open Source Software 3(29), 884.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pvlib

from .climatology import monthly_climate
from .solar_position import solar_positions
from .tou import to_local_shape
from .weather_year import (clearsky_year, climate_year, hourly_index, scale_to_annual_ghi,
                           split_by_daily_clearness)
from ..config.schema import Climate, System

# SAPM cell-temperature coefficients by mounting (King et al. 2004, Table 1):
# tilted rows on a flat roof are open racks; flush modules on a pitched roof are
# close-mounted with little air behind them.
TEMPERATURE_PARAMS = {
    "rack": pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"],
    "flush": pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["close_mount_glass_glass"],
}
# Orientation grid of the yield table: 1° of tilt and 5° of azimuth change the
# yield by well under 0.5 %.
TILT_STEP_DEG = 1.0
AZIMUTH_STEP_DEG = 5.0
# Irradiance levels of the table grow in 2 % steps; a building's yield is its
# level's yield × (its GHI / the level's GHI), so the linear scaling spans ±1 %.
GHI_LEVEL_STEP = 1.02
_CHUNK = 64


def system_loss_frac(system: System) -> float:
    """Combined PVWatts system losses [0..1] from the loss breakdown [%]."""
    return float(pvlib.pvsystem.pvwatts_losses(
        soiling=system.soiling_pct, shading=system.shading_pct, snow=system.snow_pct,
        mismatch=system.mismatch_pct, wiring=system.wiring_pct,
        connections=system.connections_pct, lid=system.lid_pct,
        nameplate_rating=system.nameplate_rating_pct, age=system.age_pct,
        availability=system.availability_pct)) / 100.0


def specific_yield_kwh_per_kwp(weather: pd.DataFrame, latitude_deg: float, longitude_deg: float,
                               surface_tilt_deg, surface_azimuth_deg, mount, system: System,
                               solar_position: pd.DataFrame | None = None) -> np.ndarray:
    """Annual AC energy per kWp of DC for each of K array orientations.

    Parameters
    ----------
    weather : DataFrame
        Hourly ``ghi``, ``dni``, ``dhi`` [W/m²], ``temp_air`` [°C] and
        ``wind_speed`` [m/s] on a tz-aware index (one typical year).
    latitude_deg, longitude_deg : float
        Location of the weather [°].
    surface_tilt_deg, surface_azimuth_deg : array-like, shape (K,)
        Array tilt from horizontal and azimuth clockwise from north [°].
    mount : array-like of str, shape (K,)
        'rack' (tilted rows) or 'flush' per orientation.
    system : pvsurvey.config.schema.System
    solar_position : DataFrame, optional
        pvlib solar position (``apparent_zenith``, ``azimuth``) on the same
        index, when the caller already has it.

    Returns
    -------
    numpy.ndarray, shape (K,)
        Specific yield [kWh/kWp/yr], scaled to a full year if the weather has
        fewer or more than 8760 hours.
    """
    hours_per_step = 8760.0 / len(weather.index)
    out = np.empty(len(np.atleast_1d(surface_tilt_deg)))
    for sl, hourly in _hourly_ac_chunks(weather, latitude_deg, longitude_deg, surface_tilt_deg,
                                        surface_azimuth_deg, mount, system, solar_position):
        out[sl] = np.nansum(hourly, axis=1) * hours_per_step
    return out


def hourly_ac_kw_per_kwp(weather: pd.DataFrame, latitude_deg: float, longitude_deg: float,
                         surface_tilt_deg, surface_azimuth_deg, mount, system: System,
                         solar_position: pd.DataFrame | None = None, dni_extra=None) -> np.ndarray:
    """Hourly AC power per kWp of DC [kW/kWp] of K orientations, shape (K, hours):
    the series whose sum is :func:`specific_yield_kwh_per_kwp` (same parameters;
    ``dni_extra`` [W/m²], one per hour, when the caller already has it)."""
    out = np.empty((len(np.atleast_1d(surface_tilt_deg)), len(weather.index)))
    for sl, hourly in _hourly_ac_chunks(weather, latitude_deg, longitude_deg, surface_tilt_deg,
                                        surface_azimuth_deg, mount, system, solar_position, dni_extra):
        out[sl] = hourly
    return out


def _hourly_ac_chunks(weather, latitude_deg, longitude_deg, surface_tilt_deg, surface_azimuth_deg, mount,
                      system: System, solar_position=None, dni_extra=None):
    """(slice, hourly AC [kW/kWp], shape (k, hours)) for chunks of the orientations."""
    tilt = np.atleast_1d(np.asarray(surface_tilt_deg, dtype=float))
    azimuth = np.atleast_1d(np.asarray(surface_azimuth_deg, dtype=float))
    mount = np.atleast_1d(np.asarray(mount))
    times = weather.index
    solpos = (solar_position if solar_position is not None
              else pvlib.solarposition.get_solarposition(times, latitude_deg, longitude_deg))
    zenith = solpos["apparent_zenith"].to_numpy()[:, None]
    sun_azimuth = solpos["azimuth"].to_numpy()[:, None]
    dni_extra = (pvlib.irradiance.get_extra_radiation(times).to_numpy() if dni_extra is None
                 else np.asarray(dni_extra, dtype=float))[:, None]
    airmass = pvlib.atmosphere.get_relative_airmass(solpos["apparent_zenith"].to_numpy())[:, None]
    ghi, dni, dhi, temp_air, wind = (weather[c].to_numpy(dtype=float)[:, None]
                                     for c in ("ghi", "dni", "dhi", "temp_air", "wind_speed"))
    loss = system_loss_frac(system)
    inverter_pdc0 = 1.0 / (system.dc_ac_ratio * system.inverter_efficiency_nominal)
    for start in range(0, len(tilt), _CHUNK):  # chunks of orientations bound the (hours × K) arrays
        sl = slice(start, start + _CHUNK)
        t, a, m = tilt[None, sl], azimuth[None, sl], mount[sl]
        poa = pvlib.irradiance.get_total_irradiance(
            t, a, zenith, sun_azimuth, dni, ghi, dhi, dni_extra=dni_extra, airmass=airmass,
            albedo=system.albedo, model=system.transposition_model)
        aoi = pvlib.irradiance.aoi(t, a, zenith, sun_azimuth)
        iam = pvlib.iam.physical(aoi)
        poa_global = np.nan_to_num(np.asarray(poa["poa_global"], dtype=float))
        effective = np.nan_to_num(np.asarray(poa["poa_direct"], dtype=float) * iam
                                  + np.asarray(poa["poa_diffuse"], dtype=float))
        coeff = {k: np.array([TEMPERATURE_PARAMS[x][k] for x in m])[None, :] for k in ("a", "b", "deltaT")}
        temp_cell = pvlib.temperature.sapm_cell(poa_global, temp_air, wind, coeff["a"], coeff["b"], coeff["deltaT"])
        dc = pvlib.pvsystem.pvwatts_dc(effective, temp_cell, 1.0, system.temperature_coefficient_per_c)
        dc = np.asarray(dc) * (1.0 - loss)
        ac = pvlib.inverter.pvwatts(dc, inverter_pdc0, system.inverter_efficiency_nominal)
        # each orientation's hours summed as one contiguous row: the same bits whatever else is in the batch
        yield sl, np.ascontiguousarray(np.clip(np.asarray(ac, dtype=float), 0.0, None).T)


def distinct_rows(*columns) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of equal-length ``columns`` (any dtypes; NaN equals NaN):
    the position of each one's first row, and each row's distinct row. One hash
    pass per column (``pandas.factorize``), where ``numpy.unique(axis=0)`` sorts
    the rows as records (a tenth of a second per 50,000 rows of six columns)."""
    code = np.zeros(len(columns[0]) if columns else 0, dtype=np.int64)
    for column in columns:
        values, labels = pd.factorize(np.asarray(column), use_na_sentinel=False)
        code, _ = pd.factorize(code * len(labels) + values)  # renumbered: stays below the row count
    first = np.full(code.max() + 1 if len(code) else 0, len(code), dtype=np.int64)
    np.minimum.at(first, code, np.arange(len(code)))
    return first, code


def ghi_level(ghi_kwh_per_m2_yr):
    """Irradiance level [kWh/m²/yr] of the yield table nearest each GHI (2 % steps)."""
    ghi = np.asarray(ghi_kwh_per_m2_yr, dtype=float)
    k = np.round(np.log(np.clip(ghi, 1.0, None)) / np.log(GHI_LEVEL_STEP))
    return GHI_LEVEL_STEP ** k


class SpecificYieldTable:
    """Specific yield by (weather cell, irradiance level, tilt, azimuth, mount),
    computed on first use and kept for the life of the process.

    Without a weather file the weather cells are ``cell_deg`` squares, each with
    its own year from the bundled monthly climatology (``climate.typical_year:
    climate``; or the clear sky with ``clearsky``) scaled to the level's annual
    GHI. With a weather file there is one cell, the file's year scaled the
    same way. Entries depend only on their key, so serial and parallel runs (in
    any partitioning) give identical results.

    Parameters
    ----------
    system : pvsurvey.config.schema.System
    climate : pvsurvey.config.schema.Climate
        The typical year made without a weather file: its shape, temperature and wind.
    cell_deg : float
        Side of a weather cell [°].
    weather : DataFrame, optional
        Hourly year from a weather file (``ghi`` [W/m²], ``temp_air``,
        ``wind_speed``, optionally ``dni``/``dhi``).
    weather_location : (float, float), optional
        (latitude, longitude) [°] of the weather file.
    """

    def __init__(self, system: System, climate: Climate, cell_deg: float = 0.25,
                 weather: pd.DataFrame | None = None, weather_location: tuple[float, float] | None = None):
        self.system = system
        self.climate = climate
        self.cell_deg = cell_deg
        self.weather = weather
        self.weather_location = weather_location
        self._cache: dict[tuple, float] = {}
        self._cells: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def __getstate__(self):  # sent to dask workers: without the lock, keeping the cache
        state = self.__dict__.copy()
        del state["_lock"]
        state.pop("_years", None)  # scaled hourly years: cheap to redo, big to ship
        state.pop("_shapes", None)  # hourly PV shapes (70 kB each): redone where needed
        state.pop("_solpos", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def _daily_split(self) -> bool:
        """The climatology's years split GHI by daily clearness (see
        :func:`~pvsurvey.model.weather_year.split_by_daily_clearness`)."""
        return self.weather is None and self.climate.typical_year == "climate"

    def entries(self) -> dict:
        """The computed yields by key (to keep for the next run with the same inputs)."""
        with self._lock:
            return dict(self._cache)

    def add_entries(self, entries: dict) -> None:
        """Take yields a run with the same system, climate and weather computed."""
        with self._lock:
            self._cache.update(entries)

    def cells(self, latitude_deg, longitude_deg):
        """Weather-cell row/column of each point, and each cell's centre [°]."""
        lat = np.asarray(latitude_deg, dtype=float)
        lon = np.asarray(longitude_deg, dtype=float)
        if self.weather is not None:
            zero = np.zeros(len(lat), dtype=np.int64)
            return zero, zero
        row = np.floor((lat + 90.0) / self.cell_deg).astype(np.int64)
        col = np.floor((lon + 180.0) / self.cell_deg).astype(np.int64)
        return row, col

    def cell_id(self, row, col):
        """Printable cell ids ('file' for the weather file's single cell)."""
        if self.weather is not None:
            return np.full(len(row), "file", dtype=object)
        # the text of each distinct cell (a few dozen per partition), not of each roof
        row, col = np.asarray(row, dtype=np.int64), np.asarray(col, dtype=np.int64)
        first, inverse = distinct_rows(row, col)
        names = np.array([f"{r}_{c}" for r, c in zip(row[first], col[first])], dtype=object)
        return names[inverse]

    def _cell(self, row: int, col: int) -> tuple[pd.DataFrame, pd.DataFrame, float, float]:
        """Unscaled hourly year, solar position and centre of a cell (cached: the
        solar position is the costly part and does not depend on the level)."""
        key = (row, col)
        if key not in self._cells:
            if self.weather is not None:
                lat, lon = self.weather_location
                base = self.weather
            else:
                lat = (row + 0.5) * self.cell_deg - 90.0
                lon = (col + 0.5) * self.cell_deg - 180.0
            solpos = self.__dict__.get("_solpos", {}).pop(key, None)  # from prepare_cells
            if solpos is None:
                solpos = pvlib.solarposition.get_solarposition(
                    self.weather.index if self.weather is not None else hourly_index(), lat, lon)
            if self.weather is None and self.climate.typical_year == "clearsky":
                base = clearsky_year(lat, lon, self.climate, solar_position=solpos)
            elif self.weather is None:
                base = climate_year(lat, lon, monthly_climate(lat, lon), self.climate, solar_position=solpos)
            self._cells[key] = (base, solpos, lat, lon)
        return self._cells[key]

    def prepare_cells(self, cells) -> None:
        """Compute the solar position of these (row, col) cells in one go for
        :meth:`_cell` (:func:`pvsurvey.model.solar_position.solar_positions`:
        the time-only part of SPA once; the same values as one call per cell),
        before their yields or hourly years are asked for."""
        cells = [c for c in dict.fromkeys(cells) if c not in self._cells]
        if self.weather is not None or len(cells) < 2:
            return
        places = [((r + 0.5) * self.cell_deg - 90.0, (c + 0.5) * self.cell_deg - 180.0) for r, c in cells]
        self.__dict__.setdefault("_solpos", {}).update(zip(cells, solar_positions(hourly_index(), places)))

    def hourly_year(self, row: int, col: int, level: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The hourly year of a weather cell scaled to an irradiance level, and its
        solar position: what the yield of that cell and level was computed from
        (kept, so the shade model takes each cell's sun positions once)."""
        key = (int(row), int(col), float(level))
        with self._lock:
            years = self.__dict__.setdefault("_years", {})
            if key not in years:
                base, solpos, lat, lon = self._cell(*key[:2])
                years[key] = (scale_to_annual_ghi(base, level, lat, lon, solar_position=solpos,
                                                  daily=self._daily_split), solpos)
            return years[key]

    def hourly_shapes(self, keys) -> dict[str, np.ndarray]:
        """Normalised hourly AC shapes of the shape keys (:func:`hourly_shapes`),
        computed once per process and key."""
        with self._lock:
            cache = self.__dict__.setdefault("_shapes", {})
            missing = [k for k in pd.unique(np.asarray(list(keys), dtype=object)) if k not in cache]
        if missing:
            computed = hourly_shapes(self, missing)
            with self._lock:
                cache.update(computed)
        return {k: cache[k] for k in keys}

    def lookup(self, latitude_deg, longitude_deg, ghi_kwh_per_m2_yr, surface_tilt_deg,
               surface_azimuth_deg, mount):
        """Specific yield [kWh/kWp/yr] and weather-cell id of each roof.

        Every input is an array of length N (one per roof). The yield of each
        distinct key is computed once; a roof's value is its key's yield times
        its GHI over its level's GHI.
        """
        row, col = self.cells(latitude_deg, longitude_deg)
        ghi = np.asarray(ghi_kwh_per_m2_yr, dtype=float)
        if len(ghi) == 0:
            return np.zeros(0), np.zeros(0, dtype=object)
        level = ghi_level(ghi)
        tilt = np.round(np.asarray(surface_tilt_deg, dtype=float) / TILT_STEP_DEG) * TILT_STEP_DEG
        az = np.mod(np.round(np.asarray(surface_azimuth_deg, dtype=float) / AZIMUTH_STEP_DEG) * AZIMUTH_STEP_DEG, 360.0)
        # the distinct keys and each roof's position among them (numbers, no per-roof text or join)
        mount = np.asarray(mount, dtype=object)
        row, col = np.asarray(row, dtype=np.int64), np.asarray(col, dtype=np.int64)
        first, inverse = distinct_rows(row, col, level, tilt, az, mount)
        unique = pd.DataFrame({"row": row[first], "col": col[first], "level": level[first], "tilt": tilt[first],
                               "az": az[first], "mount": mount[first]})
        with self._lock:
            missing = unique[np.array([k not in self._cache for k in unique.itertuples(index=False, name=None)], dtype=bool)]
            self.prepare_cells(zip(missing["row"].tolist(), missing["col"].tolist()))
            for (r, c, lev), group in missing.groupby(["row", "col", "level"], sort=False):
                base, solpos, lat, lon = self._cell(r, c)
                year = scale_to_annual_ghi(base, lev, lat, lon, solar_position=solpos, daily=self._daily_split)
                values = specific_yield_kwh_per_kwp(year, lat, lon, group["tilt"], group["az"],
                                                    group["mount"], self.system, solar_position=solpos)
                self._cache.update(zip(group.itertuples(index=False, name=None), values))
            sy = np.array([self._cache[k] for k in unique.itertuples(index=False, name=None)], dtype=float)
        sy = sy[inverse]
        return sy * ghi / level, self.cell_id(row, col)


def hourly_shapes(table: SpecificYieldTable, keys) -> dict[str, np.ndarray]:
    """Normalised hourly AC shape (8760 local hours, China Standard Time, sums to 1) of
    each shape key (:func:`shape_keys`): one pvlib run per weather cell for all its
    orientations, never per building.

    A cell's shape is computed from its own hourly year at that year's annual GHI (the
    climatology's, clear-sky or weather-file year scaled by 1, split into beam and diffuse
    by Erbs as :func:`pvsurvey.model.weather_year.scale_to_annual_ghi` does, daily or hourly): scaling the year
    changes the yield, not how it spreads over the hours, to the Erbs split's second
    order. The Erbs split and the extraterrestrial irradiance take plain arrays (the
    same formulas without pandas' per-call overhead, which was most of the cost).
    """
    parts = pd.Series(pd.unique(np.asarray(list(keys), dtype=object))).str.split("|", expand=True)
    out: dict[str, np.ndarray] = {}
    if len(parts) == 0:
        return out
    parts.columns = ["cell", "tilt", "az", "mount"]
    by_times: dict[int, tuple] = {}  # every clear-sky cell shares one hourly index
    for cell, group in parts.groupby("cell", sort=False):
        if cell == "file":
            row = col = 0
        else:
            row, col = (int(v) for v in cell.split("_"))
        base, solpos, lat, lon = table._cell(row, col)
        times = base.index
        if id(times) not in by_times:
            doy = times.dayofyear.to_numpy()
            by_times[id(times)] = (doy, pvlib.irradiance.get_extra_radiation(doy), times)
        doy, dni_extra, _ = by_times[id(times)]
        year = base
        if not {"dni", "dhi"} <= set(base.columns) and table._daily_split:
            # the climatology's years split GHI by daily clearness, as the yield does
            dni, dhi = split_by_daily_clearness(base["ghi"].to_numpy(dtype=float), times, lat, lon,
                                                solpos["zenith"].to_numpy())
            year = base.assign(dni=dni, dhi=dhi)
        elif not {"dni", "dhi"} <= set(base.columns):
            split = pvlib.irradiance.erbs(base["ghi"].to_numpy(dtype=float), solpos["zenith"].to_numpy(), doy)
            year = base.assign(dni=np.asarray(split["dni"], dtype=float), dhi=np.asarray(split["dhi"], dtype=float))
        ac = hourly_ac_kw_per_kwp(year, lat, lon, group["tilt"].astype(float), group["az"].astype(float),
                                  group["mount"].to_numpy(), table.system, solar_position=solpos,
                                  dni_extra=dni_extra)
        for key, shape in zip(group.astype(str).agg("|".join, axis=1), to_local_shape(ac, times)):
            out[key] = shape
    return out
