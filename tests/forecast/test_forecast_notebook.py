"""The forecasting job's white box: the time-series analysis, the backtest forecasts and
their plots, and the exploration notebook that shows them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tabpilot.forecast.analysis import analyse, intermittency, strengths
from tabpilot.forecast.job import ENSEMBLE
from tabpilot.forecast.request import ForecastRequest
from tabpilot.forecast.series import prepare


def test_the_job_writes_its_analysis_forecasts_plots_and_notebook(finished_job, cli):
    result, _, workspace = finished_job
    folder = result.folder
    analysis = json.loads((folder / "time_series_analysis.json").read_text())
    summary = analysis["summary"]
    assert (summary["items"], summary["rows"], summary["inferred_frequency"]) == (2, 140, "D")
    assert summary["length"] == {"min": 70, "median": 70.0, "max": 70}
    assert summary["median_seasonal_strength"] > 0.8  # a weekly sine 8x the noise
    assert any("seasonal strength" in line for line in analysis["insights"])
    frame = pd.read_parquet(folder / "backtest_forecasts.parquet")
    assert list(frame.columns) == ["candidate", "window", "item", "ds", "actual", "mean",
                                   "p10", "p50", "p90"]
    scored = frame[frame["window"] >= 0]
    assert scored.groupby("candidate").size().to_dict() == \
        {c: 3 * 2 * 7 for c in ("AutoTheta", "SeasonalNaive", ENSEMBLE)}  # windows x items x h
    assert (frame[frame["window"] == -1].groupby("item").size() == 21).all()  # 3 horizons
    for name in ("AutoTheta", "SeasonalNaive", ENSEMBLE):
        assert (folder / "candidates" / name / "backtest.png").read_bytes()[:4] == b"\x89PNG"
    notebook = json.loads((folder / "DataExploration.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in notebook["cells"])
    for section in ("## Per-item lengths", "## Frequency and gaps", "## Seasonality",
                    "## Intermittency", "## Backtests, per candidate"):
        assert section in text
    desc = json.loads(cli("describe", "fcjob", "--json", workspace=workspace).stdout)
    assert desc["AutoMLJobArtifacts"]["DataExplorationNotebookLocation"] == \
        str(folder / "DataExploration.ipynb")


def test_the_analysis_finds_gaps_intermittency_and_the_lack_of_a_season():
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=60)
    sparse = rng.poisson(0.3, 60) * 5.0  # mostly zeros, sizes 5, 10, ...
    table = pd.concat([
        pd.DataFrame({"id": "sparse", "ds": days, "y": sparse}),
        pd.DataFrame({"id": "gappy", "ds": days, "y": 10 + rng.normal(0, 1, 60)}).drop([5, 6, 7]),
    ])
    request = ForecastRequest.build(target="y", timestamp="ds", item_id="id", frequency="1D",
                                    horizon=7)
    found = analyse(table, request, prepare(table, request))
    items = {i["item"]: i for i in found["items"]}
    assert items["gappy"]["missing_periods"] == 3 and items["sparse"]["missing_periods"] == 0
    assert items["sparse"]["demand_class"] in ("intermittent", "lumpy")
    assert items["gappy"]["demand_class"] == "smooth"
    assert items["gappy"]["seasonal_strength"] < 0.5  # noise has no weekly season
    assert found["summary"]["missing_periods"] == 3
    lines = " ".join(found["insights"])
    assert "3 missing periods in 1 items were filled (middlefill zero" in lines
    assert "1 of 2 items are intermittent or lumpy" in lines


def test_strength_and_intermittency_measures_on_known_series():
    t = np.arange(84)
    season = np.sin(2 * np.pi * t / 7)
    assert strengths(10 + 5 * season, 7)["seasonal_strength"] == pytest.approx(1.0, abs=1e-6)
    assert strengths(np.arange(10.0), 7)["seasonal_strength"] is None  # under two seasons
    assert intermittency(np.array([0, 0, 4, 0, 0, 4, 0, 0, 4.0])) == \
        {"adi": 3.0, "cv2": 0.0, "demand_class": "intermittent"}
    assert intermittency(np.zeros(5))["demand_class"] == "all zero"


@pytest.mark.slow
def test_report_executes_the_notebook_drawing_every_candidates_backtest(finished_job, cli,
                                                                        tmp_path):
    _, _, workspace = finished_job
    copy = tmp_path / "ws"  # a moved workspace: the notebook finds its job from its place
    shutil.copytree(workspace, copy)
    proc = cli("report", "fcjob", "--json", workspace=copy)
    assert proc.returncode == 0, proc.stderr
    notebook = json.loads(proc.stdout)["DataExplorationNotebookLocation"]
    assert notebook == str(copy / "jobs" / "fcjob" / "DataExploration.ipynb")
    cells = json.loads(open(notebook).read())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    last = [c for c in cells if c["cell_type"] == "code"][-1]["outputs"]
    # two items for each of the three candidates, each a drawn chart
    assert sum("image/png" in o.get("data", {}) for o in last) == 6
