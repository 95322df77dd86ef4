"""A tuning job's WarmStartConfig: its parent tuning jobs checked at creation as SageMaker
checks them, their completed training jobs handed to the new study, and the best training
job over the whole family (OverallBestTrainingJob).

    IdenticalDataAndAlgorithm  the same image (repository and version), the same channels
                               at the same locations; the ranges may change
    TransferLearning           the same algorithm; data, version and ranges may change

Both: at most 5 parents, each ended Completed or Stopped; the same objective metric; the
same hyperparameter names, static and tuned together (one may move from static to tuned
or back); a hyperparameter tuned by a parent and by the new job keeps its range type.
A parent's training job whose values lie outside the new job's ranges is not told.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tabpilot.api.context import ApiContext
from tabpilot.errors import ConfigError
from tabpilot.training.images import BuiltinImage, parse

TYPES = ("IdenticalDataAndAlgorithm", "TransferLearning")
MAX_PARENTS = 5
ENDED = ("Completed", "Stopped")


def _parents(ctx: ApiContext, p: dict[str, Any], missing_ok: bool = False) -> list[Any]:
    from tabpilot.api import tuning  # the same resource kind; tuning imports this module

    config = p["WarmStartConfig"]
    names = [x["HyperParameterTuningJobName"] for x in config["ParentHyperParameterTuningJobs"]]
    rows = []
    for name in names:
        row = ctx.store.find_resource(tuning.KIND, name)
        if row is None and missing_ok:  # deleted since: the family is what is left
            continue
        if row is None:
            raise ConfigError(f"WarmStartConfig: parent tuning job {name} does not exist")
        rows.append(row)
    return rows


def check(ctx: ApiContext, p: dict[str, Any], image: BuiltinImage) -> None:
    """One line for a WarmStartConfig SageMaker would refuse; nothing without one."""
    from tabpilot.api import tuning

    config = p.get("WarmStartConfig")
    if not config:
        return
    kind = config.get("WarmStartType")
    if kind not in TYPES:
        raise ConfigError(f"WarmStartConfig.WarmStartType is one of {', '.join(TYPES)}; got "
                          f"{kind!r}")
    given = config.get("ParentHyperParameterTuningJobs") or []
    if not 1 <= len(given) <= MAX_PARENTS:
        raise ConfigError(f"WarmStartConfig names 1 to {MAX_PARENTS} parent tuning jobs; got "
                          f"{len(given)}")
    mine = _hyperparameters(p, image.algorithm)
    metric = tuning._objective(p)["MetricName"]
    for row in _parents(ctx, p):
        if row.status not in ENDED:
            raise ConfigError(f"WarmStartConfig: parent tuning job {row.name} is {row.status}; "
                              "a parent must have ended Completed or Stopped")
        parent = row.spec["request"]
        if tuning._objective(parent)["MetricName"] != metric:
            raise ConfigError(f"WarmStartConfig: parent {row.name} tunes "
                              f"{tuning._objective(parent)['MetricName']}, this job {metric}; "
                              "the objective metric must be the same")
        theirs_image = parse(tuning._definition(parent)["AlgorithmSpecification"]
                             ["TrainingImage"])
        if theirs_image is None or theirs_image.algorithm != image.algorithm:
            raise ConfigError(f"WarmStartConfig: parent {row.name} trained "
                              f"{row.spec['algorithm']}, this job {image.algorithm}; a warm "
                              "start keeps the algorithm")
        if kind == "IdenticalDataAndAlgorithm":
            _same_data_and_version(row.name, parent, p, theirs_image, image)
        _same_hyperparameters(row.name, _hyperparameters(parent, row.spec["algorithm"]), mine)


def _hyperparameters(p: dict[str, Any], algorithm: str) -> dict[str, str]:
    """Every hyperparameter a tuning job sets: name -> "static" or its range's kind."""
    from tabpilot.api import tuning

    out = {k: "static" for k in tuning._definition(p).get("StaticHyperParameters", {})}
    out.update({r.name: r.kind for r in tuning._ranges(p, algorithm)})
    return out


def _same_data_and_version(parent_name: str, parent: dict[str, Any], p: dict[str, Any],
                           theirs: BuiltinImage, mine: BuiltinImage) -> None:
    from tabpilot.api import tuning

    if theirs.tag != mine.tag:
        raise ConfigError(f"WarmStartConfig IdenticalDataAndAlgorithm: parent {parent_name} "
                          f"ran version {theirs.tag}, this job {mine.tag}; use "
                          "TransferLearning for another version")

    def channels(request: dict[str, Any]) -> dict[str, str]:
        return {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"].rstrip("/")
                for c in tuning._definition(request).get("InputDataConfig", [])}

    if channels(parent) != channels(p):
        raise ConfigError(f"WarmStartConfig IdenticalDataAndAlgorithm: parent {parent_name} "
                          f"read {channels(parent)}, this job {channels(p)}; use "
                          "TransferLearning for other data")


def _same_hyperparameters(parent_name: str, theirs: dict[str, str],
                          mine: dict[str, str]) -> None:
    extra = sorted(set(mine) ^ set(theirs))
    if extra:
        side = "this job" if extra[0] in mine else f"parent {parent_name}"
        raise ConfigError(f"WarmStartConfig: {extra[0]} is set by {side} only; static and "
                          "tuned hyperparameters together must be the same as the parent's")
    for name, kind in mine.items():
        if "static" not in (kind, theirs[name]) and kind != theirs[name]:
            raise ConfigError(f"WarmStartConfig: {name} is a {theirs[name]} range in parent "
                              f"{parent_name} and a {kind} range here; its type must stay")


def parent_results(ctx: ApiContext, p: dict[str, Any]) -> list[tuple[dict[str, str], float]]:
    """The parents' Completed training jobs: every hyperparameter they set (static and
    tuned, as strings) and their objective."""
    from tabpilot.api import training, tuning

    metric = tuning._objective(p)["MetricName"]
    out = []
    for row in _parents(ctx, p, missing_ok=True):
        static = tuning._definition(row.spec["request"]).get("StaticHyperParameters", {})
        for child in row.spec.get("children", []):
            job = ctx.store.find_resource(training.KIND, child["name"])
            value = None if job is None or job.status != "Completed" else \
                (job.spec.get("metrics") or {}).get(metric)
            if value is not None:
                out.append(({**static, **child["tuned"]}, float(value)))
    return out


def overall_best(ctx: ApiContext, p: dict[str, Any], best: dict | None,
                 best_of: Callable[[Any], dict | None]) -> dict | None:
    """OverallBestTrainingJob: for an IdenticalDataAndAlgorithm warm start, the best of
    this job's and its parents' (and theirs, recursively); SageMaker gives it for no other
    tuning job. `best_of(row)` is a tuning job row's BestTrainingJob."""
    from tabpilot.api import tuning

    config = p.get("WarmStartConfig") or {}
    if config.get("WarmStartType") != "IdenticalDataAndAlgorithm":
        return None
    found = [best] if best else []
    for row in _parents(ctx, p, missing_ok=True):
        found.append(overall_best(ctx, row.spec["request"], best_of(row), best_of)
                     or best_of(row))
    found = [f for f in found if f]
    if not found:
        return None
    sign = 1 if tuning._objective(p)["Type"] == "Maximize" else -1
    return max(found, key=lambda s: sign * s["FinalHyperParameterTuningJobObjectiveMetric"]
               ["Value"])
