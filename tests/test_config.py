"""Config loading: defaults, relative paths, one-line errors."""

import pytest

from pvsurvey.config.loading import DEMO_CONFIG, config_from_dict, load_config
from pvsurvey.errors import ConfigError

BASE = {"name": "t", "footprints": "fp.parquet", "irradiance": {"ghi": "ghi.tif"}}


def test_demo_config_loads_with_defaults():
    cfg = load_config(DEMO_CONFIG)
    assert cfg.name == "shanghai-demo"
    assert cfg.footprints.path.is_file() and cfg.parks.path.is_file() and cfg.irradiance.ghi.is_file()
    assert cfg.roof.setback_m == 1.0 and cfg.targets.install_ratio == 0.5
    assert cfg.targets.new_capacity_mw == 1000 and str(cfg.targets.deadline) == "2025-12-31"


def test_paths_are_relative_to_the_config_file(tmp_path):
    cfg = config_from_dict({**BASE, "footprints": {"path": "sub/fp.gpkg", "crs": "GCJ02"}}, tmp_path)
    assert cfg.footprints.path == (tmp_path / "sub" / "fp.gpkg").resolve()
    assert cfg.footprints.crs == "gcj02"
    assert cfg.irradiance.ghi == (tmp_path / "ghi.tif").resolve()


@pytest.mark.parametrize("change,message", [
    ({"roofs": {}}, "unknown key 'roofs'"),
    ({"roof": {"setback": 1}}, "unknown key 'roof.setback'"),
    ({"roof": {"setback_m": -1}}, "key 'roof.setback_m': Input should be greater than or equal to 0 (got -1)"),
    ({"irradiance": {"ghi": "g.tif", "units": "kWh/m2"}}, "key 'irradiance.units': Input should be 'kWh/m2/day', 'kWh/m2/yr' or 'W/m2'"),
    ({"roof": {"ground_coverage_ratio": 1.5}}, "key 'roof.ground_coverage_ratio'"),
    ({"roof": {"rule_set": "swiss"}},
     "key 'roof.rule_set': Input should be 'shanghai', 'swiss_sfoe_2016' or 'nrel_gagnon_2016' (got 'swiss')"),
    ({"roof": {"large_roof_area_m2": 500}}, "key 'roof': Value error, large_roof_area_m2 and large_roof_coverage_frac go together"),
    ({"shade": {"max_height_m": 0}}, "key 'shade.max_height_m': Input should be greater than 0 (got 0)"),
    ({"roof": {"min_footprint_area_m2": 500, "max_footprint_area_m2": 400}},
     "key 'roof': Value error, min_footprint_area_m2 (500) must be smaller than max_footprint_area_m2 (400)"),
    ({"climate": {"temp_air_mean_c": 1000}}, "key 'climate.temp_air_mean_c': Input should be less than or equal to 40"),
    ({"footprints": {"path": "x", "crs": " "}}, "key 'footprints.crs'"),  # what pyproj reads: test_intake.py
    ({"name": None}, "key 'name'"),
    ({"parallel": {"shared_filesystem": "maybe"}}, "key 'parallel.shared_filesystem': Input should be 'auto', True or False"),
])
def test_bad_values_fail_with_one_line_naming_the_key(tmp_path, change, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({**BASE, **change}, tmp_path)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_missing_key_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="missing key 'irradiance'"):
        config_from_dict({"name": "x", "footprints": "a.parquet"}, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
