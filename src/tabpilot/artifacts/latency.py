"""Measure a packaged model's single-row latency and batch throughput, within a time box."""

from __future__ import annotations

import functools
import time

import numpy as np
import pandas as pd

from tabpilot.artifacts.package import Model


def measure(model: Model, sample: pd.DataFrame, single_rows: int = 50,
            batch_rows: int = 5000, seconds: float = 1.0) -> dict[str, float]:
    """p50 single-row latency (ms) on one-row DataFrames, and batch throughput (rows/s).

    A slow model (a large ensemble) gets fewer calls and a smaller batch, so timing it
    never takes much more than `seconds`: at least 5 single rows and 10 batch rows.
    """
    rows = [sample.iloc[[i % len(sample)]] for i in range(single_rows)]
    # timed with the input check as served; a training row's unreadable value (a numeric
    # column may hold up to 2 % text) is read as missing, as in training, not refused
    predict = functools.partial(model.predict, on_bad_value="missing")
    predict(rows[0])  # warm caches
    times: list[float] = []
    box = time.perf_counter() + seconds / 2
    for row in rows:
        start = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - start)
        if len(times) >= 5 and time.perf_counter() > box:
            break
    per_row = float(np.median(times))
    n = int(min(batch_rows, max(10, (seconds / 2) / max(per_row / 20, 1e-7))))
    batch = sample
    if len(batch) < n:
        batch = pd.concat([sample] * int(np.ceil(n / len(sample))), ignore_index=True)
    batch = batch.iloc[:n]
    start = time.perf_counter()
    predict(batch)
    elapsed = max(time.perf_counter() - start, 1e-9)
    return {
        "latency_ms_p50": per_row * 1000,
        "latency_ms_p99": float(np.quantile(times, 0.99) * 1000),
        "throughput_rows_s": float(len(batch) / elapsed),
    }
