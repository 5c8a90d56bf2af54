"""Maps: builders, the run-directory writer, the CLI, and real headless-browser checks.

The browser tests drive Debian's chromium through /usr/bin/chromedriver (selenium;
nothing is downloaded). They skip when the browser is absent, except on CI
(``CI=true``), where they fail instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from conftest import write_ghi_raster
from pvsurvey.columns import WATERFALL_COLUMNS
from pvsurvey.coords import gcj02_to_wgs84, wgs84_to_gcj02
from pvsurvey.errors import ConfigError, InputFileError
from pvsurvey.tools.map_writer import read_map_data, map_options, publish_maps, write_maps
from pvsurvey.maps import (MapOptions, asset_files, build_park_map, building_status, escape_text, external_references,
                           park_file_name, render)
from pvsurvey.maps.assets import PACKAGES, STATIC_DIR
from pvsurvey.maps.data import CANDIDATE, HAS_PV, UNSUITABLE, BELOW_MIN, drawn_geometries, ratio_class

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_OWNER = '<script>alert("owner")</script>'
HOSTILE_NOTES = '"><svg onload=alert(3)>'
HOSTILE_PARK = "<b onmouseover=alert(4)>园区B</b>"
HOSTILE_DISTRICT = "&<>\"'区"
GEOD = Geod(ellps="WGS84")


# ---------------------------------------------------------------- a small run directory

def _boxes(lon0: float, lat0: float, nx: int, ny: int) -> list:
    """nx × ny roofs of about 60 × 40 m on a 150 m grid south-west of (lon0, lat0) [°]."""
    dlon, dlat = 150 / 95_000, 150 / 111_000
    return [shapely.box(lon0 + i * dlon, lat0 + j * dlat, lon0 + i * dlon + 60 / 95_000, lat0 + j * dlat + 40 / 111_000)
            for j in range(ny) for i in range(nx)]


def make_run(root: Path, progress: bool = True, candidates: bool = True, pv_columns: bool = True,
             waterfall: bool = True) -> Path:
    """A finished run directory of two parks (PA: 30 roofs, 'PB/1': 16 roofs) and 2 roofs outside,
    with hostile names, its parks file, GHI raster, progress.json and candidates.parquet, and
    (``waterfall``) each roof's deduction waterfall, summed in parks.csv."""
    root.mkdir(parents=True, exist_ok=True)
    run = root / "run"
    run.mkdir()
    geoms = _boxes(121.400, 31.200, 6, 5) + _boxes(121.500, 31.250, 4, 4) + _boxes(121.450, 31.100, 2, 1)
    n = len(geoms)
    park_id = ["PA"] * 30 + ["PB/1"] * 16 + [""] * 2
    park_name = ["测试园区A"] * 30 + [HOSTILE_PARK] * 16 + [""] * 2
    district = ["徐汇区"] * 30 + [HOSTILE_DISTRICT] * 16 + [""] * 2
    usable = np.array([1800.0 if i % 4 else 250.0 for i in range(n)])
    usable[::7] = 0.0  # unsuitable roofs
    capacity = usable * 0.143
    has_pv = (np.arange(n) % 5 == 3) & (usable > 0)
    name = [f"厂房 {i:02d}" for i in range(n)]
    name[1] = HOSTILE_NAME
    owner = [f"企业 {i // 3:02d}" for i in range(n)]
    owner[1] = HOSTILE_OWNER
    data = {
        "building_id": [f"B{i:02d}" for i in range(n)], "source_row": np.arange(n), "park_id": park_id,
        "park_name": park_name, "district": district, "name": name, "owner": owner,
        "footprint_area_m2": np.full(n, 2400.0), "usable_area_m2": usable, "capacity_kwp": capacity,
        "ghi_kwh_per_m2_yr": np.full(n, 1314.0), "specific_yield_kwh_per_kwp": np.full(n, 1100.0),
        "annual_yield_kwh": capacity * 1100.0,
    }
    if waterfall:  # footprint = the steps + module area, as the survey writes them
        module = capacity / 0.21
        shade = np.where(np.arange(n) % 3 == 0, 20.0, 0.0) * (usable > 0)
        orientation = np.where(np.arange(n) % 5 == 1, 100.0, 0.0) * (usable > 0)
        small = np.where(usable > 0, 0.0, 2400.0 - 144.0 - 451.2)
        data.update({"setback_loss_m2": np.full(n, 144.0),
                     "obstruction_loss_m2": 2400.0 - 144.0 - usable - shade - orientation - small,
                     "orientation_loss_m2": orientation, "shade_loss_m2": shade, "construction_loss_m2": np.zeros(n),
                     "small_roof_loss_m2": small, "layout_loss_m2": usable - module, "module_area_m2": module})
    if pv_columns:
        data.update(has_pv=has_pv, installed_kwp=np.where(has_pv, capacity * 0.9, 0.0),
                    pv_status=np.where(has_pv, "connected", np.where(np.arange(n) % 11 == 5, "planned", "none")))
    buildings = gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")
    for col in ("building_id", "park_id", "park_name", "district", "name", "owner"):
        buildings[col] = buildings[col].astype("string")
    buildings.to_parquet(run / "buildings.parquet")

    parks = gpd.GeoDataFrame({"park_id": ["PA", "PB/1"], "name": ["测试园区A", HOSTILE_PARK],
                              "name_en": ["Test Park A", HOSTILE_PARK], "district": ["徐汇区", HOSTILE_DISTRICT]},
                             geometry=[shapely.box(121.398, 31.198, 121.412, 31.210),
                                       shapely.box(121.498, 31.248, 121.510, 31.258)], crs="EPSG:4326")
    parks.to_file(root / "parks.geojson", driver="GeoJSON")
    ghi = write_ghi_raster(root / "ghi.tif")

    frame = pd.DataFrame(buildings.drop(columns="geometry"))
    steps = [c for c in WATERFALL_COLUMNS if c in frame]
    sums = frame[frame.park_id != ""].groupby(["park_id", "park_name", "district"], as_index=False).agg(
        building_count=("building_id", "size"), footprint_area_m2=("footprint_area_m2", "sum"),
        **{c: (c, "sum") for c in steps}, usable_area_m2=("usable_area_m2", "sum"),
        capacity_kwp=("capacity_kwp", "sum"), annual_yield_kwh=("annual_yield_kwh", "sum"))
    sums.to_csv(run / "parks.csv", index=False, encoding="utf-8-sig")
    sums.groupby("district", as_index=False)[["building_count", "usable_area_m2", "capacity_kwp",
                                               "annual_yield_kwh"]].sum().to_csv(
        run / "districts.csv", index=False, encoding="utf-8-sig")

    is_candidate = (capacity >= 50) & ~has_pv & (np.array(park_id) != "")
    if candidates:
        ids = list(np.flatnonzero(is_candidate))
        groups = [ids[0:2]] + [[i] for i in ids[2:]]  # the first project has two roofs
        cand = gpd.GeoDataFrame({
            "project_id": [f"C-{buildings.building_id[g[0]]}" for g in groups],
            "building_ids": [";".join(buildings.building_id[g]) for g in groups],
            "park_id": [park_id[g[0]] for g in groups], "park_name": [park_name[g[0]] for g in groups],
            "district": [district[g[0]] for g in groups], "name": [name[g[0]] for g in groups],
            "owner": [owner[g[0]] for g in groups],
            "usable_area_m2": [usable[g].sum() for g in groups], "capacity_kwp": [capacity[g].sum() for g in groups],
            "annual_yield_kwh": [capacity[g].sum() * 1100 for g in groups],
            "specific_yield_kwh_per_kwp": 1100.0, "simple_payback_yr": 4.3, "lcoe_cny_per_kwh": 0.25,
            "status": ["agreed"] + ["identified"] * (len(groups) - 1),
            "notes": [HOSTILE_NOTES] + [""] * (len(groups) - 1),
        }, geometry=[shapely.union_all(buildings.geometry.values[g]) for g in groups], crs="EPSG:4326")
        cand.to_parquet(run / "candidates.parquet")

    if progress:
        def metrics(sel):
            u = usable[sel]
            pv = has_pv[sel]
            return {"install_ratio_area_frac": float(u[pv].sum() / u[u > 0].sum()),
                    "install_ratio_count_frac": float(pv.sum() / (u > 0).sum()), "target_install_ratio": 0.5,
                    "installed_kwp": float((capacity[sel] * 0.9)[pv].sum()), "new_kwp_since_baseline": 500.0,
                    "new_capacity_target_kwp": None, "new_capacity_target_share_frac": None,
                    "remaining_potential_kwp": float(capacity[sel][~pv].sum())}

        city = metrics(np.ones(n, bool)) | {"new_capacity_target_kwp": 1_000_000.0,
                                              "new_capacity_target_share_frac": 0.0015}
        doc = {"definition": {"install_ratio": "area"}, "targets": {"install_ratio": 0.5}, "city": city,
               "districts": [{"district": d, **metrics(np.array(district) == d)} for d in ("徐汇区", HOSTILE_DISTRICT)],
               "parks": [{"park_id": p, "park_name": nm, "district": d, **metrics(np.array(park_id) == p)}
                         for p, nm, d in (("PA", "测试园区A", "徐汇区"), ("PB/1", HOSTILE_PARK, HOSTILE_DISTRICT))]}
        (run / "progress.json").write_text(json.dumps(doc, ensure_ascii=False))

    manifest = {"name": "maps-test", "finished_at": "2025-06-30T02:00:00+00:00", "config": {
        "name": "maps-test", "parks": {"path": str(root / "parks.geojson"), "crs": None, "layer": None},
        "irradiance": {"ghi": str(ghi), "units": "kWh/m2/day"}, "economics": {"min_candidate_kwp": 50.0},
        "targets": {"install_ratio": 0.5, "new_capacity_mw": 1000.0},
        "maps": {"publish_dir": None, "lang": "zh", "tiles": "osm", "tianditu_key": None, "offline": False},
        "roof": {"rule_set": "shanghai"}}}
    (run / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    (run / "_COMPLETE").write_text("2025-06-30T02:00:00+00:00\n")
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("maps"))


