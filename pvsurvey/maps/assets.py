"""The JavaScript and CSS the maps load, vendored in ``static/`` for offline maps.

Every asset is a file of a pinned npm package (``npm pack <name>@<version>``, see
``static/README.md``). Online maps load the same bytes from the jsDelivr CDN with
a subresource-integrity hash computed from the vendored copy, so a tampered CDN
file is refused by the browser; offline maps load them from ``lib/`` beside the
HTML (the writer copies :func:`asset_files` there).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Folder, relative to the HTML files, that offline maps load their assets from.
OFFLINE_PREFIX = "lib"
CDN = "https://cdn.jsdelivr.net/npm"


@dataclass(frozen=True)
class Package:
    """One vendored npm package.

    Parameters
    ----------
    name, version : str
        npm package name and pinned version.
    folder : str
        Folder under ``static/`` holding the vendored files.
    cdn_dir : str
        Folder of the files inside the npm package ('' for its root).
    js, css : tuple of str
        Files loaded by the maps, in load order.
    extra : tuple of str
        Files the CSS refers to (images) and the licence.
    """

    name: str
    version: str
    folder: str
    cdn_dir: str
    js: tuple[str, ...] = ()
    css: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    def files(self) -> tuple[str, ...]:
        return self.js + self.css + self.extra


LEAFLET = Package("leaflet", "1.9.4", "leaflet-1.9.4", "dist", js=("leaflet.js",), css=("leaflet.css",),
                  extra=("images/layers.png", "images/layers-2x.png", "images/marker-icon.png",
                         "images/marker-icon-2x.png", "images/marker-shadow.png", "LICENSE"))
MARKERCLUSTER = Package("leaflet.markercluster", "1.5.3", "leaflet.markercluster-1.5.3", "dist",
                        js=("leaflet.markercluster.js",),
                        css=("MarkerCluster.css", "MarkerCluster.Default.css"), extra=("MIT-LICENCE.txt",))
FULLSCREEN = Package("leaflet.fullscreen", "3.0.2", "leaflet.fullscreen-3.0.2", "",
                     js=("Control.FullScreen.js",), css=("Control.FullScreen.css",),
                     extra=("icon-fullscreen.svg", "LICENSE"))
PACKAGES = (LEAFLET, MARKERCLUSTER, FULLSCREEN)


@functools.lru_cache(maxsize=None)
def _integrity(path: Path) -> str:
    digest = hashlib.sha384(path.read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


def asset_files(packages=PACKAGES) -> list[tuple[Path, str]]:
    """Vendored files as (absolute source path, path relative to the maps folder)."""
    return [(STATIC_DIR / p.folder / f, f"{OFFLINE_PREFIX}/{p.folder}/{f}") for p in packages for f in p.files()]


def _url(package: Package, file: str, offline: bool) -> str:
    if offline:
        return f"{OFFLINE_PREFIX}/{package.folder}/{file}"
    inner = f"{package.cdn_dir}/{file}" if package.cdn_dir else file
    return f"{CDN}/{package.name}@{package.version}/{inner}"


def asset_tags(packages=PACKAGES, offline: bool = False) -> str:
    """``<link>`` and ``<script>`` tags for the packages' CSS and JS, in load order.

    Online tags carry ``integrity`` (SHA-384 of the vendored file) and
    ``crossorigin``; offline tags point into ``lib/`` beside the HTML.
    """
    lines = []
    for package in packages:
        for file in package.css:
            url = html.escape(_url(package, file, offline))
            sri = "" if offline else f' integrity="{_integrity(STATIC_DIR / package.folder / file)}" crossorigin="anonymous"'
            lines.append(f'<link rel="stylesheet" href="{url}"{sri}/>')
    for package in packages:
        for file in package.js:
            url = html.escape(_url(package, file, offline))
            sri = "" if offline else f' integrity="{_integrity(STATIC_DIR / package.folder / file)}" crossorigin="anonymous"'
            lines.append(f'<script src="{url}"{sri}></script>')
    return "\n".join(lines)
