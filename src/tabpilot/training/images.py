"""Which built-in algorithm a container image is, from the URI `sagemaker.image_uris.retrieve`
returns: `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>`.

The account differs per region (and per partition), so only the repository decides; the
tag (the algorithm's version, e.g. XGBoost's `1.7-1`) is kept for Describe and otherwise
does not change what runs here. A plain `repository:tag` is accepted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tabpilot.errors import ConfigError

# repository -> algorithm; `xgboost` is the pre-1.0 generic repository of the old SDKs
REPOSITORIES = {
    "sagemaker-xgboost": "xgboost", "xgboost": "xgboost",
    "linear-learner": "linear-learner", "kmeans": "kmeans", "knn": "knn",
    "randomcutforest": "randomcutforest",
}
_ECR = re.compile(r"^(?:(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com"
                  r"(?:\.cn)?/)?(?P<repository>[a-z0-9][a-z0-9._/-]*?)"
                  r"(?::(?P<tag>[A-Za-z0-9_.-]+))?(?:@sha256:[0-9a-f]{64})?$")


@dataclass(frozen=True)
class BuiltinImage:
    uri: str
    algorithm: str  # a key of REPOSITORIES' values
    tag: str


def parse(uri: str) -> BuiltinImage | None:
    """The built-in algorithm behind `uri`, or None for any other image."""
    found = _ECR.match(uri.strip())
    if found is None:
        return None
    algorithm = REPOSITORIES.get(found["repository"])
    if algorithm is None:
        return None
    return BuiltinImage(uri, algorithm, found["tag"] or "latest")


def builtin(uri: str, field: str = "AlgorithmSpecification.TrainingImage") -> BuiltinImage:
    """`parse`, or one line naming the images tabpilot runs."""
    image = parse(uri)
    if image is None:
        raise ConfigError(
            f"{field}: {uri!r} is not a built-in algorithm image tabpilot runs; use the URI "
            "sagemaker.image_uris.retrieve gives for one of: "
            f"{', '.join(sorted(set(REPOSITORIES.values())))} (e.g. "
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1)")
    return image
