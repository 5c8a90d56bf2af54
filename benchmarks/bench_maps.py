"""Park-map benchmark: render time and HTML size of a 5,000-building park (prints numbers; not a test).

    python benchmarks/bench_maps.py                  # 5,000 buildings, 3 repeats
    python benchmarks/bench_maps.py -n 20000 --browser

Target (issue: maps): a park of 5,000 buildings renders to HTML in a few seconds
and stays a few MB. The park is synthetic: rotated factory-sized rectangles
(:func:`synthetic.rectangles`, the survey benchmark's generator) packed into a
4 km × 3 km park near Shanghai's Lingang, with survey figures, registry PV on
a fifth of the roofs and a candidate project on most of the rest.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from synthetic import rectangles
from pvsurvey.maps import IrradianceGrid, MapOptions, asset_files, build_park_map, render
from pvsurvey.maps.data import building_status

# the synthetic rectangles spread over the demo raster; they are moved into this park box [°]
PARK = (121.86, 30.88, 121.90, 30.91)


def synthetic_park(n: int, seed: int = 0) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``n`` buildings of one park and its candidate projects (one per candidate roof), WGS84."""
    rng = np.random.default_rng(seed)
    geoms = rectangles(n, seed)
    # shrink the city-wide spread into the park, keeping each roof's own shape and size
    cx, cy = shapely.get_x(shapely.centroid(geoms)), shapely.get_y(shapely.centroid(geoms))
    west, south, east, north = PARK
    tx = west + (cx - cx.min()) / np.ptp(cx) * (east - west)
    ty = south + (cy - cy.min()) / np.ptp(cy) * (north - south)
    index = np.repeat(np.arange(n), 5)
    xy = shapely.get_coordinates(geoms)
    xy = xy - np.column_stack([cx, cy])[index] + np.column_stack([tx, ty])[index]
    geoms = shapely.polygons(xy.reshape(n, 5, 2))
    usable = shapely.area(geoms) * 1.0e10 * 0.6  # ≈ m² at 31° N, 60 % usable
    usable[rng.random(n) < 0.03] = 0.0
    capacity = usable * 0.143
    has_pv = (rng.random(n) < 0.2) & (usable > 0)
    ids = np.char.add("B", np.arange(n).astype(str))
    buildings = gpd.GeoDataFrame({
        "building_id": ids, "park_id": "P", "park_name": "合成园区", "district": "浦东新区",
        "name": np.char.add("示例厂房 ", np.arange(n).astype(str)), "owner": np.char.add("示例企业 ", (np.arange(n) // 4).astype(str)),
        "usable_area_m2": usable, "capacity_kwp": capacity, "specific_yield_kwh_per_kwp": 1100.0,
        "annual_yield_kwh": capacity * 1100.0, "has_pv": has_pv, "installed_kwp": np.where(has_pv, capacity, 0.0),
        "pv_status": np.where(has_pv, "connected", "none"),
    }, geometry=geoms, crs="EPSG:4326")
    chosen = (capacity >= 50) & ~has_pv
    cand = buildings[chosen].reset_index(drop=True)
    candidates = gpd.GeoDataFrame({
        "project_id": np.char.add("C-", cand["building_id"].to_numpy().astype(str)), "building_ids": cand["building_id"],
        "park_id": "P", "park_name": cand["park_name"], "district": cand["district"], "name": cand["name"],
        "owner": cand["owner"], "usable_area_m2": cand["usable_area_m2"], "capacity_kwp": cand["capacity_kwp"],
        "annual_yield_kwh": cand["annual_yield_kwh"], "specific_yield_kwh_per_kwp": 1100.0,
        "simple_payback_yr": rng.uniform(3, 8, len(cand)), "lcoe_cny_per_kwh": rng.uniform(0.2, 0.35, len(cand)),
        "status": "identified", "notes": "",
    }, geometry=cand.geometry.values, crs="EPSG:4326")
    return buildings, candidates


def browser_seconds(path: Path) -> float | None:
    """Seconds until Leaflet drew the page in headless chromium (None without a browser)."""
    if not Path("/usr/bin/chromium").exists() or not Path("/usr/bin/chromedriver").exists():
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync",
                f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
        t0 = time.perf_counter()
        driver.get(path.as_uri())
        drawn = driver.execute_script("return document.querySelectorAll('.leaflet-overlay-pane path').length")
        seconds = time.perf_counter() - t0
        print(f"  browser: {drawn:,} SVG paths drawn")
        return seconds
    finally:
        driver.quit()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="buildings in the park (default 5,000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also time the page in headless chromium")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    buildings, candidates = synthetic_park(args.n)
    print(f"synthetic park: {len(buildings):,} buildings, {len(candidates):,} candidate projects "
          f"({time.perf_counter() - t0:.2f} s to generate)")
    grid = IrradianceGrid(np.linspace(1290, 1340, 36).reshape(6, 6), (120.75, 30.5, 122.25, 32.0))
    park = {"park_id": "P", "park_name": "合成园区", "district": "浦东新区",
            "geometry": shapely.box(*PARK).buffer(0.002)}
    print("status counts:", np.bincount(building_status(buildings, candidates["building_ids"], min_candidate_kwp=50), minlength=4).tolist())

    out = Path(tempfile.mkdtemp(prefix="pvsurvey-bench-maps-"))
    for tiles in ("osm", "gaode"):
        options = MapOptions(lang="zh", tiles=tiles, offline=True)
        build_s, render_s = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            m = build_park_map(park, buildings, options, min_candidate_kwp=50, candidates=candidates, irradiance=grid,
                               progress={"install_ratio_area_frac": 0.2, "target_install_ratio": 0.5})
            t1 = time.perf_counter()
            page = render(m, options)
            t2 = time.perf_counter()
            build_s.append(t1 - t0)
            render_s.append(t2 - t1)
        size = len(page.encode("utf-8"))
        gz = len(gzip.compress(page.encode("utf-8"), 6))
        path = out / f"park-{tiles}.html"
        path.write_text(page, encoding="utf-8")
        total = [b + r for b, r in zip(build_s, render_s)]
        print(f"{tiles:>5}: build {statistics.median(build_s):.2f} s + render {statistics.median(render_s):.2f} s "
              f"= {statistics.median(total):.2f} s (median of {args.repeat}); HTML {size / 1e6:.2f} MB, "
              f"gzip {gz / 1e6:.2f} MB, {size / len(buildings):,.0f} B/building -> {path}")
    if args.browser:
        for src, rel in asset_files():  # the offline page loads Leaflet from lib/ beside it
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(src.read_bytes())
        seconds = browser_seconds(out / "park-osm.html")
        print(f"browser load: {seconds:.2f} s" if seconds is not None else "browser load: no chromium")
    return 0


if __name__ == "__main__":
    sys.exit(main())
