""""Show as code": every Studio form as the CLI command, the Python call and the boto3
call that do the same, so the page teaches the API it sits on.

The boto3 call is printed from the very request the Studio sends the facade
(`jobform.sagemaker_request`), so what is shown is what runs; the CLI and Python forms
use `tabpilot run`'s and `AutoML`'s own argument names.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from fastapi import Request

from tabpilot.api.jobs import DEFAULT_ROLE
from tabpilot.ui.hosting import CAPTURE_FOLDER
from tabpilot.ui.jobform import JobForm

WIDTH = 88


def _call(prefix: str, kwargs: dict[str, Any], first: Any = None) -> str:
    """`prefix(first, key=value, ...)` with one argument per line, values as Python
    literals."""
    lines = [f"{prefix}("] + ([f"    {first!r},"] if first is not None else [])
    for key, value in kwargs.items():
        lines.append(f"    {key}={_literal(value, 4, len(key) + 1)},")
    lines.append(")")
    return "\n".join(lines)


def _literal(value: Any, indent: int, used: int = 0) -> str:
    """`value` as a Python literal, nested dicts and lists broken over indented lines
    where one line would pass WIDTH."""
    text = repr(value)
    if indent + used + len(text) <= WIDTH or not isinstance(value, dict | list) or not value:
        return text
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{k!r}: {_literal(v, indent + 4, len(repr(k)) + 2)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{_literal(v, indent + 4)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + " " * indent + "]"


def _client(endpoint_url: str, service: str = "sagemaker") -> str:
    return (f"{service.replace('-', '_')} = boto3.client({service!r}, "
            f"endpoint_url={endpoint_url!r},\n"
            f"{' ' * (len(service) + 17)}region_name=\"us-east-1\")  # with the server's "
            "credentials")


def job_code(form: JobForm, request: dict[str, Any], workspace: Path,
             endpoint_url: str) -> dict[str, str]:
    """{"cli", "python", "boto3"} for a wizard form; `request` is its CreateAutoMLJobV2
    request (the feature types file it names, when any, is written when the job starts)."""
    tabular = request["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    spec = tabular.get("FeatureSpecificationS3Uri")
    options: list[tuple[str, Any]] = [
        ("--target", form.target), ("--time-limit", form.time_limit),
        ("--name", form.name or None), ("--problem-type", form.problem_type),
        ("--metric", form.metric), ("--mode", None if form.mode == "auto" else form.mode),
        ("--algorithms", ",".join(form.algorithms) or None), ("--folds", form.folds),
        ("--validation-fraction", form.validation_fraction),
        ("--max-latency-ms", form.max_latency_ms), ("--sample-weight", form.sample_weight),
        ("--feature-types", spec), ("--workspace", str(workspace)),
    ]
    parts = ["tabpilot", "run", shlex.quote(form.data or "DATA")]
    for flag, value in options:
        if value is not None:
            parts.append(f"{flag} {shlex.quote(_plain(value))}")
    cli = " \\\n    ".join([" ".join(parts[:3]), *parts[3:]])

    kwargs: dict[str, Any] = {"time_limit": form.time_limit}
    for key, value in (("name", form.name or None), ("problem_type", form.problem_type),
                       ("metric", form.metric),
                       ("mode", None if form.mode == "auto" else form.mode),
                       ("algorithms", form.algorithms or None), ("folds", form.folds),
                       ("validation_fraction", form.validation_fraction),
                       ("max_latency_ms", form.max_latency_ms),
                       ("sample_weight", form.sample_weight), ("feature_types", spec),
                       ("workspace", str(workspace))):
        if value is not None:
            kwargs[key] = value
    python = "\n".join([
        "from tabpilot import AutoML", "",
        _call("automl = AutoML", kwargs, first=form.target or "TARGET"),
        f"automl.fit({form.data or 'DATA'!r})",
        "print(automl.leaderboard())"])

    boto3 = "\n".join([
        "import boto3", "", _client(endpoint_url), "",
        _call("sagemaker.create_auto_ml_job_v2", request),
        f"print(sagemaker.describe_auto_ml_job_v2(AutoMLJobName={request['AutoMLJobName']!r})"
        "[\"AutoMLJobStatus\"])"])
    return {"cli": cli, "python": python, "boto3": boto3}


def deploy_code(job: str, candidate: str, endpoint: str, capture_percent: float,
                model_dir: str, workspace: Path, endpoint_url: str) -> dict[str, str]:
    """{"cli", "python", "boto3"} for deploying a candidate as an endpoint."""
    cli = " \\\n    ".join([
        f"tabpilot deploy {shlex.quote(job)}", f"--candidate {shlex.quote(candidate)}",
        f"--endpoint {shlex.quote(endpoint or 'ENDPOINT')}",
        *([f"--capture-percent {capture_percent:g}"] if capture_percent else []),
        f"--workspace {shlex.quote(str(workspace))}"])
    python = "\n".join([
        "# tabpilot's Python API predicts in your process (no endpoint needed):",
        "from tabpilot import load_model", "",
        f"model = load_model({job!r}, {candidate!r}, workspace={str(workspace)!r})",
        "print(model.predict(rows))  # rows: a DataFrame with the training columns"])
    name = endpoint or "ENDPOINT"
    config: dict[str, Any] = {
        "EndpointConfigName": f"{name}-config",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": f"{name}-model",
                                "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]}
    if capture_percent:
        config["DataCaptureConfig"] = {
            "EnableCapture": True, "InitialSamplingPercentage": int(round(capture_percent)),
            "DestinationS3Uri": str(workspace / CAPTURE_FOLDER),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
    boto3 = "\n".join([
        "import boto3", "", _client(endpoint_url), "",
        _call("sagemaker.create_model", {
            "ModelName": f"{name}-model", "ExecutionRoleArn": DEFAULT_ROLE,
            "PrimaryContainer": {"ModelDataUrl": model_dir}}),
        _call("sagemaker.create_endpoint_config", config),
        _call("sagemaker.create_endpoint", {"EndpointName": name,
                                            "EndpointConfigName": f"{name}-config"})])
    return {"cli": cli, "python": python, "boto3": boto3}


def server_url(request: Request) -> str:
    """The server's own address as boto3 reaches it (a reverse proxy's prefix included)."""
    root = request.scope.get("root_path", "") or ""
    return f"{request.url.scheme}://{request.url.netloc}{root}/"


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
