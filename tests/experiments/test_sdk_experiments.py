"""The SageMaker Python SDK v2's Experiments against a real `tabpilot serve` process: three
`Run`s logging a parameter and metrics (`run.log_parameter`, `run.log_metric` through the
metrics service at AWS_ENDPOINT_URL_SAGEMAKER_METRICS), `ExperimentAnalytics(...).dataframe()`
over them, `list_runs`, and an `Estimator.fit` inside a run, whose training job's trial
component joins the run's experiment. The SDK lives in its own venv (`make sagemaker-sdk`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sdkserve import run_sdk, serving_s3_folder
from traininglib import binary_table, write_csv

SCRIPT = r'''
import json
import sagemaker
from sagemaker.analytics import ExperimentAnalytics
from sagemaker.estimator import Estimator
from sagemaker.experiments import list_runs
from sagemaker.experiments.run import Run
from sagemaker.inputs import TrainingInput

session = sagemaker.Session()
for depth, losses in ((2, [0.9, 0.7, 0.6]), (4, [0.8, 0.5, 0.4]), (6, [0.85, 0.6, 0.55])):
    with Run(experiment_name="churn-trials", run_name=f"depth-{depth}",
             sagemaker_session=session) as run:
        run.log_parameter("max_depth", depth)
        run.log_parameter("booster", "gbtree")
        for step, loss in enumerate(losses):
            run.log_metric("train:loss", loss, step=step)
        run.log_metric("validation:auc", 0.7 + depth / 100)
frame = ExperimentAnalytics(experiment_name="churn-trials", sagemaker_session=session).dataframe()
listed = sorted(r.run_name for r in list_runs(experiment_name="churn-trials",
                                              sagemaker_session=session))

image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1")
estimator = Estimator(image_uri=image, role="arn:aws:iam::123456789012:role/notebook",
                      instance_count=1, instance_type="ml.m5.xlarge",
                      output_path="s3://bucket/output", sagemaker_session=session,
                      hyperparameters={"num_round": 8, "max_depth": 3, "eta": 0.3,
                                       "objective": "binary:logistic", "eval_metric": "auc",
                                       "nthread": 1})
with Run(experiment_name="churn-fit", run_name="xgb", sagemaker_session=session) as run:
    run.log_parameter("note", "fit inside a run")
    estimator.fit({"train": TrainingInput("s3://bucket/train/", content_type="text/csv"),
                   "validation": TrainingInput("s3://bucket/validation/",
                                               content_type="text/csv")}, logs=False)
job = estimator.latest_training_job.name
component = session.sagemaker_client.describe_trial_component(
    TrialComponentName=job + "-aws-training-job")
fit_frame = ExperimentAnalytics(experiment_name="churn-fit", sagemaker_session=session).dataframe()
print("\nRESULT " + json.dumps({
    "columns": list(frame.columns),
    "rows": frame.sort_values("TrialComponentName")[
        ["TrialComponentName", "max_depth", "booster", "train:loss - Last",
         "train:loss - Min", "train:loss - Count", "validation:auc - Last"]].values.tolist(),
    "trials": frame["Trials"].tolist(),
    "listed": listed,
    "job": job,
    "component": {"status": component["Status"]["PrimaryStatus"],
                  "parameters": {k: v.get("NumberValue", v.get("StringValue"))
                                 for k, v in component["Parameters"].items()},
                  "metrics": {m["MetricName"]: m["Last"] for m in component["Metrics"]},
                  "source": component["Source"]["SourceArn"]},
    "fit_rows": sorted(fit_frame["TrialComponentName"].tolist())}), flush=True)
'''
@pytest.mark.slow
def test_runs_log_and_experiment_analytics_reads_them(tmp_path: Path) -> None:
    s3 = tmp_path / "s3"
    write_csv(s3 / "bucket" / "train" / "train.csv", binary_table(200, 0))
    write_csv(s3 / "bucket" / "validation" / "validation.csv", binary_table(80, 1))
    with serving_s3_folder(tmp_path, s3) as url:
        result = run_sdk(SCRIPT, url, tmp_path, timeout=420)
    assert result["rows"] == [
        ["churn-trials-depth-2", 2.0, "gbtree", 0.6, 0.6, 3, 0.72],
        ["churn-trials-depth-4", 4.0, "gbtree", 0.4, 0.4, 3, 0.74],
        ["churn-trials-depth-6", 6.0, "gbtree", 0.55, 0.55, 3, 0.76]]
    for column in ("TrialComponentName", "DisplayName", "max_depth", "train:loss - Avg",
                   "train:loss - StdDev", "validation:auc - Count", "Trials", "Experiments"):
        assert column in result["columns"]
    assert result["trials"] == [["Default-Run-Group-churn-trials"]] * 3
    assert result["listed"] == ["depth-2", "depth-4", "depth-6"]  # the SDK's list_runs
    job_component = result["job"] + "-aws-training-job"
    assert result["fit_rows"] == sorted(["churn-fit-xgb", job_component])
    component = result["component"]
    assert component["status"] == "Completed"
    assert component["parameters"]["max_depth"] == 3.0
    assert component["parameters"]["objective"] == "binary:logistic"
    assert component["metrics"]["validation:auc"] > 0.8
    assert component["source"].endswith(":training-job/" + result["job"].lower())
