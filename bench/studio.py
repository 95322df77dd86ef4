"""The Studio's speed: server time per page for a job with 500 candidates, the first
paint of the job page in headless Chromium, and the delay from a trial's end to its row
in an open page.

    python -m bench.studio [--candidates 500] [--requests 200] [--paints 10] [--trials 10]

Writes bench/results/studio.md and studio.json.

- Server time: a real `tabpilot serve` on loopback over a workspace whose job's 500
  candidates (plus a few failed ones) were written through the store's own API (as the
  runner writes them); each page is fetched `--requests` times after a warm-up, by one
  client, one request at a time, and timed at the client (so the figure includes loopback
  and HTTP parsing: an upper bound of the server's time). Goal: p50 <= 50 ms, p99 <= 200 ms.
- First paint: Chromium's `first-contentful-paint` of the job page (`performance` entries),
  a fresh browser context each time (no cache). Goal: <= 500 ms.
- Trial to row: an in-progress job's page is open; a completed candidate is written to the
  store; a MutationObserver in the page records when its row appears. The delay is the
  page's clock minus the write's (one machine, one clock). Goal: <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import markdown_table, write_results
from tabpilot.serving.ports import free_port as _free_port
from tabpilot.store import Store

CHROMIUM = os.environ.get("TABPILOT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ALGORITHMS = ("lightgbm", "linear", "xgboost", "random_forest", "extra_trees", "catboost")


def build_job(store: Store, name: str, n: int, status: str = "Completed") -> None:
    """A job with `n` completed candidates and n/50 failed ones, through the store's API."""
    now = time.time()
    store.create_job(name=name, status="InProgress", secondary_status="Starting", target="y",
                     input_uri="/data/train.csv", problem_type="binary", metric="F1",
                     mode="hpo", request={"time_limit": 3600}, job_dir=str(
                         Path(store.root or ".") / "jobs" / name))
    rng = np.random.default_rng(0)
    best, best_score = None, -1.0
    for i in range(n + n // 50):
        algorithm = ALGORITHMS[i % len(ALGORITHMS)]
        cname = f"{algorithm}-{i:03d}"
        ok = i < n
        store.add_candidate(job=name, name=cname, number=i, algorithm=algorithm,
                            family=algorithm, params={}, status="Completed" if ok else "Failed")
        score = float(rng.uniform(0.6, 0.95))
        latency = float(rng.lognormal(0, 1.2))
        store.update_candidate(name, cname, metrics={"F1": score, "Accuracy": score,
                                                     "AUC": score} if ok else None,
                               objective=score if ok else None,
                               latency_ms_p50=latency if ok else None, fit_seconds=1.0,
                               model_bytes=10_000 + i, ended=now - n + i,
                               failure_reason=None if ok else "ran out of time")
        if ok and score > best_score:
            best, best_score = cname, score
    fields: dict[str, Any] = {"status": status, "secondary_status": "ModelTuning"
                              if status == "InProgress" else "Completed", "heartbeat": now}
    if status != "InProgress":
        fields.update(ended=now, best_candidate=best)
    store.update_job(name, **fields)


def serve(workspace: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "tabpilot", "serve", "--port", str(port),
                                "--workspace", str(workspace)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(root + "/ping", timeout=2).status_code == 200:
                return process, root
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("tabpilot serve did not start")


def page_times(root: str, job: str, requests: int) -> list[dict[str, Any]]:
    pages = [("jobs home", "/studio/"),
             ("job page", f"/studio/jobs/{job}"),
             ("job page, page 5 by latency", f"/studio/jobs/{job}?sort=latency_ms_p50&page=5"),
             ("job page, one algorithm", f"/studio/jobs/{job}?algorithm=linear"),
             ("job live part", f"/studio/jobs/{job}?part=live"),
             ("GET /api/v1/jobs", "/api/v1/jobs"),
             ("GET /api/v1/jobs/{job}/leaderboard", f"/api/v1/jobs/{job}/leaderboard?page=3")]
    out = []
    with httpx.Client(base_url=root, timeout=30) as http:
        for label, path in pages:
            for _ in range(5):
                http.get(path).raise_for_status()
            times = []
            for _ in range(requests):
                start = time.perf_counter()
                http.get(path).raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
            out.append({"page": label, "path": path, "p50_ms": float(np.percentile(times, 50)),
                        "p99_ms": float(np.percentile(times, 99)), "n": requests})
            print(f"{label}: p50 {out[-1]['p50_ms']:.1f} ms, p99 {out[-1]['p99_ms']:.1f} ms",
                  file=sys.stderr)
    return out


def first_paints(root: str, job: str, loads: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    paints = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(loads + 1):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{root}/studio/jobs/{job}", wait_until="load")
            fcp = page.evaluate("""() => new Promise(done => {
                const found = () => performance.getEntriesByName('first-contentful-paint')[0];
                if (found()) { done(found().startTime); return; }
                new PerformanceObserver(() => found() && done(found().startTime))
                    .observe({type: 'paint', buffered: true});
            })""")
            paints.append(float(fcp))
            context.close()
        browser.close()
    return paints[1:]  # the first load warms the browser process


def keep_alive(store: Store, job: str) -> threading.Event:
    """Beat for the in-progress job, as its process would (else readers mark it Failed)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            store.beat(job)
            time.sleep(1)

    threading.Thread(target=beat, daemon=True).start()
    return stop


def trial_to_row(root: str, store: Store, job: str, trials: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    delays = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        # best first: each new candidate (the best score yet) is the table's first row
        page.goto(f"{root}/studio/jobs/{job}?sort=rank&order=asc&per_page=200")
        page.evaluate("""() => { window.__seen = {};
            new MutationObserver(() => {
              for (const a of document.querySelectorAll('#leaderboard th a'))
                if (!(a.textContent in window.__seen)) window.__seen[a.textContent] = Date.now();
            }).observe(document.getElementById('job-live'), {childList: true, subtree: true});
        }""")
        page.wait_for_timeout(1500)
        for i in range(trials):
            name = f"lightgbm-{9000 + i}"
            store.add_candidate(job=job, name=name, number=9000 + i, algorithm="lightgbm",
                                family="lightgbm", params={}, status="InProgress")
            page.wait_for_timeout(300)
            written = time.time() * 1000  # the trial ends: the runner records it Completed
            store.update_candidate(job, name, metrics={"F1": 0.99 + i / 1e4}, status="Completed",
                                   objective=0.99 + i / 1e4, latency_ms_p50=0.5,
                                   ended=written / 1000)
            page.wait_for_function(f"() => '{name}' in window.__seen", timeout=10_000)
            delays.append(page.evaluate(f"window.__seen['{name}']") - written)
            page.wait_for_timeout(300)
        browser.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--paints", type=int, default=10)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]  # the figures are only as quiet as the machine
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        store = Store.for_workspace(workspace)
        build_job(store, "big", args.candidates)
        build_job(store, "live", 20, status="InProgress")
        alive = keep_alive(store, "live")
        process, root = serve(workspace)
        try:
            pages = page_times(root, "big", args.requests)
            paints = first_paints(root, "big", args.paints) if args.paints else []
            delays = trial_to_row(root, store, "live", args.trials) if args.trials else []
        finally:
            alive.set()
            process.terminate()
            process.wait(timeout=20)
    rows = [[p["page"], f"{p['p50_ms']:.1f}", f"{p['p99_ms']:.1f}",
             "yes" if p["p50_ms"] <= 50 and p["p99_ms"] <= 200 else "no"] for p in pages]
    browser_rows = []
    if paints:
        browser_rows.append(["first contentful paint, job page (ms)",
                             f"{statistics.median(paints):.0f}", f"{max(paints):.0f}", "<= 500",
                             "yes" if statistics.median(paints) <= 500 else "no"])
    if delays:
        browser_rows.append(["trial end -> row in the open page (ms)",
                             f"{statistics.median(delays):.0f}", f"{max(delays):.0f}",
                             "<= 1000", "yes" if max(delays) <= 1000 else "no"])
    load = (f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
            f"on {os.cpu_count()} cores" + (" (a loaded machine: other work shared the cores)"
                                           if load_before > (os.cpu_count() or 1) else ""))
    markdown = "\n\n".join([
        f"# Studio ({args.candidates} candidates, {args.requests} requests per page, "
        f"{os.cpu_count()} cores)",
        load + ".",
        "Server time per page, timed at a loopback client (goal p50 <= 50 ms, "
        "p99 <= 200 ms):",
        markdown_table(["page", "p50 ms", "p99 ms", "goal met"], rows),
        "In headless Chromium:",
        markdown_table(["measure", "median", "max", "goal", "met"], browser_rows),
    ]) + "\n"
    write_results("studio", markdown, {"pages": pages, "first_paint_ms": paints,
                                       "trial_to_row_ms": delays,
                                       "candidates": args.candidates,
                                       "load_average": [load_before, os.getloadavg()[0]]})
    print(markdown)


if __name__ == "__main__":
    main()
