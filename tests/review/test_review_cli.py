"""`tabpilot review ...` from the terminal: what it prints, and one clear line (exit 2) for
each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

from servinglib import build_model

from tabpilot.review.flows import ROUTE
from tabpilot.store import Store


def _error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


def test_review_commands_and_their_errors(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    made = cli("review", "flow", "create", "churn-review", "--output", str(tmp_path / "out"),
               "--task-count", "2", workspace=ws)
    assert made.returncode == 0 and "2 reviewer(s)" in made.stdout
    added = cli("review", "reviewer", "add", "alice", workspace=ws)
    token = added.stdout.strip()
    assert added.returncode == 0 and token.startswith("tpr_") and "not shown again" in added.stderr
    assert token not in (ws / "tabpilot.db").read_bytes().decode("latin-1")  # a hash only
    listed = cli("review", "reviewer", "list", "--json", workspace=ws)
    assert json.loads(listed.stdout) == ["alice"]
    flows = json.loads(cli("review", "flows", "--json", workspace=ws).stdout)
    assert flows[0]["FlowDefinitionName"] == "churn-review" and flows[0]["TaskCount"] == 2

    model = build_model(tmp_path / "m" / "model", n_estimators=5, compiled=False)
    Store.for_workspace(ws).put_endpoint("churn", str(model))
    routed = cli("review", "route", "churn", "--flow-definition", "churn-review", "--below",
                 "0.8", "--margin", "--audit-percent", "2", workspace=ws)
    assert routed.returncode == 0 and "margin below 0.8, plus 2%" in routed.stdout
    spec = Store.for_workspace(ws).get_resource(ROUTE, "churn").spec
    assert spec == {"endpoint": "churn", "flow": "churn-review", "below": 0.8, "margin": True,
                    "audit_percent": 2.0}

    assert "no endpoint named 'nope'" in _error(
        cli("review", "route", "nope", "--flow-definition", "churn-review", workspace=ws))
    assert "no flow definition named 'other'" in _error(
        cli("review", "route", "churn", "--flow-definition", "other", workspace=ws))
    assert "--below" in _error(cli("review", "route", "churn", "--flow-definition",
                                   "churn-review", "--below", "1.5", workspace=ws))
    assert "exists already" in _error(cli("review", "reviewer", "add", "alice", workspace=ws))
    assert "not valid" in _error(cli("review", "reviewer", "add", "bad name", workspace=ws))
    assert "not valid" in _error(cli("review", "flow", "create", "Bad_Name", "--output",
                                     str(tmp_path), workspace=ws))
    assert "no completed loops" in _error(cli("review", "export", "churn-review",
                                              "--retraining-table", str(tmp_path / "t.csv"),
                                              workspace=ws))
    assert "no flow definition named 'gone'" in _error(
        cli("review", "export", "gone", "--retraining-table", str(tmp_path / "t.csv"),
            workspace=ws))
    removed = cli("review", "route", "churn", "--remove", workspace=ws)
    assert removed.returncode == 0 and Store.for_workspace(ws).find_resource(ROUTE, "churn") \
        is None