@pytest.fixture(scope="module")
def offline_maps(run_dir, tmp_path_factory) -> Path:
    """The run's maps, offline, without tiles, in a copy of the run."""
    run = tmp_path_factory.mktemp("offline") / "run"
    shutil.copytree(run_dir, run)
    write_maps(run, lang="en", tiles="none", offline=True)
    return run / "maps"


# ---------------------------------------------------------------- pure parts

def test_building_status_follows_the_precedence():
    frame = pd.DataFrame({"building_id": ["a", "b", "c", "d", "e"], "usable_area_m2": [100, 0, 500, 100, 500],
                          "capacity_kwp": [14, 0, 70, 14, 70], "has_pv": [True, False, False, False, pd.NA]})
    got = building_status(frame, candidate_ids=["c", "a"], min_candidate_kwp=50)
    assert got.tolist() == [HAS_PV, UNSUITABLE, CANDIDATE, BELOW_MIN, BELOW_MIN]
    # without candidates: capacity >= minimum; without has_pv: nobody has PV
    got = building_status(frame.drop(columns="has_pv"), min_candidate_kwp=50)
    assert got.tolist() == [BELOW_MIN, UNSUITABLE, CANDIDATE, BELOW_MIN, CANDIDATE]


def test_escape_text_escapes_every_markup_character():
    got = escape_text([HOSTILE_NAME, None, "a&b \"c\" 'd'", 3])
    assert got.tolist() == ["&lt;img src=x onerror=alert(1)&gt;", "", "a&amp;b &quot;c&quot; &#x27;d&#x27;", "3"]


