"""An execution: a window of data checked against a baseline, violations in the shape of
Model Monitor's constraint_violations.json.

Checks, per feature of the baseline's constraints.json:

- missing_column_check / extra_column_check: a baseline feature absent from the window, a
  window column the baseline does not know.
- data_type_check: the share of present values that are not of the baseline's type
  (text in a number column, 2.5 in an Integral one) is above `datatype_check_threshold`.
- completeness_check: the share of present values is below the baseline's completeness.
  With "Robust" the window may fall short by sampling noise: up to Z standard errors of a
  binomial share at the window's size (Z = the one-sided normal quantile at ALPHA / k).
- categorical_values_check: the share of a String feature's values outside its domain is
  above `domain_content_threshold`.
- baseline_drift_check: the L-infinity distance between the baseline's distribution and
  the window's is above `comparison_threshold` (numbers) or
  `categorical_comparison_threshold` (strings). For numbers it is the two-sample
  Kolmogorov-Smirnov distance between the baseline's kept sample and the window's values,
  max |F_baseline(x) - F_window(x)| over every observed x, exactly
  `scipy.stats.ks_2samp(...).statistic`; for strings the largest difference between the
  two frequency vectors (categories unseen on one side count 0 there), for String
  features with a domain only: one of many distinct values (an id, free text) has no
  frequency worth comparing.

Why "Robust": a fixed threshold ignores how noisy a distance is. Between two samples of
one distribution, of n and m values, the KS distance exceeds
c(a) * sqrt((n + m) / (n * m)), c(a) = sqrt(-ln(a / 2) / 2), with probability a at most
(asymptotically); at 200 rows against a 10,000-value sample that bound is 0.097 for
a = 0.05, so a 0.1 threshold alone fires on roughly one feature in twenty of perfectly
in-distribution windows, and a window of twenty features almost always. "Robust" flags a
feature only when its distance is above the threshold AND above that critical value, at
a = ALPHA / k for the k features compared (Bonferroni), so the chance that an
in-distribution window raises any drift violation stays below ALPHA whatever its size or
width. For strings the same role is played by the chi-squared test of homogeneity of the
two count vectors at ALPHA / k. At large windows the critical value falls below the
threshold and "Robust" is "Simple": a real shift of more than the threshold is always
reported once the window is big enough to show it. "Simple" is Model Monitor's rule, the
threshold alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.monitor import COMPLETED, WITH_VIOLATIONS
from tabpilot.monitor.baseline import Baseline
from tabpilot.monitor.statistics import (
    NUMERIC,
    STRING,
    dataset_statistics,
    missing,
    numbers,
    type_mismatches,
)

ALPHA = 0.05  # chance that an in-distribution window raises a drift violation (Robust)
# every constraint_check_type an execution may report
CHECKS = ("data_type_check", "completeness_check", "baseline_drift_check",
          "missing_column_check", "extra_column_check", "categorical_values_check")


@dataclass
class Execution:
    status: str
    violations: list[dict[str, str]]
    statistics: dict[str, Any]  # the window's statistics.json
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)  # per feature: distance...

    def report(self) -> dict[str, Any]:
        return {"violations": self.violations}


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """max |F_a(x) - F_b(x)| over every observed x: the two-sample KS statistic."""
    a, b = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    both = np.concatenate([a, b])
    fa = np.searchsorted(a, both, side="right") / len(a)
    fb = np.searchsorted(b, both, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def ks_critical(n: int, m: int, alpha: float) -> float:
    """The KS distance two samples of one distribution exceed with probability `alpha`."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def categorical_drift(baseline_counts: dict[str, float], window: pd.Series
                      ) -> tuple[float, float]:
    """(L-infinity distance between the frequency vectors, chi-squared p-value)."""
    from scipy.stats import chi2_contingency

    seen = window.astype(str).value_counts()
    base_total = sum(baseline_counts.values())
    values = sorted(set(baseline_counts) | set(seen.index))
    base = np.array([baseline_counts.get(v, 0.0) for v in values])
    win = np.array([float(seen.get(v, 0)) for v in values])
    distance = float(np.max(np.abs(base / max(base_total, 1) - win / max(win.sum(), 1))))
    table = np.vstack([base, win])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or base.sum() == 0 or win.sum() == 0:
        return distance, 1.0 if distance == 0 else 0.0
    return distance, float(chi2_contingency(table)[1])


