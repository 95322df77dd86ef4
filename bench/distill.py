"""How distilled students compare with their teachers, per way of distilling.

    python -m bench.distill --budget 60 [--only credit_g,titanic] [--datasets DIR]

Reads the jobs that `bench.default_model --budget B` ran (their workspace under
bench/results), and for each table whose most accurate candidate is an ensemble or a stack
distils it again in this process, once per variant of VARIANTS (execution/distill.py), on
the job's own rows and split. Each student's out-of-fold validation objective (what the
job ranks it by) and its score on the table's test rows sit beside the teacher's and the
job's best LightGBM candidate's: the check that a choice made on some tables holds on the
others. Results go to bench/results/distill-<B>s.md (and .json).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    Table,
    base_parser,
    datasets_dir,
    error_line,
    fmt,
    job_name,
    load_manifest,
    log,
    markdown_table,
    prepared_split,
    score,
    select,
    write_results,
)
from tabpilot.artifacts import load
from tabpilot.automl import AutoML
from tabpilot.data.prepare import prepare
from tabpilot.data.split import make_split
from tabpilot.execution import distill
from tabpilot.execution.base import TrialContext, TrialTask
from tabpilot.store import Store
from tabpilot.tasks import ProblemType

TEACHERS = ("Ensemble", "Stacking")
SECONDS = 600.0  # each student's deadline: generous, the variants are compared, not timed
HEADERS = ["table", "metric", "variant", "seconds", "validation", "test", "teacher val / test",
           "best LightGBM val / test", "student ms"]


def variants(best_lightgbm: dict[str, Any]) -> dict[str, tuple[dict[str, Any], int]]:
    """Variant name: (student parameters, minimum synthetic rows per fit)."""
    return {
        "cheap": (dict(distill.STUDENT_PARAMS), 0),
        "cheap, 10k synthetic": (dict(distill.STUDENT_PARAMS), distill.RICH_SYNTHETIC),
        "rich (best LightGBM's, 10k synthetic)": (distill.rich_params(best_lightgbm),
                                                  distill.RICH_SYNTHETIC),
    }


def the_job(store: Store, table: Table, budget: float) -> str | None:
    """The newest completed job bench.default_model ran on the table at the budget."""
    stem = job_name("default", table, budget).rsplit("-", 1)[0]  # without its random end
    found = [j for j in store.list_jobs() if j.name.rsplit("-", 1)[0] == stem
             and j.status == "Completed"]
    return max(found, key=lambda j: j.created).name if found else None


def run_table(folder: Path, table: Table, budget: float, workspace: Path
              ) -> list[dict[str, Any]]:
    store = Store.for_workspace(workspace, create=False)
    name = the_job(store, table, budget)
    if name is None:
        return [{"table": table.name, "error": "no job of bench.default_model at this budget"}]
    job = AutoML.attach(name, workspace=workspace)
    board = job.leaderboard().set_index("candidate")
    teacher = str(board.index[0])
    if board.iloc[0]["algorithm"] not in TEACHERS:
        return [{"table": table.name, "error": f"the most accurate, {teacher}, is one model"}]
    train, test = prepared_split(folder, table)
    folder_of = Path(job.describe()["JobDirectory"]) / "candidates"
    lightgbm = [n for n in board.index if board.at[n, "algorithm"] == "LightGBM"
                and not n.endswith("-distilled")]
    scored = {n: (float(board.at[n, "objective"]), score(load(folder_of / n / "model"), test,
                                                         table))
              for n in [teacher, *lightgbm[:1]]}
    prepared = prepare(train, table.target, ProblemType.parse(table.task), table.metric,
                       None, None)
    ctx = TrialContext(X=prepared.X, y=prepared.y, split=make_split(
        prepared.y, prepared.problem_type.is_classification, 0.2, None, 0),
        schema=prepared.schema, problem_type=prepared.problem_type, metric=prepared.metric,
        classes=prepared.classes, job_name=name, target=table.target, n_threads=2)
    best_params = store.get_candidate(name, lightgbm[0]).params if lightgbm else {}
    rows = []
    for label, (params, minimum) in variants(best_params).items():
        out = Path(tempfile.mkdtemp(prefix="bench-distill-"))
        started = time.time()
        record: dict[str, Any] = {"table": table.name, "metric": table.metric,
                                  "variant": label, "teacher": teacher,
                                  "teacher_scores": scored[teacher],
                                  "lightgbm_scores": scored.get(lightgbm[0]) if lightgbm
                                  else None}
        try:
            result = distill.run_distillation(ctx, TrialTask(
                "student", distill.FAMILY, params, str(out / "model"), started + SECONDS,
                started + SECONDS, distill_of={"teacher": teacher, "min_synthetic": minimum,
                                               "teacher_dir": str(folder_of / teacher / "model")}))
            record.update(seconds=time.time() - started, validation=result.objective,
                          test=score(load(out / "model"), test, table),
                          latency_ms=result.latency_ms_p50)
        except Exception as exc:  # one variant's failure is a result too
            record["error"] = error_line(exc)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        log(f"  {label}: {record.get('validation')} / {record.get('test')}")
        rows.append(record)
    return rows


def _pair(scores: tuple[float, float] | None) -> str:
    return "–" if scores is None else f"{fmt(scores[0])} / {fmt(scores[1])}"


def report(records: list[dict[str, Any]], budget: float) -> str:
    rows = [[r["table"], r.get("metric", ""), r.get("variant", r.get("error", "")),
             fmt(r.get("seconds")), fmt(r.get("validation")), fmt(r.get("test")),
             _pair(r.get("teacher_scores")), _pair(r.get("lightgbm_scores")),
             fmt(r.get("latency_ms"))] for r in records]
    return (f"# Distilled students of the {budget:g} s jobs of bench.default_model\n\n"
            + markdown_table(HEADERS, rows) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--only", help="comma-separated table names (default: all)")
    args = parser.parse_args(argv)
    folder = datasets_dir(args.datasets)
    tables = select(load_manifest(folder), args.only)
    records: list[dict[str, Any]] = []
    for i, table in enumerate(tables, start=1):
        log(f"[{i}/{len(tables)}] {table.name}")
        records += run_table(folder, table, args.budget, Path(args.workspace))
    write_results(f"distill-{args.budget:g}s", report(records, args.budget),
                  {"budget": args.budget, "records": records})


if __name__ == "__main__":
    main()
