"""boto3 against `tabpilot serve`: a TimeSeriesForecastingJobConfig job created, waited
for, described, its candidates listed, its best candidate deployed and invoked, and a
whole file forecast by a transform job. A real worker process runs the job (slow: ~20 s)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "api"))
sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))  # the hang guard
from apilib import KEY_ID, ROLE, SECRET, Api, start_api  # noqa: E402
from servinglib import wait_until  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(tmp_path_factory, make_table):
    server, root, workspace = start_api(tmp_path_factory.mktemp("api"), {KEY_ID: SECRET})
    (root / "bucket" / "ts").mkdir(parents=True)
    make_table().to_csv(root / "bucket" / "ts" / "train.csv", index=False)
    yield Api(server, root, workspace)
    server.__exit__()


def _create(sm, name: str, **config) -> None:
    sm.create_auto_ml_job_v2(
        AutoMLJobName=name, RoleArn=ROLE,
        AutoMLJobInputDataConfig=[{"ChannelType": "training",
                                   "ContentType": "text/csv;header=present",
                                   "DataSource": {"S3DataSource": {
                                       "S3DataType": "S3Prefix", "S3Uri": "s3://bucket/ts/"}}}],
        OutputDataConfig={"S3OutputPath": "s3://bucket/output"},
        AutoMLProblemTypeConfig={"TimeSeriesForecastingJobConfig": {
            "ForecastFrequency": "1D", "ForecastHorizon": 7,
            "ForecastQuantiles": ["p10", "p50", "p90"],
            "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": 60},
            "TimeSeriesConfig": {"TargetAttributeName": "y", "TimestampAttributeName": "ds",
                                 "ItemIdentifierAttributeName": "id"},
            "CandidateGenerationConfig": {"AlgorithmsConfig": [
                {"AutoMLAlgorithms": ["ets"]}]},  # and the SeasonalNaive baseline
            **config}},
        AutoMLJobObjective={"MetricName": "MASE"})


def _wait(sm, name: str, limit: float = 240) -> dict:
    """The job's description once it has ended (a hang guard, not a speed check)."""
    seen: list[dict] = []

    def ended() -> bool:
        seen.append(sm.describe_auto_ml_job_v2(AutoMLJobName=name))
        return seen[-1]["AutoMLJobStatus"] not in ("InProgress", "Stopping")

    wait_until(ended, seconds=limit, what=f"job {name} to end", every=0.3)
    return seen[-1]


def test_a_forecasting_job_through_boto3_from_create_to_invoke(api, make_table):
    sm, runtime = api.client(), api.client("sagemaker-runtime")
    _create(sm, "demand")
    desc = _wait(sm, "demand")
    assert desc["AutoMLJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["AutoMLProblemTypeConfigName"] == "TimeSeriesForecasting"
    config = desc["AutoMLProblemTypeConfig"]["TimeSeriesForecastingJobConfig"]
    assert config["ForecastHorizon"] == 7 and config["TimeSeriesConfig"]["TargetAttributeName"] == "y"
    best = desc["BestCandidate"]
    assert best["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "MASE"
    metrics = {m["MetricName"]: m["Value"] for m in best["CandidateProperties"]["CandidateMetrics"]}
    assert set(metrics) == {"AverageWeightedQuantileLoss", "WAPE", "MASE", "MAPE", "RMSE"}
    locations = best["CandidateProperties"]["CandidateArtifactLocations"]
    assert locations["BacktestResults"] == "s3://bucket/output/demand/backtest_results.json"
    assert (api.s3_root / "bucket" / "output" / "demand" / "backtest_results.json").is_file()

    with pytest.raises(sm.exceptions.ClientError, match="call DescribeAutoMLJobV2"):
        sm.describe_auto_ml_job(AutoMLJobName="demand")
    candidates = sm.list_candidates_for_auto_ml_job(AutoMLJobName="demand")["Candidates"]
    assert {c["CandidateName"] for c in candidates} == {"AutoETS", "SeasonalNaive",
                                                        best["CandidateName"]}
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in candidates]
    assert values == sorted(values)  # best first

    sm.create_model(ModelName="demand-model", ExecutionRoleArn=ROLE,
                    Containers=best["InferenceContainers"])
    sm.create_endpoint_config(EndpointConfigName="demand-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "demand-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="demand-ep", EndpointConfigName="demand-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="demand-ep",
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    table = make_table()
    answer = runtime.invoke_endpoint(EndpointName="demand-ep", ContentType="text/csv",
                                     Accept="text/csv",
                                     Body=table[table["id"] == "item1"].to_csv(index=False))
    forecast = pd.read_csv(io.StringIO(answer["Body"].read().decode()))
    assert list(forecast.columns) == ["id", "ds", "mean", "p10", "p50", "p90"]
    assert len(forecast) == 7 and forecast["ds"].iloc[0] == "2024-03-11"
    with pytest.raises(runtime.exceptions.ValidationError, match="'y' is not in the table"):
        runtime.invoke_endpoint(EndpointName="demand-ep", ContentType="text/csv",
                                Body=table.drop(columns="y").to_csv(index=False))

    sm.create_transform_job(
        TransformJobName="demand-batch", ModelName="demand-model",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": "s3://bucket/ts/"}},
                        "ContentType": "text/csv"},
        TransformOutput={"S3OutputPath": "s3://bucket/forecasts", "Accept": "text/csv"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="demand-batch", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    done = sm.describe_transform_job(TransformJobName="demand-batch")
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    batch = pd.read_csv(api.s3_root / "bucket" / "forecasts" / "train.csv.out")
    assert batch.groupby("id").size().to_dict() == {"item0": 7, "item1": 7}


def test_a_config_tabpilot_cannot_honour_is_refused_at_create(api):
    sm = api.client()
    with pytest.raises(sm.exceptions.ClientError, match="holiday country 'XX' is not one"):
        _create(sm, "holidays", HolidayConfig=[{"CountryCode": "XX"}])
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_auto_ml_job_v2(AutoMLJobName="holidays")
