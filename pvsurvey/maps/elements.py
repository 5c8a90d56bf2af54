"""folium elements of the maps: class-styled GeoJSON, clustered points, HTML controls.

Each layer embeds its features once as compact GeoJSON text and styles them in
the browser with one style table per layer, looked up by a class code in the
feature's properties; tooltips and popups are built by JavaScript functions only
when opened. No Python callback runs per feature.
"""

from __future__ import annotations

import json

from branca.element import Element, MacroElement
from folium.map import Layer
from folium.template import Template


def _js_json(value) -> str:
    """JSON for a value embedded in a script (HTML-safe)."""
    from .data import html_safe_json

    return html_safe_json(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


class RawHtml(Element):
    """HTML put into the page as given (built by pvsurvey, text already escaped)."""

    _template = Template("{{ this.html }}")

    def __init__(self, html: str):
        super().__init__()
        self._name = "RawHtml"
        self.html = html


class ClassGeoJson(Layer):
    """A GeoJSON layer styled by a class code in each feature's properties.

    Parameters
    ----------
    data_json : str
        HTML-safe FeatureCollection text (see :func:`pvsurvey.maps.data.feature_collection_json`).
    styles : list of dict
        Leaflet path options per class code (``styles[code]``).
    class_key : str
        Property holding the class code.
    name : str
        Name in the layer control (escaped HTML).
    tooltip, popup : str, optional
        Names of JavaScript functions ``f(layer) -> html`` defined by the page.
    point_radius_key : str, optional
        Draw point features as circle markers with this property as radius [px].
    interactive : bool
        Whether features react to the mouse.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.geoJson({{ this.data_json }}, {
            style: (function (styles) {
                return function (f) { return styles[f.properties.{{ this.class_key }}] || styles[0]; };
            })({{ this.styles_json }}),
            {%- if this.point_radius_key %}
            pointToLayer: function (f, latlng) {
                return L.circleMarker(latlng, {radius: f.properties.{{ this.point_radius_key }}});
            },
            {%- endif %}
            onEachFeature: function (f, layer) {
                {%- if this.tooltip %}
                layer.bindTooltip({{ this.tooltip }}, {sticky: true});
                {%- endif %}
                {%- if this.popup %}
                layer.bindPopup({{ this.popup }}, {maxWidth: 380});
                {%- endif %}
            },
            interactive: {{ this.interactive|tojson }}
        });
        {% endmacro %}
        """)

    def __init__(self, data_json: str, styles: list[dict], class_key: str = "c", name: str | None = None,
                 tooltip: str | None = None, popup: str | None = None, point_radius_key: str | None = None,
                 interactive: bool = True, show: bool = True, control: bool = True):
        super().__init__(name=name, overlay=True, control=control, show=show)
        self._name = "ClassGeoJson"
        self.data_json = data_json
        self.styles_json = _js_json(styles)
        self.class_key = class_key
        self.tooltip = tooltip
        self.popup = popup
        self.point_radius_key = point_radius_key
        self.interactive = interactive


class ClusteredGeoJson(ClassGeoJson):
    """Point features as circle markers inside a Leaflet.markercluster group."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.markerClusterGroup({
            showCoverageOnHover: false, maxClusterRadius: 40,
            // small cluster icons, so that the parks under them stay visible
            iconCreateFunction: function (cluster) {
                return L.divIcon({html: "<div><span>" + cluster.getChildCount() + "</span></div>",
                                  className: "marker-cluster pvs-cluster", iconSize: L.point(26, 26)});
            }
        });
        {{ this.get_name() }}.addLayer(L.geoJson({{ this.data_json }}, {
            pointToLayer: (function (styles) {
                return function (f, latlng) {
                    var style = Object.assign({}, styles[f.properties.{{ this.class_key }}] || styles[0]);
                    style.radius = f.properties.{{ this.point_radius_key }};
                    return L.circleMarker(latlng, style);
                };
            })({{ this.styles_json }}),
            onEachFeature: function (f, layer) {
                {%- if this.tooltip %}
                layer.bindTooltip({{ this.tooltip }});
                {%- endif %}
                {%- if this.popup %}
                layer.bindPopup({{ this.popup }}, {maxWidth: 380});
                {%- endif %}
            }
        }));
        {% endmacro %}
        """)


class HtmlControl(MacroElement):
    """A Leaflet control holding HTML built by pvsurvey (panels, legends).

    Parameters
    ----------
    html : str
        Content; every text from data already escaped.
    position : str
        'topleft', 'topright', 'bottomleft' or 'bottomright'.
    css_class : str
        Class of the control's container.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var control = L.control({position: {{ this.position|tojson }}});
            control.onAdd = function () {
                var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
                div.innerHTML = {{ this.html_json }};
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            control.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """)

    def __init__(self, html: str, position: str = "topright", css_class: str = "pvs-panel"):
        super().__init__()
        self._name = "HtmlControl"
        self.html_json = _js_json(html)
        self.position = position
        self.css_class = css_class
