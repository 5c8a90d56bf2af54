"""The park managers' candidate-status store, kept beside the runs so it outlives them.
"""

from __future__ import annotations


from pathlib import Path

import pandas as pd

from ..io.encoding import text_file_encoding
from ..naming import name_file_stem



def candidate_status_path(name: str, run_dir: Path) -> Path:
    """The park managers' status store, kept beside the runs so it outlives them."""
    # beside the pointer, not inside a run
    return Path(run_dir).absolute().parent / f"{name_file_stem(name)}-candidate-status.csv"


def read_candidate_statuses(path: Path) -> pd.DataFrame | None:
    """The store as pvsurvey wrote it (UTF-8 with BOM), or as Excel saved it after a
    hand edit (GBK on a Chinese Windows desktop)."""
    if not path.is_file():
        return None
    encoding = text_file_encoding(path, None, "candidate statuses",
                                  fix="save it again as UTF-8 (Excel: 'CSV UTF-8') or GBK")
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
