"""Declared coordinate systems: ``crs:`` of an input, as anything pyproj understands.

- the shortcuts ``wgs84``, ``gcj02`` (read as WGS84, then shifted back from the
  Chinese web-map offset) and ``cgcs2000`` (EPSG:4490);
- ``EPSG:nnnn`` (or any authority code, ``ESRI:102100`` …);
- a PROJ string, e.g. a local transverse Mercator without an EPSG code
  (``+proj=tmerc +lat_0=0 +lon_0=121.4667 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs``);
- WKT (1 or 2, ESRI's flavour included), e.g. pasted from a ``.prj``;
- a path to a ``.prj`` (or ``.wkt``) file, relative to the config file.

Areas stay true areas whatever the input CRS: footprints are reprojected to
WGS84 on read and measured in the UTM zone of each roof (pvsurvey.model.roof).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError

from ..errors import CRSError
from .encoding import detect_encoding

SHORTCUTS = {"wgs84": "EPSG:4326", "gcj02": "EPSG:4326", "cgcs2000": "EPSG:4490"}
CRS_FILE_SUFFIXES = (".prj", ".wkt")
ACCEPTED = "wgs84, gcj02, cgcs2000, EPSG:<code>, a PROJ string, WKT or the path of a .prj file"


def is_crs_file(value: str) -> bool:
    """Whether a ``crs:`` value names a file (``local.prj``) rather than a definition."""
    text = str(value).strip()
    return "\n" not in text and not text.startswith("+") and text.lower().endswith(CRS_FILE_SUFFIXES)


def is_gcj02(value) -> bool:
    return value is not None and str(value).strip().lower() == "gcj02"


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> CRS:
    return CRS.from_user_input(text)


def declared_crs(value, source=None) -> CRS | None:
    """The CRS a ``crs:`` value declares (None for None).

    Raises
    ------
    CRSError
        A ``.prj`` file that is missing, or a value pyproj does not understand;
        the line names the input file (``source``) and what is accepted.
    """
    if value is None:
        return None
    text = str(value).strip()
    where = f"{source}: " if source is not None else ""
    if text.lower() in SHORTCUTS:
        return _parse(SHORTCUTS[text.lower()])
    if is_crs_file(text):
        path = Path(text)
        if not path.is_file():
            raise CRSError(f"{where}the coordinate system file {path} (its 'crs:' in the config) is not there; "
                           "paths are relative to the config file")
        data = path.read_bytes()
        text = data.decode(detect_encoding(data) or "latin-1").strip()
    try:
        return _parse(text)
    except ProjCRSError as exc:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise CRSError(f"{where}its 'crs:' ({shown!r}) is not a coordinate system pyproj understands "
                       f"({str(exc).splitlines()[0]}); use {ACCEPTED}") from None
