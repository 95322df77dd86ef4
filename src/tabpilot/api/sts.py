"""The query-protocol calls (a form body, an XML answer) `tabpilot serve` answers on
`POST /`: STS's GetCallerIdentity, the one STS call the SageMaker Python SDK makes (for the
account in default bucket names, telemetry and ARNs), so `AWS_ENDPOINT_URL_STS` can point
at the server; and IAM's SimulatePrincipalPolicy and GetRole, SDK v3's role check
(api/iam.py), for `AWS_ENDPOINT_URL_IAM`. The caller is the access key that signed the
request; the account is the one in every ARN tabpilot gives out.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from fastapi.responses import Response

from tabpilot.api import iam
from tabpilot.jobs.arns import ACCOUNT

FORM = "application/x-www-form-urlencoded"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
ACTIONS = ("GetCallerIdentity", *iam.ACTIONS)


def is_query_call(content_type: str | None, target: str) -> bool:
    """A query-protocol request (form body, no X-Amz-Target): STS's way of calling."""
    return not target and (content_type or "").split(";")[0].strip().lower() == FORM


def parse(body: bytes) -> dict[str, list[str]]:
    """A query-protocol body's parameters (parsed once per request)."""
    return parse_qs(body.decode("utf-8", "replace"))


def action_of(params: dict[str, list[str]]) -> str:
    """The call's Action, for the request log and metrics: one of ACTIONS, else "Unknown"."""
    action = (params.get("Action") or [""])[0]
    return action if action in ACTIONS else "Unknown"


def answer(params: dict[str, list[str]], authorization: str | None) -> Response:
    action = (params.get("Action") or [""])[0]
    request_id = str(uuid.uuid4())
    if action in iam.ACTIONS:
        try:
            inner = iam.answer(action, params)
        except iam.IamError as exc:
            return _error(exc.code, str(exc), request_id, iam.NAMESPACE)
        return _xml(action, inner, request_id, iam.NAMESPACE)
    if action != "GetCallerIdentity":
        return _error("InvalidAction", f"tabpilot answers STS's GetCallerIdentity and IAM's "
                      f"{' and '.join(iam.ACTIONS)} only; got Action={action or '(none)'}",
                      request_id)
    key = _access_key(authorization) or "tabpilot"
    return _xml(action, f"<Arn>arn:aws:iam::{ACCOUNT}:user/{escape(key)}</Arn>"
                f"<UserId>{escape(key)}</UserId><Account>{ACCOUNT}</Account>", request_id)


def _xml(action: str, inner: str, request_id: str, namespace: str = NAMESPACE) -> Response:
    xml = (f'<{action}Response xmlns="{namespace}"><{action}Result>{inner}</{action}Result>'
           f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
           f"</{action}Response>")
    return Response(xml, media_type="text/xml", headers={"x-amzn-RequestId": request_id})


def _access_key(authorization: str | None) -> str | None:
    """The access key id in a SigV4 Authorization header (the guard has checked it)."""
    if not authorization or "Credential=" not in authorization:
        return None
    return authorization.split("Credential=", 1)[1].split("/", 1)[0].strip() or None


def _error(code: str, message: str, request_id: str, namespace: str = NAMESPACE) -> Response:
    xml = (f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{code}</Code>'
           f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
           "</ErrorResponse>")
    return Response(xml, status_code=400, media_type="text/xml",
                    headers={"x-amzn-RequestId": request_id})
