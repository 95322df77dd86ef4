"""`tabpilot serve-model | serve | deploy | endpoints | undeploy | transform`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tabpilot import names
from tabpilot.cli import JsonFlag, Workspace, _print_json, _store, app, err, out
from tabpilot.cli_predict import OnBadValue
from tabpilot.errors import TabpilotError

Token = Annotated[str | None, typer.Option(envvar="TABPILOT_TOKEN",
                                           help="API token required on every request")]
AllowHost = Annotated[list[str] | None, typer.Option(
    help="a Host name accepted on loopback beside localhost (a proxy's); repeatable")]
AllowOrigin = Annotated[list[str] | None, typer.Option(
    help="a browser origin (https://host:port) allowed to call the server; repeatable")]
MaxInvocationMb = Annotated[float | None, typer.Option(
    envvar="TABPILOT_MAX_INVOCATION_MB", min=0.001,
    help="largest /invocations body in MiB, larger get 413 (default 6, SageMaker's)")]
MaxBodyMb = Annotated[float | None, typer.Option(
    envvar="TABPILOT_MAX_BODY_MB", min=0.001,
    help="largest other request body (the SageMaker API) in MiB (default 100)")]
MaxConcurrency = Annotated[int | None, typer.Option(
    envvar="TABPILOT_MAX_CONCURRENCY", min=1,
    help="predictions running at once per endpoint (default 2 x cores)")]
MaxQueue = Annotated[int | None, typer.Option(
    envvar="TABPILOT_MAX_QUEUE", min=0,
    help="requests waiting per endpoint beyond those; more get 503 (default 64)")]
LogFormat = Annotated[str, typer.Option(
    envvar="TABPILOT_LOG_FORMAT",
    help="access log on stderr, one line per request: plain | json (JSON lines)")]


def _limits(**given: float | None) -> dict[str, float]:
    """The limit options given, as ServerSettings fields (the others keep its defaults)."""
    return {name: value for name, value in given.items() if value is not None}


def _model_dir(job_or_dir: str, candidate: str | None, workspace: Path | None) -> str:
    from tabpilot.artifacts.package import is_model_directory

    if is_model_directory(job_or_dir):  # no job lookup (nor the job machinery's imports)
        return str(Path(job_or_dir).resolve())
    from tabpilot.automl import model_directory

    return str(model_directory(job_or_dir, candidate, workspace))


def _access_log(log_format: str) -> None:
    from tabpilot.serving.observe import configure_access_log

    configure_access_log(log_format)  # uvicorn's own access log stays off (_uvicorn)


def _uvicorn(application, host: str, port: int, root_path: str = "",
             grace: float | None = None) -> None:
    """`grace`: seconds requests in flight get after a stop signal (None: as long as they
    take); `serve` bounds it, so an open Studio page's event stream never holds a stop."""
    import uvicorn

    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False,
                root_path=root_path, timeout_graceful_shutdown=grace)


@app.command("serve-model")
def serve_model(
    model: Annotated[str, typer.Argument(
        help="a packaged model directory, a published one's URL (s3://.../model), or a job "
             "name (its best model, or --candidate's)")],
    candidate: Annotated[str | None, typer.Option(help="with a job: this candidate")] = None,
    workspace: Workspace = None,
    port: Annotated[int, typer.Option()] = 8080,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    output_keys: Annotated[str | None, typer.Option(
        envvar="SAGEMAKER_INFERENCE_OUTPUT",
        help="predicted_label,probability,probabilities,labels")] = None,
    token: Token = None,
    max_invocation_mb: MaxInvocationMb = None,
    max_body_mb: MaxBodyMb = None,
    max_concurrency: MaxConcurrency = None,
    max_queue: MaxQueue = None,
    allow_host: AllowHost = None,
    allow_origin: AllowOrigin = None,
    log_format: LogFormat = "plain",
    on_bad_value: OnBadValue = "error",
) -> None:
    """Serve one model with SageMaker's container contract: GET /ping, POST /invocations,
    and Prometheus metrics at GET /metrics. A job's model is read where this machine can
    read it: the workspace's folder, else the artifact store it was published to
    (`tabpilot --store URL --artifacts URL serve-model JOB` on a machine without the job's
    folder); the manifest is verified either way."""
    from tabpilot.artifacts.validate import check_on_bad_value
    from tabpilot.serving.app import ServerSettings, model_app

    _access_log(log_format)  # an unknown format fails before the model loads
    if candidate is not None:
        names.check(candidate, "candidate")
    if Path(model).is_dir():
        model_dir = model  # a folder: served as given (a missing manifest says so)
    else:
        from tabpilot.automl import readable_model_dir

        model_dir = str(readable_model_dir(model, candidate, workspace))

    settings = ServerSettings(host=host, port=port, token=token, allowed_hosts=allow_host or [],
                              allowed_origins=allow_origin or [],
                              on_bad_value=check_on_bad_value(on_bad_value), **_limits(
        max_invocation_mb=max_invocation_mb, max_body_mb=max_body_mb,
        max_concurrency=max_concurrency, max_queue=max_queue))
    settings.check()
    application = model_app(model_dir, output_keys, token, settings)
    err.print(f"serving {model_dir} on http://{host}:{port}/invocations")
    _uvicorn(application, host, port)


