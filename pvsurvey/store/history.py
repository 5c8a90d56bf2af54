"""The history of a survey's progress figures, one CSV beside the runs (a rerun
for the same ``as_of`` date replaces its rows).
"""

from __future__ import annotations


import datetime as dt
from pathlib import Path

import pandas as pd

from ..io.writers import atomic_write
from ..naming import name_file_stem


HISTORY_COLUMNS = ["as_of", "run_finished_at", "plan", "plan_status", "figures_as_of", "level", "key", "name", "usable_area_m2", "usable_area_with_pv_m2",
                   "install_ratio_area_frac", "install_ratio_count_frac", "installed_kwp",
                   "new_kwp_since_baseline", "pipeline_kwp", "target_install_ratio", "new_capacity_target_kwp", "outcome",
                   "install_ratio_p90_frac", "install_ratio_p10_frac"]


def history_path(name: str, history_file: str | Path | None, run_dir: Path) -> Path:
    """The history of survey ``name``: ``progress.history_file`` where the config sets one,
    else ``<name>-history.csv`` beside the run directory (it outlives every run; the name
    made a safe file name by :func:`pvsurvey.naming.name_file_stem`)."""
    return Path(history_file) if history_file else \
        Path(run_dir).absolute().parent / f"{name_file_stem(name)}-history.csv"


def read_history(path: Path, plan_of_old_rows: str | None = None) -> pd.DataFrame | None:
    """The history, or None where there is none yet. Rows written before plans
    existed (no ``plan`` column) belong to ``plan_of_old_rows`` (the default plan)."""
    if not path.is_file():
        return None
    history = pd.read_csv(path, dtype={"key": str, "name": str, "plan": str})
    if "plan" not in history and plan_of_old_rows is not None:
        history.insert(history.columns.get_loc("level") if "level" in history else 0, "plan", plan_of_old_rows)
    return history


def append_history(path: Path, table: pd.DataFrame, as_of: dt.date, finished_at: str,
                   plan_of_old_rows: str | None = None) -> pd.DataFrame:
    """Add this run's rows (one per plan and city, district, park) to the history;
    a rerun for the same as-of date replaces them."""
    rows = table.assign(as_of=as_of.isoformat(), run_finished_at=finished_at)
    rows = rows[[c for c in HISTORY_COLUMNS if c in rows.columns]]
    old = read_history(path, plan_of_old_rows)
    if old is not None:
        rows = pd.concat([old[old["as_of"] != as_of.isoformat()], rows], ignore_index=True)
    rows = rows.sort_values(["as_of", "plan", "level", "key"] if "plan" in rows else ["as_of", "level", "key"],
                            kind="stable")
    atomic_write(path, lambda tmp: rows.to_csv(tmp, index=False, encoding="utf-8-sig"))
    return rows
