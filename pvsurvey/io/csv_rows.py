"""CSV rows as people's files hold them: a row with more fields than the header (a
value with an unquoted comma) is set aside in its place, not the end of the file's
reading; a quote never closed is named by the line where it opens.

pandas' fast reader stops at the first such row (``ParserError``). The rows are then
split here with :mod:`csv` (the rules of pandas' C tokenizer: a quote opens a quoted
value only at the start of a field, a doubled quote inside one is a quote), a too-long
row is replaced by an empty one, and pandas reads the result with the caller's
options: the same columns and types as a clean file, every row at its own number.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputFileError

# CSV tokens for the quote scan: a line break, a quote, a comma, or a run of anything else
_CSV_TOKEN = re.compile(r'\r\n|[\r\n",]|[^\r\n",]+')


def unclosed_quote_line(text: str) -> int | None:
    """The 1-based line on which a quote opens and never closes (None when every one closes).

    The states of pandas' C tokenizer: a quote opens a quoted value only at the
    start of a field (elsewhere it is a character of the value), and inside one
    a doubled quote is a quote character.
    """
    line, opened, state = 1, 0, "start"  # start of a field, in a field, quoted, quote seen while quoted
    for token in _CSV_TOKEN.finditer(text):
        t = token.group()
        newline = t in ("\r\n", "\r", "\n")
        if state == "quoted":
            state = "quote" if t == '"' else "quoted"
        elif state == "quote" and t == '"':
            state = "quoted"  # "" inside a quoted value
        elif t == '"' and state == "start":
            state, opened = "quoted", line
        else:
            state = "start" if (newline or t == ",") else "field"
        line += newline
    return opened if state == "quoted" else None


def file_text(path: Path, encoding: str) -> str:
    """The file's text (compressed or not), line breaks as written (quoted ones kept)."""
    with pd.io.common.get_handle(str(path), "r", encoding=encoding, compression="infer") as handle:
        return handle.handle.read()


def refuse_unclosed_quote(path: Path, text: str, problem: str | None = None) -> None:
    """One line naming the line where a quote opens and never closes (pandas' own
    ``problem`` where the scan finds none), and the fix; nothing when every quote closes."""
    line = unclosed_quote_line(text)
    if line is None and problem and "EOF inside string" in problem:  # the scan missed what pandas found
        line = "(" + problem.rsplit("C error: ", 1)[-1].strip() + ")"
    if line is not None:
        raise InputFileError(f"{path}: line {line}: a quoted value opens (\") and is never closed, so the rows "
                             f"after it cannot be told apart; close the quote on that line, or re-export the sheet "
                             f"as CSV (in Excel: Save As 'CSV UTF-8')")


def read_rows_setting_aside_malformed(text: str, opts: dict, start: int = 0,
                                      nrows: int | None = None) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """Rows ``start:start + nrows`` of a CSV text (after its header) read by pandas
    with ``opts``, a row with more fields than the header read as an empty row.

    Returns
    -------
    frame : DataFrame
        One row per non-blank record (pandas skips blank lines), in file order.
    malformed : numpy.ndarray of bool
        The rows with more fields than the header.
    fields : list of int
        Their field counts, in order.
    """
    records = (row for row in csv.reader(io.StringIO(text, newline="")) if row)
    header = next(records, [])
    rows = list(records)[start:None if nrows is None else start + nrows]
    malformed = np.array([len(row) > len(header) for row in rows], dtype=bool)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row, bad in zip(rows, malformed):
        # an empty record (commas only) keeps the row's place; pandas reads it as missing values
        writer.writerow([""] * len(header) if bad else row)
    frame = pd.read_csv(io.StringIO(out.getvalue()), **opts)
    return frame, malformed, [len(row) for row, bad in zip(rows, malformed) if bad]
