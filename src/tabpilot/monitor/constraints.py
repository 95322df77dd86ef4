"""Suggested constraints in the schema of Model Monitor's constraints.json.

Each feature gets its inferred type, its completeness (the share of present values in the
baseline), `is_non_negative` for numbers and, for strings of small cardinality, the domain
of values seen. `monitoring_config` carries Model Monitor's documented defaults (type and
domain thresholds 0.1, drift thresholds 0.1) with one change: the comparison method is
"Robust" by default, which `checks.py` makes sample-size aware so that small windows do
not raise false alarms. Editing the file (a threshold, a domain, "Simple") changes what
the next execution checks.
"""

from __future__ import annotations

from typing import Any

from tabpilot.errors import ConfigError
from tabpilot.monitor.statistics import NUMERIC, STRING

METHODS = ("Robust", "Simple")
CATEGORICAL_METHODS = ("LInfinity",)
MAX_DOMAIN = 50  # a String feature with more distinct values gets no domain
THRESHOLD = 0.1


def monitoring_config(method: str = "Robust", threshold: float = THRESHOLD,
                      categorical_threshold: float = THRESHOLD) -> dict[str, Any]:
    if method not in METHODS:
        raise ConfigError(f"unknown comparison method {method!r}; use Robust or Simple")
    for value in (threshold, categorical_threshold):
        if not 0 < value <= 1:
            raise ConfigError(f"a comparison threshold is a distance in (0, 1], got {value}")
    return {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
            "datatype_check_threshold": 0.1, "domain_content_threshold": 0.1,
            "distribution_constraints": {
                "perform_comparison": "Enabled", "comparison_threshold": threshold,
                "comparison_method": method,
                "categorical_comparison_threshold": categorical_threshold,
                "categorical_drift_method": "LInfinity"}}


def suggest(statistics: dict[str, Any], **config: Any) -> dict[str, Any]:
    """constraints.json for a baseline's statistics.json."""
    items = max(1, int(statistics["dataset"]["item_count"]))
    features = []
    for f in statistics["features"]:
        numeric = f.get("numerical_statistics")
        strings = f.get("string_statistics")
        common = (numeric or strings or {}).get("common", {"num_present": 0})
        entry: dict[str, Any] = {"name": f["name"], "inferred_type": f["inferred_type"],
                                 "completeness": common["num_present"] / items}
        if f["inferred_type"] in NUMERIC and numeric:
            entry["num_constraints"] = {"is_non_negative": bool(numeric["min"] >= 0)}
        if f["inferred_type"] == STRING and strings \
                and strings["distinct_count"] <= MAX_DOMAIN:
            entry["string_constraints"] = {"domains": [
                b["value"] for b in strings["distribution"]["categorical"]["buckets"]]}
        features.append(entry)
    return {"version": 0.0, "features": features, "monitoring_config": monitoring_config(**config)}
