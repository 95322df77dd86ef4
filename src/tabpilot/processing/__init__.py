"""SageMaker Processing jobs run locally, in a job folder instead of a container.

Two kinds, told apart by `AppSpecification.ImageUri` (`images.py`):

- the Model Monitor analyzer (`sagemaker-model-monitor-analyzer`, what
  `DefaultModelMonitor.suggest_baseline` and scheduled executions run): `analyzer.py`
  reads the container's environment (`dataset_source`, `dataset_format`, `output_path`,
  `baseline_constraints`, `baseline_statistics`) and runs `tabpilot.monitor`'s own code;
- script processors (`SKLearnProcessor`, `ScriptProcessor`, `FrameworkProcessor`): the
  user's script runs as a subprocess of tabpilot's Python (`script.py`), with every
  `/opt/ml/...` path of the request mapped into the job folder (`container.py`).

Nothing here knows HTTP or the store: `api/processing.py` checks requests, copies inputs
and outputs through the server's `Locations`, and records statuses.
"""

from __future__ import annotations

CONTAINER_ROOT = "/opt/ml"  # what SageMaker mounts; mapped to <job dir>/opt/ml
PROCESSING_ROOT = "/opt/ml/processing"
