"""Where a file lives: a local path or a URL on object storage (names only, no I/O).
"""

from __future__ import annotations


import re
from pathlib import Path, PurePosixPath
from typing import Union
from urllib.parse import urlsplit



Location = Union[Path, str]
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(value) -> bool:
    """True for a URL string with a scheme other than ``file://``."""
    return isinstance(value, str) and bool(_SCHEME.match(value)) and not value.lower().startswith("file://")


def location(value) -> Location | None:
    """A config or command-line value as a location: URLs stay strings, the rest become paths."""
    if value is None or is_url(value):
        return value
    text = str(value)
    return Path(text[len("file://"):] if text.lower().startswith("file://") else text).expanduser()


def name_of(loc: Location) -> str:
    """The file name at the end of a path or URL (``footprints.parquet``)."""
    return PurePosixPath(urlsplit(loc).path).name if is_url(loc) else Path(loc).name


def suffix_of(loc: Location) -> str:
    return PurePosixPath(name_of(loc)).suffix.lower()
