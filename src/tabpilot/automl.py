"""The Python API: `AutoML(target=...).fit(data)` and `load_model(...)`."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot import names
from tabpilot.artifacts import Model
from tabpilot.artifacts import load as load_dir
from tabpilot.artifacts.package import is_model_directory
from tabpilot.artifacts.store import ArtifactStore, fetch_url, local_copy
from tabpilot.artifacts.store import for_workspace as artifact_store
from tabpilot.config import JobRequest, workspace_path
from tabpilot.errors import ConfigError, NotFoundError, shown
from tabpilot.execution import Executor
from tabpilot.jobs import JobRunner, Progress, candidates_view, describe_job, leaderboard
from tabpilot.settings import normalize_executor
from tabpilot.store import Store

# JobRequest's own names, accepted beside the CLI's (older code passes them)
ALIASES = {"n_folds": "folds", "n_workers": "workers"}
LEADERBOARD_ROUNDS = 2  # leaderboard(test) shows the score alone: no interval to resample
VERBOSITY = (0, 1, 2)


class AutoML:
    """One AutoML job: `AutoML("churn").fit("train.csv")`, then `leaderboard()`,
    `evaluate(test)`, `best_model()`. The arguments are the CLI's (`tabpilot run --help`).

    Args:
        target: the column to predict.
        time_limit: seconds for the whole job, training, ensembling and reports included.
        metric: objective (Autopilot's names: F1, AUC, Accuracy, BalancedAccuracy, LogLoss,
            MSE, RMSE, MAE, R2...); default F1 (binary), Accuracy (multiclass), MSE
            (regression). Shown when the data is analysed, with the reason.
        problem_type: "binary" | "multiclass" | "regression" | "text-classification";
            default inferred from the target (shown with its reason: "2 distinct values ->
            binary"). "text-classification" needs `text_column`; the job is then binary or
            multiclass by the target's labels, with text candidates (tabpilot.text).
        text_column: the column holding the documents of a text classification job (its
            only feature; Autopilot's ContentColumn).
        mode: "auto" | "ensembling" (bagged models and an ensemble) | "hpo" (tuned single
            models on a holdout); auto: ensembling below ~100 MB of data.
        name: the job's name (default generated: tp-YYYYMMDD-HHMMSS-xxxx).
        max_candidates: stop after this many trials.
        per_trial_time_limit: seconds per trial (default a quarter of the limit, >= 10).
        validation_fraction: the holdout's share of the rows (0.05-0.5). Default: inferred
            from the rows (data/split.holdout_fraction: 2,500 rows of a large table, a
            tenth of one of 10,000-25,000 rows).
        folds: k-fold cross-validation (1 = holdout); default 5-8 in ensembling mode.
        validation_data: a separate validation table (path or URI).
        sample_weight: a column of row weights.
        feature_types: a FeatureSpecification JSON file forcing column kinds.
        na_values: extra strings read as missing values.
        algorithms: families to try: lightgbm, xgboost, catboost, extra_trees, linear,
            random_forest, mlp (default all, strong and cheap first).
        workers: trials run in parallel (default: the cores, at most 8).
        max_latency_ms: hand out the best candidate answering one row within this bound.
        stacking: "auto" | "on" | "off": a level-2 model on the candidates' out-of-fold
            predictions (auto: in ensembling mode, without a latency bound).
        selection: "balanced" (the fastest candidate 2x faster than the most accurate whose
            validation score is within one standard error of the difference, at most
            0.5 %) | "accuracy" (the most accurate).
        distill: after the ensemble, fit a fast LightGBM student to its predictions.
        seed: random seed of splits and searches.
        generate_candidates_only: analyse and write the notebooks; train nothing.
        keep_candidates: model directories kept (the best ones; default 20).
        ensemble: end with a greedy ensemble of the best candidates (default True), and,
            when the most accurate answers one row slower than max_latency_ms (else
            0.75 ms), a second one within that budget (`ensemble-NNN-fast`); without
            max_latency_ms, the budget is the cheapest of 0.75-2 ms whose ensemble the
            default selection would hand out.
        workspace: the workspace folder (default ./tabpilot-workspace or
            $TABPILOT_WORKSPACE).
        verbosity: 0 silent, 1 (default) a line per phase, every 10 trials, what was
            inferred and the final result, 2 a line per trial. Lines go to standard output
            (a notebook shows them under the cell).
        on_progress: a callable given a `tabpilot.jobs.Progress` at every update, instead
            of the printed lines.
        mlflow: an MLflow tracking URI (default $TABPILOT_MLFLOW_URI): the ended job is
            logged there, a run per candidate, the best model registered as `champion`
            (needs `pip install 'tabpilot[mlflow]'`).
        store: the metadata store's URL (default $TABPILOT_STORE, else the workspace's
            tabpilot.db), e.g. postgresql+psycopg://USER@HOST:PORT/DB to share jobs and
            endpoints between machines (needs `pip install 'tabpilot[postgres]'`).
        artifacts: where the ended job publishes its models, reports and notebooks
            (default $TABPILOT_ARTIFACTS, else the workspace folder itself), e.g.
            s3://bucket/prefix, with the AWS_* variables' credentials and endpoint (needs
            `pip install 'tabpilot[s3]'`); `load_model` reads them back on any machine.
        executor: what runs the trials (default $TABPILOT_EXECUTOR, else "local": a
            process per trial on this machine); "ray" ($RAY_ADDRESS, else a Ray started
            for this process), "ray://HOST:PORT" (a Ray cluster's client port), "auto"
            (Ray inside a Ray cluster, else local), or an `Executor` object (needs
            `pip install 'tabpilot[ray]'` for Ray). The job itself stays in this process.
    """

    def __init__(self, target: str, *, time_limit: float = 300.0, metric: str | None = None,
                 problem_type: str | None = None, mode: str = "auto", name: str | None = None,
                 max_candidates: int | None = None, per_trial_time_limit: float | None = None,
                 validation_fraction: float | None = None, folds: int | None = None,
                 validation_data: str | None = None, sample_weight: str | None = None,
                 feature_types: str | None = None, na_values: list[str] | None = None,
                 algorithms: list[str] | None = None, workers: int | None = None,
                 max_latency_ms: float | None = None, stacking: str = "auto",
                 selection: str = "balanced", distill: bool = True, seed: int = 0,
                 generate_candidates_only: bool = False, keep_candidates: int = 20,
                 ensemble: bool = True, workspace: str | Path | None = None,
                 verbosity: int = 1,
                 on_progress: Callable[[Progress], None] | None = None,
                 mlflow: str | None = None, store: str | None = None,
                 artifacts: str | None = None,
                 text_column: str | None = None, executor: str | Executor | None = None,
                 **unknown: Any) -> None:
        settings = dict(time_limit=time_limit, metric=metric, problem_type=problem_type,
                        mode=mode, name=name, max_candidates=max_candidates,
                        per_trial_time_limit=per_trial_time_limit,
                        validation_fraction=validation_fraction, n_folds=folds,
                        validation_data=validation_data, sample_weight=sample_weight,
                        feature_types=feature_types, na_values=na_values,
                        algorithms=algorithms, n_workers=workers,
                        max_latency_ms=max_latency_ms, stacking=stacking, selection=selection,
                        distill=distill, seed=seed,
                        generate_candidates_only=generate_candidates_only,
                        keep_candidates=keep_candidates, ensemble=ensemble,
                        text_column=text_column)
        for alias, own in ALIASES.items():
            if alias in unknown:
                settings[f"n_{own}"] = unknown.pop(alias)
        if unknown:
            raise ConfigError(_unknown_argument(next(iter(unknown))))
        if verbosity not in VERBOSITY:
            raise ConfigError(f"verbosity must be 0, 1 or 2, got {verbosity!r}")
        self.request = JobRequest.build(target=target, **settings)
        self.workspace = workspace_path(workspace)
        self.verbosity = verbosity
        self.on_progress = on_progress
        self.mlflow = mlflow
        self.store_url = store
        self.artifacts_url = artifacts
        # a name is checked now (one line for a typo); Ray is reached when the job starts
        self.executor = executor if executor is None or isinstance(executor, Executor) \
            else normalize_executor(executor)
        self.name: str | None = None
        self._store: Store | None = None

    def _progress_callback(self) -> Callable[[Progress], None] | None:
        if self.on_progress is not None or self.verbosity == 0:
            return self.on_progress
        from tabpilot.console import PYTHON_FLAGS, ProgressLog

        return ProgressLog(lambda line: print(line, flush=True), PYTHON_FLAGS,
                           verbosity=self.verbosity)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.for_workspace(self.workspace, url=self.store_url)
        return self._store

    def fit(self, data: str | Path | pd.DataFrame) -> AutoML:
        # the runner creates the store once the data passed its checks, not before
        from tabpilot.console import leaks_logged_elsewhere

        on_progress = self._progress_callback()
        if self._store is None and self.store_url is not None:  # a server: nothing left behind
            self._store = self.store
        runner = JobRunner(self.request, self.workspace, self._store, on_progress=on_progress,
                           artifacts=self._artifacts() if self.artifacts_url else None,
                           executor=self.executor)
        self.name = runner.name
        with leaks_logged_elsewhere() if on_progress is not None else nullcontext():
            runner.run(data)
        self._store = runner.store
        self._track()
        return self

    def _track(self) -> None:
        """The ended job logged to MLflow when a tracking URI is set; a server that is down
        costs one warning line (`tabpilot track` logs the job later), never the job."""
        from tabpilot.tracking.mlflow import track_after_job, tracking_uri

        uri = tracking_uri(self.mlflow)
        if uri is not None and self.name is not None and self._store is not None:
            track_after_job(self._store, self.name, uri)

    @classmethod
    def attach(cls, name: str, workspace: str | Path | None = None,
               store: str | None = None) -> AutoML:
        """The handle of an existing job (in the store `store` names, as in `AutoML`)."""
        opened = Store.for_workspace(workspace_path(workspace), create=False, url=store)
        job = opened.get_job(names.check(name, "job"))
        self = cls(job.request["target"], workspace=workspace, verbosity=0, store=store)
        self.name, self._store = name, opened
        return self

    @classmethod
    def resume(cls, name: str, workspace: str | Path | None = None, *,
               time_limit: float | None = None, data: str | Path | pd.DataFrame | None = None,
               on_progress: Callable[[Progress], None] | None = None) -> AutoML:
        """Continue a Stopped or Failed job from its finished candidates, for `time_limit`
        seconds (default: the time it had left, or its whole limit again when under a
        quarter was left); `data`, the training table when the recorded one is gone.
        A running or completed job is refused (JobStateError)."""
        from tabpilot.jobs.resume import resume

        self = cls.attach(name, workspace)
        self.on_progress = on_progress
        resume(self.workspace, name, time_limit, data, self.store, on_progress)
        return self

    def _job(self) -> str:
        if self.name is None:
            raise NotFoundError("this AutoML has not been fitted; call fit(data) first")
        return self.name

    def describe(self) -> dict[str, Any]:
        return describe_job(self.store, self._job())

    def candidates(self) -> list[dict[str, Any]]:
        return candidates_view(self.store, self._job())["Candidates"]

    def leaderboard(self, test_data: str | Path | pd.DataFrame | None = None) -> pd.DataFrame:
        """The candidates, best first, with their validation metrics, latency and size.
        With `test_data` (holding the target column), a `test_<metric>` column scores each
        kept candidate on it (candidates whose model was pruned get NaN)."""
        board = leaderboard(self.store, self._job())
        if test_data is None or board.empty:
            return board
        from tabpilot.data import read_table
        from tabpilot.reports.evaluate import evaluate

        job = self.store.get_job(self._job())
        df = read_table(test_data, copy=False)
        scores = []
        for name in board["candidate"]:
            row = self.store.get_candidate(job.name, name)
            if not row.artifact_dir:
                scores.append(float("nan"))
                continue
            result = evaluate(load_dir(local_copy(row.artifact_dir, self.workspace,
                                                  self._artifacts())), df, job.target, job.metric,
                              rounds=LEADERBOARD_ROUNDS)
            scores.append(result["metrics"][result["objective"]]["value"])
        board.insert(board.columns.get_loc("objective") + 1, f"test_{job.metric}", scores)
        return board

    def evaluate(self, test_data: str | Path | pd.DataFrame, candidate: str | None = None,
                 confidence: float = 0.95) -> dict[str, Any]:
        """Metrics of the best (or named) candidate on held-out data that holds the target
        column, each with its bootstrap confidence interval: {"objective": name,
        "metrics": {name: {"value", "lower", "upper"}}, "rows", ...} (see
        `tabpilot.reports.evaluate.evaluate`)."""
        from tabpilot.data import read_table
        from tabpilot.reports.evaluate import evaluate

        job = self.store.get_job(self._job())
        df = read_table(test_data, copy=False)
        model = load_model(job.name, candidate, self.workspace, self.store, self.artifacts_url)
        return evaluate(model, df, job.target, job.metric, confidence=confidence)

    def explain(self, data: str | Path | pd.DataFrame, candidate: str | None = None
                ) -> pd.DataFrame:
        """Per-row contributions of each raw column to the best (or named) candidate's
        prediction; `attrs` hold the method, the units and (for TreeSHAP) the base value:
        base value + a row's contributions = the model's raw output for it."""
        from tabpilot.data import read_table

        df = read_table(data, copy=False)
        return load_model(self._job(), candidate, self.workspace, self.store,
                          self.artifacts_url).explain(df)

    def explain_words(self, data: str | Path | pd.DataFrame, candidate: str | None = None,
                      top: int = 10) -> list[dict[str, Any]]:
        """A text classification job's explanation of each row: its predicted label and
        the `top` words that weigh most on it (the drop in that label's probability when
        the word is taken out; tabpilot.text.explain)."""
        from tabpilot.data import read_table
        from tabpilot.text.explain import explain_rows, text_column

        model = load_model(self._job(), candidate, self.workspace, self.store,
                           self.artifacts_url)
        column = text_column(model.metadata)
        if column is None:
            raise ConfigError("explain_words explains text classification models; this "
                              "job's model is tabular, use explain")
        df = model.check(read_table(data, copy=False))[0]
        return explain_rows(model.predictor, df, column, top)

    def best_model(self) -> Model:
        return load_model(self._job(), workspace=self.workspace, store=self.store,
                          artifacts=self.artifacts_url)

    def _artifacts(self) -> ArtifactStore:
        return artifact_store(self.workspace, self.artifacts_url)


def load_model(job_or_path: str | Path, candidate: str | None = None,
               workspace: str | Path | None = None, store: Store | None = None,
               artifacts: str | None = None) -> Model:
    """Load a packaged model from its directory, a published one's URL
    (s3://bucket/prefix/jobs/JOB/candidates/NAME/model), or a job's best (or named)
    candidate, read from the artifact store (`artifacts`, else $TABPILOT_ARTIFACTS) when
    the job was published there; the manifest is verified on every load."""
    return load_dir(readable_model_dir(job_or_path, candidate, workspace, store, artifacts))


def readable_model_dir(job_or_path: str | Path, candidate: str | None = None,
                       workspace: str | Path | None = None, store: Store | None = None,
                       artifacts: str | None = None) -> Path:
    """A local folder holding the model `load_model` means: the directory itself, the
    verified copy of a published URL, or a job's candidate as this machine can read it
    (the workspace's folder, else the artifact store's verified copy: the job's folder
    may be on another machine)."""
    text = str(job_or_path)
    if "://" in text and not text.startswith("file://"):
        return fetch_url(text)
    path = model_directory(job_or_path, candidate, workspace, store)
    if is_model_directory(path) or not names.is_valid(text, "job"):
        return path
    root = workspace_path(workspace)
    return local_copy(path, root, artifact_store(root, artifacts))


def model_directory(job_or_path: str | Path, candidate: str | None = None,
                    workspace: str | Path | None = None, store: Store | None = None) -> Path:
    """The model directory itself, or the one of a job's best (or named) candidate."""
    path = Path(job_or_path)
    if is_model_directory(path):
        return path.resolve()
    if not names.is_valid(str(job_or_path), "job"):  # the name becomes a path: check it
        if path.is_dir():  # `..`, `models/`: meant as a model's folder; say what it lacks
            raise NotFoundError(f"{shown(str(path))} is a folder without a packaged model "
                                "(no manifest.json); give a model directory or a job name")
        raise ConfigError(f"{names.problem(str(job_or_path), 'job')} (nor is it a model "
                          "directory)")
    if candidate is not None:
        names.check(candidate, "candidate")
    store = store or Store.for_workspace(workspace_path(workspace), create=False)
    job = store.get_job(str(job_or_path))
    name = candidate or job.best_candidate
    if name is None:
        raise NotFoundError(f"job {job.name!r} has no finished candidate yet "
                            f"(status {job.status})")
    row = store.get_candidate(job.name, name)
    if not row.artifact_dir:
        raise NotFoundError(f"candidate {name!r} of job {job.name!r} has no packaged model "
                            f"(status {row.status}); pick one from `tabpilot candidates`")
    return Path(row.artifact_dir).resolve()


def _unknown_argument(given: str) -> str:
    known = [p for p in inspect.signature(AutoML.__init__).parameters
             if p not in ("self", "target", "unknown")] + list(ALIASES)
    close = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (f"AutoML got an unknown argument {given!r}; {hint}the arguments are: "
            f"{', '.join(known[:-len(ALIASES)])} (see help(AutoML))")
