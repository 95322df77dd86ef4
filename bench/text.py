"""Text classification on womens_clothing_reviews (its text column only): tabpilot's text
job against a default TF-IDF + logistic regression, and the best model's one-row latency
over HTTP.

    python -m bench.text [--time-limit 60] [--rows N] [--datasets DIR]

The table is read from ../shared/datasets (never copied), rows without review text
dropped, split 75/25 stratified (random_state=0, as bench/common.py's tables). Both
models see the `Review Text` column only. Scores on the 25 %: accuracy, F1 (positive
class 1 = recommended), ROC AUC. Latency: the best model behind `tabpilot serve-model`'s
app (uvicorn on loopback), one CSV row per request, median and p95 of 200 requests.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split

from bench.common import DEFAULT_DATASETS, RESULTS_DIR, markdown_table, write_results

FILE, TEXT, TARGET = "womens_clothing_reviews.csv.gz", "Review Text", "Recommended IND"


def split(folder: Path, rows: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(folder / FILE)[[TEXT, TARGET]].dropna(subset=[TEXT])
    if rows:
        df = df.sample(rows, random_state=0)
    return train_test_split(df, test_size=0.25, random_state=0, stratify=df[TARGET])


def scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    labels = (proba >= 0.5).astype(int)
    return {"accuracy": accuracy_score(y, labels), "f1": f1_score(y, labels),
            "auc": roc_auc_score(y, proba)}


def baseline(train: pd.DataFrame, test: pd.DataFrame) -> tuple[dict[str, float], float]:
    started = time.time()
    vec = TfidfVectorizer()
    model = LogisticRegression(max_iter=1000).fit(vec.fit_transform(train[TEXT]),
                                                  train[TARGET])
    seconds = time.time() - started
    return scores(test[TARGET].to_numpy(), model.predict_proba(vec.transform(test[TEXT]))[:, 1]
                  ), seconds


def tabpilot(train: pd.DataFrame, test: pd.DataFrame, limit: float, workspace: Path
             ) -> tuple[dict[str, float], str, float, object]:
    from tabpilot.automl import AutoML

    started = time.time()
    job = AutoML(TARGET, problem_type="text-classification", text_column=TEXT,
                 time_limit=limit, workspace=workspace, verbosity=0).fit(train)
    seconds = time.time() - started
    model = job.best_model()
    proba = model.predict_proba(test[[TEXT]])[1].to_numpy()
    # the job's tuned labels (its threshold) for accuracy and F1, as served
    labels = model.predict(test[[TEXT]]).astype(int)
    y = test[TARGET].to_numpy()
    found = {"accuracy": accuracy_score(y, labels), "f1": f1_score(y, labels),
             "auc": roc_auc_score(y, proba)}
    return found, str(model.metadata.get("candidate")), seconds, model


def http_latency(model_dir: Path, texts: list[str], n: int = 200) -> tuple[float, float]:
    import httpx
    import uvicorn

    from tabpilot.serving.app import model_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(model_app(model_dir), host="127.0.0.1", port=port,
                                          log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    times = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for i in range(n + 10):
                body = '"' + texts[i % len(texts)].replace('"', '""') + '"\n'
                t = time.perf_counter()
                r = client.post("/invocations", content=body,
                                headers={"Content-Type": "text/csv"})
                elapsed = (time.perf_counter() - t) * 1000
                r.raise_for_status()
                if i >= 10:  # warm-up requests left out
                    times.append(elapsed)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return statistics.median(times), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--rows", type=int, default=None, help="a sample of the table")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--workspace", type=Path, default=RESULTS_DIR / "workspace-text")
    args = parser.parse_args()
    train, test = split(args.datasets, args.rows)
    base, base_s = baseline(train, test)
    ours, best, ours_s, model = tabpilot(train, test, args.time_limit, args.workspace)
    p50, p95 = http_latency(model.path, test[TEXT].tolist())
    rows = [["TF-IDF + LogisticRegression (defaults)", f"{base['accuracy']:.4f}",
             f"{base['f1']:.4f}", f"{base['auc']:.4f}", f"{base_s:.1f}", ""],
            [f"tabpilot text job ({best})", f"{ours['accuracy']:.4f}", f"{ours['f1']:.4f}",
             f"{ours['auc']:.4f}", f"{ours_s:.1f}", f"{p50:.2f} / {p95:.2f}"]]
    table = markdown_table(["model", "accuracy", "F1", "AUC", "fit s", "HTTP ms p50 / p95"],
                           rows)
    head = (f"womens_clothing_reviews, `{TEXT}` only: {len(train):,} training rows, "
            f"{len(test):,} test rows, time limit {args.time_limit:g} s\n\n")
    print(head + table)
    write_results("text", head + table + "\n", {
        "train_rows": len(train), "test_rows": len(test), "time_limit": args.time_limit,
        "baseline": base, "tabpilot": ours, "best": best, "http_ms_p50": p50,
        "http_ms_p95": p95})


if __name__ == "__main__":
    main()
