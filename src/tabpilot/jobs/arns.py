"""The account, region and ARNs of everything tabpilot gives out, in SageMaker's form (one
light module: the worker processes and the query-protocol answers need them without the
job views' imports)."""

from __future__ import annotations

REGION, ACCOUNT = "local", "000000000000"


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"
