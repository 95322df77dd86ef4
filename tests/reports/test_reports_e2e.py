"""Reports on real jobs: insights files per candidate, explanations on raw columns."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tabpilot


def _table(n: int, task: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "signal": rng.normal(size=n), "noise": rng.normal(size=n),
        "plan": rng.choice(["basic", "plus", "pro"], n),
    })
    score = 2 * df["signal"] + (df["plan"] == "pro") * 1.5 + rng.normal(0, 0.3, n)
    if task == "regression":
        df["y"] = score * 10
    elif task == "multiclass":
        df["y"] = np.select([score < -1, score < 1], ["low", "mid"], "high")
    else:
        df["y"] = np.where(score > 0.5, "yes", "no")
    return df


# binary keeps the report path in the default run; the other two (about 30 s each) are slow
@pytest.fixture(scope="module", params=["binary",
                                        pytest.param("multiclass", marks=pytest.mark.slow),
                                        pytest.param("regression", marks=pytest.mark.slow)])
def job(request, tmp_path_factory):
    ws = tmp_path_factory.mktemp(f"reports-{request.param}")
    automl = tabpilot.AutoML(target="y", time_limit=15, max_candidates=3, n_workers=2,
                             algorithms=["lightgbm", "linear"], name=f"r-{request.param}",
                             workspace=ws).fit(_table(600, request.param))
    return request.param, automl, ws


@functools.cache  # one `tabpilot report` per job serves every test of the module
def _report(ws: Path, name: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "tabpilot", "report", name, "--json",
                           "--workspace", str(ws)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_report_writes_insights_for_every_kept_candidate(job) -> None:
    task, automl, ws = job
    written = _report(ws, automl.name)["Candidates"]
    kept = [c["CandidateName"] for c in automl.candidates() if c["ModelLocation"]]
    assert sorted(written) == sorted(kept)
    for name, where in written.items():
        doc = json.loads(Path(where["ModelInsights"]).with_suffix(".json").read_text())
        assert doc["candidate"] == name and doc["problem_type"] == task
        assert task in doc  # the section of the problem type
        assert all("lower" in m and "upper" in m for m in doc["metrics"].values())
        explained = json.loads(Path(where["Explainability"]).read_text())
        assert explained["candidate"] == name
        assert explained["feature_importance"] == doc["feature_importance"]
        features = [f["feature"] for f in doc["feature_importance"]["importance"]]
        assert set(features) == {"signal", "noise", "plan"}  # raw columns, not encoded ones
        assert features[0] == "signal" or features[1] == "signal"
    locations = automl.candidates()[0]["CandidateProperties"]["CandidateArtifactLocations"]
    assert set(locations) == {"ModelInsights", "Explainability"}


@pytest.mark.parametrize("page", ["insights.html", "explanations.html"])
def test_insights_html_loads_nothing_from_the_network(job, page: str) -> None:
    _, automl, ws = job
    where = next(iter(_report(ws, automl.name)["Candidates"].values()))
    html = (Path(where["ModelInsights"]).parent / page).read_text()
    assert "<img" in html
    for attr in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html):
        # embedded, a link within the page, or to the candidate's other page beside it
        assert attr.startswith(("data:", "#")) or attr in ("insights.html",
                                                             "explanations.html"), attr
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script src" not in html


def test_explain_gives_per_row_contributions_on_raw_columns(job) -> None:
    task, automl, ws = job
    rows = _table(20, task, seed=3).drop(columns="y")
    # the exact TreeSHAP check below needs a kept LightGBM candidate to run on
    assert any(c["Algorithm"] == "LightGBM" and c["ModelLocation"] for c in automl.candidates())
    for cand in automl.candidates():
        if not cand["ModelLocation"]:
            continue
        model = tabpilot.load_model(automl.name, candidate=cand["CandidateName"], workspace=ws)
        contrib = model.explain(rows)
        assert list(contrib.columns) == ["signal", "noise", "plan"]
        assert contrib.shape == (20, 3)
        assert np.isfinite(contrib.to_numpy()).all()
        # the informative column moves predictions more than the noise column
        assert contrib["signal"].abs().mean() > contrib["noise"].abs().mean()
        if cand["Algorithm"] == "LightGBM" and task != "multiclass":
            # TreeSHAP is exact: contributions + base value give each booster's raw margin
            # (averaged over the fold models of a bag)
            margin = np.array(contrib.attrs["base_value"]) + contrib.sum(axis=1).to_numpy()
            predictor = model.predictor
            encoded = predictor.encoder.transform(rows)
            expected = np.mean([est.predict(encoded, raw_score=True)
                                for est in predictor.estimators], axis=0)
            assert np.allclose(margin, expected, atol=1e-6)


SECTIONS = {"binary": ["ranking", "decisions", "gain"], "multiclass": ["decisions"],
            "regression": ["errors"]}


def test_the_candidate_page_has_its_charts_and_says_how_contributions_were_made(job) -> None:
    task, automl, ws = job
    written = _report(ws, automl.name)["Candidates"]
    algorithms = {c["CandidateName"]: c["Algorithm"] for c in automl.candidates()}
    for name, where in written.items():
        insights = Path(where["ModelInsights"]).read_text()
        html = (Path(where["ModelInsights"]).parent / "explanations.html").read_text()
        explained = json.loads(Path(where["Explainability"]).read_text())
        for section in SECTIONS[task] + ["importance"]:
            assert f'<h2 id="{section}">' in insights, (name, section)
        for section in ["importance", "shap", "dependence", "pdp"]:
            assert f'<h2 id="{section}">' in html, (name, section)
        assert 'href="explanations.html"' in insights and 'href="insights.html"' in html
        for page in (insights, html):  # readable labels, raw keys only in the JSON
            assert "permutation_" not in re.sub(r"<script.*?</script>", "", page, flags=re.S)
        shap, pdp = explained["shap"], explained["partial_dependence"]
        assert set(shap["features"]) == {"signal", "noise", "plan"}
        assert {f["feature"] for f in pdp["features"]} == {"signal", "noise", "plan"}
        if algorithms[name] == "LightGBM":
            assert shap["method"] == "tree_shap"
            assert "made by exact TreeSHAP" in html
        else:
            assert shap["method"] == "baseline_occlusion"
        if task == "binary":  # the units name the positive class
            assert shap["units"] in ('log-odds of "yes"', 'probability of "yes"')
            assert f"in {shap['units']}".replace('"', "&#34;") in html
            auc = json.loads(Path(where["ModelInsights"]).with_suffix(".json").read_text())[
                "binary"]["roc_auc"]
            assert f"AUC {auc:.4f}" in insights
