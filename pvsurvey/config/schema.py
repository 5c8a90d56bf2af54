"""Every parameter of a survey, its default, and where the default comes from.

These pydantic models are the config schema: a survey YAML file is validated
against :class:`SurveyConfig` (unknown keys are errors). Each physical default
carries a comment with its source; the README's config reference repeats them.
"""

from __future__ import annotations

import codecs
import datetime as dt
import unicodedata
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, PlainValidator, field_validator,
                      model_validator)

from ..locations import is_url, location

# A file's or folder's location: a path (relative to the config file) or an
# fsspec URL (s3://, gs://, az://, https://...) kept verbatim; see pvsurvey.io.storage.
PathOrUrl = Annotated[Union[Path, str], PlainValidator(location), PlainSerializer(str)]

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VectorSource(_Strict):
    """A vector input file, optionally with its coordinate system and layer."""

    path: PathOrUrl
    # Declared coordinate system of the data: 'wgs84', 'gcj02', 'cgcs2000',
    # 'EPSG:nnnn', a PROJ string, WKT, or the path of a .prj file (relative to the
    # config file); read by pvsurvey.io.crs. Needed for CSV (no CRS in the file);
    # for other formats it overrides what the file says (use it when the file is
    # mislabelled).
    crs: Optional[str] = None
    layer: Optional[str] = None
    # Column holding the source's own id; by default the first present of
    # building_id, id, osm_id, osm_way_id, full_plus_code.
    id_column: Optional[str] = None
    # Text encoding of the file's attributes (CSV, Shapefile DBF without .cpg,
    # GeoJSON): any Python codec name (utf-8, gbk, gb18030, big5...). By default
    # UTF-8 (with or without BOM) or GBK/GB18030 is detected (pvsurvey.io.encoding).
    encoding: Optional[str] = None

    @field_validator("crs")
    @classmethod
    def _shortcut_crs(cls, value):
        # the shortcuts and EPSG codes in lower case; anything else pyproj reads as given
        if value is None:
            return value
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        low = value.lower()
        return low if low in ("wgs84", "gcj02", "cgcs2000") or low.startswith("epsg:") else value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value):
        if value is None:
            return value
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}; use a Python codec name such as utf-8, gbk, "
                             "gb18030 or big5") from None
        return value


# --- the file's own column names and units, per input ------------------------------------
# 'columns:' maps pvsurvey's name (the key) to the file's header (the value), e.g.
# 'capacity_kwp: 装机容量(MW)'; 'units:' says the unit of a quantity that files
# give in several. Common Chinese headers are recognised without a mapping
# (pvsurvey.io.fields); a mapping always wins.

def _unit(aliases: dict):
    def check(value):
        if value is None:
            return value
        key = str(value).strip().lower()
        if key not in aliases:
            raise ValueError(f"must be one of {', '.join(dict.fromkeys(aliases.values()))}")
        return aliases[key]
    return BeforeValidator(check)


CapacityUnit = Annotated[Optional[str], _unit({"kw": "kW", "kwp": "kWp", "mw": "MW", "mwp": "MWp"})]
HeightUnit = Annotated[Optional[str], _unit({"m": "m", "metres": "m", "meters": "m", "storeys": "storeys",
                                             "stories": "storeys", "floors": "storeys"})]


class FootprintColumns(_Strict):
    building_id: Optional[str] = None  # the same as id_column
    name: Optional[str] = None
    owner: Optional[str] = None
    height_m: Optional[str] = None
    levels: Optional[str] = None
    roof_material: Optional[str] = None
    roof_shape: Optional[str] = None
    roof_angle_deg: Optional[str] = None
    roof_year: Optional[str] = None  # year the roof was built or renewed (roof.*_service_life_yr)
    building_type: Optional[str] = None  # chooses the storey height (shade.storey_height_m) and the load (economics.load)
    # the hourly valuation's inputs (economics.valuation: hourly): the building's annual
    # electricity use [kWh/yr], its connection or transformer capacity [kW] and the
    # connection voltage [kV]; missing values are estimated (README, Method)
    annual_consumption_kwh: Optional[str] = None
    grid_capacity_kw: Optional[str] = None
    connection_voltage_kv: Optional[str] = None
    geometry: Optional[str] = None  # CSV: the WKT column


class FootprintUnits(_Strict):
    # 'storeys': the column mapped to height_m counts storeys; it is kept as levels
    height: HeightUnit = None


class ParkColumns(_Strict):
    park_id: Optional[str] = None
    name: Optional[str] = None
    district: Optional[str] = None
    geometry: Optional[str] = None  # CSV: the WKT column


class RegistryColumns(_Strict):
    registry_id: Optional[str] = None
    building_id: Optional[str] = None
    capacity_kwp: Optional[str] = None
    commissioned_on: Optional[str] = None
    status: Optional[str] = None
    lon: Optional[str] = None
    lat: Optional[str] = None
    name: Optional[str] = None
    geometry: Optional[str] = None  # CSV: a WKT column of the array's polygon
    # annual generation metered by the grid company [kWh/yr] ('pvsurvey validate')
    metered_kwh_per_yr: Optional[str] = None


class RegistryUnits(_Strict):
    # unit of the capacity column: kW and kWp are read as kWp, MW and MWp × 1000;
    # default: the unit in the header (装机容量(MW)), else kWp
    capacity: CapacityUnit = None


class FootprintSource(VectorSource):
    columns: FootprintColumns = FootprintColumns()
    units: FootprintUnits = FootprintUnits()

    @model_validator(mode="after")
    def _one_id_column(self):
        if self.id_column and self.columns.building_id and self.id_column != self.columns.building_id:
            raise ValueError(f"id_column ({self.id_column!r}) and columns.building_id ({self.columns.building_id!r}) "
                             "name different columns; keep one")
        return self


class ParkSource(VectorSource):
    columns: ParkColumns = ParkColumns()


class RegistrySource(VectorSource):
    columns: RegistryColumns = RegistryColumns()
    units: RegistryUnits = RegistryUnits()


class Irradiance(_Strict):
    ghi: PathOrUrl
    units: Literal["kWh/m2/day", "kWh/m2/yr", "W/m2"] = "kWh/m2/day"
    weather: Optional[PathOrUrl] = None
    # Side of the square lon/lat cells that each get one hourly typical year when
    # no weather file is given: 0.25° matches the GLDAS climatology grid.
    weather_cell_deg: float = Field(0.25, gt=0, le=5)


