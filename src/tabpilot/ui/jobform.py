"""The new-job wizard's form, and the one CreateAutoMLJobV2 request it stands for.

The Studio starts a job exactly as boto3 would: `sagemaker_request` builds the V2
request and `api.app.call` validates it against botocore's model and runs
`api/jobs.py`'s CreateAutoMLJobV2 (row, worker process), so the "show as code" boto3
call is the request that ran, not a lookalike. The two options Autopilot has no field
for travel as the facade's `tabpilot:` tags (folds, max latency), which boto3 can send
too; per-column feature kinds become Autopilot's FeatureSpecification file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabpilot import names
from tabpilot.api.jobs import ALGORITHMS, DEFAULT_ROLE, MODES, PROBLEM_TYPES
from tabpilot.config import JobRequest
from tabpilot.errors import ConfigError
from tabpilot.ui.upload import UPLOADS

FAMILY_ALGORITHM: dict[str, str] = {}  # family -> the facade's first name for it
for _algo, _family in ALGORITHMS.items():
    FAMILY_ALGORITHM.setdefault(_family, _algo)
FAMILIES = list(FAMILY_ALGORITHM)  # lightgbm, xgboost, ... in the facade's order
MODE_NAMES = {mode: name for name, mode in MODES.items()}
PROBLEM_NAMES = {ptype: name for name, ptype in PROBLEM_TYPES.items()}
KINDS = ("numeric", "categorical", "text", "datetime")
EXCLUDE = "exclude"
FOLDS_TAG, LATENCY_TAG = "tabpilot:folds", "tabpilot:max-latency-ms"
OUTPUTS = "outputs"  # default S3OutputPath: <workspace>/outputs/<job>/
DEFAULT_TIME_LIMIT = 300


@dataclass
class JobForm:
    """What the wizard's form holds, as typed values; empty fields are None."""

    data: str = ""
    target: str = ""
    name: str = ""
    problem_type: str | None = None
    metric: str | None = None
    time_limit: int = DEFAULT_TIME_LIMIT
    mode: str = "auto"
    algorithms: list[str] = field(default_factory=list)
    folds: int | None = None
    validation_fraction: float | None = None
    max_latency_ms: float | None = None
    sample_weight: str | None = None
    kinds: dict[str, str] = field(default_factory=dict)  # column -> kind or "exclude"
    output: str | None = None

    @classmethod
    def parse(cls, pairs: list[tuple[str, str]]) -> JobForm:
        """From a form's or a query string's (name, value) pairs; ConfigError names the
        first bad field."""
        values: dict[str, str] = {}
        algorithms: list[str] = []
        kinds: dict[str, str] = {}
        for key, value in pairs:
            value = value.strip()
            if key == "algorithms":
                if value:
                    algorithms.append(value)
            elif key.startswith("kind:"):
                if value:
                    kinds[key[5:]] = value
            else:
                values[key] = value
        form = cls(data=values.get("data", ""), target=values.get("target", ""),
                   name=values.get("name", ""),
                   problem_type=values.get("problem_type") or None,
                   metric=values.get("metric") or None,
                   time_limit=_int(values, "time_limit", "time limit") or DEFAULT_TIME_LIMIT,
                   mode=values.get("mode") or "auto", algorithms=algorithms,
                   folds=_int(values, "folds", "folds"),
                   validation_fraction=_float(values, "validation_fraction",
                                              "validation fraction"),
                   max_latency_ms=_float(values, "max_latency_ms", "max latency"),
                   sample_weight=values.get("sample_weight") or None, kinds=kinds,
                   output=values.get("output") or None)
        form.check_shape()
        return form

    def check_shape(self) -> None:
        """What can be checked without the table: names, choices, numbers in range
        (JobRequest's own validators, so the lines match the CLI's)."""
        if self.mode not in MODE_NAMES:
            raise ConfigError(f"mode {self.mode!r}: use auto, ensembling or hpo")
        if self.problem_type is not None and self.problem_type not in PROBLEM_NAMES:
            raise ConfigError(f"problem type {self.problem_type!r}: use binary, multiclass or "
                              "regression, or leave it to be inferred")
        unknown = [a for a in self.algorithms if a not in FAMILY_ALGORITHM]
        if unknown:
            raise ConfigError(f"unknown algorithm {unknown[0]!r}; use any of: "
                              f"{', '.join(FAMILIES)}")
        for column, kind in self.kinds.items():
            if kind not in (*KINDS, EXCLUDE):
                raise ConfigError(f"column {column!r}: kind {kind!r} is not one of "
                                  f"{', '.join(KINDS)}, {EXCLUDE}")
        if self.name:
            names.check(self.name, "job")
        if self.folds is not None and self.folds > 1 and self.validation_fraction is not None:
            raise ConfigError("give folds or a validation fraction, not both: with k folds "
                              "every row is validated once")
        JobRequest.build(target=self.target or "target", name=self.name or None,
                         problem_type=self.problem_type, metric=self.metric, mode=self.mode,
                         time_limit=self.time_limit, n_folds=self.folds,
                         validation_fraction=self.validation_fraction,
                         max_latency_ms=self.max_latency_ms,
                         algorithms=self.algorithms or None)

    def check_columns(self, columns: list[str]) -> None:
        """The target, the weight and the per-column kinds against the table's columns."""
        from tabpilot.errors import TargetError

        if not self.target:
            raise TargetError("choose the target: the column to predict")
        known = set(columns)
        if self.target not in known:
            raise TargetError(f"the table has no column {self.target!r}; choose the target "
                              "from its columns")
        if self.sample_weight is not None and self.sample_weight not in known:
            raise ConfigError(f"the table has no column {self.sample_weight!r} for the sample "
                              "weight")
        if self.sample_weight == self.target:
            raise ConfigError("the sample weight column cannot be the target")
        unknown = [c for c in self.kinds if c not in known]
        if unknown:
            raise ConfigError(f"feature kind given for {unknown[0]!r}, which is not a column")
        features = [c for c in columns if c not in (self.target, self.sample_weight)
                    and self.kinds.get(c) != EXCLUDE]
        if not features:
            raise ConfigError("every column is excluded; keep at least one feature")

    def feature_spec(self, columns: list[str]) -> dict[str, Any] | None:
        """Autopilot's FeatureSpecification for the kinds chosen (None: all inferred)."""
        if not self.kinds:
            return None
        chosen = {c: k for c, k in self.kinds.items() if k != EXCLUDE and c != self.target}
        spec: dict[str, Any] = {"FeatureDataTypes": chosen}
        if any(k == EXCLUDE for k in self.kinds.values()):
            spec["FeatureAttributeNames"] = [
                c for c in columns if c not in (self.target, self.sample_weight)
                and self.kinds.get(c) != EXCLUDE]
        return spec

    def query(self) -> list[tuple[str, str]]:
        """The form as query pairs again (the code view's link, a form refilled)."""
        pairs = [(k, str(v)) for k, v in (
            ("data", self.data), ("target", self.target), ("name", self.name),
            ("problem_type", self.problem_type), ("metric", self.metric),
            ("time_limit", self.time_limit), ("mode", self.mode), ("folds", self.folds),
            ("validation_fraction", self.validation_fraction),
            ("max_latency_ms", self.max_latency_ms), ("sample_weight", self.sample_weight),
            ("output", self.output)) if v not in (None, "")]
        pairs += [("algorithms", a) for a in self.algorithms]
        pairs += [(f"kind:{c}", k) for c, k in self.kinds.items()]
        return pairs


