"""The run directory: the one module that names its files, and :class:`RunDirectory`,
the one reader of a finished run used by every command and the notebook.

A run directory (``runs/<name>``, a link to the latest dated run in
``runs/<name>.runs/``) holds:

=============================  =========================================================
``buildings.parquet/``         GeoParquet dataset, one part per partition (:func:`building_part`)
``rejected.parquet``           every input row not accepted, with its reason and message
``parks.csv``, ``districts.csv``  totals per park and per district (UTF-8 with BOM)
``progress.json``, ``progress.csv``  progress toward the targets (city, districts, parks)
``installations_matched.csv``  every registry row's match or the reason it matched none
``candidates.parquet/``        the candidate projects, one part per partition and per park
``candidates.csv``, ``candidates/park-<id>.csv``  the city's list and each park's list
``maps/``                      the officials' maps (``index.html``, ``park-<id>.html``)
``exports/``                   what ``pvsurvey export`` and ``candidates plan`` write
``progress.png``, ``.svg``     the trajectory chart ``pvsurvey progress`` draws
``validation*.csv``, ``.json``, ``validation.png``, ``.svg``  predicted against metered generation (``pvsurvey validate``)
``manifest.json``              config, input fingerprints, counts, totals, timings
``run.log``                    the run's log lines
``_COMPLETE``                  written last: a directory without it is not a finished run
=============================  =========================================================

Beside the run directory live the files that outlive a run: the progress history
(:mod:`.history`) and the park managers' candidate statuses (:mod:`.candidate_status`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Iterator

import geopandas as gpd
import pandas as pd
import pyarrow as pa

from ..errors import InputFileError
from ..io.datasets import damaged_part, dataset_exists
from .candidate_status import candidate_status_path
from .history import history_path

BUILDINGS = "buildings.parquet"
REJECTED = "rejected.parquet"
PARKS = "parks.csv"
DISTRICTS = "districts.csv"
PROGRESS = "progress.json"
PROGRESS_TABLE = "progress.csv"
REGISTRY_MATCHES = "installations_matched.csv"
CANDIDATES = "candidates.parquet"
CITY_CANDIDATE_LIST = "candidates.csv"
PARK_CANDIDATE_LISTS = "candidates"
MAPS = "maps"
MAP_INDEX = "index.html"
EXPORTS = "exports"
PROGRESS_CHART = "progress"  # .png and .svg
VALIDATION_SYSTEMS = "validation.csv"  # 'pvsurvey validate': predicted against metered, per system
VALIDATION_SUMMARY = "validation_summary.csv"  # ... per city, district and park
VALIDATION = "validation.json"  # ... the city's figures and the calibration factor (never applied)
VALIDATION_CHART = "validation"  # .png and .svg
MANIFEST = "manifest.json"
RUN_LOG = "run.log"
COMPLETE_MARKER = "_COMPLETE"
PARTS = "_parts"  # the tasks' part files while a run is written; gone from a finished run

# The files every finished run lists in its manifest, in the order a reader meets them.
OUTPUTS = [BUILDINGS, REJECTED, PARKS, DISTRICTS, PROGRESS, PROGRESS_TABLE, CANDIDATES, CITY_CANDIDATE_LIST,
           PARK_CANDIDATE_LISTS + "/", MANIFEST]


def building_part(run_dir: Path, index: int) -> Path:
    """Partition ``index``'s part of ``buildings.parquet/``."""
    return Path(run_dir) / BUILDINGS / f"part-{index:05d}.parquet"


def candidate_part(run_dir: Path, name: str) -> Path:
    """A part of ``candidates.parquet/`` (``part-00000`` for a partition, ``park-<id>`` for a park)."""
    return Path(run_dir) / CANDIDATES / f"{name}.parquet"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read ({exc}); rerun 'pvsurvey run' to rewrite it") from None


