"""Load and validate a survey config (YAML)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from ..locations import is_url
from .schema import SurveyConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "pipelines" / "shanghai-demo.yaml"


def _resolve(base: Path, path: Path | str | None) -> Path | str | None:
    if path is None or is_url(path):
        return path
    path = Path(path).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _describe(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{key}'"
    if kind == "missing":
        return f"missing key '{key}'"
    got = error.get("input")
    if isinstance(got, (dt.date, dt.datetime)):  # YAML reads 2025-12-31 as a date
        got = got.isoformat()
    shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
    return f"key '{key}': {error['msg']}{shown}"


def config_from_dict(data: dict, base_dir: Path, source: str = "config") -> SurveyConfig:
    """Validate a config mapping; relative paths are resolved against ``base_dir``.

    Raises
    ------
    ConfigError
        One line naming the key and what is allowed.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        cfg = SurveyConfig.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_describe(errors[0])}{more}") from None
    update = {}
    for key in ("footprints", "parks", "installations"):
        src = getattr(cfg, key)
        if src is not None:
            resolved = {"path": _resolve(base_dir, src.path)}
            if src.crs is not None and src.crs.lower().endswith((".prj", ".wkt")) and not src.crs.startswith("+"):
                resolved["crs"] = str(_resolve(base_dir, src.crs))  # a .prj file beside the config
            update[key] = src.model_copy(update=resolved)
    if cfg.maps.publish_dir is not None:
        update["maps"] = cfg.maps.model_copy(update={"publish_dir": _resolve(base_dir, cfg.maps.publish_dir)})
    if cfg.progress.history_file is not None:
        update["progress"] = cfg.progress.model_copy(
            update={"history_file": _resolve(base_dir, cfg.progress.history_file)})
    irr = cfg.irradiance
    update["irradiance"] = irr.model_copy(update={
        "ghi": _resolve(base_dir, irr.ghi), "weather": _resolve(base_dir, irr.weather)})
    return cfg.model_copy(update=update)


def load_config(path: str | Path | None = None) -> SurveyConfig:
    """Read a survey YAML file (the bundled demo when ``path`` is None)."""
    path = Path(path) if path is not None else DEMO_CONFIG
    if not path.is_file():
        hint = (" (the demo config ships with the repository: run from a clone installed with 'pip install -e .')"
                if path == DEMO_CONFIG else "")
        raise ConfigError(f"config file not found: {path}{hint}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return config_from_dict(data, path.resolve().parent, source=str(path))
