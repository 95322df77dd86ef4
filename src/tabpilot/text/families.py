"""The candidates of a text job: linear models on the sparse TF-IDF n-grams, and LightGBM
on their SVD reduction.

Linear models are the strong, cheap baseline of text classification: hundreds of
thousands of sparse n-gram weights fit in seconds and each weight is readable. They
disagree usefully in an ensemble: logistic regression, a linear SVM (the widest margin,
its scores calibrated by Platt scaling on inner folds) and SGD (the cheap first
candidate) on word n-grams, and logistic regression on word and character n-grams (the
costliest; on the clothing reviews 0.3 points more accurate than on words alone). SGD minimises the log loss:
the modified Huber loss was as accurate on the clothing reviews but saturates most
probabilities at 0 or 1, which leaves an ensemble and the word explanations nothing to
weigh. Gradient boosting on
the SVD components captures interactions between topics that a linear model cannot; on
its own it is weaker, but it is the member that most often adds to the ensemble.

Each family declares its encoder style; `features/builder.py` turns the style into a
`TextFeaturizer` (text_words: sparse word 1-2-grams; text_tfidf: word + char_wb 3-5-grams;
text_svd: 128 SVD components of the word n-grams).
"""

from __future__ import annotations

from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.svm import LinearSVC

from tabpilot.errors import ConfigError
from tabpilot.models.base import FitData, ModelFamily
from tabpilot.models.lightgbm import LightGBMFamily
from tabpilot.tasks import ProblemType

CALIBRATION_FOLDS = 3


def _classification_only(data: FitData, label: str) -> None:
    if not data.problem_type.is_classification:
        raise ConfigError(f"{label} is a text classifier; regression on text is not supported")


class _SparseTextFamily(ModelFamily):
    style = "text_words"

    def _finish(self, model: Any, data: FitData) -> Any:
        model.n_classes_total_ = data.n_classes
        return model


class TextLogisticFamily(_SparseTextFamily):
    name = "text_logistic"
    label = "TfidfLogistic"

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 0.1, 100.0, log=True)}

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        return [dict(C=10.0), dict(C=3.0)]

    def fit(self, params: dict[str, Any], data: FitData) -> Any:
        _classification_only(data, self.label)
        model = LogisticRegression(C=params["C"], max_iter=1000, solver="lbfgs")
        model.fit(data.X, data.y, sample_weight=data.weights)
        return self._finish(model, data)


class TextSVMFamily(_SparseTextFamily):
    name = "text_svm"
    label = "TfidfLinearSVM"

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 0.01, 10.0, log=True)}

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        return [dict(C=0.3), dict(C=1.0)]

    def fit(self, params: dict[str, Any], data: FitData) -> Any:
        _classification_only(data, self.label)
        svm = LinearSVC(C=params["C"], max_iter=2000, random_state=data.seed)
        # the SVM's margins become probabilities by Platt scaling on inner folds (fewer
        # when a class has too few rows for three)
        smallest = int(min((data.y == k).sum() for k in set(data.y.tolist())))
        model = CalibratedClassifierCV(svm, method="sigmoid",
                                       cv=max(2, min(CALIBRATION_FOLDS, smallest)))
        model.fit(data.X, data.y, sample_weight=data.weights)
        return self._finish(model, data)


class TextSGDFamily(_SparseTextFamily):
    """The cheap first candidate: a few passes of SGD."""

    name = "text_sgd"
    label = "TfidfSGD"

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {"alpha": trial.suggest_float("alpha", 1e-7, 1e-3, log=True)}

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        return [dict(alpha=3e-5)]

    def fit(self, params: dict[str, Any], data: FitData) -> Any:
        _classification_only(data, self.label)
        model = SGDClassifier(loss="log_loss", alpha=params["alpha"], max_iter=50,
                              tol=1e-4, random_state=data.seed)
        model.fit(data.X, data.y, sample_weight=data.weights)
        return self._finish(model, data)


class TextCharLogisticFamily(TextLogisticFamily):
    """Logistic regression on word and character n-grams: robust to misspellings and
    inflections, and the costliest text trial (character n-grams take five times the word
    n-grams' featurisation), so a text job tries it last."""

    name = "text_char_logistic"
    label = "TfidfCharLogistic"
    style = "text_tfidf"

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        return [dict(C=10.0)]


class TextLightGBMFamily(LightGBMFamily):
    """LightGBM with its search space and early stopping, on the SVD components."""

    name = "text_lightgbm"
    label = "SvdLightGBM"
    style = "text_svd"

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        base = super().portfolio(problem_type)[0]
        # dense continuous components: smaller leaves and column sampling generalise better
        return [dict(base, num_leaves=15, feature_fraction=0.5, min_child_samples=10)]

    def fit(self, params: dict[str, Any], data: FitData) -> Any:
        _classification_only(data, self.label)
        return super().fit(params, data)
