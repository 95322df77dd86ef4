"""`tabpilot export`: one candidate as a script that runs without tabpilot.

The script carries all that the candidate is: the job's settings (target, classes,
metric, seed, split), tabpilot's encoder and split code (their source copied in, so the
preprocessing cannot drift from what the job ran), the algorithm with every
hyperparameter and the trees or epochs each fold kept (written by `codegen.py`, the
generator the CandidateDefinitions notebook uses), and the scoring. It needs pandas,
numpy, scikit-learn (with its joblib and scipy) and the algorithm's own library.

The validation split is not stored: the script rebuilds it from the table with the
job's seed and scikit-learn's splitters (the copied `data/split.py`), which gives the
job's folds for the same table in the same row order, so `train` prints the
leaderboard's score. A stack is exported as its members and its level-2 model (the
copied `ensemble/stacking.py`), an ensemble as its members (single models and at most
one stack) and their weights; members are never refit, as the job combined them before
its refit. A distilled student is refused, naming what can be exported.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tabpilot
from tabpilot import metrics as metrics_module
from tabpilot.data import split as split_module
from tabpilot.data.read import DEFAULT_NA_VALUES
from tabpilot.data.schema import ColumnKind
from tabpilot.errors import ConfigError
from tabpilot.features import builder, columns, encoder, tfidf
from tabpilot.metrics import METRICS
from tabpilot.models import FAMILIES
from tabpilot.reports import codegen
from tabpilot.reports.codegen import Code, Pipeline
from tabpilot.reports.definitions import COMBINED, DISTILLED, JobDefinitions, known_candidate
from tabpilot.reports.standalone_runtime import RUNTIME
from tabpilot.tasks import ProblemType

# each metric's function, as tabpilot.metrics defines it (the tests compare the two)
_METRIC_FN = {
    "Accuracy": "lambda y, p, w: skm.accuracy_score(y, p, sample_weight=w)",
    "BalancedAccuracy": "lambda y, p, w: skm.balanced_accuracy_score(y, p, sample_weight=w)",
    **{name: f"lambda y, labels, w: skm.{fn}(y, labels, sample_weight=w, zero_division=0)"
       for name, fn in [("F1", "f1_score"), ("Precision", "precision_score"),
                        ("Recall", "recall_score")]},
    **{name: f"lambda y, labels, w: skm.{fn}(y, labels, average='macro', sample_weight=w, "
             "zero_division=0)"
       for name, fn in [("F1macro", "f1_score"), ("PrecisionMacro", "precision_score"),
                        ("RecallMacro", "recall_score")]},
    "AUC": "_auc", "LogLoss": "_logloss", "RMSE": "_rmse",
    "MAE": "lambda y, p, w: skm.mean_absolute_error(y, p, sample_weight=w)",
    "MSE": "lambda y, p, w: skm.mean_squared_error(y, p, sample_weight=w)",
    "R2": "lambda y, p, w: skm.r2_score(y, p, sample_weight=w)",
}
STACKING = "tabpilot.ensemble.stacking"  # copied into the script of a stack
_SCORING = ("_auc", "_logloss", "_rmse", "labels_from_proba", "score", "tune_threshold")
_LIBRARIES = ("lightgbm", "xgboost", "catboost")  # families that need their own library


def standalone(job_dir: Path, candidate: str | None) -> str:
    """The script's source for `candidate` of the job in `job_dir`.

    Raises NotFoundError for an unknown candidate and ConfigError for one that cannot run
    without tabpilot (a distilled student, or a combination holding one), naming those
    that can.
    """
    job = JobDefinitions(job_dir)
    name = known_candidate(job, candidate)
    spec = job.specs[name]
    plan = _plan(job, spec)
    members = plan.singles
    parts = [_header(job, spec, members), _imports(plan), _settings(job, spec, plan)]
    for what in _modules(plan):
        if what == STACKING:  # its settings are keyed by the problem type
            parts.append("# -- tabpilot.tasks.ProblemType, copied " + "-" * 53 + "\n"
                         + inspect.getsource(ProblemType).split("\n\n    @property\n    def "
                                                                "autopilot_name")[0])
        parts.append(f"# -- {what}, copied unchanged " + "-" * (70 - len(what)) + "\n"
                     + _embedded(what)[1])
    parts.append(scoring_code(job.metric))
    parts.append(_shared_code(job, members))
    for member in members:
        parts.append(_member_code(job, plan, member))
    parts.append(_member_table(job, plan))
    parts.append(RUNTIME.strip())
    return "\n\n\n".join(part.strip("\n") for part in parts if part) + "\n"


@dataclass
class _Plan:
    """What a candidate is made of: single models, at most one stack over some of them,
    and the weights of what the candidate averages (itself alone: weight 1)."""

    singles: list[dict[str, Any]]
    stack: dict[str, Any] | None
    weights: dict[str, float]


def exportable(job: JobDefinitions) -> list[str]:
    """Candidates made of single models, a stack of them, or an ensemble of those."""
    return [n for n, s in job.specs.items() if _refusal(job, s) is None]


def _refusal(job: JobDefinitions, spec: dict[str, Any], inside: str | None = None
             ) -> str | None:
    """Why `spec` cannot be exported (None: it can); `inside`: the family holding it."""
    if spec.get("source") == DISTILLED:
        return f"{spec['name']!r} is distilled from another candidate"
    if spec["family"] in COMBINED:
        if inside is not None and (inside == "stack" or spec["family"] == "ensemble"):
            return f"{spec['name']!r} is an {spec['family']} inside a {inside}"
        for member in spec["params"].get("members", {}):
            inner = job.specs.get(member)
            if inner is None:
                return f"its member {member!r} has no definition"
            why = _refusal(job, inner, inside=spec["family"])
            if why is not None:
                return why
        return None
    if spec["family"] not in FAMILIES:
        return f"{spec['name']!r} is of an unknown family {spec['family']!r}"
    if FAMILIES[spec["family"]].style.startswith("text_"):  # tabpilot/text's featurizer
        return f"{spec['name']!r} is a text candidate, not exported as a script yet"
    return None


def _plan(job: JobDefinitions, spec: dict[str, Any]) -> _Plan:
    why = _refusal(job, spec)
    if why is not None:
        ok = ", ".join(exportable(job)) or "(none)"
        raise ConfigError(f"candidate {spec['name']!r} cannot run without tabpilot: {why}; "
                          f"pass --candidate with one of: {ok} (or --rerun for a script that "
                          "reruns it with tabpilot)")
    weights = dict(spec["params"]["members"]) if spec["family"] == "ensemble" else \
        {spec["name"]: 1.0}
    singles: dict[str, dict[str, Any]] = {}
    stack = None
    for name in weights:
        inner = job.specs[name]
        if inner["family"] == "stack":
            stack = inner
            singles.update((m, job.specs[m]) for m in inner["params"]["members"])
        else:
            singles[name] = inner
    return _Plan(list(singles.values()), stack, weights)


# -- the parts of the script --------------------------------------------------------------
def _header(job: JobDefinitions, spec: dict[str, Any], members: list[dict[str, Any]]) -> str:
    label = {"ensemble": "Ensemble", "stack": "Stacking"}.get(spec["family"]) or \
        FAMILIES[spec["family"]].label
    libraries = sorted({m["family"] for m in members if m["family"] in _LIBRARIES})
    needs = ", ".join(["pandas", "numpy", "scikit-learn", *libraries])
    name = job.job["request"].get("name") or job.dir.name
    return f'''#!/usr/bin/env python3
"""{spec["name"]} ({label}) of tabpilot job {name}: a standalone script (`tabpilot export`).

