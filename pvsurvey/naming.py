"""File names made from data (park ids, districts)."""

from __future__ import annotations

import hashlib
import re
import unicodedata


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


# Names Windows reserves whatever the extension (a file 'CON.csv' cannot be made there)
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
NAME_STEM_MAX_BYTES = 120  # a file-name component is at most 255 bytes; suffixes such as '-candidate-status.csv' follow


def name_file_stem(name) -> str:
    """A file-name part from a survey's name, in any language: the run directory
    ``runs/<stem>``, ``<stem>-history.csv``, ``<stem>-candidate-status.csv``.

    Letters, marks and digits of any script (``金桥开发区屋顶普查``), ``_ . -`` are kept
    (Unicode NFC, so the same name typed on any system gives the same file);
    anything else (``/``, spaces, control characters), a leading dot, a name
    Windows reserves or one longer than 120 UTF-8 bytes is slugged and gets a
    short hash of the name, so no name escapes its folder and two names never
    share a file. A name of ASCII letters, digits and ``_ . -`` that starts with
    neither a dot nor a dash is its own stem, as before names in any language
    were allowed.
    """
    value = unicodedata.normalize("NFC", str(name))
    slug = "".join(c if unicodedata.category(c)[0] in "LMN" or c in "_.-" else "_" for c in value).lstrip(".-")
    clean = (slug == value and slug.split(".")[0].lower() not in _WINDOWS_RESERVED
             and len(slug.encode("utf-8")) <= NAME_STEM_MAX_BYTES)
    if clean:
        return slug
    short = slug.encode("utf-8")[:NAME_STEM_MAX_BYTES - 9].decode("utf-8", "ignore")
    return f"{short}-{hashlib.sha1(value.encode('utf-8')).hexdigest()[:8]}".lstrip("-")
