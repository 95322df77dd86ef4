"""The Model Monitor analyzer container (`sagemaker-model-monitor-analyzer`), on
`tabpilot.monitor`'s own code.

It reads the environment the real container reads:

    dataset_source        the folder (a ProcessingInput's LocalPath) holding the data
    dataset_format        {"csv": {"header": bool}}, {"json": {"lines": bool}} or
                          {"sagemakerCaptureJson": {}} (what `DatasetFormat` gives)
    output_path           where the result files go (a ProcessingOutput's LocalPath)
    baseline_constraints  constraints.json to check against (an execution)
    baseline_statistics   statistics.json beside it
    start_time, end_time  the window of captured requests (ISO 8601), for capture data

Without `baseline_constraints` it suggests a baseline (`DefaultModelMonitor
.suggest_baseline`): statistics.json, constraints.json and baseline_sample.parquet, the
same files `tabpilot monitor baseline TABLE -o DIR` writes for the same table. With it,
it runs an execution: constraint_violations.json and the window's statistics.json. A
CSV without a header has columns `_c0`, `_c1`... as Model Monitor names them.

Model-quality analysis (`analysis_type=MODEL_QUALITY`) and the preprocessing /
postprocessing scripts the real container can run are refused with one line each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.errors import ConfigError, DataError
from tabpilot.monitor import CONSTRAINTS, SAMPLE, STATISTICS, VIOLATIONS

log = logging.getLogger("tabpilot.processing")
REQUIRED = ("dataset_source", "output_path")
REFUSED = {
    "record_preprocessor_script": "a record preprocessor script (user code in the "
                                  "analyzer) is not run by tabpilot's analyzer",
    "post_analytics_processor_script": "a post-analytics script (user code in the analyzer) "
                                       "is not run by tabpilot's analyzer",
}


def check(env: dict[str, str]) -> dict[str, Any]:
    """The request's Environment as the analyzer reads it; ConfigError for what it cannot
    run. Returns the parsed dataset format."""
    for key in REQUIRED:
        if not env.get(key):
            raise ConfigError(f"Environment.{key} is required by the Model Monitor analyzer "
                              f"(DefaultModelMonitor.suggest_baseline sets it)")
    for key, why in REFUSED.items():
        if env.get(key):
            raise ConfigError(f"Environment.{key}: {why}; leave it out")
    analysis = env.get("analysis_type", "DATA_QUALITY").upper()
    if analysis != "DATA_QUALITY":
        raise ConfigError(f"Environment.analysis_type {env['analysis_type']}: tabpilot's analyzer "
                          "runs DATA_QUALITY; for model quality use `tabpilot monitor "
                          "quality-baseline` or a ModelQuality job definition")
    if env.get("baseline_constraints") and not env.get("baseline_statistics"):
        raise ConfigError("Environment.baseline_statistics is required with "
                          "baseline_constraints (an execution compares with both)")
    return dataset_format(env.get("dataset_format"))


def dataset_format(text: str | None) -> dict[str, Any]:
    if not text:
        return {"csv": {"header": True}}
    try:
        given = json.loads(text)
    except ValueError:
        raise ConfigError(f"Environment.dataset_format is not JSON: {text[:100]!r}") from None
    if not isinstance(given, dict) or len(given) != 1 \
            or next(iter(given)) not in ("csv", "json", "sagemakerCaptureJson", "parquet"):
        raise ConfigError("Environment.dataset_format: give one of {\"csv\": {\"header\": true}}, "
                          "{\"json\": {\"lines\": true}}, {\"parquet\": {}} or "
                          f"{{\"sagemakerCaptureJson\": {{}}}}; got {text[:100]}")
    return given


def analyze(env: dict[str, str], local: Callable[[str], Path]) -> list[Path]:
    """Run the analysis `env` describes; `local` maps a container path to this machine's.
    Returns the files written."""
    from tabpilot.monitor.baseline import write_baseline

    fmt = check(env)
    source, output = local(env["dataset_source"]), local(env["output_path"])
    output.mkdir(parents=True, exist_ok=True)
    if env.get("baseline_constraints"):
        baseline = _baseline(local(env["baseline_constraints"]),
                             local(env["baseline_statistics"]))
        columns = [str(f["name"]) for f in baseline.constraints["features"]]
        data = read_dataset(source, fmt, columns, env)
        return _execution(baseline, data, output)
    data = read_dataset(source, fmt, [], env)
    log.info("suggesting a baseline from %d rows, %d columns", len(data), len(data.columns))
    write_baseline(data, output)
    return [output / STATISTICS, output / CONSTRAINTS, output / SAMPLE]


def _baseline(constraints: Path, statistics: Path):
    from tabpilot.monitor.baseline import Baseline

    loaded = []
    for path in (statistics, constraints):
        if not path.is_file():
            raise DataError(f"{path.name} is not where the environment says it is; give a "
                            "ProcessingInput holding the baseline's files")
        loaded.append(json.loads(path.read_text()))
    kept = statistics.parent / SAMPLE  # tabpilot's exact sample, when the baseline has one
    sample = pd.read_parquet(kept) if kept.is_file() else pd.DataFrame()
    return Baseline(statistics.parent, loaded[0], loaded[1], sample)


def _execution(baseline, data: pd.DataFrame, output: Path) -> list[Path]:
    from tabpilot.monitor.checks import evaluate

    execution = evaluate(baseline, data)
    (output / VIOLATIONS).write_text(json.dumps(execution.report(), indent=1))
    (output / STATISTICS).write_text(json.dumps(execution.statistics, indent=1))
    log.info("checked %d rows: %d violation(s)", len(data), len(execution.report()["violations"]))
    return [output / VIOLATIONS, output / STATISTICS]


def read_dataset(source: Path, fmt: dict[str, Any], columns: list[str],
                 env: dict[str, str]) -> pd.DataFrame:
    """The rows of every data file under `source` (a file or a folder), in name order."""
    kind, options = next(iter(fmt.items()))
    options = options or {}
    if kind == "sagemakerCaptureJson":
        from tabpilot.monitor.capture import read_capture

        start, end = (_when(env.get(k)) for k in ("start_time", "end_time"))
        frame, _ = read_capture(source, columns, start, end)
        if frame.empty:
            raise DataError(f"no captured requests under {env['dataset_source']} in the window")
        return frame
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file() and p.name[:1] not in "._")
    if not files:
        raise DataError(f"{env['dataset_source']} holds no data files; give the dataset as "
                        "the ProcessingInput whose LocalPath is dataset_source")
    parts = [_read_file(p, kind, options) for p in files]
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    if frame.empty:
        raise DataError(f"{env['dataset_source']} holds no rows")
    return frame


def _read_file(path: Path, kind: str, options: dict[str, Any]) -> pd.DataFrame:
    from tabpilot.data.read import read_table

    if kind == "csv" and not _flag(options.get("header", True)):
        frame = pd.read_csv(path, header=None, compression="infer")
        return frame.set_axis([f"_c{i}" for i in range(frame.shape[1])], axis=1)
    if kind == "json":
        return pd.read_json(path, lines=_flag(options.get("lines", True)), compression="infer")
    return read_table(path, copy=False)  # CSV with a header, Parquet: as `monitor baseline`


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"a window time {text!r} is not ISO 8601") from None
