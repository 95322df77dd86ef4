"""Helpers for the serving tests: real models trained on generated data, real servers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import uvicorn

from tabpilot.artifacts import Predictor, save
from tabpilot.data.schema import infer_schema
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family
from tabpilot.serving.ports import free_port
from tabpilot.tasks import ProblemType

N = 300
CLASSES = ["no", "yes"]


def churn_table(n: int = N, seed: int = 0) -> pd.DataFrame:
    """customer_id (id), tenure, plan, charges, label."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "tenure": rng.integers(1, 72, n).astype(float),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "charges": rng.normal(70, 20, n).round(2),
    })
    risk = (df["tenure"] < 20).to_numpy() | df["plan"].eq("basic").to_numpy()
    df["label"] = np.where(risk, "yes", "no")
    return df


def build_model(directory: Path, ptype: ProblemType = ProblemType.BINARY, seed: int = 0,
                n_estimators: int = 40, inverted: bool = False, compiled: bool = True) -> Path:
    """Train a real LightGBM pipeline on generated data and package it, with its compiled
    path as a job packages it (unless `compiled` is False).

    `inverted` learns the opposite labels, so two models visibly disagree.
    """
    df = churn_table(seed=seed)
    if inverted:
        df["label"] = df["label"].map({"yes": "no", "no": "yes"})
    X = df.drop(columns="label")
    schema = infer_schema(X)
    family = get_family("lightgbm")
    encoder = build_encoder(schema, family.style).fit(X)
    if ptype is ProblemType.REGRESSION:
        y, classes, k = df["charges"].to_numpy() * 2.0, None, 0
    else:
        y, classes, k = df["label"].map(CLASSES.index).to_numpy(), CLASSES, 2
    params = dict(family.portfolio(ptype)[0], n_estimators=n_estimators, min_child_samples=5)
    est = family.fit(params, FitData(encoder.transform(X), y, ptype, k,
                                     encoder.categorical_indices_, seed=seed))
    predictor = Predictor(encoder, family.name, [est], ptype, schema.features, classes,
                          0.5 if classes else None)
    meta = {"candidate": directory.parent.name, "algorithm": "LightGBM",
            "problem_type": ptype.value, "input_schema": schema.to_dict(),
            "features": schema.features, "classes": classes}
    return save(predictor, meta, directory, sample=X.iloc[:100] if compiled else None)


class ThreadServer:
    """A real uvicorn server on a free loopback port, in a background thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_until(predicate, seconds: float = 60.0, what: str = "the condition",
               every: float = 0.02) -> None:
    """Wait for `predicate`, asking every `every` seconds: a guard against a hang, long
    enough for a busy machine (the tests assert what happens, never how fast)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
