"""`make demo`: a real job end to end on scikit-learn's bundled breast-cancer table."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer

OUT = Path("demo-output")


def _tabpilot(*args: str) -> None:
    cmd = [sys.executable, "-m", "tabpilot.cli", *args, "--workspace", str(OUT / "workspace")]
    print("\n$ tabpilot " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    train = frame.sample(frac=0.9, random_state=0)
    new_rows = frame.drop(train.index).drop(columns="target")
    train.to_csv(OUT / "breast_cancer.csv", index=False)
    new_rows.to_csv(OUT / "new_rows.csv", index=False)
    print(f"wrote {OUT}/breast_cancer.csv ({len(train)} rows) and {OUT}/new_rows.csv "
          f"({len(new_rows)} rows to score)")
    _tabpilot("run", str(OUT / "breast_cancer.csv"), "--target", "target", "--time-limit", "45",
              "--metric", "AUC", "--name", "demo")
    _tabpilot("describe", "demo")
    _tabpilot("predict", "demo", str(OUT / "new_rows.csv"), "--output",
              str(OUT / "predictions.csv"))
    print("\nfirst predictions:")
    print("".join((OUT / "predictions.csv").read_text().splitlines(keepends=True)[:6]))


if __name__ == "__main__":
    main()
