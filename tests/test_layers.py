"""The package's folders are layers and imports only go down (README, Architecture),
checked with import-linter's layers contract from pyproject.toml."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import pvsurvey

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return contract


def test_no_import_goes_up_a_layer():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint) if lint.exists() else "lint-imports", "--config", "pyproject.toml"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_every_module_sits_in_a_layer():
    """A new folder or base module must be placed in the contract, or nothing checks it."""
    named = {name.strip() for layer in _contract()["layers"] for name in layer.split("|")}
    top = {f"pvsurvey.{m.name}" for m in pkgutil.iter_modules(pvsurvey.__path__)} - {"pvsurvey.__main__"}
    assert top - named == set()
    assert named - top == set()
