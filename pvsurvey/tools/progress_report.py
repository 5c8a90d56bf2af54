"""`pvsurvey progress`: the progress table of a finished run (zh/en, CJK-width
aligned) and its trajectory chart.
"""

from __future__ import annotations


import logging
import textwrap
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputFileError
from ..model.targets import document_plans
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
           "definition": "Ratio definition", "scope": "Scope", "period": "baseline {b}, deadline {d}",
           "figures_at": "figures as of {d}", "outcome": "At deadline", "met_short": "met", "missed_short": "missed",
           "not_started": "not started: counts systems commissioned after {b}",
           "assessed": "Final assessment at the deadline {d}: {outcome}",
           "ratio_result": "installation ratio {v} of {target}: {result}",
           "capacity_result": "new capacity {v} MW of {target}: {result}",
           "met_by": "met ({by} above)", "missed_by": "missed by {by}", "points": "{v:.1f} percentage points",
           "final_point": "at the deadline", "no_plan": "no plan '{plan}' in this run; use one of: {known}",
           "waterfall": "Usable roof, step by step (city; rule set {rule_set})", "footprint_area_m2": "Footprint",
           "setback_loss_m2": "− edge setback", "obstruction_loss_m2": "− obstructions",
           "orientation_loss_m2": "− far-side plane of pitched roofs", "shade_loss_m2": "− shade from neighbours",
           "construction_loss_m2": "− roofs needing a new roof first", "small_roof_loss_m2": "− roofs too small",
           "layout_loss_m2": "− module layout (row spacing, gaps)", "module_area_m2": "= module area",
           "usable_area_m2": "usable roof area", "capacity_kwp": "capacity", "needs_new_roof_count":
           "roofs that will not outlast the PV",
           "ratio_band": "Ratio P90–P10", "range": "80 % range {a} to {b}",
           "bands": "How sure (P90 = exceeded with 90 % probability, the cautious value; P10 = with only 10 %):",
           "band_area": "usable roof", "band_capacity": "capacity", "band_yield": "annual yield",
           "band_ratio": "installation ratio", "band_prob": "probability the ratio target is already met",
           "band_note": "the systematic area factor cancels in the ratio; new capacity is counted from the "
                        "registry (no band)",
           "band_shade": "P90–P10 band"},
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
           "definition": "比例定义", "scope": "范围", "period": "基准日{b}，截止{d}",
           "figures_at": "数据截至{d}", "outcome": "截止日结果", "met_short": "达标", "missed_short": "未达标",
           "not_started": "尚未开始：统计{b}之后并网的项目",
           "assessed": "截止日{d}最终考核：{outcome}",
           "ratio_result": "安装比例{v}，目标{target}：{result}",
           "capacity_result": "新增装机{v} MW，目标{target}：{result}",
           "met_by": "达标（超出{by}）", "missed_by": "未达标，差{by}", "points": "{v:.1f}个百分点",
           "final_point": "截止日", "no_plan": "本次运行没有计划“{plan}”；可选：{known}",
           "waterfall": "可利用屋顶面积逐项扣除（全市；规则集 {rule_set}）", "footprint_area_m2": "占地面积",
           "setback_loss_m2": "－周边退让", "obstruction_loss_m2": "－屋面障碍物",
           "orientation_loss_m2": "－坡屋顶背阳坡面", "shade_loss_m2": "－周边建筑遮挡",
           "construction_loss_m2": "－需先翻新的屋面", "small_roof_loss_m2": "－面积过小的屋顶",
           "layout_loss_m2": "－组件排布（行间距、间隙）", "module_area_m2": "＝组件面积",
           "usable_area_m2": "可利用屋顶面积", "capacity_kwp": "可装机容量", "needs_new_roof_count":
           "屋面寿命短于光伏的建筑",
           "ratio_band": "比例P90–P10", "range": "80%区间 {a} 至 {b}",
           "bands": "可信程度（P90：有90%把握不低于此值，保守值；P10：仅10%可能高于此值）：",
           "band_area": "可利用屋顶", "band_capacity": "可装机容量", "band_yield": "年发电量",
           "band_ratio": "安装比例", "band_prob": "比例目标已达成的概率",
           "band_note": "安装比例中系统性的面积误差相互抵消；新增装机按台账统计（无区间）",
           "band_shade": "P90–P10区间"},
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
    """City (or a plan's scope), then districts, then parks furthest from their ratio target first.

    ``doc``: a progress.json or one of its plans (whose total row is ``total``)."""
    rows = [("city", doc["total"] if "total" in doc else doc["city"])]
    rows += [("district", d) for d in sorted(doc["districts"], key=lambda r: -(r.get("ratio_gap_frac") or 0))]
    rows += [("park", p) for p in sorted(doc["parks"], key=lambda r: (-(r.get("ratio_gap_frac") or 0),
                                                                      r.get("install_ratio_frac") or 0))]
    return rows


