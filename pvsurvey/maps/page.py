"""What every map page shares: options, base maps, assets, CSS and the popup scripts."""

from __future__ import annotations

import html
import re
import urllib.parse
from dataclasses import dataclass

import folium
from folium import plugins

from ..columns import unit
from .text import known, label
from ..errors import ConfigError, PVSurveyError
from .assets import PACKAGES, asset_tags
from .data import STATUSES
from .elements import RawHtml, _js_json

LANGS = ("zh", "en")
TILES = ("osm", "tianditu", "gaode", "none")

# Fill colours of building statuses (has PV, candidate, below minimum, unsuitable).
STATUS_COLOURS = ("#1a9850", "#f46d43", "#fee08b", "#bdbdbd")
CANDIDATE_OUTLINE = "#2166ac"
# Candidate markers and their clusters on the overview: purple, apart from the ratio scale.
MARKER_COLOUR = "#6a3d9a"
# Deepest zoom of every map; tile servers with less detail are upscaled.
MAX_ZOOM = 19


@dataclass(frozen=True)
class MapOptions:
    """How the maps look.

    Parameters
    ----------
    lang : {'zh', 'en'}
        Language of every label.
    tiles : {'osm', 'tianditu', 'gaode', 'none'}
        Base map. Gaode tiles are in GCJ-02: overlays are shifted to it when drawn.
    offline : bool
        Load Leaflet and plugins from ``lib/`` beside the HTML instead of the CDN.
    tianditu_key : str, optional
        Browser key of the Tianditu (天地图) tile service; needed for ``tiles='tianditu'``.
    """

    lang: str = "zh"
    tiles: str = "osm"
    offline: bool = True  # as the config schema: intranet browsers often cannot reach a CDN
    tianditu_key: str | None = None

    def __post_init__(self):
        if self.lang not in LANGS:
            raise ConfigError(f"maps.lang: '{self.lang}' is not a map language; use zh or en")
        if self.tiles not in TILES:
            raise ConfigError(f"maps.tiles: '{self.tiles}' is not a base map; use {', '.join(TILES)}")
        if self.tiles == "tianditu" and not (self.tianditu_key or "").strip():
            raise ConfigError("maps.tiles is 'tianditu' but there is no Tianditu key: set maps.tianditu_key in the "
                              "config or the environment variable TIANDITU_KEY (a browser key from console.tianditu.gov.cn)")

    @property
    def gcj02(self) -> bool:
        """Whether drawn overlays are shifted WGS84 → GCJ-02 (Gaode tiles)."""
        return self.tiles == "gaode"

    @property
    def locale(self) -> str:
        return "zh-CN" if self.lang == "zh" else "en-US"


def text(name: str, options: MapOptions, with_unit: bool = False) -> str:
    """HTML-escaped label of a registered name; ``map_<name>`` stands in for names
    (project_id, notes, …) another module may not have registered."""
    key = name if known(name) or not known(f"map_{name}") else f"map_{name}"
    return html.escape(label(key, options.lang, with_unit))


def state_label(value, options: MapOptions) -> str:
    """Label of a PV or candidate status value (``connected``, ``agreed``…); unknown values escaped as given."""
    key = f"map_state_{value}"
    return text(key, options) if known(key) else html.escape(str(value))


