"""A candidate's page, `/studio/jobs/{job}/candidates/{candidate}`: its metrics with their
confidence intervals, the insights charts (images from their own routes, each with its
numbers as a table), feature importance on the raw columns, a per-row explanation of a
row the user pastes or picks, its CandidateDefinitions notebook section as code, its
downloads (the model directory as a streamed .tar.gz, `tabpilot export`'s script) and
Deploy, which is the endpoints page's deploy (`ui/hosting.py`: the facade's CreateModel,
CreateEndpointConfig, CreateEndpoint), shown as code too.

    GET  .../candidates/{c}                     the page (?row=CSV or ?pick=N explains a row)
    GET  .../candidates/{c}/charts/{name}.png   one insights chart
    GET  .../candidates/{c}/model.tar.gz        the model directory, streamed
    GET  .../candidates/{c}/script.py           the standalone script (`tabpilot export`)
    POST .../candidates/{c}/deploy              deploy as an endpoint (CSRF)
    GET  /api/v1/jobs/{job}/candidates/{c}      metrics, insights, importance as JSON
    GET  /api/v1/code/deploy?job=&candidate=&endpoint=&capture_percent=
"""

from __future__ import annotations

import queue
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from tabpilot import names
from tabpilot.errors import ConfigError, NotFoundError, TabpilotError
from tabpilot.ui import candidate_data as data
from tabpilot.ui import code
from tabpilot.ui.auth import require_csrf
from tabpilot.ui.render import ctx_of, render, url_for_page
from tabpilot.ui.rest import PREFIX, run

router = APIRouter()
PAGE = "/studio/jobs/{job}/candidates/{candidate}"
CHUNK = 1 << 16


def _rows(request: Request, job: str, candidate: str) -> tuple[Any, Any]:
    store = ctx_of(request).store
    names.check(job, "job")
    names.check(candidate, "candidate")
    return store.get_job(job), store.get_candidate(job, candidate)


def _notebook_cells(job_dir: Path, candidate: str) -> list[dict[str, str]]:
    """The candidate's section of CandidateDefinitions.ipynb (its members' first)."""
    from tabpilot.reports import definitions

    defs = definitions.JobDefinitions(job_dir)
    if candidate not in defs.specs:
        return []
    cells: list[dict[str, str]] = []
    for name in definitions._order(defs, [candidate]):
        cells += [{"kind": kind, "text": text}
                  for kind, text in definitions._section(defs, defs.specs[name])]
    return cells


