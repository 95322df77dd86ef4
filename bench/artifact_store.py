"""Publishing and loading a job's model directory: the workspace itself (the default),
a local folder store, and S3 (a throwaway SeaweedFS, `weed mini`, signed requests).

    python -m bench.artifact_store [--rows 2000] [--repeats 5] [--model DIR]

Runs one small job (LightGBM + linear, 40 s; or takes the model directory `--model`)
into a temporary workspace, then times, per
store, the median of `--repeats`: publish (put: verify the model, upload, listing last),
load cold (get into an empty cache + `package.load`, both checks) and load warm (the
cached copy checked again + `package.load`). Needs the `cluster` extra (s3fs, `weed`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tabpilot.artifacts import load
from tabpilot.artifacts.package import directory_bytes
from tabpilot.artifacts.remote import FsspecArtifactStore
from tabpilot.artifacts.store import LocalArtifactStore

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "store"))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "serving"))


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _job(folder: Path, rows: int) -> Path:
    from servinglib import churn_table

    from tabpilot import AutoML

    table = churn_table(rows).drop(columns="customer_id")
    automl = AutoML("label", time_limit=40, algorithms=["lightgbm", "linear"],
                    workspace=folder / "ws", verbosity=0, name="bench").fit(table)
    return Path(automl.store.get_candidate("bench", automl.store.get_job("bench")
                                           .best_candidate).artifact_dir)


def _measure(name: str, store, model: Path, cache: Path | None, repeats: int) -> dict:
    key = "jobs/bench/candidates/best/model"

    def cold() -> None:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
        load(store.get(key))

    publish = _median(lambda: store.put(model, key), repeats)
    return {"store": name, "publish_s": publish, "load_cold_s": _median(cold, repeats),
            "load_warm_s": _median(lambda: load(store.get(key)), repeats)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", type=Path, help="a model directory instead of a job's")
    args = parser.parse_args()
    from seaweed import BUCKET, SeaweedS3

    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        folder = Path(tmp)
        model = args.model.resolve() if args.model else _job(folder, args.rows)
        files = sum(1 for p in model.rglob("*") if p.is_file())
        rows = [{"store": "workspace (default: load in place)", "publish_s": 0.0,
                 "load_cold_s": _median(lambda: load(model), args.repeats),
                 "load_warm_s": float("nan")}]
        rows.append(_measure("local folder", LocalArtifactStore(folder / "shared"), model,
                             None, args.repeats))
        with SeaweedS3() as s3:
            import os

            os.environ.update(s3.env())
            cache = folder / "cache"
            rows.append(_measure("S3 (SeaweedFS, loopback)",
                                 FsspecArtifactStore(f"s3://{BUCKET}/bench", cache), model,
                                 cache, args.repeats))
        print(f"model directory: {files} files, {directory_bytes(model) / 1e6:.2f} MB "
              f"{'given' if args.model else f'(best candidate of a {args.rows}-row job)'}; "
              f"median of {args.repeats}")
        print(f"{'store':38} {'publish s':>10} {'load cold s':>12} {'load warm s':>12}")
        for r in rows:
            print(f"{r['store']:38} {r['publish_s']:10.3f} {r['load_cold_s']:12.3f} "
                  f"{r['load_warm_s']:12.3f}")


if __name__ == "__main__":
    main()
