"""The SageMaker Python SDK v2's HyperparameterTuner against a real `tabpilot serve`
process: a Hyperband tuner of four XGBoost jobs (`StrategyConfig(HyperbandStrategyConfig
(...))`), `best_training_job()`, `analytics().dataframe()`, then an identical-data warm
start from it (`identical_dataset_and_algorithm_tuner()`). The SDK runs in its own venv
(`make sagemaker-sdk`), as in test_sagemaker_sdk.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from sdkserve import run_sdk, serving_s3_folder
from traininglib import best_named, binary_table, write_csv

SCRIPT = r'''
import json
import sagemaker
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.tuner import (ContinuousParameter, HyperbandStrategyConfig, HyperparameterTuner,
                             IntegerParameter, StrategyConfig)

session = sagemaker.Session()
image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1")
estimator = Estimator(image_uri=image, role="arn:aws:iam::123456789012:role/notebook",
                      instance_count=1, instance_type="ml.m5.xlarge",
                      output_path="s3://bucket/output", sagemaker_session=session,
                      hyperparameters={"num_round": 27, "objective": "binary:logistic",
                                       "eval_metric": "auc", "nthread": 1})
inputs = {"train": TrainingInput("s3://bucket/train/", content_type="text/csv"),
          "validation": TrainingInput("s3://bucket/validation/", content_type="text/csv")}
tuner = HyperparameterTuner(
    estimator, "validation:auc",
    {"max_depth": IntegerParameter(1, 5), "eta": ContinuousParameter(0.05, 0.5)},
    strategy="Hyperband", max_jobs=4, max_parallel_jobs=2,
    strategy_config=StrategyConfig(HyperbandStrategyConfig(max_resource=27, min_resource=1)))
tuner.fit(inputs, wait=True)
frame = tuner.analytics().dataframe()
described = session.sagemaker_client.describe_hyper_parameter_tuning_job(
    HyperParameterTuningJobName=tuner.latest_tuning_job.name)

warm = tuner.identical_dataset_and_algorithm_tuner()
warm.max_jobs = 2
# the SDK names a tuning job <base>-<yyMMdd-HHmm>: a second one within the minute needs a name
warm.fit(inputs, job_name="xgboost-warm-start", wait=True)
warm_described = session.sagemaker_client.describe_hyper_parameter_tuning_job(
    HyperParameterTuningJobName=warm.latest_tuning_job.name)
print("\nRESULT " + json.dumps({
    "best": tuner.best_training_job(),
    "rows": frame.sort_values("FinalObjectiveValue", ascending=False)[
        ["TrainingJobName", "FinalObjectiveValue", "TrainingJobStatus"]].values.tolist(),
    "strategy": described["HyperParameterTuningJobConfig"]["Strategy"],
    "counters": described["TrainingJobStatusCounters"],
    "parent": tuner.latest_tuning_job.name,
    "warm_rows": len(warm.analytics().dataframe()),
    "warm_status": warm_described["HyperParameterTuningJobStatus"],
    "warm_config": warm_described["WarmStartConfig"],
    "warm_best": warm.best_training_job(),
    "overall": warm_described["OverallBestTrainingJob"]["TrainingJobName"],
    "overall_value": warm_described["OverallBestTrainingJob"][
        "FinalHyperParameterTuningJobObjectiveMetric"]["Value"]}), flush=True)
'''


@pytest.mark.slow
def test_hyperband_tuner_and_warm_start(tmp_path: Path) -> None:
    s3 = tmp_path / "s3"
    write_csv(s3 / "bucket" / "train" / "train.csv", binary_table(300, 0))
    write_csv(s3 / "bucket" / "validation" / "validation.csv", binary_table(100, 1))
    with serving_s3_folder(tmp_path, s3) as url:
        result = run_sdk(SCRIPT, url, tmp_path, timeout=540)
    assert result["strategy"] == "Hyperband"
    assert len(result["rows"]) == 4  # the analytics' dataframe: one row per training job
    assert {status for *_, status in result["rows"]} <= {"Completed", "Stopped"}
    assert result["counters"]["Completed"] + result["counters"]["Stopped"] == 4
    assert result["best"] in best_named(result["rows"])
    assert result["warm_status"] == "Completed"
    assert result["warm_rows"] == 2
    assert result["warm_config"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": result["parent"]}],
        "WarmStartType": "IdenticalDataAndAlgorithm"}
    assert result["overall_value"] >= result["rows"][0][1]
    assert result["overall"] in (result["best"], result["warm_best"])
