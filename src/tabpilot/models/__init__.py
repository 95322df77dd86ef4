"""Algorithm families: one adapter per family, registered by name."""

from __future__ import annotations

from tabpilot.models.base import FitData, ModelFamily
from tabpilot.models.catboost import CatBoostFamily
from tabpilot.models.lightgbm import LightGBMFamily
from tabpilot.models.sklearn_models import (
    ExtraTreesFamily,
    LinearFamily,
    MLPFamily,
    RandomForestFamily,
)
from tabpilot.models.xgboost import XGBoostFamily

FAMILIES: dict[str, ModelFamily] = {
    f.name: f
    for f in [LightGBMFamily(), XGBoostFamily(), CatBoostFamily(), RandomForestFamily(),
              ExtraTreesFamily(), LinearFamily(), MLPFamily()]
}


def get_family(name: str) -> ModelFamily:
    return FAMILIES[name]


__all__ = ["FAMILIES", "FitData", "ModelFamily", "get_family"]
