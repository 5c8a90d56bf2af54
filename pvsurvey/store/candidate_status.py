"""The park managers' candidate-status store, kept beside the runs so it outlives them.
"""

from __future__ import annotations


from pathlib import Path

import pandas as pd

from ..errors import InputFileError
from ..io.encoding import text_file_encoding
from ..naming import name_file_stem

# what 'pvsurvey candidates import' writes and a run applies (notes, updated_at and source_file besides)
REQUIRED_COLUMNS = ["project_id", "status"]
# the store only keeps what was imported: the edited lists give it back
FIX = "repair it, or move it away and run 'pvsurvey candidates import' again with the edited lists"


def candidate_status_path(name: str, run_dir: Path) -> Path:
    """The park managers' status store, kept beside the runs so it outlives them."""
    # beside the pointer, not inside a run
    return Path(run_dir).absolute().parent / f"{name_file_stem(name)}-candidate-status.csv"


def read_candidate_statuses(path: Path) -> pd.DataFrame | None:
    """The store as pvsurvey wrote it (UTF-8 with BOM), or as Excel saved it after a
    hand edit (GBK on a Chinese Windows desktop).

    Parameters
    ----------
    path : Path
        The store (:func:`candidate_status_path`).

    Returns
    -------
    DataFrame or None
        Every column as text (``notes`` empty where the file has none); None for
        no file or an empty one (0 bytes: no statuses).

    Raises
    ------
    InputFileError
        A directory, text in neither encoding, not CSV (an unclosed quote), or
        no ``project_id`` or ``status`` column: one line naming the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_file():
        raise InputFileError(f"{path}: a directory, not the candidate-status store (CSV); move it away")
    encoding = text_file_encoding(path, None, "candidate statuses",
                                  fix="save it again as UTF-8 (Excel: 'CSV UTF-8') or GBK")
    try:
        store = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    except pd.errors.EmptyDataError:
        return None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputFileError(f"{path}: not a readable candidate-status store ({reason}); {FIX}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in store.columns]
    if missing:
        raise InputFileError(f"{path}: not a candidate-status store (no column {', '.join(missing)}; it has "
                             f"{', '.join(map(str, store.columns[:8]))}); {FIX}")
    if "notes" not in store:  # apply_statuses carries notes over
        store["notes"] = ""
    return store