def test_ratio_class_steps_in_fifths_of_the_target():
    got = ratio_class([0.0, 0.0999, 0.1, 0.3, 0.4999, 0.5, 0.9, np.nan], 0.5)
    assert got.tolist() == [0, 0, 1, 3, 4, 5, 5, 6]


def test_park_file_names_are_stable_and_safe():
    assert park_file_name("P01") == "park-P01.html"
    odd = park_file_name("PB/1")
    assert odd == park_file_name("PB/1") and re.fullmatch(r"park-PB_1-[0-9a-f]{8}\.html", odd)
    assert park_file_name("PB_1") != odd and park_file_name("../x") != park_file_name("__x")


def test_waterfall_chart_geometry_by_hand():
    from pvsurvey.maps.panels import waterfall_rows

    # 1,000 m² of footprint: −100 setback, −200 obstructions, −50 shade, +20 from flush modules on a
    # steep plane (a negative layout step), 670 m² of modules; 340 px for the footprint = 0.34 px/m²
    sums = dict(zip(WATERFALL_COLUMNS, [100.0, 200.0, 0.0, 50.0, 0.0, 0.0, -20.0, 670.0]), footprint_area_m2=1000.0)
    rows = waterfall_rows(sums, width=340.0)
    assert [r["step"] for r in rows] == ["footprint_area_m2", *WATERFALL_COLUMNS]
    assert [r["kind"] for r in rows] == ["footprint"] + ["loss"] * 6 + ["gain", "modules"]
    assert [(r["x"], r["w"]) for r in rows] == [(0.0, 340.0), (306.0, 34.0), (238.0, 68.0), (238.0, 0.0), (221.0, 17.0),
                                                 (221.0, 0.0), (221.0, 0.0), (221.0, 6.8), (0.0, 227.8)]
    # the dashed line under each bar marks what is left; the last one is where the modules end
    assert [r["link"] for r in rows] == [340.0, 306.0, 238.0, 238.0, 221.0, 221.0, 221.0, 227.8, None]
    assert waterfall_rows({**sums, "footprint_area_m2": 0.0}) is None
    assert waterfall_rows({k: v for k, v in sums.items() if k != "shade_loss_m2"}) is None  # a run without it


