"""`pvsurvey progress`: the progress table of a finished run (zh/en, CJK-width
aligned) and its trajectory chart.
"""

from __future__ import annotations


import logging
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputFileError
from ..io.writers import atomic_write
from ..store.history import read_history
from ..store.run_directory import PROGRESS, PROGRESS_CHART, PROGRESS_TABLE, RunDirectory

log = logging.getLogger(__name__)


TEXT = {
    "en": {"title": "Progress toward the rooftop-PV targets", "as_of": "as of", "city": "City",
           "level": "", "name": "Name", "ratio_area": "Ratio (area)", "ratio_count": "Ratio (count)",
           "target": "Target", "gap": "Gap", "installed": "Installed MW", "new": "New MW", "share": "of {target}",
           "remaining": "Potential MW", "closable": "Closable", "yes": "yes", "no": "no",
           "districts": "Districts", "parks": "Parks (furthest from target first)",
           "forecast": "Forecast at the pace of the last {n} runs", "new_capacity": "new capacity",
           "install_ratio": "installation ratio", "met": "target met", "on_pace": "reached on {date}",
           "no_progress": "no progress at this pace", "too_few_points": "needs two or more runs in the history",
           "deadline_ok": "before the deadline {d}", "deadline_late": "AFTER the deadline {d}",
           "chart_new": "New capacity since baseline [MW]", "chart_ratio": "Installation ratio (usable roof area)",
           "target_line": "target trajectory", "history": "runs", "forecast_line": "forecast",
           "definition": "Ratio definition",
           "waterfall": "Usable roof, step by step (city; rule set {rule_set})", "footprint_area_m2": "Footprint",
           "setback_loss_m2": "− edge setback", "obstruction_loss_m2": "− obstructions",
           "orientation_loss_m2": "− far-side plane of pitched roofs", "shade_loss_m2": "− shade from neighbours",
           "construction_loss_m2": "− roofs needing a new roof first", "small_roof_loss_m2": "− roofs too small",
           "layout_loss_m2": "− module layout (row spacing, gaps)", "module_area_m2": "= module area",
           "usable_area_m2": "usable roof area", "capacity_kwp": "capacity", "needs_new_roof_count":
           "roofs that will not outlast the PV"},
    "zh": {"title": "屋顶光伏目标进展", "as_of": "截至", "city": "全市",
           "level": "", "name": "名称", "ratio_area": "安装比例(面积)", "ratio_count": "安装比例(栋数)",
           "target": "目标", "gap": "差距", "installed": "已装机MW", "new": "新增MW", "share": "占{target}",
           "remaining": "剩余潜力MW", "closable": "可补齐", "yes": "是", "no": "否",
           "districts": "各区", "parks": "各园区（距目标最远者在前）",
           "forecast": "按最近{n}次运行的速度预测", "new_capacity": "新增装机",
           "install_ratio": "安装比例", "met": "已达标", "on_pace": "预计{date}达标",
           "no_progress": "按当前速度无法达标", "too_few_points": "历史记录需至少两次运行",
           "deadline_ok": "早于截止日期{d}", "deadline_late": "晚于截止日期{d}",
           "chart_new": "基准日以来新增装机 [MW]", "chart_ratio": "屋顶光伏安装比例（按面积）",
           "target_line": "目标轨迹", "history": "历次运行", "forecast_line": "预测",
           "definition": "比例定义",
           "waterfall": "可利用屋顶面积逐项扣除（全市；规则集 {rule_set}）", "footprint_area_m2": "占地面积",
           "setback_loss_m2": "－周边退让", "obstruction_loss_m2": "－屋面障碍物",
           "orientation_loss_m2": "－坡屋顶背阳坡面", "shade_loss_m2": "－周边建筑遮挡",
           "construction_loss_m2": "－需先翻新的屋面", "small_roof_loss_m2": "－面积过小的屋顶",
           "layout_loss_m2": "－组件排布（行间距、间隙）", "module_area_m2": "＝组件面积",
           "usable_area_m2": "可利用屋顶面积", "capacity_kwp": "可装机容量", "needs_new_roof_count":
           "屋面寿命短于光伏的建筑"},
}


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _pct(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{100 * value:.1f}%"


def _mw(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value / 1000:,.1f}"


def ordered_rows(doc: dict) -> list[tuple[str, dict]]:
    """City, then districts, then parks furthest from their ratio target first."""
    rows = [("city", doc["city"])]
    rows += [("district", d) for d in sorted(doc["districts"], key=lambda r: -(r.get("ratio_gap_frac") or 0))]
    rows += [("park", p) for p in sorted(doc["parks"], key=lambda r: (-(r.get("ratio_gap_frac") or 0),
                                                                      r.get("install_ratio_frac") or 0))]
    return rows


def capacity_label(kwp: float) -> str:
    """A capacity target as people say it: ``1 GW``, ``1.5 GW``, ``800 MW``."""
    if kwp >= 1e6:
        return f"{kwp / 1e6:,.3g} GW"
    return f"{kwp / 1e3:,.4g} MW" if kwp >= 1e3 else f"{kwp:,.4g} kW"


def progress_table(doc: dict, lang: str = "en") -> str:
    """The progress table as aligned text (CJK-width aware)."""
    t = TEXT[lang]
    headers = [t["name"], t["ratio_area"], t["ratio_count"], t["target"], t["gap"], t["installed"], t["new"],
               t["share"].format(target=capacity_label(doc["targets"]["new_capacity_kwp"])), t["remaining"],
               t["closable"]]
    lines, body = [], []
    for level, r in ordered_rows(doc):
        name = t["city"] if level == "city" else (r.get("district") if level == "district" else
                                                  f"{r.get('park_id')} {r.get('park_name') or ''}".strip())
        share = r.get("new_kwp_since_baseline", 0) / doc["targets"]["new_capacity_kwp"] \
            if doc["targets"]["new_capacity_kwp"] else None
        closable = r.get("can_close_ratio_gap")
        body.append((level, [name, _pct(r.get("install_ratio_area_frac")), _pct(r.get("install_ratio_count_frac")),
                             _pct(r.get("target_install_ratio")), _pct(r.get("ratio_gap_frac")),
                             _mw(r.get("installed_kwp")), _mw(r.get("new_kwp_since_baseline")), _pct(share),
                             _mw(r.get("remaining_potential_kwp")), t["yes"] if closable else t["no"]]))
    widths = [max(_width(h), *(_width(row[i]) for _, row in body)) for i, h in enumerate(headers)]

    def fmt(cells):
        return "  ".join(_pad(c, w, right=i > 0) for i, (c, w) in enumerate(zip(cells, widths)))

    lines.append(f"{t['title']} ({t['as_of']} {doc['as_of']})")
    lines.append(fmt(headers))
    lines.append("-" * _width(fmt(headers)))
    previous = None
    for level, cells in body:
        if level != previous and level != "city":
            lines.append(f"[{t['districts'] if level == 'district' else t['parks']}]")
        previous = level
        lines.append(fmt(cells))
    lines.append(f"{t['definition']}: {doc['definition']['install_ratio']}")
    lines.extend(waterfall_lines(doc, lang))
    forecast = doc.get("forecast")
    if forecast:
        lines.append(t["forecast"].format(n=forecast["window_runs"]) + ":")
        for key in ("new_capacity", "install_ratio"):
            f = forecast[key]
            status = t[f["status"]].format(date=f["forecast_date"]) if f["status"] in t else f["status"]
            if f["status"] == "on_pace":
                status += ", " + t["deadline_ok" if f["meets_deadline"] else "deadline_late"].format(
                    d=doc["targets"]["deadline"])
            lines.append(f"  {t[key]}: {status}")
    return "\n".join(lines)


def waterfall_lines(doc: dict, lang: str = "en") -> list[str]:
    """The city's usable-roof waterfall (progress.json ``waterfall``) as aligned text lines."""
    waterfall = doc.get("waterfall")
    if not waterfall:
        return []
    t = TEXT[lang]
    city = waterfall["city"]
    rows = [(t["footprint_area_m2"], city["footprint_area_m2"], 1.0 if city["footprint_area_m2"] else 0.0)]
    rows += [(t.get(step["step"], step["step"]), step["area_m2"], step["share_frac"]) for step in city["steps"]]
    width = max(_width(label) for label, _, _ in rows)
    lines = [t["waterfall"].format(rule_set=waterfall.get("rule_set", ""))]
    for label, area, share in rows:
        lines.append(f"  {_pad(label, width)}  {area:>14,.0f} m²  {100 * share:5.1f}%")
    lines.append(f"  {_pad(t['usable_area_m2'], width)}  {city['usable_area_m2']:>14,.0f} m²")
    lines.append(f"  {_pad(t['capacity_kwp'], width)}  {city['capacity_kwp'] / 1000:>14,.1f} MWp")
    if city.get("needs_new_roof_count"):
        lines.append(f"  {_pad(t['needs_new_roof_count'], width)}  {city['needs_new_roof_count']:>14,d}")
    return lines


def trajectory_figure(history: pd.DataFrame, doc: dict, lang: str = "en"):
    """Matplotlib figure: city new capacity and installation ratio over the runs,
    against the straight target trajectory from the baseline to the deadline,
    with the forecast at the recent pace."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t = TEXT[lang]
    targets = doc["targets"]
    city = history[history["level"] == "city"].copy()
    city["as_of"] = pd.to_datetime(city["as_of"])
    city = city.sort_values("as_of").drop_duplicates("as_of", keep="last")
    base, deadline = pd.Timestamp(targets["baseline_date"]), pd.Timestamp(targets["deadline"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)

    target_mw = targets["new_capacity_kwp"] / 1000
    ax1.plot([base, deadline], [0, target_mw], "--", color="grey", label=t["target_line"])
    ax1.plot(city["as_of"], city["new_kwp_since_baseline"] / 1000, "o-", color="tab:orange", label=t["history"])
    ax1.set_title(t["chart_new"])
    ratio_col = "install_ratio_area_frac"
    ax2.axhline(targets["install_ratio"], color="grey", ls="--", label=t["target_line"])
    ax2.plot(city["as_of"], city[ratio_col], "o-", color="tab:green", label=t["history"])
    ax2.set_ylim(0, max(1.0 * targets["install_ratio"] * 1.2, city[ratio_col].max() * 1.1 if len(city) else 0.6))
    ax2.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax2.set_title(t["chart_ratio"])
    forecast = doc.get("forecast") or {}
    for ax, key, col, scale in ((ax1, "new_capacity", "new_kwp_since_baseline", 1000), (ax2, "install_ratio", ratio_col, 1)):
        f = forecast.get(key) or {}
        if f.get("status") == "on_pace" and len(city):
            end = pd.Timestamp(f["forecast_date"])
            goal = target_mw if key == "new_capacity" else targets["install_ratio"]
            ax.plot([city["as_of"].iloc[-1], end], [city[col].iloc[-1] / scale, goal], ":", color="tab:red",
                    label=f"{t['forecast_line']} ({end.date().isoformat()})")
        ax.axvline(deadline, color="black", lw=0.6)
        ax.legend(loc="upper left", fontsize=8)
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle(f"{t['title']} — {t['as_of']} {doc['as_of']}")
    return fig


def has_cjk_font() -> bool:
    """Whether matplotlib can draw Chinese text (a CJK font is installed)."""
    from matplotlib import font_manager

    return any(any(k in f.name for k in ("CJK", "WenQuanYi", "Hei", "Song", "Noto Sans SC"))
               for f in font_manager.fontManager.ttflist)


def report_progress(run_dir: str | Path, lang: str = "en", history_file: str | Path | None = None
                    ) -> tuple[str, list[Path]]:
    """The progress table of a run and its trajectory chart.

    Writes ``progress.png`` and ``progress.svg`` (text kept as text, so browsers
    render Chinese labels even where no CJK font is installed for the PNG) into
    the run directory.

    Returns
    -------
    (str, list of Path)
        The table as text and the chart files written.
    """
    run = RunDirectory(run_dir)
    doc = run.progress()
    if doc is None:
        raise InputFileError(f"{run.path}: no {PROGRESS} here; give a run directory written by 'pvsurvey run'")
    history = read_history(Path(history_file) if history_file else run.history_path())
    if history is None:  # a run always has its own point
        history = run.table(PROGRESS_TABLE).assign(as_of=doc["as_of"])
    text = progress_table(doc, lang)
    import matplotlib.pyplot as plt

    written = []
    png_lang = lang if (lang == "en" or has_cjk_font()) else "en"
    if png_lang != lang:
        log.warning("no CJK font for the PNG chart: its labels are in English; progress.svg has the Chinese ones")
    for suffix, chart_lang in (("png", png_lang), ("svg", lang)):
        with plt.rc_context({"svg.fonttype": "none"}), warnings.catch_warnings():
            # SVG keeps text as text: the viewer's fonts draw it, so missing local glyphs do not matter
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig = trajectory_figure(history, doc, chart_lang)
            try:
                target = atomic_write(run.file(f"{PROGRESS_CHART}.{suffix}"),
                                      lambda tmp: fig.savefig(tmp, dpi=120, format=suffix))
            finally:
                plt.close(fig)
        written.append(target)
    return text, written