def capacity_label(kwp: float) -> str:
    """A capacity target as people say it: ``1 GW``, ``1.5 GW``, ``800 MW``."""
    if kwp >= 1e6:
        return f"{kwp / 1e6:,.3g} GW"
    return f"{kwp / 1e3:,.4g} MW" if kwp >= 1e3 else f"{kwp:,.4g} kW"


def ratio_label(frac: float) -> str:
    """A ratio target as people say it: ``50 %``, ``62.5 %``."""
    return f"{100 * frac:.4g} %"


def select_plans(doc: dict, plan: str | None = None) -> list[dict]:
    """The plans of a progress.json (all, or the one with id ``plan``).

    Raises
    ------
    InputFileError
        No plan with that id in the run: one line listing the ids.
    """
    plans = document_plans(doc)
    if plan is None:
        return plans
    chosen = [p for p in plans if p["id"] == plan]
    if not chosen:
        known = ", ".join(p["id"] for p in plans if p["id"]) or "none (a run written before plans existed)"
        raise InputFileError(TEXT["en"]["no_plan"].format(plan=plan, known=known))
    return chosen


def plan_title(plan: dict, lang: str) -> str | None:
    """'<name> (baseline …, deadline …; <source>)' of a plan, from its own figures; None without a name."""
    if not plan.get("name"):
        return None
    t = TEXT[lang]
    period = t["period"].format(b=plan["baseline_date"], d=plan["deadline"])
    return f"{plan['name'][lang]} ({period}; {plan['source']})"


def _result(margin, met, fmt, lang: str) -> str:
    t = TEXT[lang]
    if margin is None:
        return ""
    return t["met_by"].format(by=fmt(abs(margin))) if met else t["missed_by"].format(by=fmt(abs(margin)))


def assessment_lines(plan: dict, lang: str) -> list[str]:
    """The final assessment of a plan after its deadline: met or missed, by how much."""
    a = plan.get("assessment")
    if not a:
        return []
    t = TEXT[lang]
    lines = [t["assessed"].format(d=a["date"], outcome=t["met_short" if a["outcome"] == "met" else "missed_short"])]
    r = a["install_ratio"]
    lines.append("  " + t["ratio_result"].format(
        v=f"{100 * r['achieved']:.1f} %", target=ratio_label(r["target"]),
        result=_result(r["margin_frac"], r["met"], lambda frac: t["points"].format(v=100 * frac), lang)))
    c = a.get("new_capacity")
    if c:
        lines.append("  " + t["capacity_result"].format(
            v=_mw(c["achieved_kwp"]), target=capacity_label(c["target_kwp"]),
            result=_result(c["margin_kwp"], c["met"], lambda kwp: f"{kwp / 1000:,.1f} MW", lang)))
    return lines


def status_line(plan: dict, lang: str) -> str:
    """One line: where a plan stands (in progress with its figures' date, assessed: met / missed, not started)."""
    t = TEXT[lang]
    if plan.get("status") == "assessed":
        return assessment_lines(plan, lang)[0]
    if plan.get("status") == "not_started":
        return t["not_started"].format(b=plan["baseline_date"])
    return t["figures_at"].format(d=plan.get("figures_as_of"))