Needs Python 3.11+ and only {needs}; not tabpilot.

    python THIS.py train DATA.csv [--model-out model.joblib] [--check]
        Retrain on DATA (the job's table gives the job's split and the leaderboard's
        score), print the validation score and save the fitted pipeline.
    python THIS.py predict model.joblib NEW.csv [-o predictions.csv]
        Predict with a saved pipeline (standard output without -o).

`python THIS.py train --help` lists the options (another target or weight column, a
separate validation table). The saved pipeline refers to this script's own functions:
load it with this script (`predict`). The encoder and split code below are tabpilot's
own, copied.
"""'''


_STDLIB = {"argparse", "bz2", "collections", "dataclasses", "enum", "gzip", "lzma", "math",
           "os", "re", "sys", "time", "typing", "warnings", "weakref"}


def _modules(plan: _Plan) -> list[str]:
    """tabpilot's modules whose code the script holds, copied."""
    return [columns.__name__, tfidf.__name__, encoder.__name__, split_module.__name__,
            *([STACKING] if plan.stack else [])]


def _imports(plan: _Plan) -> str:
    lines = {"import argparse", "import bz2", "import gzip", "import lzma", "import os",
             "import sys",
             "import joblib", "from collections import namedtuple",
             "from sklearn import metrics as skm"}
    for module in _modules(plan):
        lines.update(_embedded(module)[0])
    if plan.stack:
        lines.add("from enum import StrEnum")
    lines.update(codegen.imports({m["family"] for m in plan.singles}))
    std = {x for x in lines if x.split()[1].split(".")[0] in _STDLIB}

    def order(x: str) -> tuple[bool, str]:
        return x.startswith("from "), x.split()[1]

    return "\n".join(["from __future__ import annotations", "", *sorted(std, key=order), "",
                      *sorted(lines - std, key=order)])


