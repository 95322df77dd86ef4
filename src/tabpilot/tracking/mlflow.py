"""A finished job logged to an MLflow tracking server.

One parent run per job: the request as params, the dataset's sha256, problem type and
objective as tags, the leaderboard as a table artifact, the best score as a metric. One
nested run per candidate: algorithm, flattened hyperparameters, every stored metric, fit
time and latency, the per-iteration curves of `curves.json` (one value per `step`), its
rules, importance and insights files as artifacts, and its packaged model as a pyfunc model
(`pyfunc.py`) whose signature comes from the job's training rows. The best candidate's
model is registered, with the alias `champion`.

The same code serves `tabpilot track JOB` and the end of a job run with `--mlflow URI`
(`track_after_job`): a server that is down or refuses costs that job one warning line and
at most a few seconds (a short probe, then few retries), never its result.

Logging reads the workspace only (store rows and files); it changes nothing there but the
`mlflow-run` resource it leaves behind, which `tabpilot lineage` shows.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import math
import os
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.errors import JobStateError, MissingDependencyError, TabpilotError
from tabpilot.store import Store
from tabpilot.tracking.dataset import job_dataset

log = logging.getLogger("tabpilot.tracking")

ENV_URI = "TABPILOT_MLFLOW_URI"
EXPERIMENT = "tabpilot"
ALIAS = "champion"
RUN_KIND = "mlflow-run"  # the store's resource recording where a job was logged
PROBE_SECONDS = 3.0
# for the whole logging: a server that stops answering half way fails fast, not after
# MLflow's default seven retries with exponential backoff
# (minutes); and MLflow's own printing (run URLs, progress bars) kept off the terminal,
# whose standard output may be a `--json` document
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
              "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
              "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
              "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
CANDIDATE_FILES = ("curves.json", "rules.json", "explanations.json", "explanations.html",
                   "insights.json", "insights.html")
CURVES = "curves.json"
SIGNATURE_ROWS = 100
# reports/candidate.py's VALIDATION_SAMPLE, not imported: that module pulls the report
# stack (matplotlib, SHAP code), seconds of imports for `tabpilot track` to read one file
VALIDATION_SAMPLE = "validation_sample"
BATCH = 1000  # MLflow's limit of metrics per log_batch call
MAX_PARAM_CHARS = 6000
ENDED = ("Completed", "Failed", "Stopped")


class TrackingUnavailable(TabpilotError):
    """The tracking server cannot be reached (down, wrong address, refusing)."""


@dataclass
class Tracked:
    """Where a job went: the parent run, each candidate's run, the registered version."""

    uri: str
    experiment_id: str
    run_id: str
    candidate_runs: dict[str, str] = field(default_factory=dict)
    registered: dict[str, Any] | None = None
    already: bool = False  # logged before: nothing was logged this time

    def as_dict(self) -> dict[str, Any]:
        return {"TrackingUri": self.uri, "ExperimentId": self.experiment_id,
                "RunId": self.run_id, "CandidateRuns": self.candidate_runs,
                "RegisteredModel": self.registered, "AlreadyTracked": self.already}


def tracking_uri(given: str | None) -> str | None:
    """The URI given, else $TABPILOT_MLFLOW_URI, else None (no tracking)."""
    return given or os.environ.get(ENV_URI) or None


def track_after_job(store: Store, job: str, uri: str, **options: Any) -> Tracked | None:
    """`track_job` at the end of a job: any failure is one warning line, never an error,
    and the job's result stands; `tabpilot track` logs it later."""
    try:
        return track_job(store, job, uri, **options)
    except MissingDependencyError as exc:
        log.warning("job %s was not logged to MLflow: %s", job, exc)
    except TrackingUnavailable as exc:
        log.warning("job %s was not logged to MLflow: %s, then `tabpilot track %s --mlflow %s`",
                    job, exc, job, uri)
    except Exception as exc:  # the server refused or failed half way: the job stands
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        log.warning("job %s was not logged to MLflow at %s (%s); log it later with "
                    "`tabpilot track %s --mlflow %s`", job, uri, reason, job, uri)
    return None


