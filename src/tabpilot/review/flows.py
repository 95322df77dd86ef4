"""Flow definitions and human task UIs as the store keeps them (resources of kinds
`flow-definition` and `human-task-ui`), and the names and ARNs A2I gives them.

A flow definition says how many distinct reviewers answer each item (TaskCount), how long a
reviewer may hold one (TaskTimeLimitInSeconds, the lease), how long an item waits for
reviewers (TaskAvailabilityLifetimeInSeconds), and where outputs go: its S3OutputPath is
resolved to a local folder once, when it is created (by the API's location resolver, or
taken as a folder from the CLI), and kept as `output_dir`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tabpilot.errors import NotFoundError, TabpilotError
from tabpilot.store import Store

FLOW, UI, LOOP, ROUTE, REVIEWER = ("flow-definition", "human-task-ui", "human-loop",
                                   "review-route", "reviewer")
REGION, ACCOUNT = "local", "000000000000"  # as jobs/views.py's ARNs
# A2I's names: lower-case letters, digits and single dashes, at most 63 characters
NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
DEFAULT_TASK_SECONDS = 3600  # A2I's default TaskTimeLimitInSeconds
DEFAULT_LIFETIME_SECONDS = 864000  # A2I's default TaskAvailabilityLifetimeInSeconds (10 days)


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


def name_from_arn(value: str, kind: str) -> str:
    """'arn:aws:sagemaker:...:flow-definition/NAME' -> NAME (a bare name is taken as is)."""
    marker = f":{kind}/"
    return value.split(marker, 1)[1] if marker in value else value


def check_name(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise TabpilotError(f"{what} name {name[:80]!r} is not valid: use 1-63 lower-case "
                            "letters, digits and single dashes, starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Flow:
    """What the review desk needs of a flow definition."""

    name: str
    task_count: int
    task_seconds: int
    lifetime_seconds: int
    output_uri: str  # S3OutputPath as given (DescribeHumanLoop's OutputS3Uri starts with it)
    output_dir: str  # the local folder it resolved to
    title: str
    description: str

    @property
    def arn(self) -> str:
        return arn(FLOW, self.name)


def flow_spec(request: dict[str, Any], output_dir: str) -> dict[str, Any]:
    """The stored form of a CreateFlowDefinition request."""
    return {"request": request, "output_dir": output_dir}


def load_flow(store: Store, name: str) -> Flow:
    row = store.find_resource(FLOW, name)
    if row is None:
        raise NotFoundError(f"no flow definition named {name!r}; create one with "
                            "CreateFlowDefinition (`tabpilot review flows` lists them)")
    request = row.spec["request"]
    config = request.get("HumanLoopConfig", {})
    return Flow(name=row.name, task_count=int(config.get("TaskCount", 1)),
                task_seconds=int(config.get("TaskTimeLimitInSeconds", DEFAULT_TASK_SECONDS)),
                lifetime_seconds=int(config.get("TaskAvailabilityLifetimeInSeconds",
                                                DEFAULT_LIFETIME_SECONDS)),
                output_uri=request["OutputConfig"]["S3OutputPath"],
                output_dir=row.spec["output_dir"], title=config.get("TaskTitle", row.name),
                description=config.get("TaskDescription", ""))
