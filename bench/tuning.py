"""Tuning: the best validation AUC of 20 Bayesian training jobs vs 20 Random ones (issue 21's
figure), XGBoost's built-in image, on three binary tables of ../shared/datasets.

    python -m bench.tuning [--datasets DIR] [--tables credit_g,churn_sagemaker,telco_churn]
        [--strategies Bayesian,Random] [--jobs 20] [--parallel 2] [--seeds 0,1,2]

Each table is prepared as `bench.training_overhead` prepares it (numeric columns kept,
categories coded as integers, target first, shuffled with seed 0), split 80/20 into
SageMaker's label-first CSV `train` and `validation` channels. For each strategy one
CreateHyperParameterTuningJob runs on an in-process `tabpilot serve`: the same five ranges
(max_depth 1-10, eta 0.01-0.5 logarithmic, min_child_weight 1-10, subsample 0.5-1,
num_round 10-300), objective `validation:auc` maximised, MaxParallelTrainingJobs 2,
XGBoost on one thread, once per RandomSeed of `--seeds`. Hyperband (also accepted) trains
num_round up to 300 itself, so it tunes the four other ranges. Prints a Markdown table per
table and strategy: the best validation AUC after the first half of the jobs and after
all of them (mean over the seeds), each seed's best, the jobs stopped early and the wall
minutes of one tuning job (the machine may be shared: the figure is the AUC).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.training_overhead import DATASETS, Api, table

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
RANGES = {
    "IntegerParameterRanges": [
        {"Name": "max_depth", "MinValue": "1", "MaxValue": "10"},
        {"Name": "num_round", "MinValue": "10", "MaxValue": "300"}],
    "ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
        {"Name": "min_child_weight", "MinValue": "1", "MaxValue": "10"},
        {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1"}],
}
STATIC = {"objective": "binary:logistic", "eval_metric": "auc", "nthread": "1"}


def request(name: str, strategy: str, jobs: int, parallel: int, seed: int) -> dict:
    ranges = {k: list(v) for k, v in RANGES.items()}
    static = dict(STATIC)
    config: dict = {"Strategy": strategy, "RandomSeed": seed,
                    "HyperParameterTuningJobObjective": {"Type": "Maximize",
                                                         "MetricName": "validation:auc"},
                    "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs,
                                       "MaxParallelTrainingJobs": parallel},
                    "ParameterRanges": ranges, "TrainingJobEarlyStoppingType": "Off"}
    if strategy == "Hyperband":  # it owns num_round: MinResource 10 to MaxResource 300
        ranges["IntegerParameterRanges"] = [r for r in ranges["IntegerParameterRanges"]
                                            if r["Name"] != "num_round"]
        config["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": 10,
                                                                "MaxResource": 300}}
    return dict(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config,
        TrainingJobDefinition={
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/bench",
            "StaticHyperParameters": static,
            "InputDataConfig": [{"ChannelName": c, "ContentType": "text/csv", "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bucket/{c}/"}}}
                for c in ("train", "validation")],
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                               "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}})


def tune(api: Api, name: str, strategy: str, jobs: int, parallel: int,
         seed: int) -> tuple[list[float], float, int]:
    """The objectives in the order the jobs were created, the wall seconds, and how many
    jobs ended Stopped (stopped early)."""
    started = time.time()
    api.sm.create_hyper_parameter_tuning_job(**request(name, strategy, jobs, parallel, seed))
    while True:
        described = api.sm.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name)
        if described["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            break
        time.sleep(1)
    if described["HyperParameterTuningJobStatus"] != "Completed":
        raise SystemExit(f"{name}: {described['HyperParameterTuningJobStatus']} "
                         f"{described.get('FailureReason')}")
    summaries, token = [], None
    while True:
        page = api.sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, MaxResults=100, SortBy="CreationTime",
            SortOrder="Ascending", **({"NextToken": token} if token else {}))
        summaries += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            break
    values = [s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value",
                                                                           float("nan"))
              for s in summaries]
    stopped = sum(s["TrainingJobStatus"] == "Stopped" for s in summaries)
    return values, time.time() - started, stopped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--tables", default="credit_g,churn_sagemaker,telco_churn")
    parser.add_argument("--strategies", default="Bayesian,Random")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    half, seeds = args.jobs // 2, [int(s) for s in args.seeds.split(",")]
    print(f"| table | rows | strategy | best AUC after {half} jobs | best AUC after "
          f"{args.jobs} | per seed | stopped early | wall min |")
    print("|---|---:|---|---:|---:|---|---:|---:|")
    for name in args.tables.split(","):
        rows, _ = table(args.datasets, name)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            cut = int(len(rows) * 0.8)
            for channel, part in (("train", rows[:cut]), ("validation", rows[cut:])):
                (root / "s3" / "bucket" / channel).mkdir(parents=True)
                pd.DataFrame(part).to_csv(root / "s3" / "bucket" / channel / "part.csv",
                                          header=False, index=False)
            api = Api(root)
            try:
                for strategy in args.strategies.split(","):
                    runs = [tune(api, f"{name.replace('_', '-')}-{strategy.lower()}-{seed}",
                                 strategy, args.jobs, args.parallel, seed) for seed in seeds]
                    early = statistics.mean(max(v[:half]) for v, _, _ in runs)
                    final = [max(v) for v, _, _ in runs]
                    print(f"| {name} | {len(rows)} | {strategy} | {early:.4f} | "
                          f"{statistics.mean(final):.4f} | "
                          f"{' '.join(f'{x:.4f}' for x in final)} | "
                          f"{sum(s for _, _, s in runs)} | "
                          f"{statistics.mean(w for _, w, _ in runs) / 60:.1f} |", flush=True)
            finally:
                api.server.__exit__()


if __name__ == "__main__":
    main()
