"""Verify AWS Signature Version 4 on incoming requests, with botocore's own signer.

The server rebuilds the canonical request from what arrived, using only the headers the
client says it signed, recomputes the signature with the secret key of the access key id
named in the credential scope, and compares in constant time. Errors carry AWS's codes.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re


class SignatureError(Exception):
    """A request whose signature does not check out, with AWS's error code and status."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=15)
_FIELDS = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]+)")


def is_signed(authorization: str | None) -> bool:
    return bool(authorization) and authorization.startswith(ALGORITHM)


def verify(method: str, url: str, headers: dict[str, str], body: bytes,
           credentials: dict[str, str], now: dt.datetime | None = None) -> str:
    """The access key id that signed the request; SignatureError (403) when it does not check out.

    `headers` are the request's headers with lower-case names; `url` is scheme, host, the
    raw (still percent-encoded) path and the query string as received.
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fields = dict(_FIELDS.findall(headers.get("authorization", "")))
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise SignatureError("IncompleteSignatureException", "Authorization header requires "
                       "'Credential', 'SignedHeaders' and 'Signature' parameters.", 403)
    try:
        key_id, date, region, service, terminator = fields["Credential"].split("/")
    except ValueError:
        raise SignatureError("IncompleteSignatureException", "Credential must be "
                       "KEY/DATE/REGION/SERVICE/aws4_request.", 403) from None
    secret = credentials.get(key_id)
    if secret is None:
        raise SignatureError("UnrecognizedClientException",
                       "The security token included in the request is invalid.", 403)
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise SignatureError("IncompleteSignatureException", "X-Amz-Date is missing or not "
                       "YYYYMMDD'T'HHMMSS'Z'.", 403) from None
    now = now or dt.datetime.now(dt.UTC)
    if abs(now - signed_at) > MAX_SKEW:
        raise SignatureError("InvalidSignatureException", f"Signature expired: {stamp} is now earlier "
                       f"than {(now - MAX_SKEW):%Y%m%dT%H%M%SZ}.", 403)
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed or not stamp.startswith(date) or terminator != "aws4_request":
        raise SignatureError("InvalidSignatureException", "The credential scope or signed headers "
                       "do not match the request.", 403)
    request = AWSRequest(method=method, url=url, data=body,
                         headers={h: headers.get(h, "") for h in signed})
    request.context["timestamp"] = stamp
    auth = SigV4Auth(Credentials(key_id, secret), service, region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SignatureError("InvalidSignatureException",
                       "The request signature we calculated does not match the signature you "
                       "provided. Check your AWS Secret Access Key and signing method.", 403)
    return key_id
