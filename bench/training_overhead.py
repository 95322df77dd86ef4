"""What a built-in XGBoost training job costs over a plain `xgboost.train` on the same data
(issue 21's goal: at most 1.2 x + 1 s).

    python -m bench.training_overhead [--datasets DIR] [--tables california_housing,adult]
        [--rounds 100] [--repeats 3] [--api]

Each table of ../shared/datasets is read as its manifest says, its numeric columns kept,
categories coded as integers, the target first (classes coded 0..k-1), shuffled (seed 0),
split 80/20 and written as SageMaker's label-first CSV without a header. Then, timed in
wall seconds, alternately `repeats` times:

  plain   read both CSVs with pandas, `xgboost.train` with evals on both (what a script
          doing the job by hand does), save the model
  job     `training.job.run`: channels read, hyperparameters checked, trained with the
          per-round log and stop checks, model.tar.gz packed
  api     (--api) CreateTrainingJob on an in-process `tabpilot serve` until Describe says
          Completed: adds the worker process's start (forked from the server's warm zygote,
          api/zygote.py; TABPILOT_WORKER_ZYGOTE=0 for a fresh interpreter per job) and
          Describe's polling (0.2 s)

XGBoost runs one thread (`nthread=1`) in all three: on a shared machine a thread pool's
wall time measures the other processes more than the job. Prints a Markdown table of
medians and the ratios to plain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
OBJECTIVES = {"binary": "binary:logistic", "multiclass": "multi:softprob",
              "regression": "reg:squarederror"}


def table(datasets: Path, name: str) -> tuple[np.ndarray, dict]:
    manifest = {d["name"]: d for d in json.loads((datasets / "manifest.json").read_text())}
    entry = manifest[name]
    frame = pd.read_csv(datasets / entry["file"], na_values=entry["na_values"])
    frame = frame.drop(columns=[*entry["drop"], *entry["id_columns"],
                                *entry["datetime_columns"], *entry["text_columns"]],
                       errors="ignore")
    y = frame.pop(entry["target"])
    if entry["task"] != "regression":
        y = pd.Series(pd.factorize(y, sort=True)[0], index=y.index)
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = pd.factorize(frame[column])[0].astype(float)
            frame.loc[frame[column] < 0, column] = np.nan
    rows = np.column_stack([y.to_numpy(dtype=float), frame.to_numpy(dtype=float)])
    return np.random.default_rng(0).permutation(rows), entry


def hyperparameters(entry: dict, rows: np.ndarray, rounds: int) -> dict[str, str]:
    hp = {"num_round": str(rounds), "max_depth": "6", "eta": "0.2", "nthread": "1",
          "objective": OBJECTIVES[entry["task"]]}
    if entry["task"] == "multiclass":
        hp["num_class"] = str(int(rows[:, 0].max()) + 1)
    return hp


def plain(train: Path, validation: Path, hp: dict[str, str], out: Path) -> None:
    import xgboost as xgb

    a = pd.read_csv(train, header=None).to_numpy()
    b = pd.read_csv(validation, header=None).to_numpy()
    dtrain = xgb.DMatrix(a[:, 1:], label=a[:, 0])
    dval = xgb.DMatrix(b[:, 1:], label=b[:, 0])
    params = {k: v for k, v in hp.items() if k != "num_round"}
    booster = xgb.train(params, dtrain, int(hp["num_round"]),
                        evals=[(dtrain, "train"), (dval, "validation")], verbose_eval=False)
    booster.save_model(str(out / "xgboost-model.ubj"))


def job(train: Path, validation: Path, hp: dict[str, str], out: Path) -> None:
    from tabpilot.training.base import Control
    from tabpilot.training.job import ChannelInput, run

    run(out, "xgboost", hp, {"train": ChannelInput([train]),
                             "validation": ChannelInput([validation])}, Control())


class Api:
    """An in-process `tabpilot serve` with the data under its S3 root."""

    def __init__(self, root: Path) -> None:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serving"))
        from servinglib import ThreadServer

        from tabpilot.api.app import install
        from tabpilot.serving.app import ServerSettings, server_app

        self.root = root
        app = server_app(ServerSettings(workspace=root / "workspace", poll_seconds=0.2))
        install(app, root / "workspace", root / "s3")
        from tabpilot.api.zygote import ZYGOTE

        ZYGOTE.warm()  # as `tabpilot serve` does when it starts (TABPILOT_WORKER_ZYGOTE=0: off)
        self.server = ThreadServer(app).__enter__()
        import boto3

        self.sm = boto3.client("sagemaker", endpoint_url=self.server.url,
                               region_name="us-east-1", aws_access_key_id="x",
                               aws_secret_access_key="x")
        self.count = 0

    def run(self, hp: dict[str, str]) -> None:
        self.count += 1
        name = f"bench-{self.count}"
        self.sm.create_training_job(
            TrainingJobName=name, RoleArn="arn:aws:iam::123456789012:role/bench",
            HyperParameters=hp, AlgorithmSpecification={
                "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                 "sagemaker-xgboost:1.7-1", "TrainingInputMode": "File"},
            InputDataConfig=[{"ChannelName": c, "ContentType": "text/csv", "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bucket/{c}/"}}}
                for c in ("train", "validation")],
            OutputDataConfig={"S3OutputPath": "s3://bucket/output"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                            "VolumeSizeInGB": 5},
            StoppingCondition={"MaxRuntimeInSeconds": 3600})
        while self.sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == \
                "InProgress":
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--tables", default="california_housing,adult")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--api", action="store_true")
    args = parser.parse_args()
    print("| table | rows | plain s | job s | job / plain | api s | api / plain |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.tables.split(","):
        rows, entry = table(args.datasets, name)
        hp = hyperparameters(entry, rows, args.rounds)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            cut = int(len(rows) * 0.8)
            for channel, part in (("train", rows[:cut]), ("validation", rows[cut:])):
                (root / "s3" / "bucket" / channel).mkdir(parents=True)
                pd.DataFrame(part).to_csv(root / "s3" / "bucket" / channel / "part.csv",
                                          header=False, index=False)
            train = root / "s3" / "bucket" / "train" / "part.csv"
            validation = root / "s3" / "bucket" / "validation" / "part.csv"
            api = Api(root) if args.api else None
            times: dict[str, list[float]] = {"plain": [], "job": [], "api": []}
            for i in range(args.repeats):
                out = root / f"run-{i}"
                out.mkdir()
                calls = {"plain": partial(plain, train, validation, hp, out),
                         "job": partial(job, train, validation, hp, out / "job")}
                if api is not None:
                    calls["api"] = partial(api.run, hp)
                for kind, call in calls.items():
                    started = time.perf_counter()
                    call()
                    times[kind].append(time.perf_counter() - started)
            if api is not None:
                api.server.__exit__()
        p, j = statistics.median(times["plain"]), statistics.median(times["job"])
        a = statistics.median(times["api"]) if times["api"] else float("nan")
        print(f"| {name} | {len(rows)} | {p:.2f} | {j:.2f} | {j / p:.2f} | {a:.2f} | "
              f"{a / p:.2f} |")


if __name__ == "__main__":
    main()
