"""The container's file system, mapped into a job folder.

A processing container sees its inputs and outputs under `/opt/ml/processing/...` and its
job description under `/opt/ml/config/`. tabpilot runs no container, so every such path
becomes the same path under `<job dir>/opt/ml/`:

    /opt/ml/processing/input/code/preprocess.py -> <job dir>/opt/ml/processing/input/code/preprocess.py

The mapping is applied to the request's LocalPaths, to ContainerEntrypoint and
ContainerArguments (any argument naming a path under /opt/ml, also inside
`--input=/opt/ml/...`), and to the text of the `.py` and `.sh` files the job copies into
its code inputs, since SageMaker's examples write `/opt/ml/processing/...` into the script
itself. The script also finds the folder in `$TABPILOT_CONTAINER_ROOT`.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from pathlib import Path
from typing import Any

from tabpilot.errors import ConfigError
from tabpilot.processing import CONTAINER_ROOT, PROCESSING_ROOT

log = logging.getLogger("tabpilot.processing")
# /opt/ml as a path of its own: not inside another path (/x/opt/ml), not a longer name
_CONTAINER_PATH = re.compile(r"(?<![\w./-])/opt/ml(?=/|$|[^\w.-])")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")  # a folder written into code as is
CODE_SUFFIXES = (".py", ".sh")


def check_local(path: str, field: str) -> str:
    """A LocalPath of the request: absolute, normalised, under /opt/ml/processing/."""
    normal = posixpath.normpath(path)
    if not path.startswith("/") or normal != path.rstrip("/") \
            or not normal.startswith(PROCESSING_ROOT + "/"):
        raise ConfigError(f"{field}: {path!r} is not a folder under {PROCESSING_ROOT}/ (such "
                          f"as {PROCESSING_ROOT}/input/data); give an absolute path there")
    return normal


class ContainerPaths:
    """`/opt/ml/...` on this machine: `<job dir>/opt/ml/...`."""

    def __init__(self, job_dir: Path) -> None:
        self.root = Path(job_dir).resolve() / "opt" / "ml"

    def local(self, path: str) -> Path:
        """The job folder's place for a container path (checked by `check_local` or
        rewritten wholesale: anything else stays inside the root all the same)."""
        normal = posixpath.normpath("/" + path.lstrip("/"))
        if normal != CONTAINER_ROOT and not normal.startswith(CONTAINER_ROOT + "/"):
            raise ConfigError(f"{path!r} is not under {CONTAINER_ROOT}/")
        inside = self.root / normal[len(CONTAINER_ROOT):].lstrip("/")
        if not inside.resolve().is_relative_to(self.root):
            raise ConfigError(f"{path!r} leads out of the job's folder")
        return inside

    def rewrite(self, text: str) -> str:
        """Every /opt/ml path in `text` (an argument, a line of code) as the local one."""
        return _CONTAINER_PATH.sub(lambda _: str(self.root), text)

    def rewrite_code(self, folder: Path) -> list[Path]:
        """Rewrite the /opt/ml paths in the `.py` and `.sh` files under `folder`; the
        files rewritten. Skipped (with a warning) when the job folder's path has
        characters a string literal or a shell word would need escaped."""
        if not _SAFE_PATH.match(str(self.root)):
            log.warning("the job folder %s has characters that cannot be written into code "
                        "unescaped; /opt/ml paths in the scripts are left as they are "
                        "(read $TABPILOT_CONTAINER_ROOT instead)", self.root)
            return []
        changed = []
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix not in CODE_SUFFIXES:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            new = self.rewrite(text)
            if new != text:
                path.write_text(new, encoding="utf-8")
                changed.append(path)
        return changed

    def write_config(self, request: dict[str, Any]) -> None:
        """/opt/ml/config/processingjobconfig.json and resourceconfig.json, which scripts
        written for SageMaker read for their job's name and hosts."""
        config = self.local(CONTAINER_ROOT + "/config")
        config.mkdir(parents=True, exist_ok=True)
        (config / "processingjobconfig.json").write_text(json.dumps(request, default=str,
                                                                    indent=1))
        (config / "resourceconfig.json").write_text(json.dumps(
            {"current_host": "algo-1", "hosts": ["algo-1"]}))
