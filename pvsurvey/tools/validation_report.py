"""`pvsurvey validate RUN_DIR`: the survey's predictions against the registry's
metered generation (pvsurvey.model.validation), as CSV tables, a JSON summary
with the calibration factor (reported, never applied) and a chart.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import pandas as pd

from ..config.schema import Uncertainty
from ..errors import InputFileError
from ..io.writers import atomic_write, write_csv, write_json
from ..model.uncertainty import Z90, band_parts
from ..model.validation import compare_systems, summarise_validation, system_sd_log
from ..store.run_directory import (BUILDINGS, REGISTRY_MATCHES, VALIDATION, VALIDATION_CHART, VALIDATION_SUMMARY,
                                   VALIDATION_SYSTEMS, RunDirectory)

log = logging.getLogger(__name__)

TEXT = {
    "en": {"title": "Predicted against metered annual generation", "x": "Predicted [MWh/yr]",
           "y": "Metered [MWh/yr]", "one": "metered = predicted", "band": "P90–P10 band of a system",
           "systems": "systems", "city": "City", "bias": "bias", "spread": "spread (log sd)",
           "inside": "inside their own P90–P10 band", "calibration": "calibration factor",
           "ci": "95 % interval", "not_applied": "reported only, not applied to any figure",
           "none": "no metered system matched a surveyed roof"},
    "zh": {"title": "预测与实测年发电量对比", "x": "预测 [MWh/年]", "y": "实测 [MWh/年]", "one": "实测 = 预测",
           "band": "单个项目的P90–P10区间", "systems": "个项目", "city": "全市", "bias": "偏差",
           "spread": "离散度（对数标准差）", "inside": "落在自身P90–P10区间内", "calibration": "校准系数",
           "ci": "95%置信区间", "not_applied": "仅供参考，未应用于任何结果", "none": "没有与屋顶匹配的计量项目"},
}


def _config_parts(run: RunDirectory, config: dict | None = None):
    cfg = config if config is not None else run.config
    unc = Uncertainty(**(cfg.get("uncertainty") or {}))
    parts = band_parts(unc.model_copy(update={"enabled": True}), (cfg.get("irradiance") or {}).get("weather") is not None)
    return parts, unc.interannual_frac


def validate_run(run_dir: str | Path, finished: bool = True, config: dict | None = None) -> dict:
    """Compare each metered system's prediction with its metered year and write the results.

    Writes ``validation.csv`` (per system), ``validation_summary.csv`` (city,
    districts, parks) and ``validation.json`` into the run directory.

    Returns
    -------
    dict
        The content of ``validation.json`` (city figures, calibration, file names).

    Raises
    ------
    InputFileError
        The run has no registry, or its registry has no metered generation.
    """
    run = RunDirectory(run_dir, finished=finished)
    if not run.has(REGISTRY_MATCHES):
        raise InputFileError(f"{run.path}: no {REGISTRY_MATCHES} here; the run had no installations registry "
                             "(give 'installations' in the config)")
    matched = pd.read_csv(run.file(REGISTRY_MATCHES), encoding="utf-8-sig", dtype={"registry_id": str,
                          "matched_building_id": str})
    if "metered_kwh_per_yr" not in matched or not matched["metered_kwh_per_yr"].notna().any():
        raise InputFileError(f"{run.path}: the registry carries no metered generation; add a column "
                             "metered_kwh_per_yr [kWh/yr] to it, or map the file's own header with "
                             "'installations: {columns: {metered_kwh_per_yr: <its header>}}', and run again")
    with run.reading(BUILDINGS) as path:  # a damaged part: one line naming it
        buildings = pd.read_parquet(path, columns=["building_id", "park_id", "park_name", "district",
                                                   "specific_yield_kwh_per_kwp"])
    parts, interannual = _config_parts(run, config)
    sd_log = system_sd_log(parts, interannual)
    systems = compare_systems(matched, buildings, sd_log)
    summary = summarise_validation(systems)
    write_csv(systems, run.file(VALIDATION_SYSTEMS))
    write_csv(summary, run.file(VALIDATION_SUMMARY))
    city = {k: _plain(v) for k, v in summary.iloc[0].to_dict().items()}
    doc = {
        "definition": {
            "predicted": "the registered capacity x the specific yield of the roof it matched",
            "band": "the system's own P90-P10: specific-yield parts of the uncertainty model plus one year's "
                    "weather (the metered year is one year, the prediction a long-term mean)",
            "bias_frac": "geometric mean of metered / predicted, less 1",
            "spread_log": "standard deviation of ln(metered / predicted)",
            "calibration_factor": "geometric mean of metered / predicted with its 95 % interval (Student's t); "
                                  "reported, never applied",
        },
        "band_sd_log": sd_log, "band_z": Z90,
        "city": city,
        "calibration": {"factor": city["calibration_factor"], "low": city["calibration_low"],
                        "high": city["calibration_high"], "confidence": 0.95, "applied": False},
        "metered_rows": int(matched["metered_kwh_per_yr"].notna().sum()), "compared_systems": int(len(systems)),
        "files": [VALIDATION_SYSTEMS, VALIDATION_SUMMARY, f"{VALIDATION_CHART}.png", f"{VALIDATION_CHART}.svg"],
    }
    write_json(doc, run.file(VALIDATION))
    return doc


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value.item() if hasattr(value, "item") else value


def validation_text(doc: dict, lang: str = "en") -> str:
    """The city's validation in a few lines."""
    t, c = TEXT[lang], doc["city"]
    if not doc["compared_systems"]:
        return t["none"]
    cal = doc["calibration"]
    interval = (f"{cal['low']:.3f}–{cal['high']:.3f}" if cal["low"] is not None else "–")
    return "\n".join([
        f"{t['title']} — {t['city']}: {c['systems']} {t['systems']}",
        f"  {t['bias']}: {c['bias_frac'] * 100:+.1f} %   {t['spread']}: "
        f"{'–' if c['spread_log'] is None else format(c['spread_log'], '.3f')}",
        f"  {t['inside']}: {c['inside_band_frac'] * 100:.0f} %",
        f"  {t['calibration']}: {cal['factor']:.3f} ({t['ci']} {interval}) — {t['not_applied']}",
    ])


