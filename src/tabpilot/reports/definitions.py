"""CandidateDefinitions.ipynb and `tabpilot export`: every candidate as code that reruns it.

The job records what its candidates were (`candidate_definitions.json`: family,
hyperparameters, the trees or epochs each fold kept, threads, leaderboard value) and
how it read its data (`job.json`'s "data"). From those, the notebook has a setup section
that reloads the table and makes the job's split, then a section per candidate that
retrains it and prints its validation score beside the leaderboard's. A rerun script
(`tabpilot export --rerun`) is the setup plus one candidate's section (and, for an
ensemble or a stack, its members'); `standalone.py` writes the default export, which
needs no tabpilot.
"""

from __future__ import annotations

import json
import logging
import os
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tabpilot.data.schema import Schema
from tabpilot.errors import NotFoundError
from tabpilot.models import FAMILIES
from tabpilot.reports import codegen
from tabpilot.reports.codegen import Pipeline
from tabpilot.reports.datafiles import COPY_MAX_BYTES
from tabpilot.reports.datafiles import record_inputs as record_inputs  # the runner's entry
from tabpilot.tasks import ProblemType

log = logging.getLogger("tabpilot.reports.definitions")

NOTEBOOK = "CandidateDefinitions.ipynb"
DEFINITIONS = "candidate_definitions.json"
COMBINED = ("ensemble", "stack")  # families of candidates made of other candidates
DISTILLED = "distilled"  # the source of a student fitted to another candidate's predictions


# -- what the job records (its data: datafiles.record_inputs) -------------------------
def trained_definitions(board: pd.DataFrame, rows: list[Any], details: dict[str, dict]
                        ) -> list[dict[str, Any]]:
    """The completed candidates, best first (ensembles and stacks after the candidates they
    combine).

    `details` holds each trial's result details (per-fold fit records, threads); for a
    candidate without them, its model's metadata supplies them.
    """
    by_name = {r.name: r for r in rows}
    out, ensembles = [], []
    for rank, name in enumerate(board["candidate"], start=1):
        row = by_name[name]
        spec: dict[str, Any] = {"name": name, "family": row.family, "params": row.params,
                                "rank": rank, "objective": row.objective,
                                "source": row.source, "trained_on": row.trained_on}
        if row.family in COMBINED or row.source == DISTILLED:
            if row.source == DISTILLED:  # rerun by the job's own code, with its threads
                found = details.get(name) or _metadata_details(row.artifact_dir)
                spec["n_threads"] = found.get("n_threads", 1)
                spec["fits"] = found.get("infos") or found.get("fits")
            ensembles.append(spec)
            continue
        found = details.get(name) or _metadata_details(row.artifact_dir)
        fits = found.get("infos") or found.get("fits")
        if fits and fits[0].get("refit_of") in by_name:
            # one model refit on every row, ranked by its bag's out-of-fold score: the
            # code reruns the bag (which reproduces that score)
            spec["refit_of"] = parent = fits[0]["refit_of"]
            spec["refit_n_estimators"] = fits[0].get("n_estimators")
            found = details.get(parent) or _metadata_details(by_name[parent].artifact_dir)
            fits = found.get("infos") or found.get("fits")
        spec["fits"] = fits
        spec["n_threads"] = found.get("n_threads", 1)
        spec["train_rows"] = found.get("train_rows")
        out.append(spec)
    return out + ensembles


def _metadata_details(artifact_dir: str | None) -> dict[str, Any]:
    path = Path(artifact_dir or "") / "metadata.json"
    if not artifact_dir or not path.is_file():
        return {}
    meta = json.loads(path.read_text())
    return {} if meta.get("refit_of") else meta  # a refit's fits are not the scored ones


def portfolio_definitions(proposals: list[Any]) -> list[dict[str, Any]]:
    """Candidates the search would try first, untrained."""
    return [{"name": f"{p.family}-{p.number:03d}", "family": p.family, "params": p.params,
             "rank": None, "objective": None, "source": p.source} for p in proposals]


def save_definitions(job_dir: Path, candidates: list[dict[str, Any]], n_folds: int,
                     n_threads: int, trained: bool) -> Path:
    path = job_dir / DEFINITIONS
    path.write_text(json.dumps({"trained": trained, "split": {"n_folds": n_folds},
                                "n_threads": n_threads, "candidates": candidates},
                               indent=1, default=str))
    return path


