"""HTML of the panels and legends, rendered by Jinja with autoescaping.

Every value from data reaches the page through ``{{ }}`` and is escaped there;
labels come from the column registry (:func:`pvsurvey.columns.label`).
"""

from __future__ import annotations

import math

import jinja2
from markupsafe import Markup

from ..columns import WATERFALL_COLUMNS, WATERFALL_STEPS
from .text import label

_ENV = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt_num(value, digits: int = 0) -> str:
    """Number with thousands separators, or an em dash when missing."""
    return f"{float(value):,.{digits}f}" if _finite(value) else "\u2014"


def fmt_pct(value, digits: int = 1) -> str:
    """A fraction [0..1] as percent, or an em dash when missing."""
    return f"{100 * float(value):,.{digits}f} %" if _finite(value) else "\u2014"


def bar_pct(value, scale: float = 1.0) -> float:
    """Width [%] of a progress bar for ``value`` out of ``scale``, clipped to 0–100."""
    if not _finite(value) or not scale:
        return 0.0
    return round(max(0.0, min(100.0, 100.0 * float(value) / scale)), 1)


def divide(value, by: float):
    """``value / by``, None when the value is missing."""
    return float(value) / by if _finite(value) else None


_ENV.filters.update(num=fmt_num, pct=fmt_pct, div=divide)
_ENV.globals.update(bar_pct=bar_pct, finite=_finite)

PROGRESS = _ENV.from_string("""
{% if progress %}
<div>{{ t('install_ratio_area_frac') }}: <b>{{ progress.install_ratio_area_frac|pct }}</b>
  / {{ t('map_target') }} {{ progress.target_install_ratio|pct(0) }}</div>
<div class="pvs-bar"><span style="width: {{ bar_pct(progress.install_ratio_area_frac, bar_scale) }}%"></span><i style="left: {{ bar_pct(progress.target_install_ratio, bar_scale) }}%"></i></div>
{% if finite(progress.install_ratio_count_frac) %}
<div class="pvs-sub">{{ t('install_ratio_count_frac') }}: {{ progress.install_ratio_count_frac|pct }}</div>
{% endif %}
{% if finite(progress.new_capacity_target_kwp) and progress.new_capacity_target_kwp > 0 %}
<div>{{ t('new_kwp_since_baseline') }}: <b>{{ progress.new_kwp_since_baseline|div(1000)|num(1) }} MW</b>
  / {{ t('map_target') }} {{ progress.new_capacity_target_kwp|div(1000)|num(0) }} MW
  ({{ progress.new_capacity_target_share_frac|pct }})</div>
<div class="pvs-bar"><span style="width: {{ bar_pct(progress.new_capacity_target_share_frac) }}%"></span></div>
{% elif finite(progress.new_kwp_since_baseline) %}
<div>{{ t('new_kwp_since_baseline') }}: {{ progress.new_kwp_since_baseline|div(1000)|num(1) }} MW</div>
{% endif %}
<table>
{% if finite(progress.installed_kwp) %}<tr><td>{{ t('installed_kwp') }}</td><td class="n">{{ progress.installed_kwp|div(1000)|num(1) }} MWp</td></tr>{% endif %}
{% if finite(progress.remaining_potential_kwp) %}<tr><td>{{ t('remaining_potential_kwp') }}</td><td class="n">{{ progress.remaining_potential_kwp|div(1000)|num(1) }} MWp</td></tr>{% endif %}
</table>
{% else %}
<div class="pvs-sub">{{ t('map_no_progress') }}</div>
{% endif %}
""")

PLAN = _ENV.from_string("""
<div class="pvs-plan">
<div><b>{{ plan.name }}</b></div>
<div class="pvs-sub">{{ plan.source }} · {{ t('map_plan_baseline') }} {{ plan.baseline_date }} · {{ t('map_plan_deadline') }} {{ plan.deadline }}</div>
{% if plan.status == 'assessed' %}
<div><b>{{ t('map_plan_assessed') }} {{ plan.deadline }}: {{ t('map_plan_met') if plan.outcome == 'met' else t('map_plan_missed') }}</b></div>
{% for line in plan.results %}<div class="pvs-sub">{{ line }}</div>{% endfor %}
{% elif plan.status == 'not_started' %}
<div class="pvs-sub">{{ t('map_plan_not_started') }}</div>
{% elif plan.status %}
<div class="pvs-sub">{{ t('map_plan_in_progress') }} {{ plan.figures_as_of }}</div>
{% endif %}
{{ progress_html }}
</div>
""")

