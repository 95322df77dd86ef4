"""SageMaker's built-in XGBoost (`sagemaker-xgboost:1.7-1` and its kin), run with the
installed xgboost: the container's hyperparameter names, `train`/`validation` channels,
`eval_metric` reported per channel as `train:<metric>` / `validation:<metric>`, and the
model written as the container writes it, one file `xgboost-model` (XGBoost's own UBJSON
format: `xgboost.Booster().load_model("xgboost-model")` opens it, no pickle involved).

A SageMaker-trained `model.tar.gz` loads the same way: containers 1.3-1 and later save
`xgboost-model` with `Booster.save_model`; the 0.90/1.0/1.2 containers pickled the Booster,
and such a file is refused here rather than unpickled.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.errors import ConfigError, ModelIntegrityError
from tabpilot.training.base import Control, Predictor
from tabpilot.training.channels import Channel
from tabpilot.training.hyperparameters import Param

NAME = "xgboost"
LABELLED = True
CHANNELS = ("train", "validation")
MODEL_FILE = "xgboost-model"
INF = None
OBJECTIVES = (
    "reg:squarederror", "reg:linear", "reg:squaredlogerror", "reg:logistic",
    "reg:pseudohubererror", "reg:absoluteerror", "reg:quantileerror", "reg:gamma",
    "reg:tweedie", "binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson",
    "survival:cox", "survival:aft", "multi:softmax", "multi:softprob", "rank:pairwise",
    "rank:ndcg", "rank:map")
EVAL_METRIC = re.compile(
    r"^(rmse|rmsle|mae|mape|mphe|logloss|error(@[0-9.]+)?|merror|mlogloss|auc|aucpr|"
    r"ndcg(@\d+)?-?|map(@\d+)?-?|poisson-nloglik|gamma-nloglik|cox-nloglik|gamma-deviance|"
    r"tweedie-nloglik(@[0-9.]+)?|aft-nloglik|interval-regression-accuracy|"
    r"f1|accuracy|balanced_accuracy|precision|recall|r2|mse)$")
# metrics the container computes itself, beside xgboost's own
SKLEARN_METRICS = ("f1", "accuracy", "balanced_accuracy", "precision", "recall", "r2", "mse")
UNIT = Param("float", low=0, high=1)
HYPERPARAMETERS: dict[str, Param] = {
    "num_round": Param("int", low=1, required=True),
    "num_class": Param("int", low=2),
    "objective": Param("choice", "reg:squarederror", choices=OBJECTIVES),
    "eval_metric": Param("str"),
    "booster": Param("choice", "gbtree", choices=("gbtree", "gblinear", "dart")),
    "eta": Param("float", 0.3, 0, 1),
    "gamma": Param("float", 0.0, 0),
    "max_depth": Param("int", 6, 0),
    "min_child_weight": Param("float", 1.0, 0),
    "max_delta_step": Param("float", 0.0, 0),
    "subsample": Param("float", 1.0, 0, 1, low_open=True),
    "colsample_bytree": Param("float", 1.0, 0, 1, low_open=True),
    "colsample_bylevel": Param("float", 1.0, 0, 1, low_open=True),
    "colsample_bynode": Param("float", 1.0, 0, 1, low_open=True),
    "lambda": Param("float", 1.0, 0),
    "alpha": Param("float", 0.0, 0),
    "tree_method": Param("choice", "auto", choices=("auto", "exact", "approx", "hist",
                                                    "gpu_hist")),
    "sketch_eps": Param("float", 0.03, 0, 1, low_open=True),
    "scale_pos_weight": Param("float", 1.0, 0),
    "max_leaves": Param("int", 0, 0),
    "max_bin": Param("int", 256, 2),
    "grow_policy": Param("choice", "depthwise", choices=("depthwise", "lossguide")),
    "num_parallel_tree": Param("int", 1, 1),
    "base_score": Param("float"),
    "seed": Param("int", 0),
    "early_stopping_rounds": Param("int", None, 1),
    "csv_weights": Param("int", 0, 0, 1),
    "tweedie_variance_power": Param("float", 1.5, 1, 2, low_open=True),
    "sample_type": Param("choice", "uniform", choices=("uniform", "weighted")),
    "normalize_type": Param("choice", "tree", choices=("tree", "forest")),
    "rate_drop": Param("float", 0.0, 0, 1),
    "one_drop": Param("int", 0, 0, 1),
    "skip_drop": Param("float", 0.0, 0, 1),
    "monotone_constraints": Param("str"),
    "interaction_constraints": Param("str"),
    "max_cat_to_onehot": Param("int", None, 1),
    "nthread": Param("int", None, 1),
    "verbosity": Param("int", 1, 0, 3),
    "lambda_bias": Param("float", 0.0, 0),
    "process_type": Param("choice", "default", choices=("default", "update")),
    "refresh_leaf": Param("int", 1, 0, 1),
    "updater": Param("str"),
    "deterministic_histogram": Param("bool", True),
    "single_precision_histogram": Param("bool", False),
    "use_dask_gpu_training": Param("bool", False),
}
# what the container reads itself rather than handing to xgboost
_OWN = {"num_round", "eval_metric", "early_stopping_rounds", "csv_weights",
        "deterministic_histogram", "single_precision_histogram", "use_dask_gpu_training",
        "lambda_bias"}


def params(hp: dict[str, Any]) -> dict[str, Any]:
    """xgboost's training parameters from the checked hyperparameters."""
    objective = "reg:squarederror" if hp["objective"] == "reg:linear" else hp["objective"]
    if objective.startswith("multi:") and not hp.get("num_class"):
        raise ConfigError(f"objective {objective} needs the hyperparameter 'num_class' (the "
                          "number of classes, labels 0 to num_class-1)")
    # as the container does: xgboost gets what was set, its own defaults for the rest
    out = {k: v for k, v in hp.items()
           if v is not None and k not in _OWN and v != HYPERPARAMETERS[k].default}
    out["objective"] = objective
    if out.get("tree_method") == "gpu_hist":  # no GPU here: the same histogram method
        out["tree_method"] = "hist"
    if out.get("booster", "gbtree") != "dart":
        for key in ("sample_type", "normalize_type", "rate_drop", "one_drop", "skip_drop"):
            out.pop(key, None)
    metrics = [m.strip() for m in (hp.get("eval_metric") or "").split(",") if m.strip()]
    for metric in metrics:
        if not EVAL_METRIC.match(metric):
            raise ConfigError(f"The 'eval_metric' hyperparameter of xgboost: {metric!r} is no "
                              "metric XGBoost knows (e.g. rmse, logloss, auc, error, mlogloss, "
                              "merror, aucpr, mae)")
    native = [m for m in metrics if m not in SKLEARN_METRICS]
    if native:
        out["eval_metric"] = native
    out["verbosity"] = min(int(hp.get("verbosity") or 1), 1)
    return out


