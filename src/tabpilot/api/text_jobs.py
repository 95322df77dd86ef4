"""CreateAutoMLJobV2 with a TextClassificationJobConfig: a text classification job.

Unlike forecasting, a text job is a tabular job underneath (tabpilot/text): the config
becomes the same `JobRequest` the CLI builds for `--problem-type text-classification
--text-column COL` (ContentColumn -> text_column, TargetLabelColumn -> target), and the
job runs, is stored, described and listed through `api/jobs.py` like any other. Here are
only the two translations: request in, and the Describe view back in the shape the
request had (TextClassificationJobConfig, AutoMLProblemTypeConfigName TextClassification).

Autopilot's text classification has one objective, Accuracy; another metric is refused
with one line rather than silently replaced.
"""

from __future__ import annotations

from typing import Any

from tabpilot.api.shapes import validation_error
from tabpilot.tasks import TEXT_CLASSIFICATION

CONFIG = "TextClassificationJobConfig"
CONFIG_NAME = "TextClassification"
METRICS = {"Accuracy"}


def is_text(p: dict[str, Any]) -> bool:
    return CONFIG in (p.get("AutoMLProblemTypeConfig") or {})


def as_tabular(p: dict[str, Any]) -> dict[str, Any]:
    """The text config as the TabularJobConfig fields `api/jobs.job_request` reads."""
    config = p["AutoMLProblemTypeConfig"][CONFIG]
    metric = (p.get("AutoMLJobObjective") or {}).get("MetricName")
    if metric is not None and metric not in METRICS:
        raise validation_error(f"{metric} is no objective for text classification jobs; "
                               f"use {', '.join(sorted(METRICS))} (or leave it out)")
    return {"TargetAttributeName": config["TargetLabelColumn"],
            "CompletionCriteria": config.get("CompletionCriteria") or {}}


def request_fields(p: dict[str, Any]) -> dict[str, Any]:
    """The JobRequest fields that make the job a text job."""
    config = p["AutoMLProblemTypeConfig"][CONFIG]
    return {"problem_type": TEXT_CLASSIFICATION, "text_column": config["ContentColumn"]}


def describe(view: dict[str, Any], request: dict[str, Any] | None,
             job_request: dict[str, Any]) -> dict[str, Any]:
    """DescribeAutoMLJobV2's view of a text job: its config as TextClassificationJobConfig
    (the CompletionCriteria asked for, else the job's own), the problem type it resolved
    to (binary or multiclass underneath) in tabpilot's `ResolvedProblemType`."""
    tabular = view["AutoMLProblemTypeConfig"].get("TabularJobConfig", {})
    asked = ((request or {}).get("AutoMLProblemTypeConfig") or {}).get(CONFIG) or {}
    criteria = asked.get("CompletionCriteria") or {
        k: v for k, v in (tabular.get("CompletionCriteria") or {}).items()
        if k == "MaxAutoMLJobRuntimeInSeconds" and v is not None}
    config = {"ContentColumn": job_request.get("text_column"),
              "TargetLabelColumn": tabular.get("TargetAttributeName")}
    if criteria:
        config["CompletionCriteria"] = criteria
    view["AutoMLProblemTypeConfig"] = {CONFIG: config}
    view["AutoMLProblemTypeConfigName"] = CONFIG_NAME
    resolved = view.get("ResolvedAttributes", {})
    # botocore's AutoMLProblemTypeResolvedAttributes has no member for text jobs
    found = resolved.pop("AutoMLProblemTypeResolvedAttributes", {})
    view["ResolvedProblemType"] = found.get("TabularResolvedAttributes", {}).get("ProblemType")
    return view
