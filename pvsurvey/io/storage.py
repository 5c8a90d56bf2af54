"""Where inputs live: a local (or shared) path, or an fsspec URL on object storage.

A location is a :class:`pathlib.Path` or, for ``s3://``, ``gs://``, ``az://``,
``abfs://``, ``http(s)://`` and any other fsspec protocol, the URL string kept
verbatim (``Path`` would fold its ``//``). Credentials and endpoints come from
the environment of every process that reads — the client and each Dask worker —
the way each protocol's package looks for them (``AWS_ACCESS_KEY_ID``,
``AWS_ENDPOINT_URL``, ``~/.aws``; ``GOOGLE_APPLICATION_CREDENTIALS``;
``AZURE_STORAGE_*``) or from fsspec's own config (``FSSPEC_S3_*`` variables,
``~/.config/fsspec/``), never from the survey config, so no secret sits in a
YAML file or a run manifest.

Big inputs are read in place with ranged requests: GeoParquet footprints row
group by row group (pyarrow over fsspec) and rasters window by window (GDAL
through rasterio's ``opener``). Small ones (parks, registry, weather) are
copied to a temporary file and read by the same readers as local files.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..locations import Location, is_url, name_of
from ..errors import InputFileError, PVSurveyError

# The end of every message about a store that could not be reached
STORE_HINT = "check the credentials and endpoint in the environment (e.g. AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL)"










def filesystem(url: str):
    """The fsspec filesystem serving ``url`` and the path inside it.

    Raises
    ------
    InputFileError
        The protocol's package is not installed (e.g. s3fs for ``s3://``).
    """
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InputFileError(f"{url}: cannot open this kind of URL ({exc})") from None


def _reach(url: str, action):
    """Run ``action(fs, path)``; failures of the store (credentials, network) become one line."""
    fs, path = filesystem(url)
    try:
        return action(fs, path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # botocore/aiohttp/google errors: no common base class
        raise InputFileError(f"{url}: cannot reach it ({type(exc).__name__}: {exc}); {STORE_HINT}") from None


def is_file(loc: Location) -> bool:
    if not is_url(loc):
        return Path(loc).is_file()
    try:
        return bool(_reach(loc, lambda fs, path: fs.isfile(path)))
    except FileNotFoundError:
        return False


def identity(loc: Location) -> dict:
    """What identifies the stored bytes of an object: size, modification time and ETag where the store gives one.

    For object storage this stands in for a content hash: reading a
    ten-gigabyte object to hash it would cost the client more than the survey.
    """
    info = _reach(loc, lambda fs, path: fs.info(path))
    modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or info.get("updated")
    if isinstance(modified, dt.datetime):
        modified = modified.astimezone(dt.timezone.utc).isoformat()
    elif isinstance(modified, (int, float)):
        modified = dt.datetime.fromtimestamp(modified, dt.timezone.utc).isoformat()
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("generation")
    return {"size_bytes": int(info.get("size") or 0), "modified": None if modified is None else str(modified),
            "etag": None if tag is None else str(tag).strip('"')}


def identity_digest(loc: Location) -> str:
    """SHA-256 of an object's location and :func:`identity`."""
    ident = identity(loc)
    text = "|".join([str(loc), str(ident["size_bytes"]), str(ident["modified"]), str(ident["etag"])])
    return hashlib.sha256(text.encode()).hexdigest()


PARQUET_SUFFIXES = (".parquet", ".geoparquet")


