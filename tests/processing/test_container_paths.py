"""The container's /opt/ml mapped into a job folder (processing/container.py) and the image
kinds (processing/images.py): pure functions, no job."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tabpilot.errors import ConfigError
from tabpilot.processing import images
from tabpilot.processing.container import ContainerPaths, check_local


def test_paths_arguments_and_code_are_mapped(tmp_path: Path) -> None:
    paths = ContainerPaths(tmp_path / "job")
    root = str(tmp_path.resolve() / "job" / "opt" / "ml")
    assert paths.local("/opt/ml/processing/input/data") == Path(root) / "processing/input/data"
    assert paths.rewrite("--out=/opt/ml/processing/output") == f"--out={root}/processing/output"
    assert paths.rewrite("/opt/ml") == root
    for untouched in ("/data/opt/ml/x", "/opt/mlx/y", "s3://b/opt/ml/z"):
        assert paths.rewrite(untouched) == untouched
    code = tmp_path / "job" / "code"
    code.mkdir(parents=True)
    (code / "run.py").write_text('open("/opt/ml/processing/input/t.csv")\n')
    (code / "notes.txt").write_text("/opt/ml/processing\n")
    assert paths.rewrite_code(code) == [code / "run.py"]
    assert (code / "run.py").read_text() == f'open("{root}/processing/input/t.csv")\n'
    assert (code / "notes.txt").read_text() == "/opt/ml/processing\n"  # not code
    with pytest.raises(ConfigError, match="not under /opt/ml/"):
        paths.local("/opt/ml/../../etc/passwd")


@pytest.mark.parametrize("path", ["/etc/data", "opt/ml/processing/x", "/opt/ml/processing",
                                  "/opt/ml/processing/../model", "/opt/ml/model"])
def test_local_paths_must_lie_under_the_processing_folder(path: str) -> None:
    with pytest.raises(ConfigError, match="/opt/ml/processing/"):
        check_local(path, "LocalPath")


def test_image_kinds_and_programs() -> None:
    analyzer = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    sklearn = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert images.repository(sklearn) == "sagemaker-scikit-learn"
    assert images.kind(analyzer, None) == images.ANALYZER
    assert images.kind(sklearn, ["python3", "/opt/ml/processing/input/code/a.py"]) == images.SCRIPT
    assert images.program("python3.10") == images.program("/usr/bin/python") == sys.executable
    assert images.program("bash") == "/bin/bash"
    for refused in ([], ["/opt/program/train"], ["java"]):
        with pytest.raises(ConfigError, match="ContainerEntrypoint"):
            images.kind(sklearn, refused)
