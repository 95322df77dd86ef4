"""Python source for one candidate: its preprocessing and its algorithm as plain code.

The code uses tabpilot's own encoder (the one preprocessing step of every pipeline) and
the algorithm's own scikit-learn-style class with its hyperparameters spelled out, and
trains one model per fold of the job's split, as the trial did. Given the number of
trees (or epochs) each fold's trial kept, the models are the trial's own, so the
validation score is the leaderboard's; without them (a candidate not trained yet) the
code trains with early stopping as the search would.

The code runs after the setup that `definitions.py` writes, which defines: `X`, `y`,
`weights`, `split`, `valid_rows`, `new_predictions()`, `probabilities(model, X_part)`,
`check(...)` and the `predictions` dict.

`standalone.py` builds the exported script's fit functions from the same per-family
pieces (`FAMILY_CODE`: the class, its every parameter, the fit call), so the notebook
and the export cannot disagree on an algorithm.
"""

from __future__ import annotations

import inspect
import pprint
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.execution.distill import FOLD_STUDENTS
from tabpilot.features import build_encoder
from tabpilot.models import FAMILIES
from tabpilot.models.base import LOSS
from tabpilot.models.catboost import MAX_ROUNDS as CATBOOST_ROUNDS
from tabpilot.models.catboost import full_run_settings
from tabpilot.models.lightgbm import MAX_ROUNDS as LIGHTGBM_ROUNDS
from tabpilot.models.lightgbm import regression_loss as lightgbm_loss
from tabpilot.models.sklearn_models import MAX_EPOCHS
from tabpilot.models.xgboost import MAX_ROUNDS as XGBOOST_ROUNDS
from tabpilot.models.xgboost import training_loss as xgboost_loss
from tabpilot.tasks import ProblemType

WIDTH = 96
EXACT = 1e-6
# families whose fit is deterministic given its seed and inputs reproduce to EXACT;
# the others get a stated tolerance
# (a stack refits its linear model on its members' rerun predictions, rounded to float32)
TOLERANCE = {"mlp": 1e-4, "stack": 1e-4}
IMPORTS = {
    "lightgbm": "import lightgbm", "xgboost": "import xgboost", "catboost": "import catboost",
    "random_forest": "import sklearn.ensemble", "extra_trees": "import sklearn.ensemble",
    "linear": "import sklearn.linear_model", "mlp": "import sklearn.neural_network",
    # text classification's (tabpilot/text/families.py)
    "text_logistic": "import sklearn.linear_model", "text_sgd": "import sklearn.linear_model",
    "text_char_logistic": "import sklearn.linear_model",
    "text_svm": "import sklearn.calibration\nimport sklearn.svm",
    "text_lightgbm": "import lightgbm",
}
ROUNDS_KEY = {"lightgbm": "best_iteration", "text_lightgbm": "best_iteration",
              "xgboost": "best_iteration",
              "catboost": "best_iteration", "random_forest": "n_estimators",
              "extra_trees": "n_estimators", "mlp": "epochs"}


class Code(str):
    """Source text that is rendered as is (a variable or an expression), not as a literal."""

    def __repr__(self) -> str:
        return str(self)


@dataclass
class Pipeline:
    """What the code of one candidate needs to know."""

    name: str
    family: str
    params: dict[str, Any]
    problem_type: ProblemType
    n_classes: int
    schema: Schema
    seed: int = 0
    n_threads: int = 1
    weighted: bool = False
    fits: list[dict[str, Any]] | None = None  # per fold, what the trial's fit recorded
    train_rows: int | None = None  # trained on a seeded subsample of this many rows per fold
    objective: float | None = None  # the leaderboard's value
    members: dict[str, float] = field(default_factory=dict)  # ensembles only
    stacker: dict[str, Any] = field(default_factory=dict)  # stacks only: their level-2 model

    @property
    def rounds(self) -> list[int] | None:
        """Per fold: trees, iterations or epochs the trial kept; None when unknown."""
        key = ROUNDS_KEY.get(self.family)
        if key is None or not self.fits or any(key not in f for f in self.fits):
            return None
        return [int(f[key]) for f in self.fits]

    @property
    def reproduces(self) -> bool:
        return self.objective is not None and (self.family in ("linear", "ensemble", "stack")
                                               or self.rounds is not None)

    @property
    def classification(self) -> bool:
        return self.problem_type.is_classification


