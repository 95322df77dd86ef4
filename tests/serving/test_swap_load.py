"""Endpoint swaps under load (bench/serving_swap.py): every answer is one model's exact
answer, no request fails, and each client sees the models in deployment order."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from bench.serving_swap import main, one_row, swap_load  # noqa: E402

from tabpilot.serving.app import ServerSettings, server_app  # noqa: E402
from tabpilot.store import Store  # noqa: E402


def test_a_swap_under_concurrent_one_row_requests(tmp_path: Path, models, serve_app) -> None:
    pair = [models["binary"], models["binary_b"]]
    store = Store.for_workspace(tmp_path)
    store.put_endpoint("swap", str(pair[0]))
    server = serve_app(server_app(ServerSettings(workspace=tmp_path, poll_seconds=0.2)))
    outcome = swap_load(f"{server.url}/endpoints/swap/invocations",
                        lambda m: store.put_endpoint("swap", str(m)), pair, one_row(pair),
                        clients=4, per_client=300)
    print(outcome.line())
    assert outcome.errors == [] and outcome.unknown == [] and outcome.out_of_order == 0
    assert outcome.requests >= 1200 and all(n > 0 for n in outcome.per_model)


@pytest.mark.slow
def test_16_clients_160000_requests_two_swaps() -> None:
    outcome = main(["--clients", "16", "--requests", "10000", "--swaps", "2"])
    assert outcome.errors == [] and outcome.unknown == [] and outcome.out_of_order == 0
    assert outcome.requests >= 160_000 and all(n > 0 for n in outcome.per_model)