def tile_layers(options: MapOptions) -> list[folium.TileLayer]:
    """Base-map tile layers (none for ``tiles='none'``).

    Tianditu (天地图) and OpenStreetMap are WGS84/CGCS2000 web-Mercator tiles;
    Gaode (高德) tiles are GCJ-02 and need the overlays shifted.
    """
    if options.tiles == "osm":
        return [folium.TileLayer(
            tiles="https://tile.openstreetmap.org/{z}/{x}/{y}.png", name="OpenStreetMap", max_zoom=MAX_ZOOM,
            attr='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
            control=False)]
    if options.tiles == "tianditu":
        key = urllib.parse.quote(options.tianditu_key.strip(), safe="")
        attr = '&copy; <a href="https://www.tianditu.gov.cn/">天地图 Tianditu</a>'

        def wmts(layer: str) -> str:
            return (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                    f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                    f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}")

        notes = "cva" if options.lang == "zh" else "eva"  # Chinese or English annotation
        return [folium.TileLayer(tiles=wmts("vec"), attr=attr, name="天地图", subdomains="01234567",
                                 max_zoom=MAX_ZOOM, max_native_zoom=18, control=False),
                folium.TileLayer(tiles=wmts(notes), attr=attr, name="天地图注记", subdomains="01234567",
                                 max_zoom=MAX_ZOOM, max_native_zoom=18, overlay=True, control=False)]
    if options.tiles == "gaode":
        lang = "zh_cn" if options.lang == "zh" else "en"
        return [folium.TileLayer(
            tiles=f"https://webrd0{{s}}.is.autonavi.com/appmaptile?lang={lang}&size=1&scale=1&style=8&x={{x}}&y={{y}}&z={{z}}",
            attr='&copy; <a href="https://www.amap.com/">高德地图 AutoNavi</a> (GCJ-02)', name="高德地图",
            subdomains="1234", max_zoom=MAX_ZOOM, max_native_zoom=18, control=False)]
    return []


_CSS = """
.leaflet-container { font-family: system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei",
  "Noto Sans CJK SC", sans-serif; }
.pvs-none .leaflet-container, .leaflet-container.pvs-blank { background: #f2f2ef; }
.pvs-panel { background: rgba(255,255,255,.95); padding: 8px 10px; border-radius: 6px; max-width: 360px;
  max-height: 70vh; overflow-y: auto; box-shadow: 0 1px 5px rgba(0,0,0,.4); font-size: 13px; line-height: 1.35; }
.pvs-panel h1 { font-size: 15px; margin: 0 0 4px; }
.pvs-panel h2 { font-size: 13px; margin: 8px 0 3px; }
.pvs-panel .pvs-sub { color: #555; font-size: 12px; }
.pvs-panel table { border-collapse: collapse; width: 100%; }
.pvs-panel th, .pvs-panel td { text-align: left; padding: 1px 4px; vertical-align: top; }
.pvs-panel td.n, .pvs-panel th.n { text-align: right; white-space: nowrap; }
.pvs-plan { border-top: 1px solid #ddd; padding-top: 4px; margin-top: 4px; }
.pvs-plan:first-child { border-top: none; margin-top: 0; }
.pvs-bar { position: relative; height: 10px; background: #e6e6e6; border-radius: 5px; margin: 2px 0 4px; }
.pvs-bar span { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 5px; background: #1a9850; }
.pvs-bar i { position: absolute; top: -2px; bottom: -2px; width: 2px; background: #333; }
.pvs-key { display: inline-block; width: 14px; height: 12px; margin-right: 5px; vertical-align: -1px;
  border: 1px solid #777; }
.pvs-ramp { height: 10px; border: 1px solid #777; }
.pvs-waterfall { display: block; margin: 2px 0; overflow: visible; }
.pvs-waterfall text { font-size: 11px; fill: #222; }
.pvs-pop-title { font-weight: 600; margin-bottom: 4px; font-size: 14px; }
table.pvs-pop { border-collapse: collapse; font-size: 12.5px; }
table.pvs-pop th { text-align: left; font-weight: normal; color: #555; padding: 1px 8px 1px 0; vertical-align: top; }
table.pvs-pop td { padding: 1px 0; }
.marker-cluster.pvs-cluster { background-color: rgba(106,61,154,.3); border-radius: 13px; }
.marker-cluster.pvs-cluster div { width: 20px; height: 20px; margin: 3px; border-radius: 10px;
  background-color: rgba(106,61,154,.85); color: #fff; font-size: 11px; line-height: 20px; }
.marker-cluster.pvs-cluster span { line-height: 20px; }
"""

