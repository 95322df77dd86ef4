"""What a processing job's image means here: the Model Monitor analyzer, or a script.

Only the repository of `AppSpecification.ImageUri` decides (the account differs per
region): `sagemaker-model-monitor-analyzer` is the analyzer. Any other image runs the
request's ContainerEntrypoint as a script processor, and only when that entrypoint is a
Python or shell interpreter (what SKLearnProcessor, ScriptProcessor with
`command=["python3"]` and FrameworkProcessor's `runproc.sh` send): the script runs with
tabpilot's own Python (`sys.executable`), not the image's, so the image's extra packages
are not there. An image's own program (no entrypoint, or a binary of the image) cannot
run without the image and is refused when the job is created.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tabpilot.errors import ConfigError

ANALYZER = "analyzer"
SCRIPT = "script"
ANALYZER_REPOSITORIES = ("sagemaker-model-monitor-analyzer",)
PYTHONS = re.compile(r"^python(3(\.\d+)?)?$")
SHELLS = {"bash": "/bin/bash", "sh": "/bin/sh"}


def repository(uri: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>` -> repository."""
    name = uri.strip().split("@", 1)[0]
    name = name.split("/", 1)[1] if "/" in name and "." in name.split("/", 1)[0] else name
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def kind(uri: str, entrypoint: list[str] | None) -> str:
    """ANALYZER or SCRIPT; ConfigError for an image whose own program would have to run."""
    if repository(uri) in ANALYZER_REPOSITORIES:
        return ANALYZER
    if not entrypoint:
        raise ConfigError(
            f"AppSpecification.ContainerEntrypoint: image {uri!r} would run its own program, "
            "which tabpilot cannot run without the image; give a Python script as "
            "SKLearnProcessor / ScriptProcessor(command=['python3']) do, or use the Model "
            "Monitor analyzer image")
    program(entrypoint[0])
    return SCRIPT


def program(first: str) -> str:
    """The local program for the entrypoint's first word: tabpilot's Python for any
    python/python3/python3.X, the system's bash or sh, or a script of the job (a path
    under /opt/ml, run as is)."""
    name = Path(first).name
    if PYTHONS.match(name):
        return sys.executable
    if name in SHELLS:
        return SHELLS[name]
    if first.startswith("/opt/ml/"):
        return first
    raise ConfigError(f"AppSpecification.ContainerEntrypoint: {first!r} is a program of the "
                      "image; tabpilot runs python3, bash or sh (with the script as an "
                      "argument), or a script the job copies under /opt/ml/processing")