@app.command()
def serve(
    port: Annotated[int, typer.Option()] = 8080,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    token: Token = None,
    s3_root: Annotated[Path | None, typer.Option(
        envvar="TABPILOT_S3_ROOT", help="serve s3://bucket/key from DIR/bucket/key (offline S3)")
    ] = None,
    aws_access_key_id: Annotated[str | None, typer.Option(
        envvar="TABPILOT_AWS_ACCESS_KEY_ID", help="verify SageMaker API signatures made with this key")
    ] = None,
    aws_secret_access_key: Annotated[str | None, typer.Option(
        envvar="TABPILOT_AWS_SECRET_ACCESS_KEY", help="the secret of --aws-access-key-id")] = None,
    allow_root: Annotated[list[str] | None, typer.Option(
        help="a folder (or s3://bucket/prefix) the API may read and write, beside the "
             "workspace and --s3-root; repeatable")] = None,
    trust_model_root: Annotated[list[str] | None, typer.Option(
        help="a folder (or s3://bucket/prefix) whose model directories CreateModel may load "
             "(loading runs their code); the workspace's own are always trusted; repeatable")
    ] = None,
    allow_host: AllowHost = None,
    allow_origin: AllowOrigin = None,
    allow_processing_scripts: Annotated[bool, typer.Option(
        envvar="TABPILOT_ALLOW_PROCESSING_SCRIPTS",
        help="let unauthenticated callers on a loopback address run processing scripts "
             "(CreateProcessingJob runs their code as this user); callers with the token or "
             "a valid signature always may. For a single-user machine only")] = False,
    max_invocation_mb: MaxInvocationMb = None,
    max_body_mb: MaxBodyMb = None,
    max_concurrency: MaxConcurrency = None,
    max_queue: MaxQueue = None,
    log_format: LogFormat = "plain",
    on_bad_value: OnBadValue = "error",
    root_path: Annotated[str, typer.Option(
        help="the path prefix a reverse proxy serves this server under (e.g. /tabpilot); "
             "the proxy strips it before forwarding")] = "",
    workspace: Workspace = None,
) -> None:
    """Serve the endpoints of the workspace, the SageMaker API (boto3 works against it) and
    the Studio web UI at /studio/, with Prometheus metrics at GET /metrics."""
    from tabpilot import ui
    from tabpilot.api.app import install
    from tabpilot.artifacts.validate import check_on_bad_value
    from tabpilot.config import workspace_path
    from tabpilot.serving.app import ServerSettings, server_app

    _access_log(log_format)

    if bool(aws_access_key_id) != bool(aws_secret_access_key):
        raise TabpilotError("give both --aws-access-key-id and --aws-secret-access-key, or neither")
    credentials = {aws_access_key_id: aws_secret_access_key} if aws_access_key_id else {}
    settings = ServerSettings(host=host, port=port, token=token, credentials=credentials,
                              on_bad_value=check_on_bad_value(on_bad_value),
                              allowed_hosts=allow_host or [], allowed_origins=allow_origin or [],
                              workspace=workspace_path(workspace), **_limits(
                                  max_invocation_mb=max_invocation_mb, max_body_mb=max_body_mb,
                                  max_concurrency=max_concurrency, max_queue=max_queue))
    settings.check()
    if s3_root is not None and not s3_root.is_dir():
        raise TabpilotError(f"--s3-root {s3_root} is not a folder; create it or give another")
    for root in [*(allow_root or []), *(trust_model_root or [])]:
        if "://" not in root and not Path(root).is_dir():
            raise TabpilotError(f"root {root} is not a folder; create it or give another")
    if root_path and (not root_path.startswith("/") or "//" in root_path
                      or any(part in (".", "..") for part in root_path.split("/"))):
        raise TabpilotError(f"--root-path must be a path like /tabpilot, got {root_path!r}")
    application = server_app(settings)
    ctx = install(application, settings.workspace, s3_root, credentials, token,
                  allow_roots=allow_root, trust_model_roots=trust_model_root,
                  allow_processing_scripts=allow_processing_scripts)
    ui.install(application, ctx, root_path=root_path.rstrip("/"))
    from tabpilot.api.zygote import ZYGOTE

    ZYGOTE.warm()  # its imports overlap the server's start, not the first training job
    err.print(f"serving the endpoints of {settings.workspace}, the SageMaker API and the "
              f"Studio (http://{host}:{port}{root_path.rstrip('/')}/studio/) on "
              f"http://{host}:{port}")
    _uvicorn(application, host, port, root_path=root_path.rstrip("/"), grace=10)


