"""What every SageMaker operation handler needs: the store, the workspace, data locations,
the live endpoints, and a way to start background work (jobs, transforms) in a process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tabpilot.api import zygote
from tabpilot.api.locations import Locations
from tabpilot.settings import STORE_ENV
from tabpilot.store import Store

if TYPE_CHECKING:  # the serving app is the server's: a worker process never imports it
    from tabpilot.serving.app import EndpointRegistry

log = logging.getLogger("tabpilot.api")


@dataclass
class ApiContext:
    store: Store
    workspace: Path
    locations: Locations
    registry: EndpointRegistry | None = None

    def launch(self, kind: str, name: str) -> int:
        """Run `python -m tabpilot.api.worker KIND NAME` in its own session; returns its pid.

        A training worker is forked from the zygote instead when it can (api/zygote.py: no
        interpreter to start, no imports to repeat; the zygote reaps it). A process started
        here has a thread waiting on it, so that a finished worker never lingers as a
        zombie (which would look alive to the job-liveness check). The worker opens this same
        store: its URL goes in $TABPILOT_STORE (not the command line, where `ps` would
        show a password).
        """
        logs = self.workspace / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        args = [kind, name, "--workspace", str(self.workspace), *self.locations.worker_args()]
        env = {**os.environ, STORE_ENV: self.store.url}
        if kind in zygote.KINDS:  # forked from a warm parent (api/zygote.py) when it can
            pid = zygote.ZYGOTE.launch(args, env, logs / f"{kind}-{name}.log")
            if pid is not None:
                log.info("forked %s %s (pid %d)", kind, name, pid)
                return pid
        command = [sys.executable, "-m", "tabpilot.api.worker", *args]
        with open(logs / f"{kind}-{name}.log", "ab") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       env=env)
        threading.Thread(target=process.wait, daemon=True, name=f"reap-{name}").start()
        log.info("started %s %s (pid %d)", kind, name, process.pid)
        return process.pid