def track_job(store: Store, job: str, uri: str, *, experiment: str = EXPERIMENT,
              registered_model: str | None = None, models: str = "all",
              again: bool = False) -> Tracked:
    """Log an ended job (see the module's docstring). A job logged to this server before
    is not logged twice unless `again`. `models`: "all" kept candidates' models, "best"
    only the best one's, "none". Raises TrackingUnavailable when the server cannot be
    reached, JobStateError for a job still running."""
    if importlib.util.find_spec("mlflow") is None:
        raise MissingDependencyError("mlflow", "mlflow")
    if models not in ("all", "best", "none"):
        raise TabpilotError(f"--models must be all, best or none, got {models!r}")
    row = store.get_job(job)
    if row.status not in ENDED:
        raise JobStateError(f"job {job!r} is {row.status}; it is logged once it has ended "
                            "(`tabpilot track` after it, or `--mlflow` on `tabpilot run`)")
    _probe(uri)  # before importing MLflow (seconds): a server that is down costs no more
    # tabpilot reaches only the servers it is given: MLflow's usage telemetry stays off
    # unless the user turned it on (read when MLflow is imported, so set before)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    with _mlflow_session(mlflow, uri) as client:
        experiment_id = _experiment(client, experiment)
        if not again:
            earlier = _earlier_run(client, experiment_id, job)
            if earlier is not None:
                return Tracked(uri, experiment_id, earlier, already=True)
        tracked = _log(mlflow, client, store, row, experiment_id, uri,
                       registered_model or job, models)
    _remember(store, job, tracked, experiment)
    return tracked


# -- the server --------------------------------------------------------------------------
def _probe(uri: str) -> None:
    """A quick request before MLflow's client (whose retries take minutes) touches an
    HTTP server: any HTTP answer means it is up; no answer within PROBE_SECONDS, down."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return  # a local store (file:, sqlite:, a folder): nothing to wait for
    url = (uri.rstrip("/") + "/api/2.0/mlflow/experiments/get-by-name?"
           + urllib.parse.urlencode({"experiment_name": EXPERIMENT}))
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS):
            pass
    except urllib.error.HTTPError:
        return  # it answered (404 for an unknown experiment is an answer)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailable(f"the MLflow tracking server {uri} does not answer "
                                  f"({reason}); start it or check the URI") from None


@contextmanager
def _mlflow_session(mlflow: Any, uri: str) -> Iterator[Any]:
    """MLflow's fluent API (which pyfunc logging needs) pointed at `uri` with short
    retries, and the process's previous settings given back afterwards."""
    from mlflow.tracking import MlflowClient
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {key: os.environ.get(key) for key in CLIENT_ENV}
    outer = mlflow.active_run().info.run_id if mlflow.active_run() is not None else None
    saved_uris = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow_log = logging.getLogger("mlflow")
    saved_level = mlflow_log.level
    os.environ.update(CLIENT_ENV)
    _drop_connections()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow_log.setLevel(logging.ERROR)  # its advice on pickling and input examples
    said = io.StringIO()  # "Successfully registered model ..." goes to stderr
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(said):
            warnings.simplefilter("ignore")
            yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        mlflow_log.setLevel(saved_level)
        log.debug("MLflow said: %s", said.getvalue())
        # a failure inside our runs: close them as failed, and only them (the caller's own
        # active run, if any, stays open)
        while mlflow.active_run() is not None and mlflow.active_run().info.run_id != outer:
            mlflow.end_run("FAILED")
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved_uris
        _drop_connections()


def _drop_connections() -> None:
    """MLflow's pooled HTTP connections closed, so that a tracking session starts and ends
    on fresh ones. MLflow (3.18 on) does not resend a write that is not idempotent
    (runs/create, registered-models/create) when its connection drops before an answer, and
    a keep-alive connection reused just as the server's keep-alive timeout closes it (5 s
    for `mlflow server`'s uvicorn) drops so: a job logged about 5 s after the previous one
    failed. (MLflow caches one requests session per retry policy and process; clearing the
    cache lets them and their sockets go.)"""
    from mlflow.utils import request_utils

    cached = getattr(request_utils, "_cached_get_request_session", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name)


def _earlier_run(client: Any, experiment_id: str, job: str) -> str | None:
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`tabpilot.job` = '{job}' and "
        "tags.`tabpilot.kind` = 'job' and attributes.status = 'FINISHED'", max_results=1)
    return runs[0].info.run_id if runs else None


