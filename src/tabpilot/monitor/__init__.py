"""Data-quality monitoring in the shape of SageMaker Model Monitor.

A baseline (`baseline.py`) is a folder with `statistics.json` and `constraints.json` in
Model Monitor's schema (`statistics.py`, `constraints.py`) plus `baseline_sample.parquet`,
a bounded sample of each numeric column kept so that drift is measured exactly (the
two-sample Kolmogorov-Smirnov distance) rather than against a sketch. An execution
(`checks.py`) compares a window of data, read from an endpoint's capture files
(`capture.py`) or from a table, with a baseline; `execution.py` reads the window, checks
it and writes `constraint_violations.json`.

Nothing here trains, serves or schedules: schedules and the SageMaker facade's
monitoring operations are built on these modules.
"""

from __future__ import annotations

STATISTICS = "statistics.json"
CONSTRAINTS = "constraints.json"
SAMPLE = "baseline_sample.parquet"
VIOLATIONS = "constraint_violations.json"
JOB_FOLDER = "monitoring"  # a job's baseline: <job dir>/monitoring/

COMPLETED = "Completed"
WITH_VIOLATIONS = "CompletedWithViolations"
