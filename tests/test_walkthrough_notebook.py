"""examples/studio_walkthrough.ipynb runs from top to bottom: it generates its churn table,
trains a job, compares the candidates, deploys the best with boto3 to a real `tabpilot
serve`, invokes it, batch-transforms a file and cleans up. Its own asserts check that the
endpoint, the local model and the transform agree; this test checks that every cell ran,
that it left nothing behind, and that it needs nothing outside the repository."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parent.parent / "examples" / "studio_walkthrough.ipynb"


def test_walkthrough_is_self_contained() -> None:
    text = NOTEBOOK.read_text()
    assert "../shared" not in text.replace("`../shared/datasets/churn_sagemaker.csv`", "")
    cells = json.loads(text)["cells"]
    assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code")  # stored clean
    source = "".join("".join(c["source"]) for c in cells)
    for column in ("State", "Account Length", "Area Code", "Phone", "Int'l Plan", "VMail Plan",
                   "VMail Message", "CustServ Calls", "Churn?"):  # the real table's names
        assert f'"{column}"' in source, column
    for period in ("Day", "Eve", "Night", "Intl"):  # "Day Mins", "Day Calls", "Day Charge", ...
        assert f'("{period}", ' in source, period
    for measure in ("Mins", "Calls", "Charge"):
        assert f'f"{{period}} {measure}"' in source, measure
    for call in ("create_model", "create_endpoint_config", "create_endpoint",
                 "invoke_endpoint", "create_transform_job", "delete_endpoint", "leaderboard"):
        assert call in source, call


@pytest.mark.slow
def test_walkthrough_runs_end_to_end(tmp_path: Path) -> None:
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    before = set(Path(tempfile.gettempdir()).glob("tabpilot-walkthrough-*"))
    env_keys = {"WALKTHROUGH_ROWS": "600"}
    os.environ.update(env_keys)
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for key in env_keys:
            os.environ.pop(key, None)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Completed" in text and "predictions; accuracy on held-out customers" in text
    assert "cleaned up" in text
    assert set(Path(tempfile.gettempdir()).glob("tabpilot-walkthrough-*")) == before
