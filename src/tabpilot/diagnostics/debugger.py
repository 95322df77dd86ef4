"""A training job's DebugRuleConfigurations, evaluated with rules.py on what the job
recorded: its train/validation metric per round, its training labels' class counts and
(XGBoost) the booster's feature importance.

SageMaker runs each rule in a container of the `sagemaker-debugger-rules` image on the
tensors its hook saves; tabpilot saves no tensors and evaluates the same built-in rules
(`RuleParameters.rule_to_invoke`) on the curves instead, once the training ends. The
rule parameters that map onto rules.py's thresholds are honoured:

    LossNotDecreasing            num_steps, diff_percent, mode (TRAIN or EVAL: which curve)
    Overfit                      ratio_threshold (the relative train/validation gap)
    Overtraining                 patience_validation (rounds after the validation best)
    ClassImbalance               threshold_imbalance
    FeatureImportanceOverweight  threshold, nfeatures

the others (start_step, patience, collection names, tensor regexes...) are accepted and
do not change anything. A rule rules.py does not have (VanishingGradient, a profiler
rule...) reports `Error`, with StatusDetails saying why; so does a rule its input cannot
decide (Overfit without a validation channel). A custom rule (another evaluator image)
would run the caller's code and is refused when the job is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabpilot.diagnostics import rules

RULES_REPOSITORY = "sagemaker-debugger-rules"
HIGHER_IS_BETTER = ("auc", "aucpr", "map", "ndcg", "accuracy", "balanced_accuracy", "f1",
                    "precision", "recall", "r2", "interval-regression-accuracy")
PARAMETERS = {  # rule -> {Debugger's parameter: (rules.py's keyword, scale)}
    "LossNotDecreasing": {"num_steps": ("rounds", None), "diff_percent": ("min_decrease", 0.01)},
    "Overfit": {"ratio_threshold": ("gap", 1.0)},
    "Overtraining": {"patience_validation": ("rounds", None)},
    "ClassImbalance": {"threshold_imbalance": ("ratio", 1.0)},
    "FeatureImportanceOverweight": {"threshold": ("share", 1.0), "nfeatures": ("top", None)},
}


class RuleConfigError(ValueError):
    """A rule configuration tabpilot will not evaluate (the API turns it into one line)."""


def rule_name(config: dict[str, Any]) -> str:
    return (config.get("RuleParameters") or {}).get("rule_to_invoke") \
        or config["RuleConfigurationName"]


def check(configs: Sequence[dict[str, Any]]) -> None:
    """Refuse custom rules and unreadable thresholds before the job starts."""
    for config in configs:
        image = str(config.get("RuleEvaluatorImage", ""))
        repository = image.split("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
        if repository != RULES_REPOSITORY:
            raise RuleConfigError(
                f"DebugRuleConfigurations {config['RuleConfigurationName']}: image {image!r} "
                f"is not Debugger's built-in rules image ({RULES_REPOSITORY}); a custom rule "
                "runs your code and tabpilot evaluates the built-in rules only")
        _keywords(config)


def _keywords(config: dict[str, Any]) -> dict[str, Any]:
    name, given = rule_name(config), config.get("RuleParameters") or {}
    out: dict[str, Any] = {}
    for key, (keyword, scale) in PARAMETERS.get(name, {}).items():
        if key not in given:
            continue
        try:
            value = float(given[key])
        except ValueError:
            raise RuleConfigError(f"DebugRuleConfigurations {config['RuleConfigurationName']}: "
                                  f"RuleParameters.{key} must be a number, got {given[key]!r}"
                                  ) from None
        out[keyword] = int(value) if scale is None else value * scale
    return out


def learning_curves(curves: dict[str, list[float]]) -> dict[str, Any] | None:
    """A built-in job's `{"train:auc": [...], "validation:auc": [...]}` as rules.py's
    curves: the last metric recorded on both channels (XGBoost's early-stopping metric),
    else the last one on train."""
    metrics = list(dict.fromkeys(k.split(":", 1)[1] for k in curves if ":" in k))
    both = [m for m in metrics if curves.get(f"train:{m}") and curves.get(f"validation:{m}")]
    chosen = both[-1] if both else next((m for m in reversed(metrics)
                                         if curves.get(f"train:{m}")), None)
    if chosen is None:
        return None
    base = chosen.split("@", 1)[0]
    return {"metric": chosen, "higher_is_better": base in HIGHER_IS_BETTER,
            "train": list(curves.get(f"train:{chosen}") or []),
            "validation": list(curves.get(f"validation:{chosen}") or [])}


def evaluate(configs: Sequence[dict[str, Any]], curves: dict[str, list[float]],
             class_counts: dict[str, int] | None = None,
             importance: dict[str, float] | None = None) -> list[dict[str, str]]:
    """One {"RuleConfigurationName", "RuleEvaluationStatus", "StatusDetails"} per config."""
    learned = learning_curves(curves)
    out = []
    for config in configs:
        name = rule_name(config)
        found = _one(name, _keywords(config), config, learned, class_counts, importance)
        status = found or {"RuleEvaluationStatus": "Error", "StatusDetails": _why_not(
            name, learned, class_counts, importance)}
        out.append({**status, "RuleConfigurationName": config["RuleConfigurationName"]})
    return out


def _one(name: str, keywords: dict[str, Any], config: dict[str, Any],
         learned: dict[str, Any] | None, class_counts: dict[str, int] | None,
         importance: dict[str, float] | None) -> dict[str, str] | None:
    if name == "ClassImbalance":
        if not class_counts:
            return None
        return rules.class_imbalance(list(class_counts.values()), list(class_counts),
                                     **keywords)
    if name == "FeatureImportanceOverweight":
        if not importance:
            return None
        return rules.feature_importance_overweight(
            [{"feature": k, "value": v} for k, v in importance.items()], **keywords)
    if learned is None or name not in ("LossNotDecreasing", "Overfit", "Overtraining"):
        return None
    if name == "LossNotDecreasing":
        mode = str((config.get("RuleParameters") or {}).get("mode", "TRAIN")).upper()
        if mode != "EVAL":
            return rules.loss_not_decreasing(learned, **keywords)
        found = rules.loss_not_decreasing({**learned, "train": learned["validation"]},
                                          **keywords)  # the rule on the validation curve
        if found is not None:
            found["StatusDetails"] = found["StatusDetails"].replace("training", "validation", 1)
        return found
    if name == "Overfit":
        return rules.overfit(learned, **keywords)
    return rules.overtraining(learned, **keywords)


def _why_not(name: str, learned: dict[str, Any] | None, class_counts: dict[str, int] | None,
             importance: dict[str, float] | None) -> str:
    if name not in rules.RULE_NAMES:
        return (f"tabpilot evaluates {', '.join(rules.RULE_NAMES)} on the training curves; "
                f"{name} needs the tensors Debugger's hook saves, which are not recorded here")
    if name == "ClassImbalance":
        return "no class labels: the job is not a classification with a labelled train channel"
    if name == "FeatureImportanceOverweight":
        return ("no feature importance: recorded for XGBoost's tree boosters with more "
                f"than {rules.IMPORTANCE_TOP} features")
    if learned is None:
        return "no training curve was recorded (the algorithm reports final metrics only)"
    return (f"{name} needs a validation curve of {learned['metric']} with two or more rounds; "
            "give a validation channel")