def _matrix(xgb, channel: Channel, weights: bool):
    X, w = channel.X, None
    if weights:  # csv_weights=1: the column after the label holds each row's weight
        X, w = X[:, 1:], np.asarray(X[:, 0].toarray()).ravel() if hasattr(X, "toarray") \
            else X[:, 0]
    return xgb.DMatrix(X, label=channel.y, weight=w, missing=np.nan)


def fit(hp: dict[str, Any], channels: dict[str, Channel], model_dir: Path,
        control: Control) -> dict[str, float]:
    import xgboost as xgb

    train_params = params(hp)
    evals = [(_matrix(xgb, channels[c], hp["csv_weights"] == 1), c)
             for c in CHANNELS if c in channels]
    extra = [m for m in (hp.get("eval_metric") or "").split(",") if m.strip() in SKLEARN_METRICS]
    callbacks = [_reporter(control, evals, [m.strip() for m in extra], train_params["objective"])]
    if hp.get("early_stopping_rounds") and len(evals) > 1:
        callbacks.append(xgb.callback.EarlyStopping(rounds=hp["early_stopping_rounds"],
                                                    data_name="validation", save_best=False))
    booster = xgb.train(train_params, evals[0][0], num_boost_round=hp["num_round"],
                        evals=evals, verbose_eval=False, callbacks=callbacks)
    booster.save_model(str(model_dir / MODEL_FILE) + ".ubj")
    (model_dir / (MODEL_FILE + ".ubj")).rename(model_dir / MODEL_FILE)
    return {name: values[-1] for name, values in control.curves.items() if values}


