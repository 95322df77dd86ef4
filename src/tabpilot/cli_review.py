"""`tabpilot review ...`: human review of predictions (A2I-shaped) from the terminal.

    review flow create NAME --output DIR   a flow definition (as CreateFlowDefinition)
    review flows | loops [FLOW]            what exists, with statuses and agreement
    review reviewer add | remove | list    reviewers of the page at /review/ on `tabpilot serve`
    review route ENDPOINT --flow-definition F --below 0.7 [--margin] [--audit-percent 2]
    review export FLOW --retraining-table OUT.csv
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from tabpilot.cli import JsonFlag, Workspace, _print_json, _store, app, err, say

review_app = typer.Typer(no_args_is_help=True, help=(
    "Human review of predictions, shaped like SageMaker Augmented AI: flow definitions, "
    "reviewers, routing an endpoint's doubtful predictions, exports."))
reviewer_app = typer.Typer(no_args_is_help=True, help="reviewers of the review page")
flow_app = typer.Typer(no_args_is_help=True, help="flow definitions")
app.add_typer(review_app, name="review")
review_app.add_typer(reviewer_app, name="reviewer")
review_app.add_typer(flow_app, name="flow")

DEFAULT_UI = "tabpilot-tabular"
ROLE = "arn:aws:iam::000000000000:role/tabpilot"



@flow_app.command("create")
def flow_create(
    name: Annotated[str, typer.Argument(help="flow definition name (lower-case, digits, -)")],
    output: Annotated[Path, typer.Option(help="folder for the loops' output.json files")],
    task_count: Annotated[int, typer.Option(help="distinct reviewers per item (1-3)")] = 1,
    title: Annotated[str, typer.Option(help="what reviewers see as the task's title")
                     ] = "Review a prediction",
    description: Annotated[str, typer.Option(help="the task's instructions")
                           ] = "Choose the correct label for this row.",
    task_seconds: Annotated[int, typer.Option(
        help="a reviewer's lease on an item (TaskTimeLimitInSeconds)")] = 3600,
    lifetime_seconds: Annotated[int, typer.Option(
        help="how long an item waits for reviewers (TaskAvailabilityLifetimeInSeconds)")
    ] = 864000,
    workspace: Workspace = None,
) -> None:
    """Create a flow definition, as CreateFlowDefinition does over the API."""
    from tabpilot.errors import TabpilotError
    from tabpilot.review.flows import FLOW, UI, arn, check_name, flow_spec

    check_name(name, "flow definition")
    if not 1 <= task_count <= 3:
        raise TabpilotError(f"--task-count must be 1 to 3 (A2I's range); got {task_count}")
    if task_seconds < 30 or lifetime_seconds < 1:
        raise TabpilotError("--task-seconds must be at least 30 and --lifetime-seconds at least 1")
    store = _store(workspace)
    if store.find_resource(FLOW, name) is not None:
        raise TabpilotError(f"flow definition {name} exists already")
    if store.find_resource(UI, DEFAULT_UI) is None:
        content = "<!-- tabpilot renders tabular review tasks itself: /review/ -->"
        store.add_resource(UI, DEFAULT_UI, {"Content": content, "ContentSha256":
                                            hashlib.sha256(content.encode()).hexdigest()},
                           "Active")
    folder = output.resolve()
    request = {"FlowDefinitionName": name, "RoleArn": ROLE,
               "OutputConfig": {"S3OutputPath": str(folder)},
               "HumanLoopConfig": {"WorkteamArn": arn("workteam", "private-crowd/reviewers"),
                                   "HumanTaskUiArn": arn(UI, DEFAULT_UI), "TaskTitle": title,
                                   "TaskDescription": description, "TaskCount": task_count,
                                   "TaskTimeLimitInSeconds": task_seconds,
                                   "TaskAvailabilityLifetimeInSeconds": lifetime_seconds}}
    store.add_resource(FLOW, name, flow_spec(request, str(folder)), "Active")
    say(f"flow definition {name}: {task_count} reviewer(s) per item, outputs in {folder}")


@review_app.command("flows")
def flows(workspace: Workspace = None, as_json: JsonFlag = False) -> None:
    """List the flow definitions and their loops by status."""
    from collections import Counter

    from tabpilot.review.flows import FLOW, LOOP

    store = _store(workspace, create=False)
    counts: dict[str, Counter] = {}
    for row in store.list_resources(LOOP):
        counts.setdefault(row.spec["FlowDefinitionName"], Counter())[row.status] += 1
    rows = [{"FlowDefinitionName": r.name, "TaskCount": r.spec["request"]["HumanLoopConfig"]
             ["TaskCount"], "Output": r.spec["output_dir"], "Loops": dict(counts.get(r.name, {}))}
            for r in store.list_resources(FLOW)]
    if as_json:
        _print_json(rows)
        return
    for r in rows or []:
        loops = ", ".join(f"{k} {v}" for k, v in sorted(r["Loops"].items())) or "no loops"
        say(f"{r['FlowDefinitionName']}  {r['TaskCount']} reviewer(s)  {loops}  -> {r['Output']}")
    if not rows:
        say("no flow definitions; create one with `tabpilot review flow create`")


@review_app.command("loops")
def loops(
    flow: Annotated[str | None, typer.Argument(help="only this flow definition's")] = None,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """List human loops: status, answers, the agreed label and the agreement."""
    from tabpilot.review.flows import LOOP

    store = _store(workspace, create=False)
    rows = []
    for r in store.list_resources(LOOP):
        if flow is not None and r.spec["FlowDefinitionName"] != flow:
            continue
        consensus = r.spec.get("consensus") or {}
        rows.append({"HumanLoopName": r.name, "FlowDefinitionName": r.spec["FlowDefinitionName"],
                     "HumanLoopStatus": r.status, "Answers": len(r.spec["answers"]),
                     "Needed": r.spec["needed"], "Label": consensus.get("label"),
                     "Agreement": consensus.get("agreement"),
                     "FailureReason": r.failure_reason})
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        agreed = f"  {r['Label']} ({r['Agreement']:.0%} agreement)" if r["Label"] is not None \
            else ""
        say(f"{r['HumanLoopName']}  {r['HumanLoopStatus']}  {r['Answers']}/{r['Needed']} "
             f"answers{agreed}")


@reviewer_app.command("add")
def reviewer_add(
    name: Annotated[str, typer.Argument(help="the reviewer's name (their workerId)")],
    workspace: Workspace = None,
) -> None:
    """Add a reviewer and print their token, once: only its hash is kept."""
    from tabpilot.review.reviewers import add_reviewer

    token = add_reviewer(_store(workspace), name)
    err.print(f"reviewer {name} added; give them this token (it is not shown again) and the "
              "page http://HOST:PORT/review/", markup=False, highlight=False)
    say(token)


@reviewer_app.command("remove")
def reviewer_remove(name: Annotated[str, typer.Argument()], workspace: Workspace = None) -> None:
    """Remove a reviewer: their token and sessions stop working at once."""
    from tabpilot.review.reviewers import remove_reviewer

    remove_reviewer(_store(workspace, create=False), name)
    say(f"reviewer {name} removed")


@reviewer_app.command("list")
def reviewer_list(workspace: Workspace = None, as_json: JsonFlag = False) -> None:
    """List the reviewers (names only; tokens are not kept)."""
    from tabpilot.review.reviewers import reviewers

    names = reviewers(_store(workspace, create=False))
    if as_json:
        _print_json(names)
        return
    for name in names:
        say(name)


@review_app.command("route")
def route(
    endpoint: Annotated[str, typer.Argument(help="the endpoint whose predictions to route")],
    flow_definition: Annotated[str | None, typer.Option(
        "--flow-definition", help="the flow definition that reviews them")] = None,
    below: Annotated[float, typer.Option(
        help="review rows whose confidence (top probability) is below this")] = 0.7,
    margin: Annotated[bool, typer.Option(
        "--margin", help="compare the gap between the top two probabilities instead")] = False,
    audit_percent: Annotated[float, typer.Option(
        help="also review this random share of all other rows")] = 0.0,
    remove: Annotated[bool, typer.Option("--remove", help="stop routing this endpoint")
                      ] = False,
    workspace: Workspace = None,
) -> None:
    """Send an endpoint's doubtful predictions to human review (a running `tabpilot serve`
    picks the route up within a second)."""
    from tabpilot.errors import TabpilotError
    from tabpilot.review.routing import Route, remove_route, set_route

    store = _store(workspace, create=False)
    if remove:
        remove_route(store, endpoint)
        say(f"predictions of {endpoint} are no longer routed to review")
        return
    if flow_definition is None:
        raise TabpilotError("give --flow-definition NAME (or --remove)")
    made = set_route(store, Route(endpoint, flow_definition, below, margin, audit_percent))
    what = "top-two margin" if made.margin else "confidence"
    audit = f", plus {made.audit_percent:g}% of the rest" if made.audit_percent else ""
    say(f"{endpoint}: rows with {what} below {made.below:g}{audit} go to flow "
         f"{made.flow}")


@review_app.command("export")
def export(
    flow: Annotated[str, typer.Argument(help="the flow definition whose reviews to export")],
    retraining_table: Annotated[Path, typer.Option(
        help="write the original rows with their reviewed labels here (.csv or .parquet)")],
    target: Annotated[str | None, typer.Option(
        help="the label column's name (default: the model's target, else 'label')")] = None,
    provenance: Annotated[bool, typer.Option(
        help="add review_* provenance columns (never used for training, see below)")] = True,
    workspace: Workspace = None,
) -> None:
    """Write the retraining table, and beside it TABLE.features.json, a FeatureSpecification
    naming only the original columns: train with
    `tabpilot run TABLE --target T --feature-types TABLE.features.json`."""
    from tabpilot.review.export import write_retraining_table

    path, spec, n, column = write_retraining_table(
        _store(workspace, create=False), flow, retraining_table, target, provenance)
    say(f"{n} reviewed rows -> {path} (label column {column}); train on it with: "
         f"tabpilot run {path} --target {column} --feature-types {spec}")