def _violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def evaluate(baseline: Baseline, window: pd.DataFrame, method: str | None = None
             ) -> Execution:
    """Check `window` against `baseline`; `method` overrides the constraints' method."""
    config = baseline.constraints.get("monitoring_config", {})
    dist = config.get("distribution_constraints", {})
    method = method or dist.get("comparison_method", "Robust")
    expected = {str(f["name"]): f for f in baseline.constraints["features"]}
    stats = {str(f["name"]): f for f in baseline.statistics["features"]}
    if any(not isinstance(c, str) for c in window.columns):
        window = window.set_axis([str(c) for c in window.columns], axis=1, copy=False)
    window = _numbers_read_once(window, expected)
    common = [name for name in expected if name in window.columns]
    violations = [_violation(name, "missing_column_check",
                             f"There are missing columns in current dataset. Number of "
                             f"columns in current dataset: {len(window.columns)}, Number of "
                             f"columns in baseline constraints: {len(expected)}")
                  for name in expected if name not in window.columns]
    violations += [_violation(name, "extra_column_check",
                              f"There are extra columns in current dataset. Number of columns "
                              f"in current dataset: {len(window.columns)}, Number of columns "
                              f"in baseline constraints: {len(expected)}")
                   for name in window.columns if name not in expected]
    enabled = config.get("evaluate_constraints", "Enabled") == "Enabled"
    compare = dist.get("perform_comparison", "Enabled") == "Enabled"
    alpha = ALPHA / max(1, len(common))
    drift: dict[str, dict[str, Any]] = {}
    for name in common if enabled else []:
        constraint, column = expected[name], window[name]
        violations += _feature_checks(name, constraint, column, config, method, alpha)
        if compare:
            found = _drift(baseline, name, constraint, stats.get(name, {}), column, dist,
                           method, alpha)
            if found is not None:
                drift[name] = found
                if found["drift"]:
                    violations.append(_violation(
                        name, "baseline_drift_check",
                        f"Baseline drift distance: {found['distance']:.6g} exceeds threshold: "
                        f"{found['threshold']:g}" + (
                            f" and the critical distance at this window's size: "
                            f"{found['critical']:.6g}" if found.get("critical") else "")))
    types = {name: expected[name]["inferred_type"] for name in common}
    statistics = dataset_statistics(window, types)
    return Execution(WITH_VIOLATIONS if violations else COMPLETED, violations, statistics,
                     drift)


def _numbers_read_once(window: pd.DataFrame, expected: dict[str, dict[str, Any]]
                       ) -> pd.DataFrame:
    """The window with each numeric feature sent as text (captured CSV) read as floats
    once, where every present value is a number: each check after reads floats instead of
    hashing the column's strings again (a million-row window: seconds saved per check).
    The results are the same; a column holding any text that is not a number stays text,
    for the type check to count."""
    found: dict[str, np.ndarray] = {}
    for name, constraint in expected.items():
        if constraint.get("inferred_type") not in NUMERIC or name not in window.columns \
                or window[name].dtype != object:
            continue
        codes, uniques = pd.factorize(window[name], use_na_sentinel=True)
        if any(not isinstance(u, str | int | float) or isinstance(u, bool) for u in uniques):
            continue  # JSON values of other kinds: read the careful way
        text = pd.Series(uniques, dtype=object).map(
            lambda v: v.strip() if isinstance(v, str) else v)
        parsed = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        blank = text.map(lambda v: isinstance(v, str) and v == "").to_numpy(dtype=bool)
        if (np.isnan(parsed) & ~blank).any():
            continue
        found[name] = np.append(parsed, np.nan)[codes]
    if not found:
        return window
    window = window.copy(deep=False)  # the caller's frame stays as it was, nothing copied
    for name, values in found.items():
        window[name] = values
    return window


