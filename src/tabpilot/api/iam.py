"""IAM's SimulatePrincipalPolicy and GetRole: the calls the SageMaker Python SDK v3 makes to
check an execution role before it trains or deploys (`sagemaker.core.helper.
iam_role_resolver`), answered by `tabpilot serve` in IAM's query protocol so that
`AWS_ENDPOINT_URL_IAM` can point at the server.

tabpilot has no IAM. A job's or model's RoleArn is recorded and shown, never assumed: the
work runs with the server's own rights, for any caller the server has authenticated (a
token or a SigV4 signature off loopback; docs/security.md). The answers say exactly that:
every role of the account exists (GetRole describes it, trusted by SageMaker, as a role
must be for the SDK to accept it), and every action is allowed for it
(SimulatePrincipalPolicy), since nothing a role could forbid is enforced here.
"""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import quote
from xml.sax.saxutils import escape

from tabpilot.jobs.arns import ACCOUNT

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
ACTIONS = ("SimulatePrincipalPolicy", "GetRole")
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")  # IAM's own rule for role names
CREATED = "2024-01-01T00:00:00Z"  # no role is ever created: one fixed date for every role
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


class IamError(ValueError):
    """A request IAM would refuse: (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def members(params: dict[str, list[str]], name: str) -> list[str]:
    """A query-protocol list (`Name.member.1`, `Name.member.2`, ...) in its order."""
    found = [(int(k.rsplit(".", 1)[1]), v[0]) for k, v in params.items()
             if k.startswith(f"{name}.member.") and k.rsplit(".", 1)[1].isdigit()]
    return [v for _, v in sorted(found)]


def answer(action: str, params: dict[str, list[str]]) -> str:
    """The `<{action}Result>` element's inner XML; IamError for a bad request."""
    if action == "GetRole":
        name = (params.get("RoleName") or [""])[0]
        if not ROLE_NAME.fullmatch(name):
            raise IamError("ValidationError", "RoleName must be 1-64 letters, digits or "
                           f"+=,.@_- (got {name!r})")
        return _role(name)
    source = (params.get("PolicySourceArn") or [""])[0]
    if not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:(role|user|group)/[\w+=,.@/-]+", source):
        raise IamError("InvalidInput", f"PolicySourceArn must be an IAM role, user or group "
                       f"ARN (got {source!r})")
    actions = members(params, "ActionNames")
    if not actions:
        raise IamError("ValidationError", "ActionNames must list at least one action")
    resources = members(params, "ResourceArns") or ["*"]
    results = "".join(
        f"<member><EvalActionName>{escape(a)}</EvalActionName><EvalResourceName>"
        f"{escape(r)}</EvalResourceName><EvalDecision>allowed</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/></member>"
        for a in actions for r in resources)
    return f"<EvaluationResults>{results}</EvaluationResults><IsTruncated>false</IsTruncated>"


def _role(name: str) -> str:
    document = quote(json.dumps(TRUST, separators=(",", ":")), safe="")
    return (f"<Role><Path>/</Path><RoleName>{name}</RoleName>"
            f"<RoleId>AROA{_role_id(name)}</RoleId>"
            f"<Arn>arn:aws:iam::{ACCOUNT}:role/{name}</Arn><CreateDate>{CREATED}</CreateDate>"
            f"<AssumeRolePolicyDocument>{document}</AssumeRolePolicyDocument>"
            "<MaxSessionDuration>3600</MaxSessionDuration></Role>")


def _role_id(name: str) -> str:
    """A stable id per role name, IAM's shape (AROA + 17 upper-case letters and digits)."""
    digest = hashlib.sha256(name.encode()).hexdigest().upper()
    return digest[:17]
