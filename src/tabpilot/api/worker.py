"""Background work started by the SageMaker API, one process per job:

    python -m tabpilot.api.worker job NAME --workspace DIR [--s3-root DIR]
    python -m tabpilot.api.worker transform NAME --workspace DIR [--s3-root DIR]
    python -m tabpilot.api.worker monitoring NAME --workspace DIR [--s3-root DIR]
    python -m tabpilot.api.worker training NAME --workspace DIR [--s3-root DIR]
    python -m tabpilot.api.worker tuning NAME --workspace DIR [--s3-root DIR]
    python -m tabpilot.api.worker processing NAME --workspace DIR [--s3-root DIR]

A job worker adopts the job row that CreateAutoMLJob(V2) made, runs it, copies its
artifacts under the request's S3OutputPath, and deploys the best model when the request's
ModelDeployConfig asks. A transform worker scores the input with the named model. A
monitoring worker runs one execution of a monitoring schedule (`api/scheduler.py`); a
training worker one training job of a built-in algorithm (`api/training.py`), a tuning
worker a hyperparameter tuning job, starting training workers (`api/tuning.py`), a
processing worker one processing job (`api/processing.py`).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from tabpilot.jobs import status as st

if TYPE_CHECKING:
    from tabpilot.api.context import ApiContext

log = logging.getLogger("tabpilot.api.worker")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:1000]


def run_job(ctx: ApiContext, name: str) -> None:
    from tabpilot.api import forecast_jobs
    from tabpilot.api.jobs import KIND, TRAINING_FIELD, channel_uri, job_request
    from tabpilot.jobs import admission
    from tabpilot.jobs.heartbeat import Heartbeat
    from tabpilot.jobs.runner import JobRunner

    store = ctx.store
    # alive from now until this process exits (reading the data can take a while); the
    # runner beats too while it runs
    Heartbeat(store, name).start()
    spec = store.get_resource(KIND, name).spec
    p = spec["request"]
    try:
        # a forecasting job runs forecast/'s fit, not the tabular JobRunner
        request = None if forecast_jobs.is_forecasting(p) else job_request(ctx, p)
        # the time limit starts once a slot is free, not when the job was submitted
        with admission.slot(ctx.workspace, name, on_wait=lambda ahead: log.info(
                "job %s waits for a slot: %d job(s) ahead", name, ahead)):
            if request is None:
                forecast_jobs.run(ctx, name, p, channel_uri(p, "training"))
            else:
                source = ctx.locations.read(channel_uri(p, "training"), request.na_values,
                                            TRAINING_FIELD)
                JobRunner(request, ctx.workspace, store, adopt=True).run(source)
    except BaseException as exc:  # the job row tells the API user what went wrong
        log.error("job %s failed: %s", name, traceback.format_exc())
        if store.get_job(name).status in st.ACTIVE:
            store.update_job(name, status=st.FAILED, secondary_status=st.FAILED,
                             failure_reason=_reason(exc), ended=time.time())
        if not isinstance(exc, Exception):
            raise
    job = store.get_job(name)
    partial = []
    try:
        _publish(ctx, name, Path(job.job_dir), p["OutputDataConfig"]["S3OutputPath"])
        spec["published"] = True
    except Exception as exc:
        log.exception("copying the outputs of %s failed", name)
        partial.append(f"copying the outputs to S3OutputPath failed: {_reason(exc)}")
    deploy = p.get("ModelDeployConfig") or {}
    if job.best_candidate and (deploy.get("AutoGenerateEndpointName") or deploy.get("EndpointName")):
        endpoint = deploy.get("EndpointName") or f"{name}-endpoint"
        best = store.get_candidate(name, job.best_candidate)
        store.put_endpoint(endpoint, best.artifact_dir, job=name, candidate=best.name)
        spec["endpoint"] = endpoint
    spec["partial_failures"] = partial
    store.update_resource(KIND, name, spec=spec)
    _track(store, name)


def _track(store, name: str) -> None:
    """A job made through the API is logged to MLflow like any other when the server was
    started with TABPILOT_MLFLOW_URI; a tracking server that is down is one warning."""
    from tabpilot.tracking.mlflow import track_after_job, tracking_uri

    uri = tracking_uri(None)
    if uri and store.get_job(name).status not in st.ACTIVE:
        track_after_job(store, name, uri)


def _publish(ctx: ApiContext, name: str, job_dir: Path, output_path: str) -> None:
    from tabpilot.api.locations import join

    dest = join(output_path, name)
    local = ctx.locations.resolve_output(dest, "OutputDataConfig.S3OutputPath")
    if "://" not in local and Path(local).resolve() == job_dir.resolve():
        return
    if job_dir.is_dir():
        ctx.locations.publish(job_dir, dest, "OutputDataConfig.S3OutputPath")


def run_transform(ctx: ApiContext, name: str) -> None:
    from tabpilot.api.hosting import MODEL, OUTPUT_FIELD, TRANSFORM
    from tabpilot.serving.batch import TransformSettings, transform
    from tabpilot.serving.forecasting import load  # a tabular or a forecasting model

    store = ctx.store
    spec = store.get_resource(TRANSFORM, name).spec
    spec["started"] = time.time()
    store.update_resource(TRANSFORM, name, spec=spec)
    p = spec["request"]
    try:
        model_spec = store.get_resource(MODEL, p["ModelName"]).spec
        model = load(str(_readable(ctx, model_spec["model_dir"])))
        processing = p.get("DataProcessing", {})
        settings = TransformSettings(
            accept=p["TransformOutput"].get("Accept", "text/csv"),
            output_keys=p.get("Environment", {}).get("SAGEMAKER_INFERENCE_OUTPUT")
            or model_spec.get("output_keys"),
            input_filter=processing.get("InputFilter"), output_filter=processing.get("OutputFilter"),
            join_input=processing.get("JoinSource") == "Input", output_header=False)
        with tempfile.TemporaryDirectory(prefix="tabpilot-transform-") as scratch:
            source = _local_input(ctx, p["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"],
                                  Path(scratch) / "in")
            out_uri = p["TransformOutput"]["S3OutputPath"]
            remote = ctx.locations.is_remote_output(out_uri, OUTPUT_FIELD)
            out = Path(scratch) / "out" if remote else \
                Path(ctx.locations.resolve_output(out_uri, OUTPUT_FIELD))
            transform(model, source, out, settings)
            if remote:
                ctx.locations.publish(out, out_uri, OUTPUT_FIELD)
        store.update_resource(TRANSFORM, name, status="Completed", ended=time.time())
    except Exception as exc:
        log.error("transform %s failed: %s", name, traceback.format_exc())
        store.update_resource(TRANSFORM, name, status="Failed", failure_reason=_reason(exc),
                              ended=time.time())


def _readable(ctx: ApiContext, model_dir: str) -> Path:
    """The model as this machine reads it: the artifact store's verified copy when one is
    set ($TABPILOT_ARTIFACTS; the server that made the model may be another), else the
    workspace's folder."""
    from tabpilot.artifacts.store import for_workspace, local_copy

    return local_copy(model_dir, ctx.workspace, for_workspace(ctx.workspace))


