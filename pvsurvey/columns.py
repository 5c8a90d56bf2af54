"""The column registry: the single source of every column name that leaves pvsurvey.

Each column carries its unit in its name (``usable_area_m2``, ``capacity_kwp``),
a one-line description, and the Chinese and English labels used in exports and
maps. Chinese terms follow the Shanghai 2022–2025 industrial energy-saving plan
("可利用的建筑屋顶光伏安装比例", "新增装机", "可建设项目清单") and the city's
14th five-year industrial green-development plan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One output column.

    Parameters
    ----------
    name : str
        Canonical column name, unit suffix included.
    unit : str
        Unit as shown to people ("" for identifiers and text).
    description : str
        One line saying what the value is.
    label_zh, label_en : str
        Header labels for exports and maps.
    """

    name: str
    unit: str
    description: str
    label_zh: str
    label_en: str

    def label(self, lang: str = "en", with_unit: bool = True) -> str:
        """Header label in ``lang`` ('zh' or 'en'), with the unit in brackets."""
        text = self.label_zh if lang == "zh" else self.label_en
        return f"{text} ({self.unit})" if with_unit and self.unit else text


_COLUMNS = [
    # identity and location
    Column("building_id", "", "Building id: the source's id where it has one, else derived from the centroid", "建筑编号", "Building ID"),
    Column("source_row", "", "Zero-based row number of the footprint in its input file", "源数据行号", "Source row"),
    Column("park_id", "", "Industrial park id (empty when outside every park)", "园区编号", "Park ID"),
    Column("park_name", "", "Industrial park name", "园区名称", "Park"),
    Column("district", "", "District (区) the park lies in", "所在区", "District"),
    Column("name", "", "Building or enterprise name from the source", "名称", "Name"),
    Column("owner", "", "Owner or enterprise from the source", "企业/业主", "Owner"),
    Column("height_m", "m", "Building height from the source (empty where missing, unparsable, negative or absurd)", "建筑高度", "Height"),
    Column("levels", "", "Number of storeys from the source (empty where unusable)", "层数", "Storeys"),
    Column("building_height_m", "m", "Height used for shade: the source's height, else storeys × storey height of the building type", "计算用建筑高度", "Height used"),
    Column("roof_material", "", "Roof material from the source", "屋面材料", "Roof material"),
    Column("roof_construction", "", "Roof construction read from the material: steel (colour-steel sheet), concrete or unknown", "屋面结构", "Roof construction"),
    Column("roof_year", "", "Year the roof was built or last renewed, from the source", "屋面建成年份", "Roof year"),
    Column("needs_new_roof", "", "The roof will not outlast the PV (remaining service life < PV lifetime): a new roof first", "需先翻新屋面", "Needs a new roof first"),
    Column("roof_shape", "", "Roof shape used by the roof model: flat or pitched", "屋顶形式", "Roof shape"),
    # roof model and its deduction waterfall (footprint = the steps + module area)
    Column("footprint_area_m2", "m²", "Footprint area in the survey's metric CRS", "占地面积", "Footprint area"),
    Column("setback_loss_m2", "m²", "Waterfall: edge setback kept free of modules", "扣除：周边退让", "Less: edge setback"),
    Column("obstruction_loss_m2", "m²", "Waterfall: skylights, vents, HVAC and other obstructions", "扣除：屋面障碍物", "Less: obstructions"),
    Column("orientation_loss_m2", "m²", "Waterfall: the plane of a pitched roof facing away from the sun", "扣除：背阳坡面", "Less: far-side plane"),
    Column("shade_loss_m2", "m²", "Waterfall: parts of the roof losing more than the shade threshold to neighbouring buildings", "扣除：周边建筑遮挡", "Less: shade from neighbours"),
    Column("construction_loss_m2", "m²", "Waterfall: roofs excluded pending a new roof", "扣除：屋面结构（需翻新）", "Less: roof construction"),
    Column("small_roof_loss_m2", "m²", "Waterfall: what is left of roofs below the minimum usable area", "扣除：面积过小", "Less: too small"),
    Column("layout_loss_m2", "m²", "Waterfall: row spacing of tilted rows, or the gaps of flush modules less the slope's extra surface", "扣除：组件排布间距", "Less: module layout"),
    Column("module_area_m2", "m²", "Waterfall: module area that fits (usable area × coverage); capacity = module area × power density", "组件面积", "Module area"),
    Column("unusable_reason", "", "Waterfall step that left the roof without modules: setback, shade, needs_new_roof, too_small (empty: usable)", "不可利用原因", "Unusable because"),
    Column("mount", "", "Module mounting: rack (tilted rows) or flush (on the roof plane)", "安装方式", "Mounting"),
    Column("shade_loss_frac", "", "Annual insolation lost to neighbouring buildings on the part of the roof that keeps modules", "遮挡损失率", "Shade loss"),
    Column("usable_area_m2", "m²", "Roof area usable for PV after setback, obstructions, the far-side plane, shade, roof construction and minimum size (roof surface)", "可利用屋顶面积", "Usable roof area"),
    Column("surface_tilt_deg", "°", "Tilt of the PV array from horizontal", "组件倾角", "Array tilt"),
    Column("surface_azimuth_deg", "°", "Azimuth the array faces, clockwise from north (180 = south)", "组件方位角", "Array azimuth"),
    Column("coverage_frac", "", "Module area per usable roof area (ground coverage ratio for tilted rows)", "组件覆盖率", "Module coverage"),
    Column("capacity_kwp", "kWp", "DC capacity that fits on the usable roof", "可装机容量", "Capacity"),
    # yield model
    Column("ghi_kwh_per_m2_yr", "kWh/m²/yr", "Long-term annual global horizontal irradiation under the roof", "年水平面总辐照量", "Annual GHI"),
    Column("specific_yield_kwh_per_kwp", "kWh/kWp/yr", "Annual AC energy per kWp of DC capacity", "单位容量年发电量", "Specific yield"),
    Column("annual_yield_kwh", "kWh/yr", "Annual AC energy of the roof's PV system", "年发电量", "Annual yield"),
    Column("weather_cell", "", "Id of the weather cell whose hourly year gave the specific yield", "气象网格", "Weather cell"),
    # aggregates
    Column("building_count", "", "Number of surveyed buildings", "建筑数量", "Buildings"),
    Column("usable_building_count", "", "Buildings with a usable roof (usable area above the minimum)", "可利用屋顶建筑数", "Buildings with usable roof"),
    Column("needs_new_roof_count", "", "Buildings whose roof will not outlast the PV", "需先翻新屋面建筑数", "Buildings needing a new roof"),
    Column("mean_specific_yield_kwh_per_kwp", "kWh/kWp/yr", "Capacity-weighted mean specific yield", "平均单位容量年发电量", "Mean specific yield"),
    # progress toward the plan's targets (百一 plan: 可利用的建筑屋顶光伏安装比例, 新增装机)
    Column("has_pv", "", "The building carries connected PV (from the installed-PV registry)", "已安装光伏", "Has PV"),
    Column("installed_kwp", "kWp", "Connected PV capacity", "已装机容量", "Installed capacity"),
    Column("pv_status", "", "connected, under_construction, planned or none", "光伏状态", "PV status"),
    Column("usable_area_with_pv_m2", "m²", "Usable roof area of buildings with connected PV", "已安装光伏的可利用屋顶面积", "Usable roof with PV"),
    Column("buildings_with_pv", "", "Buildings with a usable roof and connected PV", "已安装光伏建筑数", "Buildings with PV"),
    Column("install_ratio_area_frac", "", "Usable roof area with PV / all usable roof area", "屋顶光伏安装比例（按面积）", "Installation ratio (area)"),
    Column("install_ratio_count_frac", "", "Buildings with PV / buildings with a usable roof", "屋顶光伏安装比例（按栋数）", "Installation ratio (count)"),
    Column("target_install_ratio", "", "Installation-ratio target", "安装比例目标", "Ratio target"),
    Column("ratio_gap_frac", "", "Target ratio minus current ratio (0 when met)", "距目标差距", "Gap to ratio target"),
    Column("ratio_gap_area_m2", "m²", "Usable roof area still to equip to reach the ratio target", "尚需安装的屋顶面积", "Roof area still needed"),
    Column("can_close_ratio_gap", "", "Candidate roofs without PV can close the ratio gap", "潜力可否补齐比例缺口", "Potential closes ratio gap"),
    Column("new_kwp_since_baseline", "kWp", "Connected capacity commissioned after the baseline date", "新增装机容量", "New capacity"),
    Column("pipeline_kwp", "kWp", "Planned and under-construction capacity", "在建及规划容量", "Pipeline capacity"),
    Column("new_capacity_target_kwp", "kWp", "New-capacity target", "新增装机目标", "New-capacity target"),
    Column("new_capacity_target_share_frac", "", "New capacity / new-capacity target", "新增装机目标完成率", "New-capacity target reached"),
    Column("new_capacity_gap_kwp", "kWp", "New capacity still needed", "新增装机缺口", "New capacity still needed"),
    Column("can_close_capacity_gap", "", "Remaining potential can close the new-capacity gap", "潜力可否补齐装机缺口", "Potential closes capacity gap"),
    Column("remaining_potential_kwp", "kWp", "Capacity of usable roofs without connected PV", "剩余可装潜力", "Remaining potential"),
    Column("remaining_potential_kwh", "kWh/yr", "Yield of usable roofs without connected PV", "剩余潜力年发电量", "Remaining potential yield"),
    Column("match_method", "", "How the registry row found its building: id, polygon, contains, nearest", "匹配方式", "Match method"),
    Column("unmatched_reason", "", "Why a registry row matched no building", "未匹配原因", "Unmatched reason"),
    Column("unmatched_message", "", "What the unmatched reason means and what to fix in the row", "未匹配说明",
           "Unmatched message"),
    # how sure are we: P90 (exceeded with 90 % probability, the low value) / P10 (the high value);
    # P50 is the figure itself (pvsurvey.model.uncertainty)
    Column("usable_area_p90_m2", "m²", "Usable roof area exceeded with 90 % probability (P90, the cautious value)", "可利用屋顶面积P90（保守值）", "Usable roof area P90 (cautious)"),
    Column("usable_area_p10_m2", "m²", "Usable roof area exceeded with only 10 % probability (P10, the high value)", "可利用屋顶面积P10（乐观值）", "Usable roof area P10 (high)"),
    Column("capacity_p90_kwp", "kWp", "Capacity exceeded with 90 % probability (P90)", "可装机容量P90（保守值）", "Capacity P90 (cautious)"),
    Column("capacity_p10_kwp", "kWp", "Capacity exceeded with only 10 % probability (P10)", "可装机容量P10（乐观值）", "Capacity P10 (high)"),
    Column("annual_yield_p90_kwh", "kWh/yr", "Annual yield exceeded with 90 % probability (P90)", "年发电量P90（保守值）", "Annual yield P90 (cautious)"),
    Column("annual_yield_p10_kwh", "kWh/yr", "Annual yield exceeded with only 10 % probability (P10)", "年发电量P10（乐观值）", "Annual yield P10 (high)"),
    Column("remaining_potential_p90_kwp", "kWp", "Remaining potential exceeded with 90 % probability (P90)", "剩余可装潜力P90（保守值）", "Remaining potential P90 (cautious)"),
    Column("remaining_potential_p10_kwp", "kWp", "Remaining potential exceeded with only 10 % probability (P10)", "剩余可装潜力P10（乐观值）", "Remaining potential P10 (high)"),
    Column("remaining_potential_p90_kwh", "kWh/yr", "Remaining potential yield exceeded with 90 % probability (P90)", "剩余潜力年发电量P90（保守值）", "Remaining potential yield P90 (cautious)"),
    Column("remaining_potential_p10_kwh", "kWh/yr", "Remaining potential yield exceeded with only 10 % probability (P10)", "剩余潜力年发电量P10（乐观值）", "Remaining potential yield P10 (high)"),
    Column("install_ratio_p90_frac", "", "Installation ratio exceeded with 90 % probability (P90; the systematic area factor cancels in a ratio)", "安装比例P90（保守值）", "Installation ratio P90 (cautious)"),
    Column("install_ratio_p10_frac", "", "Installation ratio exceeded with only 10 % probability (P10)", "安装比例P10（乐观值）", "Installation ratio P10 (high)"),
    Column("ratio_gap_p90_frac", "", "Gap to the ratio target exceeded with 90 % probability (the smaller gap)", "距目标差距P90", "Gap to ratio target P90"),
    Column("ratio_gap_p10_frac", "", "Gap to the ratio target exceeded with only 10 % probability (the larger gap)", "距目标差距P10", "Gap to ratio target P10"),
    Column("install_ratio_met_prob", "", "Probability that the ratio target is already met", "比例目标已达成的概率", "Probability ratio target met"),
    Column("new_capacity_met_prob", "", "Probability that the new-capacity target is already met (counted from the registry: 0 or 1)", "新增装机目标已达成的概率", "Probability capacity target met"),
    Column("can_close_capacity_gap_p90", "", "Even the P90 of the remaining potential closes the new-capacity gap", "保守潜力可否补齐装机缺口", "P90 potential closes capacity gap"),
    Column("simple_payback_p90_yr", "yr", "Simple payback at the P90 (cautious) yield", "静态投资回收期（P90发电量）", "Simple payback at P90 yield"),
    Column("metered_kwh_per_yr", "kWh/yr", "Annual generation metered by the grid company (registry)", "计量年发电量", "Metered annual generation"),
    Column("predicted_kwh_per_yr", "kWh/yr", "Predicted annual generation of a registered system: its capacity × its roof's specific yield", "预测年发电量", "Predicted annual generation"),
    Column("metered_to_predicted_ratio", "", "Metered / predicted annual generation", "实测与预测之比", "Metered / predicted"),
    Column("inside_band", "", "Metered generation lies inside the system's own P90-P10 band", "实测值在P90-P10区间内", "Inside its P90-P10 band"),
    # candidate projects (可建设项目清单)
    Column("project_id", "", "Stable project id: C- and the project's smallest building id", "项目编号", "Project ID"),
    Column("rank", "", "Order in the list, cheapest first", "排序", "Rank"),
    Column("building_ids", "", "Buildings of the project, ';'-separated", "所含建筑编号", "Building IDs"),
    Column("status", "", "Project status: identified, contacted, agreed, under_construction, connected, rejected",
           "项目状态", "Project status"),
    Column("status_source", "", "Who set the status: default, park manager or registry", "状态来源", "Status set by"),
    Column("notes", "", "Park manager's follow-up notes", "跟进备注", "Follow-up notes"),
    # rejected rows
    Column("reason", "", "Reason code why the input row was not accepted", "剔除原因代码", "Reason code"),
    Column("message", "", "What was wrong with the row and how to fix it", "剔除说明", "Message"),
    Column("source_file", "", "Input file the row came from", "来源文件", "Source file"),
    # project economics (pvsurvey.model.economics; parameters in pvsurvey.config.schema.Economics)
    Column("co2_avoided_t_per_yr", "tCO₂/yr", "CO₂ emissions avoided a year: first-year yield × grid emission factor", "二氧化碳减排量", "CO₂ avoided"),
    Column("coal_saved_tce_per_yr", "tce/yr", "Standard coal saved a year: first-year yield × coal burnt per kWh of coal power", "节约标准煤", "Standard coal saved"),
    Column("capex_cny", "CNY", "Turnkey investment: capacity × system cost per W", "初始投资", "Investment"),
    Column("annual_savings_cny", "CNY/yr", "First-year power bill saved plus feed-in revenue, less O&M", "首年净收益", "First-year net savings"),
    Column("simple_payback_yr", "yr", "Investment / first-year net savings (inf: never pays back)", "静态投资回收期", "Simple payback"),
    Column("lcoe_cny_per_kwh", "CNY/kWh", "Levelised cost of electricity over the lifetime at the discount rate", "平准化度电成本", "LCOE"),
    Column("npv_cny", "CNY", "Net present value over the lifetime at the discount rate", "净现值", "NPV"),
    # the hourly valuation (pvsurvey.model.tou; economics.valuation, tariff, load, policy)
    Column("building_type", "", "Building type from the source (chooses the load shape and intensity)", "建筑类型", "Building type"),
    Column("annual_consumption_kwh", "kWh/yr", "Annual electricity use from the source", "年用电量", "Annual consumption"),
    Column("grid_capacity_kw", "kW", "Connection or transformer capacity from the source", "变压器/接入容量", "Grid connection capacity"),
    Column("connection_voltage_kv", "kV", "Connection voltage from the source", "接入电压等级", "Connection voltage"),
    Column("project_category", "", "Category under the 2025 national rules (国能发新能规〔2025〕7号): general or large C&I", "项目类型(2025办法)", "Category (2025 rules)"),
    Column("annual_load_kwh", "kWh/yr", "Annual electricity use of the project's buildings (source, else floor area × intensity)", "年用电量(估)", "Annual load"),
    Column("self_consumed_share", "", "Share of the yield used on site, hour by hour against the load", "自发自用比例", "Self-consumed share"),
    Column("annual_exported_kwh", "kWh/yr", "Yield exported to the grid in the first year", "年上网电量", "Exported"),
    Column("annual_curtailed_kwh", "kWh/yr", "Yield lost to the connection limit or to a self-use-only category", "年弃光电量", "Curtailed"),
    Column("value_self_used_cny_per_kwh", "CNY/kWh", "Mean time-of-use price saved per self-used kWh", "自用电度电价值", "Value per self-used kWh"),
    Column("value_exported_cny_per_kwh", "CNY/kWh", "Price of an exported kWh (mechanism price or coal benchmark)", "上网电价", "Export price"),
    Column("value_cny_per_kwh", "CNY/kWh", "Mean value of a delivered kWh (self-used and exported)", "度电价值", "Value per kWh"),
]