def _panel(page: Path) -> str:
    """The HTML of a page's panel (the control's innerHTML, a JSON string in the map script)."""
    found = re.search(r'div\.innerHTML = ("(?:[^"\\]|\\.)*");', page.read_text())
    return json.loads(found.group(1))


def test_drawn_geometry_is_simplified_and_rounded():
    ring = [(121.4 + 1e-4 * np.cos(a), 31.2 + 1e-4 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 400)]
    got = drawn_geometries([shapely.Polygon(ring)], 4.5e-6, 6)[0]
    coords = shapely.get_coordinates(got)
    assert len(coords) < 100 and np.allclose(coords, np.round(coords, 6), atol=0)


# ---------------------------------------------------------------- GCJ-02

# Reference pairs (WGS84 lat, lon → GCJ-02 lat, lon) from the test vectors of the
# established open-source implementation googollee/eviltransform
# (python/test.py and go/transform_test.go: Shanghai, Shenzhen, Beijing), and the
# pair printed by wandergis/coordtransform's test/app.js (wgs84togcj02(116.404, 39.915)).
REFERENCE_PAIRS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
    (39.915, 116.404, 39.91640428150164, 116.41024449916938),
]


@pytest.mark.parametrize("wgs_lat,wgs_lon,gcj_lat,gcj_lon", REFERENCE_PAIRS)
def test_gcj02_shift_matches_reference_pairs_within_a_metre(wgs_lat, wgs_lon, gcj_lat, gcj_lon):
    lon, lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert GEOD.inv(float(lon), float(lat), gcj_lon, gcj_lat)[2] < 1.0
    lon, lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert GEOD.inv(float(lon), float(lat), wgs_lon, wgs_lat)[2] < 1.0
    # the shift itself is hundreds of metres: the test would notice a missing shift
    assert GEOD.inv(wgs_lon, wgs_lat, gcj_lon, gcj_lat)[2] > 100


def test_gcj02_shift_is_applied_only_with_gaode_tiles(run_dir):
    buildings = gpd.read_parquet(run_dir / "buildings.parquet")
    park = buildings[buildings.park_id == "PA"]
    before = park.geometry.copy()
    x, y = shapely.get_coordinates(park.geometry.values[0])[0]
    wgs = f"[{round(x, 6)},{round(y, 6)}]"
    gx, gy = (round(float(v), 6) for v in wgs84_to_gcj02(x, y))
    gcj = f"[{gx},{gy}]"
    for tiles in ("osm", "tianditu", "none", "gaode"):
        options = MapOptions(lang="zh", tiles=tiles, tianditu_key="k" if tiles == "tianditu" else None)
        page = render(build_park_map({"park_id": "PA", "park_name": "A", "district": "d"}, park, options,
                                     min_candidate_kwp=50), options)
        assert (gcj in page, wgs in page) == ((True, False) if tiles == "gaode" else (False, True)), tiles
    assert park.geometry.equals(before)  # the data are never shifted


# ---------------------------------------------------------------- options, base maps, assets

def test_tianditu_needs_a_key_from_config_or_environment(monkeypatch):
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    with pytest.raises(ConfigError, match="TIANDITU_KEY") as err:
        map_options({"tiles": "tianditu"})
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)
    assert map_options({"tiles": "tianditu", "tianditu_key": "abc"}).tianditu_key == "abc"
    monkeypatch.setenv("TIANDITU_KEY", "fromenv")
    assert map_options({"tiles": "tianditu"}).tianditu_key == "fromenv"
    with pytest.raises(ConfigError, match="base map"):
        map_options(tiles="google")


