"""CandidateDefinitions.ipynb and `tabpilot export`: every candidate as code that reruns it.

The job records what its candidates were (`candidate_definitions.json`: family,
hyperparameters, the trees or epochs each fold kept, threads, leaderboard value) and
how it read its data (`job.json`'s "data"). From those, the notebook has a setup section
that reloads the table and makes the job's split, then a section per candidate that
retrains it and prints its validation score beside the leaderboard's. An exported
script is the setup plus one candidate's section (and, for an ensemble or a stack, its
members').
"""

from __future__ import annotations

import json
import logging
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
from tabpilot.tasks import ProblemType

log = logging.getLogger("tabpilot.reports.definitions")

NOTEBOOK = "CandidateDefinitions.ipynb"
DEFINITIONS = "candidate_definitions.json"
DATA_COPY = "training_data.pkl"
COMBINED = ("ensemble", "stack")  # families of candidates made of other candidates


# -- what the job records ---------------------------------------------------------------
def record_inputs(source: Any, validation_data: str | None, feature_types: str | None,
                  job_dir: Path) -> dict[str, Any]:
    """Where a rerun finds the job's data: absolute paths, URIs, or a copy of a DataFrame."""

    def where(uri: str | None) -> str | None:
        if uri is None or "://" in uri:
            return uri
        return str(Path(uri).expanduser().resolve())

    if isinstance(source, pd.DataFrame):
        try:
            source.to_pickle(job_dir / DATA_COPY)
            data_input, copied = DATA_COPY, True
        except Exception:  # a frame that cannot be pickled: the notebooks cannot reload it
            log.warning("could not keep a copy of the DataFrame; the candidate notebook "
                        "will not find the data", exc_info=True)
            data_input, copied = None, False
    else:
        data_input, copied = where(str(source)), False
    return {"input": data_input, "input_is_copy": copied,
            "validation_data": where(validation_data), "feature_types": where(feature_types)}


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
        if row.family in COMBINED:
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
class _Job:
    """job.json and candidate_definitions.json of one job, as the code generator reads them."""

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


def _setup_code(job: _Job, names: list[str], job_dir_code: str) -> list[tuple[str, str]]:
    """Markdown and code cells: imports, the data as the job read it, the split, helpers."""
    split_words = {1: "a holdout (validation_fraction of the rows, stratified for "
                      "classification)"}.get(job.n_folds, f"{job.n_folds}-fold cross-validation")
    imports = "\n".join([
        "import json", "import warnings", "from pathlib import Path", "",
        "import numpy as np", "import pandas as pd", *codegen.imports(job.families(names)), "",
        "from tabpilot.data.prepare import prepare, read_training_data",
        "from tabpilot.data.split import make_split, subsample",
        "from tabpilot.features import TabularEncoder",
        "from tabpilot.metrics import score, tune_threshold",
        "from tabpilot.tasks import ProblemType",
    ])
    data = f"""JOB_DIR = {job_dir_code}
job = json.loads((JOB_DIR / "job.json").read_text())
request, resolved, data = job["request"], job["resolved"], job["data"]

# the table, read and prepared as the job read it
source = pd.read_pickle(JOB_DIR / data["input"]) if data["input_is_copy"] else data["input"]
table, n_validation_rows = read_training_data(source, request["target"], request["na_values"],
                                              data["validation_data"])
prepared = prepare(table, request["target"], ProblemType(resolved["problem_type"]),
                   resolved["metric"], request["sample_weight"], data["feature_types"])
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
               "so that every candidate below sees the rows it saw."),
        ("code", imports), ("code", data), ("code", helpers),
    ]


def _section(job: _Job, spec: dict[str, Any]) -> list[tuple[str, str]]:
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
        return [("md", head + _value_note(job, spec)), ("code", codegen.stack_code(p))]
    family = FAMILIES[p.family]
    rank = f" (rank {spec['rank']})" if spec.get("rank") else ""
    params = ", ".join(f"{k}={v!r}" for k, v in p.params.items())
    found = {"portfolio": "From the portfolio of strong configurations",
             "tpe": "Proposed by Bayesian optimisation (TPE)",
             "promoted": "Promoted to every row after a screening on a subsample"}.get(
        spec.get("source", ""), "Proposed by the search")
    head = f"## {spec['name']}{rank}: {family.label}\n\n{found}: {params}."
    if spec.get("refit_of"):
        head += (f" It is the bag `{spec['refit_of']}` collapsed into one model retrained on "
                 f"every row (n_estimators={spec.get('refit_n_estimators')!r}), and carries "
                 "the bag's out-of-fold score: the code below reruns the bag.")
    elif spec.get("trained_on") == "train+holdout":
        refit = family.refit_params(dict(p.params), spec.get("fits") or [])
        head += (" The packaged model was then retrained on every training row (train and "
                 f"holdout) with n_estimators={refit.get('n_estimators')!r}; the score here "
                 "is the holdout score it was ranked by.")
    return [("md", head + _value_note(job, spec)),
            ("code", codegen.encoder_code(p)), ("code", codegen.algorithm_code(p))]


def _value_note(job: _Job, spec: dict[str, Any]) -> str:
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


def _order(job: _Job, names: list[str]) -> list[str]:
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


def _intro(job: _Job) -> str:
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
    job = _Job(job_dir)
    names = _order(job, list(job.specs))
    cells = [("md", _intro(job)), *_setup_code(job, names, 'Path(".")  # this notebook\'s folder')]
    for name in names:
        cells += _section(job, job.specs[name])
    cells += [("md", "## Summary"),
              ("code", "print(pd.DataFrame(results).to_string(index=False))")]
    nb = new_notebook()
    nb.cells = [new_markdown_cell(text) if kind == "md" else new_code_cell(text)
                for kind, text in cells]
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


def script(job_dir: Path, candidate: str | None) -> str:
    """A standalone script with the setup and one candidate's section (an ensemble's
    members' sections first), exiting with status 1 when a score does not reproduce."""
    job = _Job(job_dir)
    if candidate not in job.specs:
        known = ", ".join(job.specs) or "(none)"
        asked = f"candidate {candidate!r} is not" if candidate else "no candidate was named and"
        raise NotFoundError(f"{asked} among the candidate definitions of job "
                            f"{job_dir.name!r}; pass --candidate with one of: {known}")
    names = _order(job, [candidate])
    cells = [("md", _intro(job).replace("notebook", "script")),
             *_setup_code(job, names, f"Path({str(job_dir.resolve())!r})")]
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