_JS = """
function pvsNum(v, d) {
  if (v === null || v === undefined || v === "" || !isFinite(v)) return "\\u2014";
  return Number(v).toLocaleString(PVS.locale, {minimumFractionDigits: d, maximumFractionDigits: d});
}
function pvsVal(v, d, u) { var s = pvsNum(v, d); return s === "\\u2014" ? s : s + (u ? " " + u : ""); }
function pvsPct(v) { return (v === null || v === undefined || !isFinite(v)) ? "\\u2014" : pvsNum(100 * v, 1) + " %"; }
function pvsPayback(p) { if (p === null || p === undefined) return null; return p < 0 ? "\\u221e" : pvsVal(p, 1, PVS.u.yr); }
function pvsTable(title, rows) {
  var h = title ? '<div class="pvs-pop-title">' + title + '</div>' : '';
  h += '<table class="pvs-pop">';
  for (var i = 0; i < rows.length; i++) {
    var v = rows[i][1];
    if (v === null || v === undefined || v === "") continue;
    h += '<tr><th>' + rows[i][0] + '</th><td>' + v + '</td></tr>';
  }
  return h + '</table>';
}
function pvsLink(href, text) { return href ? '<a href="' + href + '">' + text + '</a>' : null; }
function pvsBuildingTooltip(layer) {
  var p = layer.feature.properties;
  return '<b>' + (p.n || p.i) + '</b><br>' + pvsVal(p.k, 0, PVS.u.kwp) + ' \\u00b7 ' + PVS.status[p.c];
}
function pvsBuildingPopup(layer) {
  var p = layer.feature.properties, l = PVS.l, u = PVS.u;
  return pvsTable(p.n || p.i, [
    [l.building_id, p.i], [l.owner, p.o], [l.map_status, PVS.status[p.c]],
    [l.usable_area_m2, pvsVal(p.a, 0, u.m2)], [l.capacity_kwp, pvsVal(p.k, 1, u.kwp)],
    [l.annual_yield_kwh, pvsVal(p.y, 0, u.kwh)], [l.specific_yield_kwh_per_kwp, pvsVal(p.s, 0, u.sy)],
    [l.simple_payback_yr, pvsPayback(p.p)],
    [l.installed_kwp, p.w ? pvsVal(p.w, 1, u.kwp) : null], [l.pv_status, p.v],
    [l.project_id, p.j], [l.candidate_status, p.q], [l.notes, p.x]]);
}
function pvsProjectTooltip(layer) {
  var p = layer.feature.properties;
  return '<b>' + (p.n || p.o || p.j || '') + '</b><br>' + pvsVal(p.k, 0, PVS.u.kwp);
}
function pvsProjectPopup(layer) {
  var p = layer.feature.properties, l = PVS.l, u = PVS.u;
  return pvsTable(p.n || p.o || p.j, [
    [l.project_id, p.j], [l.owner, p.o], [l.park_name, p.pn], [l.district, p.d],
    [l.usable_area_m2, pvsVal(p.a, 0, u.m2)], [l.capacity_kwp, pvsVal(p.k, 1, u.kwp)],
    [l.annual_yield_kwh, pvsVal(p.y, 0, u.kwh)], [l.specific_yield_kwh_per_kwp, pvsVal(p.s, 0, u.sy)],
    [l.simple_payback_yr, pvsPayback(p.p)], [l.lcoe_cny_per_kwh, pvsVal(p.lc, 3, u.lcoe)],
    [l.candidate_status, p.q], [l.notes, p.x], ['', pvsLink(p.h, l.open_park_map)]]);
}
function pvsParkTooltip(layer) {
  var p = layer.feature.properties;
  return '<b>' + p.n + '</b><br>' + PVS.l.install_ratio_area_frac + ': ' + pvsPct(p.r);
}
function pvsParkPopup(layer) {
  var p = layer.feature.properties, l = PVS.l, u = PVS.u;
  return pvsTable(p.n, [
    [l.park_id, p.i], [l.district, p.d], [l.building_count, pvsNum(p.nb, 0)],
    [l.usable_area_m2, pvsVal(p.a, 0, u.m2)], [l.capacity_kwp, pvsVal(p.k, 0, u.kwp)],
    [l.annual_yield_kwh, pvsVal(p.y, 0, u.kwh)],
    [l.install_ratio_area_frac, p.r === null || p.r === undefined ? null : pvsPct(p.r) + ' / ' + pvsPct(p.t)],
    [l.installed_kwp, pvsVal(p.w, 0, u.kwp)], [l.new_kwp_since_baseline, pvsVal(p.g, 0, u.kwp)],
    [l.remaining_potential_kwp, pvsVal(p.m, 0, u.kwp)], ['', pvsLink(p.h, l.open_park_map)]]);
}
"""