def plan_table(doc: dict, plan: dict, lang: str = "en") -> str:
    """One plan's progress table as aligned text (CJK-width aware), its status after it."""
    t = TEXT[lang]
    target_kwp = plan["targets"]["new_capacity_kwp"]
    assessed = plan.get("status") == "assessed"
    banded = "install_ratio_p90_frac" in (plan.get("total") or {})
    headers = [t["name"], t["ratio_area"], *([t["ratio_band"]] if banded else []), t["ratio_count"], t["target"],
               t["gap"], t["installed"], t["new"], t["share"].format(target=capacity_label(target_kwp)),
               t["remaining"], t["closable"]]
    if assessed:
        headers.append(t["outcome"])
    lines, body = [], []
    scope = plan.get("total_level") == "scope"
    for level, r in ordered_rows(plan):
        name = (t["scope"] if scope else t["city"]) if level == "city" else (
            r.get("district") if level == "district" else f"{r.get('park_id')} {r.get('park_name') or ''}".strip())
        share = (r.get("new_kwp_since_baseline") or 0) / target_kwp if target_kwp else None
        closable = r.get("can_close_ratio_gap")
        band = [f"{_pct(r.get('install_ratio_p90_frac'))}–{_pct(r.get('install_ratio_p10_frac'))}"] if banded else []
        cells = [name, _pct(r.get("install_ratio_area_frac")), *band, _pct(r.get("install_ratio_count_frac")),
                 _pct(r.get("target_install_ratio")), _pct(r.get("ratio_gap_frac")),
                 _mw(r.get("installed_kwp")), _mw(r.get("new_kwp_since_baseline")), _pct(share),
                 _mw(r.get("remaining_potential_kwp")), "" if closable is None else t["yes" if closable else "no"]]
        if assessed:
            cells.append(t["met_short" if r.get("outcome") == "met" else "missed_short"])
        body.append((level, cells))
    widths = [max(_width(h), *(_width(row[i]) for _, row in body)) for i, h in enumerate(headers)]

    def fmt(cells):
        return "  ".join(_pad(c, w, right=i > 0) for i, (c, w) in enumerate(zip(cells, widths)))

    title = plan_title(plan, lang)
    when = plan.get("figures_as_of") or doc["as_of"]
    lines.append(f"{t['title']}{': ' + title if title else ''} ({t['as_of']} {when})")
    lines.append(fmt(headers))
    lines.append("-" * _width(fmt(headers)))
    previous = None
    for level, cells in body:
        if level != previous and level != "city":
            lines.append(f"[{t['districts'] if level == 'district' else t['parks']}]")
        previous = level
        lines.append(fmt(cells))
    lines.append(f"{t['definition']}: {doc['definition']['install_ratio']}")
    lines += band_lines(plan.get("total") or {}, lang)
    if assessed:
        lines += assessment_lines(plan, lang)
    elif plan.get("status") == "not_started":
        lines.append(status_line(plan, lang))
    forecast = plan.get("forecast")
    if forecast and not assessed:
        lines.append(t["forecast"].format(n=forecast["window_runs"]) + ":")
        for key in ("new_capacity", "install_ratio"):
            f = forecast[key]
            status = t[f["status"]].format(date=f["forecast_date"]) if f["status"] in t else f["status"]
            if f["status"] == "on_pace":
                if f.get("forecast_range") and f["forecast_range"][0] != f["forecast_range"][1]:
                    a, b = f["forecast_range"]  # equal: counted figures on two runs, no spread to show
                    status += f" ({t['range'].format(a=a, b=b)})"
                status += ", " + t["deadline_ok" if f["meets_deadline"] else "deadline_late"].format(
                    d=plan["deadline"])
            lines.append(f"  {t[key]}: {status}")
    return "\n".join(lines)


