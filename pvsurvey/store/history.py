"""The history of a survey's progress figures, one CSV beside the runs (a rerun
for the same ``as_of`` date replaces its rows).

pvsurvey writes it as UTF-8 with a byte-order mark; it reads it back as that, as
UTF-8 without one, or as GBK/GB18030 (Excel on a Chinese Windows desktop saves a
hand-edited CSV so), and rewrites it as UTF-8 with BOM when a run appends.
"""

from __future__ import annotations


import datetime as dt
from pathlib import Path

import pandas as pd

from ..errors import InputFileError
from ..io.encoding import text_file_encoding
from ..io.writers import atomic_write
from ..naming import name_file_stem


HISTORY_COLUMNS = ["as_of", "run_finished_at", "plan", "plan_status", "figures_as_of", "level", "key", "name", "usable_area_m2", "usable_area_with_pv_m2",
                   "install_ratio_area_frac", "install_ratio_count_frac", "installed_kwp",
                   "new_kwp_since_baseline", "pipeline_kwp", "target_install_ratio", "new_capacity_target_kwp", "outcome",
                   "install_ratio_p90_frac", "install_ratio_p10_frac"]
# what identifies a row; histories of every version have them (older ones lack plan and later columns)
REQUIRED_COLUMNS = ["as_of", "level", "key"]
# the way out of any unreadable history: nothing in it is needed to survey
MOVE_AWAY = "move it away (pvsurvey then starts a new history)"


def history_path(name: str, history_file: str | Path | None, run_dir: Path) -> Path:
    """The history of survey ``name``: ``progress.history_file`` where the config sets one,
    else ``<name>-history.csv`` beside the run directory (it outlives every run; the name
    made a safe file name by :func:`pvsurvey.naming.name_file_stem`)."""
    return Path(history_file) if history_file else \
        Path(run_dir).absolute().parent / f"{name_file_stem(name)}-history.csv"


def read_history(path: Path, plan_of_old_rows: str | None = None) -> pd.DataFrame | None:
    """The history, or None where there is none yet.

    Parameters
    ----------
    path : Path
        The history CSV: UTF-8 (with or without BOM) or GBK/GB18030.
    plan_of_old_rows : str, optional
        The plan of rows written before plans existed (no ``plan`` column): the default plan.

    Returns
    -------
    DataFrame or None
        The rows, ``as_of`` as ``YYYY-MM-DD`` text; None for no file or an empty
        one (0 bytes: nothing to keep, the next run writes it whole).

    Raises
    ------
    InputFileError
        A directory, text in neither encoding, not CSV, no ``as_of``, ``level`` or
        ``key`` column, or an ``as_of`` that is no date: one line naming the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_file():
        raise InputFileError(f"{path}: a directory, not a progress history (CSV); {MOVE_AWAY}")
    encoding = text_file_encoding(path, None, "progress history",
                                  fix=f"save it again as UTF-8 (Excel: 'CSV UTF-8') or GBK, or {MOVE_AWAY}")
    try:
        history = pd.read_csv(path, dtype={"key": str, "name": str, "plan": str}, encoding=encoding)
    except pd.errors.EmptyDataError:
        return None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputFileError(f"{path}: not a readable progress history ({reason}); repair it, or {MOVE_AWAY}") \
            from None
    missing = [c for c in REQUIRED_COLUMNS if c not in history.columns]
    if missing:
        raise InputFileError(f"{path}: not a progress history (no column {', '.join(missing)}; it has "
                             f"{', '.join(map(str, history.columns[:8]))}{', …' if len(history.columns) > 8 else ''})"
                             f"; {MOVE_AWAY}, or set progress.history_file to another file")
    history = history.dropna(how="all")  # the empty rows a spreadsheet leaves
    history["as_of"] = _iso_dates(history["as_of"], path)
    history = history.reset_index(drop=True)
    if "plan" not in history and plan_of_old_rows is not None:
        history.insert(history.columns.get_loc("level") if "level" in history else 0, "plan", plan_of_old_rows)
    return history


def _iso_dates(values: pd.Series, path: Path) -> pd.Series:
    """``as_of`` as ``YYYY-MM-DD``: a rerun replaces the rows of its date by comparing
    this text, and Excel saves dates in the desktop's format (2025/6/30)."""
    text = values.astype("string").str.strip()
    iso = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).astype(bool)
    if iso.all():
        return text.astype(values.dtype)
    parsed = pd.to_datetime(text[~iso], errors="coerce", format="mixed", yearfirst=True)
    if parsed.isna().any():
        row = parsed.index[parsed.isna()][0]  # the file's row number: the header is line 1
        raise InputFileError(f"{path}, line {row + 2}: as_of {text[row]!r} is not a date; write it as "
                             f"YYYY-MM-DD, or {MOVE_AWAY}")
    out = text.copy()
    out[~iso] = parsed.dt.strftime("%Y-%m-%d")
    return out.astype(values.dtype)


def append_history(path: Path, table: pd.DataFrame, as_of: dt.date, finished_at: str,
                   plan_of_old_rows: str | None = None) -> pd.DataFrame:
    """Add this run's rows (one per plan and city, district, park) to the history;
    a rerun for the same as-of date replaces them. Written as UTF-8 with BOM
    whatever the encoding it was read in."""
    rows = table.assign(as_of=as_of.isoformat(), run_finished_at=finished_at)
    rows = rows[[c for c in HISTORY_COLUMNS if c in rows.columns]]
    old = read_history(path, plan_of_old_rows)
    if old is not None:
        rows = pd.concat([old[old["as_of"] != as_of.isoformat()], rows], ignore_index=True)
    rows = rows.sort_values(["as_of", "plan", "level", "key"] if "plan" in rows else ["as_of", "level", "key"],
                            kind="stable")
    atomic_write(path, lambda tmp: rows.to_csv(tmp, index=False, encoding="utf-8-sig"))
    return rows
