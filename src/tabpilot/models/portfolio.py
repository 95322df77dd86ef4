"""The zero-shot portfolio: each family's ordered configurations, learned offline.

`bench/portfolio.py` evaluates the boosting families' (LightGBM, XGBoost, CatBoost)
hand-written configurations and random draws from their search spaces on many tables, and
keeps, per family and task kind, the greedy sequence of configurations that best covers the
tables (the one closest to each table's best on average first, then the one that adds most
where the first fell short...), where it beats the hand-written list on tables left out
and does not lose to it end to end (bench.automl). It writes `portfolio.json` beside this
file: today XGBoost's regression list; the learned LightGBM classification list lost on
multiclass tables end to end and is not shipped. The other families (linear, forests, MLP)
are not learned and keep their hand-written `portfolio()`; so does a family or task kind missing
from the file, or whose learned configurations no longer match its search space.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

from tabpilot.models.base import ModelFamily
from tabpilot.tasks import ProblemType

PORTFOLIO_FILE = Path(__file__).with_name("portfolio.json")
log = logging.getLogger("tabpilot.models")


def task_kind(problem_type: ProblemType) -> str:
    return "classification" if problem_type.is_classification else "regression"


@functools.cache
def _learned(path: Path = PORTFOLIO_FILE) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()).get("families", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring the learned portfolio %s: %s", path, exc)
        return {}


def portfolio(family: ModelFamily, problem_type: ProblemType) -> list[dict[str, Any]]:
    """The learned configurations when they fit the family's parameters, else its own."""
    own = family.portfolio(problem_type)
    learned = _learned().get(family.name, {}).get(task_kind(problem_type))
    if not learned:
        return own
    keys = set(own[0])
    if any(set(config) != keys for config in learned):
        log.warning("the learned portfolio of %s does not match its parameters; using the "
                    "hand-written one (regenerate with python -m bench.portfolio)", family.name)
        return own
    return [dict(config) for config in learned]
