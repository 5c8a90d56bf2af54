"""Typical-year weather files (EPW, TMY3, PVGIS TMY) through pvlib.iotools.

Like pvlib's readers, :func:`read_weather` returns ``(data, metadata)``: data in
pvlib's names (``ghi``, ``dni``, ``dhi`` [W/m²], ``temp_air`` [°C],
``wind_speed`` [m/s]) on a tz-aware hourly index, metadata with ``latitude``
and ``longitude`` [°].
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pvlib

from ..errors import InputFileError
from ..locations import Location, location
from .storage import is_file, local_copy

REQUIRED = ("ghi", "temp_air", "wind_speed")


def _sniff(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".epw":
        return "epw"
    if suffix == ".json":
        return "pvgis"
    head = path.read_text(encoding="utf-8", errors="replace")[:2000]
    if head.startswith("Latitude") or "PVGIS" in head or "T2m" in head:
        return "pvgis"
    if head.startswith("LOCATION"):
        return "epw"
    return "tmy3"


def read_weather(path: Location) -> tuple[pd.DataFrame, dict]:
    """Read an hourly typical-year file, detecting EPW, TMY3 or PVGIS TMY.

    Raises
    ------
    InputFileError
        Missing file, unknown format or missing columns.
    """
    path = location(path)
    if not is_file(path):
        raise InputFileError(f"weather file not found: {path} (check 'irradiance.weather' in the config)")
    with local_copy(path) as local:
        return _read_weather(local)


def _read_weather(path: Path) -> tuple[pd.DataFrame, dict]:
    kind = _sniff(path)
    try:
        if kind == "epw":
            data, meta = pvlib.iotools.read_epw(path, coerce_year=2023)
        elif kind == "pvgis":
            data, meta = pvlib.iotools.read_pvgis_tmy(path, map_variables=True)
            inputs = meta.get("inputs", {}) if isinstance(meta, dict) else {}
            location = inputs.get("location", inputs)  # JSON nests the place under 'location', CSV does not
            meta = {"latitude": meta.get("latitude", location.get("latitude")),
                    "longitude": meta.get("longitude", location.get("longitude"))}
        else:
            data, meta = pvlib.iotools.read_tmy3(path, coerce_year=2023, map_variables=True)
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read it as {kind.upper()} weather ({exc}); "
                             "give an EPW, TMY3 or PVGIS TMY file") from None
    missing = [c for c in REQUIRED if c not in data.columns]
    if missing:
        raise InputFileError(f"{path}: weather without {', '.join(missing)}")
    if data.index.tz is None:
        data = data.tz_localize("UTC")
    cols = [c for c in ("ghi", "dni", "dhi", "temp_air", "wind_speed") if c in data.columns]
    lat = meta.get("latitude")
    lon = meta.get("longitude")
    if lat is None or lon is None:
        raise InputFileError(f"{path}: weather file without latitude/longitude in its header")
    return data[cols].astype(float), {"latitude": float(lat), "longitude": float(lon), "format": kind}