TOTALS = _ENV.from_string("""
<table>
<tr><td>{{ t('building_count') }}</td><td class="n">{{ totals.building_count|num }}</td></tr>
<tr><td>{{ t('usable_area_m2') }}</td><td class="n">{{ totals.usable_area_m2|div(1e6)|num(2) }} km²</td></tr>
<tr><td>{{ t('capacity_kwp') }}</td><td class="n">{{ totals.capacity_kwp|div(1000)|num(1) }} MWp</td></tr>
<tr><td>{{ t('annual_yield_kwh') }}</td><td class="n">{{ totals.annual_yield_kwh|div(1e6)|num(1) }} GWh/yr</td></tr>
</table>
""")

OVERVIEW_PANEL = _ENV.from_string("""
<h1>{{ title }}</h1>
<div class="pvs-sub">{{ survey }} · {{ t('map_generated') }} {{ generated }}</div>
<details open><summary><b>{{ t('map_city_progress') }}</b></summary>
{{ progress_html }}
</details>
<details><summary><b>{{ t('map_survey_totals') }}</b></summary>
{{ totals_html }}
</details>
{% if districts %}
<details><summary><b>{{ t('map_districts') }}</b></summary>
<table>
<tr><th>{{ t('district') }}</th><th class="n">{{ t('map_park_count') }}</th><th class="n">{{ t('capacity_kwp', False) }} (MWp)</th><th class="n">{{ t('install_ratio_area_frac', False) }}</th></tr>
{% for d in districts %}
<tr><td>{{ d.district }}</td><td class="n">{{ d.park_count|num }}</td><td class="n">{{ d.capacity_kwp|div(1000)|num(1) }}</td><td class="n">{{ d.install_ratio_area_frac|pct }}</td></tr>
{% endfor %}
</table>
</details>
{% endif %}
{% if parks %}
<details open><summary><b>{{ t('map_park_maps') }}</b></summary>
<table>
{% for p in parks %}
<tr><td><span class="pvs-key" style="background: {{ p.colour }}"></span>{% if p.href %}<a href="{{ p.href }}">{{ p.park_name }}</a>{% else %}{{ p.park_name }}{% endif %}</td><td>{{ p.district }}</td><td class="n">{{ p.install_ratio_area_frac|pct }}</td></tr>
{% endfor %}
</table>
</details>
{% endif %}
""")

RATIO_LEGEND = _ENV.from_string("""
<b>{{ t('install_ratio_area_frac') }}</b>
{% for colour, text in steps %}
<div><span class="pvs-key" style="background: {{ colour }}"></span>{{ text }}</div>
{% endfor %}
{% if note %}<div class="pvs-sub">{{ note }}</div>{% endif %}
{% if candidates %}<div><span class="pvs-key" style="background: {{ candidate_colour }}; border-radius: 7px"></span>{{ t('map_layer_largest_candidates') }}</div>{% endif %}
""")

PARK_PANEL = _ENV.from_string("""
<h1>{{ park_name }}</h1>
<div class="pvs-sub">{{ district }} · {{ t('park_id') }} {{ park_id }}{% if overview_href %} · <a href="{{ overview_href }}">{{ t('map_back_to_overview') }}</a>{% endif %}</div>
<details open><summary><b>{{ t('map_park_progress') }}</b></summary>
{{ progress_html }}
</details>
<details><summary><b>{{ t('map_survey_totals') }}</b></summary>
{{ totals_html }}
</details>
{% if waterfall_html %}
<details open><summary><b>{{ t('map_waterfall') }}</b></summary>
{{ waterfall_html }}
</details>
{% endif %}
<h2>{{ t('map_status') }}</h2>
<table>
{% for s in statuses %}
<tr><td><span class="pvs-key" style="background: {{ s.colour }}"></span>{{ s.label }}</td><td class="n">{{ s.count|num }}</td><td class="n">{{ s.capacity_kwp|div(1000)|num(1) }} MWp</td></tr>
{% endfor %}
</table>
<div><span class="pvs-key" style="background: transparent; border: 2px dashed {{ candidate_outline }}"></span>{{ t('map_layer_candidates') }}</div>
{% if irradiance %}
<h2>{{ t('ghi_kwh_per_m2_yr', True) }}</h2>
<div class="pvs-ramp" style="background: linear-gradient(to right, {{ irradiance.ramp }})"></div>
<div class="pvs-sub">{% if irradiance.high - irradiance.low >= 0.5 %}{{ irradiance.low|num }} – {{ irradiance.high|num }}{% else %}{{ irradiance.low|num }}{% endif %}</div>
{% endif %}
<div class="pvs-sub">{{ survey }} · {{ t('map_generated') }} {{ generated }}</div>
""")

