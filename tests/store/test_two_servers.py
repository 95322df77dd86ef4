"""Two machines' worth of tabpilot on one PostgreSQL and one S3 (both real, both
throwaway: tests/store/pgcluster.py, tests/store/seaweed.py). A job run with
`--store postgresql+psycopg://... --artifacts s3://...` publishes its models; its best
model loads from S3; two `tabpilot serve` processes with workspaces of their own see the
same jobs and endpoints, and a deploy made through one is served by the other, from the
verified S3 copy. Faults: S3 unreachable at start, PostgreSQL restarted mid-job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from servinglib import churn_table, free_port, wait_until  # noqa: E402

from tabpilot.artifacts.remote import FsspecArtifactStore  # noqa: E402
from tabpilot.automl import load_model  # noqa: E402
from tabpilot.store import Store  # noqa: E402

pytestmark = pytest.mark.cluster

KEY_ID, SECRET = "AKIDTWOSERVERS", "two-servers-secret"


def _env(store_url: str, artifacts: str, s3) -> dict[str, str]:
    env = {**os.environ, **s3.env(), "TABPILOT_STORE": store_url,
           "TABPILOT_ARTIFACTS": artifacts, "TABPILOT_API_STRICT": "1"}
    env.pop("TABPILOT_WORKSPACE", None)
    return env


def _run_job(workspace: Path, table: Path, env: dict[str, str], name: str,
             seconds: int = 20) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tabpilot", "run", str(table), "--target", "label",
         "--time-limit", str(seconds), "--algorithms", "lightgbm,linear", "--name", name,
         "--quiet", "-w", str(workspace)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


class Serve:
    """`tabpilot serve` in its own process on a free port."""

    def __init__(self, workspace: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workspace.parent / f"serve-{self.port}.log"
        with open(self.log, "wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tabpilot", "serve", "--port", str(self.port),
                 "--workspace", str(workspace), "--aws-access-key-id", KEY_ID,
                 "--aws-secret-access-key", SECRET],
                stdout=sink, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(self._up, 120, f"tabpilot serve on {self.url}", every=0.2)
        except AssertionError:
            self.stop()
            raise AssertionError(f"server did not start:\n{self.log.read_text()[-3000:]}") \
                from None

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/ping", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, service: str = "sagemaker"):
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                            config=Config(retries={"max_attempts": 1}))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "churn.csv"
    churn_table(300).drop(columns="customer_id").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, postgres, seaweed, table: Path
            ) -> Iterator[tuple[Serve, Serve, str, str]]:
    """A finished job made in workspace A, and a server on A and one on an empty B (one
    database and one S3 prefix for the module's tests)."""
    tmp = tmp_path_factory.mktemp("two-servers")
    store_url, prefix = postgres.new_database(), f"s3://tabpilot/two-servers-{os.urandom(3).hex()}"
    env = _env(store_url, prefix, seaweed)
    job = _run_job(tmp / "a", table, env, "shared-job")
    out, _ = job.communicate(timeout=300)
    assert job.returncode == 0, out
    a = Serve(tmp / "a", env)
    try:
        b = Serve(tmp / "b", env)
    except BaseException:
        a.stop()
        raise
    yield a, b, store_url, prefix
    a.stop()
    b.stop()
    postgres.drop_database(store_url)


def test_a_job_on_postgres_and_s3_serves_from_another_server(
        servers: tuple[Serve, Serve, str, str], tmp_path: Path, table: Path, s3_env,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, store_url, artifacts = servers
    workspace_a = b.log.parent / "a"
    store = Store.for_workspace(tmp_path / "elsewhere", url=store_url)
    job = store.get_job("shared-job")
    assert job.status == "Completed" and job.best_candidate
    key = f"jobs/shared-job/candidates/{job.best_candidate}/model"

    # the best model, published under its workspace path, loads from S3 on its own
    s3 = FsspecArtifactStore(artifacts, tmp_path / "cache")
    assert key in s3.list("jobs/shared-job") and s3.exists("jobs/shared-job")
    assert "leaderboard.csv" in json.loads(s3._read_bytes("jobs/shared-job.published.json")
                                           )["files"]
    monkeypatch.setenv("TABPILOT_ARTIFACTS_CACHE", str(tmp_path / "load-cache"))
    model = load_model(f"{artifacts}/{key}")
    rows = pd.read_csv(table).drop(columns="label").head(7)
    expected = [str(v) for v in model.predict(rows)]
    assert not (b.log.parent / "b" / "jobs").exists()  # B never had the job's files

    # both servers see the same jobs
    for server in (a, b):
        names = [s["AutoMLJobName"] for s in server.client().list_auto_ml_jobs()["AutoMLJobSummaries"]]
        assert "shared-job" in names

    # a deploy through A ...
    sm = a.client()
    sm.create_model(ModelName="shared-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                    PrimaryContainer={"Image": "tabpilot",
                                      "ModelDataUrl": str(workspace_a / key)})
    sm.create_endpoint_config(EndpointConfigName="shared-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "shared-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="shared-endpoint", EndpointConfigName="shared-config")

    # ... is seen and served by B, which loads the model from S3
    def in_service() -> bool:
        return b.client().describe_endpoint(EndpointName="shared-endpoint")[
            "EndpointStatus"] == "InService"

    wait_until(in_service, 120, "the endpoint to be InService on the second server", every=0.5)
    assert [e["EndpointName"] for e in b.client().list_endpoints()["Endpoints"]] == \
        ["shared-endpoint"]
    answer = b.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="shared-endpoint", ContentType="text/csv", Accept="application/json",
        Body=rows.to_csv(index=False, header=False))
    body = json.loads(answer["Body"].read())
    got = [str(p["predicted_label"]) for p in body["predictions"]]
    assert got == expected
    assert list((b.log.parent / "b" / ".artifacts-cache").iterdir())  # B's verified copy
    assert not (b.log.parent / "b" / "jobs").exists()
    store.engine.dispose()


