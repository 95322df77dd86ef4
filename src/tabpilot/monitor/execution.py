"""One monitoring execution end to end: read the window (an endpoint's captured requests
between two times, or a table), check it against a baseline, write
constraint_violations.json and the window's statistics.json.

What `tabpilot monitor run` does, kept out of the CLI so that a schedule can run the same
execution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tabpilot.errors import DataError
from tabpilot.monitor import STATISTICS, VIOLATIONS
from tabpilot.monitor.baseline import Baseline, is_table
from tabpilot.monitor.capture import capture_folder, read_capture
from tabpilot.monitor.checks import Execution, evaluate


@dataclass
class Outcome:
    execution: Execution
    output: Path
    window: dict[str, Any]  # what was read: source, rows, and for an endpoint its times


def run_execution(source: str, baseline: Baseline, *, workspace: Path | None,
                  now: datetime, start: datetime | None = None, end: datetime | None = None,
                  output: Path | None = None, method: str | None = None) -> Outcome:
    """Check `source` (a table, else an endpoint's captures in [start, end)) against
    `baseline`; the files go to `output` (default
    `<workspace>/monitoring/<endpoint or table>/<now>`)."""
    from tabpilot.config import workspace_path

    window_info: dict[str, Any] = {"Source": source}
    if is_table(source):
        from tabpilot.data.read import read_table

        name = Path(source).name.split(".")[0] or "table"
        window = read_table(source)
    else:
        name = source
        columns = [str(f["name"]) for f in baseline.constraints["features"]]
        window, requests = read_capture(capture_folder(source, workspace), columns, start, end)
        window_info.update(Start=start.isoformat() if start else None,
                           End=end.isoformat() if end else None, Requests=requests)
        if window.empty:
            raise DataError(f"no captured requests of endpoint {source!r} between "
                            f"{start.isoformat() if start else 'the first'} and "
                            f"{end.isoformat() if end else 'now'}; widen --start/--end")
    window_info["Rows"] = len(window)
    execution = evaluate(baseline, window, method)
    target = output or workspace_path(workspace) / "monitoring" / name / now.strftime(
        "%Y%m%dT%H%M%SZ")
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / VIOLATIONS).write_text(json.dumps(execution.report(), indent=1))
        (target / STATISTICS).write_text(json.dumps(execution.statistics, indent=1))
    except OSError as exc:
        raise DataError(f"cannot write the execution to {target}: {exc.strerror or exc}; "
                        "give another -o folder") from None
    return Outcome(execution, target, window_info)
