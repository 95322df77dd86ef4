"""Every kind of job on S3 (a real SeaweedFS server, `make test-cluster`): a forecasting
job and a text-classification job run with `--artifacts s3://...` publish their folders
and models as a tabular one does; their models load from s3:// with the manifest
verified, and serve from another workspace through CreateModel with a ModelDataUrl on S3.
Deleting a job removes its keys; it is refused while an endpoint serves the job's own
files, and an endpoint made by CreateModel (its own copy, `models/<name>`) keeps
working after the job is gone."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from servinglib import free_port, wait_until  # noqa: E402

from tabpilot.artifacts.remote import FsspecArtifactStore  # noqa: E402
from tabpilot.artifacts.store import fetch_url, for_workspace  # noqa: E402
from tabpilot.errors import ModelIntegrityError  # noqa: E402
from tabpilot.store import Store  # noqa: E402

pytestmark = pytest.mark.cluster

KEY_ID, SECRET = "AKIDALLKINDS", "all-kinds-secret"
FORECAST, TEXT = "fc-on-s3", "text-on-s3"
FORECAST_MODEL = f"jobs/{FORECAST}/candidates/WeightedEnsemble/model"


def seasonal_table(items: int = 2, n: int = 70, seed: int = 0) -> pd.DataFrame:
    """`items` daily series with a weekly season, a trend and noise: id, ds, y."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.concat([pd.DataFrame({
        "id": f"item{i}", "ds": pd.date_range("2024-01-01", periods=n, freq="D"),
        "y": 50 + 10 * i + 0.3 * t + 8 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1, n)})
        for i in range(items)], ignore_index=True)


def _reviews(n: int = 160, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good = ["great", "excellent", "lovely", "fast", "friendly", "helpful"]
    bad = ["awful", "slow", "broken", "rude", "late", "useless"]
    filler = ["the", "service", "was", "very", "really", "product", "delivery", "quite"]
    positive = rng.random(n) < 0.5
    text = [" ".join(rng.choice(filler, 4).tolist() + rng.choice(good if p else bad, 2).tolist())
            for p in positive]
    return pd.DataFrame({"review": text, "label": np.where(positive, "happy", "unhappy")})


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, seaweed) -> Iterator[dict]:
    """A forecasting and a text job run in workspace A with S3 as the artifact store."""
    import tabpilot.forecast
    from tabpilot import AutoML

    workspace = tmp_path_factory.mktemp("all-kinds") / "a"
    prefix = f"s3://tabpilot/all-kinds-{os.urandom(3).hex()}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**seaweed.env(), "TABPILOT_ARTIFACTS": prefix}.items():
            mp.setenv(name, value)
        forecast = tabpilot.forecast.fit(
            seasonal_table(), workspace, target="y", timestamp="ds", item_id="id",
            frequency="1D", horizon=7, time_limit=40, candidates=["SeasonalNaive", "AutoTheta"],
            name=FORECAST, execute_notebook=False)
        AutoML("label", problem_type="text-classification", text_column="review",
               time_limit=25, workspace=workspace, verbosity=0, name=TEXT).fit(_reviews())
    store = Store.for_workspace(workspace, create=False)
    best = store.get_job(TEXT).best_candidate
    store.engine.dispose()
    yield {"workspace": workspace, "prefix": prefix, "forecast": forecast, "text_best": best}


def _history() -> pd.DataFrame:
    return seasonal_table(n=70, seed=4)


