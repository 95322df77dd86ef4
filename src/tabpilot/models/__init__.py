"""Algorithm families: one adapter per family, registered by name.

The registry imports a family's module (and so its library: CatBoost, XGBoost, ...) the
first time the family is looked up, so that loading a LightGBM model for serving does not
pay for importing every other library.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from tabpilot.models.base import FitData, ModelFamily

# name -> (module, class), in the order the families are listed to users
_WHERE = {
    "lightgbm": ("tabpilot.models.lightgbm", "LightGBMFamily"),
    "xgboost": ("tabpilot.models.xgboost", "XGBoostFamily"),
    "catboost": ("tabpilot.models.catboost", "CatBoostFamily"),
    "random_forest": ("tabpilot.models.sklearn_models", "RandomForestFamily"),
    "extra_trees": ("tabpilot.models.sklearn_models", "ExtraTreesFamily"),
    "linear": ("tabpilot.models.sklearn_models", "LinearFamily"),
    "mlp": ("tabpilot.models.sklearn_models", "MLPFamily"),
}
# text classification's (tabpilot/text), for text jobs only: looked up by name like the
# others, but not listed when the registry is iterated (what a tabular job may try)
_TEXT_WHERE = {
    "text_logistic": ("tabpilot.text.families", "TextLogisticFamily"),
    "text_svm": ("tabpilot.text.families", "TextSVMFamily"),
    "text_sgd": ("tabpilot.text.families", "TextSGDFamily"),
    "text_lightgbm": ("tabpilot.text.families", "TextLightGBMFamily"),
    "text_char_logistic": ("tabpilot.text.families", "TextCharLogisticFamily"),
}


class _Registry(Mapping[str, ModelFamily]):
    """name -> family adapter, each created on first use. Iterating lists the tabular
    families; a text family is found by name (`in`, `[]`) all the same."""

    def __init__(self) -> None:
        self._made: dict[str, ModelFamily] = {}

    def __getitem__(self, name: str) -> ModelFamily:
        if name not in self._made:
            module, cls = {**_WHERE, **_TEXT_WHERE}[name]  # KeyError for unknown names
            self._made[name] = getattr(importlib.import_module(module), cls)()
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)

    def __contains__(self, name: object) -> bool:
        return name in _WHERE or name in _TEXT_WHERE


FAMILIES: Mapping[str, ModelFamily] = _Registry()


def get_family(name: str) -> ModelFamily:
    return FAMILIES[name]


__all__ = ["FAMILIES", "FitData", "ModelFamily", "get_family"]