# The waterfall chart: one row per step, a label and its figure above a bar on a
# common scale (the footprint spans the width), each bar starting where the last
# one ended. Inline SVG drawn by the browser: no script, nothing fetched.
WATERFALL = _ENV.from_string("""
<svg class="pvs-waterfall" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{ width }} {{ height }}" width="100%"
  role="img" aria-label="{{ title }}" data-footprint-area-m2="{{ '%.3f'|format(footprint) }}">
<title>{{ title }}</title>
{% for r in rows %}
<g class="pvs-wf-step pvs-wf-{{ r.kind }}" data-step="{{ r.step }}" data-area-m2="{{ '%.3f'|format(r.value) }}">
<title>{{ r.label }}: {{ r.text }}</title>
<text x="0" y="{{ r.y + 10 }}">{{ r.label }}</text>
<text x="{{ width }}" y="{{ r.y + 10 }}" text-anchor="end">{{ r.text }}</text>
<rect x="{{ r.x }}" y="{{ r.y + 14 }}" width="{{ r.w }}" height="{{ bar }}" fill="{{ r.colour }}"></rect>
{% if r.link is not none %}<line x1="{{ r.link }}" x2="{{ r.link }}" y1="{{ r.y + 14 + bar }}" y2="{{ r.y + pitch + 14 }}" stroke="#777" stroke-width="0.8" stroke-dasharray="2 2"></line>{% endif %}
</g>
{% endfor %}
</svg>
<div class="pvs-sub">{{ t('map_waterfall_note') }}</div>
<table>
<tr><td>{{ t('usable_area_m2') }}</td><td class="n">{{ usable_area_m2|num }} m²</td></tr>
<tr><td>{{ t('capacity_kwp') }}</td><td class="n">{{ capacity_kwp|div(1000)|num(1) }} MWp</td></tr>
{% if rule_set %}<tr><td>{{ t('map_rule_set') }}</td><td class="n">{{ rule_set }}</td></tr>{% endif %}
</table>
""")

# Colours of the chart: the footprint, a deduction, a step that adds area (flush
# modules on a roof steeper than acos(coverage) cover more than its footprint), the modules.
WATERFALL_COLOURS = {"footprint": "#878787", "loss": "#d6604d", "gain": "#4393c3", "modules": "#1a9850"}
_WF_WIDTH, _WF_PITCH, _WF_BAR = 340.0, 25.0, 7.0


def waterfall_rows(sums: dict, width: float = _WF_WIDTH) -> list[dict] | None:
    """Rows of the waterfall chart of summed roofs: the footprint, each step of
    ``WATERFALL_STEPS``, then the module area, with each bar's place [px].

    Parameters
    ----------
    sums : mapping
        ``footprint_area_m2`` and the ``WATERFALL_COLUMNS`` [m²] (a row of parks.csv).
    width : float
        Width the footprint spans [px].

    Returns
    -------
    list of dict or None
        ``step``, ``kind`` (footprint, loss, gain, modules), ``value`` [m²], ``x``, ``w``
        [px] and ``link`` (where the next bar starts [px], None on the last row); None
        when the sums lack a column or the footprint is not positive.
    """
    try:
        footprint = float(sums["footprint_area_m2"])
        values = [float(sums[c]) for c in WATERFALL_COLUMNS]
    except (KeyError, TypeError, ValueError):
        return None
    if not (_finite(footprint) and footprint > 0 and all(_finite(v) for v in values)):
        return None
    scale = width / footprint
    # a dashed line marks, below each bar, the area still left after its step [px]
    rows = [{"step": "footprint_area_m2", "kind": "footprint", "value": footprint, "x": 0.0, "w": width,
             "link": width}]
    left = footprint  # what is left after the steps so far [m²]
    for step, value in zip(WATERFALL_STEPS, values):
        low, high = sorted((left - value, left))
        left -= value
        rows.append({"step": step, "kind": "gain" if value < 0 else "loss", "value": value,
                     "x": low * scale, "w": (high - low) * scale, "link": left * scale})
    rows.append({"step": "module_area_m2", "kind": "modules", "value": values[-1], "x": 0.0,
                 "w": values[-1] * scale, "link": None})
    for row in rows:
        row["x"], row["w"] = round(row["x"], 2), round(max(row["w"], 0.0), 2)
        row["link"] = None if row["link"] is None else round(row["link"], 2)
    return rows