COLUMNS: dict[str, Column] = {c.name: c for c in _COLUMNS}

# The deduction waterfall of each roof, in order (pvsurvey.model.roof): footprint =
# these steps + module_area_m2, exactly.
WATERFALL_STEPS = ["setback_loss_m2", "obstruction_loss_m2", "orientation_loss_m2", "shade_loss_m2",
                   "construction_loss_m2", "small_roof_loss_m2", "layout_loss_m2"]
WATERFALL_COLUMNS = WATERFALL_STEPS + ["module_area_m2"]

# Column order of buildings.parquet (geometry is appended last).
BUILDING_COLUMNS = [
    "building_id", "source_row", "park_id", "park_name", "district", "name", "owner",
    "height_m", "levels", "building_height_m", "roof_material", "roof_construction", "roof_year",
    "needs_new_roof", "roof_shape",
    "footprint_area_m2", *WATERFALL_COLUMNS, "unusable_reason",
    "usable_area_m2", "surface_tilt_deg", "surface_azimuth_deg", "mount",
    "coverage_frac", "capacity_kwp", "weather_cell", "ghi_kwh_per_m2_yr", "shade_loss_frac",
    "specific_yield_kwh_per_kwp", "annual_yield_kwh",
    "building_type", "annual_consumption_kwh", "grid_capacity_kw", "connection_voltage_kv",
]

# Summable figures of the per-park / per-district tables.
SUM_COLUMNS = ["building_count", "usable_building_count", "needs_new_roof_count", "footprint_area_m2",
               *WATERFALL_COLUMNS, "usable_area_m2", "capacity_kwp", "annual_yield_kwh"]

# Source columns taken as the building id, first present wins.
ID_SOURCES = ("building_id", "id", "osm_id", "osm_way_id", "full_plus_code", "ID", "fid")

REJECTED_COLUMNS = ["source_file", "source_row", "building_id", "reason", "message"]


def label(name: str, lang: str = "en", with_unit: bool = True) -> str:
    """Label of a registered column; unregistered names come back unchanged."""
    col = COLUMNS.get(name)
    return col.label(lang, with_unit) if col else name


def unit(name: str) -> str:
    """Unit of a registered column ('' if unitless or unknown)."""
    col = COLUMNS.get(name)
    return col.unit if col else ""