def _int(values: dict[str, str], key: str, label: str) -> int | None:
    text = values.get(key, "")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{label} must be a whole number, got {text[:40]!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise ConfigError(f"{label} must be a whole number, got {text[:40]!r}")
    return int(number)


def _float(values: dict[str, str], key: str, label: str) -> float | None:
    text = values.get(key, "")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{label} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{label} must be a finite number, got {text[:40]!r}")
    return number


def feature_spec_path(workspace: Path, job: str) -> Path:
    """Where the Studio writes a job's FeatureSpecification (an allowed data root)."""
    return Path(workspace).resolve() / UPLOADS / f"{job}-features.json"


def default_output(workspace: Path) -> str:
    return str(Path(workspace).resolve() / OUTPUTS)


def sagemaker_request(form: JobForm, workspace: Path, spec_path: Path | None
                      ) -> dict[str, Any]:
    """CreateAutoMLJobV2's request for the form (`spec_path`: its FeatureSpecification)."""
    tabular: dict[str, Any] = {
        "TargetAttributeName": form.target,
        "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": int(form.time_limit)},
        "Mode": MODE_NAMES[form.mode],
    }
    if form.problem_type:
        tabular["ProblemType"] = PROBLEM_NAMES[form.problem_type]
    if form.sample_weight:
        tabular["SampleWeightAttributeName"] = form.sample_weight
    if spec_path is not None:
        tabular["FeatureSpecificationS3Uri"] = str(spec_path)
    if form.algorithms:
        tabular["CandidateGenerationConfig"] = {"AlgorithmsConfig": [
            {"AutoMLAlgorithms": [FAMILY_ALGORITHM[a] for a in form.algorithms]}]}
    request: dict[str, Any] = {
        "AutoMLJobName": form.name,
        "AutoMLJobInputDataConfig": [{"ChannelType": "training", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": form.data}}}],
        "OutputDataConfig": {"S3OutputPath": form.output or default_output(workspace)},
        "RoleArn": DEFAULT_ROLE,
        "AutoMLProblemTypeConfig": {"TabularJobConfig": tabular},
    }
    if form.metric:
        request["AutoMLJobObjective"] = {"MetricName": form.metric}
    if form.validation_fraction is not None:
        request["DataSplitConfig"] = {"ValidationFraction": form.validation_fraction}
    tags = []
    if form.folds is not None:
        tags.append({"Key": FOLDS_TAG, "Value": str(form.folds)})
    if form.max_latency_ms is not None:
        tags.append({"Key": LATENCY_TAG, "Value": f"{form.max_latency_ms:g}"})
    if tags:
        request["Tags"] = tags
    return request


def write_feature_spec(form: JobForm, columns: list[str], workspace: Path) -> Path | None:
    spec = form.feature_spec(columns)
    if spec is None:
        return None
    path = feature_spec_path(workspace, form.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1))
    return path