# -- what is logged ----------------------------------------------------------------------
def _log(mlflow: Any, client: Any, store: Store, job: Any, experiment_id: str, uri: str,
         registered_model: str, models: str) -> Tracked:
    job_dir = Path(job.job_dir)
    dataset = job_dataset(job_dir)
    candidates = store.list_candidates(job.name)
    metrics = store.metrics(job.name)
    sample = _signature_sample(job_dir)
    tags = {"tabpilot.kind": "job", "tabpilot.job": job.name,
            "tabpilot.dataset_sha256": dataset["sha256"] or "unknown",
            "tabpilot.problem_type": job.problem_type or "", "tabpilot.objective": job.metric or "",
            "tabpilot.status": job.status}
    # under the caller's active run, if there is one (a notebook's run of its own)
    with mlflow.start_run(experiment_id=experiment_id, run_name=job.name, tags=tags,
                          nested=mlflow.active_run() is not None) as parent:
        params = _flatten({"request": job.request})
        params.update({"dataset_sha256": dataset["sha256"] or "unknown",
                       "dataset_source": dataset["source"], "problem_type": job.problem_type,
                       "objective_metric": job.metric, "mode": job.mode, "target": job.target})
        _log_params(client, parent.info.run_id, params)
        best = next((c for c in candidates if c.name == job.best_candidate), None)
        if best is not None and best.objective is not None and job.metric:
            mlflow.log_metric(f"best_{job.metric}", best.objective)
        _log_leaderboard(mlflow, store, job)
        tracked = Tracked(uri, experiment_id, parent.info.run_id)
        for candidate in candidates:
            with_model = candidate.artifact_dir and (
                models == "all" or (models == "best" and candidate.name == job.best_candidate))
            with mlflow.start_run(experiment_id=experiment_id, run_name=candidate.name,
                                  nested=True, tags=_candidate_tags(job, candidate)) as run:
                tracked.candidate_runs[candidate.name] = run.info.run_id
                info = _log_candidate(mlflow, client, run.info.run_id, job_dir, candidate,
                                      metrics.get(candidate.name, {}), sample,
                                      with_model=bool(with_model))
            if info is not None and candidate.name == job.best_candidate:
                tracked.registered = _register(mlflow, client, info.model_uri,
                                               registered_model, job, candidate)
    return tracked


def _candidate_tags(job: Any, candidate: Any) -> dict[str, str]:
    return {"tabpilot.kind": "candidate", "tabpilot.job": job.name,
            "tabpilot.candidate": candidate.name, "tabpilot.status": candidate.status,
            "tabpilot.best": str(candidate.name == job.best_candidate).lower()}


def _log_candidate(mlflow: Any, client: Any, run_id: str, job_dir: Path, candidate: Any,
                   metrics: dict[str, dict[str, float | None]], sample: pd.DataFrame | None,
                   with_model: bool) -> Any:
    """The candidate's params, metrics, curves and files; its model's ModelInfo, or None."""
    params = {"algorithm": candidate.algorithm, "family": candidate.family,
              "source": candidate.source, "trained_on": candidate.trained_on}
    params.update(_flatten(candidate.params or {}, "hp."))
    _log_params(client, run_id, params)
    values = {f"{split}_{name}": value for split, named in metrics.items()
              for name, value in named.items()}
    values.update({"objective": candidate.objective, "fit_seconds": candidate.fit_seconds,
                   "latency_ms_p50": candidate.latency_ms_p50,
                   "throughput_rows_s": candidate.throughput_rows_s,
                   "model_bytes": candidate.model_bytes})
    folder = _candidate_folder(job_dir, candidate)
    _log_metrics(client, run_id, values, _curves(folder / CURVES))
    if candidate.failure_reason:
        mlflow.set_tag("tabpilot.failure_reason", candidate.failure_reason[:5000])
    for name in CANDIDATE_FILES:
        if (folder / name).is_file():
            mlflow.log_artifact(str(folder / name), artifact_path="reports")
    return _log_model(mlflow, candidate, sample) if with_model else None


def _candidate_folder(job_dir: Path, candidate: Any) -> Path:
    if candidate.artifact_dir:
        return Path(candidate.artifact_dir).parent
    return job_dir / "candidates" / candidate.name