def validation_figure(systems: pd.DataFrame, doc: dict, sd_log: float, lang: str = "en"):
    """Scatter of metered against predicted generation, log-log, with the 1:1 line
    and the P90-P10 band of a system around it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    t = TEXT[lang]
    fig, ax = plt.subplots(figsize=(6.5, 6), layout="constrained")
    x = systems["predicted_kwh_per_yr"].to_numpy() / 1000
    y = systems["metered_kwh_per_yr"].to_numpy() / 1000
    if len(x):
        lo, hi = min(x.min(), y.min()) * 0.8, max(x.max(), y.max()) * 1.25
        line = np.geomspace(lo, hi, 50)
        ax.fill_between(line, line * math.exp(-Z90 * sd_log), line * math.exp(Z90 * sd_log), color="tab:blue",
                        alpha=0.15, label=t["band"])
        ax.plot(line, line, "--", color="grey", label=t["one"])
        inside = systems["inside_band"].to_numpy(dtype=bool)
        ax.scatter(x[inside], y[inside], s=10, color="tab:blue")
        ax.scatter(x[~inside], y[~inside], s=10, color="tab:red")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(t["x"])
    ax.set_ylabel(t["y"])
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(validation_text(doc, lang).replace("  ", ""), fontsize=8, loc="left")
    return fig


def report_validation(run_dir: str | Path, lang: str = "en", finished: bool = True, config: dict | None = None
                      ) -> tuple[str, list[Path], dict]:
    """Validate a run (:func:`validate_run`) and draw ``validation.png`` / ``validation.svg``.

    Returns
    -------
    (str, list of Path, dict)
        The city's validation as text, every file written and ``validation.json``'s content.
    """
    doc = validate_run(run_dir, finished, config)
    run = RunDirectory(run_dir, finished=finished)
    systems = pd.read_csv(run.file(VALIDATION_SYSTEMS), encoding="utf-8-sig")
    import matplotlib.pyplot as plt

    from .progress_report import has_cjk_font

    written = [run.file(VALIDATION_SYSTEMS), run.file(VALIDATION_SUMMARY), run.file(VALIDATION)]
    png_lang = lang if (lang == "en" or has_cjk_font()) else "en"
    for suffix, chart_lang in (("png", png_lang), ("svg", lang)):
        with plt.rc_context({"svg.fonttype": "none"}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig = validation_figure(systems, doc, doc["band_sd_log"], chart_lang)
            try:
                written.append(atomic_write(run.file(f"{VALIDATION_CHART}.{suffix}"),
                                            lambda tmp: fig.savefig(tmp, dpi=120, format=suffix)))
            finally:
                plt.close(fig)
    return validation_text(doc, lang), written, doc
