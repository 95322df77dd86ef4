"""A forecasting job's white box: its time-series analysis, backtest forecasts and plots,
and the DataExploration notebook that shows them.

    jobs/<job>/
      time_series_analysis.json    forecast/analysis.py: frequency, gaps, lengths,
                                   seasonality, intermittency
      backtest_forecasts.parquet   every candidate's forecast on every window and item
                                   (mean and quantiles) beside the actual values, and the
                                   history before the first window (window -1)
      candidates/<c>/backtest.png  the last window of the largest items, quantile bands
      DataExploration.ipynb        all of it, redrawn from the files (charts.forecast_backtest)

The notebook is executed at the job's end when the time limit leaves NOTEBOOK_SECONDS;
otherwise it is written unexecuted (it runs as it is: `jupyter nbconvert --execute`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.forecast.analysis import ANALYSIS

FORECASTS = "backtest_forecasts.parquet"
EXPLORATION = "DataExploration.ipynb"
PLOT = "backtest.png"
NOTEBOOK_SECONDS = 20.0  # a kernel's start and the plots, on a loaded machine
PLOTTED_ITEMS = 3  # the largest items (by their mean) drawn per candidate
HISTORY_WINDOWS = 3  # history shown before the first window, in horizons


def forecasts_frame(wins: list, forecasts: dict[str, list], columns: list[str],
                    freq: str) -> pd.DataFrame:
    """The backtest forecasts of every candidate as one long table: candidate, window,
    item, ds, actual and the forecast's columns; the history before the first window too
    (candidate empty, window -1), for the plots. Built a window at a time (thousands of
    items: no frame per item)."""
    first = wins[0]
    items = list(first.actual)
    horizon = len(first.actual[items[0]])
    tails = [first.train[i].iloc[-HISTORY_WINDOWS * horizon:] for i in items]
    parts = [pd.DataFrame({"candidate": "", "window": -1,
                           "item": np.repeat(items, [len(t) for t in tails]),
                           "ds": np.concatenate([t.index.to_numpy() for t in tails]),
                           "actual": np.concatenate([t.to_numpy(float) for t in tails])})]
    for w in wins:
        ds = np.concatenate([pd.date_range(w.train[i].index[-1], periods=horizon + 1,
                                           freq=freq)[1:].to_numpy() for i in items])
        actual = np.concatenate([w.actual[i] for i in items])
        item = np.repeat(items, horizon)
        for name, per_window in forecasts.items():
            values = np.vstack([np.asarray(per_window[w.index][i], float) for i in items])
            frame = pd.DataFrame(values, columns=columns)
            frame.insert(0, "actual", actual)
            frame.insert(0, "ds", ds)
            frame.insert(0, "item", item)
            frame.insert(0, "window", w.index)
            frame.insert(0, "candidate", name)
            parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["candidate", "window", "item", "ds"], kind="stable",
                           ignore_index=True)


def largest_items(frame: pd.DataFrame, n: int = PLOTTED_ITEMS) -> list[str]:
    history = frame[frame["window"] == -1]
    return list(history.groupby("item")["actual"].mean().sort_values(ascending=False)
                .index[:n])


def backtest_figure(frame: pd.DataFrame, candidate: str, item: str, window: int | None = None):
    """The chart of one candidate's backtest on one item and window (default: the last):
    the history before it, the actuals, the mean and the quantile bands."""
    from tabpilot.reports.charts import forecast_backtest

    rows = frame[(frame["candidate"] == candidate) & (frame["item"] == item)]
    window = int(rows["window"].max()) if window is None else window
    shown = rows[rows["window"] == window]
    history = frame[(frame["item"] == item) & (frame["window"] == -1)]
    earlier = rows[rows["window"] < window]  # the windows before: actuals are history now
    history_ds = list(history["ds"]) + list(earlier.drop_duplicates("ds")["ds"])
    history_y = list(history["actual"]) + list(earlier.drop_duplicates("ds")["actual"])
    quantiles = sorted(c for c in frame.columns if c.startswith("p") and c[1:].isdigit())
    quantiles.sort(key=lambda c: int(c[1:]))
    bands = [(f"{quantiles[k]}-{quantiles[-1 - k]}", shown[quantiles[k]], shown[quantiles[-1 - k]])
             for k in range(len(quantiles) // 2)]
    return forecast_backtest(history_ds, history_y, shown["ds"], shown["actual"], shown["mean"],
                             bands, f"{candidate}: backtest window {window}, item {item}")


def write(folder: Path, analysis: dict[str, Any], frame: pd.DataFrame, candidates: list[str],
          execute_until: float | None) -> list[str]:
    """The white-box files; returns notes on what was skipped (never raises for a plot or
    the notebook's execution: the job's model and results are written already)."""
    import time

    from tabpilot.reports.charts import png

    notes: list[str] = []
    (folder / ANALYSIS).write_text(json.dumps(analysis, indent=2, default=_plain))
    frame.to_parquet(folder / FORECASTS, index=False)
    items = largest_items(frame)
    for name in candidates:
        try:
            (folder / "candidates" / name).mkdir(parents=True, exist_ok=True)
            (folder / "candidates" / name / PLOT).write_bytes(
                png(backtest_figure(frame, name, items[0])))
        except Exception as exc:  # a plot is a convenience
            notes.append(f"backtest plot of {name} not drawn: {type(exc).__name__}: {exc}")
    left = None if execute_until is None else execute_until - time.time()
    execute = left is not None and left >= NOTEBOOK_SECONDS
    try:
        exploration_notebook(folder, execute=execute, timeout=int(left or 0) or 60)
    except Exception as exc:  # the unexecuted notebook stays: it still runs
        exploration_notebook(folder, execute=False)
        # a cell's error (nbclient's CellExecutionError) by its own name and value
        what = f"{getattr(exc, 'ename', type(exc).__name__)}: " \
               f"{getattr(exc, 'evalue', str(exc).strip().splitlines()[0] if str(exc) else '')}"
        notes.append(f"DataExploration.ipynb not executed: {what}")
    else:
        if not execute and execute_until is not None:
            notes.append(f"DataExploration.ipynb not executed: {max(left or 0, 0):.0f}s left "
                         f"of the time limit, it needs about {NOTEBOOK_SECONDS:.0f}s")
    return notes


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


_SETUP = """\
import json
import os