def band_lines(total: dict, lang: str = "en") -> list[str]:
    """The P90–P10 bands of a plan's total row (city or scope) in a few words; none without bands."""
    if "usable_area_p90_m2" not in total:
        return []
    t = TEXT[lang]

    def pair(col, scale, digits):
        lo, hi = (total.get(col.format(p)) for p in ("p90", "p10"))
        return "–" if lo is None or hi is None else f"{lo / scale:,.{digits}f}–{hi / scale:,.{digits}f}"

    parts = [f"{t['band_area']} {pair('usable_area_{}_m2', 1e6, 2)} km²",
             f"{t['band_capacity']} {pair('capacity_{}_kwp', 1e3, 0)} MWp",
             f"{t['band_yield']} {pair('annual_yield_{}_kwh', 1e6, 0)} GWh/yr",
             f"{t['band_ratio']} {_pct(total.get('install_ratio_p90_frac'))}–{_pct(total.get('install_ratio_p10_frac'))}"]
    lines = [t["bands"], "  " + "; ".join(parts)]
    if total.get("install_ratio_met_prob") is not None:
        lines.append(f"  {t['band_prob']}: {100 * total['install_ratio_met_prob']:.0f} %")
    lines.append(f"  ({t['band_note']})")
    return lines


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


def progress_table(doc: dict, lang: str = "en", plan: str | None = None) -> str:
    """The progress tables of a run, one per plan (or only plan ``plan``), as aligned text."""
    tables = [plan_table(doc, p, lang) for p in select_plans(doc, plan)]
    waterfall = waterfall_lines(doc, lang)  # the surveyed roofs, whatever the plan
    return "\n\n".join(tables + (["\n".join(waterfall)] if waterfall else []))


def _plan_history(history: pd.DataFrame, plan: dict) -> pd.DataFrame:
    """A plan's total rows of the history, dated by the date their figures describe."""
    h = history[history["level"] == plan.get("total_level", "city")]
    if plan.get("id") and "plan" in h:
        h = h[h["plan"].astype(str) == plan["id"]]
    h = h.copy()
    when = h["figures_as_of"] if "figures_as_of" in h else h["as_of"]
    h["as_of"] = pd.to_datetime(when.where(when.notna(), h["as_of"]))
    return h.sort_values("as_of").drop_duplicates("as_of", keep="last")