# what mends a damaged run file: a reused part is a hard link of the run cache's file
# (pvsurvey.store.cache.link), damaged there too, and the next run computes it again
# (pvsurvey.store.cache.has_entry)
REBUILD = "run 'pvsurvey run' again with the run's config to rebuild the run directory"


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class RunDirectory:
    """A run directory written by ``pvsurvey run``, read the same way everywhere.

    Parameters
    ----------
    path : path
        The run directory (``runs/<name>`` or one dated run behind it).
    finished : bool
        Require a finished run (``_COMPLETE`` and ``manifest.json``); False reads
        one being written (the run's own map step), whose manifest may be absent.

    Raises
    ------
    InputFileError
        No such directory, or not a (finished) run directory: one line saying what to give.
    """

    def __init__(self, path: str | Path, finished: bool = True):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputFileError(f"{self.path}: no such run directory; give the folder 'pvsurvey run' wrote "
                                 "(e.g. runs/shanghai-demo)")
        if finished and not self.file(MANIFEST).is_file():
            raise InputFileError(f"{self.path}: not a run directory (no {MANIFEST}); give a directory written by "
                                 "'pvsurvey run'")
        if finished and not self.file(COMPLETE_MARKER).is_file():
            raise InputFileError(f"{self.path}: not a finished run (no {COMPLETE_MARKER}); rerun 'pvsurvey run' "
                                 "to complete it")

    def file(self, name: str) -> Path:
        """The path of one of the run's files (a name of this module)."""
        return self.path / name

    def has(self, name: str) -> bool:
        """Whether the run holds this file or dataset."""
        path = self.file(name)
        return dataset_exists(path) if name.endswith(".parquet") else path.exists()

    def require(self, name: str, hint: str = "rerun 'pvsurvey run' with this version") -> Path:
        """The path of a file the caller cannot do without; one clear error when it is
        missing, or for a Parquet dataset when one of its files is damaged."""
        if not self.has(name):
            raise InputFileError(f"{self.path}: no {name} here; {hint}")
        path = self.file(name)
        if name.endswith(".parquet") and (damaged := damaged_part(path)) is not None:
            raise InputFileError(f"{damaged[0]}: damaged ({damaged[1]}); {REBUILD}")
        return path

    @contextmanager
    def reading(self, name: str) -> Iterator[Path]:
        """``with run.reading(BUILDINGS) as path:`` around a read of one of the run's
        Parquet datasets (its footers checked by :meth:`require`): a file damaged
        past its footer is one clear error naming the dataset, not a pyarrow traceback."""
        path = self.require(name, "give a run directory written by 'pvsurvey run'")
        try:
            yield path
        except (pa.ArrowException, OSError) as exc:
            raise InputFileError(f"{path}: cannot read ({_reason(exc)}); a file of it may be damaged: {REBUILD}") \
                from None

    @cached_property
    def manifest(self) -> dict:
        """``manifest.json`` (empty for a run still being written)."""
        return _read_json(self.file(MANIFEST)) if self.file(MANIFEST).is_file() else {}

    @property
    def config(self) -> dict:
        """The config the run used, as recorded in its manifest."""
        return self.manifest.get("config") or {}

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.config.get("name") or self.path.name)

    def progress(self) -> dict | None:
        """``progress.json``, or None for a run without one."""
        return _read_json(self.file(PROGRESS)) if self.file(PROGRESS).is_file() else None

    def table(self, name: str) -> pd.DataFrame:
        """One of the run's CSV tables (UTF-8 with BOM); empty when the run has none."""
        path = self.file(name)
        if not path.is_file():
            return pd.DataFrame()
        return pd.read_csv(path, encoding="utf-8-sig", dtype={"park_id": "string", "district": "string"},
                           keep_default_na=False, na_values=[""])

    def buildings(self, columns: list[str] | None = None, filters=None) -> gpd.GeoDataFrame:
        """The surveyed buildings (WGS84), all columns or those named, optionally filtered row groups."""
        with self.reading(BUILDINGS) as path:
            frame = gpd.read_parquet(path, columns=None if columns is None else [*columns, "geometry"],
                                     filters=filters)
        return frame.to_crs("EPSG:4326") if frame.crs is not None and not frame.crs.equals("EPSG:4326") else frame

    def history_path(self) -> Path:
        """The progress history this run appended to (:func:`.history.history_path`)."""
        return history_path(self.name, self.config.get("progress", {}).get("history_file"), self.path)

    def candidate_status_path(self) -> Path:
        """The park managers' status store of this survey (:mod:`.candidate_status`)."""
        return candidate_status_path(self.name, self.path)