import matplotlib.pyplot as plt
import pandas as pd

from tabpilot.forecast.notebook import backtest_figure, largest_items
from tabpilot.reports.datafiles import find_job_dir

JOB_DIR = find_job_dir({job!r}, os.environ.get('TABPILOT_JOB_DIR'),
                       near=[globals().get('__vsc_ipynb_file__'), os.environ.get('JPY_SESSION_NAME')],
                       recorded={recorded!r})
analysis = json.loads((JOB_DIR / 'time_series_analysis.json').read_text())
backtests = pd.read_parquet(JOB_DIR / 'backtest_forecasts.parquet')
items = pd.DataFrame(analysis['items'])
summary = analysis['summary']
print(f"{{summary['items']}} items, {{summary['rows']}} rows, frequency {{summary['frequency']}} "
      f"(the timestamps read as {{summary['inferred_frequency']}}), season {{summary['season_length']}}")
for line in analysis['insights']:
    print('-', line)"""

_LENGTHS = """\
print(summary['length'])
items['length'].plot.hist(bins=30, title='points per item', figsize=(6, 3))
plt.show()
items.sort_values('length')[['item', 'length', 'start', 'end', 'missing_periods']].head(10)"""

_GAPS = """\
for note in analysis['notes']:
    print('-', note)
gaps = items[items['missing_periods'] > 0].sort_values('missing_periods', ascending=False)
print(f"{{len(gaps)}} items had missing periods, {{int(items['missing_periods'].sum())}} in all")
gaps[['item', 'length', 'missing_periods']].head(20)"""

_SEASONALITY = """\
measures = ['seasonal_strength', 'trend_strength']
strengths = items[['item', *measures]].dropna(how='all', subset=measures)
if len(strengths):
    ax = strengths.plot.scatter('trend_strength', 'seasonal_strength', figsize=(5, 4), alpha=0.6,
                                title='strength of trend and season per item (0..1)')
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    plt.show()
strengths.describe()"""

_INTERMITTENCY = """\
counts = items['demand_class'].value_counts()
display(counts.to_frame('items'))
dense = items.dropna(subset=['adi', 'cv2'])
if len(dense):
    ax = dense.plot.scatter('adi', 'cv2', figsize=(5, 4), alpha=0.6, logx=True,
                            title='intermittency: ADI against CV2')
    ax.axvline(1.32, color='grey', linestyle='--')
    ax.axhline(0.49, color='grey', linestyle='--')
    plt.show()"""

_BACKTESTS = """\
ITEMS = largest_items(backtests)  # or name the items to look at
candidates = [c for c in backtests['candidate'].unique() if c]
for candidate in candidates:
    for item in ITEMS[:2]:
        display(backtest_figure(backtests, candidate, item))"""

_CELLS: list[tuple[str, str]] = [
    ("md", "# Time-series exploration: {job}\n\nWritten by tabpilot's forecasting job. "
           "Everything below is read from `time_series_analysis.json` and "
           "`backtest_forecasts.parquet` beside this notebook; rerun it, or change it."),
    ("code", _SETUP),
    ("md", "## Per-item lengths\n\nThe horizon may be at most a quarter of the shortest "
           "item; items under two seasons give their season no chance to show."),
    ("code", _LENGTHS),
    ("md", "## Frequency and gaps\n\nPeriods missing inside an item, or at its ends, "
           "were filled as the request's filling says; many filled periods weaken every "
           "model."),
    ("code", _GAPS),
    ("md", "## Seasonality and trend\n\nStrengths of a classical decomposition: the share "
           "of each item's variation that its season (or trend) explains."),
    ("code", _SEASONALITY),
    ("md", "## Intermittency\n\nADI (mean interval between non-zero periods) and CV2 "
           "(squared variation of the non-zero sizes), with Syntetos & Boylan's cuts: smooth "
           "(bottom left), erratic, intermittent, lumpy."),
    ("code", _INTERMITTENCY),
    ("md", "## Backtests, per candidate\n\nEach candidate's last backtest window on the "
           "largest items: the history before it, the actual values, the forecast's mean "
           "and its quantile bands (outer band lightest). Set `ITEMS` to look at others, "
           "or pass `window=` to `backtest_figure`."),
    ("code", _BACKTESTS),
]


def exploration_notebook(folder: Path, execute: bool = True, timeout: int = 120) -> Path:
    """Write (and by default execute) the job's DataExploration.ipynb."""
    from tabpilot.reports.notebooks import write_notebook

    return write_notebook(_CELLS, folder, EXPLORATION, execute, timeout)