def literal(value: Any, indent: int = 0) -> str:
    text = pprint.pformat(value, width=max(40, WIDTH - indent), sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def call(callee: str, kwargs: dict[str, Any], indent: int) -> str:
    """`callee(` then one `name=value,` per line, then `)`, for code at `indent`."""
    pad = " " * (indent + 4)
    lines = [f"{pad}{k}={literal(v, indent + 5 + len(k))}," for k, v in kwargs.items()]
    return f"{callee}(\n" + "\n".join(lines) + "\n" + " " * indent + ")"


def every_param(estimator: Any, first: dict[str, Any]) -> dict[str, Any]:
    """The estimator's full parameter list: the ones set first, then its defaults."""
    params = {k: v for k, v in estimator.get_params(deep=False).items() if v != "deprecated"}
    return {**{k: params[k] for k in first if k in params},
            **{k: v for k, v in params.items() if k not in first}}


# -- preprocessing --------------------------------------------------------------------------
def encoder_code(p: Pipeline) -> str:
    style = FAMILIES[p.family].style
    encoder = build_encoder(p.schema, style)
    if style.startswith("text_"):  # a text job's: tabpilot.text.featurizer.TextFeaturizer
        return "\n".join([
            f"# preprocessing ({style} style): TF-IDF word and character n-grams of the text",
            "# column, fitted on every training row of the split, as the job fitted it",
            "encoder = " + call("TextFeaturizer", encoder.get_params(deep=False), 0),
            "encoder.fit(X.iloc[split.training_rows()])",
            "X_enc = encoder.transform(X)"])
    params = every_param(encoder, dict.fromkeys(
        ["numeric", "categorical", "datetime", "text", "categorical_encoding", "scale"]))
    lines = [
        f"# preprocessing ({style} style): one TabularEncoder, fitted on every training row",
        "# of the split, as the job fitted it (text columns become TF-IDF columns)",
        "encoder = " + call("TabularEncoder", params, 0),
        "encoder.fit(X.iloc[split.training_rows()])",
        "X_enc = encoder.transform(X)",
    ]
    if p.train_rows:
        lines[-2:-1] = [
            f"# screened on a seeded subsample of at most {p.train_rows} rows (a large table)",
            f"encoder.fit(X.iloc[subsample(split.training_rows(), {p.train_rows}, {p.seed})])"]
    if style == "native" and p.schema.columns(ColumnKind.CATEGORICAL):
        lines.append("categorical = encoder.categorical_indices_  # columns holding category codes")
    return "\n".join(lines)


# -- the algorithm, per family --------------------------------------------------------------
def _rounds_comment(p: Pipeline, what: str) -> str:
    cut = [i + 1 for i, f in enumerate(p.fits or []) if f.get("stopped_by_deadline")]
    note = f"; the time limit cut fold {', '.join(map(str, cut))} short" if cut else ""
    return f"# {what} each fold's trial kept{note}"


def _weights_arg(p: Pipeline) -> str:
    return ", sample_weight=weights[train]" if p.weighted else ""


def _lightgbm(p: Pipeline) -> tuple[str, dict[str, Any], str, list[str]]:
    import lightgbm

    names = {"feature_fraction": "colsample_bytree", "bagging_fraction": "subsample",
             "lambda_l2": "reg_lambda"}
    params = {names.get(k, k): v for k, v in p.params.items() if k not in ("n_estimators", LOSS)}
    rounds = Code("n_rounds") if p.rounds else LIGHTGBM_ROUNDS
    loss = {"objective": p.problem_type.value} if p.classification else \
        lightgbm_loss(p.params)
    first = {**loss, "n_estimators": rounds, **params,
             "subsample_freq": 1 if params.get("subsample", 1.0) < 1 else 0,
             "random_state": p.seed, "n_jobs": p.n_threads, "max_cat_to_onehot": 8,
             "deterministic": True, "force_row_wise": True, "verbosity": -1}
    cls = lightgbm.LGBMClassifier if p.classification else lightgbm.LGBMRegressor
    fit = f"model.fit(X_enc[train], y[train]{_weights_arg(p)}"
    if p.schema.columns(ColumnKind.CATEGORICAL):
        fit += ", categorical_feature=categorical"
    if not p.rounds:
        patience = int(np.clip(5 / p.params["learning_rate"], 30, 300))
        # LightGBM 4.7 takes eval_X / eval_y and deprecates eval_set
        new_api = "eval_X" in inspect.signature(cls.fit).parameters
        fit += (",\n              eval_X=X_enc[valid], eval_y=y[valid]," if new_api else
                ",\n              eval_set=[(X_enc[valid], y[valid])],")
        fit += (f"\n              callbacks=[lightgbm.early_stopping({patience}, "
                "verbose=False)]")
    return f"lightgbm.{cls.__name__}", every_param(cls(**first), first), fit + ")", []


def _xgboost(p: Pipeline) -> tuple[str, dict[str, Any], str, list[str]]:
    kwargs: dict[str, Any] = {
        **xgboost_loss(p.problem_type, p.params),
        "n_estimators": Code("n_rounds") if p.rounds else XGBOOST_ROUNDS,
        **{k: v for k, v in p.params.items() if k not in ("n_estimators", LOSS)},
        "tree_method": "hist", "max_cat_to_onehot": 8, "enable_categorical": True,
        "feature_types": Code("feature_types"), "random_state": p.seed,
        "n_jobs": p.n_threads, "verbosity": 0}
    before = ["# XGBoost reads the category-code columns as categorical ('c'), the rest as "
              "numbers ('q')"]
    if p.schema.columns(ColumnKind.CATEGORICAL):
        before.append("feature_types = ['c' if j in categorical else 'q' "
                      "for j in range(X_enc.shape[1])]")
    else:
        before = ["feature_types = None  # no categorical columns"]
    fit = f"model.fit(X_enc[train], y[train]{_weights_arg(p)}"
    if not p.rounds:
        kwargs["early_stopping_rounds"] = int(np.clip(5 / p.params["learning_rate"], 30, 300))
        fit += ", eval_set=[(X_enc[valid], y[valid])], verbose=False"
    cls = "XGBClassifier" if p.classification else "XGBRegressor"
    return f"xgboost.{cls}", kwargs, fit + ")", before


CATBOOST_POOL = '''def catboost_pool(X_part, label=None, weight=None):
    """CatBoost reads category codes as text ('-1' where missing), after the numbers."""
    X_part = X_part.toarray() if hasattr(X_part, "toarray") else np.asarray(X_part)
    numeric = [j for j in range(X_part.shape[1]) if j not in categorical]
    numbers = np.ascontiguousarray(X_part[:, numeric], dtype=np.float32)
    if not categorical:
        return catboost.Pool(catboost.FeaturesData(num_feature_data=numbers), label=label,
                             weight=weight)
    codes = np.nan_to_num(X_part[:, categorical], nan=-1).astype(np.int64).astype(str)
    features = catboost.FeaturesData(num_feature_data=numbers,
                                     cat_feature_data=codes.astype(object))
    return catboost.Pool(features, label=label, weight=weight)
'''


def _catboost(p: Pipeline) -> tuple[str, dict[str, Any], str, list[str]]:
    loss = {ProblemType.BINARY: "Logloss", ProblemType.MULTICLASS: "MultiClass",
            ProblemType.REGRESSION: "RMSE"}[p.problem_type]
    kwargs: dict[str, Any] = {
        "iterations": Code("n_rounds") if p.rounds else CATBOOST_ROUNDS,
        **{k: v for k, v in p.params.items() if k != "n_estimators"},
        "loss_function": loss,
        **({"class_names": list(range(p.n_classes))} if p.classification else {}),
        **full_run_settings(loss), "thread_count": p.n_threads, "random_seed": p.seed,
        "verbose": False, "allow_writing_files": False}
    before = [CATBOOST_POOL.rstrip(), ""]
    if not p.schema.columns(ColumnKind.CATEGORICAL):
        before.insert(0, "categorical = []  # no categorical columns")
    weight = ", weights[train]" if p.weighted else ""
    fit = f"model.fit(catboost_pool(X_enc[train], y[train]{weight})"
    if not p.rounds:
        fit += (",\n              eval_set=catboost_pool(X_enc[valid], y[valid]),"
                "\n              early_stopping_rounds=100, use_best_model=True")
    cls = "CatBoostClassifier" if p.classification else "CatBoostRegressor"
    return f"catboost.{cls}", kwargs, fit + ")", before


def _forest(p: Pipeline) -> tuple[str, dict[str, Any], str, list[str]]:
    import sklearn.ensemble

    kind = "RandomForest" if p.family == "random_forest" else "ExtraTrees"
    cls = getattr(sklearn.ensemble, kind + ("Classifier" if p.classification else "Regressor"))
    first = {"n_estimators": Code("n_trees") if p.rounds else p.params["n_estimators"],
             "max_features": p.params["max_features"],
             "min_samples_leaf": p.params["min_samples_leaf"], "n_jobs": p.n_threads,
             "random_state": p.seed}
    fit = f"model.fit(X_enc[train], y[train]{_weights_arg(p)})"
    return f"sklearn.ensemble.{cls.__name__}", every_param(cls(**first), first), fit, []


def _linear(p: Pipeline) -> tuple[str, dict[str, Any], str, list[str]]:
    from sklearn.linear_model import LogisticRegression, Ridge

    if p.classification:
        first: dict[str, Any] = {"C": p.params["C"], "max_iter": 500, "solver": "lbfgs"}
        est: Any = LogisticRegression(**first)
    else:
        first = {"alpha": 1.0 / p.params["C"]}  # tabpilot searches C; Ridge takes 1 / C
        est = Ridge(**first)
    fit = f"model.fit(X_enc[train], y[train]{_weights_arg(p)})"
    return f"sklearn.linear_model.{type(est).__name__}", every_param(est, first), fit, []


def _mlp(p: Pipeline) -> tuple[str, dict[str, Any], str, list[str]]:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    first = {"hidden_layer_sizes": (p.params["width"],) * p.params["depth"],
             "alpha": p.params["alpha"], "learning_rate_init": p.params["learning_rate_init"],
             "early_stopping": True, "n_iter_no_change": 10, "max_iter": 1,
             "warm_start": True, "random_state": p.seed,
             "batch_size": Code("min(256, max(32, len(train) // 20))")}
    cls = MLPClassifier if p.classification else MLPRegressor
    target = "y[train]" if p.classification else "(y[train] - mean) / std"
    lines = ["with warnings.catch_warnings():",
             "    warnings.simplefilter('ignore', ConvergenceWarning)"]
    if p.rounds:
        lines += ["    for _ in range(n_epochs):  # one pass over the data per call",
                  f"        model.fit(X_enc[train], {target})"]
    else:
        lines += [f"    for _ in range({MAX_EPOCHS}):  # one pass per call, until early stopping",
                  f"        model.fit(X_enc[train], {target})",
                  "        if model._no_improvement_count > model.n_iter_no_change:",
                  "            break"]
    if not p.classification:
        lines.insert(0, "mean, std = float(np.mean(y[train])), float(np.std(y[train])) or 1.0"
                        "  # trained on a standardised target")
    params = every_param(cls(**first), first)
    return f"sklearn.neural_network.{cls.__name__}", params, "\n".join(lines), []


def _text_linear(p: Pipeline) -> tuple[str, dict[str, Any], str, list[str]]:
    """Text classification's linear candidates, as tabpilot/text/families.py fits them."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    fit = f"model.fit(X_enc[train], y[train]{_weights_arg(p)})"
    if p.family in ("text_logistic", "text_char_logistic"):
        first: dict[str, Any] = {"C": p.params["C"], "max_iter": 1000, "solver": "lbfgs"}
        return ("sklearn.linear_model.LogisticRegression",
                every_param(LogisticRegression(**first), first), fit, [])
    if p.family == "text_sgd":
        first = {"loss": "log_loss", "alpha": p.params["alpha"], "max_iter": 50,
                 "tol": 1e-4, "random_state": p.seed}
        return ("sklearn.linear_model.SGDClassifier",
                every_param(SGDClassifier(**first), first), fit, [])
    svm = Code(f"sklearn.svm.LinearSVC(C={p.params['C']!r}, max_iter=2000, "
               f"random_state={p.seed})")
    cv = Code("max(2, min(3, int(np.bincount(y[train]).min())))")
    return ("sklearn.calibration.CalibratedClassifierCV",
            {"estimator": svm, "method": "sigmoid", "cv": cv}, fit, [])


FAMILY_CODE = {"lightgbm": _lightgbm, "xgboost": _xgboost, "catboost": _catboost,
               "random_forest": _forest, "extra_trees": _forest, "linear": _linear,
               "mlp": _mlp, "text_logistic": _text_linear, "text_svm": _text_linear,
               "text_sgd": _text_linear, "text_char_logistic": _text_linear,
               "text_lightgbm": _lightgbm}
ROUNDS_NAME = {"random_forest": ("n_trees", "trees"), "extra_trees": ("n_trees", "trees"),
               "mlp": ("n_epochs", "training passes (epochs)")}


def algorithm_code(p: Pipeline) -> str:
    """The fold loop: a model per fold, its out-of-fold predictions, the score."""
    callee, kwargs, fit, before = FAMILY_CODE[p.family](p)
    rows = "catboost_pool(X_enc[valid])" if p.family == "catboost" else "X_enc[valid]"
    var, what = ROUNDS_NAME.get(p.family, ("n_rounds", "boosting rounds"))
    lines = list(before)
    sub = bool(p.train_rows)  # each fold trains on its own seeded subsample, as the trial did
    if p.rounds:
        lines.append(f"{var}_per_fold = {p.rounds}  {_rounds_comment(p, what)}")
        header = (f"for fold, ((train, valid), {var}) in enumerate(zip(split.folds, "
                  f"{var}_per_fold)):" if sub else
                  f"for (train, valid), {var} in zip(split.folds, {var}_per_fold):")
    else:
        header = ("for fold, (train, valid) in enumerate(split.folds):" if sub else
                  "for train, valid in split.folds:")
    lines += ["pred = new_predictions()", header]
    if sub:
        lines.append(f"    train = subsample(train, {p.train_rows}, {p.seed} + fold)")
    lines.append("    model = " + call(callee, kwargs, 4))
    lines += ["    " + line if line else "" for line in fit.split("\n")]
    if p.classification:
        lines.append(f"    pred[valid] = probabilities(model, {rows})")
    elif p.family == "mlp":
        lines.append(f"    pred[valid] = model.predict({rows}) * std + mean")
    else:
        lines.append(f"    pred[valid] = model.predict({rows})")
    lines += ["predictions[" + repr(p.name) + "] = pred", check_call(p)]
    return "\n".join(lines)


def ensemble_code(p: Pipeline) -> str:
    lines = [
        "# greedy ensemble selection (Caruana) chose these members and weights on the",
        "# validation predictions; the job kept each member's predictions as float32",
        f"members = {literal(p.members, 10)}",
        "pred = new_predictions()",
        "pred[valid_rows] = sum(weight * predictions[member][valid_rows].astype(np.float32)"
        ".astype(np.float64)",
        "                       for member, weight in members.items())",
        "predictions[" + repr(p.name) + "] = pred",
        check_call(p, sample_weights=False),
    ]
    return "\n".join(lines)


def stack_code(p: Pipeline) -> str:
    """The stack: its level-2 model refitted on the members' predictions, fold by fold."""
    folds = p.stacker["stack_folds"]
    where = "the job's folds" if folds["kind"] == "job" else \
        f"{folds['n_folds']} folds of the holdout rows"
    kwargs = ", ".join(f"{k}={v!r}" for k, v in p.stacker["stacker_params"].items())
    lines = [
        "# stacking: a level-2 model learns from the members' validation predictions (the job",
        "# kept them as float32); its own are out-of-fold too, over " + where + ":",
        "# fold k's come from a stacker fitted on the other folds' rows only",
        f"members = {literal(list(p.stacker['members']), 10)}",
        "features = stack_features([predictions[m][valid_rows].astype(np.float32)"
        ".astype(np.float64)",
        "                           for m in members], prepared.problem_type)  "
        f"# {p.stacker['stack_features']}",
        "truth = y[valid_rows]",
        "stacked = new_predictions()[valid_rows]",
        "for train, valid in stacking_folds(split, truth, prepared.problem_type.is_classification,"
        f" {folds.get('seed', p.seed)}):",
        "    model = sklearn.pipeline.make_pipeline(",
        "        sklearn.preprocessing.StandardScaler(),",
        f"        sklearn.linear_model.{p.stacker['stacker']}({kwargs}),",
        "    )",
        "    model.fit(features[train], truth[train])",
        "    stacked[valid] = stacker_predict(model, features[valid], len(classes or []))",
        "pred = new_predictions()",
        "pred[valid_rows] = stacked",
        "predictions[" + repr(p.name) + "] = pred",
        check_call(p, sample_weights=False),
    ]
    return "\n".join(lines)


def distill_code(spec: dict[str, Any]) -> str:
    """A distilled candidate: the job's distillation rerun on the setup's data and split."""
    params = {k: v for k, v in spec["params"].items()
              if k not in ("distilled_from", "min_synthetic")}
    teacher = spec["params"]["distilled_from"]
    minimum = int(spec["params"].get("min_synthetic") or 0)
    fits = spec.get("fits") or []
    # a fold's student cut short by the job's deadline is regrown to the trees it kept
    cut = [f.get("best_iteration") if f.get("stopped_by_deadline") else None
           for f in fits if "distilled_on" not in f]
    rounds = f', "fold_rounds": {cut!r}' if any(r is not None for r in cut) else ""
    # a job that kept its fold students (no time for one on every row) is rerun so
    if any(f.get("distilled_on") == FOLD_STUDENTS for f in fits):
        rounds += ', "final": False'
    # each fit's synthetic rows, when its teacher labelled fewer than were drawn in its time
    if any(f.get("synthetic_cut") for f in fits):
        counts = [f["synthetic_rows"] for f in fits if "synthetic_rows" in f]
        rounds += f', "synthetic": {counts!r}'
    return "\n".join([
        "import tempfile",
        "import time",
        "",
        "from tabpilot.execution.base import TrialContext, TrialTask",
        "from tabpilot.execution.distill import run_distillation",
        "from tabpilot.execution.trial import VALIDATION_PREDICTIONS",
        "",
        f'teacher = JOB_DIR / "candidates" / {teacher!r} / "model"',
        "context = TrialContext(X=X, y=y, split=split, schema=prepared.schema,",
        "                       problem_type=prepared.problem_type, metric=metric,",
        "                       classes=classes, job_name=JOB_DIR.name,",
        '                       target=request["target"], weights=weights,',
        f'                       n_threads={int(spec.get("n_threads") or 1)}, '
        'seed=request["seed"])',
        'out = Path(tempfile.mkdtemp()) / "model"',
        "no_deadline = time.time() + 365 * 86400",
        f"task = TrialTask({spec['name']!r}, \"lightgbm\", {literal(params, 17)},",
        "                 str(out), no_deadline, no_deadline, distill_of={",
        f'                     "teacher": {teacher!r}, "teacher_dir": str(teacher),',
        f'                     "min_synthetic": {minimum}{rounds}}})',
        "student = run_distillation(context, task)",
        "pred = new_predictions()",
        "pred[valid_rows] = np.load(out.parent / VALIDATION_PREDICTIONS).astype(np.float64)",
        "predictions[" + repr(spec["name"]) + "] = pred",
        f"check({spec['name']!r}, pred, leaderboard={spec['objective']!r}, tolerance=1e-6)",
    ])


def check_call(p: Pipeline, sample_weights: bool = True) -> str:
    args = [repr(p.name), "pred"]
    if p.objective is not None and p.reproduces:
        args += [f"leaderboard={p.objective!r}",
                 f"tolerance={TOLERANCE.get(p.family, EXACT)!r}"]
    if p.weighted and not sample_weights:
        args.append("sample_weights=False  # the job scores ensembles and stacks without weights")
    return f"check({', '.join(args)})"


def imports(families: set[str]) -> list[str]:
    lines = sorted({IMPORTS[f] for f in families if f in IMPORTS})
    if any(f.startswith("text_") for f in families):
        lines.append("from tabpilot.text.featurizer import TextFeaturizer")
    if "stack" in families:
        lines = sorted({*lines, "import sklearn.linear_model", "import sklearn.pipeline",
                        "import sklearn.preprocessing"})
        lines.append("from tabpilot.ensemble.stacking import stack_features, stacker_predict, "
                     "stacking_folds")
    if "mlp" in families:
        lines.append("from sklearn.exceptions import ConvergenceWarning")
    return lines