def _settings(job: JobDefinitions, spec: dict[str, Any], plan: _Plan) -> str:
    request, resolved = job.job["request"], job.job["resolved"]
    validation_table = bool((job.job.get("data") or {}).get("validation_data")
                            or request.get("validation_data"))
    p = job.pipeline(plan.singles[0])
    objective = spec.get("objective")
    tolerance = max(codegen.TOLERANCE.get(m["family"], codegen.EXACT)
                    for m in [*plan.singles, *([plan.stack] if plan.stack else [])])
    reproduces = objective is not None and all(job.pipeline(m).reproduces
                                               for m in plan.singles)
    values = [
        ("JOB", request.get("name") or job.dir.name, "the tabpilot job"),
        ("CANDIDATE", spec["name"], "its candidate"),
        ("TARGET", request["target"], "--target overrides it"),
        ("SAMPLE_WEIGHT", request.get("sample_weight"), "a column of row weights; --sample-weight"),
        ("NA_VALUES", [*DEFAULT_NA_VALUES, *(request.get("na_values") or [])],
         "strings read as missing"),
        ("PROBLEM_TYPE", job.problem_type.value, None),
        ("CLASSES", resolved.get("classes"), "class i is CLASSES[i]; None: regression"),
        ("FEATURES", p.schema.features, "the columns the model reads"),
        ("SEED", job.seed, "of the split and of every model"),
        ("N_FOLDS", job.n_folds, "1: a holdout of VALIDATION_FRACTION of the rows"),
        ("VALIDATION_FRACTION", request.get("validation_fraction"),
         "None: make_split's holdout_fraction of the rows"),
        ("VALIDATION_TABLE", validation_table, "the job validated on a separate table"),
        ("LEADERBOARD", objective if reproduces else None, "the leaderboard's value"),
        ("TOLERANCE", tolerance, "of the reproduced score"),
    ]
    lines = ["# -- the job " + "-" * 80]
    for key, value, note in values:
        text = f"{key} = {codegen.literal(value, len(key) + 3)}"
        lines.append(text + (f"  # {note}" if note and "\n" not in text else ""))
    return "\n".join(lines)


def scoring_code(metric_name: str) -> str:
    """The script's scoring: tabpilot.metrics' functions, copied, and METRIC (needs
    numpy as np, collections.namedtuple and sklearn's metrics as skm)."""
    metric = METRICS[metric_name]
    fns = "\n\n\n".join(inspect.getsource(getattr(metrics_module, f)).strip()
                         for f in _SCORING)
    return "\n".join([
        "# -- scoring: tabpilot.metrics, copied " + "-" * 54,
        'Metric = namedtuple("Metric", "name greater_is_better needs_labels fn")', "", "",
        fns, "", "",
        f"METRIC = Metric({metric.name!r}, {metric.greater_is_better}, {metric.needs_labels},",
        f"                {_METRIC_FN[metric.name]})",
    ])


def _suffix(name: str) -> str:
    return name.replace("-", "_")