def waterfall_html(sums: dict | None, lang: str, rule_set: str = "") -> str:
    """The waterfall of a park's roofs as an inline SVG chart with its figures, from
    footprint through each deduction to the module area (zh/en labels from the column
    registry); '' when ``sums`` (a row of parks.csv) lacks the waterfall columns."""
    rows = waterfall_rows(sums or {})
    if rows is None:
        return ""
    footprint = rows[0]["value"]
    for i, row in enumerate(rows):
        row["y"] = i * _WF_PITCH
        row["colour"] = WATERFALL_COLOURS[row["kind"]]
        row["label"] = label(row["step"], lang, False)
        area = f"{fmt_num(row['value'])} m²"
        if row["kind"] in ("loss", "gain") and round(abs(row["value"])) > 0:  # a zero step shows as 0, unsigned
            area = f"{'−' if row['value'] > 0 else '+'}{fmt_num(abs(row['value']))} m²"
        row["text"] = area if row["kind"] == "footprint" else f"{area} · {fmt_pct(row['value'] / footprint)}"
    return render(WATERFALL, lang, rows=rows, footprint=footprint, title=label("map_waterfall", lang, False),
                  width=_WF_WIDTH, height=len(rows) * _WF_PITCH, pitch=_WF_PITCH, bar=_WF_BAR,
                  usable_area_m2=(sums or {}).get("usable_area_m2"), capacity_kwp=(sums or {}).get("capacity_kwp"),
                  rule_set=rule_set)


PROGRESS_KEYS = ("install_ratio_area_frac", "install_ratio_count_frac", "target_install_ratio", "installed_kwp",
                 "new_kwp_since_baseline", "new_capacity_target_kwp", "new_capacity_target_share_frac",
                 "remaining_potential_kwp")
# (a final assessment adds: ratio_met, ratio_margin_frac, new_capacity_met, new_capacity_margin_kwp, outcome)
TOTAL_KEYS = ("building_count", "usable_area_m2", "capacity_kwp", "annual_yield_kwh")


def progress_html(metrics: dict | None, lang: str) -> str:
    """Progress block of a panel (ratio and new capacity against their targets), or the note that
    the run has no installed-PV data when ``metrics`` is None or has no ratio."""
    if not metrics or not _finite(metrics.get("install_ratio_area_frac")):
        return render(PROGRESS, lang, progress=None, bar_scale=1.0)
    return render(PROGRESS, lang, progress={k: metrics.get(k) for k in PROGRESS_KEYS}, bar_scale=1.0)


def _margin_lines(metrics: dict, lang: str) -> list[str]:
    """'installation ratio: missed by 22.1 percentage points', 'new capacity: met, by 12.0 MW' of a final assessment."""
    def t(name: str, with_unit: bool = False) -> str:
        return label(name, lang, with_unit)

    lines = []
    ratio = metrics.get("ratio_margin_frac")
    if _finite(ratio):
        met = ("map_plan_met", "map_plan_above_by") if metrics.get("ratio_met") else ("map_plan_missed", "map_plan_short_by")
        lines.append(f"{t('install_ratio_area_frac')}: {t(met[0])}, {t(met[1])} "
                     f"{fmt_num(abs(100 * float(ratio)), 1)} {t('map_plan_points')}")
    cap = metrics.get("new_capacity_margin_kwp")
    if _finite(cap):
        met = (("map_plan_met", "map_plan_above_by") if metrics.get("new_capacity_met")
               else ("map_plan_missed", "map_plan_short_by"))
        lines.append(f"{t('new_kwp_since_baseline')}: {t(met[0])}, {t(met[1])} {fmt_num(abs(float(cap)) / 1000, 1)} MW")
    return lines


def plan_html(plan: dict, metrics: dict | None, lang: str) -> str:
    """One plan's block of a panel: its name (in ``lang``), source and period, where it
    stands (in progress, not started, or met / missed at its deadline and by how much)
    and its figures against its own targets; every number from the plan (progress.json's ``plans``)."""
    name = plan.get("name") or {}
    meta = {"name": name.get(lang) or name.get("en") or plan.get("id") or "", "source": plan.get("source") or "",
            "baseline_date": plan.get("baseline_date") or "", "deadline": plan.get("deadline") or "",
            "status": plan.get("status"), "figures_as_of": plan.get("figures_as_of") or "",
            "outcome": (metrics or {}).get("outcome"), "results": _margin_lines(metrics or {}, lang)}
    return render(PLAN, lang, plan=meta, progress_html=progress_html(metrics, lang))


def plans_html(blocks: list[tuple[dict, dict | None]], lang: str) -> str:
    """The blocks of several plans (:func:`plan_html`), in the order given."""
    return "".join(plan_html(plan, metrics, lang) for plan, metrics in blocks)


def totals_html(totals: dict, lang: str) -> str:
    """Survey totals block: buildings, usable roof, capacity, yield."""
    return render(TOTALS, lang, totals={k: totals.get(k) for k in TOTAL_KEYS})


def render(template: jinja2.Template, lang: str, **context) -> str:
    """Render a panel template; ``t(name)`` gives the registry label in ``lang``.

    Parts already rendered by this module (``*_html``) are passed on as markup.
    """
    def t(name: str, with_unit: bool = False) -> str:
        return label(name, lang, with_unit)

    context = {k: (Markup(v) if k.endswith("_html") else v) for k, v in context.items()}
    return template.render(t=t, **context)
