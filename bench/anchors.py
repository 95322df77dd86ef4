"""tabpilot against the figures recorded in ../shared/datasets/anchors.md (LightGBM, FLAML,
AutoGluon medium and best quality), without running them: an alias of

    python -m bench.automl --recorded --systems tabpilot,lightgbm,flaml,autogluon,autogluon:best_quality

kept for the command the README used to give. Any bench.automl option may follow, e.g.
`python -m bench.anchors --budget 60 --only adult,titanic`. Results go to
bench/results/automl-<budget>s.md and .json.
"""

from __future__ import annotations

from bench.automl import main as automl_main

RECORDED_SYSTEMS = "tabpilot,lightgbm,flaml,autogluon,autogluon:best_quality"


def main(argv: list[str] | None = None) -> None:
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    automl_main(["--recorded", "--systems", RECORDED_SYSTEMS, *args])


if __name__ == "__main__":
    main()
