"""The SageMaker Python SDK v3 against a real `tabpilot serve` process: the steps of
test_sagemaker_sdk.py (v2) in v3's API. `ModelTrainer` with the built-in XGBoost image
(`sagemaker.core.image_uris.retrieve`) trains on CSV channels in S3 (`train(...,
logs=False)`: no CloudWatch), `HyperparameterTuner(trainer, ...).tune(...)` runs four jobs
and reads them back with its analytics' dataframe, and `ModelBuilder(image_uri=...,
s3_model_data_url=...)` builds the Model and deploys the endpoint that `Endpoint.invoke`
asks with CSV. v3 lives in a venv of its own (`make sagemaker-sdk3`; sdkserve.py,
`sdk_python(3)`); as for v2 the only change from AWS is the AWS_ENDPOINT_URL_* variables,
here with IAM's too: v3 resolves and checks the execution role it is given
(`sagemaker.core.helper.iam_role_resolver`: IAM's SimulatePrincipalPolicy and GetRole)
before it creates a training job or a model."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sdkserve import KEY_ID, SECRET, run_sdk, sdk_python, serving_s3_folder
from traininglib import best_named, binary_table, write_csv

SCRIPT = r'''
import json, os, sys
from sagemaker.core import image_uris
from sagemaker.core.helper.session_helper import Session
from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
from sagemaker.core.resources import EndpointConfig
from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train import ModelTrainer
from sagemaker.train.tuner import HyperparameterTuner

role = "arn:aws:iam::123456789012:role/notebook"
session = Session()
image = image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1")
trainer = ModelTrainer(training_image=image, role=role, sagemaker_session=session,
                       base_job_name="xgboost-v3",
                       compute=Compute(instance_type="ml.m5.xlarge", instance_count=1),
                       output_data_config=OutputDataConfig(s3_output_path="s3://bucket/output"),
                       hyperparameters={"num_round": 20, "max_depth": 3, "eta": 0.3,
                                        "objective": "binary:logistic", "eval_metric": "auc",
                                        "nthread": 1})
inputs = [InputData(channel_name="train", data_source="s3://bucket/train/",
                    content_type="text/csv"),
          InputData(channel_name="validation", data_source="s3://bucket/validation/",
                    content_type="text/csv")]
trainer.train(input_data_config=inputs, wait=True, logs=False)
job = trainer._latest_training_job  # a sagemaker.core TrainingJob, refreshed by the wait
model_data = job.model_artifacts.s3_model_artifacts

# deploy(wait=True) streams the endpoint's CloudWatch logs; wait on its status instead
builder = ModelBuilder(image_uri=image, s3_model_data_url=model_data, role_arn=role,
                       instance_type="ml.m5.large", sagemaker_session=session,
                       model_path=os.path.abspath("model-builder"))
model = builder.build()
endpoint = builder.deploy(wait=False)
endpoint.wait_for_status("InService", poll=1, timeout=120)
rows = json.loads(sys.argv[1])
answer = endpoint.invoke(body="\n".join(",".join(map(str, row)) for row in rows),
                         content_type="text/csv", accept="text/csv")
scores = answer.body.read().decode().split()
endpoint_config = endpoint.endpoint_config_name
endpoint.delete()
EndpointConfig.get(endpoint_config_name=endpoint_config, session=session.boto_session).delete()
model.delete()

tuner = HyperparameterTuner(trainer, "validation:auc",
                            {"max_depth": IntegerParameter(1, 5),
                             "eta": ContinuousParameter(0.05, 0.5)},
                            max_jobs=4, max_parallel_jobs=2, strategy="Bayesian")
tuner.tune(inputs=inputs, wait=True)
tuning = tuner.describe()
frame = tuner.analytics().dataframe()
print("\nRESULT " + json.dumps({
    "job": job.training_job_name, "status": job.training_job_status,
    "model_data": model_data,
    "metrics": {m.metric_name: m.value for m in job.final_metric_data_list},
    "model": model.model_name, "endpoint": endpoint.endpoint_name, "scores": scores,
    "tuning_status": tuning.hyper_parameter_tuning_job_status,
    "strategy": tuning.hyper_parameter_tuning_job_config.strategy,
    "completed": tuning.training_job_status_counters.completed,
    "best": tuner.best_training_job(),
    "tuned": frame.sort_values("FinalObjectiveValue", ascending=False)[
        ["TrainingJobName", "FinalObjectiveValue", "TrainingJobStatus"]].values.tolist()}),
    flush=True)
'''


@pytest.mark.slow
def test_model_trainer_tuner_model_builder(tmp_path: Path) -> None:
    python = sdk_python(3)
    s3 = tmp_path / "s3"
    write_csv(s3 / "bucket" / "train" / "train.csv", binary_table(300, 0))
    write_csv(s3 / "bucket" / "validation" / "validation.csv", binary_table(100, 1))
    rows = binary_table(8, 5)[:, 1:].round(4).tolist()
    with serving_s3_folder(tmp_path, s3) as url:
        result = run_sdk(SCRIPT, url, tmp_path, json.dumps(rows), timeout=480, python=python,
                         env={"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                              "AWS_ENDPOINT_URL_IAM": url})
    assert result["status"] == "Completed"
    assert result["job"].startswith("xgboost-v3-")
    assert result["metrics"]["validation:auc"] > 0.85
    assert result["model_data"] == f"s3://bucket/output/{result['job']}/output/model.tar.gz"
    with tarfile.open(s3 / result["model_data"].removeprefix("s3://")) as tar:
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    expected = booster.predict(xgb.DMatrix(np.array(rows)))
    np.testing.assert_allclose(np.array(result["scores"], dtype=float), expected, rtol=1e-6)
    assert result["tuning_status"] == "Completed"
    assert result["strategy"] == "Bayesian"
    assert result["completed"] == 4
    assert len(result["tuned"]) == 4  # the analytics' dataframe: one row per training job
    assert {status for *_, status in result["tuned"]} == {"Completed"}
    assert result["best"] in best_named(result["tuned"])