_LABELS = ("building_id", "name", "owner", "map_status", "usable_area_m2", "capacity_kwp", "annual_yield_kwh",
           "specific_yield_kwh_per_kwp", "simple_payback_yr", "installed_kwp", "pv_status", "project_id",
           "candidate_status", "notes", "park_id", "park_name", "district", "lcoe_cny_per_kwh", "building_count",
           "install_ratio_area_frac", "new_kwp_since_baseline", "remaining_potential_kwp", "open_park_map")


def page_config(options: MapOptions) -> dict:
    """The ``PVS`` object the popup scripts read: locale, labels, units, status names."""
    return {
        "locale": options.locale,
        "l": {name: text(name, options) for name in _LABELS},
        "u": {"m2": unit("usable_area_m2"), "kwp": unit("capacity_kwp"), "kwh": unit("annual_yield_kwh"),
              "sy": unit("specific_yield_kwh_per_kwp"), "yr": unit("simple_payback_yr") or "yr",
              "lcoe": unit("lcoe_cny_per_kwh") or "CNY/kWh"},
        "status": [text(f"map_status_{s}", options) for s in STATUSES],
    }


def new_map(options: MapOptions, title: str, bounds) -> folium.Map:
    """An empty map page: base map, assets, styles, scripts, scale and fullscreen controls.

    Parameters
    ----------
    options : MapOptions
    title : str
        Page title (plain text; escaped here).
    bounds : sequence
        ``[[south, west], [north, east]]`` [°] to fit, as drawn (GCJ-02 for Gaode).
    """
    m = folium.Map(location=[(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2],
                   zoom_start=12, tiles=None, control_scale=True)
    # the map's own zoom range (marker clustering needs it even without tiles)
    m.options["max_zoom"] = MAX_ZOOM
    # every script and style comes from pvsurvey's pinned asset list, not folium's defaults
    m.default_js, m.default_css = [], []
    for layer in tile_layers(options):
        layer.add_to(m)
    root = m.get_root()
    root.title = html.escape(title)
    root.header.add_child(RawHtml(asset_tags(PACKAGES, offline=options.offline)), name="pvs_assets")
    root.header.add_child(RawHtml(f"<style>{_CSS}</style>"), name="pvs_css")
    root.header.add_child(RawHtml(f"<script>var PVS = {_js_json(page_config(options))};\n{_JS}</script>"),
                          name="pvs_js")
    fullscreen = plugins.Fullscreen(position="topleft", title=label("map_fullscreen", options.lang),
                                    title_cancel=label("map_exit_fullscreen", options.lang))
    fullscreen.default_js, fullscreen.default_css = [], []
    fullscreen.add_to(m)
    m.fit_bounds(bounds)
    return m


_EXTERNAL = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]+""",
                       re.IGNORECASE)
_CSS_EXTERNAL = re.compile(r"""(?:@import|url\()\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def external_references(page: str) -> list[str]:
    """Scripts, styles, fonts or images a page would load from the network (tiles excepted)."""
    return _EXTERNAL.findall(page) + _CSS_EXTERNAL.findall(page)


def render(m: folium.Map, options: MapOptions) -> str:
    """The map as one HTML page.

    Raises
    ------
    PVSurveyError
        An offline page would load something from the network (a bug).
    """
    page = m.get_root().render()
    page = page.replace("<html>", f'<html lang="{"zh-CN" if options.lang == "zh" else "en"}">', 1)
    if options.tiles == "none":
        page = page.replace('class="folium-map"', 'class="folium-map pvs-blank"', 1)
    if options.offline:
        found = external_references(page)
        if found:
            raise PVSurveyError(f"internal error: an offline map would load {found[0]!r} from the network")
    return page