def _local_input(ctx: ApiContext, uri: str, scratch: Path) -> Path:
    from tabpilot.api.hosting import INPUT_FIELD

    where = ctx.locations.resolve(uri, INPUT_FIELD)
    if "://" not in where:
        return Path(where)
    import fsspec

    fs, path = fsspec.core.url_to_fs(where)
    fs.get(path, str(scratch), recursive=True)
    return scratch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tabpilot.api.worker")
    parser.add_argument("kind", choices=["job", "transform", "monitoring", "training", "tuning",
                                         "processing"])
    parser.add_argument("name")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--s3-root")
    parser.add_argument("--allow-root", action="append", default=[])
    parser.add_argument("--trust-model-root", action="append", default=[])
    parser.add_argument("--store", help="metadata store URL (default $TABPILOT_STORE, "
                        "else the workspace's tabpilot.db)")
    args = parser.parse_args(argv)
    # each kind imports what it runs, no more: a training job's worker starts in a fraction
    # of the time the whole API would take to import (bench/training_overhead.py --api)
    from tabpilot.api.context import ApiContext
    from tabpilot.api.locations import Locations
    from tabpilot.store import Store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    workspace = Path(args.workspace)
    locations = Locations(workspace, args.s3_root, args.allow_root, args.trust_model_root)
    ctx = ApiContext(Store.for_workspace(workspace, url=args.store), workspace, locations)
    if args.kind == "monitoring":
        from tabpilot.api.scheduler import run_monitoring

        run_monitoring(ctx, args.name)
        return
    if args.kind == "training":
        from tabpilot.api.training import run_training

        run_training(ctx, args.name)
        return
    if args.kind == "tuning":
        from tabpilot.api.tuning import run_tuning

        run_tuning(ctx, args.name)
        return
    if args.kind == "processing":
        from tabpilot.api.processing import run_processing

        run_processing(ctx, args.name)
        return
    (run_job if args.kind == "job" else run_transform)(ctx, args.name)


if __name__ == "__main__":
    main()
