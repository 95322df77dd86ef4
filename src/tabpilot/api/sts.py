"""STS's GetCallerIdentity, the one STS call the SageMaker Python SDK makes (for the account
in default bucket names, telemetry and ARNs), answered by `tabpilot serve` on `POST /` in
STS's query protocol (a form body, an XML answer), so `AWS_ENDPOINT_URL_STS` can point at
the server. The caller is the access key that signed the request; the account is the one
in every ARN tabpilot gives out.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from fastapi.responses import Response

from tabpilot.jobs.views import ACCOUNT

FORM = "application/x-www-form-urlencoded"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


def is_query_call(content_type: str | None, target: str) -> bool:
    """A query-protocol request (form body, no X-Amz-Target): STS's way of calling."""
    return not target and (content_type or "").split(";")[0].strip().lower() == FORM


def answer(body: bytes, authorization: str | None) -> Response:
    params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    action = params.get("Action", "")
    request_id = str(uuid.uuid4())
    if action != "GetCallerIdentity":
        return _error("InvalidAction", f"tabpilot answers STS's GetCallerIdentity only; "
                      f"got Action={action or '(none)'}", request_id)
    key = _access_key(authorization) or "tabpilot"
    xml = (f'<GetCallerIdentityResponse xmlns="{NAMESPACE}"><GetCallerIdentityResult>'
           f"<Arn>arn:aws:iam::{ACCOUNT}:user/{escape(key)}</Arn>"
           f"<UserId>{escape(key)}</UserId><Account>{ACCOUNT}</Account>"
           f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId>"
           "</ResponseMetadata></GetCallerIdentityResponse>")
    return Response(xml, media_type="text/xml", headers={"x-amzn-RequestId": request_id})


def _access_key(authorization: str | None) -> str | None:
    """The access key id in a SigV4 Authorization header (the guard has checked it)."""
    if not authorization or "Credential=" not in authorization:
        return None
    return authorization.split("Credential=", 1)[1].split("/", 1)[0].strip() or None


def _error(code: str, message: str, request_id: str) -> Response:
    xml = (f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
           f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
           "</ErrorResponse>")
    return Response(xml, status_code=400, media_type="text/xml",
                    headers={"x-amzn-RequestId": request_id})
