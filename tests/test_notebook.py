"""The analysts' walkthrough runs top to bottom."""

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO


@pytest.mark.slow
def test_walkthrough_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("PVSURVEY_RUN_DIR", str(tmp_path / "run"))
    nb = nbformat.read(REPO / "notebooks" / "walkthrough.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "kWh per m² of usable roof a year" in text and "MWp" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