def _curves(path: Path) -> dict[str, list[float]]:
    """{metric key: values per step} from engineer E's curves.json, {} without one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    metric = str(data.get("metric") or "loss")
    return {f"curve_{part}_{metric}": list(data.get(part) or [])
            for part in ("train", "validation")}


def _log_metrics(client: Any, run_id: str, values: dict[str, Any],
                 curves: dict[str, list[float]]) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(_key(k), float(v), now, 0) for k, v in values.items() if _finite(v)]
    batch += [Metric(_key(k), float(v), now, step) for k, series in curves.items()
              for step, v in enumerate(series) if _finite(v)]
    for start in range(0, len(batch), BATCH):
        client.log_batch(run_id, metrics=batch[start:start + BATCH])


def _log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(_key(k), _param_value(v)) for k, v in params.items() if v is not None]
    for start in range(0, len(items), 100):  # MLflow's limit of params per log_batch call
        client.log_batch(run_id, params=items[start:start + 100])


def _log_leaderboard(mlflow: Any, store: Store, job: Any) -> None:
    """The job's leaderboard.csv (written as it ends), else the store's view of it."""
    path = Path(job.job_dir) / "leaderboard.csv"
    if path.is_file():
        board = pd.read_csv(path)
    else:  # an older or failed job: the same table from the store (imports the job stack)
        from tabpilot.jobs.views import leaderboard

        board = leaderboard(store, job.name)
    if not board.empty:
        mlflow.log_table(board, artifact_file="leaderboard.json")


def _log_model(mlflow: Any, candidate: Any, sample: pd.DataFrame | None) -> Any:
    from tabpilot.artifacts import load
    from tabpilot.tracking.pyfunc import ARTIFACT, TabpilotPyfunc

    model_dir = Path(candidate.artifact_dir)
    model = load(model_dir)  # verified against its manifest, as any load
    return mlflow.pyfunc.log_model(
        name="model", python_model=TabpilotPyfunc(), artifacts={ARTIFACT: str(model_dir)},
        signature=_signature(model, sample),
        # given, so MLflow does not load the model in a subprocess to guess them
        pip_requirements=[f"tabpilot=={_version()}"])


def _register(mlflow: Any, client: Any, model_uri: str, name: str, job: Any,
              candidate: Any) -> dict[str, Any]:
    version = mlflow.register_model(model_uri, name, tags={
        "tabpilot.job": job.name, "tabpilot.candidate": candidate.name})
    client.set_registered_model_alias(name, ALIAS, version.version)
    return {"Name": name, "Version": str(version.version), "Alias": ALIAS}


def _remember(store: Store, job: str, tracked: Tracked, experiment: str) -> None:
    """The run in the workspace's own store, for `tabpilot lineage`."""
    spec = {"Job": job, "Experiment": experiment, **tracked.as_dict()}
    spec.pop("AlreadyTracked")
    try:
        if store.find_resource(RUN_KIND, job) is None:
            store.add_resource(RUN_KIND, job, spec, status="Logged")
        else:
            store.update_resource(RUN_KIND, job, spec=spec, status="Logged")
    except Exception:  # the run is logged; only lineage misses it
        log.warning("could not record MLflow run %s of job %s in the store", tracked.run_id,
                    job, exc_info=True)


# -- signature ---------------------------------------------------------------------------
def _signature_sample(job_dir: Path) -> pd.DataFrame | None:
    """Training-distribution rows with their columns' own types: the job's validation
    sample (reports/candidate.py keeps it for every job), first SIGNATURE_ROWS rows."""
    from tabpilot.reports.datafiles import read_frame

    for path in sorted(job_dir.glob(f"{VALIDATION_SAMPLE}.*")):
        try:
            return read_frame(path).head(SIGNATURE_ROWS)
        except Exception:
            log.debug("unreadable validation sample %s", path, exc_info=True)
    return None


def _signature(model: Any, sample: pd.DataFrame | None) -> Any:
    """Inferred from the training rows and the model's answers to them; without rows, from
    the model's input schema (numbers as doubles, everything else as strings)."""
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ColSpec, Schema

    if sample is not None:
        rows = sample[[c for c in model.features if c in sample.columns]]
        if list(rows.columns) == list(model.features):
            try:
                return infer_signature(rows, model.predict(rows))
            except Exception:
                log.debug("signature from the sample failed; from the schema", exc_info=True)
    kinds = model.metadata.get("input_schema") or {}
    inputs = Schema([ColSpec("double" if kinds.get(c) == "numeric" else "string", c)
                     for c in model.features])
    return ModelSignature(inputs=inputs)


# -- small helpers -----------------------------------------------------------------------
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and scalars stay values."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def _key(name: str) -> str:
    """MLflow's keys allow letters, digits, `_ - . / space`; anything else becomes `_`."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in str(name))


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _version() -> str:
    from importlib.metadata import version

    return version("tabpilot")
