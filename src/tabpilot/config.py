"""The job request: one pydantic model built by the CLI, the Python API and the HTTP API alike."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tabpilot import names
from tabpilot.errors import ConfigError
from tabpilot.metrics import check_metric_name
from tabpilot.tasks import TEXT_CLASSIFICATION, ProblemType, is_text_classification

DEFAULT_WORKSPACE = "./tabpilot-workspace"
MAX_TIME_LIMIT = 2**31 - 1  # seconds


def workspace_path(workspace: str | Path | None) -> Path:
    return Path(workspace or os.environ.get("TABPILOT_WORKSPACE") or DEFAULT_WORKSPACE)


class JobRequest(BaseModel):
    """What the user asked for. Resolved values (problem type, metric) live on the job."""

    model_config = ConfigDict(extra="forbid")

    target: str
    name: str | None = None
    problem_type: ProblemType | None = None
    metric: str | None = None
    # Autopilot's modes. ensembling: bagged models and a greedy ensemble; hpo: Bayesian
    # optimisation of single models on a holdout; auto: ensembling below AUTO_HPO_BYTES of data
    mode: Literal["auto", "ensembling", "hpo"] = "auto"
    time_limit: float = Field(300.0, description="seconds for the whole job")
    max_candidates: int | None = None
    per_trial_time_limit: float | None = None
    validation_fraction: float | None = None  # a holdout's share; None: data.split's rule
    n_folds: int | None = None
    validation_data: str | None = None
    sample_weight: str | None = None
    feature_types: str | None = None
    na_values: list[str] = Field(default_factory=list)
    algorithms: list[str] | None = None
    n_workers: int | None = None
    keep_candidates: int = 20
    ensemble: bool = True  # end with a greedy ensemble of the best candidates
    # a level-2 model on the candidates' out-of-fold predictions, a candidate of its own
    # (and in the greedy ensemble's pool); auto: in ensembling mode, without a latency bound
    stacking: Literal["auto", "on", "off"] = "auto"
    # Autopilot's GenerateCandidateDefinitionsOnly: analyse the data and write both
    # notebooks (the candidates the search would try first), without training any
    generate_candidates_only: bool = False
    # the best candidate is the best whose single-row latency (p50) is within this bound
    max_latency_ms: float | None = None
    # which candidate the job hands out (jobs/selection.py): balanced, the fastest within
    # one standard error of the most accurate, at most FAST_TOLERANCE (and FAST_SPEEDUP
    # times faster), or, when the most accurate misses selection.LATENCY_GOAL_MS, the most
    # accurate meeting it within FAST_TOLERANCE; accuracy, the most accurate. A
    # max_latency_ms bound overrides both: the most accurate within it
    selection: Literal["balanced", "accuracy"] = "balanced"
    # after the ensemble or the stack, a fast LightGBM student fitted to its predictions
    distill: bool = True
    seed: int = 0
    # text classification (TextClassificationJobConfig's ContentColumn): the one feature is
    # this column's text, the candidates are tabpilot.text's; problem type binary or
    # multiclass, inferred from the target unless given
    text_column: str | None = None

    @property
    def is_text(self) -> bool:
        return self.text_column is not None

    @model_validator(mode="before")
    @classmethod
    def _text_problem(cls, data: Any) -> Any:
        """problem_type "text-classification" needs a text column and leaves binary or
        multiclass to the target's labels."""
        if not isinstance(data, dict) or not is_text_classification(data.get("problem_type")):
            return data
        if not data.get("text_column"):
            raise ValueError(f"problem type {TEXT_CLASSIFICATION} needs the column that "
                             "holds the text; pass --text-column NAME (Python: "
                             "text_column=NAME)")
        return {k: v for k, v in data.items() if k != "problem_type"}

    @model_validator(mode="after")
    def _text_request(self) -> JobRequest:
        if self.text_column is None:
            text_only = [a for a in self.algorithms or [] if a.startswith("text_")]
            if text_only:
                raise ValueError(f"algorithm {text_only[0]!r} classifies text; pass "
                                 f"--problem-type {TEXT_CLASSIFICATION} --text-column NAME")
            return self
        if self.text_column == self.target:
            raise ValueError(f"the text column {self.text_column!r} is the target; the target "
                             "holds the labels, the text column the documents")
        if self.problem_type is ProblemType.REGRESSION:
            raise ValueError("text classification predicts labels, not numbers; leave "
                             "--problem-type regression out (or use binary / multiclass)")
        if self.feature_types is not None:
            raise ValueError("a text classification job reads only its text column; "
                             "leave --feature-types out")
        return self

    @field_validator("time_limit")
    @classmethod
    def _positive_time(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"time limit must be more than 0 seconds, got {v:g}; "
                             "pass e.g. --time-limit 120")
        # SageMaker's MaxAutoMLJobRuntimeInSeconds is a 32-bit integer; past it (or inf)
        # deadlines turn into inf - inf = nan inside the job
        if v > MAX_TIME_LIMIT:
            raise ValueError(f"time limit must be at most {MAX_TIME_LIMIT:,} seconds "
                             f"(68 years), got {v:g}; pass e.g. --time-limit 3600")
        return v

    @field_validator("max_latency_ms")
    @classmethod
    def _positive_latency(cls, v: float | None) -> float | None:
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise ValueError(f"max latency must be more than 0 ms, got {v:g}; "
                             "pass e.g. --max-latency-ms 10")
        return v

    @field_validator("max_candidates")
    @classmethod
    def _positive_candidates(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"max candidates must be at least 1, got {v}")
        return v

    @field_validator("validation_fraction")
    @classmethod
    def _fraction(cls, v: float | None) -> float | None:
        if v is not None and not 0.05 <= v <= 0.5:
            raise ValueError(f"validation fraction must be between 0.05 and 0.5, got {v:g}")
        return v

    @field_validator("n_folds")
    @classmethod
    def _folds(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= 20:
            raise ValueError(f"folds must be between 1 (holdout) and 20, got {v}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not names.is_valid(v, "job"):
            raise ValueError(names.problem(v, "job"))
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                check_metric_name(v)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("problem_type", mode="before")
    @classmethod
    def _ptype(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return ProblemType.parse(v)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("algorithms")
    @classmethod
    def _algos(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        from tabpilot.models import FAMILIES
        from tabpilot.text import TEXT_FAMILIES

        unknown = [a for a in v if a not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown algorithm {unknown[0]!r}; use any of: "
                             f"{', '.join([*FAMILIES, *TEXT_FAMILIES])}")
        return v

    @classmethod
    def build(cls, **kwargs: Any) -> JobRequest:
        """Validate, turning pydantic's report into one readable ConfigError line."""
        try:
            return cls(**{k: v for k, v in kwargs.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            where = ".".join(str(p) for p in err.get("loc", ()))
            raise ConfigError(msg if where in msg or err["type"] == "value_error"
                              else f"{where}: {msg}") from None
