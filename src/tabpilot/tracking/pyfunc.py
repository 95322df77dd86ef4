"""A tabpilot model directory as an MLflow pyfunc model.

MLflow stores the directory as an artifact of the logged model and hands its downloaded
copy to `load_context`; the model is read only through `tabpilot.artifacts.load`, so the
manifest's sha256 of every file is checked before anything is unpickled, exactly as for
`tabpilot serve`. Predictions are tabpilot's own (`Model.predict`): labels for
classification, values for regression, with the same input check.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

ARTIFACT = "tabpilot_model"  # the key of the model directory among the pyfunc's artifacts


class TabpilotPyfunc(mlflow.pyfunc.PythonModel):
    """Holds nothing until loaded: the pickled object is this empty shell, the model is the
    verified directory beside it."""

    def load_context(self, context: Any) -> None:
        from tabpilot.artifacts import load

        self.model = load(context.artifacts[ARTIFACT])

    # a DataFrame type hint: MLflow hands the input over as a frame and keeps the signature
    # given at logging (inferred from the training rows) as the schema
    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> Any:
        return self.model.predict(model_input)