# -- the code ---------------------------------------------------------------------------
class JobDefinitions:
    """job.json and candidate_definitions.json of one job, as the code generators read them
    (this module's notebook and rerun script, standalone.py's export)."""

    def __init__(self, job_dir: Path) -> None:
        self.dir = job_dir
        path = job_dir / DEFINITIONS
        if not path.is_file():
            raise NotFoundError(f"job {job_dir.name!r} has no candidate definitions; a job "
                                "writes them when it ends (jobs of tabpilot before 0.2 do not)")
        self.job = json.loads((job_dir / "job.json").read_text())
        self.definitions = json.loads(path.read_text())
        resolved, request = self.job["resolved"], self.job["request"]
        self.problem_type = ProblemType(resolved["problem_type"])
        self.metric = resolved["metric"]
        self.schema = Schema.from_dict(resolved["schema"])
        self.n_classes = len(resolved.get("classes") or [])
        self.weighted = bool(request.get("sample_weight"))
        self.seed = int(request.get("seed", 0))
        self.trained = bool(self.definitions["trained"])
        self.n_folds = int(self.definitions["split"]["n_folds"])
        self.specs = {c["name"]: c for c in self.definitions["candidates"]}

    def pipeline(self, spec: dict[str, Any]) -> Pipeline:
        family = spec["family"]
        return Pipeline(
            name=spec["name"], family=family, params=dict(spec["params"]),
            problem_type=self.problem_type, n_classes=self.n_classes, schema=self.schema,
            seed=self.seed, weighted=self.weighted, fits=spec.get("fits"),
            train_rows=spec.get("train_rows"),
            n_threads=int(spec.get("n_threads") or self.definitions.get("n_threads") or 1),
            objective=spec.get("objective"),
            members=dict(spec["params"].get("members", {})) if family == "ensemble" else {},
            stacker=dict(spec["params"]) if family == "stack" else {})

    def families(self, names: list[str]) -> set[str]:
        return {self.specs[n]["family"] for n in names}


def known_candidate(job: JobDefinitions, candidate: str | None) -> str:
    """`candidate`, when the job defines it; else a NotFoundError listing those it does."""
    if candidate not in job.specs:
        known = ", ".join(job.specs) or "(none)"
        asked = f"candidate {candidate!r} is not" if candidate else "no candidate was named and"
        raise NotFoundError(f"{asked} among the candidate definitions of job "
                            f"{job.dir.name!r}; pass --candidate with one of: {known}")
    return candidate


_WHERE = ("Each input is read from the location given here, else from where the job read "
          "it, else from the copy the job kept in its folder (of a DataFrame always, of a "
          f"file up to {COPY_MAX_BYTES // 2**20} MB). ")
_FOLDER = {False: "The job folder is the one around this notebook, found from the "
                  "notebook's file, the working directory, or where the job wrote it.",
           True: "The job folder is found from this script's folder (by the path from it "
                 "when `tabpilot export -o` wrote it), the working directory, or where the "
                 "job was when the script was exported."}
_PARAMETERS = """# Where to find the job's folder and data. None: found as said above. Set one here, or
# the environment variable named, to read it from elsewhere (a path or URI).
JOB_DIR = os.environ.get("TABPILOT_JOB_DIR")  # the job's folder (it holds job.json)
DATA = os.environ.get("TABPILOT_DATA")  # the training table
VALIDATION_DATA = os.environ.get("TABPILOT_VALIDATION_DATA")  # the validation table, if any
FEATURE_TYPES = os.environ.get("TABPILOT_FEATURE_TYPES")  # the feature types file, if any"""


def _locate_code(job: JobDefinitions, near: str, one_line_errors: bool) -> str:
    """Code that sets JOB_DIR and `inputs` (datafiles.find_job_dir and job_inputs)."""
    name = job.job["request"].get("name") or job.dir.name  # as job.json names it
    lines = [
        f"JOB_DIR = find_job_dir({name!r}, JOB_DIR,",
        f"                       near={near},",
        f"                       recorded={str(job.dir.resolve())!r})",
        'job = json.loads((JOB_DIR / "job.json").read_text())',
        "inputs = job_inputs(JOB_DIR, job[\"data\"], source=DATA, "
        "validation_data=VALIDATION_DATA,",
        "                    feature_types=FEATURE_TYPES)",
    ]
    if one_line_errors:  # a script ends with one line, as the tabpilot CLI does
        lines = (['HERE = Path(__file__).resolve().parent if "__file__" in globals() '
                  'else Path.cwd()', "try:"] + ["    " + line for line in lines] +
                 ["except TabpilotError as exc:",
                  '    print(f"error: {exc}", file=sys.stderr)',
                  "    raise SystemExit(2) from None"])
    return "\n".join(lines)