def test_a_forecasting_job_is_published_and_its_model_loads_verified_from_s3(
        published: dict, s3_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        seaweed) -> None:
    import tabpilot.forecast

    prefix = published["prefix"]
    s3 = FsspecArtifactStore(prefix, tmp_path / "cache")
    assert FORECAST_MODEL in s3.list(f"jobs/{FORECAST}")
    listed = json.loads(s3._read_bytes(f"jobs/{FORECAST}.published.json"))["files"]
    assert {"job.json", "backtest_results.json", "leaderboard.json"} <= set(listed)
    assert not any(name.startswith("candidates/WeightedEnsemble/model/") for name in listed)
    monkeypatch.setenv("TABPILOT_ARTIFACTS_CACHE", str(tmp_path / "load-cache"))
    copy = fetch_url(f"{prefix}/{FORECAST_MODEL}")
    assert not copy.is_relative_to(published["workspace"])
    local = tabpilot.forecast.load(published["forecast"].model_dir).predict(_history())
    remote = tabpilot.forecast.load(copy).predict(_history())
    pd.testing.assert_frame_equal(remote, local)

    # a changed object (listing rewritten to match) is refused by the model's manifest
    s3.put(copy, "models/changed")
    bucket_path = prefix.split("://", 1)[1]
    fs = seaweed.filesystem()
    data = fs.cat_file(f"{bucket_path}/models/changed/metadata.json") + b" "
    fs.pipe_file(f"{bucket_path}/models/changed/metadata.json", data)
    import hashlib

    listing = json.loads(fs.cat_file(f"{bucket_path}/models/changed.published.json"))
    listing["files"]["metadata.json"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                         "bytes": len(data)}
    fs.pipe_file(f"{bucket_path}/models/changed.published.json", json.dumps(listing).encode())
    with pytest.raises(ModelIntegrityError, match="does not match its sha256 in manifest.json"):
        tabpilot.forecast.load(fetch_url(f"{prefix}/models/changed"))


