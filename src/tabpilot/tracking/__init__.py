"""Experiment tracking and lineage.

- `dataset.py`: the training table's sha256 (a leaf: `jobs/creating.py` records it).
- `mlflow.py`: a finished job logged to an MLflow tracking server (the optional extra
  `tabpilot[mlflow]`): a parent run per job, a nested run per candidate, the models as
  pyfunc models (`pyfunc.py`), the best one registered with the alias `champion`.
- `lineage.py`: dataset -> job -> candidate -> endpoint -> monitoring schedule ->
  execution, from the workspace's own store.

Importing this package imports nothing of MLflow; `mlflow.py` and `pyfunc.py` do.
"""
