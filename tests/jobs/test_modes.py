"""Autopilot's modes: ensembling (k-fold bags and a greedy ensemble), hpo (tuned single
models on a holdout, refit on all rows), and auto's choice between them by data size."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tabpilot import AutoML
from tabpilot.errors import ConfigError
from tabpilot.jobs.creating import AUTO_HPO_BYTES, resolve_mode
from tabpilot.jobs.selection import REFIT_FULL

FAST = ["lightgbm", "linear"]


def job_json(ws: Path, name: str) -> dict:
    return json.loads((ws / "jobs" / name / "job.json").read_text())


def test_hpo_mode_tunes_single_models_on_a_holdout(tmp_path: Path, breast_cancer) -> None:
    train, _, _ = breast_cancer
    job = AutoML(target="target", time_limit=20, max_candidates=3, algorithms=FAST, n_workers=2,
                 name="hpo", workspace=tmp_path, mode="hpo")
    job.fit(train)
    desc = job.describe()
    assert desc["AutoMLProblemTypeConfig"]["TabularJobConfig"]["Mode"] == "HYPERPARAMETER_TUNING"
    assert desc["ResolvedMode"] == "HYPERPARAMETER_TUNING"
    assert job_json(tmp_path, "hpo")["resolved"]["mode"] == "hpo"
    algorithms = {c["Algorithm"] for c in job.candidates()}
    assert "Ensemble" not in algorithms
    # a holdout, so the best single model is refit on every row (a bag under k-fold is not)
    assert desc["BestCandidate"]["TrainedOn"] == "train+holdout", [
        (c["CandidateName"], c["TrainedOn"]) for c in job.candidates()]


@pytest.mark.slow  # 18 s; resolve_mode's rule is tested fast below
def test_auto_picks_ensembling_for_small_data(tmp_path: Path, breast_cancer) -> None:
    train, _, _ = breast_cancer
    job = AutoML(target="target", time_limit=20, max_candidates=3, algorithms=FAST, n_workers=2,
                 name="auto", workspace=tmp_path)
    job.fit(train)
    desc = job.describe()
    assert desc["AutoMLProblemTypeConfig"]["TabularJobConfig"]["Mode"] == "AUTO"
    assert desc["ResolvedMode"] == "ENSEMBLING"
    # 569 rows: 5-fold bags, never refit on a holdout (a distilled student of the ensemble,
    # when time allows, is trained on its own terms; bags collapsed into `-full` models when
    # the ensemble answers slower than the fast budget on this machine: test_fast_ensemble)
    assert {c["TrainedOn"] for c in job.candidates()} - {"distilled", REFIT_FULL} == {"train"}


def test_resolve_mode_by_size_and_by_request() -> None:
    class Small:
        X = pd.DataFrame({"a": range(100)})

    class Large:
        X = pd.DataFrame({"a": [0.0] * (AUTO_HPO_BYTES // 8 + 1)})

    assert resolve_mode("auto", Small) == "ensembling"
    assert resolve_mode("auto", Large) == "hpo"
    assert resolve_mode("hpo", Small) == "hpo"
    assert resolve_mode("ensembling", Large) == "ensembling"


def test_unknown_mode_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="mode"):
        AutoML(target="y", mode="bagging")
