"""Regenerate the bundled Shanghai demo inputs in data/demo/ (deterministic).

    pip install pvcz==0.3.0     # only needed to rebuild the GHI raster
    python data/make_demo_data.py

Writes:
- parks.geojson          real park names, districts and approximate centres;
                         the outlines are synthetic rectangles, not legal boundaries
- footprints.parquet     SYNTHETIC building footprints (GeoParquet, EPSG:4326) with
                         synthetic heights, storeys, roof materials and roof years
- ghi_gldas_0p25.tif     long-term mean GHI [kWh/m²/day] from the GLDAS-based
                         climatology that the MIT-licensed pvcz package ships
See data/README.md for sources and licences.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity

OUT = Path(__file__).resolve().parent / "demo"
UTM51N = "EPSG:32651"
SEED = 20221010  # the plan's month
# a field between Songjiang and Qingpu with no roof near it (UTM 51N)
PARKS_CENTRE_OFFSET = (318_500.0, 3_438_000.0)

# id, Chinese name, English name, district, centre lat, lon, size (km), street angle (°),
# share of large roofs that carry PV (drives the installations registry of the progress demo)
PARKS = [
    ("P01", "漕河泾新兴技术开发区", "Caohejing Hi-Tech Park", "徐汇区", 31.168, 121.395, (2.6, 1.8), 12, 0.55),
    ("P02", "张江高科技园区", "Zhangjiang Hi-Tech Park", "浦东新区", 31.205, 121.600, (3.4, 2.6), 0, 0.40),
    ("P03", "金桥经济技术开发区", "Jinqiao Economic & Technological Development Zone", "浦东新区", 31.262, 121.612, (3.0, 2.2), -8, 0.45),
    ("P04", "临港新片区装备产业区", "Lingang Heavy Equipment Industrial Zone", "浦东新区", 30.905, 121.880, (3.6, 2.8), 30, 0.50),
    ("P05", "上海化学工业区", "Shanghai Chemical Industry Park", "金山区", 30.805, 121.445, (3.8, 2.4), 5, 0.05),
    ("P06", "松江工业区", "Songjiang Industrial Zone", "松江区", 31.040, 121.215, (3.2, 2.4), 0, 0.30),
    ("P07", "嘉定工业区", "Jiading Industrial Zone", "嘉定区", 31.415, 121.235, (3.0, 2.6), -15, 0.20),
    ("P08", "青浦工业园区", "Qingpu Industrial Park", "青浦区", 31.125, 121.075, (2.8, 2.0), 20, 0.10),
    ("P09", "闵行经济技术开发区", "Minhang Economic & Technological Development Zone", "闵行区", 31.018, 121.405, (2.2, 1.6), 0, 0.50),
    ("P10", "宝山城市工业园区", "Baoshan Urban Industrial Park", "宝山区", 31.395, 121.360, (2.6, 2.0), 10, 0.02),
]

# kind: share, (length range m), (width range m), storeys, pitched share
KINDS = {
    "factory": (0.55, (60, 220), (40, 140), (1, 2), 0.25),
    "warehouse": (0.25, (40, 160), (30, 70), (1, 1), 0.15),
    "office": (0.20, (25, 70), (15, 30), (3, 12), 0.35),
}


def park_polygons() -> gpd.GeoDataFrame:
    rows = []
    centres = gpd.GeoSeries(shapely.points([p[5] for p in PARKS], [p[4] for p in PARKS]), crs=4326).to_crs(UTM51N)
    for p, c in zip(PARKS, centres):
        w, h = p[6][0] * 1000, p[6][1] * 1000
        box = shapely.box(c.x - w / 2, c.y - h / 2, c.x + w / 2, c.y + h / 2)
        rows.append({"park_id": p[0], "name": p[1], "name_en": p[2], "district": p[3],
                     "geometry": affinity.rotate(box, p[7], origin=c)})
    return gpd.GeoDataFrame(rows, crs=UTM51N)


def footprints(parks_m: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    rows = []
    kinds = list(KINDS)
    shares = np.array([KINDS[k][0] for k in kinds])
    for p, park in zip(PARKS, parks_m.itertuples()):
        c = park.geometry.centroid
        w, h = p[6][0] * 1000, p[6][1] * 1000
        plot = 175.0  # plots of ~175 m with roads between them; some left empty (green, parking)
        xs = np.arange(-w / 2 + plot / 2, w / 2 - plot / 2 + 1, plot)
        ys = np.arange(-h / 2 + plot / 2, h / 2 - plot / 2 + 1, plot)
        n = 0
        for x in xs:
            for y in ys:
                if rng.random() < 0.12:
                    continue
                # a plot holds one big hall or 2–4 smaller buildings
                count = 1 if rng.random() < 0.45 else int(rng.integers(2, 5))
                for k in range(count):
                    kind = kinds[rng.choice(len(kinds), p=shares / shares.sum())]
                    _, lr, wr, storeys, pitched_share = KINDS[kind]
                    scale = 1.0 if count == 1 else 0.6
                    length = rng.uniform(*lr) * scale
                    width = min(rng.uniform(*wr) * scale, length)
                    if kind == "factory" and count == 1:  # factory halls of 2,000–30,000 m²
                        length, width = rng.uniform(80, 215), rng.uniform(45, 140)
                    dx = (k % 2 - 0.5) * plot * 0.45 if count > 1 else 0.0
                    dy = (k // 2 - 0.5) * plot * 0.45 if count > 2 else (0.0 if count < 3 else 0)
                    cx, cy = c.x + x + dx + rng.normal(0, 4), c.y + y + dy + rng.normal(0, 4)
                    geom = shapely.box(cx - length / 2, cy - width / 2, cx + length / 2, cy + width / 2)
                    if kind == "factory" and rng.random() < 0.2:  # L-shaped halls
                        geom = geom.difference(shapely.box(cx, cy, cx + length / 2, cy + width / 2))
                    geom = affinity.rotate(geom, p[7] + rng.normal(0, 2), origin=(c.x, c.y))
                    geom = affinity.rotate(geom, rng.choice([0, 0, 0, 90]), origin="centroid")
                    pitched = rng.random() < pitched_share
                    levels = int(rng.integers(storeys[0], storeys[1] + 1))
                    n += 1
                    rows.append({
                        "id": f"SH-{p[0]}-{n:04d}",
                        "name": f"示例{ {'factory': '厂房', 'warehouse': '仓库', 'office': '办公楼'}[kind] } {p[0]}-{n:04d}",
                        "owner": f"示例企业{p[0]}-{(n - 1) // 3 + 1:03d}（合成数据）",
                        "building": kind,
                        "building:levels": levels,
                        "height": round(levels * (4.5 if kind != "office" else 3.6) + rng.normal(0, 0.5), 1),
                        "roof:shape": ("gabled" if pitched else "flat"),
                        "roof:material": ("metal" if kind != "office" else "concrete"),
                        "geometry": geom,
                    })
    gdf = gpd.GeoDataFrame(rows, crs=UTM51N)
    # a few sheds and workshops between the parks (no park)
    outside = []
    for i in range(60):
        p = PARKS[i % len(PARKS)]
        c = parks_m.geometry.iloc[i % len(PARKS)].centroid
        ang = rng.uniform(0, 2 * np.pi)
        r = max(p[6]) * 1000 * 0.5 + rng.uniform(300, 1500)
        cx, cy = c.x + r * np.cos(ang), c.y + r * np.sin(ang)
        length, width = rng.uniform(20, 90), rng.uniform(12, 50)
        outside.append({"id": f"SH-X-{i + 1:04d}", "name": f"示例厂房 X-{i + 1:04d}", "owner": None,
                        "building": "industrial", "building:levels": 1, "height": 6.0,
                        "roof:shape": "flat", "roof:material": "metal",
                        "geometry": shapely.box(cx - length / 2, cy - width / 2, cx + length / 2, cy + width / 2)})
    gdf = pd.concat([gdf, gpd.GeoDataFrame(outside, crs=UTM51N)], ignore_index=True)
    # messy rows, as real sources have: a bow-tie, a 1 m² sliver, a duplicated id, an empty geometry
    base = gdf.geometry.iloc[0].centroid
    messy = gpd.GeoDataFrame([
        {"id": "SH-BAD-BOWTIE", "name": "自相交轮廓（示例）", "geometry": shapely.Polygon(
            [(base.x, base.y), (base.x + 30, base.y + 30), (base.x + 30, base.y), (base.x, base.y + 30)])},
        {"id": "SH-BAD-TINY", "name": "极小图斑（示例）", "geometry": shapely.box(base.x + 500, base.y, base.x + 501, base.y + 1)},
        {"id": gdf["id"].iloc[5], "name": "重复编号（示例）", "geometry": gdf.geometry.iloc[5]},
        {"id": "SH-BAD-EMPTY", "name": "空几何（示例）", "geometry": shapely.Polygon()},
    ], crs=UTM51N)
    return building_attributes(pd.concat([gdf, messy], ignore_index=True))


# Attributes drawn from their own generator, so that footprints and registry stay
# those of the seed above. SYNTHETIC, plausible for the kind of building:
# single-storey halls 7–12 m under colour-steel sheet (彩钢瓦), multi-storey
# factories and offices under concrete slabs, a 1.5 m parapet on offices.
ATTRIBUTE_SEED = SEED + 19
# values as sources spell them, bad ones included (pvsurvey reads "12m" as 12 m and
# "三层" as 3 storeys, and counts what it cannot use: negative, absurd, unparsable)
MESSY_HEIGHTS = ["12m", "9米", "-3", "9999", "约10米", "unknown"]
MESSY_LEVELS = ["三层", "5层", "3F", "十二层", "-1", "many"]


def building_attributes(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Heights, storeys, roof materials and roof years (SYNTHETIC) for the demo's buildings."""
    rng = np.random.default_rng(ATTRIBUTE_SEED)
    n = len(gdf)
    kind = gdf["building"].fillna("").to_numpy()
    levels = pd.to_numeric(gdf["building:levels"], errors="coerce").to_numpy()
    hall = np.isin(kind, ["factory", "warehouse", "industrial"]) & (levels == 1)
    office = kind == "office"
    height = np.where(hall, rng.uniform(7.0, 12.0, n),
                      np.where(office, levels * 3.6 + 1.5, levels * 5.0 + 1.0) + rng.normal(0, 0.4, n))
    material = np.where(hall, rng.choice(["彩钢瓦", "metal", "彩钢板", "混凝土"], n, p=[0.55, 0.25, 0.12, 0.08]),
                        rng.choice(["混凝土", "concrete", "彩钢瓦"], n, p=[0.6, 0.3, 0.1])).astype(object)
    material[rng.random(n) < 0.12] = None  # unknown: the configured share applies
    material[rng.random(n) < 0.01] = "glass"  # a material pvsurvey does not know: counted, unknown
    year = np.where(rng.random(n) < 0.45, rng.integers(1995, 2025, n), 0)
    out = gdf.copy()
    out["height"] = [f"{h:.1f}" for h in height]
    out["building:levels"] = [str(int(v)) if np.isfinite(v) else None for v in levels]
    out["roof:material"] = material
    out["roof_year"] = [str(y) if y else None for y in year]
    real = np.flatnonzero(out["id"].str.startswith("SH-P").to_numpy() & ~office)
    out.loc[out.index[rng.choice(real, len(MESSY_HEIGHTS), replace=False)], "height"] = MESSY_HEIGHTS
    rows = out.index[rng.choice(np.flatnonzero(office), len(MESSY_LEVELS), replace=False)]
    out.loc[rows, "height"] = None  # these say only how many storeys
    out.loc[rows, "building:levels"] = MESSY_LEVELS
    empty = out.geometry.is_empty | out["building"].isna()
    out.loc[empty, ["height", "building:levels", "roof:material", "roof_year"]] = None
    return out