# Named rule sets of the usable-roof deduction (roof.rule_set). Each preset sets
# these keys of ``roof``; a key written in the config wins over its preset.
RULE_SETS: dict[str, dict] = {
    # Today's rules, the default: a 1 m setback, 80 % free of obstructions, tilted
    # rows at the GB 50797 spacing, 90 % flush coverage (sources at each key below).
    "shanghai": {},
    # Swiss Federal Office of Energy (SFOE/BFE), 2016 rooftop potential of
    # sonnendach.ch: roofs of at least 10 m², a "realistic occupancy" of 70 % of
    # pitched roof planes by modules, and of 70 % (below) / 80 % (from) 1,000 m² of
    # flat non-residential roofs. The factor replaces setback, obstructions and
    # layout (no separate deduction for them).
    "swiss_sfoe_2016": {"setback_m": 0.0, "obstruction_frac": 1.0, "min_usable_area_m2": 10.0,
                        "ground_coverage_ratio": 0.7, "flush_coverage_frac": 0.7,
                        "large_roof_area_m2": 1000.0, "large_roof_coverage_frac": 0.8},
    # Gagnon et al. (2016), NREL/TP-6A20-65298, as summarised in NREL's PV Rooftop
    # Database documentation: planes of at least 10 m² receiving at least 80 % of
    # the unshaded insolation; flat roofs carry modules tilted 15° facing south at a
    # module-to-roof area ratio of 0.70, tilted roofs 0.98. Obstructions and edges
    # were seen in the lidar there, so no setback or obstruction factor is applied:
    # from footprints alone this preset is an upper bound.
    "nrel_gagnon_2016": {"setback_m": 0.0, "obstruction_frac": 1.0, "min_usable_area_m2": 10.0,
                         "flat_tilt_deg": 15.0, "flat_azimuth_deg": 180.0, "ground_coverage_ratio": 0.7,
                         "flush_coverage_frac": 0.98, "shade_max_loss_frac": 0.2},
}

# Roof materials (lower case) that make a colour-steel / metal sheet roof: flush
# modules at the sheet's pitch. OSM roof:material values and Chinese names.
STEEL_MATERIALS = ("彩钢瓦", "彩钢板", "彩钢", "压型钢板", "金属", "钢", "钢板", "金属板", "metal", "steel",
                   "metal_sheet", "sheet_metal", "tin", "zinc", "aluminium", "aluminum", "copper", "colour_steel",
                   "color_steel")
# Materials of heavy flat roofs (concrete slabs, membranes on them): tilted rows.
CONCRETE_MATERIALS = ("混凝土", "钢筋混凝土", "现浇混凝土", "砼", "concrete", "reinforced_concrete", "flat",
                      "tar_paper", "asphalt", "bitumen", "gravel", "沥青", "卷材")