def _shared_code(job: JobDefinitions, members: list[dict[str, Any]]) -> str:
    """What native-style members share: the encoded columns holding category codes (the
    same for every such encoder of the schema), and CatBoost's input."""
    native = [m for m in members if FAMILIES[m["family"]].style == "native"]
    if not native:
        return ""
    schema = job.pipeline(native[0]).schema
    enc = builder.build_encoder(schema, "native")
    cats = enc.categorical_indices_ if schema.columns(ColumnKind.CATEGORICAL) else []
    lines = ["# -- the encoded columns holding category codes (native-categorical algorithms)",
             f"categorical = {cats}"]
    if any(m["family"] == "catboost" for m in members):
        lines += ["", "", codegen.CATBOOST_POOL.strip()]
    return "\n".join(lines)


def _member_code(job: JobDefinitions, plan: _Plan, spec: dict[str, Any]) -> str:
    """The candidate's encoder, fit and predict functions."""
    p = job.pipeline(spec)
    family = FAMILIES[p.family]
    enc = builder.build_encoder(p.schema, family.style)
    params = codegen.every_param(enc, dict.fromkeys(
        ["numeric", "categorical", "datetime", "text", "categorical_encoding", "scale"]))
    s = _suffix(p.name)
    head = f"# -- {p.name}: {family.label} " + "-" * max(3, 84 - len(p.name) - len(family.label))
    lines = [head, f"def new_encoder_{s}():",
             f'    """The preprocessing of {p.name} ({family.style} style), unfitted."""',
             "    return " + codegen.call("TabularEncoder", params, 4),
             "", "", _fit_function(f"fit_{s}", p)]
    if _own_refit(job, plan, spec):
        refit = _refit_pipeline(job, plan, spec)
        assert refit is not None
        lines += ["", "", _fit_function(f"refit_{s}", refit)]
    lines += ["", "", _predict_function(s, p)]
    return "\n".join(lines)


def _own_refit(job: JobDefinitions, plan: _Plan, spec: dict[str, Any]) -> bool:
    """Whether the refit needs its own fit function (early stopping where the folds had
    known trees, or the reverse)."""
    refit = _refit_pipeline(job, plan, spec)
    return refit is not None and (refit.rounds is None) != (job.pipeline(spec).rounds is None)


def _fit_function(fn: str, p: Pipeline) -> str:
    callee, kwargs, fit, before = codegen.FAMILY_CODE[p.family](p)
    var = codegen.ROUNDS_NAME.get(p.family, ("n_rounds", ""))[0]
    body = [] if p.family == "catboost" else list(before)  # its pool: module level
    body.append("model = " + codegen.call(callee, kwargs, 4))
    body += fit.split("\n")
    if p.family == "mlp" and not p.classification:
        body.append("model.y_mean_, model.y_std_ = mean, std  # it learned the standardised "
                    "target")
    body.append("return model")
    doc = f"Fit {p.name} on the rows `train`" + (
        "; `valid` stops the boosting early (the job did not record its trees)"
        if "valid]" in fit else "")
    return "\n".join([f"def {fn}(X_enc, y, weights, train, valid, {var}=None):",
                      f'    """{doc}."""',
                      *("    " + line if line else "" for line in body)])


def _predict_function(s: str, p: Pipeline) -> str:
    rows = "catboost_pool(X_part)" if p.family == "catboost" else "X_part"
    if p.classification:
        out = f"probabilities(model, {rows})"
    elif p.family == "mlp":
        out = f"model.predict({rows}) * model.y_std_ + model.y_mean_"
    else:
        out = f"np.asarray(model.predict({rows}), dtype=np.float64)"
    return "\n".join([f"def predict_{s}(model, X_part):",
                      '    """Class probabilities (rows, classes), or values."""',
                      f"    return {out}"])