def _setup_code(job: JobDefinitions, names: list[str], near: str, script: bool
                ) -> list[tuple[str, str]]:
    """Markdown and code cells: where the data is, imports, the data as the job read it,
    the split, helpers."""
    split_words = {1: "a holdout (validation_fraction of the rows, or when None "
                      "holdout_fraction's share, stratified for classification)"}.get(
        job.n_folds, f"{job.n_folds}-fold cross-validation")
    imports = "\n".join([
        "import json", "import os", *(["import sys"] if script else []), "import warnings",
        "from pathlib import Path", "",
        "import numpy as np", "import pandas as pd", *codegen.imports(job.families(names)), "",
        "from tabpilot.data.prepare import prepare, read_training_data",
        "from tabpilot.data.split import make_split, subsample",
        *(["from tabpilot.errors import TabpilotError"] if script else []),
        "from tabpilot.features import TabularEncoder",
        "from tabpilot.metrics import score, tune_threshold",
        "from tabpilot.reports.datafiles import find_job_dir, job_inputs",
        "from tabpilot.tasks import ProblemType",
    ])
    data = f"""{_locate_code(job, near, script)}
request, resolved = job["request"], job["resolved"]
print(f"job folder {{JOB_DIR}}; training data {{inputs.source}}")
if inputs.note:
    print(f"note: {{inputs.note}}")

# the table, read and prepared as the job read it
table, n_validation_rows = read_training_data(inputs.source, request["target"],
                                              request["na_values"], inputs.validation_data)
prepared = prepare(table, request["target"], ProblemType(resolved["problem_type"]),
                   resolved["metric"], request["sample_weight"], inputs.feature_types,
                   request.get("text_column"))
assert prepared.schema.to_dict() == resolved["schema"], "the table changed since the job read it"
X, y, weights, classes = prepared.X, prepared.y, prepared.weights, prepared.classes
metric = prepared.metric

# the job's split: {split_words}
split = make_split(y, prepared.problem_type.is_classification, request["validation_fraction"],
                   n_folds={job.n_folds}, seed=request["seed"], n_valid_rows=n_validation_rows)
valid_rows = split.validation_rows()  # every fold's validation rows, fold after fold
print(f"{{len(y)}} rows, {{len(split.folds)}} fold(s), {{len(valid_rows)}} validation rows; "
      f"objective {{metric.name}}")"""
    helpers = '''predictions = {}  # each candidate's out-of-fold validation predictions
results = []


def new_predictions():
    """NaN everywhere: each fold's model fills in its validation rows."""
    return np.full((len(y), len(classes)) if classes else (len(y),), np.nan)


def probabilities(model, rows):
    """Class probabilities over every class of the job (a fold may lack a rare class)."""
    proba = np.asarray(model.predict_proba(rows), dtype=np.float64)
    full = np.zeros((len(proba), len(classes)))
    full[:, np.asarray(model.classes_, dtype=int)] = proba
    return full


def check(name, pred, leaderboard=None, tolerance=None, sample_weights=True):
    """Score the validation predictions as the job did; compare with the leaderboard."""
    truth, p = y[valid_rows], pred[valid_rows]
    w = weights[valid_rows] if weights is not None and sample_weights else None
    threshold = tune_threshold(metric, truth, p, w) if len(classes or []) == 2 else None
    value = score(metric, truth, p, w, threshold)
    row = {"candidate": name, metric.name: value, "leaderboard": leaderboard}
    if leaderboard is None:
        print(f"{name}: validation {metric.name} = {value:.10g}")
    else:
        row["difference"] = abs(value - leaderboard)
        row["reproduced"] = bool(row["difference"] <= tolerance)
        verdict = "reproduced" if row["reproduced"] else "DIFFERS"
        print(f"{name}: validation {metric.name} = {value:.10g}, leaderboard {leaderboard:.10g}, "
              f"difference {row['difference']:.1e} (tolerance {tolerance:g}): {verdict}")
    results.append(row)
    return value'''
    return [
        ("md", "## Setup\n\nThe job's own reading, preparation and split (`tabpilot.data`), "
               "so that every candidate below sees the rows it saw. " + _WHERE
               + _FOLDER[script]),
        ("code", imports), ("parameters", _PARAMETERS), ("code", data), ("code", helpers),
    ]


