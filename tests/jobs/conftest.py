"""Data for the end-to-end job tests: scikit-learn's bundled tables and generated ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

FAST_ALGORITHMS = ["lightgbm", "linear"]


def _split(frame: pd.DataFrame, n_new: int, seed: int = 0
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    new = frame.sample(n_new, random_state=seed)
    return frame.drop(new.index).reset_index(drop=True), new.reset_index(drop=True)


@pytest.fixture(scope="session")
def breast_cancer() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Binary (string labels): training rows, 30 held-out rows and their true labels."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    train, new = _split(frame, 30)
    return train, new.drop(columns="target"), new["target"]


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Multiclass (species names): training rows and 15 held-out rows (target dropped)."""
    data = load_iris(as_frame=True)
    frame = data.frame
    frame["target"] = frame["target"].map(dict(enumerate(data.target_names)))
    frame = frame.rename(columns={"target": "species"})
    train, new = _split(frame, 15)
    return train, new.drop(columns="species")


@pytest.fixture(scope="session")
def diabetes() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regression: training rows and 20 held-out rows (target dropped)."""
    frame = load_diabetes(as_frame=True).frame
    train, new = _split(frame, 20)
    return train, new.drop(columns="target")


def _binary_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    y = np.where(a - 0.7 * b + 0.4 * rng.normal(size=n) > 0, "yes", "no")
    return pd.DataFrame({"a": a, "b": b, "noise": noise, "y": y})


@pytest.fixture(scope="session")
def binary_frame():
    """make(n, seed): two informative numeric features, one noise feature, 'yes'/'no' `y`."""
    return _binary_frame


@pytest.fixture(scope="session")
def mixed_types() -> pd.DataFrame:
    """Numeric, categorical, free-text and date columns; the target depends on several."""
    rng = np.random.default_rng(3)
    n = 240
    amount = rng.gamma(2.0, 50.0, size=n).round(2)
    colour = rng.choice(["red", "green", "blue", "yellow"], size=n)
    start = pd.Timestamp("2022-01-01")
    signup = (start + pd.to_timedelta(rng.integers(0, 700, size=n), unit="D")).strftime("%Y-%m-%d")
    good = ["great", "excellent", "lovely", "fast", "friendly"]
    bad = ["awful", "slow", "broken", "rude", "late"]
    filler = ["the", "service", "was", "very", "really", "product", "delivery", "quite"]
    positive = rng.random(n) < 0.5
    review = [
        " ".join(rng.choice(filler, 4).tolist() + rng.choice(good if p else bad, 2).tolist())
        for p in positive
    ]
    score = positive.astype(float) + (colour == "red") + (amount > 100) * 0.5
    y = np.where(score + 0.3 * rng.normal(size=n) > 1.0, "keep", "churn")
    return pd.DataFrame({"amount": amount, "colour": colour, "signup_date": signup,
                         "review": review, "y": y})


PUBLISHED = "to-delete"  # the job of `published_job`


@pytest.fixture(scope="session")
def published_job(tmp_path_factory: pytest.TempPathFactory, binary_frame) -> Path:
    """A finished job in `ws/`, published to the folder `shared/` (--artifacts); tests
    copy it before they change anything (a workspace holds relative paths)."""
    from tabpilot import AutoML

    root = tmp_path_factory.mktemp("published-job")
    AutoML("y", time_limit=10, max_candidates=1, algorithms=["linear"], ensemble=False,
           stacking="off", distill=False, workspace=root / "ws", verbosity=0, name=PUBLISHED,
           artifacts=str(root / "shared")).fit(binary_frame(200))
    return root