def trajectory_figure(history: pd.DataFrame, doc: dict, lang: str = "en", plans: list[dict] | None = None):
    """Matplotlib figure, one row per plan: the new capacity and the installation
    ratio of its city (or scope) over the runs, against the straight target
    trajectory from its baseline to its deadline, with the forecast at the recent
    pace while it is in progress and the final point at the deadline after it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t = TEXT[lang]
    plans = plans if plans is not None else document_plans(doc)
    fig = plt.figure(figsize=(11, 0.5 + 4.4 * len(plans)), layout="constrained")
    rows = fig.subfigures(len(plans), 1, squeeze=False)[:, 0]
    ratio_col = "install_ratio_area_frac"
    for row, plan in zip(rows, plans):
        ax1, ax2 = row.subplots(1, 2)
        targets = plan["targets"]
        city = _plan_history(history, plan)
        base, deadline = pd.Timestamp(targets["baseline_date"]), pd.Timestamp(targets["deadline"])
        target_mw = targets["new_capacity_kwp"] / 1000
        ax1.plot([base, deadline], [0, target_mw], "--", color="grey", label=t["target_line"])
        ax1.plot(city["as_of"], city["new_kwp_since_baseline"] / 1000, "o-", color="tab:orange", label=t["history"])
        ax1.set_title(t["chart_new"], fontsize=10)
        ax2.plot([base, deadline], [targets["install_ratio"]] * 2, "--", color="grey", label=t["target_line"])
        ax2.plot(city["as_of"], city[ratio_col], "o-", color="tab:green", label=t["history"])
        if {"install_ratio_p90_frac", "install_ratio_p10_frac"} <= set(city.columns) and \
                city["install_ratio_p90_frac"].notna().any():  # the ratio's P90-P10 band over the runs
            band = city.dropna(subset=["install_ratio_p90_frac", "install_ratio_p10_frac"])
            ax2.fill_between(band["as_of"], band["install_ratio_p90_frac"], band["install_ratio_p10_frac"],
                             color="tab:green", alpha=0.2, lw=0, label=t["band_shade"])
            if len(band) == 1:  # one run: a bar, since a band of one point has no width
                ax2.errorbar(band["as_of"], band[ratio_col],
                             yerr=[band[ratio_col] - band["install_ratio_p90_frac"],
                                   band["install_ratio_p10_frac"] - band[ratio_col]],
                             fmt="none", ecolor="tab:green", alpha=0.5, capsize=4)
        ax2.set_ylim(0, max(targets["install_ratio"] * 1.2, city[ratio_col].max() * 1.1 if len(city) else 0.6))
        ax2.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax2.set_title(t["chart_ratio"], fontsize=10)
        forecast = plan.get("forecast") or {}
        assessment = plan.get("assessment")
        for ax, key, col, scale in ((ax1, "new_capacity", "new_kwp_since_baseline", 1000),
                                    (ax2, "install_ratio", ratio_col, 1)):
            f = forecast.get(key) or {}
            if f.get("status") == "on_pace" and len(city) and not assessment:
                end = pd.Timestamp(f["forecast_date"])
                goal = target_mw if key == "new_capacity" else targets["install_ratio"]
                ax.plot([city["as_of"].iloc[-1], end], [city[col].iloc[-1] / scale, goal], ":", color="tab:red",
                        label=f"{t['forecast_line']} ({end.date().isoformat()})")
                if f.get("forecast_range") and f["forecast_range"][0] != f["forecast_range"][1]:  # its 80 % range
                    a, b = (pd.Timestamp(d) for d in f["forecast_range"])
                    ax.plot([a, b], [goal, goal], "-", color="tab:red", lw=5, alpha=0.3,
                            label=t["range"].format(a=a.date().isoformat(), b=b.date().isoformat()))
            if assessment:
                final = (plan["total"].get(col) or 0) / scale
                ax.plot([deadline], [final], "D", color="black", label=f"{t['final_point']} ({assessment['date']})")
            ax.axvline(deadline, color="black", lw=0.6)
            ax.legend(loc="upper left", fontsize=8)
            ax.tick_params(axis="x", labelrotation=30)
        if plan.get("name"):  # the source stays in the table: its script may not be the chart's
            period = t["period"].format(b=plan["baseline_date"], d=plan["deadline"])
            head = textwrap.fill(f"{plan['name'][lang]} ({period})", 110)
            row.suptitle(f"{head}\n{status_line(plan, lang)}", fontsize=10)
    fig.suptitle(f"{t['title']} — {t['as_of']} {doc['as_of']}")
    return fig


def has_cjk_font() -> bool:
    """Whether matplotlib can draw Chinese text (a CJK font is installed)."""
    from matplotlib import font_manager

    return any(any(k in f.name for k in ("CJK", "WenQuanYi", "Hei", "Song", "Noto Sans SC"))
               for f in font_manager.fontManager.ttflist)


def report_progress(run_dir: str | Path, lang: str = "en", history_file: str | Path | None = None,
                    plan: str | None = None) -> tuple[str, list[Path]]:
    """The progress tables of a run (every plan, or plan ``plan``) and their trajectory chart.

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
    plans = select_plans(doc, plan)
    default_id = document_plans(doc)[0]["id"] or None
    history = read_history(Path(history_file) if history_file else run.history_path(), default_id)
    if history is None:  # a run always has its own point
        history = run.table(PROGRESS_TABLE).assign(as_of=doc["as_of"])
    text = progress_table(doc, lang, plan)
    import matplotlib.pyplot as plt

    written = []
    png_lang = lang if (lang == "en" or has_cjk_font()) else "en"
    if png_lang != lang:
        log.warning("no CJK font for the PNG chart: its labels are in English; progress.svg has the Chinese ones")
    for suffix, chart_lang in (("png", png_lang), ("svg", lang)):
        with plt.rc_context({"svg.fonttype": "none"}), warnings.catch_warnings():
            # SVG keeps text as text: the viewer's fonts draw it, so missing local glyphs do not matter
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig = trajectory_figure(history, doc, chart_lang, plans)
            try:
                target = atomic_write(run.file(f"{PROGRESS_CHART}.{suffix}"),
                                      lambda tmp: fig.savefig(tmp, dpi=120, format=suffix))
            finally:
                plt.close(fig)
        written.append(target)
    return text, written