def _section(job: JobDefinitions, spec: dict[str, Any]) -> list[tuple[str, str]]:
    if spec.get("source") == DISTILLED:
        teacher = spec["params"]["distilled_from"]
        head = (f"## {spec['name']}: LightGBM distilled from `{teacher}`\n\nOne LightGBM "
                f"model fitted to `{teacher}`'s predictions (blended with the labels) on the "
                "training rows and on synthetic rows near them, so that it answers like "
                "its teacher at a fraction of the latency. The code reruns the job's own "
                "distillation (`tabpilot.execution.distill`, whose docstring says how it "
                "is scored without ever scoring a student on rows it learned from) with "
                f"the teacher's packaged model.\n\nLeaderboard {job.metric}: "
                f"{spec['objective']:.10g}.")
        return [("md", head), ("code", codegen.distill_code(spec))]
    p = job.pipeline(spec)
    if p.family == "ensemble":
        members = ", ".join(f"`{m}` ({w:.3g})" for m, w in p.members.items())
        head = (f"## {spec['name']}: ensemble\n\nA weighted average of {members}, chosen by "
                "greedy ensemble selection on the validation predictions.")
        return [("md", head + _value_note(job, spec)), ("code", codegen.ensemble_code(p))]
    if p.family == "stack":
        members = ", ".join(f"`{m}`" for m in p.stacker["members"])
        head = (f"## {spec['name']}: stack\n\nA level-2 {p.stacker['stacker']} trained on the "
                f"validation predictions of {members}, and scored out of fold over the same "
                "folds (each fold's predictions from a stacker that did not see its rows).")
        if p.stacker.get("pruned"):
            dropped = ", ".join(f"`{m}`" for m in p.stacker["pruned"])
            head += (f" Pruned from it, the slowest first: {dropped} (the stacker scored no "
                     "worse out of fold without them).")
        return [("md", head + _value_note(job, spec)), ("code", codegen.stack_code(p))]
    family = FAMILIES[p.family]
    rank = f" (rank {spec['rank']})" if spec.get("rank") else ""
    params = ", ".join(f"{k}={v!r}" for k, v in p.params.items())
    found = {"portfolio": "From the portfolio of strong configurations",
             "tpe": "Proposed by Bayesian optimisation (TPE)",
             "promoted": "Promoted to every row after a screening on a subsample"}.get(
        spec.get("source", ""), "Proposed by the search")
    head = f"## {spec['name']}{rank}: {family.label}\n\n{found}: {params}."
    if spec.get("refit_of") and job.n_folds > 1:
        head += (f" It is the bag `{spec['refit_of']}` collapsed into one model retrained on "
                 f"every row (n_estimators={spec.get('refit_n_estimators')!r}), and carries "
                 "the bag's out-of-fold score: the code below reruns the bag.")
    elif spec.get("refit_of"):
        head += (f" It is `{spec['refit_of']}` retrained on every training row, the "
                 f"holdout's too (n_estimators={spec.get('refit_n_estimators')!r}), with "
                 "the encoder fitted on the training part, and carries its holdout score: "
                 "the code below reruns it on the training part.")
    elif spec.get("trained_on") == "train+holdout":
        refit = family.refit_params(dict(p.params), spec.get("fits") or [])
        head += (" The packaged model was then retrained on every training row (train and "
                 f"holdout) with n_estimators={refit.get('n_estimators')!r}; the score here "
                 "is the holdout score it was ranked by.")
    return [("md", head + _value_note(job, spec)),
            ("code", codegen.encoder_code(p)), ("code", codegen.algorithm_code(p))]


def _value_note(job: JobDefinitions, spec: dict[str, Any]) -> str:
    p = job.pipeline(spec)
    if spec.get("objective") is None:
        return ("\n\nNot trained by the job: the code trains it with early stopping on "
                "each fold's validation part, as the search would.")
    if not p.reproduces:
        return ("\n\nThe job did not record the trees each fold kept; the code trains with "
                "early stopping, so its score may differ from the leaderboard's "
                f"{spec['objective']:.6g}.")
    tolerance = codegen.TOLERANCE.get(p.family, codegen.EXACT)
    return (f"\n\nLeaderboard {job.metric}: {spec['objective']:.10g}; the code reproduces it "
            f"to {tolerance:g}.")


