"""What the CLI draws on a terminal: the leaderboard table and the live job view.

The leaderboard never cuts a candidate's name (it is what `--candidate` takes): when the
terminal is too narrow for every column, the least useful columns are left out (and the
caption says which; `--wide` keeps them all). Each numeric column has one format.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tabpilot.console import PHASE_WORDS, Said, final_line
from tabpilot.jobs import status as st
from tabpilot.jobs.progress import Progress

# columns in the order they are left out on a narrow terminal (first: the first to go)
DROP_ORDER = ["rows/s", "MB", "fit s", "algorithm", "pareto", "ms/row"]
LEGEND_BEST = "* the candidate the job hands out (its BestCandidate)"
LEGEND_PARETO = "pareto: on the accuracy-latency front (no other candidate is both " \
                "more accurate and faster)"


def decimals_for(values: Iterable[Any]) -> int:
    """One number of decimals for values shown together (a column): 4 significant digits
    of the largest, at most 4 decimals (0.8123, 12.35, 1,234)."""
    finite = [abs(float(v)) for v in values if _number(v)]
    if not finite or max(finite) == 0:
        return 4
    digits = int(math.floor(math.log10(max(finite)))) + 1  # before the point
    return max(0, min(4, 4 - digits))


def fixed(value: Any, decimals: int) -> str:
    return f"{float(value):,.{decimals}f}" if _number(value) else "-"


def _number(value: Any) -> bool:
    return value is not None and not pd.isna(value) and math.isfinite(float(value))


def fit_to_width(build: Callable[[list[str]], Table], columns: list[str],
                 drop_order: list[str], width: int | None) -> tuple[Table, list[str]]:
    """`build(columns)`, leaving out columns in `drop_order` until the table fits `width`
    (None: all of them); returns the table and the columns left out."""
    columns = list(columns)
    left_out: list[str] = []
    table = build(columns)
    if width is None:
        return table, left_out
    measure = Console(width=10_000)
    for column in drop_order:
        if measure.measure(table).maximum <= width:
            break
        columns.remove(column)
        left_out.append(column)
        table = build(columns)
    return table, left_out


def leaderboard_table(board: pd.DataFrame, metric: str | None, limit: int | None = 15,
                      best: str | None = None, width: int | None = None) -> Table:
    """The leaderboard's key columns, fitted to `width` (None: every column); every metric
    is in --json and leaderboard.csv."""
    shown = board if limit is None else board.head(limit)
    metric_name = str(metric)
    obj_dec = decimals_for(shown["objective"]) if len(shown) else 4
    rows = [{
        "#": f"{'*' if r['candidate'] == best else ''}{r['rank']}",
        "candidate": str(r["candidate"]),
        "algorithm": str(r["algorithm"]),
        metric_name: fixed(r["objective"], obj_dec),
        "ms/row": fixed(r["latency_ms_p50"], 3),
        "fit s": fixed(r["fit_seconds"], 1),
        "MB": "-" if pd.isna(r["model_bytes"]) else f"{r['model_bytes'] / 1e6:,.2f}",
        "rows/s": fixed(r["throughput_rows_s"], 0),
        "pareto": "yes" if r["pareto"] else "",
    } for _, r in shown.iterrows()]
    table, left_out = fit_to_width(
        lambda columns: _table(columns, rows, metric_name),
        ["#", "candidate", "algorithm", metric_name, "ms/row", "fit s", "MB", "rows/s", "pareto"],
        DROP_ORDER, width)
    legend = [LEGEND_BEST] if any(r["#"].startswith("*") for r in rows) else []
    if "pareto" not in left_out:
        legend.append(LEGEND_PARETO)
    if left_out:
        legend.append(f"left out for the terminal's width: {', '.join(left_out)} (--wide "
                      "shows them)")
    if limit is not None and len(board) > limit:
        legend.append(f"{len(board) - limit} more: tabpilot candidates JOB")
    table.caption = "\n".join(legend) or None
    table.caption_justify = "left"
    return table


def _table(columns: list[str], rows: list[dict[str, str]], metric_name: str) -> Table:
    table = Table(title=f"Leaderboard (objective: {metric_name})")
    for c in columns:
        table.add_column(c, justify="left" if c in ("candidate", "algorithm") else "right",
                         no_wrap=True, overflow="ignore" if c == "candidate" else "ellipsis")
    for r in rows:
        table.add_row(*(r[c] for c in columns))
    return table


def print_leaderboard(console: Console, board: pd.DataFrame, metric: str | None,
                      limit: int | None = 15, best: str | None = None,
                      wide: bool = False) -> None:
    """The leaderboard, fitted to the terminal unless `wide`; a wide table on a narrow
    terminal is printed at its own width (a pipe or a file takes it whole)."""
    if board.empty:
        console.print("no candidate has completed; `tabpilot candidates JOB --all` lists the "
                      "failed ones with their reasons")
        return
    table = leaderboard_table(board, metric, limit, best, None if wide else console.width)
    if wide:
        needed = Console(width=10_000).measure(table).maximum
        width = console.width
        console.width = max(width, needed)
        try:
            console.print(table, soft_wrap=False)
        finally:
            console.width = width
    else:
        console.print(table, soft_wrap=False)


class LiveView:
    """The job's live view on a terminal (rich.live.Live renders it); lines that stay
    (what was inferred, leak warnings) go through `say` above it."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.progress: Progress | None = None
        self.say = say
        self.said = Said()

    def __call__(self, p: Progress) -> None:
        self.progress = p
        for line in self.said.new_lines(p):
            self.say(line)

    def __rich__(self) -> Group | Table:
        table = Table.grid(padding=(0, 2))
        p = self.progress
        if p is None:
            table.add_row("reading and analysing the data...")
            return table
        if p.status not in st.ACTIVE:
            return Group(Text(final_line(p)))
        bar_width = 30
        filled = int(bar_width * min(1.0, p.elapsed / p.time_limit))
        doing = PHASE_WORDS.get(p.phase, p.phase)
        table.add_row(f"[bold]{p.job}[/]", f"{p.status} / {p.secondary_status}"
                      + (f" ({doing})" if doing else ""))
        table.add_row("time", f"[{'#' * filled}{'.' * (bar_width - filled)}] "
                              f"{p.elapsed:5.0f}s elapsed, {p.remaining:4.0f}s left")
        table.add_row("trials", f"{p.done} done, {p.failed} failed, {p.running} running")
        best = "-" if p.best_value is None else f"{p.best_value:.5g} ({p.best_candidate})"
        table.add_row(f"best {p.metric}", best)
        return table
