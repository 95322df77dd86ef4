"""The `tabpilot` command's exit (cli.entry): the interpreter's exit work still runs, the
exit code is main's, and native libraries are not torn down (pyarrow's thread pools
could abort a process at that point: apache/arrow#34314)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
out = Path(sys.argv[1])
atexit.register(lambda: out.write_text("atexit ran"))
threading.Thread(target=lambda: (time.sleep(0.3), print("thread done", flush=True))).start()
print("buffered, no newline", end="")
sys.argv = ["tabpilot", *sys.argv[2:]]
from tabpilot.cli import entry
entry()
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    flag = tmp_path / "flag.txt"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(flag), *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    return done, flag


def test_an_input_error_exits_2_after_threads_atexit_and_buffered_output(tmp_path: Path
                                                                          ) -> None:
    done, flag = _run(tmp_path, "describe", "bad name!", "--workspace", str(tmp_path / "ws"))
    assert done.returncode == 2, done.stderr
    assert done.stdout == "buffered, no newlinethread done\n"  # flushed, thread joined
    assert flag.read_text() == "atexit ran"
    assert done.stderr.startswith("error: job name 'bad name!' is invalid")


def test_a_command_that_succeeds_exits_0(tmp_path: Path) -> None:
    done, flag = _run(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("buffered, no newline") and "tabpilot " in done.stdout
    assert flag.read_text() == "atexit ran"


def test_the_console_script_and_python_m_use_it() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["tabpilot"] == "tabpilot.cli:entry"
    assert "entry()" in (root / "src" / "tabpilot" / "__main__.py").read_text()