def test_a_text_job_is_published_and_its_model_loads_from_s3(
        published: dict, s3_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tabpilot.automl import load_model

    prefix, best = published["prefix"], published["text_best"]
    rows = _reviews(12, seed=9).drop(columns="label")
    s3 = FsspecArtifactStore(prefix, tmp_path / "cache")
    models = s3.list(f"jobs/{TEXT}/candidates")
    assert models and all(k.endswith("/model") for k in models)
    assert all(k.split("/")[3].startswith(("text_", "stack", "ensemble")) for k in models), models
    assert s3.list(f"jobs/{TEXT}/trials") == []
    monkeypatch.setenv("TABPILOT_ARTIFACTS_CACHE", str(tmp_path / "load-cache"))
    for key in models:
        remote = load_model(f"{prefix}/{key}")
        local = load_model(str(published["workspace"] / key))
        assert list(remote.predict(rows)) == list(local.predict(rows))
    assert any(f"/{best}/" in k for k in models)


class Serve:
    """`tabpilot serve` on an empty workspace, trusting the S3 prefix's models."""

    def __init__(self, workspace: Path, env: dict[str, str], trust: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workspace.parent / f"serve-{self.port}.log"
        with open(self.log, "wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tabpilot", "serve", "--port", str(self.port),
                 "--workspace", str(workspace), "--trust-model-root", trust,
                 "--aws-access-key-id", KEY_ID, "--aws-secret-access-key", SECRET],
                stdout=sink, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(self._up, 120, f"tabpilot serve on {self.url}", every=0.2)
        except AssertionError:
            self.stop()
            raise

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


def _deploy(sm, name: str, url: str) -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                    PrimaryContainer={"Image": "tabpilot", "ModelDataUrl": url})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def test_both_kinds_serve_from_another_workspace_through_create_model_on_s3(
        published: dict, seaweed, tmp_path: Path) -> None:
    from tabpilot.automl import load_model

    prefix, workspace = published["prefix"], published["workspace"]
    text_key = f"jobs/{TEXT}/candidates/{published['text_best']}/model"
    env = {**os.environ, **seaweed.env(), "TABPILOT_ARTIFACTS": prefix}
    env.pop("TABPILOT_WORKSPACE", None)
    server = Serve(tmp_path / "b", env, prefix)
    try:
        sm = server.client()
        _deploy(sm, "forecast-from-s3", f"{prefix}/{FORECAST_MODEL}")
        _deploy(sm, "text-from-s3", f"{prefix}/{text_key}")
        for name in ("forecast-from-s3", "text-from-s3"):
            wait_until(lambda n=name: sm.describe_endpoint(EndpointName=n)["EndpointStatus"]
                       == "InService", 120, f"{name} to be InService", every=0.5)
        runtime = server.client("sagemaker-runtime")
        rows = _reviews(6, seed=5).drop(columns="label")
        answer = runtime.invoke_endpoint(EndpointName="text-from-s3", ContentType="text/csv",
                                         Accept="application/json",
                                         Body=rows.to_csv(index=False, header=False))
        got = [p["predicted_label"] for p in json.loads(answer["Body"].read())["predictions"]]
        assert got == list(load_model(str(workspace / text_key)).predict(rows))
        history = _history()
        answer = runtime.invoke_endpoint(EndpointName="forecast-from-s3", ContentType="text/csv",
                                         Accept="text/csv", Body=history.to_csv(index=False))
        served = pd.read_csv(io.BytesIO(answer["Body"].read()))
        assert len(served) == 7 * history["id"].nunique()
        assert {"mean", "p10", "p50", "p90"} <= set(served.columns)
        assert not (tmp_path / "b" / "jobs").exists()  # B never had either job's folder
    finally:
        server.stop()


def test_deleting_a_job_removes_its_keys_refused_while_its_own_files_are_served(
        tmp_path: Path, seaweed, s3_env, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    import tabpilot.forecast
    from tabpilot.api.app import call
    from tabpilot.api.context import ApiContext
    from tabpilot.api.locations import Locations
    from tabpilot.artifacts.store import local_copy

    prefix = f"s3://tabpilot/delete-{os.urandom(3).hex()}"
    workspace = tmp_path / "a"
    monkeypatch.setenv("TABPILOT_ARTIFACTS", prefix)
    tabpilot.forecast.fit(seasonal_table(), workspace, target="y", timestamp="ds",
                          item_id="id", frequency="1D", horizon=7, time_limit=30,
                          candidates=["SeasonalNaive"], name="fc-delete",
                          execute_notebook=False)
    s3 = for_workspace(workspace)
    key = "jobs/fc-delete/candidates/WeightedEnsemble/model"
    cached = s3.get(key)  # this workspace's verified copy, in .artifacts-cache
    assert cached.is_relative_to(workspace / ".artifacts-cache")
    # an endpoint on the job's own files, and a SageMaker model copied from S3
    store = Store.for_workspace(workspace)
    store.put_endpoint("on-the-job", str(workspace / key), job="fc-delete",
                       candidate="WeightedEnsemble")
    ctx = ApiContext(store, workspace, Locations(workspace, trust_models=[prefix]))
    call(ctx, "CreateModel", {"ModelName": "copied", "ExecutionRoleArn":
                              "arn:aws:iam::123456789012:role/x",
                              "PrimaryContainer": {"Image": "tabpilot",
                                                   "ModelDataUrl": f"{prefix}/{key}"}})
    call(ctx, "CreateEndpointConfig", {"EndpointConfigName": "copied", "ProductionVariants": [{
        "VariantName": "AllTraffic", "ModelName": "copied", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}]})
    call(ctx, "CreateEndpoint", {"EndpointName": "copied", "EndpointConfigName": "copied"})

    refused = cli("--artifacts", prefix, "delete", "fc-delete", workspace=workspace)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "endpoint on-the-job" in refused.stderr
    assert "tabpilot undeploy on-the-job" in refused.stderr
    assert s3.exists(key) and store.job_exists("fc-delete")

    assert cli("undeploy", "on-the-job", workspace=workspace).returncode == 0
    done = cli("--artifacts", prefix, "delete", "fc-delete", workspace=workspace)
    assert done.returncode == 0, done.stderr
    assert "job fc-delete deleted" in done.stdout and f"under {prefix}/jobs/fc-delete" in done.stdout
    bucket_path = prefix.split("://", 1)[1]
    left = seaweed.filesystem().find(f"{bucket_path}/jobs", detail=True)
    assert [k for k, v in left.items() if v["type"] == "file"] == []  # listed or not
    assert not store.job_exists("fc-delete") and not (workspace / "jobs" / "fc-delete").exists()
    assert not cached.exists()
    # the endpoint made by CreateModel reads its own key: another workspace still loads it
    copied = Path(store.get_endpoint("copied").model_dir)
    elsewhere = tmp_path / "c"
    model = tabpilot.forecast.load(local_copy(elsewhere / copied.relative_to(workspace),
                                              elsewhere, for_workspace(elsewhere)))
    assert len(model.predict(_history())) == 7 * 2
