"""Whether two finished runs hold the same outputs, row by row (prints; not a test).

    python benchmarks/compare_runs.py RUN_A RUN_B [--rtol 1e-9] [--atol COLUMN=VALUE ...]

Speed work must not change any output (issue 17): run the demo with the code
before and after (``pvsurvey run --out A`` in each checkout) and compare. Every
table of the run directory — buildings, candidates, rejected rows (GeoParquet),
parks, districts, progress, candidate lists, matches, validation (CSV) — is read
with the readers a user has (pyarrow, pandas), put in one order (its key
columns), and compared column by column: text and geometry (WKB) exactly,
numbers within ``--rtol`` (and 1e-9 absolute). ``progress.json`` is compared
key by key the same way. Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

KEYS = ("building_id", "project_id", "park_id", "district", "plan_id", "registry_row", "source_row", "source_file")
SKIP_JSON = {"run_id", "started_at", "finished_at", "run_dir", "timings_s", "partition_seconds", "outputs", "generated_at"}


def _table(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype_backend="pyarrow", encoding="utf-8-sig")
    frame = pq.read_table(path).to_pandas()
    for col in frame.columns:  # geometry as WKB bytes: compared exactly
        # its first value says (mapping the whole column fails on an empty string column)
        if any(isinstance(v, (bytes, bytearray)) for v in frame[col].dropna().head(1)):
            frame[col] = frame[col].map(lambda v: bytes(v).hex() if v is not None else None)
    return frame


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in KEYS if k in frame.columns]
    if keys:
        frame = frame.sort_values(keys, kind="stable", na_position="last")
    return frame.reset_index(drop=True)


def compare_frames(a: pd.DataFrame, b: pd.DataFrame, rtol: float, atol: dict | None = None) -> list[str]:
    """Differences between two tables, one line each (none: equal rows)."""
    out = []
    if set(a.columns) != set(b.columns):
        out.append(f"columns differ: only in A {sorted(set(a.columns) - set(b.columns))}, "
                   f"only in B {sorted(set(b.columns) - set(a.columns))}")
    if len(a) != len(b):
        return out + [f"{len(a)} rows against {len(b)}"]
    a, b = _ordered(a), _ordered(b)
    for col in [c for c in a.columns if c in b.columns]:
        x, y = a[col], b[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(x):
            xv, yv = x.to_numpy(dtype=float, na_value=np.nan), y.to_numpy(dtype=float, na_value=np.nan)
            close = np.isclose(xv, yv, rtol=rtol, atol=(atol or {}).get(col, 1e-9), equal_nan=True)
            if not close.all():
                diff = np.nanmax(np.abs(xv - yv)[~close]) if np.isfinite(xv - yv)[~close].any() else np.nan
                out.append(f"{col}: {int((~close).sum())} row(s) differ, largest by {diff:.3g}")
        else:
            if col == "source_file":  # the input's path differs between checkouts: its name must not
                x, y = x.map(lambda v: Path(v).name if isinstance(v, str) else v), \
                    y.map(lambda v: Path(v).name if isinstance(v, str) else v)
            xs, ys = x.astype("string").fillna("<NA>"), y.astype("string").fillna("<NA>")
            unequal = (xs.to_numpy() != ys.to_numpy())
            if unequal.any():
                out.append(f"{col}: {int(unequal.sum())} row(s) differ")
    return out


def compare_json(a, b, rtol: float, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            if key in SKIP_JSON:
                continue
            if key not in a or key not in b:
                out.append(f"{where}/{key}: only in {'B' if key not in a else 'A'}")
            else:
                out += compare_json(a[key], b[key], rtol, f"{where}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items against {len(b)}"]
        return [line for x, y in zip(a, b) for line in compare_json(x, y, rtol, where + "[]")]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return [] if np.isclose(a, b, rtol=rtol, atol=1e-9) else [f"{where}: {a} against {b}"]
    return [] if a == b else [f"{where}: {a!r} against {b!r}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance of numbers (default 1e-9)")
    ap.add_argument("--atol", action="append", default=[], metavar="COLUMN=VALUE",
                    help="an absolute tolerance for one column, e.g. surface_azimuth_deg=0.01 (GEOS's rounding "
                         "of a roof's orientation at UTM coordinates, up to ~0.003°)")
    args = ap.parse_args()
    atol = {k: float(v) for k, v in (item.split("=", 1) for item in args.atol)}
    names = sorted({p.relative_to(args.a).as_posix() for p in args.a.rglob("*") if p.suffix in (".parquet", ".csv")}
                   | {p.relative_to(args.b).as_posix() for p in args.b.rglob("*") if p.suffix in (".parquet", ".csv")})
    tables = sorted({n.split("/")[0] if n.split("/")[0].endswith(".parquet") else n for n in names})
    differ = 0
    for name in tables:
        pa_, pb_ = args.a / name, args.b / name
        if not pa_.exists() or not pb_.exists():
            print(f"{name}: only in {'B' if not pa_.exists() else 'A'}")
            differ += 1
            continue
        a, b = _table(pa_), _table(pb_)
        lines = compare_frames(a, b, args.rtol, atol)
        print(f"{name}: {len(a):,} rows, " + ("equal" if not lines else "DIFFERENT"))
        for line in lines:
            print("    " + line)
        differ += bool(lines)
    lines = compare_json(json.loads((args.a / "progress.json").read_text()),
                         json.loads((args.b / "progress.json").read_text()), args.rtol)
    print("progress.json: " + ("equal" if not lines else "DIFFERENT"))
    for line in lines[:20]:
        print("    " + line)
    differ += bool(lines)
    print(f"{len(tables) + 1 - differ} of {len(tables) + 1} outputs equal")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
