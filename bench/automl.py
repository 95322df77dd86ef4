"""tabpilot beside default LightGBM, FLAML and AutoGluon on the tables of ../shared/datasets.

    python -m bench.automl --budget 60 [--datasets DIR] [--systems tabpilot,lightgbm,flaml,autogluon]
                           [--only adult,titanic] [--recorded] [--force]

(`autogluon:best_quality` may be named in --systems too.)

Every system gets the split and the metric of anchors.md (AUC binary, log loss multiclass,
RMSE regression) through bench.common, the same time budget, and a timing of its native
one-row predict. tabpilot runs in this process; LightGBM, FLAML and AutoGluon each in a
subprocess (`python -m bench.systems`), LightGBM with this interpreter, FLAML and AutoGluon
with bench/.venv-anchors (`make bench-anchors`, the versions anchors.md names). A system
that is not installed, or every system but tabpilot under --recorded, takes the figures
anchors.md recorded at this budget or, where it has none, those kept in
bench/baselines/automl-<budget>s.json, marked † in the table. anchors.md has only 60 s:
`--baselines` keeps this sweep's runs of the other systems there, in git, so a figure
measured once (an hour of AutoGluon at 300 s) serves every later session. One markdown
table with the systems side by side, fit wall time against the budget, single-row
latency, and win / tie / loss counts of every pair go to bench/results/automl-<budget>s.md
(and .json, which also resumes a stopped sweep: pairs already there are skipped unless --force).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    GREATER_IS_BETTER,
    REPO_ROOT,
    Table,
    base_parser,
    baselines_path,
    call_times_ms,
    compare,
    datasets_dir,
    error_line,
    fit_tabpilot,
    fmt,
    load_manifest,
    log,
    markdown_table,
    one_row_frames,
    prepared_split,
    read_json,
    references,
    results_path,
    score,
    select,
    write_json,
    write_results,
)
from bench.systems import LATENCY_CALLS, LATENCY_SECONDS, MISSING

SYSTEMS = ("tabpilot", "lightgbm", "flaml", "autogluon", "autogluon:best_quality")
DEFAULT_SYSTEMS = "tabpilot,lightgbm,flaml,autogluon"
ANCHORS_PYTHON = REPO_ROOT / "bench" / ".venv-anchors" / "bin" / "python"
TIMEOUT_FACTOR = 6  # anchors.md: no result when a run does not finish within 6x its budget
RECORDED = "anchors.md"
BASELINES = "bench/baselines"
NOT_RUN = (RECORDED, BASELINES)  # figures a report shows without running the system


# -- running the systems ------------------------------------------------------------------------

def run_tabpilot(folder: Path, table: Table, budget: float, workspace: Path) -> dict[str, Any]:
    """Fit tabpilot in this process, score its most accurate candidate (as the anchors'
    systems score theirs) and the one it hands out by default (`default_score`: the
    fastest within jobs.selection.FAST_TOLERANCE, often the distilled model), and time
    the most accurate on single rows."""
    from tabpilot.automl import load_model

    train, test = prepared_split(folder, table)
    record: dict[str, Any] = {"system": "tabpilot", "source": "run"}
    stage = "fit"
    try:
        automl, wall = fit_tabpilot(train, table, budget, workspace, "automl")
        record.update(job=automl.name, fit_seconds=wall)
        stage = "score"
        first = str(automl.leaderboard()["candidate"].iloc[0])
        model = load_model(automl.name, first, workspace=automl.workspace)
        record["score"] = score(model, test, table)
        handed_out = automl.best_model()
        record.update(default_candidate=handed_out.metadata.get("candidate"),
                      default_score=score(handed_out, test, table))
        stage = "latency"
        predict = model.predict if table.task == "regression" else model.predict_proba
        times = call_times_ms(predict, one_row_frames(test, table.target, LATENCY_CALLS),
                              max_seconds=LATENCY_SECONDS)
        record.update(row_ms_p50=float(np.median(times)), row_calls=len(times), status="ok",
                      best_candidate=first, best_algorithm=model.metadata.get("algorithm"))
    except Exception as exc:  # keep the sweep going; the failure is reported
        traceback.print_exc()
        record.update(status="error", error=f"{stage}: {error_line(exc)}")
    return record


def interpreter(system: str, anchors_python: Path) -> Path | None:
    """The Python that holds the system, or None when it is not installed."""
    if system == "lightgbm":
        return Path(sys.executable)
    return anchors_python if anchors_python.is_file() else None


def run_other(system: str, python: Path, folder: Path, table: Table, budget: float
              ) -> dict[str, Any]:
    """`python -m bench.systems` in a subprocess; its last stdout line is the record."""
    command = [str(python), "-m", "bench.systems", "--system", system, "--table", table.name,
               "--budget", f"{budget:g}", "--datasets", str(folder)]
    timeout = TIMEOUT_FACTOR * budget + LATENCY_SECONDS + 60
    try:
        proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"system": system, "source": "run", "status": "error",
                "error": f"did not finish within {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"system": system, "source": "run", "status": "error",
                "error": f"exit {proc.returncode}: {tail}"}
    return {**json.loads(lines[-1]), "source": "run"}


def recorded(system: str, anchor: dict[str, Any], why: str) -> dict[str, Any]:
    """anchors.md's figures for a system not run here or, where it has no score for it,
    the run kept in bench/baselines (common.references: `anchor["runs"]`)."""
    value = anchor.get(system)
    kept = anchor.get("runs", {}).get(system, {})
    if not isinstance(value, float) and kept.get("status") == "ok":
        return {**kept, "source": BASELINES, "why": why}
    record: dict[str, Any] = {"system": system, "source": RECORDED, "why": why,
                              "status": "ok" if isinstance(value, float) else "error"}
    if isinstance(value, float):
        record["score"] = value
    else:
        record["error"] = "no figure recorded"
    for column, key in (("fit s (flaml / autogluon)", "fit_seconds"),
                        ("row ms (flaml / autogluon)", "row_ms_p50")):
        parts = [p.strip() for p in str(anchor.get(column, "")).split("/")]
        at = {"flaml": 0, "autogluon": 1}.get(system)
        if at is not None and len(parts) == 2:
            try:
                record[key] = float(parts[at])
            except ValueError:
                pass
    return record


def keep_baselines(done: dict[str, dict[str, Any]], budget: float) -> Path:
    """Merge the successful runs of every system but tabpilot into
    bench/baselines/automl-<budget>s.json (a table's system run again replaces its record);
    written whole, then renamed, so a stopped write leaves the old file."""
    path = baselines_path(budget)
    kept = read_json(path)
    for table, recs in done.items():
        for system, rec in recs.items():
            if system != "tabpilot" and rec.get("status") == "ok" \
                    and rec.get("source", "run") == "run":
                kept.setdefault(table, {})[system] = {
                    **{k: v for k, v in rec.items() if k not in ("source", "python")},
                    "measured": rec.get("measured") or time.strftime("%Y-%m-%d", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".json.part")
    part.write_text(json.dumps(kept, indent=2, sort_keys=True, default=str) + "\n")
    part.replace(path)
    return path


# -- the report ---------------------------------------------------------------------------------

def _best(values: dict[str, float | None], metric: str) -> set[str]:
    """The systems with the best score, compared at anchors.md's 4 decimals."""
    scored = {s: round(v, 4) for s, v in values.items() if v is not None and np.isfinite(v)}
    if not scored:
        return set()
    top = max(scored.values()) if GREATER_IS_BETTER[metric] else min(scored.values())
    return {s for s, v in scored.items() if v == top}


def _mark(rec: dict[str, Any], key: str = "score") -> str:
    return "†" if rec.get("source") in NOT_RUN and rec.get(key) is not None else ""


def table_row(table: Table, recs: dict[str, dict[str, Any]], systems: list[str]
              ) -> list[str]:
    metric = table.metric
    values = {s: recs[s].get("score") for s in systems if s in recs}
    best = _best(values, metric)
    cells = []
    for s in systems:
        rec = recs.get(s, {})
        if rec.get("status") != "ok":
            cells.append("error" if rec.get("source") == "run" else "–")
            continue
        text = fmt(rec.get("score")) + _mark(rec)
        cells.append(f"**{text}**" if s in best else text)
    fit = " / ".join(fmt(recs.get(s, {}).get("fit_seconds"), 0)
                     + _mark(recs.get(s, {}), "fit_seconds") for s in systems)
    ms = " / ".join(fmt(recs.get(s, {}).get("row_ms_p50"), 1)
                    + _mark(recs.get(s, {}), "row_ms_p50") for s in systems)
    arrow = "↑" if GREATER_IS_BETTER[metric] else "↓"
    return [table.name, table.task, f"{metric} {arrow}", *cells, fit, ms]


def tallies(rows: list[tuple[Table, dict[str, dict[str, Any]]]], systems: list[str]
            ) -> list[list[str]]:
    """Per system: win / tie / loss against each other system, and tables where it is best."""
    out = []
    for s in systems:
        line = [s]
        for other in systems:
            if other == s:
                line.append("")
                continue
            tally = {"win": 0, "tie": 0, "loss": 0}
            for table, recs in rows:
                mine, theirs = recs.get(s, {}), recs.get(other, {})
                if theirs.get("status") != "ok" and mine.get("status") != "ok":
                    continue
                outcome = compare(mine.get("score"), theirs.get("score"), table.metric) \
                    if theirs.get("status") == "ok" else "win"
                tally[outcome or "win"] += 1
            line.append(f"{tally['win']} / {tally['tie']} / {tally['loss']}")
        n_best = sum(s in _best({k: v.get("score") for k, v in recs.items()
                                 if k in systems and v.get("status") == "ok"}, table.metric)
                     for table, recs in rows)
        line.append(str(n_best))
        out.append(line)
    return out


def fit_summary(rows: list[tuple[Table, dict[str, dict[str, Any]]]], systems: list[str],
                budget: float) -> list[str]:
    lines = []
    for s in systems:
        ratios = [recs[s]["fit_seconds"] / budget for _, recs in rows
                  if s in recs and recs[s].get("fit_seconds") is not None
                  and recs[s].get("source") == "run"]
        if ratios:
            lines.append(f"- {s}: fit wall time / budget {min(ratios):.2f}-{max(ratios):.2f} "
                         f"(median {float(np.median(ratios)):.2f}) over {len(ratios)} tables run here")
    return lines


def report(rows: list[tuple[Table, dict[str, dict[str, Any]]]], systems: list[str],
           budget: float, versions: dict[str, dict[str, str]]) -> str:
    headers = ["table", "task", "metric", *systems, f"fit s, budget {budget:g} ({' / '.join(systems)})",
               f"row ms ({' / '.join(systems)})"]
    parts = [f"## AutoML systems side by side, budget {budget:g} s ({len(rows)} tables)", "",
             markdown_table(headers, [table_row(t, recs, systems) for t, recs in rows]),
             "",
             "Scores on the 25 % test part of anchors.md's split; **bold**: best of the row "
             "(ties at 4 decimals). `row ms`: median of one-row predict(_proba) calls in "
             "process. † recorded in anchors.md or bench/baselines, not run here (system "
             "not installed, or --recorded).", "",
             "Win / tie / loss of the row's system against the column's (a system with a "
             "score beats one without):", "",
             markdown_table(["system", *[f"vs {s}" for s in systems], "best on"],
                            tallies(rows, systems)), ""]
    if any(r.get("source") == RECORDED and r.get("error") for _, recs in rows
           for r in recs.values()):
        parts.append(f"- –: no result, or no figure in anchors.md or bench/baselines for a "
                     f"budget of {budget:g} s")
    parts += fit_summary(rows, systems, budget)
    for system, found in versions.items():
        parts.append(f"- {system}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    for table, recs in rows:
        for s in systems:
            rec = recs.get(s, {})
            if rec.get("status") == "error" and rec.get("source") == "run":
                parts.append(f"- {table.name} / {s} failed: {rec.get('error')}")
    return "\n".join(parts)


# -- the sweep ----------------------------------------------------------------------------------

def shown(runs: dict[str, dict[str, Any]], systems: list[str], anchor: dict[str, Any],
          use_recorded: bool) -> dict[str, dict[str, Any]]:
    """What the report shows for one table: the runs, or anchors.md's figures for a system
    not run here (every one but tabpilot under --recorded)."""
    out = {}
    for system in systems:
        rec = runs.get(system)
        if system != "tabpilot" and (use_recorded or rec is None
                                     or rec.get("status") == MISSING):
            why = "--recorded" if use_recorded else "not installed"
            out[system] = recorded(system, anchor, why)
        elif rec is not None:
            out[system] = {**rec, "source": "run"}
    return out


def parse_systems(text: str) -> list[str]:
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SYSTEMS]
    if unknown or not wanted:
        sys.exit(f"error: unknown system(s) {', '.join(unknown) or '(none)'}; "
                 f"choose from: {', '.join(SYSTEMS)}")
    return wanted


def sweep(args: Any) -> str:
    folder = datasets_dir(args.datasets)
    manifest = load_manifest(folder)
    tables = select(manifest, args.only)
    systems = parse_systems(args.systems)
    anchors = references(folder, args.budget)
    stem = f"automl-{args.budget:g}s"
    done = read_json(results_path(stem, ".json"))  # only what ran here: anchors.md is read
    anchors_python = Path(args.anchors_python)
    for i, table in enumerate(tables, 1):
        recs = done.setdefault(table.name, {})
        for system in systems:
            python = None if system == "tabpilot" else interpreter(system, anchors_python)
            if system != "tabpilot" and (args.recorded or python is None):
                continue  # anchors.md's figure, in the report
            if recs.get(system, {}).get("status") == "ok" and not args.force:
                log(f"[{i}/{len(tables)}] {table.name} / {system}: in {stem}.json, skipped")
                continue
            log(f"[{i}/{len(tables)}] {table.name} / {system}: fitting for {args.budget:g} s ...")
            if system == "tabpilot":
                rec = run_tabpilot(folder, table, args.budget, Path(args.workspace))
            else:
                rec = run_other(system, python, folder, table, args.budget)
            recs[system] = rec
            write_json(stem, done)  # saved after every run, so a stopped sweep resumes
            log(f"    {rec.get('error') or fmt(rec.get('score'))}")
    rows = [(t, shown(done[t.name], systems, anchors.get(t.name, {}), args.recorded))
            for t in manifest if t.name in done]
    versions = {s: rec["versions"] for _, recs in rows for s, rec in recs.items()
                if rec.get("versions") and rec.get("source") in ("run", BASELINES)}
    if args.baselines:
        log(f"kept {keep_baselines(done, args.budget)}")
    text = report(rows, systems, args.budget, versions)
    md, js = write_results(stem, text, done)
    log(f"wrote {md} and {js}")
    return text


def parser(systems: str = DEFAULT_SYSTEMS):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--systems", default=systems,
                   help=f"comma-separated, of {', '.join(SYSTEMS)} (default {systems})")
    p.add_argument("--only", help="comma-separated table names (default: all)")
    p.add_argument("--recorded", action="store_true",
                   help="take every system but tabpilot from anchors.md instead of running it")
    p.add_argument("--anchors-python", default=str(ANCHORS_PYTHON),
                   help="the Python of the venv with FLAML and AutoGluon "
                        "(default bench/.venv-anchors, made by `make bench-anchors`)")
    p.add_argument("--force", action="store_true", help="rerun pairs already in the results")
    p.add_argument("--baselines", action="store_true",
                   help="keep the other systems' successful runs in bench/baselines (in git), "
                        "for later sweeps at this budget to show instead of running them")
    return p


def main(argv: list[str] | None = None) -> None:
    print(sweep(parser().parse_args(argv)))


if __name__ == "__main__":
    main()
