"""Serving benchmarks (issue: serving): in-process and HTTP latency, and batch throughput.

    python -m bench.serving [--budget 30] [--rows 1000000]

1. trains the gradient-boosting families on churn_sagemaker (as anchors.md prepares it)
   and times the best model's single-row predict in process;
2. serves it with `tabpilot serve-model` in its own process and times HTTP requests on
   loopback: sequential single rows, then 16 concurrent clients (p50, p99, requests/s);
3. trains on diamonds, writes diamonds repeated to `--rows` rows as CSV, and runs
   `tabpilot transform` at two chunk sizes, reporting rows/s and the peak memory of the
   transform process (which the chunk size, not the file size, should set).
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil

from bench.common import (
    RESULTS_DIR,
    base_parser,
    call_times_ms,
    datasets_dir,
    fit_tabpilot,
    fmt,
    load_manifest,
    log,
    markdown_table,
    one_row_frames,
    prepared_split,
    select,
    write_results,
)
from tabpilot.serving.ports import free_port as _free_port

GBM = ["lightgbm", "xgboost", "catboost"]


def _serve(model_dir: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tabpilot", "serve-model", model_dir,
                             "--port", str(port)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ping").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("serve-model did not start")


class _Client:
    """One keep-alive connection of Python's own http.client: the thinnest client Python
    has, so that the times are the server's and the network's. (httpx, which these
    benchmarks used before, adds about half a millisecond of its own per request: a GET
    /ping of the same server took 1.5 ms p50 with it against 0.8 ms with this.)"""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)

    def post_csv(self, body: str) -> None:
        self.connection.request("POST", "/invocations", body=body.encode(),
                                headers={"Content-Type": "text/csv"})
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {answer[:200]!r}")

    def close(self) -> None:
        self.connection.close()


def _http_sequential(url: str, bodies: list[str], n: int) -> np.ndarray:
    times = np.empty(n)
    client = _Client(url)
    try:
        for _ in range(20):
            client.post_csv(bodies[0])
        for i in range(n):
            start = time.perf_counter()
            client.post_csv(bodies[i % len(bodies)])
            times[i] = time.perf_counter() - start
    finally:
        client.close()
    return times * 1000


def _http_concurrent(url: str, bodies: list[str], clients: int, seconds: float
                     ) -> tuple[np.ndarray, float]:
    times: list[float] = []
    lock = threading.Lock()
    stop = time.time() + seconds

    def worker(k: int) -> None:
        local = []
        client = _Client(url)
        try:
            i = k
            while time.time() < stop:
                start = time.perf_counter()
                client.post_csv(bodies[i % len(bodies)])
                local.append(time.perf_counter() - start)
                i += clients
        finally:
            client.close()
        with lock:
            times.extend(local)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array(times) * 1000, len(times) / (time.perf_counter() - begin)


def latency(folder: Path, budget: float, workspace: Path) -> dict[str, Any]:
    table = select(load_manifest(folder), "churn_sagemaker")[0]
    train, test = prepared_split(folder, table)
    automl, _ = fit_tabpilot(train, table, budget, workspace, "serving", algorithms=GBM,
                             ensemble=False, stacking="off")
    model = automl.best_model()
    frames = one_row_frames(test, table.target, 2000)
    in_process = call_times_ms(model.predict, frames)
    X = test.drop(columns=[table.target])
    bodies = [X.iloc[[i]].to_csv(index=False, header=False) for i in range(len(X))]
    proc, url = _serve(str(model.path))
    try:
        sequential = _http_sequential(url, bodies, 2000)
        concurrent, rps = _http_concurrent(url, bodies, 16, 10.0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"candidate": model.metadata["candidate"], "algorithm": model.metadata["algorithm"],
            "estimators": model.metadata.get("estimators"),
            "path": "compiled" if getattr(model, "compiled", False) else "python",
            "in_process_p50_ms": float(np.median(in_process)),
            "in_process_p99_ms": float(np.quantile(in_process, 0.99)),
            "http_p50_ms": float(np.median(sequential)),
            "http_p99_ms": float(np.quantile(sequential, 0.99)),
            "http16_p50_ms": float(np.median(concurrent)),
            "http16_p99_ms": float(np.quantile(concurrent, 0.99)), "http16_rps": rps}


def _peak_rss(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak resident memory (MB, sampled every 50 ms) and CPU seconds of a
    command: the CPU time tells a slow run from a run on a busy machine."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - start, peak / 1e6, cpu


def batch(folder: Path, budget: float, workspace: Path, rows: int) -> list[dict[str, Any]]:
    table = select(load_manifest(folder), "diamonds")[0]
    train, test = prepared_split(folder, table)
    automl, _ = fit_tabpilot(train, table, budget, workspace, "batch", algorithms=["lightgbm"],
                             ensemble=False, stacking="off")
    best = automl.best_model()  # the best single LightGBM model
    model_dir = str(best.path)
    log(f"batch model: {best.metadata['candidate']}, {best.metadata.get('estimators')} "
        f"estimator(s), {'compiled' if getattr(best, 'compiled', False) else 'python'} path")
    X = pd.concat([train, test]).drop(columns=[table.target])
    big = RESULTS_DIR / f"diamonds-{rows}.csv"
    if not big.exists():
        repeats = int(np.ceil(rows / len(X)))
        pd.concat([X] * repeats, ignore_index=True).iloc[:rows].to_csv(big, index=False)
    out = []
    for chunk in (20_000, 200_000):
        target = RESULTS_DIR / f"transform-{chunk}"
        for f in target.glob("*"):
            f.unlink()
        seconds, peak, cpu = _peak_rss([sys.executable, "-m", "tabpilot", "transform",
                                        model_dir, str(big), "--output", str(target),
                                        "--chunk-rows", str(chunk)])
        out.append({"chunk_rows": chunk, "rows": rows, "seconds": seconds,
                    "rows_per_s": rows / seconds, "peak_mb": peak, "cpu_seconds": cpu,
                    "file_mb": big.stat().st_size / 1e6})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = base_parser("serving latency and batch throughput", budget=30.0)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    folder = datasets_dir(args.datasets)
    workspace = Path(args.workspace)
    log("training churn_sagemaker (gradient boosting) ...")
    lat = latency(folder, args.budget, workspace)
    log("batch transform on diamonds ...")
    runs = batch(folder, args.budget, workspace, args.rows)
    md = "\n".join([
        f"churn_sagemaker best gradient-boosting model: {lat['candidate']} ({lat['algorithm']}, "
        f"{lat['estimators']} estimator(s), {lat['path']} path)",
        "",
        markdown_table(["measure", "p50 ms", "p99 ms", "requests/s", "target"], [
            ["in-process single row", fmt(lat["in_process_p50_ms"], 3),
             fmt(lat["in_process_p99_ms"], 3), "", "p50 <= 0.2"],
            ["HTTP single row, sequential", fmt(lat["http_p50_ms"], 3),
             fmt(lat["http_p99_ms"], 3), "", "p50 <= 2"],
            ["HTTP single row, 16 clients", fmt(lat["http16_p50_ms"], 3),
             fmt(lat["http16_p99_ms"], 3), f"{lat['http16_rps']:.0f}", ""],
        ]),
        "",
        markdown_table(["chunk rows", "rows", "file MB", "seconds", "rows/s", "peak MB",
                        "CPU s", "target"],
                       [[r["chunk_rows"], r["rows"], f"{r['file_mb']:.0f}",
                         f"{r['seconds']:.1f}", f"{r['rows_per_s']:,.0f}",
                         f"{r['peak_mb']:.0f}", f"{r['cpu_seconds']:.1f}", ">= 200k rows/s"]
                        for r in runs]),
        f"\n(cores: {os.cpu_count()})",
    ])
    print(md)
    write_results("serving", md, {"latency": lat, "batch": runs})


if __name__ == "__main__":
    main()
