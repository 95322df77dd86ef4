"""The SageMaker Python SDK v2 against a real `tabpilot serve` process: the getting-started
notebook's XGBoost steps (`Estimator(image_uri=image_uris.retrieve("xgboost", ...))`,
`.fit({"train", "validation"}, logs=False)`, `.deploy()`, `predict` with CSV, a
`HyperparameterTuner` of four jobs and its analytics' dataframe), where the
only change from AWS is the AWS_ENDPOINT_URL_* variables. (tests/training/sdkserve.py: the
SDK's venv, the server's process.)"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sdkserve import run_sdk, serving_s3_folder
from traininglib import best_named, binary_table, write_csv

SCRIPT = r'''
import json, sys
import sagemaker
from sagemaker.deserializers import CSVDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.serializers import CSVSerializer

session = sagemaker.Session()
image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1")
estimator = Estimator(image_uri=image, role="arn:aws:iam::123456789012:role/notebook",
                      instance_count=1, instance_type="ml.m5.xlarge",
                      output_path="s3://bucket/output", sagemaker_session=session,
                      hyperparameters={"num_round": 20, "max_depth": 3, "eta": 0.3,
                                       "objective": "binary:logistic", "eval_metric": "auc",
                                       "nthread": 1})
estimator.fit({"train": TrainingInput("s3://bucket/train/", content_type="text/csv"),
               "validation": TrainingInput("s3://bucket/validation/", content_type="text/csv")},
              logs=False)
described = session.describe_training_job(estimator.latest_training_job.name)
predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                             serializer=CSVSerializer(), deserializer=CSVDeserializer())
rows = json.loads(sys.argv[1])
scores = predictor.predict(rows)
predictor.delete_endpoint()

from sagemaker.analytics import HyperparameterTuningJobAnalytics
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

tuner = HyperparameterTuner(estimator, "validation:auc",
                            {"max_depth": IntegerParameter(1, 5),
                             "eta": ContinuousParameter(0.05, 0.5)},
                            max_jobs=4, max_parallel_jobs=2, strategy="Bayesian")
tuner.fit({"train": TrainingInput("s3://bucket/train/", content_type="text/csv"),
           "validation": TrainingInput("s3://bucket/validation/", content_type="text/csv")})
tuner.wait()
frame = HyperparameterTuningJobAnalytics(tuner.latest_tuning_job.name,
                                         sagemaker_session=session).dataframe()
print("\nRESULT " + json.dumps({"model_data": estimator.model_data, "scores": scores,
                  "status": described["TrainingJobStatus"],
                  "best": tuner.best_training_job(),
                  "tuned": frame.sort_values("FinalObjectiveValue", ascending=False)[
                      ["TrainingJobName", "FinalObjectiveValue"]].values.tolist(),
                  "metrics": {m["MetricName"]: m["Value"]
                              for m in described["FinalMetricDataList"]}}), flush=True)
'''
@pytest.mark.slow
def test_estimator_fit_deploy_predict(tmp_path: Path) -> None:
    s3 = tmp_path / "s3"
    write_csv(s3 / "bucket" / "train" / "train.csv", binary_table(300, 0))
    write_csv(s3 / "bucket" / "validation" / "validation.csv", binary_table(100, 1))
    rows = binary_table(8, 5)[:, 1:].round(4).tolist()
    with serving_s3_folder(tmp_path, s3) as url:
        result = run_sdk(SCRIPT, url, tmp_path, json.dumps(rows), timeout=480)
    assert result["status"] == "Completed"
    assert result["metrics"]["validation:auc"] > 0.85
    local = s3 / result["model_data"].removeprefix("s3://")
    with tarfile.open(local) as tar:
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    expected = booster.predict(xgb.DMatrix(np.array(rows)))
    scores = np.array([float(row[0]) for row in result["scores"]])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert len(result["tuned"]) == 4  # HyperparameterTuner + its analytics
    assert result["best"] in best_named(result["tuned"])