def test_online_pages_pin_cdn_assets_with_integrity(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    monkey_key = "tk123"
    write_maps(run, tiles="tianditu", tianditu_key=monkey_key, offline=False)
    page = (run / "maps" / "index.html").read_text()
    for src, rel in asset_files():
        if rel.endswith((".js", ".css")):
            package = next(p for p in PACKAGES if f"/{p.folder}/" in rel)
            assert f"https://cdn.jsdelivr.net/npm/{package.name}@{package.version}/" in page
            sri = "sha384-" + base64.b64encode(hashlib.sha384(src.read_bytes()).digest()).decode()
            assert f'integrity="{sri}"' in page
    assert "tianditu.gov.cn/vec_w/wmts" in page and "tk=tk123" in page
    assert not (run / "maps" / "lib").exists()


def test_vendored_assets_are_complete_with_licences():
    for src, _ in asset_files():
        assert src.is_file() and src.stat().st_size > 0, src
    for package in PACKAGES:
        assert any("LICEN" in f for f in package.extra), package.name
    assert (STATIC_DIR / "README.md").is_file()
    # the vendored Leaflet is the published 1.9.4 (its documented SRI hash)
    leaflet = (STATIC_DIR / "leaflet-1.9.4" / "leaflet.js").read_bytes()
    assert base64.b64encode(hashlib.sha256(leaflet).digest()).decode() == "20nQCchB9co0qIjJZRGuk2/Z9VM+kNiyxNV1lvTlZBo="


def test_offline_pages_reference_nothing_on_the_network(offline_maps):
    pages = sorted(offline_maps.glob("*.html"))
    assert [p.name for p in pages] == sorted(["index.html", "park-PA.html", park_file_name("PB/1")])
    for page in pages:
        text = page.read_text()
        assert external_references(text) == [], page.name
        for ref in re.findall(r'(?:src|href)="(lib/[^"]+)"', text):
            assert (offline_maps / ref).is_file(), ref
    assert external_references('<script src="https://x/y.js"></script>') != []


# ---------------------------------------------------------------- the writer

def test_write_maps_writes_overview_and_park_maps_and_publishes(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    publish = tmp_path / "www"
    publish.mkdir()
    (publish / "park-GONE.html").write_text("old park")
    written = write_maps(run, lang="zh", tiles="osm", publish_dir=publish)
    names = ["park-PA.html", park_file_name("PB/1"), "index.html"]
    assert [p.name for p in written] == names
    for name in names:
        assert (publish / name).read_bytes() == (run / "maps" / name).read_bytes()
    assert not (publish / "park-GONE.html").exists()  # parks no longer in the run are pruned
    assert not list(publish.glob(".*tmp*")) and not list((run / "maps").glob(".*tmp*"))
    index = (run / "maps" / "index.html").read_text()
    assert 'href=\\"park-PA.html' in index and park_file_name("PB/1") in index  # in the panel's JSON
    assert "屋顶光伏安装比例（按面积）" in index and "全市目标进展" in index
    # one park again: only its page is rewritten, the rest stays
    stamp = (publish / "index.html").stat().st_mtime_ns
    time.sleep(0.01)
    written = write_maps(run, park="PA", lang="en", publish_dir=publish)
    assert [p.name for p in written] == ["park-PA.html"]
    assert (publish / "index.html").stat().st_mtime_ns == stamp
    assert "Installation ratio (area)" in (publish / "park-PA.html").read_text()


def test_pages_escape_hostile_text(offline_maps):
    for page in offline_maps.glob("*.html"):
        text = page.read_text()
        for hostile in (HOSTILE_NAME, HOSTILE_OWNER, HOSTILE_NOTES, HOSTILE_PARK, "<svg", "<img src=x"):
            assert hostile not in text, (page.name, hostile)


def projects_in(run: Path, park_id: str) -> int:
    cand = gpd.read_parquet(run / "candidates.parquet")
    return int((cand["park_id"] == park_id).sum())


def test_park_page_is_compact(offline_maps, run_dir):
    text = (offline_maps / "park-PA.html").read_text()
    assert not re.search(r"\d+\.\d{7,}", text.split("var PVS")[0] + text.split("</style>")[-1].split("data:image")[0])
    # 30 roofs, the candidate projects, the park outline: each once
    assert text.count('"type":"Feature"') == 30 + projects_in(run_dir, "PA") + 1


def test_park_panel_charts_the_parks_waterfall_from_parks_csv(offline_maps, run_dir, tmp_path):
    parks = pd.read_csv(run_dir / "parks.csv", dtype={"park_id": str}).set_index("park_id")
    for park_id in ("PA", "PB/1"):
        panel = _panel(offline_maps / park_file_name(park_id))
        chart = re.findall(r'data-step="(\w+)" data-area-m2="(-?[\d.]+)"', panel)
        assert [step for step, _ in chart] == ["footprint_area_m2", *WATERFALL_COLUMNS]
        row = parks.loc[park_id]
        for step, value in chart:  # the chart's numbers are the park's sums (to the mm² written)
            assert float(value) == pytest.approx(row[step], abs=5e-4), step
        # and what people read: each step in m² and its share of the footprint, in English labels
        assert f"Less: edge setback: −{row['setback_loss_m2']:,.0f} m² · " \
               f"{100 * row['setback_loss_m2'] / row['footprint_area_m2']:.1f} %" in panel
        assert f"Module area: {row['module_area_m2']:,.0f} m²" in panel and "Usable roof, step by step" in panel
        assert "Less: roof construction: 0 m² · 0.0 %" in panel  # a zero step, unsigned
        assert f"{row['capacity_kwp'] / 1000:,.1f} MWp" in panel and "shanghai" in panel
    # Chinese labels
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    write_maps(run, park="PA", lang="zh", tiles="none")
    panel = _panel(run / "maps" / "park-PA.html")
    assert "可利用屋顶逐项扣除" in panel and "扣除：周边建筑遮挡" in panel and "组件面积" in panel and "扣除规则" in panel


def test_maps_degrade_without_progress_candidates_or_pv_data(tmp_path):
    run = make_run(tmp_path / "old", waterfall=False)  # a run written before the waterfall: no chart
    write_maps(run, park="PA", lang="en", tiles="none")
    assert "pvs-waterfall" not in _panel(run / "maps" / "park-PA.html")
    run = make_run(tmp_path, progress=False, candidates=False, pv_columns=False)
    written = write_maps(run, lang="en", tiles="none")
    index = (run / "maps" / "index.html").read_text()
    assert len(written) == 3 and "No installed-PV registry in this run" in index
    park = (run / "maps" / "park-PA.html").read_text()
    assert '"c":0' not in park.split("pvsBuildingPopup, {maxWidth")[0].split("L.geoJson(")[2]  # nobody has PV


def test_maps_without_progress_json_show_the_ratios_progress_json_would(tmp_path):
    documented = read_map_data(make_run(tmp_path / "with")).progress
    derived = read_map_data(make_run(tmp_path / "without", progress=False)).progress
    keys = ("install_ratio_area_frac", "install_ratio_count_frac", "target_install_ratio", "installed_kwp",
            "remaining_potential_kwp")
    for key in keys:
        assert derived["city"][key] == pytest.approx(documented["city"][key])
    parks = {p["park_id"]: p for p in derived["parks"]}
    assert set(parks) == {p["park_id"] for p in documented["parks"]}
    for park in documented["parks"]:
        for key in keys:
            assert parks[park["park_id"]][key] == pytest.approx(park[key])


def test_write_maps_errors_are_one_line(run_dir, tmp_path):
    with pytest.raises(InputFileError, match="no such run directory"):
        write_maps(tmp_path / "nope")
    with pytest.raises(InputFileError, match="no park 'ZZ'.*PA"):
        write_maps(run_dir, park="ZZ")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished)
    (unfinished / "_COMPLETE").unlink()
    with pytest.raises(InputFileError, match="not a finished run"):
        write_maps(unfinished)


def test_publish_replaces_files_atomically(tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "index.html").write_text("new")
    publish = tmp_path / "www"
    publish.mkdir()
    (publish / "index.html").write_text("old")
    inode = (publish / "index.html").stat().st_ino
    publish_maps(maps, publish)
    assert (publish / "index.html").read_text() == "new"
    assert (publish / "index.html").stat().st_ino != inode  # a new file renamed over the old one


@pytest.mark.slow
def test_cli_map_command(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    out = subprocess.run([sys.executable, "-m", "pvsurvey", "map", str(run), "--park", "PA", "--lang", "en",
                          "--tiles", "none", "--offline"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "park-PA.html" in out.stdout and (run / "maps" / "lib" / "leaflet-1.9.4" / "leaflet.js").is_file()
    from click.testing import CliRunner

    from pvsurvey.cli import commands

    out = CliRunner().invoke(commands(), ["map", str(run), "--park", "ZZ"])
    assert out.exit_code == 2 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("pvsurvey: error: ") and "no park 'ZZ'" in out.stderr


# ---------------------------------------------------------------- in a real browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Record alerts instead of showing them, before any script of the page runs.
_TRAP = "window.__alerts = []; window.alert = window.confirm = window.prompt = function (m) { window.__alerts.push(String(m)); };"


@pytest.fixture(scope="module")
def browser():
    """Headless chromium with every http(s) request blocked (pages load from file://)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)")
        pytest.skip(f"no headless browser: {', '.join(missing)}")
    profile = tempfile.mkdtemp(prefix="pvsurvey-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _TRAP})
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(driver, page: Path) -> None:
    driver.get_log("browser"), driver.get_log("performance")  # drop what earlier pages logged
    driver.get(page.as_uri())
    driver.execute_script("return document.readyState")
    # the map script runs at the end of the page; wait until Leaflet drew the panes
    for _ in range(50):
        if driver.execute_script("return document.querySelector('.leaflet-overlay-pane') !== null"):
            break
        time.sleep(0.1)


def _js_errors(driver, allow_blocked_tiles: bool = False) -> list[str]:
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    if allow_blocked_tiles:
        errors = [e for e in errors if not (e.get("source") == "network" and "tile.openstreetmap.org" in e["message"])]
    return [e["message"] for e in errors]


def _count(driver, selector: str) -> int:
    return driver.execute_script(f"return document.querySelectorAll({json.dumps(selector)}).length")


_MAP = "var m = window[document.querySelector('.folium-map').id];"


def test_overview_and_park_map_draw_in_a_browser_without_js_errors(browser, offline_maps, run_dir):
    _open(browser, offline_maps / "index.html")
    assert _js_errors(browser) == []
    assert _count(browser, ".leaflet-overlay-pane path.leaflet-interactive") >= 2  # the two parks
    markers = _count(browser, ".leaflet-marker-pane .marker-cluster") + browser.execute_script(
        _MAP + "var n = 0; m.eachLayer(function (l) { if (l instanceof L.CircleMarker) n++; }); return n;")
    assert markers >= 1
    assert _count(browser, ".leaflet-control-layers-overlays input") == 2
    assert _count(browser, ".leaflet-control-scale") == 1 and _count(browser, ".leaflet-control-zoom-fullscreen") == 1
    assert _count(browser, '.pvs-panel a[href="park-PA.html"]') == 1

    _open(browser, offline_maps / "park-PA.html")
    assert _js_errors(browser) == []
    # 30 roofs + the candidate outlines; the park boundary is drawn but not interactive
    projects = projects_in(run_dir, "PA")
    assert projects > 5
    assert _count(browser, ".leaflet-overlay-pane path.leaflet-interactive") == 30 + projects
    assert _count(browser, ".leaflet-overlay-pane path") == 30 + projects + 1
    assert _count(browser, ".leaflet-control-layers-overlays input") == 4  # boundary, buildings, candidates, GHI
    popup = browser.execute_script(_MAP + """
        var hit = null;
        m.eachLayer(function (l) { if (!hit && l.feature && l.feature.properties.i === 'B03') hit = l; });
        hit.openPopup(); return document.querySelector('.leaflet-popup-content').textContent;""")
    assert "Has PV" in popup and "Usable roof area" in popup and "kWp" in popup
    # the irradiance layer switches on and draws its image
    browser.execute_script("document.querySelectorAll('.leaflet-control-layers-overlays input')[3].click();")
    assert _count(browser, ".leaflet-image-layer") == 1
    assert _js_errors(browser) == []


def test_the_waterfall_chart_draws_in_a_browser(browser, offline_maps, run_dir):
    _open(browser, offline_maps / "park-PA.html")
    assert _js_errors(browser) == []
    drawn = browser.execute_script("""
        var svg = document.querySelector('.pvs-panel svg.pvs-waterfall');
        if (!svg) return null;
        return Array.prototype.map.call(svg.querySelectorAll('g.pvs-wf-step'), function (g) {
            var box = g.querySelector('rect').getBoundingClientRect();
            var texts = g.querySelectorAll('text');
            return {step: g.getAttribute('data-step'), width: box.width, height: box.height,
                    label: texts[0].textContent, text_px: texts[0].getComputedTextLength() + texts[1].getComputedTextLength()};
        });""")
    assert drawn is not None and [d["step"] for d in drawn] == ["footprint_area_m2", *WATERFALL_COLUMNS]
    assert all(d["text_px"] > 20 for d in drawn)  # labels and figures laid out as text
    assert drawn[1]["label"] == "Less: edge setback"
    footprint = drawn[0]
    assert footprint["width"] > 200 and footprint["height"] > 4  # the footprint spans the panel
    row = pd.read_csv(run_dir / "parks.csv").set_index("park_id").loc["PA"]
    for d in drawn[1:]:  # every bar on the footprint's scale, as the browser laid it out
        assert d["width"] / footprint["width"] == pytest.approx(abs(row[d["step"]]) / row["footprint_area_m2"],
                                                                abs=0.01), d["step"]


def test_hostile_names_show_as_text_and_run_nothing(browser, offline_maps):
    _open(browser, offline_maps / "park-PA.html")
    shown = browser.execute_script(_MAP + """
        var out = [];
        m.eachLayer(function (l) {
            if (l.feature && l.feature.properties.i === 'B01') {
                l.openTooltip(); out.push(document.querySelector('.leaflet-tooltip').textContent);
                l.openPopup(); out.push(document.querySelector('.leaflet-popup-content').textContent);
            }
        });
        return out;""")
    assert shown and HOSTILE_NAME in shown[0] and HOSTILE_OWNER in shown[1] and HOSTILE_NOTES in shown[1]
    assert _count(browser, ".leaflet-popup-content img, .leaflet-popup-content svg, .leaflet-popup-content script,"
                           ".leaflet-tooltip img") == 0

    _open(browser, offline_maps / park_file_name("PB/1"))
    panel = browser.execute_script("return document.querySelector('.pvs-panel').textContent")
    assert HOSTILE_PARK in panel and HOSTILE_DISTRICT in panel
    assert _count(browser, ".pvs-panel b[onmouseover]") == 0
    assert browser.execute_script("return document.title").startswith(HOSTILE_PARK)

    _open(browser, offline_maps / "index.html")
    park_popup = browser.execute_script(_MAP + """
        var text = null;
        m.eachLayer(function (l) { if (l.feature && l.feature.properties.i === 'PB/1') {
            l.openPopup(); text = document.querySelector('.leaflet-popup-content').textContent; } });
        return text;""")
    assert HOSTILE_PARK in park_popup
    assert browser.execute_script("return window.__alerts") == []
    assert _js_errors(browser) == []


def test_offline_map_draws_with_every_network_request_blocked(browser, run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    write_maps(run, park="PA", lang="zh", tiles="osm", offline=True)
    _open(browser, run / "maps" / "park-PA.html")
    assert _js_errors(browser, allow_blocked_tiles=True) == []
    assert _count(browser, ".leaflet-overlay-pane path.leaflet-interactive") == 30 + projects_in(run_dir, "PA")
    requested = [json.loads(e["message"])["message"]["params"]["request"]["url"]
                 for e in browser.get_log("performance") if '"Network.requestWillBeSent"' in e["message"]]
    remote = [u for u in requested if not u.startswith(("file:", "data:"))]
    assert requested and all("tile.openstreetmap.org" in u for u in remote), remote


def test_a_park_just_beyond_a_coarse_projected_raster_gets_its_edge_pixels(tmp_path):
    """A 1 km raster in UTM 51N and a park whose outline lies just north of it, within
    the maps' padding: the window onto the raster is a sliver under one pixel high,
    which rounding emptied (the maps were drawn without the raster, after a warning);
    it holds the raster's northernmost pixels now."""
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    from pvsurvey.model.weather_year import ghi_to_kwh_per_m2_yr
    from pvsurvey.tools.map_writer import read_irradiance_window

    values = (3.0 + 0.01 * np.arange(2500, dtype="float32")).reshape(50, 50)  # kWh/m²/day, every pixel its own
    with rasterio.open(tmp_path / "ghi.tif", "w", driver="GTiff", width=50, height=50, count=1, dtype="float32",
                       crs="EPSG:32651", transform=from_origin(300_000.0, 3_470_000.0, 1000.0, 1000.0),
                       nodata=-1.0) as dst:
        dst.write(values, 1)
    to_lonlat = Transformer.from_crs("EPSG:32651", 4326, always_xy=True)
    cfg = {"irradiance": {"ghi": str(tmp_path / "ghi.tif"), "units": "kWh/m2/day"}}
    x, y = 320_400.0, 3_450_300.0  # a park 200 m wide inside the pixel in row 19, column 20
    lon, lat = to_lonlat.transform([x, x + 200], [y, y + 200])
    inside = read_irradiance_window(cfg, (lon[0], lat[0], lon[1], lat[1]))
    finite = inside.values_kwh_per_m2_yr[np.isfinite(inside.values_kwh_per_m2_yr)]
    assert float(ghi_to_kwh_per_m2_yr(np.array([values[19, 20]], float), "kWh/m2/day")[0]) in finite
    lon, lat = to_lonlat.transform([x, x + 2000], [3_475_600.0, 3_477_300.0])  # 5.6 km north: 0.05° pads it 5.5 km
    edge = read_irradiance_window(cfg, (lon[0], lat[0], lon[1], lat[1]))
    assert edge is not None
    finite = edge.values_kwh_per_m2_yr[np.isfinite(edge.values_kwh_per_m2_yr)]
    # the northernmost rows (the lon/lat view of a UTM grid is turned by the meridians' convergence)
    north = ghi_to_kwh_per_m2_yr(values[:2].ravel().astype(float), "kWh/m2/day")
    assert finite.size and np.isin(finite, north).all()