def _reporter(control: Control, evals: list, extra: list[str], objective: str):
    """A callback putting each round's metrics into the job's log and curves; it ends
    training on Stop or at the deadline (the model so far is kept, as SageMaker keeps it)."""
    import xgboost as xgb

    class Reporter(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch: int, evals_log: dict) -> bool:
            values = {f"{data}:{metric}": history[-1]
                      for data, metrics in evals_log.items()
                      for metric, history in metrics.items()}
            for matrix, data in evals if extra else []:
                predictions = model.predict(matrix)
                for metric in extra:
                    values[f"{data}:{metric}"] = _sklearn_metric(
                        metric, matrix.get_label(), predictions, objective)
            control.record(epoch, values)
            return control.should_stop()

    return Reporter()


def _sklearn_metric(metric: str, y: np.ndarray, pred: np.ndarray, objective: str) -> float:
    from sklearn import metrics as m

    if metric in ("r2", "mse"):
        return float(m.r2_score(y, pred) if metric == "r2" else m.mean_squared_error(y, pred))
    labels = pred.argmax(axis=1) if pred.ndim == 2 else \
        (pred > (0 if objective == "binary:logitraw" else 0.5)).astype(float) \
        if objective.startswith("binary:") else pred
    average = "binary" if len(np.unique(y)) <= 2 else "macro"
    if metric == "accuracy":
        return float(m.accuracy_score(y, labels))
    if metric == "balanced_accuracy":
        return float(m.balanced_accuracy_score(y, labels))
    scorer = {"f1": m.f1_score, "precision": m.precision_score, "recall": m.recall_score}[metric]
    return float(scorer(y, labels, average=average, zero_division=0))


class XGBoostPredictor(Predictor):
    def __init__(self, booster) -> None:
        self.booster = booster
        self.features = booster.num_features()

    def scores(self, X) -> np.ndarray:
        import xgboost as xgb

        return self.booster.predict(xgb.DMatrix(X, missing=np.nan), validate_features=False)

    def records(self, X) -> list[dict[str, object]]:
        scores = self.scores(X)
        return [{"score": s.tolist() if np.ndim(s) else float(s)} for s in scores]


def load(model_dir: Path) -> XGBoostPredictor:
    """The booster in `model_dir/xgboost-model` (or the one model file there), read as
    XGBoost's JSON or UBJSON; a pickled Booster (the pre-1.3 containers') is refused."""
    import xgboost as xgb

    path = model_dir / MODEL_FILE
    if not path.is_file():
        files = [p for p in model_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
        if len(files) != 1:
            raise ModelIntegrityError(f"a built-in XGBoost model.tar.gz holds one file, "
                                      f"{MODEL_FILE}; found {len(files)} file(s)")
        path = files[0]
    head = path.read_bytes()[:2]
    if head[:1] == b"\x80":
        raise ModelIntegrityError(
            f"{path.name} is a pickled Booster (SageMaker XGBoost before 1.3-1); tabpilot "
            "never unpickles a model it did not verify: load it with xgboost yourself and "
            "save it again with Booster.save_model('xgboost-model')")
    if head[:1] not in (b"{", b"["):
        raise ModelIntegrityError(
            f"{path.name} is not in XGBoost's JSON or UBJSON format (the deprecated binary "
            "format is not read); save it again with Booster.save_model('xgboost-model.ubj')")
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(path.read_bytes()))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelIntegrityError(f"cannot load {path.name} as an XGBoost model: {first}") \
            from None
    return XGBoostPredictor(booster)
