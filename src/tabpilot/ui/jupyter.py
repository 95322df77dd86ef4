"""A JupyterLab next to `tabpilot serve`, as SageMaker Studio opens notebooks beside its UI.

One JupyterLab per server, started on the first "Open in notebook" and reused after:

- on loopback only (127.0.0.1, a free port; remote access off), so the server's guard
  and Jupyter's own token are the only doors;
- protected by the server's token (`--token`), handed to Jupyter in `JUPYTER_TOKEN` (the
  environment, never a command line `ps` shows): a person types the token they already
  know once. A server without a token (loopback) gets a random one, carried in the link
  the Studio hands out;
- its root is the workspace, and the Studio opens it on a job's folder (`lab/tree/jobs/JOB`);
- its default kernel is this server's own interpreter (`sys.executable`, which has
  tabpilot), declared by a kernelspec in `<workspace>/.jupyter/` that takes precedence
  over any other `python3` (JUPYTER_PATH); kernels see `TABPILOT_WORKSPACE` and the
  server's store, so `AutoML.attach(job)` finds the job without arguments;
- stopped with the server (`stop`, from the Studio router's lifespan), kernels included.

JupyterLab is the `notebook` extra (`pip install 'tabpilot[notebook]'`); without it
`available()` says so and the page shows that line instead of the buttons.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from tabpilot.errors import TabpilotError
from tabpilot.serving.ports import free_port

log = logging.getLogger("tabpilot.ui.jupyter")
INSTALL_HINT = "pip install 'tabpilot[notebook]'"
START_SECONDS = 90.0  # a cold JupyterLab on a busy machine takes a while to import
KERNEL_NAME = "python3"
STATE = ".jupyter"  # in the workspace: a dot-folder, so never an output location


class JupyterError(TabpilotError):
    """JupyterLab is not installed, or did not start (the reason and its log)."""


def available() -> bool:
    return importlib.util.find_spec("jupyterlab") is not None


class JupyterLab:
    """The server's JupyterLab: `ensure()` starts it once; `url(path)` links into it."""

    def __init__(self, workspace: Path, token: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.workspace = Path(workspace).resolve()
        self.shared_token = token  # the server's: people type it; never put in a link
        self.token = token or secrets.token_urlsafe(24)
        self.env = dict(env or {})  # extra environment for the kernels (the store's URL)
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        """A link to `path` (relative to the workspace) in JupyterLab's file browser or
        editor; with the token only when it is this JupyterLab's own (random) one."""
        link = f"{self.base}/lab/tree/{quote(path.strip('/'))}"
        return link if self.shared_token else f"{link}?token={quote(self.token)}"

    def ensure(self) -> JupyterLab:
        """Start JupyterLab unless it runs; returns once it answers /api/status."""
        if not available():
            raise JupyterError(f"JupyterLab is not installed; {INSTALL_HINT} in the server's "
                               f"environment ({sys.executable}) and try again")
        with self._lock:
            if self.running:
                return self
            self._start()
        return self

    def status(self) -> dict:
        """JupyterLab's own /api/status (authenticated with the token)."""
        request = urllib.request.Request(f"{self.base}/api/status",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 (loopback)
            return json.loads(answer.read())

    def _start(self) -> None:
        state = self.workspace / STATE
        _kernelspec(state / "share")
        logs = self.workspace / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                   f"--port={self.port}", "--ServerApp.port_retries=0",
                   f"--ServerApp.root_dir={self.workspace}",
                   "--ServerApp.allow_remote_access=False",
                   f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
                   # offline: no news feed, no update check, no extension index
                   "--LabApp.news_url=", "--LabApp.check_for_updates_class="
                   "jupyterlab.NeverCheckForUpdate",
                   "--LabServerApp.extension_manager=readonly"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers, CI: Jupyter refuses
            command.append("--allow-root")             # root unless told
        env = {**os.environ, **self.env, "JUPYTER_TOKEN": self.token,
               "JUPYTER_PATH": str(state / "share"),
               "JUPYTER_CONFIG_DIR": str(state / "config"),
               "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
               "JUPYTER_DATA_DIR": str(state / "data"),
               "TABPILOT_WORKSPACE": str(self.workspace)}
        sink = open(logs / "jupyterlab.log", "ab")
        try:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            cwd=self.workspace, start_new_session=True)
        finally:
            sink.close()
        log.info("starting JupyterLab on %s (pid %d)", self.base, self.process.pid)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JupyterError(f"JupyterLab stopped at start (exit {self.process.returncode}"
                                   f"); {_tail(logs / 'jupyterlab.log')}")
            try:
                self.status()
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.25)
        self.stop()
        raise JupyterError(f"JupyterLab did not answer within {START_SECONDS:g} s; see "
                           f"{logs / 'jupyterlab.log'}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop JupyterLab and its kernels: SIGTERM (it shuts its kernels down), then
        SIGKILL to its whole process group if it lingers."""
        with self._lock:
            process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(5)
        log.info("JupyterLab stopped")


def _kernelspec(share: Path) -> None:
    """A `python3` kernel running this interpreter, found before any other (JUPYTER_PATH)."""
    folder = share / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (tabpilot)", "language": "python",
            "metadata": {"debugger": True}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return "no log"
    return " | ".join(text) or "no output"
