"""Text encodings of input files: detected, or declared with ``encoding:``.

Shanghai's inputs come as UTF-8 (with or without a byte-order mark) or in the
ANSI code page of a Chinese Windows desktop (GBK, of which GB18030 is a
superset). The rule is strict decoding, no guessing:

1. a byte-order mark says UTF-8 (or UTF-16);
2. else the bytes are UTF-8 if they decode as UTF-8 without error;
3. else GB18030 if they decode as GB18030 without error;
4. else the file is neither, and the user declares its encoding.

This is exact where a statistical detector (charset-normalizer, chardet) can
guess wrong on short files: UTF-8 is self-validating (Chinese text in GBK
practically never forms valid UTF-8 multi-byte sequences: GBK's lead bytes
0x81–0xFE are mostly UTF-8 continuation or invalid bytes), and pure ASCII is
the same in both. The whole file is decoded (incrementally, in 16 MiB chunks),
not a sample, so a GBK value in the last row is not missed. What the rule
cannot tell apart is an encoding that happens to decode as GB18030 (Big5,
Latin-1 text with accents): those files declare ``encoding: big5``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..errors import InputFileError

CHUNK_BYTES = 16 << 20
DETECTED = ("utf-8", "gb18030")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class EncodingError(InputFileError):
    """A text input that is neither UTF-8 nor GBK/GB18030, or not in its declared encoding."""


@dataclass(frozen=True)
class TextScan:
    """What one pass over a text file found."""

    encoding: str  # a Python codec name, as given to pandas and pyogrio
    lines: int  # newline characters, plus one for a last line without one
    detected: bool  # False when the encoding was declared


def _chunks(path: Path) -> Iterator[bytes]:
    import pandas as pd

    # compression inferred from the name (.csv.gz): the text inside is what is decoded
    with pd.io.common.get_handle(str(path), "rb", compression="infer", is_text=False) as handle:
        while block := handle.handle.read(CHUNK_BYTES):
            yield block


def _decode(chunks: Iterable[bytes], encoding: str) -> tuple[int, int, str | None]:
    """Decode strictly; (lines, offset of the first undecodable byte or -1, its description)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset, lines, last = 0, 0, ""
    try:
        for block in chunks:
            text = decoder.decode(block)
            lines += text.count("\n")
            last = text[-1:] or last
            offset += len(block)
        text = decoder.decode(b"", final=True)
        lines += text.count("\n")
        last = text[-1:] or last
    except UnicodeDecodeError as exc:
        return 0, offset + exc.start, f"byte 0x{exc.object[exc.start]:02x}" if exc.start < len(exc.object) else "the end"
    if last and last != "\n":
        lines += 1
    return lines, -1, None


def scan_text(path: Path, declared: str | None = None, what: str = "input",
              chunks: Callable[[], Iterable[bytes]] | None = None, fix: str | None = None) -> TextScan:
    """The encoding of a text file (declared, or detected by the rule above) and its line count.

    Parameters
    ----------
    path : Path
        The file (named in messages; read unless ``chunks`` is given).
    declared : str, optional
        The ``encoding:`` of the input in the config; checked, not guessed.
    what : str
        The config key of the input (footprints, parks, installations), for the message.
    chunks : callable, optional
        Gives the bytes to decode (e.g. a DBF's text parts); default: the whole file.
    fix : str, optional
        What the message tells the user to do, where the input is not a config key.

    Raises
    ------
    EncodingError
        Neither UTF-8 nor GB18030 (or not the declared encoding): one line naming
        the file, the first bad byte and the key to set.
    """
    whole_file = chunks is None
    chunks = chunks or (lambda: _chunks(path))
    if declared is not None:
        lines, bad, byte = _decode(chunks(), declared)
        if bad >= 0:
            where = f"{byte} at offset {bad}" if whole_file else byte
            raise EncodingError(f"{path}: not valid {declared} text ({where}); check '{what}.encoding' "
                                "in the config (e.g. utf-8, gb18030, big5), or remove it to detect UTF-8 or GBK")
        return TextScan(declared, lines, False)
    head = next(iter(chunks()), b"")[:4]
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            lines, bad, byte = _decode(chunks(), encoding)
            if bad < 0:
                return TextScan(encoding, lines, True)
            break
    first = None
    for encoding in DETECTED:
        lines, bad, byte = _decode(chunks(), encoding)
        if bad < 0:
            return TextScan(encoding, lines, True)
        first = first or (f"{byte} at offset {bad}" if whole_file else byte)
    fix = fix or (f"declare the file's encoding in the config, e.g. '{what}: {{path: ..., encoding: big5}}' "
                  "(any Python codec name)")
    raise EncodingError(f"{path}: text that is neither UTF-8 nor GBK/GB18030 ({first} is not UTF-8); {fix}")


def detect_encoding(data: bytes) -> str | None:
    """The rule above applied to bytes in memory: 'utf-8-sig', 'utf-8', 'gb18030' or None."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in DETECTED:
        try:
            data.decode(encoding)
            return encoding
        except UnicodeDecodeError:
            pass
    return None


# --- dBASE (.dbf) tables of Shapefiles -------------------------------------------------------

def dbf_text_chunks(dbf: Path) -> Callable[[], Iterator[bytes]]:
    """The text of a dBASE table: its field names, then its records (deleted flags and
    numbers included: they are ASCII), in chunks; the binary header is skipped."""
    def chunks():
        with open(dbf, "rb") as fh:
            head = fh.read(32)
            if len(head) < 32:
                return
            header_len = int.from_bytes(head[8:10], "little")
            record_len = int.from_bytes(head[10:12], "little")
            count = int.from_bytes(head[4:8], "little")
            descriptors = fh.read(max(0, header_len - 32))
            # 32-byte field descriptors up to the 0x0D terminator; names are the first 11 bytes
            names = b" ".join(descriptors[i:i + 11].split(b"\0", 1)[0]
                              for i in range(0, len(descriptors) - 31, 32) if descriptors[i] != 0x0D)
            yield names + b"\n"
            fh.seek(header_len)
            left = count * record_len
            while left > 0 and (block := fh.read(min(CHUNK_BYTES, left))):
                left -= len(block)
                yield block
    return chunks


def dbf_language_driver(dbf: Path) -> int:
    """The dBASE language driver id (byte 29 of the header; 0: none), which names a code
    page that GDAL uses when a Shapefile has no .cpg."""
    with open(dbf, "rb") as fh:
        head = fh.read(32)
    return head[29] if len(head) >= 30 else 0


def shapefile_encoding(shp: Path, declared: str | None, what: str) -> str | None:
    """The encoding pyogrio should decode a Shapefile's attributes with.

    A declared encoding wins; a ``.cpg`` beside the file is left to GDAL (None);
    else the DBF's field names and records are decoded by the rule above. Where
    they are neither UTF-8 nor GB18030 but the DBF names a code page in its header
    (language driver id), GDAL's reading of that code page is kept (None).
    """
    if declared is not None:
        return declared
    dbf = next((shp.with_suffix(s) for s in (".dbf", ".DBF") if shp.with_suffix(s).is_file()), None)
    if dbf is None or any(shp.with_suffix(s).is_file() for s in (".cpg", ".CPG")):
        return None
    try:
        return scan_text(dbf, None, what, dbf_text_chunks(dbf)).encoding
    except EncodingError:
        if dbf_language_driver(dbf) != 0:
            return None
        raise


def text_file_encoding(path: Path, declared: str | None, what: str, fix: str | None = None) -> str:
    """The encoding of a text input (CSV, GeoJSON): declared, or detected."""
    return scan_text(path, declared, what, fix=fix).encoding