def _order(job: JobDefinitions, names: list[str]) -> list[str]:
    """Members before the ensembles and stacks that combine them (an ensemble may hold a
    stack, whose members come first)."""
    out: list[str] = []

    def add(name: str) -> None:
        spec = job.specs[name]
        for member in spec["params"].get("members", {}) if spec["family"] in COMBINED else []:
            if member not in out and member in job.specs:
                add(member)
        if name not in out:
            out.append(name)

    for name in names:
        add(name)
    return out


def _intro(job: JobDefinitions) -> str:
    title = f"# Candidate definitions: {job.dir.name}\n\n"
    if job.trained:
        return title + (
            "Written by tabpilot after training. Each section is one candidate from the "
            "leaderboard, best first: its preprocessing and its algorithm as plain code, "
            "retrained on the job's split with the trees each fold kept. Run the notebook "
            "top to bottom to reproduce every validation score; change a section to try "
            "your own variant.")
    return title + (
        "Written by tabpilot with `--generate-candidates-only`: no candidate was trained. "
        "Each section is a pipeline the search would try first (its portfolio), with the "
        "code to train and validate it on the job's split.")


def notebook(job_dir: Path) -> nbformat.NotebookNode:
    job = JobDefinitions(job_dir)
    names = _order(job, list(job.specs))
    # VS Code and Jupyter tell the kernel the notebook's file (papermill: JOB_DIR)
    near = '[globals().get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")]'
    cells = [("md", _intro(job)), *_setup_code(job, names, near, script=False)]
    for name in names:
        cells += _section(job, job.specs[name])
    cells += [("md", "## Summary"),
              ("code", "print(pd.DataFrame(results).to_string(index=False))")]
    nb = new_notebook()
    nb.cells = [new_markdown_cell(text) if kind == "md" else new_code_cell(text)
                for kind, text in cells]
    for cell, (kind, _) in zip(nb.cells, cells, strict=True):
        if kind == "parameters":  # papermill's -p JOB_DIR ... lands after it
            cell.metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def write_notebook(job_dir: Path) -> Path:
    path = job_dir / NOTEBOOK
    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(notebook(job_dir), tmp)
    tmp.replace(path)
    return path


def _comment(line: str) -> str:
    if not line:
        return "#"
    return "\n".join(textwrap.wrap(line, 92, initial_indent="# ", subsequent_indent="# "))


def script(job_dir: Path, candidate: str | None, location: Path | None = None) -> str:
    """A script that reruns one candidate in its job, with tabpilot (`tabpilot export
    --rerun`): the setup and the candidate's section (an ensemble's members' sections
    first), exiting with status 1 when a score does not reproduce. `standalone.py` writes
    the script that needs no tabpilot.

    `location`: where the script will be written; it then finds the job folder by the
    same relative path when both are copied elsewhere together.
    """
    job = JobDefinitions(job_dir)
    names = _order(job, [known_candidate(job, candidate)])
    near = "[HERE]"
    if location is not None:
        try:
            relative = os.path.relpath(job_dir.resolve(), location.resolve().parent)
            near = f"[HERE / {Path(relative).as_posix()!r}, HERE]"
        except ValueError:  # another drive (Windows): no relative path
            pass
    cells = [("md", _intro(job).replace("notebook", "script")),
             *_setup_code(job, names, near, script=True)]
    for name in names:
        cells += _section(job, job.specs[name])
    cells.append(("code", "print(pd.DataFrame(results).to_string(index=False))\n"
                          "if any(r.get('reproduced') is False for r in results):\n"
                          "    raise SystemExit('a validation score differs from the "
                          "leaderboard')"))
    family = job.specs[candidate]["family"]
    label = FAMILIES[family].label if family in FAMILIES else family
    parts = [f'"""{candidate} ({label}) of tabpilot job {job_dir.name}, as a standalone '
             'script (`tabpilot export`)."""']
    for kind, text in cells:
        if kind == "md":
            parts.append("\n".join(_comment(line) for line in text.splitlines()))
        else:
            parts.append(text)
    return "\n\n".join(parts) + "\n"