def _feature_checks(name: str, constraint: dict[str, Any], column: pd.Series,
                    config: dict[str, Any], method: str, alpha: float) -> list[dict[str, str]]:
    found = []
    kind = constraint.get("inferred_type")
    present, wrong = type_mismatches(column, kind)
    type_threshold = float(config.get("datatype_check_threshold", 0.1))
    if present and wrong / present > type_threshold:
        found.append(_violation(
            name, "data_type_check",
            f"Data type match requirement is not met. Expected data type: {kind}, Expected "
            f"match: {100 * (1 - type_threshold):.4g}%. Observed: Only "
            f"{100 * (1 - wrong / present):.4g}% of data is {kind}."))
    expected = float(constraint.get("completeness", 0.0))
    items = len(column)
    observed = present / items if items else 1.0
    allowance = 0.0
    if method == "Robust" and items:
        z = NormalDist().inv_cdf(1 - alpha)
        allowance = z * math.sqrt(expected * (1 - expected) / items)
    if observed < expected - allowance - 1e-12:
        found.append(_violation(
            name, "completeness_check",
            f"Data completeness requirement is not met. Expected completeness: "
            f"{100 * expected:.4g}%. Observed: Only {100 * observed:.4g}% of data is complete."))
    domain = (constraint.get("string_constraints") or {}).get("domains")
    if kind == STRING and domain is not None and present:
        values = column[~missing(column)].astype(str)
        unknown = float((~values.isin(set(map(str, domain)))).mean())
        domain_threshold = float(config.get("domain_content_threshold", 0.1))
        if unknown > domain_threshold:
            found.append(_violation(
                name, "categorical_values_check",
                f"Data content requirement is not met. Expected: at most "
                f"{100 * domain_threshold:.4g}% of values outside the baseline's domain. "
                f"Observed: {100 * unknown:.4g}% of values are outside it."))
    return found


def _drift(baseline: Baseline, name: str, constraint: dict[str, Any], stats: dict[str, Any],
           column: pd.Series, dist: dict[str, Any], method: str, alpha: float
           ) -> dict[str, Any] | None:
    kind = constraint.get("inferred_type")
    if kind in NUMERIC:
        reference = baseline.values(name)
        current = numbers(column).dropna().to_numpy()
        if len(reference) == 0 or len(current) == 0:
            return None
        threshold = float(dist.get("comparison_threshold", 0.1))
        distance = ks_distance(reference, current)
        critical = ks_critical(len(reference), len(current), alpha)
        significant = distance > critical
    elif kind == STRING and stats.get("string_statistics") \
            and constraint.get("string_constraints"):
        buckets = stats["string_statistics"]["distribution"]["categorical"]["buckets"]
        counts = {str(b["value"]): float(b["count"]) for b in buckets}
        other = stats["string_statistics"]["common"]["num_present"] - sum(counts.values())
        current = column[~missing(column)].astype(str)
        if other > 0:  # values beyond the kept buckets count as one "other" category
            counts["\0other"] = other
            current = current.where(current.isin(set(counts)), "\0other")
        if current.empty:
            return None
        threshold = float(dist.get("categorical_comparison_threshold", 0.1))
        distance, p_value = categorical_drift(counts, current)
        critical, significant = None, p_value < alpha
    else:
        return None
    drifted = distance > threshold and (method != "Robust" or significant)
    return {"distance": distance, "threshold": threshold, "method": method,
            "critical": critical if method == "Robust" else None, "drift": bool(drifted)}