class Roof(_Strict):
    # Named rule set (see RULE_SETS): its values replace the defaults below; keys
    # given in the config override it in turn.
    rule_set: Literal["shanghai", "swiss_sfoe_2016", "nrel_gagnon_2016"] = "shanghai"
    # Edge setback kept free of modules [m]: access and fire pathways. 1.0 m is the
    # perimeter access band common in Chinese rooftop-PV practice for industrial
    # roofs; the US International Fire Code 2018 §1204.3.2 asks 1.2 m (4 ft).
    setback_m: float = Field(1.0, ge=0, le=20)
    # Share of the set-back roof free of skylights, vents, HVAC and shade [0..1].
    # 0.8 is a judgement inside the 0.6–0.9 range of published rooftop studies
    # (IEA-PVPS T7-4, 2002; Gagnon et al., NREL/TP-6A20-65298, 2016).
    obstruction_frac: float = Field(0.8, gt=0, le=1)
    # Roofs with less usable area than this count as unusable [m²]
    # (Gagnon et al. 2016 drop roof planes under 10 m²).
    min_usable_area_m2: float = Field(10.0, ge=0)
    # Roof shape when the source says nothing (industrial halls: mostly flat or
    # low-pitch, treated as flat with tilted rows).
    default_shape: Literal["flat", "pitched"] = "flat"
    # Flat roofs carry south-facing tilted rows [°]; 15° is the flat-roof tilt
    # of Gagnon et al. 2016 and common on Shanghai C&I roofs (wind load).
    flat_tilt_deg: float = Field(15.0, ge=0, le=60)
    flat_azimuth_deg: float = Field(180.0, ge=0, lt=360)
    # Ground coverage ratio of tilted rows [0..1]; 'auto' spaces rows so that no
    # row shades the next 9:00–15:00 solar time on the winter solstice, the rule of
    # GB 50797-2012 (光伏发电站设计规范) §6.8.
    ground_coverage_ratio: Union[Literal["auto"], float] = "auto"
    # Flat roofs of at least this footprint [m²] take large_roof_coverage_frac as
    # their module coverage, whatever the mounting (the Swiss preset's 1,000 m²
    # rule); None = no size rule.
    large_roof_area_m2: Optional[float] = Field(None, gt=0)
    large_roof_coverage_frac: Optional[float] = Field(None, gt=0, le=1)
    # Pitched roofs: flush modules on the sunnier half [°] when the source has no
    # roof angle; light-steel factory roofs are pitched about 5–10°.
    pitched_tilt_deg: float = Field(10.0, ge=0, le=60)
    # Share of a flush-mounted roof plane covered by modules (frame gaps, rails).
    flush_coverage_frac: float = Field(0.9, gt=0, le=1)
    # Footprints outside this range are rejected as implausible [m²].
    min_footprint_area_m2: float = Field(4.0, ge=0)
    max_footprint_area_m2: float = Field(1_000_000.0, gt=0)
    # --- roof construction (from the source's roof material) ---
    # Materials read as colour-steel / metal sheet and as concrete (lower case,
    # exact match after trimming); anything else is 'unknown'.
    steel_materials: tuple[str, ...] = STEEL_MATERIALS
    concrete_materials: tuple[str, ...] = CONCRETE_MATERIALS
    # Share of a roof of unknown material surveyed as colour-steel [0..1] (the rest
    # as concrete): each such roof's areas, capacity and yield are this blend of
    # both constructions. 0.5 = no information either way (judgement).
    unknown_steel_share: float = Field(0.5, ge=0, le=1)
    # Pitch of a colour-steel roof tagged flat [°]: standing-seam metal roofs drain
    # at no less than 5 % (GB 50345-2012 屋面工程技术规范), atan(0.05) = 2.86°.
    # Both planes of such a low-pitch roof carry flush modules.
    steel_sheet_pitch_deg: float = Field(2.86, ge=0, le=30)
    # Service life of the roof covering [yr], for roofs with a built/roof year: a
    # roof whose remaining life is shorter than the PV's (economics.lifetime_yr)
    # needs a new roof first. Colour-coated steel sheet: 25 yr, the long end of the
    # 15–25 yr usually quoted for coated sheet (judgement); concrete: 50 yr, the
    # design working life of ordinary buildings (GB 50068-2018 建筑结构可靠性设计统一标准).
    steel_roof_service_life_yr: float = Field(25.0, gt=0, le=200)
    concrete_roof_service_life_yr: float = Field(50.0, gt=0, le=200)
    # Deduct roofs needing a new roof first from the usable area (the waterfall's
    # construction step, reason 'needs_new_roof'). Off by default: the flagged
    # roofs stay usable and are counted apart (needs_new_roof), since many C&I
    # projects replace the sheets together with the PV (judgement).
    exclude_needs_new_roof: bool = False
    # --- shade from neighbouring buildings ---
    # Parts of a roof losing more than this share of the unshaded annual insolation
    # are deducted as shaded area; the rest keeps its yield loss. NREL keeps roof
    # planes receiving at least 80 % of the unshaded insolation (Gagnon et al. 2016).
    shade_max_loss_frac: float = Field(0.2, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _rule_set(cls, data):
        # the preset fills the keys the config does not give
        if isinstance(data, dict):
            preset = RULE_SETS.get(data.get("rule_set", "shanghai"))
            if preset is not None:
                data = {**preset, **data}
        return data

    @field_validator("ground_coverage_ratio")
    @classmethod
    def _gcr_range(cls, value):
        if value != "auto" and not 0 < value <= 1:
            raise ValueError("must be 'auto' or a number in (0, 1]")
        return value

    @field_validator("steel_materials", "concrete_materials")
    @classmethod
    def _lower(cls, value):
        return tuple(str(v).strip().lower() for v in value)

    @model_validator(mode="after")
    def _large_roof_pair(self):
        if (self.large_roof_area_m2 is None) != (self.large_roof_coverage_frac is None):
            raise ValueError("large_roof_area_m2 and large_roof_coverage_frac go together")
        if self.min_footprint_area_m2 >= self.max_footprint_area_m2:  # else every roof would be set aside
            raise ValueError(f"min_footprint_area_m2 ({self.min_footprint_area_m2:g}) must be smaller than "
                             f"max_footprint_area_m2 ({self.max_footprint_area_m2:g})")
        return self

    def overridden_keys(self) -> list[str]:
        """Keys given by hand that differ from the rule set's value (or default)."""
        preset = RULE_SETS[self.rule_set]
        out = []
        for key in sorted(self.model_fields_set - {"rule_set"}):
            default = preset.get(key, type(self).model_fields[key].default)
            if getattr(self, key) != default:
                out.append(key)
        return out


class Shade(_Strict):
    """Building heights and the shade of neighbouring buildings on each roof."""

    # Shade neighbouring buildings cast on each roof (needs heights or storeys).
    enabled: bool = True
    # Storey height [m] per building type (the source's 'building' tag) when only
    # the number of storeys is known. Residential 2.8 m: GB 50096-2011 住宅设计规范
    # §5.5.1 (层高宜为2.80m); office 3.6 m: the usual Chinese office storey height
    # (judgement within the 3.3–4.2 m of JGJ/T 67-2019 practice); industrial and
    # warehouse 5.0 m: multi-storey factories of 4.5–6 m (judgement); any other
    # type 3.0 m, the per-level height of the OSM Simple 3D Buildings convention.
    storey_height_m: dict[str, float] = Field(default_factory=lambda: {
        "residential": 2.8, "apartments": 2.8, "house": 2.8, "office": 3.6, "commercial": 3.6,
        "industrial": 5.0, "factory": 5.0, "warehouse": 5.0, "厂房": 5.0, "仓库": 5.0, "办公楼": 3.6,
        "default": 3.0})
    # Heights above this are absurd and read as unknown [m]: the Shanghai Tower
    # (632 m, 128 storeys above ground) is the tallest building in China.
    max_height_m: float = Field(632.0, gt=0)
    max_levels: int = Field(128, ge=1)
    # Spacing of the sample points on each roof where the horizon is traced [m];
    # a roof gets at most max_points_per_roof points (the spacing grows on big roofs).
    # Only roofs where some part may lose more than roof.shade_max_loss_frac get
    # points (the others are traced from their centre). 16 (was 64): half the shade
    # time on a dense synthetic city, its shaded area 7 % lower and its loss 0.1 %
    # (benchmarks/bench_shade.py; the ray-cast tests hold); assumption, no source found.
    sample_spacing_m: float = Field(8.0, gt=0, le=100)
    max_points_per_roof: int = Field(16, ge=1, le=4096)
    # Azimuth resolution of the horizon [°].
    azimuth_step_deg: float = Field(3.0, gt=0, le=30)
    # Which roofs get the grid of points: those whose screened loss (their centre's,
    # every wall brought nearer by the roof's half-diagonal) exceeds this share of
    # roof.shade_max_loss_frac, and those a taller neighbour's envelope touches; the
    # others are traced from their centre only. The screen does not widen a wall's span
    # as seen from off the centre, so a thin strip over the threshold can be missed:
    # against tracing every roof with a taller neighbour from its grid (0), the full
    # threshold (1) keeps the shaded area of six partitions of the dense synthetic city
    # within 0.7 % and the demo's within 1.4 %, and traces 64 % fewer points than 0.5
    # (0.8: within 0.01 % and 1.4 %, 43 % fewer). 0.5 until 2026-12-04, when touching
    # neighbours still went unscreened and cost the demo 11 % of its shaded area.
    # Numerical setting (judgement, measured in README *Performance*).
    screen_frac: float = Field(1.0, ge=0, le=1)
    # Neighbours are searched up to where they could still hide the sun at 5°
    # elevation (height difference / tan 5°), and never farther than this [m].
    max_distance_m: float = Field(300.0, gt=0, le=5000)


class System(_Strict):
    # Module STC power per module area [kWp/m²]: 21% efficiency, the 2024
    # mainstream of mono PERC/TOPCon modules (ITRPV 15th ed., 2024).
    module_power_density_kwp_per_m2: float = Field(0.21, gt=0, le=0.5)
    # Temperature coefficient of power [1/°C]; PVWatts v5 standard module
    # (Dobos 2014, NREL/TP-6A20-62641) uses -0.0047; TOPCon datasheets -0.0030;
    # -0.0035 is typical of 2024 PERC/TOPCon.
    temperature_coefficient_per_c: float = Field(-0.0035, ge=-0.01, le=0)
    # System losses [%], the PVWatts v5 breakdown and defaults (Dobos 2014),
    # combined by pvlib.pvsystem.pvwatts_losses (14.08 % in all).
    soiling_pct: float = Field(2.0, ge=0, le=100)
    shading_pct: float = Field(3.0, ge=0, le=100)
    snow_pct: float = Field(0.0, ge=0, le=100)
    mismatch_pct: float = Field(2.0, ge=0, le=100)
    wiring_pct: float = Field(2.0, ge=0, le=100)
    connections_pct: float = Field(0.5, ge=0, le=100)
    lid_pct: float = Field(1.5, ge=0, le=100)
    nameplate_rating_pct: float = Field(1.0, ge=0, le=100)
    age_pct: float = Field(0.0, ge=0, le=100)
    availability_pct: float = Field(3.0, ge=0, le=100)
    # DC/AC ratio (PVWatts v5 default 1.2) and nominal inverter efficiency
    # (PVWatts v5 default 0.96, pvlib.inverter.pvwatts).
    dc_ac_ratio: float = Field(1.2, gt=0, le=3)
    inverter_efficiency_nominal: float = Field(0.96, gt=0, le=1)
    transposition_model: Literal["perez", "haydavies"] = "perez"
    # Ground albedo seen by the array (pvlib default for unknown surfaces).
    albedo: float = Field(0.25, ge=0, le=1)


class Climate(_Strict):
    """The typical year made when no weather file is given: its shape, air temperature and wind.

    ``typical_year``: ``climate`` (default) builds each weather cell's year from
    the bundled monthly climatology (MERRA-2 monthly GHI and its day-to-day
    spread, from gsee-climate-data 1.0.0; see README Method); ``clearsky`` is
    the older clear sky scaled to the annual total. ``temp_air_mean_c`` and
    ``wind_speed_m_s``: empty (default) take the annual mean air temperature
    and the mean 10 m wind (√π/2 × its RMS, as for Rayleigh-distributed
    speeds) of the bundled GLDAS NOAH 0.25° climatology (pvcz 0.3.0) at the
    weather cell; a number is used everywhere. The amplitudes are Shanghai
    (Xujiahui) climate normals 1991–2020 of the China Meteorological
    Administration, rounded (annual mean 17.1 °C, January 4.8 °C, July 29.0 °C;
    a mean diurnal range of about 7 °C), and apply wherever they are not set:
    the bundled climatology has no monthly temperatures.
    """

    typical_year: Literal["climate", "clearsky"] = "climate"
    # annual means on Earth lie between about -55 °C (the East Antarctic plateau) and 35 °C (Dallol, Ethiopia)
    temp_air_mean_c: float | None = Field(None, ge=-60.0, le=40.0)
    temp_air_seasonal_amplitude_c: float = Field(12.1, ge=0)
    temp_air_diurnal_amplitude_c: float = Field(3.5, ge=0)
    wind_speed_m_s: float | None = Field(None, ge=0)


Ratio = Annotated[float, Field(gt=0, le=1)]
MW = Annotated[float, Field(ge=0)]


class PlanName(_Strict):
    """A plan's name as people read it, in Chinese and English."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class PlanTargets(_Strict):
    # Installation-ratio target [0..1] and new-capacity target [MW] (0: none).
    install_ratio: Ratio
    new_capacity_mw: MW
    # Optional per-district / per-park overrides of the ratio target [0..1] and
    # new-capacity targets [MW] (keys: district names / park ids).
    district_install_ratio: dict[str, Ratio] = Field(default_factory=dict)
    park_install_ratio: dict[str, Ratio] = Field(default_factory=dict)
    district_new_capacity_mw: dict[str, MW] = Field(default_factory=dict)
    park_new_capacity_mw: dict[str, MW] = Field(default_factory=dict)


class PlanScope(_Strict):
    """Where a plan applies: the whole city (both lists empty, or ``scope: city``),
    or the listed districts and parks (names as in the parks file's ``district``,
    park ids as in its ``park_id``); checked against the parks file when a run starts."""

    districts: tuple[str, ...] = ()
    parks: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _city(cls, data):
        if data == "city" or data is None:
            return {}
        if isinstance(data, str):
            raise ValueError("must be 'city' or a mapping with 'districts' and/or 'parks' lists")
        return data

    @property
    def is_city(self) -> bool:
        return not self.districts and not self.parks


class Plan(_Strict):
    """A named plan: its targets, period, scope and source document.

    New capacity counts connected systems commissioned after ``baseline_date``
    and on or before ``deadline`` (and the run's as-of date); after the deadline
    the plan is assessed at the deadline and never forecast again.
    """

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: PlanName
    # The document that sets the targets (its number), or what else they rest on.
    source: str = Field(min_length=1)
    baseline_date: dt.date
    deadline: dt.date
    targets: PlanTargets
    scope: PlanScope = PlanScope()
    # The plan's ratio basis; None: the config's progress.ratio_basis.
    ratio_basis: Optional[Literal["area", "count"]] = None

    @field_validator("deadline")
    @classmethod
    def _after_baseline(cls, value, info):
        baseline = info.data.get("baseline_date")
        if baseline is not None and value <= baseline:
            raise ValueError(f"must be after the baseline_date {baseline.isoformat()}")
        return value

    def label(self, lang: str = "en") -> str:
        """The plan's name in ``lang``."""
        return self.name.zh if lang == "zh" else self.name.en


class Targets(_Strict):
    """The default plan written flat (the ``targets:`` key of configs written
    before ``plans:``): every default here is the 百一 plan's."""

    # 百一 plan (沪经信节〔2022〕167号): usable industrial roofs with PV ≥ 50 %,
    # at least 1 GW newly installed, over 2022–2025.
    id: str = Field("baiyi-2022-2025", min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: PlanName = PlanName(zh="上海市工业和通信业节能降碳“百一”行动计划（2022-2025）",
                              en="Shanghai industry and communications energy-saving and carbon-reduction "
                                 "'Baiyi' action plan (2022-2025)")
    source: str = Field("沪经信节〔2022〕167号", min_length=1)
    install_ratio: Ratio = 0.5
    new_capacity_mw: MW = 1000.0
    baseline_date: dt.date = dt.date(2022, 1, 1)
    deadline: dt.date = dt.date(2025, 12, 31)
    # Optional per-district / per-park overrides of the ratio target [0..1] and
    # new-capacity targets [MW] (keys: district names / park ids).
    district_install_ratio: dict[str, Ratio] = Field(default_factory=dict)
    park_install_ratio: dict[str, Ratio] = Field(default_factory=dict)
    district_new_capacity_mw: dict[str, MW] = Field(default_factory=dict)
    park_new_capacity_mw: dict[str, MW] = Field(default_factory=dict)
    scope: PlanScope = PlanScope()
    ratio_basis: Optional[Literal["area", "count"]] = None

    @field_validator("deadline")
    @classmethod
    def _after_baseline(cls, value, info):
        return Plan._after_baseline(value, info)

    def as_plan(self) -> Plan:
        """This flat form as a :class:`Plan`."""
        flat = self.model_dump()
        targets = {k: flat.pop(k) for k in PlanTargets.model_fields}
        return Plan.model_validate({**flat, "targets": targets})

    @classmethod
    def of_plan(cls, plan: Plan) -> "Targets":
        """A plan in this flat form."""
        flat = plan.model_dump()
        targets = flat.pop("targets")
        return cls.model_validate({**flat, **targets})


class Progress(_Strict):
    # Registry rows located by a point match the nearest building within this
    # distance when no building contains the point [m] (typical geocoding error).
    match_distance_m: float = Field(30.0, ge=0, le=1000)
    # Installation ratio basis: usable roof area (the plan's "可利用的建筑屋顶") or building count.
    ratio_basis: Literal["area", "count"] = "area"
    # Date the figures describe (a registry snapshot's date); default: the day of the run.
    as_of: Optional[dt.date] = None
    # History CSV kept beside the runs; default <run dir's parent>/<name>-history.csv.
    history_file: Optional[Path] = None
    # Runs used for the pace (least-squares slope) and the forecast.
    pace_window_runs: int = Field(5, ge=2, le=1000)


# ---- hourly (time-of-use) valuation of candidate projects (issue 16) -------------------------

# Day types of the tariff schedule and the load shapes: a working day (工作日, including the
# weekend days the State Council's holiday notice turns into working days, 调休), a weekend
# day off, and a statutory holiday (法定节假日 and the days off around it), from the
# chinese-calendar package for the configured year.
DAY_TYPES = ("workday", "weekend", "holiday")

# Shanghai's time-of-use schedule for industrial & commercial two-part (两部制) and other
# TOU customers: 上海市发展和改革委员会《关于进一步完善我市分时电价机制有关事项的通知》
# 沪发改价管〔2022〕50号 (published 16 Dec 2022, in force 1 Jan 2023), as restated in
# 国网上海市电力公司 agency-purchase (代理购电) price notices:
#  - Jul–Sep: peak 8–15 h and 18–21 h (Jul and Aug: 12–14 h sharp peak 尖峰), flat 6–8,
#    15–18, 21–22 h, valley 22–6 h;
#  - other months: peak 8–11 and 18–21 h (Jan and Dec: 19–21 h sharp peak), flat 6–8,
#    11–18, 21–22 h, valley 22–6 h;
#  - summer (Jul–Sep) and winter (Jan, Dec): peak +80 %, valley −60 % of the flat price,
#    sharp peak = peak +25 %; other months peak +60 %, valley −50 %.
# The flat (平段) price itself, 0.65 CNY/kWh, is an ASSUMPTION: it is set each month by the
# agency-purchase notice and no 2025–26 figure was found; the ratios are the notice's. The
# notice floats the whole energy price here (simplification: the notice excludes some
# components, such as funds and surcharges, from the float). The large-industry deep-valley
# price (沪发改价管〔2024〕28号: 0–6 h and 22–24 h on holidays) falls at night, when PV yields
# nothing, and is left out.
_SH_FLAT = 0.65
SHANGHAI_TOU_2023 = {
    "source": "沪发改价管〔2022〕50号 (2022-12-16), ratios; flat price 0.65 CNY/kWh an assumption",
    "prices_cny_per_kwh": {
        "sharp": round(_SH_FLAT * 1.8 * 1.25, 4), "peak_high": round(_SH_FLAT * 1.8, 4),
        "peak": round(_SH_FLAT * 1.6, 4), "flat": _SH_FLAT,
        "valley_low": round(_SH_FLAT * 0.4, 4), "valley": round(_SH_FLAT * 0.5, 4)},
    "schedule": [
        # Jul, Aug
        {"period": "valley_low", "months": [7, 8], "hours": [[0, 6], [22, 24]]},
        {"period": "flat", "months": [7, 8], "hours": [[6, 8], [15, 18], [21, 22]]},
        {"period": "peak_high", "months": [7, 8], "hours": [[8, 12], [14, 15], [18, 21]]},
        {"period": "sharp", "months": [7, 8], "hours": [[12, 14]]},
        # Sep
        {"period": "valley_low", "months": [9], "hours": [[0, 6], [22, 24]]},
        {"period": "flat", "months": [9], "hours": [[6, 8], [15, 18], [21, 22]]},
        {"period": "peak_high", "months": [9], "hours": [[8, 15], [18, 21]]},
        # Jan, Dec
        {"period": "valley_low", "months": [1, 12], "hours": [[0, 6], [22, 24]]},
        {"period": "flat", "months": [1, 12], "hours": [[6, 8], [11, 18], [21, 22]]},
        {"period": "peak_high", "months": [1, 12], "hours": [[8, 11], [18, 19]]},
        {"period": "sharp", "months": [1, 12], "hours": [[19, 21]]},
        # Feb–Jun, Oct, Nov
        {"period": "valley", "months": [2, 3, 4, 5, 6, 10, 11], "hours": [[0, 6], [22, 24]]},
        {"period": "flat", "months": [2, 3, 4, 5, 6, 10, 11], "hours": [[6, 8], [11, 18], [21, 22]]},
        {"period": "peak", "months": [2, 3, 4, 5, 6, 10, 11], "hours": [[8, 11], [18, 21]]},
    ],
}
# Named tariffs (economics.tariff.preset); keys written in the config win over the preset's.
TARIFF_PRESETS: dict[str, dict] = {"shanghai_tou_2023": SHANGHAI_TOU_2023}


class TariffRule(_Strict):
    """Hours [start, end) of one period in some months and day types."""

    period: str
    months: tuple[int, ...] = tuple(range(1, 13))
    day_types: tuple[Literal["workday", "weekend", "holiday"], ...] = DAY_TYPES
    hours: tuple[tuple[int, int], ...]

    @field_validator("months")
    @classmethod
    def _months(cls, value):
        bad = [m for m in value if not 1 <= m <= 12]
        if bad or not value:
            raise ValueError(f"months must be 1..12 (got {list(value)})")
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value):
        for start, end in value:
            if not 0 <= start < end <= 24:
                raise ValueError(f"hours are [start, end) pairs with 0 ≤ start < end ≤ 24 (got [{start}, {end}])")
        return value


class Tariff(_Strict):
    """Time-of-use tariff: a price per period, periods by hour, month and day type."""

    preset: Optional[str] = "shanghai_tou_2023"
    source: str = ""
    prices_cny_per_kwh: dict[str, float] = {}
    schedule: tuple[TariffRule, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data):
        data = dict(data) if isinstance(data, dict) else data
        if isinstance(data, dict):
            name = data.get("preset", "shanghai_tou_2023")
            if name is not None:
                if name not in TARIFF_PRESETS:
                    raise ValueError(f"unknown tariff preset {name!r}; one of {', '.join(TARIFF_PRESETS)} "
                                     "or preset: null with your own prices_cny_per_kwh and schedule")
                data = {**TARIFF_PRESETS[name], **data}
        return data

    @field_validator("prices_cny_per_kwh")
    @classmethod
    def _prices(cls, value):
        neg = {k: v for k, v in value.items() if not v >= 0}
        if neg:
            raise ValueError(f"prices must be ≥ 0 CNY/kWh; {', '.join(f'{k}={v}' for k, v in neg.items())}")
        return value

    @model_validator(mode="after")
    def _covers_each_hour_once(self):
        if not self.prices_cny_per_kwh or not self.schedule:
            raise ValueError("give prices_cny_per_kwh and a schedule (or a preset)")
        seen: dict[tuple, str] = {}
        for rule in self.schedule:
            if rule.period not in self.prices_cny_per_kwh:
                raise ValueError(f"schedule names period {rule.period!r}, which has no price in prices_cny_per_kwh")
            for m in rule.months:
                for d in rule.day_types:
                    for start, end in rule.hours:
                        for h in range(start, end):
                            if (m, d, h) in seen:
                                raise ValueError(f"schedule overlap: month {m}, {d}, hour {h} is both "
                                                 f"{seen[(m, d, h)]!r} and {rule.period!r}")
                            seen[(m, d, h)] = rule.period
        for m in range(1, 13):
            for d in DAY_TYPES:
                for h in range(24):
                    if (m, d, h) not in seen:
                        raise ValueError(f"schedule gap: month {m}, {d}, hour {h} has no period")
        return self


class LoadShape(_Strict):
    """A factory's hourly load, relative [any unit, scaled to the annual consumption],
    24 values for each day type."""

    workday: tuple[float, ...]
    weekend: tuple[float, ...]
    holiday: tuple[float, ...]

    @model_validator(mode="after")
    def _whole_days(self):
        for name in DAY_TYPES:
            values = getattr(self, name)
            if len(values) != 24:
                raise ValueError(f"{name} must give 24 hourly values, one per hour 0..23 (got {len(values)}); "
                                 "a load profile must cover every hour of the year")
            if any(not v >= 0 for v in values):
                raise ValueError(f"{name}: hourly values must be ≥ 0")
        if not sum(self.workday) + sum(self.weekend) + sum(self.holiday) > 0:
            raise ValueError("all hourly values are 0: the shape has no load to scale")
        return self


def _day(base: float, on: float, start: int, end: int) -> tuple[float, ...]:
    return tuple(on if start <= h < end else base for h in range(24))


# Typical factory load shapes (relative power by hour). ASSUMPTION, no source found: round
# figures of a base load (lighting, HVAC, idle machines) outside the shifts and full load in
# them — one shift 8–17 h, two shifts 6–22 h, three shifts round the clock; warehouses run
# lights and handling 7–19 h; offices / R&D 8–18 h. Weekends and holidays fall to the base
# except for three-shift plants, which run at 90 % / 80 %.
LOAD_SHAPES: dict[str, dict] = {
    "one_shift": {"workday": _day(0.15, 1.0, 8, 17), "weekend": _day(0.15, 0.15, 0, 0),
                  "holiday": _day(0.1, 0.1, 0, 0)},
    "two_shift": {"workday": _day(0.2, 1.0, 6, 22), "weekend": _day(0.2, 0.5, 6, 22),
                  "holiday": _day(0.15, 0.15, 0, 0)},
    "three_shift": {"workday": _day(1.0, 1.0, 0, 24), "weekend": _day(0.9, 0.9, 0, 24),
                    "holiday": _day(0.8, 0.8, 0, 24)},
    "warehouse": {"workday": _day(0.2, 0.6, 7, 19), "weekend": _day(0.2, 0.2, 0, 0),
                  "holiday": _day(0.15, 0.15, 0, 0)},
    "office": {"workday": _day(0.25, 1.0, 8, 18), "weekend": _day(0.25, 0.25, 0, 0),
               "holiday": _day(0.2, 0.2, 0, 0)},
}


class BuildingTypeLoad(_Strict):
    load_shape: str
    # annual electricity per m² of floor area [kWh/m²/yr]
    intensity_kwh_per_m2_yr: float = Field(gt=0)


# Building type (the footprints' building_type, lower case) -> load shape and electricity
# intensity per m² of floor area. ASSUMPTION, no source found for Shanghai factories:
# 100 kWh/m²/yr for light-industry floor space, 40 for warehouses, 120 for offices / R&D
# (the order of magnitude of GB/T 51161-2016 民用建筑能耗标准 office constraint values,
# 85–110 kWh/m²/yr in the hot-summer-cold-winter zone, rounded up for R&D labs).
BUILDING_TYPE_LOADS: dict[str, dict] = {
    "industrial": {"load_shape": "two_shift", "intensity_kwh_per_m2_yr": 100.0},
    "factory": {"load_shape": "two_shift", "intensity_kwh_per_m2_yr": 100.0},
    "manufacture": {"load_shape": "two_shift", "intensity_kwh_per_m2_yr": 100.0},
    "厂房": {"load_shape": "two_shift", "intensity_kwh_per_m2_yr": 100.0},
    "warehouse": {"load_shape": "warehouse", "intensity_kwh_per_m2_yr": 40.0},
    "仓库": {"load_shape": "warehouse", "intensity_kwh_per_m2_yr": 40.0},
    "office": {"load_shape": "office", "intensity_kwh_per_m2_yr": 120.0},
    "commercial": {"load_shape": "office", "intensity_kwh_per_m2_yr": 120.0},
    "办公": {"load_shape": "office", "intensity_kwh_per_m2_yr": 120.0},
    "研发": {"load_shape": "office", "intensity_kwh_per_m2_yr": 120.0},
}


class Load(_Strict):
    """The factories' load, against which self-consumption is computed hour by hour."""

    shapes: dict[str, LoadShape] = {k: LoadShape(**v) for k, v in LOAD_SHAPES.items()}
    building_types: dict[str, BuildingTypeLoad] = {k: BuildingTypeLoad(**v) for k, v in BUILDING_TYPE_LOADS.items()}
    # Type of buildings without a known building_type (most roofs in industrial parks are
    # factories; assumption).
    default_building_type: str = "industrial"
    # Floor area = footprint × storeys; roofs without storeys count this many (assumption:
    # most industrial sheds have one storey).
    default_levels: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _known_shapes(self):
        for name, bt in self.building_types.items():
            if bt.load_shape not in self.shapes:
                raise ValueError(f"building_types.{name}.load_shape {bt.load_shape!r} is not one of the shapes "
                                 f"({', '.join(self.shapes)})")
        if self.default_building_type not in self.building_types:
            raise ValueError(f"default_building_type {self.default_building_type!r} is not one of building_types")
        return self


class Policy(_Strict):
    """The 2025 national rules for distributed PV and the export price.

    国家能源局《分布式光伏发电开发建设管理办法》国能发新能规〔2025〕7号 (17 Jan 2025,
    published 23 Jan 2025), art. 5 as summarised in secondary sources (the official text
    was not retrieved here): general C&I distributed PV (一般工商业) connects to the public
    grid at ≤ 10 kV with ≤ 6 MW in total and may choose full self-use or self-use with
    surplus export (自发自用余电上网); large C&I (大型工商业) projects, above those limits,
    in principle use all their power on site (全部自发自用); where the spot market runs
    continuously they may export the surplus into it.
    """

    general_max_capacity_kw: float = Field(6000.0, gt=0)
    general_max_voltage_kv: float = Field(10.0, gt=0)
    # Large C&I exports its surplus (only where a continuous spot market runs); false:
    # self-use only, the surplus is curtailed (anti-backflow protection, 防逆流).
    large_export_allowed: bool = False
    # Connection voltage of a project without one in the data [kV], by capacity: up to
    # 400 kW at 0.38 kV, up to 6 MW at 10 kV, above at 35 kV — the usual ranges of
    # 国家电网 Q/GDW 1480-2015 分布式电源接入电网技术规定 (as commonly summarised).
    voltage_steps_kw: tuple[float, ...] = (400.0, 6000.0)
    voltage_steps_kv: tuple[float, ...] = (0.38, 10.0, 35.0)
    # 国家发展改革委 国家能源局《关于深化新能源上网电价市场化改革 促进新能源高质量发展的通知》
    # 发改价格〔2025〕136号 (27 Jan 2025): projects connected from 1 Jun 2025 sell their power
    # through the market, settled against a mechanism price set by provincial bidding.
    switch_date: dt.date = dt.date(2025, 6, 1)
    # Export price of projects connected after the switch [CNY/kWh]. ASSUMPTION: no
    # Shanghai bidding result was found; 136号文 caps existing projects' mechanism price at
    # the coal benchmark, and this default takes 0.38, below Shanghai's 0.4155 benchmark.
    mechanism_price_cny_per_kwh: float = Field(0.38, ge=0)
    # Date the candidates would connect (decides which export price applies); assumption:
    # a project listed now connects next summer.
    commissioning_date: dt.date = dt.date(2026, 6, 30)

    @model_validator(mode="after")
    def _steps(self):
        if len(self.voltage_steps_kv) != len(self.voltage_steps_kw) + 1:
            raise ValueError("voltage_steps_kv needs one value more than voltage_steps_kw")
        if list(self.voltage_steps_kw) != sorted(self.voltage_steps_kw):
            raise ValueError("voltage_steps_kw must increase")
        return self


class Economics(_Strict):
    """Shanghai C&I rooftop economics, describing the year 2024."""

    # Turnkey C&I distributed-PV system cost [CNY/W]: CPIA 中国光伏产业发展路线图
    # (2023–2024), 工商业分布式 about 3.0 元/W in 2024.
    capex_cny_per_w: float = Field(3.0, gt=0)
    # Share of the yield used on site (self-consumption) [0..1]; a planning assumption.
    self_consumed_frac: float = Field(0.7, ge=0, le=1)
    # Average Shanghai general industrial & commercial tariff paid for grid power
    # [CNY/kWh], 10 kV time-of-use average (上海市发改委 电价表, 2024), rounded.
    tariff_cny_per_kwh: float = Field(0.75, ge=0)
    # Exported power is paid Shanghai's coal-fired benchmark price [CNY/kWh]
    # (燃煤发电基准价 0.4155 元/kWh, 国家发改委 2019).
    feed_in_cny_per_kwh: float = Field(0.4155, ge=0)
    # O&M [CNY/kW/yr]: about 1.3 % of capex a year (CPIA 2024).
    om_cny_per_kw_yr: float = Field(40.0, ge=0)
    discount_rate: float = Field(0.06, ge=0, le=1)
    lifetime_yr: int = Field(25, ge=1, le=60)
    # Annual module degradation [1/yr] (CPIA 2024: ≤ 0.4 %/yr for mono modules).
    degradation_per_yr: float = Field(0.004, ge=0, le=0.1)
    # Grid emission factor [tCO2/MWh]: Shanghai's purchased-electricity factor,
    # 4.2 tCO2/10⁴ kWh (上海市生态环境局, 2022).
    emission_factor_t_per_mwh: float = Field(0.42, ge=0)
    # Standard coal per kWh of coal power supplied [kgce/kWh]: 302 gce/kWh, the
    # 2023 national average of China Electricity Council.
    coal_kgce_per_kwh: float = Field(0.302, ge=0)
    # Smallest project worth listing as a candidate [kWp].
    min_candidate_kwp: float = Field(50.0, ge=0)
    # How a kWh is valued (issue 16): 'hourly' — self-consumption hour by hour against the
    # factory's load, the time-of-use tariff, grid limits and the 2025 rules; 'flat' — the
    # pre-2025 planning figures above (self_consumed_frac, tariff_cny_per_kwh,
    # feed_in_cny_per_kwh), kept for comparison.
    valuation: Literal["hourly", "flat"] = "hourly"
    tariff: Tariff = Tariff()
    load: Load = Load()
    policy: Policy = Policy()
    # Year whose calendar (weekdays, statutory holidays, 调休 working days) the hourly
    # valuation uses; chinese-calendar knows 2004 to its release's year.
    calendar_year: int = Field(2025, ge=2004, le=2100)

    @field_validator("calendar_year")
    @classmethod
    def _known_year(cls, value):
        import chinese_calendar
        try:
            chinese_calendar.is_holiday(dt.date(value, 6, 1))
        except NotImplementedError:
            raise ValueError(f"the installed chinese-calendar has no holidays for {value}; "
                             "pick an earlier year or upgrade chinese-calendar") from None
        return value


# --- how sure are we: the uncertainty model (pvsurvey.model.uncertainty) ------------------
# Every figure is the median (P50) of a lognormal whose log-spread comes from the
# sources below, each a relative standard deviation (1 sigma, as a fraction of the
# value). "systematic" parts are one draw for the whole city: they do not average
# out in a total. The others are drawn once per weather cell or per building.

# Systematic error of the long-term annual GHI, per kind of irradiance source [1 sigma].
IRRADIANCE_SOURCE_FRAC: dict[str, float] = {
    # reanalysis / land-data assimilation (GLDAS, ERA5, MERRA-2): over Shanghai the
    # GLDAS climatology (about 1,310 kWh/m2/yr) and an ERA5 typical year for Hongqiao
    # (about 1,470) lie 12 % apart (pvsurvey issue 15, 2026); read as the difference
    # of two independent errors, 12 %/sqrt(2) = 8.5 %. Yang et al., Remote Sens. 17(7)
    # 1317 (2025) find hourly mean absolute deviations of 27-50 % for ERA5 and MERRA-2
    # over China.
    "reanalysis": 0.085,
    # satellite-derived (Himawari, SARAH, Solargis, CERES): 5 % for the long-term mean
    # horizontal insolation, Thevenard & Pelland, Solar Energy 91 (2013) 432-445
    # (their case study's estimate; IEA-PVPS T13-12:2018, Reise et al., discusses the
    # same source of uncertainty).
    "satellite": 0.05,
    # a ground station's measured long-term mean nearby. Assumption, no source
    # checked: 3 %, a well-kept thermopile pyranometer's annual sum.
    "ground": 0.03,
}


class Uncertainty(_Strict):
    """The stated uncertainty model behind the P90 / P50 / P10 bands (README, *How sure are we*)."""

    # false: no band columns, no band figures (the run's numbers are unchanged either way).
    enabled: bool = True
    # What kind of source the GHI raster is (the demo's GLDAS is a reanalysis product).
    irradiance_source: Literal["reanalysis", "satellite", "ground"] = "reanalysis"
    # Overrides IRRADIANCE_SOURCE_FRAC[irradiance_source] when given [1 sigma, fraction].
    irradiance_systematic_frac: Optional[float] = Field(None, ge=0, le=1)
    # Per weather cell, independent between cells: the local part of the raster's
    # error once the city-wide bias is removed. Assumption, no source found for
    # 0.25 deg cells over China; 3 % is half the satellite products' long-term spread
    # (Thevenard & Pelland 2013: 5 %).
    irradiance_cell_frac: float = Field(0.03, ge=0, le=1)
    # Usable-area factors (obstructions, setback, layout), systematic part: the
    # obstruction share spans 0.6-0.9 in published rooftop studies (IEA-PVPS T7-4
    # 2002; Gagnon et al., NREL/TP-6A20-65298, 2016; the same span as roof.obstruction_frac);
    # a uniform 0.6-0.9 around 0.8 has a standard deviation of 0.087, 10.8 % of 0.8.
    area_systematic_frac: float = Field(0.108, ge=0, le=1)
    # Usable-area factors, per building (independent between roofs): one roof's
    # obstructed share is the weakest link of every footprint estimate; automatic
    # detection of occupied roof area reaches an IoU of only about 0.35 (issue 15).
    # Assumption, no published per-roof spread found: 25 %.
    area_building_frac: float = Field(0.25, ge=0, le=1)
    # Model chain (transposition, temperature, losses), systematic: annual yields
    # spread -5 % to +8 % between reasonable model choices (issue 15); read as a 90 %
    # range, 13 %/(2 x 1.645) = 4 %. Thevenard & Pelland (2013): 3 % for the
    # plane-of-array model, 5 % for other sources.
    model_chain_frac: float = Field(0.04, ge=0, le=1)
    # The hourly typical year built without a weather file, systematic (applied only
    # when irradiance.weather is not given): pvsurvey's own year gave specific yields
    # -5 % to +3 % off real typical years at five sites with the same annual GHI
    # (issue 15, 2026); read as a 90 % range, 8 %/3.29 = 2.5 %, rounded up to 3 %.
    typical_year_frac: float = Field(0.03, ge=0, le=1)
    # One year's weather against the long-term mean, used only by 'pvsurvey validate'
    # (a metered year is one year, the prediction a long-term mean): 3.9 %, the
    # year-to-year climate variability of Thevenard & Pelland, Solar Energy 91 (2013) 432-445.
    interannual_frac: float = Field(0.039, ge=0, le=1)

    def irradiance_frac(self) -> float:
        """The systematic GHI error used [1 sigma, fraction]."""
        return (self.irradiance_systematic_frac if self.irradiance_systematic_frac is not None
                else IRRADIANCE_SOURCE_FRAC[self.irradiance_source])


class Parallel(_Strict):
    # Footprints per partition: small enough for bounded memory, big enough to
    # amortise task overhead (about 40 MB of working memory per 50k buildings).
    partition_rows: int = Field(50_000, ge=1)
    # None = local machine; 'tcp://host:port' = an existing dask.distributed cluster.
    scheduler: Optional[str] = None
    workers: Optional[int] = Field(None, ge=1)
    # A local run keeps a round of tasks in its own process when it has at most
    # this many rows to compute (cached partitions excluded): about 3 s of work on
    # one core, what starting the worker processes costs (bench_incremental.py).
    # 0 = always start the local cluster.
    in_process_max_rows: int = Field(100_000, ge=0)
    # Whether a remote cluster's workers mount the run directory (an HPC
    # filesystem, a ReadWriteMany volume): 'auto' asks them at the start of the
    # run; where they do not, each task's files travel with it through this
    # process (pvsurvey.execution.shipping). false: always send them.
    shared_filesystem: Literal["auto", True, False] = "auto"
    # How a local run's worker processes start: 'forkserver' forks them from one
    # process that imported the task code once (1M roofs on 2 cores: 3–10 % less CPU
    # in alternated runs, less memory; pvsurvey.execution.executor._forkserver_config); 'spawn'
    # starts each as a new Python (dask's default), e.g. where a worker must see
    # environment variables set after the first local cluster of the process.
    worker_start: Literal["forkserver", "spawn"] = "forkserver"


class Output(_Strict):
    # Published runs kept behind the run directory's pointer; older ones are
    # removed after each successful run (two weeks of nightly runs by default).
    keep_runs: int = Field(14, ge=1, le=10_000)
    # Header language of the candidate lists each run writes for park managers.
    lang: Literal["zh", "en"] = "zh"
    # Object storage each finished run is copied to (s3://bucket/prefix, gs://...,
    # az://...), as runs/<run-id>/ with a LATEST object naming the newest, and
    # keep_runs kept there too; None = the run directory only. See pvsurvey.store.object_storage.
    publish_url: Optional[str] = None

    @field_validator("publish_url")
    @classmethod
    def _a_url(cls, value):
        if value is not None and not is_url(value):
            raise ValueError("must be an object-storage URL such as s3://bucket/pvsurvey/shanghai "
                             "(a local or shared folder is what --out is for)")
        return value


class Maps(_Strict):
    # Folder where the latest run's maps land under stable names (index.html,
    # park-<id>.html) for a web server; relative to the config file, or an
    # object-storage URL served as a static site. None = do not publish.
    publish_dir: Optional[PathOrUrl] = None
    lang: Literal["zh", "en"] = "zh"
    # Base map: OpenStreetMap, Tianditu (天地图, needs a key), Gaode/AMap (GCJ-02), or none.
    tiles: Literal["osm", "tianditu", "gaode", "none"] = "osm"
    # Tianditu key; the environment variable TIANDITU_KEY is used when this is empty.
    tianditu_key: Optional[str] = None
    # Maps that load no script, style or font from the network: Leaflet and its
    # plugins (~200 KB) sit beside the HTML, so pages work on an intranet and from
    # file://; false loads the same pinned files from a public CDN.
    offline: bool = True


class Checks(_Strict):
    """When a successful run still exits with code 3 ("look at the rows set aside").

    Every run sets some rows aside (real extracts carry broken rings, registries
    carry systems with no roof in the survey); the run succeeds and its summary
    line counts them. Exit code 3 is kept for nights worth a look: past these
    thresholds. The defaults are judgement, not a published figure: a clean
    municipal or OSM footprint extract loses well under 1 % of its rows to
    geometry errors, and a registry that fails to match more than a handful of
    systems usually has a column or CRS problem.
    """

    # Share of footprint rows rejected (rejected.parquet) above which the run exits 3.
    max_rejected_footprint_frac: float = Field(0.01, ge=0, le=1)
    # Registry rows that are unusable or match no building (installations_matched.csv)
    # above which the run exits 3.
    max_unmatched_registry_rows: int = Field(20, ge=0)
    # Park outlines rejected above which the run exits 3 (a lost park loses all its roofs).
    max_rejected_parks: int = Field(0, ge=0)


class SurveyConfig(_Strict):
    """A whole survey, as written in one YAML file under ``pipelines/``."""

    # The survey's name, in any language (金桥开发区屋顶普查); the files named after
    # it (runs/<name>, <name>-history.csv …) use pvsurvey.naming.name_file_stem.
    name: str = Field(min_length=1, max_length=100)
    footprints: FootprintSource
    parks: Optional[ParkSource] = None
    installations: Optional[RegistrySource] = None
    irradiance: Irradiance
    roof: Roof = Roof()
    shade: Shade = Shade()
    system: System = System()
    climate: Climate = Climate()
    # The plans progress is measured against; the first is the default one (its
    # figures also fill progress.json's top-level keys). Without 'plans', the
    # 'targets' key (one plan, written flat) or else the 百一 plan of Targets.
    plans: tuple[Plan, ...] = ()
    targets_key: Optional[Targets] = Field(None, alias="targets", exclude=True)
    progress: Progress = Progress()
    economics: Economics = Economics()
    parallel: Parallel = Parallel()
    maps: Maps = Maps()
    output: Output = Output()
    checks: Checks = Checks()
    uncertainty: Uncertainty = Uncertainty()
    # The folder the config came from; relative paths were resolved against it.
    base_dir: Path = Path(".")

    @field_validator("name")
    @classmethod
    def _one_line_name(cls, value):
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise ValueError("must be one line of text, without control characters")
        return value

    @field_validator("plans", mode="before")
    @classmethod
    def _plans_list(cls, value):
        # 'plans' may be a mapping of id -> plan (ids unique by construction) or a list
        if isinstance(value, dict):
            out = []
            for key, plan in value.items():
                if isinstance(plan, dict) and plan.get("id", key) != key:
                    raise ValueError(f"plan '{key}' gives another id ('{plan['id']}'); drop one of the two")
                out.append({"id": key, **plan} if isinstance(plan, dict) else plan)
            return out
        return value

    @field_validator("plans")
    @classmethod
    def _unique_ids(cls, value):
        if not value:
            raise ValueError("give at least one plan (or leave 'plans' out for the 百一 plan)")
        ids = [p.id for p in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"plan ids must be unique; {', '.join(twice)} given more than once")
        return value

    @model_validator(mode="after")
    def _default_plan(self):
        if "plans" in self.model_fields_set:
            if self.targets_key is not None:
                raise ValueError("give either 'targets' (one plan, written flat) or 'plans', not both")
        else:  # frozen: set once, here
            object.__setattr__(self, "plans", ((self.targets_key or Targets()).as_plan(),))
        return self

    @property
    def default_plan(self) -> Plan:
        """The first plan: progress.json's top-level figures describe it."""
        return self.plans[0]

    @property
    def targets(self) -> Targets:
        """The default plan in the flat form of the ``targets:`` key."""
        return Targets.of_plan(self.default_plan)

    def plan_key(self, index: int) -> str:
        """The config key of plan ``index`` (for messages): 'plans.<i>', or 'targets'."""
        return "targets" if self.targets_key is not None else f"plans.{index}"

    @model_validator(mode="before")
    @classmethod
    def _path_shorthand(cls, data):
        # 'footprints: path' is shorthand for 'footprints: {path: path}'.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("footprints", "parks", "installations"):
                if isinstance(data.get(key), (str, Path)):
                    data[key] = {"path": data[key]}
        return data
