"""The park managers' candidate-status store, kept beside the runs so it outlives them.
"""

from __future__ import annotations


from pathlib import Path

import pandas as pd



def candidate_status_path(name: str, run_dir: Path) -> Path:
    """The park managers' status store, kept beside the runs so it outlives them."""
    return Path(run_dir).absolute().parent / f"{name}-candidate-status.csv"  # beside the pointer, not inside a run


def read_candidate_statuses(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig") if path.is_file() else None
