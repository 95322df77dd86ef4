"""A text classification request: what it needs, what it refuses (one line, exit 2 at the
CLI, nothing written), and the schema it gives the job (the text column only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from textlib import reviews

from tabpilot.automl import AutoML
from tabpilot.config import JobRequest
from tabpilot.data.prepare import prepare
from tabpilot.errors import ConfigError, DataError, TabpilotError, TargetError
from tabpilot.tasks import ProblemType


def test_the_request_resolves_to_binary_or_multiclass_with_a_text_column() -> None:
    r = JobRequest.build(target="label", problem_type="TextClassification",
                         text_column="review")
    assert r.is_text and r.problem_type is None  # inferred from the labels
    assert JobRequest.build(target="label", problem_type="multiclass",
                            text_column="review").problem_type is ProblemType.MULTICLASS
    for kwargs, words in [
        (dict(problem_type="text-classification"), "--text-column"),
        (dict(text_column="label"), "is the target"),
        (dict(text_column="review", problem_type="regression"), "labels, not numbers"),
        (dict(text_column="review", feature_types="spec.json"), "--feature-types"),
        (dict(algorithms=["text_svm"]), "--problem-type text-classification"),
    ]:
        with pytest.raises(ConfigError, match=words):
            JobRequest.build(target="label", **kwargs)


def test_prepare_keeps_only_the_text_column_and_defaults_to_accuracy() -> None:
    df = reviews(60, classes=("good", "bad", "meh"))
    prepared = prepare(df, "label", text_column="review")
    assert prepared.schema.features == ["review"]
    assert prepared.problem_type is ProblemType.MULTICLASS
    assert prepared.metric.name == "Accuracy"
    assert prepared.reasons["metric"] == "the default for text classification"
    with pytest.raises(ConfigError, match="did you mean 'review'"):
        prepare(df, "label", text_column="reveiw")
    with pytest.raises(DataError, match="holds numbers"):
        prepare(df, "label", text_column="stars")
    with pytest.raises(TargetError, match="needs class labels"):
        prepare(df.assign(score=df["review_id"] * 0.5), "score", text_column="review")


def test_python_api_refuses_before_writing_anything(tmp_path: Path) -> None:
    df = reviews(60)
    with pytest.raises(TabpilotError, match="holds numbers"):
        AutoML("label", problem_type="text-classification", text_column="stars",
               workspace=tmp_path / "ws", verbosity=0, time_limit=10).fit(df)
    assert not (tmp_path / "ws").exists()


def test_cli_without_a_text_column_is_one_line_exit_2(tmp_path: Path, monkeypatch,
                                                      capsys) -> None:
    from tabpilot.cli import main

    table = tmp_path / "reviews.csv"
    reviews(60).to_csv(table, index=False)
    monkeypatch.setattr(sys, "argv", [
        "tabpilot", "run", str(table), "--target", "label", "--problem-type",
        "text-classification", "--workspace", str(tmp_path / "ws")])
    with pytest.raises(SystemExit) as exited:
        main()  # the CLI's entry point, in this process (a subprocess costs seconds)
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "--text-column" in lines[0]
    assert not (tmp_path / "ws").exists()