def installations(fp_m: gpd.GeoDataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A SYNTHETIC installed-PV registry exercising every matching rule.

    Per park, large roofs get PV until about the park's share (the last field of
    PARKS) of its roof area carries it. Rows are located by building_id (55 %),
    by a point on the roof (35 %), by a point a few metres off the roof (8 %:
    the nearest-building rule), by the array polygon (2 rows), plus one point in
    an empty field that matches nothing. Commissioning dates run from 2019 to
    mid-2025 (a quarter before the plan's 2022 baseline); some systems are
    under construction or planned (no date yet).
    """
    rows = []
    good = fp_m[fp_m["id"].str.match(r"^SH-P\d\d-") & ~fp_m.geometry.is_empty].copy()
    good["park"] = good["id"].str.slice(3, 6)
    good["area"] = good.geometry.area
    share = {p[0]: p[8] for p in PARKS}
    start, end = pd.Timestamp("2019-06-01"), pd.Timestamp("2025-06-20")
    for park, group in good.groupby("park"):
        big = group[group["area"] >= 1500].sample(frac=1.0, random_state=int(rng.integers(1 << 31)))
        covered = big["area"].cumsum() <= share[park] * group["area"].sum()
        for b in big[covered].itertuples():
            kind = rng.choice(["id", "point", "near", "polygon"], p=[0.55, 0.35, 0.08, 0.02])
            kwp = round(b.area * 0.1 * rng.uniform(0.6, 1.0), 1)
            day = start + pd.Timedelta(days=int(rng.integers(0, (end - start).days)))
            status = "connected"
            if rng.random() < 0.08:
                status, day = rng.choice(["under_construction", "planned"]), None
            rows.append({"kind": kind, "building": b.id, "geometry": b.geometry, "capacity_kwp": kwp,
                         "commissioned_on": day, "status": status, "park": park})
    reg = pd.DataFrame(rows)
    reg["registry_id"] = [f"REG-{i + 1:04d}" for i in range(len(reg))]
    reg["name"] = "示例光伏项目（合成数据）" + reg["registry_id"].str.slice(4)
    pts = gpd.GeoSeries([g.representative_point() for g in reg["geometry"]], crs=UTM51N)
    def corner_outside(g, metres=8.0):  # 8 m beyond a corner, away from the centroid
        corner, centre = np.array(g.exterior.coords[0]), np.array(g.centroid.coords[0])
        step = (corner - centre) / np.linalg.norm(corner - centre)
        return shapely.Point(*(corner + metres * step))

    off = gpd.GeoSeries([corner_outside(g) for g in reg["geometry"]], crs=UTM51N)
    arrays = gpd.GeoSeries([g.centroid.buffer(8.0, cap_style="square") for g in reg["geometry"]], crs=UTM51N)
    lonlat = pts.to_crs(4326)
    off_ll = off.to_crs(4326)
    out = pd.DataFrame({
        "registry_id": reg["registry_id"], "name": reg["name"],
        "building_id": np.where(reg["kind"] == "id", reg["building"], ""),
        "lon": np.where(reg["kind"] == "point", lonlat.x.round(7), np.where(reg["kind"] == "near", off_ll.x.round(7), np.nan)),
        "lat": np.where(reg["kind"] == "point", lonlat.y.round(7), np.where(reg["kind"] == "near", off_ll.y.round(7), np.nan)),
        "geometry": np.where(reg["kind"] == "polygon", arrays.to_crs(4326).to_wkt(rounding_precision=8), ""),
        "capacity_kwp": reg["capacity_kwp"],
        "commissioned_on": [d.date().isoformat() if pd.notna(d) else "" for d in reg["commissioned_on"]],
        "status": reg["status"],
    })
    # one row in an empty field, far from any roof: it must be reported, not dropped
    nowhere = gpd.GeoSeries([shapely.Point(PARKS_CENTRE_OFFSET)], crs=UTM51N).to_crs(4326)
    out.loc[len(out)] = {"registry_id": f"REG-{len(out) + 1:04d}", "name": "示例光伏项目（无法匹配）",
                         "building_id": "", "lon": round(nowhere.x.iloc[0], 7), "lat": round(nowhere.y.iloc[0], 7),
                         "geometry": "", "capacity_kwp": 120.0, "commissioned_on": "2024-03-15", "status": "connected"}
    return out


def snapshot(registry: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """The registry as it stood on ``as_of``: later systems were under construction
    (connected within a year) or not registered yet; planned ones came later."""
    date = pd.to_datetime(registry["commissioned_on"], errors="coerce")
    cut = pd.Timestamp(as_of)
    keep = (date <= cut + pd.Timedelta(days=365)) & registry["status"].eq("connected")
    snap = registry[keep].copy()
    later = pd.to_datetime(snap["commissioned_on"]) > cut
    snap.loc[later, "status"] = "under_construction"
    snap.loc[later, "commissioned_on"] = ""
    return snap


def ghi_raster(path: Path) -> None:
    """0.25° GHI [kWh/m²/day] over Shanghai from pvcz's GLDAS climatology."""
    import pvcz
    import rasterio
    from rasterio.transform import from_origin

    df = pvcz.get_pvcz_data()
    west, north, step, n = 120.75, 32.0, 0.25, 6
    lats = north - step * (np.arange(n) + 0.5)
    lons = west + step * (np.arange(n) + 0.5)
    grid = np.full((n, n), np.nan, dtype="float32")
    land = df[(df.lat.between(29.5, 33)) & (df.lon.between(119.5, 123.5))]
    for i, la in enumerate(lats):
        for j, lo in enumerate(lons):
            hit = land[np.isclose(land.lat, la) & np.isclose(land.lon, lo)]
            if len(hit):
                grid[i, j] = hit.GHI_mean.iloc[0]
    # GLDAS is a land model: coastal and sea cells are empty. Fill them from the
    # nearest land cell so that the coastal parks (Lingang, Jinqiao) have a value.
    filled = grid.copy()
    for i, j in zip(*np.where(np.isnan(grid))):
        d = (land.lat - lats[i]) ** 2 + (land.lon - lons[j]) ** 2
        filled[i, j] = land.GHI_mean.to_numpy()[np.argmin(d.to_numpy())]
    profile = dict(driver="GTiff", width=n, height=n, count=1, dtype="float32", crs="EPSG:4326",
                   transform=from_origin(west, north, step, step), nodata=-9999.0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(filled, 1)
        dst.update_tags(units="kWh/m2/day", source="pvcz 0.3.0 GHI_mean (GLDAS NOAH 0.25 deg, 3-hourly)",
                        filled_cells=str(int(np.isnan(grid).sum())))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    parks_m = park_polygons()
    parks_m.to_crs(4326).to_file(OUT / "parks.geojson", driver="GeoJSON")
    fp = footprints(parks_m, rng).to_crs(4326)
    fp.to_parquet(OUT / "footprints.parquet", compression="zstd", index=False, row_group_size=1000)
    ghi_raster(OUT / "ghi_gldas_0p25.tif")
    registry = installations(fp.to_crs(UTM51N), rng)
    registry.to_csv(OUT / "installations-2025-06-30.csv", index=False, encoding="utf-8")
    snapshot(registry, "2024-06-30").to_csv(OUT / "installations-2024-06-30.csv", index=False, encoding="utf-8")
    print(f"{len(parks_m)} parks, {len(fp)} footprints, {len(registry)} registry rows -> {OUT}")


if __name__ == "__main__":
    main()