@app.command()
def deploy(
    job: Annotated[str, typer.Argument(help="job name or model directory")],
    endpoint: Annotated[str, typer.Option(help="endpoint name")],
    candidate: Annotated[str | None, typer.Option(help="candidate (default: best)")] = None,
    capture_percent: Annotated[float, typer.Option(help="share of requests to capture")] = 0.0,
    output_keys: Annotated[str | None, typer.Option(help="default response keys")] = None,
    workspace: Workspace = None,
) -> None:
    """Create an endpoint, or point an existing one at another model (swapped atomically)."""
    from tabpilot.artifacts import verify
    from tabpilot.serving.codec import INFERENCE_KEYS

    names.check(endpoint, "endpoint")
    if candidate is not None:  # checked before the model loads (_model_dir checks the job)
        names.check(candidate, "candidate")
    if not 0 <= capture_percent <= 100:
        raise TabpilotError(f"capture percent must be between 0 and 100, got {capture_percent}")
    for key in (output_keys or "").split(","):
        if key.strip() and key.strip() not in INFERENCE_KEYS:
            raise TabpilotError(f"unknown output key {key!r}; use any of: {', '.join(INFERENCE_KEYS)}")
    model_dir = _model_dir(job, candidate, workspace)
    verify(model_dir)
    is_dir = (Path(job) / "manifest.json").is_file()
    row = _store(workspace).put_endpoint(
        endpoint, model_dir, job=None if is_dir else job, candidate=Path(model_dir).parent.name,
        capture_percent=capture_percent, output_keys=output_keys)
    out.print(f"endpoint {row.name} (version {row.version}) -> {model_dir}")


@app.command()
def endpoints(workspace: Workspace = None, as_json: JsonFlag = False) -> None:
    """List the endpoints of the workspace."""
    rows = _store(workspace).list_endpoints()
    data = [{"EndpointName": r.name, "EndpointStatus": r.status, "Version": r.version,
             "Job": r.job, "Candidate": r.candidate, "ModelDir": r.model_dir,
             "CapturePercent": r.capture_percent} for r in rows]
    if as_json:
        _print_json({"Endpoints": data})
        return
    table = Table(title=f"Endpoints ({len(rows)})")
    for c in ("name", "version", "job", "candidate", "capture %"):
        table.add_column(c)
    for r in rows:
        table.add_row(r.name, str(r.version), r.job or "-", r.candidate or "-",
                      f"{r.capture_percent:g}")
    out.print(table)


@app.command()
def undeploy(name: str, workspace: Workspace = None) -> None:
    """Delete an endpoint; running servers stop serving it within a second."""
    _store(workspace, create=False).delete_endpoint(names.check(name, "endpoint"))
    out.print(f"endpoint {name} deleted")


@app.command()
def transform(
    job: Annotated[str, typer.Argument(help="job name or model directory")],
    source: Annotated[Path, typer.Argument(help="CSV/Parquet file or folder")],
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder")],
    candidate: Annotated[str | None, typer.Option()] = None,
    chunk_rows: Annotated[int, typer.Option(help="rows scored at a time")] = 50_000,
    accept: Annotated[str, typer.Option(help="text/csv or application/jsonlines")] = "text/csv",
    output_keys: Annotated[str | None, typer.Option(
        envvar="SAGEMAKER_INFERENCE_OUTPUT", help="predicted_label,probability,...")] = None,
    input_filter: Annotated[str | None, typer.Option(help="JSONPath, e.g. $[1:]")] = None,
    output_filter: Annotated[str | None, typer.Option(help="JSONPath, e.g. $[0,-1]")] = None,
    join_input: Annotated[bool, typer.Option(help="prepend the input columns")] = False,
    on_bad_value: OnBadValue = "error",
    workspace: Workspace = None,
) -> None:
    """Batch transform: score files in chunks; reruns skip the files already done. A
    forecasting model forecasts the items of each file instead."""
    from tabpilot.artifacts.validate import CLI_HINT, check_on_bad_value
    from tabpilot.serving.batch import TransformSettings
    from tabpilot.serving.batch import transform as run_transform
    from tabpilot.serving.forecasting import load

    if candidate is not None:  # checked before the model loads (_model_dir checks the job)
        names.check(candidate, "candidate")
    if chunk_rows < 1:
        raise TabpilotError(f"chunk rows must be at least 1, got {chunk_rows}")
    if accept not in ("text/csv", "application/jsonlines"):
        raise TabpilotError(f"unsupported --accept {accept!r}; use text/csv or application/jsonlines")
    check_on_bad_value(on_bad_value)
    model = load(_model_dir(job, candidate, workspace))
    found: dict = {}
    done = run_transform(model, source, output, TransformSettings(
        chunk_rows=chunk_rows, accept=accept, output_keys=output_keys, input_filter=input_filter,
        output_filter=output_filter, join_input=join_input, on_bad_value=on_bad_value,
        hint=CLI_HINT), found)
    for name, rows in done.items():
        summary = found[name].summary() if name in found else None
        err.print(f"{name}: {'skipped (done before)' if rows == 0 else f'{rows} rows'}"
                  + (f"; {summary}" if summary else ""), markup=False, highlight=False)
    out.print(f"wrote {sum(done.values())} rows to {output}{os.sep}")
