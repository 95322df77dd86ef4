"""One training job of a built-in algorithm, in its folder:

    <job_dir>/model/             what the algorithm wrote (SageMaker's /opt/ml/model)
    <job_dir>/output/model.tar.gz   those files at the archive's top level, as SageMaker packs them
    <job_dir>/metrics.json       final metrics and each iteration's curves

`check` runs when the job is created (image, hyperparameters, channel names), so a bad
request fails there in one line; `run` reads the channels, trains, packs. The caller (the
API's worker) owns locations, the store and the status it reports.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tabpilot.errors import ConfigError, DataError
from tabpilot.training import channels as ch
from tabpilot.training.base import Control
from tabpilot.training.hyperparameters import parse

log = logging.getLogger("tabpilot.training")
MODULES = {"xgboost": "xgboost_builtin", "linear-learner": "linear_learner",
           "kmeans": "kmeans", "knn": "knn", "randomcutforest": "rcf"}
ARCHIVE = "model.tar.gz"


def algorithm_module(algorithm: str) -> ModuleType:
    return importlib.import_module(f"tabpilot.training.{MODULES[algorithm]}")


@dataclass
class ChannelInput:
    files: list[Path]
    content_type: str | None = None
    gzip: bool = False


@dataclass
class Result:
    metrics: dict[str, float]
    archive: Path
    stopped_by: str | None  # None, "stop" or "deadline"
    training_seconds: float
    curves: dict[str, list[float]] = field(default_factory=dict)
    class_counts: dict[str, int] | None = None  # train rows per label (classification)
    importance: dict[str, float] | None = None  # XGBoost's total gain per feature


def check(algorithm: str, hyperparameters: dict[str, str], channel_names: list[str],
          content_types: list[str | None]) -> dict[str, Any]:
    """The typed hyperparameters; ConfigError/DataError for what the job could never run."""
    module = algorithm_module(algorithm)
    if "train" not in channel_names:
        raise ConfigError(f"InputDataConfig needs a channel named 'train'; got "
                          f"{', '.join(channel_names) or 'none'}")
    unknown = [c for c in channel_names if c not in module.CHANNELS]
    if unknown:
        raise ConfigError(f"{algorithm} reads the channels {', '.join(module.CHANNELS)}; "
                          f"channel {unknown[0]!r} is not one of them")
    for given in content_types:
        kind, _ = ch.content_type(given)
        if kind == ch.LIBSVM and algorithm != "xgboost":
            raise DataError(f"{algorithm} reads text/csv or application/x-parquet; LibSVM "
                            "is read by xgboost only")
    hp = parse(algorithm, module.HYPERPARAMETERS, hyperparameters)
    if algorithm == "xgboost":
        module.params(hp)  # objective/num_class/eval_metric agree
    return hp


def run(job_dir: Path, algorithm: str, hyperparameters: dict[str, str],
        inputs: dict[str, ChannelInput], control: Control,
        on_status: Callable[[str], None] = lambda status: None) -> Result:
    module = algorithm_module(algorithm)
    hp = check(algorithm, hyperparameters, list(inputs),
               [c.content_type for c in inputs.values()])
    log.info("algorithm %s, hyperparameters %s (the others at their defaults)", algorithm,
             json.dumps({k: hp[k] for k in hyperparameters if k in hp}, default=str))
    data = {}
    for name, given in inputs.items():
        data[name] = ch.read(name, given.files, given.content_type, module.LABELLED, given.gzip)
        log.info("channel %s: %d rows, %d features", name, data[name].rows,
                 data[name].X.shape[1])
    data = {n: c if n == "train" else ch.align(data["train"], c) for n, c in data.items()}
    _check_feature_dim(algorithm, hp, data["train"].X.shape[1])
    on_status("Training")
    model_dir = job_dir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    started = time.time()
    metrics = module.fit(hp, data, model_dir, control)
    seconds = time.time() - started
    for name, value in metrics.items():
        log.info("#metric %s: %.6g", name, value)
    on_status("Uploading")
    archive = pack(model_dir, job_dir / "output" / ARCHIVE)
    counts, importance = _class_counts(algorithm, hp, data["train"].y), \
        _importance(algorithm, model_dir)
    (job_dir / "metrics.json").write_text(json.dumps(
        {"final": metrics, "curves": control.curves, "class_counts": counts,
         "importance": importance}, indent=1))
    return Result(metrics, archive, control.stopped_by, seconds, control.curves, counts,
                  importance)


def _class_counts(algorithm: str, hp: dict[str, Any], y: Any) -> dict[str, int] | None:
    """Rows per label of a classification's train channel, for Debugger's ClassImbalance."""
    import numpy as np

    kind = str(hp.get("objective") or hp.get("predictor_type") or "")
    if y is None or not (kind.startswith(("binary:", "multi:")) or "classifier" in kind):
        return None
    labels, counts = np.unique(np.asarray(y), return_counts=True)
    return {f"{label:g}": int(n) for label, n in zip(labels, counts, strict=True)}


def _importance(algorithm: str, model_dir: Path) -> dict[str, float] | None:
    """XGBoost's total gain per feature (f0, f1...), for FeatureImportanceOverweight;
    None for a linear booster or another algorithm."""
    if algorithm != "xgboost":
        return None
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray((model_dir / algorithm_module(algorithm).MODEL_FILE)
                                 .read_bytes()))  # the format read from the bytes
    try:
        gains = booster.get_score(importance_type="total_gain")
    except xgb.core.XGBoostError:  # gblinear has no trees
        return None
    features = booster.num_features()
    return {f"f{i}": float(gains.get(f"f{i}", 0.0)) for i in range(features)} or None


def _check_feature_dim(algorithm: str, hp: dict[str, Any], width: int) -> None:
    wanted = hp.get("feature_dim")
    if wanted not in (None, "auto") and wanted != width:
        raise DataError(f"feature_dim is {wanted}, but channel train has {width} feature "
                        f"columns; set feature_dim={width} (or auto)")


def pack(model_dir: Path, archive: Path) -> Path:
    """model.tar.gz with the model files at its top level (SageMaker's layout)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    partial.replace(archive)
    return archive


def unpack(archive: Path, into: Path) -> Path:
    """A model.tar.gz's regular files into `into` (a fresh folder); links, devices,
    absolute names and `..` are refused by tarfile's `data` filter."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(into, ignore_errors=True)
        raise DataError(f"{archive.name} is not a readable model.tar.gz: {exc}") from None
    return into
