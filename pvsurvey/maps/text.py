"""Words people read on the maps that are not columns of a table: building statuses,
candidate states, layer names, panel headings, buttons (zh/en). Column labels stay in
the column registry (:mod:`pvsurvey.columns`); :func:`label` looks in both.
"""

from __future__ import annotations

from ..columns import COLUMNS, Column
from ..columns import label as column_label

_TEXT = [
    Column("map_status", "", "Status of a building on the park map: has PV, candidate, below minimum or unsuitable", "建筑状态", "Status"),
    Column("map_status_has_pv", "", "The building carries connected PV", "已安装光伏", "Has PV"),
    Column("map_status_candidate", "", "Roof without PV whose capacity reaches the minimum project size: a candidate project", "候选项目", "Candidate project"),
    Column("map_status_below_min", "", "Usable roof without PV below the minimum project size", "低于最小项目规模", "Below minimum size"),
    Column("map_status_unsuitable", "", "No usable roof area", "无可利用屋顶", "Unsuitable roof"),
    Column("map_state_identified", "", "Candidate status: identified", "已识别", "Identified"),
    Column("map_state_contacted", "", "Candidate status: enterprise contacted", "已联系", "Contacted"),
    Column("map_state_agreed", "", "Candidate status: enterprise agreed", "已同意", "Agreed"),
    Column("map_state_under_construction", "", "PV or candidate status: under construction", "在建", "Under construction"),
    Column("map_state_connected", "", "PV or candidate status: connected to the grid", "已并网", "Connected"),
    Column("map_state_planned", "", "PV status: planned", "规划中", "Planned"),
    Column("map_state_none", "", "PV status: no PV", "无", "None"),
    Column("map_project_id", "", "Candidate project id", "项目编号", "Project ID"),
    Column("map_candidate_status", "", "Where the candidate project stands", "项目状态", "Project status"),
    Column("map_notes", "", "Park manager's notes on the candidate project", "备注", "Notes"),
    Column("map_title_overview", "", "Title of the city overview map", "屋顶光伏总览", "Rooftop PV overview"),
    Column("map_title_park", "", "Title of a park map", "园区屋顶光伏", "Park rooftop PV"),
    Column("map_layer_parks", "", "Layer of park outlines coloured by installation ratio", "园区（按安装比例着色）", "Parks (by installation ratio)"),
    Column("map_layer_buildings", "", "Layer of buildings coloured by status", "建筑（按状态着色）", "Buildings (by status)"),
    Column("map_layer_candidates", "", "Layer of candidate projects", "候选项目", "Candidate projects"),
    Column("map_layer_largest_candidates", "", "Layer of the largest candidate projects of the city", "最大的候选项目", "Largest candidate projects"),
    Column("map_layer_park_boundary", "", "Layer of the park outline", "园区边界", "Park boundary"),
    Column("map_city_progress", "", "Panel heading: the city's progress toward the targets", "全市目标进展", "City progress toward the targets"),
    Column("map_park_progress", "", "Panel heading: the park's progress", "园区进展", "Park progress"),
    Column("map_survey_totals", "", "Panel heading: totals of the rooftop survey", "屋顶普查合计", "Survey totals"),
    Column("map_districts", "", "Panel heading: summary per district", "各区汇总", "Districts"),
    Column("map_park_maps", "", "Panel heading: links to the park maps", "园区地图", "Park maps"),
    Column("map_park_count", "", "Number of parks", "园区数", "Parks"),
    Column("map_target", "", "Target value", "目标", "target"),
    Column("map_target_met", "", "Legend: the target is met", "已达目标", "target met"),
    Column("map_no_data", "", "Legend: no installed-PV data", "无数据", "no data"),
    Column("map_no_progress", "", "No installed-PV registry in this run, so no installation ratio", "本次普查未提供已装光伏登记，无法计算安装比例", "No installed-PV registry in this run: installation ratios unknown"),
    Column("map_open_park_map", "", "Link to a park's map", "打开园区地图", "Open park map"),
    Column("map_back_to_overview", "", "Link from a park map to the overview", "返回总览", "Back to overview"),
    Column("map_generated", "", "When the map was made", "生成时间", "Generated"),
    Column("map_fullscreen", "", "Fullscreen button", "全屏", "Full screen"),
    Column("map_exit_fullscreen", "", "Leave-fullscreen button", "退出全屏", "Exit full screen"),
    Column("map_plan_baseline", "", "A plan's baseline date: new capacity counts systems commissioned after it", "基准日", "baseline"),
    Column("map_plan_deadline", "", "A plan's deadline", "截止日期", "deadline"),
    Column("map_plan_not_started", "", "The plan's period has not begun on the run's date", "尚未开始", "not started"),
    Column("map_plan_in_progress", "", "The plan runs: figures as of the run's date", "进行中，数据截至", "in progress, figures as of"),
    Column("map_plan_assessed", "", "After the deadline: the final assessment at the deadline", "截止日最终考核", "final assessment at the deadline"),
    Column("map_plan_met", "", "Assessment: the target was met", "达标", "met"),
    Column("map_plan_missed", "", "Assessment: the target was missed", "未达标", "missed"),
    Column("map_plan_short_by", "", "How far a missed target was missed", "差", "short by"),
    Column("map_plan_above_by", "", "How far a met target was exceeded", "超出", "above by"),
    Column("map_plan_points", "", "Unit of a ratio margin", "个百分点", "percentage points"),
    Column("map_colour_vs_plan", "", "Legend note: whose targets the colours compare with", "颜色对照", "colours against"),
    Column("map_waterfall", "", "Panel heading: the park's roof area from footprint to module area, deduction by deduction", "可利用屋顶逐项扣除", "Usable roof, step by step"),
    Column("map_waterfall_note", "", "What the waterfall chart's bars measure", "各项为占地面积（m²）及其占比；组件面积 × 组件功率密度 = 可装机容量", "Bars in m² of footprint and their share of it; module area × module power density = capacity"),
    Column("map_rule_set", "", "The named rule set of the usable-roof deductions (roof.rule_set)", "扣除规则", "Rule set"),
    Column("map_colour_vs_target", "", "Legend note: parks are coloured by their ratio against their own target", "颜色表示相对各园区目标的完成程度", "colour: share of each park's own target reached"),
]

UI_TEXT: dict[str, Column] = {t.name: t for t in _TEXT}


def label(name: str, lang: str = "en", with_unit: bool = True) -> str:
    """Label of a map word (:data:`UI_TEXT`) or of a registered column; other names come back unchanged."""
    word = UI_TEXT.get(name)
    return word.label(lang, with_unit) if word else column_label(name, lang, with_unit)


def known(name: str) -> bool:
    """Whether ``name`` is a map word or a registered column."""
    return name in UI_TEXT or name in COLUMNS
