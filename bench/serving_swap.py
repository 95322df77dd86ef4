"""Endpoint swaps under load: many clients on one endpoint while it is redeployed.

    python -m bench.serving_swap [--clients 16] [--requests 10000] [--swaps 2]

Trains `--swaps + 1` small LightGBM models that answer the same one-row request with
different probabilities, serves the first with `tabpilot serve` in its own process, and
sends `--requests` one-row requests from each of `--clients` threads while the endpoint
is pointed at the next model `--swaps` times through the store (as `tabpilot deploy`
does). Every answer must be one model's exact answer (no error, nothing from a
half-loaded model), and each client must see the models in deployment order. Prints
p50 / p99 latency and requests/s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from tabpilot.serving.ports import free_port

CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}


def expected_answers(models: list[Path], body: bytes) -> list[bytes]:
    """Each model's answer to `body`, byte for byte as the server gives it."""
    from tabpilot.artifacts import load
    from tabpilot.serving.app import Live, invoke

    return [invoke(Live(load(m), 1), body, CSV["Content-Type"], CSV["Accept"], None).body
            for m in models]


@dataclass
class Outcome:
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    unknown: list[bytes] = field(default_factory=list)  # answers no model gives
    out_of_order: int = 0  # a client saw an older model after a newer one
    per_model: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    swapped_at: list[int] = field(default_factory=list)  # requests done at each swap

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else 0.0

    def line(self) -> str:
        return (f"{self.requests:,} requests in {self.seconds:.1f} s "
                f"({self.requests / max(self.seconds, 1e-9):,.0f}/s), errors "
                f"{len(self.errors)}, unknown answers {len(self.unknown)}, out of order "
                f"{self.out_of_order}, per model {self.per_model}, swaps after "
                f"{self.swapped_at} requests, latency p50 {self.percentile(50):.2f} ms "
                f"p99 {self.percentile(99):.2f} ms")


def swap_load(url: str, deploy, models: list[Path], body: bytes, clients: int,
              per_client: int, patience: float = 120.0) -> Outcome:
    """`clients` threads post `body` to `url` `per_client` times each (and on until they
    see the last model), while `deploy(model_dir)` points the endpoint at `models[1:]` in
    turn, spread evenly over the run. The endpoint serves `models[0]` at the start."""
    answers = expected_answers(models, body)
    if len(set(answers)) != len(answers):
        raise ValueError("the models answer the request alike; a swap would not show")
    index = {a: i for i, a in enumerate(answers)}
    out = Outcome(per_model=[0] * len(models))
    lock = threading.Lock()
    total = clients * per_client
    swaps = [total * (k + 1) // len(models) for k in range(len(models) - 1)]
    stop = time.monotonic() + patience + total * 0.05

    def client() -> None:
        newest, done, last = 0, 0, len(models) - 1
        latencies: list[float] = []
        with httpx.Client(timeout=30) as http:
            while (done < per_client or newest < last) and time.monotonic() < stop:
                start = time.perf_counter()
                try:
                    r = http.post(url, content=body, headers=CSV)
                except httpx.HTTPError as exc:
                    with lock:
                        out.errors.append(repr(exc))
                    continue
                finally:
                    done += 1
                latencies.append((time.perf_counter() - start) * 1000)
                model = index.get(r.content) if r.status_code == 200 else None
                with lock:
                    out.requests += 1
                    if r.status_code != 200:
                        out.errors.append(f"{r.status_code} {r.text[:200]}")
                    elif model is None:
                        out.unknown.append(r.content)
                    else:
                        out.per_model[model] += 1
                        out.out_of_order += model < newest
                if model is not None:
                    newest = max(newest, model)
        with lock:
            out.latencies_ms.extend(latencies)
            if newest < last:
                out.errors.append(f"a client never saw model {last} (saw up to {newest})")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for k, at in enumerate(swaps, start=1):
        while out.requests < at and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        deploy(models[k])
        out.swapped_at.append(out.requests)
    for t in threads:
        t.join()
    out.seconds = time.perf_counter() - began
    return out


def build_models(root: Path, count: int) -> list[Path]:
    """`count` models (the tests' churn LightGBM) that disagree on probabilities."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "serving"))
    from servinglib import build_model

    return [build_model(root / f"m{i}" / "model", seed=i, n_estimators=20 + 10 * i,
                        inverted=bool(i % 2)) for i in range(count)]


def one_row(models: list[Path]) -> bytes:
    """A request row that every model answers differently."""
    from servinglib import churn_table

    rows = churn_table(50, seed=99).drop(columns="label")
    for i in range(len(rows)):
        body = rows.iloc[[i]].to_csv(index=False, header=False).encode()
        if len(set(expected_answers(models, body))) == len(models):
            return body
    raise ValueError("no row tells the models apart")


def main(argv: list[str] | None = None) -> Outcome:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=10_000, help="per client")
    parser.add_argument("--swaps", type=int, default=2)
    args = parser.parse_args(argv)
    from tabpilot.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        models = build_models(Path(tmp), args.swaps + 1)
        body = one_row(models)
        workspace = Path(tmp) / "ws"
        store = Store.for_workspace(workspace)
        store.put_endpoint("swap", str(models[0]))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "tabpilot.cli", "serve", "--port",
                                   str(port), "-w", str(workspace)])
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while True:
                try:
                    if "swap" in httpx.get(f"{url}/ping").json()["endpoints"]:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.2)
            outcome = swap_load(f"{url}/endpoints/swap/invocations",
                                lambda m: store.put_endpoint("swap", str(m)), models, body,
                                args.clients, args.requests)
        finally:
            server.terminate()
            server.wait(30)
    print(f"{args.clients} clients x {args.requests:,} one-row requests, {args.swaps} "
          f"swaps: {outcome.line()}")
    return outcome


if __name__ == "__main__":
    main()