def _explain_row(request: Request, job_row: Any, cand: Any) -> dict[str, Any] | None:
    """The explanation the query asks for: ?row= (a CSV row, the endpoint's format) or
    ?pick= (a validation sample row). None when it asks for none."""
    text = (request.query_params.get("row") or "").strip()
    pick = (request.query_params.get("pick") or "").strip()
    if not text and not pick:
        return None
    from tabpilot.serving.codec import decode, input_columns

    model = data.loaded_model(cand.artifact_dir)
    if text:
        frame = decode(text.encode(), "text/csv", model).head(1)
        source = "the row given"
    else:
        from tabpilot.reports.candidate import load_validation_sample

        try:
            index = int(pick)
        except ValueError:
            raise ConfigError(f"pick a validation row by its number, got {pick[:20]!r}") from None
        sample, truth = load_validation_sample(Path(job_row.job_dir))
        if not 0 <= index < len(sample):
            raise ConfigError(f"validation row {index} does not exist; pick 0 to "
                              f"{len(sample) - 1}")
        frame = sample.iloc[[index]].reset_index(drop=True)
        source = f"validation row {index} (true value {truth[index]})"
    features, _ = model.check(frame)
    contributions = model.explain(frame)
    prediction = model.predict(frame)[0]
    values = contributions.iloc[0]
    order = values.abs().sort_values(ascending=False).index
    columns = input_columns(model)
    row = features.iloc[0]
    return {
        "source": source, "prediction": prediction, "method": contributions.attrs.get("method"),
        "units": contributions.attrs.get("units", ""),
        "base": (contributions.attrs.get("base_value") or [None])[0],
        "contributions": [{"feature": str(c), "value": _cell(row.get(c)),
                           "contribution": float(values[c])} for c in order],
        "csv": ",".join(_cell(row.get(c)) for c in columns),
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    try:
        if value != value:  # NaN
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _sample_row(job_row: Any, meta: dict[str, Any]) -> str:
    """The first validation sample row as the CSV the endpoint takes: a row to start
    from (blank when the job kept no sample)."""
    from tabpilot.reports.candidate import load_validation_sample

    try:
        sample, _ = load_validation_sample(Path(job_row.job_dir))
    except TabpilotError:
        return ""
    wanted = list(meta.get("input_schema") or meta.get("features") or [])  # codec's order
    columns = [c for c in wanted if c in sample.columns]
    if len(columns) != len(wanted):  # the sample lacks a column the endpoint wants
        return ""
    return ",".join(_cell(v) for v in sample[columns].iloc[0]) if columns and len(sample) else ""


def _page_data(request: Request, job: str, candidate: str) -> dict[str, Any]:
    ctx = ctx_of(request)
    job_row, cand = _rows(request, job, candidate)
    out: dict[str, Any] = {"job": job_row, "candidate": cand, "problem": None,
                           "insights": None, "charts": [], "tables": {}, "importance": None,
                           "cells": [], "explained": None, "explain_error": None,
                           "notes": [], "metrics": []}
    if not cand.artifact_dir:
        out["problem"] = (f"This candidate has no packaged model (status {cand.status}"
                          + (f": {cand.failure_reason}" if cand.failure_reason else "")
                          + "), so there is nothing to chart, explain or deploy.")
        return out
    meta = data.metadata(job_row, cand)
    out["meta"] = meta
    try:
        ins = out["insights"] = data.insights(job_row, cand)
        out["charts"], out["tables"] = data.chart_list(ins), data.chart_tables(ins)
        objective = job_row.metric
        metrics = ins.get("metrics", {})
        ordered = ([objective] if objective in metrics else []) + \
            [m for m in metrics if m != objective]
        out["metrics"] = [{"name": m, **metrics[m]} for m in ordered]
    except NotFoundError as exc:
        out["notes"].append(str(exc))
    try:
        out["importance"] = data.importance(job_row, cand)
    except (TabpilotError, OSError) as exc:
        out["notes"].append(f"feature importance: {exc}")
    try:
        out["cells"] = _notebook_cells(Path(job_row.job_dir), cand.name)
    except TabpilotError as exc:
        out["notes"].append(f"notebook section: {exc}")
    try:
        out["explained"] = _explain_row(request, job_row, cand)
    except TabpilotError as exc:
        out["explain_error"] = str(exc)
    endpoint = request.query_params.get("endpoint", "")
    out["deploy_code"] = code.deploy_code(job_row.name, cand.name, endpoint or
                                          f"{job_row.name}-ep"[:63], 0.0, cand.artifact_dir,
                                          ctx.workspace, code.server_url(request))
    out["row_text"] = request.query_params.get("row", "") or _sample_row(job_row, meta)
    out["pick"] = request.query_params.get("pick", "")
    return out


def _missing(request: Request, job: str, candidate: str, message: str) -> Response:
    return render(request, "candidate.html", 404, nav="home", missing=message,
                  job_name=job, candidate_name=candidate)


@router.get(PAGE, include_in_schema=False)
async def candidate_page(request: Request, job: str, candidate: str) -> Response:
    try:
        found = await run_in_threadpool(_page_data, request, job, candidate)
    except NotFoundError as exc:
        return _missing(request, job, candidate, str(exc))
    except TabpilotError as exc:
        return _missing(request, job, candidate, str(exc))
    return _render(request, found, deploy_error=None, form={})


def _render(request: Request, found: dict[str, Any], deploy_error: str | None,
            form: dict[str, Any], status: int = 200) -> Response:
    return render(request, "candidate.html", status, nav="home", missing=None,
                  job_name=found["job"].name, candidate_name=found["candidate"].name,
                  deploy_error=deploy_error, form=form, **found)


@router.get(PAGE + "/charts/{chart}.png", include_in_schema=False)
async def chart_png(request: Request, job: str, candidate: str, chart: str) -> Response:
    def make() -> bytes:
        job_row, cand = _rows(request, job, candidate)
        ins = data.insights(job_row, cand)
        if chart not in {c["name"] for c in data.chart_list(ins)}:
            raise NotFoundError(f"candidate {candidate!r} has no chart {chart!r}")
        return data.chart_png(job_row, cand, chart, lambda: data.draw(ins, chart))

    body = await run(make)
    return Response(body, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=300"})


@router.get(PAGE + "/importance.png", include_in_schema=False)
async def importance_png(request: Request, job: str, candidate: str) -> Response:
    def make() -> bytes:
        from tabpilot.reports import charts

        job_row, cand = _rows(request, job, candidate)
        found = data.importance(job_row, cand)
        rows = found["importance"]
        if not rows:
            raise NotFoundError("no feature importance for this candidate")
        label = charts.importance_label(found["method"], found.get("units"))
        return data.chart_png(job_row, cand, "importance", lambda: charts.importance(
            [r["feature"] for r in rows], [r["value"] for r in rows], label))

    return Response(await run(make), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=300"})


def _tar_chunks(directory: Path, top: str) -> Iterator[bytes]:
    """The folder as a .tar.gz, produced by a thread while the response sends it (a
    bounded queue between them: memory stays a few chunks, whatever the model's size)."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

    class Sink:
        def write(self, b: bytes) -> int:
            chunks.put(bytes(b))
            return len(b)

    def produce() -> None:
        try:
            with tarfile.open(fileobj=Sink(), mode="w|gz", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
                tar.add(str(directory), arcname=top)
            chunks.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            chunks.put(exc)

    threading.Thread(target=produce, daemon=True, name=f"tar-{top}").start()
    while True:
        item = chunks.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


@router.get(PAGE + "/model.tar.gz", include_in_schema=False)
async def model_archive(request: Request, job: str, candidate: str) -> Response:
    def check() -> Path:
        from tabpilot.artifacts import verify

        _, cand = _rows(request, job, candidate)
        if not cand.artifact_dir:
            raise NotFoundError(f"candidate {candidate!r} has no packaged model")
        verify(cand.artifact_dir)  # a corrupted directory is refused, not handed out
        return Path(cand.artifact_dir)

    directory = await run(check)
    filename = f"{job}-{candidate}-model.tar.gz"
    return StreamingResponse(_tar_chunks(directory, f"{job}-{candidate}"),
                             media_type="application/gzip",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                      "Cache-Control": "no-store"})


@router.get(PAGE + "/script.py", include_in_schema=False)
async def export_script(request: Request, job: str, candidate: str) -> Response:
    def make() -> str:
        from tabpilot.reports.standalone import standalone

        job_row, cand = _rows(request, job, candidate)
        return standalone(Path(job_row.job_dir), cand.name)

    text = await run(make)
    return Response(text, media_type="text/x-python; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="{job}-{candidate}.py"'})


@router.post(PAGE + "/deploy", include_in_schema=False, dependencies=[Depends(require_csrf)])
async def deploy(request: Request, job: str, candidate: str) -> Response:
    from tabpilot.ui import hosting

    form = await request.form()
    endpoint = str(form.get("endpoint", "")).strip()
    percent_text = str(form.get("capture_percent", "") or "0").strip()
    ctx = ctx_of(request)
    try:
        try:
            percent = float(percent_text)
        except ValueError:
            raise ConfigError(f"capture percent must be a number from 0 to 100, got "
                              f"{percent_text[:20]!r}") from None
        await run_in_threadpool(hosting.deploy, ctx, endpoint, job, candidate, percent)
    except TabpilotError as exc:
        try:
            found = await run_in_threadpool(_page_data, request, job, candidate)
        except TabpilotError as missing:
            return _missing(request, job, candidate, str(missing))
        return _render(request, found, deploy_error=str(exc),
                       form={"endpoint": endpoint, "capture_percent": percent_text}, status=400)
    return RedirectResponse(url_for_page(request, f"/studio/endpoints/{endpoint}"), 303)


# -- JSON ---------------------------------------------------------------------------------
@router.get(PREFIX + "/jobs/{job}/candidates/{candidate}", tags=["candidates"])
async def candidate_json(request: Request, job: str, candidate: str) -> dict[str, Any]:
    """A candidate's row, its insights (metrics with 95 % intervals, curves, tables) and
    its feature importance on the raw columns."""
    def gather() -> dict[str, Any]:
        job_row, cand = _rows(request, job, candidate)
        out: dict[str, Any] = {
            "job": job_row.name, "candidate": cand.name, "algorithm": cand.algorithm,
            "status": cand.status, "objective": cand.objective,
            "objective_metric": job_row.metric, "latency_ms_p50": cand.latency_ms_p50,
            "model_bytes": cand.model_bytes, "fit_seconds": cand.fit_seconds,
            "params": cand.params}
        if cand.artifact_dir:
            out["insights"] = data.insights(job_row, cand)
            out["importance"] = data.importance(job_row, cand)
        return out

    return await run(gather)


@router.get(PREFIX + "/code/deploy", tags=["candidates"])
async def deploy_code(request: Request, job: str, candidate: str, endpoint: str = "",
                      capture_percent: float = 0.0) -> dict[str, str]:
    """Deploying a candidate as a CLI command, Python and boto3 calls."""
    def make() -> dict[str, str]:
        _, cand = _rows(request, job, candidate)
        return code.deploy_code(job, candidate, endpoint, capture_percent,
                                cand.artifact_dir or "MODEL_DIR", ctx_of(request).workspace,
                                code.server_url(request))

    return await run(make)
