"""File names made from data (park ids, districts)."""

from __future__ import annotations

import hashlib
import re


def safe_file_stem(text) -> str:
    """A file-name part from a data value: letters, digits, ``_ . -`` only.

    Values with other characters (``/``, ``..``, spaces, Chinese) are slugged and
    get a short hash of the value, so that a hostile id never names a path outside
    its folder and two values never share a file.
    """
    value = str(text)
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", value).strip(".")
    if slug != value or not slug:
        slug = f"{slug[:40]}-{hashlib.sha1(value.encode('utf-8')).hexdigest()[:8]}"
    return slug
