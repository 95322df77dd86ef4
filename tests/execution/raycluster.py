"""A real two-node Ray cluster on this machine for the tests: Ray's own
`ray.cluster_utils.Cluster` (a head and a second node, each a raylet with its own object
store and workers), bound to loopback, its session files in a temp folder, with the
client server on a free port so jobs reach it as `ray://127.0.0.1:PORT`, as users do.
Torn down afterwards. Nothing here is a stand-in.

Two settings keep it on loopback: `node_ip_address=127.0.0.1` for the nodes, and
`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` in the environment the nodes start with, which stops
Ray's client server from swapping 127.0.0.1 for the machine's outward address (where
nothing listens) when it starts the per-client server.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tabpilot.serving.ports import free_port as _free_port

CPUS_PER_NODE = 1
OBJECT_STORE_MB = 200
STARTS = 3  # attempts at starting the cluster


class RayCluster:
    """`with RayCluster() as cluster: cluster.address  # ray://127.0.0.1:PORT`"""

    def __init__(self, nodes: int = 2, cpus_per_node: int = CPUS_PER_NODE) -> None:
        self.n_nodes, self.cpus = nodes, cpus_per_node
        self.folder = Path(tempfile.mkdtemp(prefix="tp-ray-"))  # short: unix socket paths
        self.port = _free_port()
        self.cluster: Any = None
        self.workers: list[Any] = []
        self._env: dict[str, str | None] = {}

    @property
    def address(self) -> str:
        return f"ray://127.0.0.1:{self.port}"

    def _node_args(self) -> dict[str, Any]:
        return {"num_cpus": self.cpus, "temp_dir": str(self.folder / "ray"),
                "node_ip_address": "127.0.0.1",
                "object_store_memory": OBJECT_STORE_MB * 2**20}

    def start(self) -> RayCluster:
        from ray.cluster_utils import Cluster

        (self.folder / "ray").mkdir()
        for key, value in {"RAY_TMPDIR": str(self.folder),
                           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
            self._env[key] = os.environ.get(key)
            os.environ[key] = value
        for attempt in range(1, STARTS + 1):
            try:
                self.cluster = Cluster()
                self.cluster.add_node(**self._node_args(), ray_client_server_port=self.port,
                                      include_dashboard=False)
                for _ in range(self.n_nodes - 1):
                    self.add_node()
                break
            except Exception:
                # a raylet gives its agents 15 s to start: on a busy 2-core machine they
                # may take longer, and the node gives up; another start usually succeeds
                self.cluster.shutdown()
                self._kill_leftovers()
                self.cluster, self.workers = None, []
                if attempt == STARTS:
                    raise
        self._wait_for_client()
        return self

    def add_node(self) -> Any:
        node = self.cluster.add_node(**self._node_args())
        self.workers.append(node)
        return node

    def trials_running_on(self, node: Any) -> int:
        """How many of the node's worker processes run a trial now (Ray titles a busy
        worker `ray::<task name>`, the executor's `trial-<candidate>`; an idle one
        `ray::IDLE`)."""
        import psutil

        busy = 0
        for process in self._descendants(node):
            try:
                busy += "ray::trial-" in " ".join(process.cmdline())
            except psutil.Error:
                continue
        return busy

    def kill_node(self, node: Any) -> None:
        """The node lost as when its machine goes: its workers and its Ray processes
        killed at once (SIGKILL), nothing told to shut down."""
        import psutil

        for process in self._descendants(node):
            try:
                process.kill()
            except psutil.Error:
                pass
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    @staticmethod
    def _descendants(node: Any) -> list[Any]:
        import psutil

        found = []
        for infos in node.all_processes.values():
            for info in infos:
                try:
                    found += psutil.Process(info.process.pid).children(recursive=True)
                except psutil.Error:
                    continue
        return found

    def _kill_leftovers(self) -> None:
        """Whatever a node that failed to start left running: the processes whose command
        line names this cluster's own temp folder or client port (ours alone)."""
        import psutil

        marks = (str(self.folder), f"--port={self.port}")
        for process in psutil.process_iter(["cmdline"]):
            line = " ".join(process.info.get("cmdline") or [])
            if any(mark in line for mark in marks) and process.pid != os.getpid():
                try:
                    process.kill()
                except psutil.Error:
                    pass

    def _wait_for_client(self, timeout: float = 120.0) -> None:
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"Ray's client server never listened on {self.port}")

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        from tabpilot.execution import onray

        onray._connected.clear()
        if self.cluster is not None:
            self.cluster.shutdown()
        self._kill_leftovers()
        for key, value in self._env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def missing() -> str | None:
    """Why a cluster cannot start here (None: it can)."""
    try:
        import grpc  # noqa: F401  (Ray's client: the ray:// addresses)
        import ray  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[cluster]')"
    return None


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """One two-node cluster for the session's Ray tests (a test that kills a node starts
    its own). A machine without Ray fails the test with the reason: the cluster suite's
    CI installs it."""
    reason = missing()
    if reason:
        pytest.fail(f"a Ray cluster cannot start here: {reason}")
    with RayCluster() as cluster:
        yield cluster