def test_a_tampered_model_in_s3_is_refused_by_the_server(
        servers: tuple[Serve, Serve, str, str], tmp_path: Path, seaweed, s3_env) -> None:
    """B never loads a model whose object changed in S3, even when the listing was
    rewritten to match it: the model's own manifest is checked on load. The endpoint
    fails with the reason, in one line, and nothing in the pickle runs."""
    import hashlib

    a, b, store_url, artifacts = servers
    store = Store.for_workspace(tmp_path / "elsewhere", url=store_url)
    best = store.get_job("shared-job").best_candidate
    s3 = FsspecArtifactStore(artifacts, tmp_path / "cache")
    s3.put(s3.get(f"jobs/shared-job/candidates/{best}/model"), "models/tampered-copy")
    base = f"{artifacts.split('://', 1)[1]}/models/tampered-copy"
    fs = seaweed.filesystem()
    data = fs.cat_file(f"{base}/predictor.pkl") + b"\0"
    fs.pipe_file(f"{base}/predictor.pkl", data)
    listing = json.loads(fs.cat_file(f"{base}.published.json"))
    listing["files"]["predictor.pkl"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                         "bytes": len(data)}
    fs.pipe_file(f"{base}.published.json", json.dumps(listing).encode())
    store.put_endpoint("tampered", str(tmp_path / "elsewhere" / "models" / "tampered-copy"))

    def described() -> dict:
        return b.client().describe_endpoint(EndpointName="tampered")

    wait_until(lambda: described()["EndpointStatus"] == "Failed", 120,
               "the tampered endpoint to fail", every=0.5)
    reason = described()["FailureReason"]
    assert "does not match its sha256 in manifest.json" in reason and "\n" not in reason
    store.delete_endpoint("tampered")
    store.engine.dispose()


def test_s3_unreachable_at_start_is_one_line_and_exit_2(tmp_path: Path, table: Path,
                                                       postgres_url: str) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    for argv in (["run", str(table), "--target", "label", "--time-limit", "20"],
                 ["serve", "--port", str(free_port())]):
        done = subprocess.run(  # the timeout is the hang guard: no wait on an unreachable S3
            [sys.executable, "-m", "tabpilot", "--store", postgres_url, "--artifacts",
             "s3://tabpilot/unreachable", *argv, "-w", str(tmp_path / "ws")],
            capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot reach the artifact store" in lines[0], lines


def test_postgres_restarted_mid_job_never_hangs_the_job(
        tmp_path: Path, table: Path, postgres, postgres_url: str, s3_prefix: str,
        seaweed) -> None:
    """The job either completes (its writers reconnect: the pool pings each connection
    before use) or fails with a reason in the store; it never hangs."""
    env = _env(postgres_url, s3_prefix, seaweed)
    job = _run_job(tmp_path / "ws", table, env, "restarted", seconds=30)
    store = Store.for_workspace(tmp_path / "reader", url=postgres_url)

    def training() -> bool:
        try:
            return store.get_job("restarted").secondary_status in (
                "FeatureEngineering", "ModelTuning", "TrainingModels")
        except Exception:
            return False

    wait_until(training, 120, "the job to start training", every=0.2)
    postgres.restart()  # sessions cut, server down and up again while the job trains
    out, _ = job.communicate(timeout=240)  # a hang fails here, not forever
    store.engine.dispose()
    row = Store.for_workspace(tmp_path / "reader2", url=postgres_url).get_job("restarted")
    assert row.status in ("Completed", "Failed"), (row.status, out)
    if row.status == "Failed":
        assert row.failure_reason, out
        assert job.returncode != 0
    else:
        assert job.returncode == 0, out
        assert FsspecArtifactStore(s3_prefix, tmp_path / "c").exists(
            f"jobs/restarted/candidates/{row.best_candidate}/model")
