"""Measure a packaged model's single-row latency and batch throughput."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from tabpilot.artifacts.package import Model


def measure(model: Model, sample: pd.DataFrame, single_rows: int = 50,
            batch_rows: int = 5000) -> dict[str, float]:
    """p50 single-row latency (ms) on one-row DataFrames, and batch throughput (rows/s)."""
    rows = [sample.iloc[[i % len(sample)]] for i in range(single_rows)]
    model.predict(rows[0])  # warm caches
    times = []
    for row in rows:
        start = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - start)
    batch = sample
    if len(batch) < batch_rows:
        batch = pd.concat([sample] * int(np.ceil(batch_rows / len(sample))), ignore_index=True)
    batch = batch.iloc[:batch_rows]
    start = time.perf_counter()
    model.predict(batch)
    elapsed = max(time.perf_counter() - start, 1e-9)
    return {
        "latency_ms_p50": float(np.median(times) * 1000),
        "latency_ms_p99": float(np.quantile(times, 0.99) * 1000),
        "throughput_rows_s": float(len(batch) / elapsed),
    }
