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
    held_out = frame.drop(train.index)
    new_rows = held_out.drop(columns="target")
    train.to_csv(OUT / "breast_cancer.csv", index=False)
    new_rows.to_csv(OUT / "new_rows.csv", index=False)
    held_out.to_csv(OUT / "held_out.csv", index=False)
    print(f"wrote {OUT}/breast_cancer.csv ({len(train)} rows), {OUT}/new_rows.csv "
          f"({len(new_rows)} rows to score) and {OUT}/held_out.csv (the same rows with "
          "their labels)")
    _tabpilot("run", str(OUT / "breast_cancer.csv"), "--target", "target", "--time-limit", "45",
              "--metric", "AUC", "--name", "demo")
    _tabpilot("describe", "demo")
    _tabpilot("predict", "demo", str(OUT / "new_rows.csv"), "--output",
              str(OUT / "predictions.csv"))
    print("\nfirst predictions:")
    print("".join((OUT / "predictions.csv").read_text().splitlines(keepends=True)[:6]))
    _tabpilot("evaluate", "demo", str(OUT / "held_out.csv"))
    # the best single model as a script that needs no tabpilot: retrain, score, predict
    _tabpilot("export", "demo", "--candidate", _best_single(), "--output",
              str(OUT / "demo_model.py"))
    script = [sys.executable, str(OUT / "demo_model.py")]
    print(f"\n$ python {OUT}/demo_model.py train {OUT}/breast_cancer.csv", flush=True)
    subprocess.run([*script, "train", str(OUT / "breast_cancer.csv"), "--model-out",
                    str(OUT / "demo_model.joblib")], check=True)


def _best_single() -> str:
    """The best candidate that is one model (the export's script holds single models,
    ensembles and stacks; a distilled student is refused)."""
    import json

    listed = subprocess.run([sys.executable, "-m", "tabpilot.cli", "candidates", "demo", "--json",
                             "--workspace", str(OUT / "workspace")],
                            check=True, capture_output=True, text=True)
    for c in json.loads(listed.stdout)["Candidates"]:
        if c["CandidateStatus"] == "Completed" and "distilled" not in c["CandidateName"] and \
                not c["CandidateName"].startswith(("ensemble", "stack")):
            return c["CandidateName"]
    raise SystemExit("the demo job has no single-model candidate to export")


if __name__ == "__main__":
    main()
