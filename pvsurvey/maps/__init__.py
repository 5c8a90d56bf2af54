"""Interactive maps of a survey: the city overview and one map per park.

Pure builders: they take data frames and return ``folium.Map`` objects (or HTML
text via :func:`render`); the only files they touch are the vendored Leaflet
assets in ``static/``. Reading a run directory and writing the HTML is
:mod:`pvsurvey.tools.map_writer`'s job.

- :func:`build_overview_map` — parks coloured by installation ratio against the
  target (stepped scale, legend), the city's progress toward the ratio and
  new-capacity targets, districts, the largest candidates as clustered markers,
  links to the park maps.
- :func:`build_park_map` — buildings coloured by status (has PV / candidate /
  below minimum / unsuitable) with tooltip and popup, candidate projects, the
  irradiance raster, layer control, fullscreen and scale.

Text from data is HTML-escaped before it reaches a popup, tooltip or panel;
overlays are shifted to GCJ-02 only for Gaode tiles; offline pages load nothing
but tiles from the network.
"""

from .assets import PACKAGES, asset_files, asset_tags
from .data import STATUSES, building_status, escape_text, park_file_name
from .overview import TOP_CANDIDATES, build_overview_map, candidate_points
from .page import LANGS, TILES, MapOptions, external_references, render
from .park import IrradianceGrid, build_park_map

__all__ = [
    "PACKAGES", "asset_files", "asset_tags", "STATUSES", "building_status", "escape_text", "park_file_name",
    "TOP_CANDIDATES", "build_overview_map", "candidate_points", "LANGS", "TILES", "MapOptions",
    "external_references", "render", "IrradianceGrid", "build_park_map",
]