def parquet_files(path: Location) -> list[Location] | None:
    """The Parquet files of a folder or object-storage prefix (a footprints folder,
    a run's dataset), in name order
    (sub-folders included; files and folders whose names start with '.' or '_'
    skipped, as Spark and Hive writers mark their bookkeeping, and as pyarrow
    skips them); None when ``path`` is not a folder."""
    def wanted(relative: str) -> bool:
        names = relative.split("/")
        return names[-1].lower().endswith(PARQUET_SUFFIXES) and not any(n.startswith((".", "_")) for n in names)

    if is_url(path):
        if path.lower().startswith(("http://", "https://")):
            return None  # HTTP has no folders (fsspec would download the file to look for links)
        fs, root = filesystem(path)
        try:
            if not fs.isdir(root):
                return None
            found = fs.find(root)
        except Exception:  # an unreachable store is reported by the existence check that follows
            return None
        root = root.rstrip("/") + "/"
        return [fs.unstrip_protocol(f) for f in sorted(found) if wanted(f[len(root):])]
    folder = Path(path)
    if not folder.is_dir():
        return None
    return sorted((f for f in folder.rglob("*") if f.is_file() and wanted(f.relative_to(folder).as_posix())),
                  key=lambda f: f.as_posix())


# Bytes an object-store file reads ahead of each raster read: enough for the TIFF
# header's small reads and a tile, where fsspec's default (50 MB for s3fs) would
# fetch 50 MB for every window of a 1 m raster.
RASTER_READAHEAD_BYTES = 1 << 20


def parquet_file(loc: Location):
    """A ``pyarrow.parquet.ParquetFile`` reading with ranged requests when ``loc`` is a URL.

    pyarrow reads the footer and then each column chunk of the row groups asked
    for in one read each, so the file is opened without read-ahead: one request
    per column chunk, no byte fetched twice.
    """
    import pyarrow.parquet as pq

    if not is_url(loc):
        return pq.ParquetFile(loc)
    return _reach(loc, lambda fs, path: pq.ParquetFile(fs.open(path, "rb", cache_type="none")))


class _RasterOpener:
    """What rasterio's ``opener`` needs of a filesystem, with a small read-ahead."""

    def __init__(self, fs):
        self.fs = fs

    def open(self, path, mode="rb"):
        return self.fs.open(path, mode, cache_type="readahead", block_size=RASTER_READAHEAD_BYTES)

    def __getattr__(self, name):  # isdir, isfile, ls, mtime, size
        return getattr(self.fs, name)


def open_raster(loc: Location):
    """``rasterio.open`` for a path or URL; GDAL reads the windows it needs through fsspec.

    A south-up raster (a positive pixel height, common in GeoTIFFs converted from
    NetCDF) comes back as a north-up view of itself (:func:`_north_up`): every
    reader here (windows, bounds, samples, the maps) assumes north-up, and the view
    holds the same pixels on the same grid, turned over."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():  # the reader refuses a raster without a CRS in its own line
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        if not is_url(loc):
            src = rasterio.open(loc)
        else:
            fs, _ = filesystem(loc)
            src = rasterio.open(loc, opener=_RasterOpener(fs))
    t = src.transform
    if t.e > 0 and t.b == 0 and t.d == 0 and src.crs is not None:  # (no CRS: identity, refused by the reader)
        try:
            return _north_up()(src)
        except Exception:
            src.close()
            raise
    return src


@functools.lru_cache(maxsize=1)
def _north_up():
    """The class of :func:`open_raster`'s north-up views: GDAL's warped VRT of the
    south-up dataset (nearest neighbour, onto the same grid turned over), closing the
    dataset with itself."""
    from rasterio.vrt import WarpedVRT

    class NorthUp(WarpedVRT):
        def close(self):
            try:
                super().close()
            finally:
                self.src_dataset.close()

    return NorthUp


@contextmanager
def local_copy(loc: Location) -> Iterator[Path]:
    """A local path holding ``loc``'s bytes for the life of the block (the path itself when local)."""
    if not is_url(loc):
        yield Path(loc)
        return
    with tempfile.TemporaryDirectory(prefix="pvsurvey-") as tmp:
        target = Path(tmp) / (name_of(loc) or "input")

        def fetch(fs, path):
            with fs.open(path, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)

        _reach(loc, fetch)
        try:
            yield target
        except PVSurveyError as exc:  # name the URL, not the temporary copy
            raise type(exc)(str(exc).replace(str(target), loc)) from None