def _refit_pipeline(job: JobDefinitions, plan: _Plan, spec: dict[str, Any]
                    ) -> Pipeline | None:
    """The packaged model when it was retrained on every row (a holdout's best, a `-full`
    candidate): its pipeline with the trees the job's refit grew; None for a bag, and for
    a member of an ensemble or a stack, which holds the model as it was before any refit
    (the refit comes after them)."""
    if plan.stack is not None or len(plan.weights) > 1:
        return None
    p = job.pipeline(spec)
    if spec.get("refit_of"):
        rounds = spec.get("refit_n_estimators")
    elif spec.get("trained_on") == "train+holdout":
        rounds = FAMILIES[p.family].refit_params(dict(p.params), p.fits or []).get(
            "n_estimators")
    else:
        return None
    key = codegen.ROUNDS_KEY.get(p.family)
    fits = [{key: int(rounds)}] if key and rounds is not None and p.family != "mlp" else None
    return Pipeline(**{**p.__dict__, "fits": fits})


def _member_table(job: JobDefinitions, plan: _Plan) -> str:
    rows = []
    for member in plan.singles:
        p, s = job.pipeline(member), _suffix(member["name"])
        refit = _refit_pipeline(job, plan, member)
        refit_rounds = (refit.rounds or [None])[0] if refit else None
        fields = {"name": member["name"], "new_encoder": Code(f"new_encoder_{s}"),
                  "fit": Code(f"fit_{s}"), "predict": Code(f"predict_{s}"),
                  "rounds": p.rounds, "train_rows": p.train_rows, "refit": refit is not None,
                  "refit_rounds": refit_rounds,
                  "refit_fit": Code(f"refit_{s}" if _own_refit(job, plan, member) else "None")}
        rows.append("    " + codegen.call("Member", fields, 4) + ",")
    note = ["# refit: retrained on every training row (train and holdout) after validation, "
            "as the job did"] if any(_refit_pipeline(job, plan, m) for m in plan.singles) else []
    lines = [
        "# -- the candidate " + "-" * 74,
        'Member = namedtuple("Member", "name new_encoder fit predict rounds train_rows refit "',
        '                    "refit_rounds refit_fit")',
        "# rounds: per fold, the trees, iterations or epochs the job's fit kept",
        *note, "MEMBERS = [", *rows, "]", ""]
    lines += _stack_lines(job, plan.stack)
    what = "the ensemble's members and weights" if len(plan.weights) > 1 else "one model"
    lines += [f"WEIGHTS = {codegen.literal(plan.weights, 10)}  # {what}"]
    return "\n".join(lines)


def _stack_lines(job: JobDefinitions, stack: dict[str, Any] | None) -> list[str]:
    """STACK: the level-2 model's members and folds, with the settings the job recorded."""
    if stack is None:
        return ["STACK = None  # no level-2 model"]
    params = stack["params"]
    folds = params["stack_folds"]
    fields = {"name": stack["name"], "members": list(params["members"]),
              "seed": int(folds.get("seed", job.seed))}
    return [
        f"# a stack: a level-2 {params['stacker']} over its members' validation predictions",
        f"# ({params['stack_features']}), scored out of fold",
        'Stack = namedtuple("Stack", "name members seed")',
        "STACK = " + codegen.call("Stack", fields, 0),
        f"STACKER_PARAMS[ProblemType({job.problem_type.value!r})] = "
        f"{params['stacker_params']!r}  # as the job fitted it",
        *([f"HOLDOUT_FOLDS = {int(folds['n_folds'])}"] if folds.get("kind") == "holdout"
          else []),
    ]


def _embedded(module: str) -> tuple[list[str], str]:
    """A module's top-level imports (not tabpilot's, not __future__) and the rest of its
    source, its docstring dropped. The source is read as text, not imported: the stacking
    module sits beside reports/ in the layers, not below."""
    path = Path(tabpilot.__file__).parent.joinpath(*module.split(".")[1:]).with_suffix(".py")
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    drop: set[int] = set()
    imports: list[str] = []
    for i, node in enumerate(ast.parse(source).body):
        span = range(node.lineno - 1, node.end_lineno or node.lineno)
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            drop.update(span)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            drop.update(span)
            named = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if named and named != "__future__" and not named.startswith("tabpilot"):
                imports.append(" ".join("\n".join(lines[j] for j in span).split())
                               .replace("( ", "(").replace(", )", ")").replace(",)", ")"))
    kept = [line for j, line in enumerate(lines) if j not in drop]
    text = "\n".join(kept).strip("\n")
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return imports, text
