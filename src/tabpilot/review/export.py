"""The retraining table: every completed loop of a flow as its original row, the agreed
label in the target column, and provenance columns, all named `review_*`:

    review_loop, review_agreement, review_reviewers, review_model_prediction,
    review_inference_id, review_reason, review_completed

Provenance must never become a feature (the model's own prediction beside the label is a
leak), so the table comes with an Autopilot FeatureSpecification file beside it,
`<table>.features.json`, whose FeatureAttributeNames are the original columns only:
`tabpilot run TABLE --target T --feature-types TABLE.features.json` (or the same file as
CreateAutoMLJobV2's FeatureSpecificationS3Uri) trains on the original columns and ignores
the rest. `--no-provenance` leaves the columns out altogether.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.errors import TabpilotError
from tabpilot.review.desk import COMPLETED
from tabpilot.review.flows import LOOP, load_flow
from tabpilot.store import Store

PROVENANCE = "review_"
DEFAULT_TARGET = "label"


def retraining_rows(store: Store, flow: str, target: str | None = None
                    ) -> tuple[pd.DataFrame, list[str], str]:
    """(table, feature columns, target column) from the flow's completed loops."""
    load_flow(store, flow)
    records: list[dict[str, Any]] = []
    features: dict[str, None] = {}  # ordered set
    names: set[str] = set()
    for row in store.list_resources(LOOP):
        if row.spec["FlowDefinitionName"] != flow or row.status != COMPLETED:
            continue
        content = json.loads(row.spec["InputContent"])
        values = content.get("row")
        if not isinstance(values, dict):
            continue  # a loop started by hand without a row: nothing to train on
        names.add(str(content.get("target") or ""))
        features.update(dict.fromkeys(values))
        consensus = row.spec["consensus"]
        records.append({**values, "__label__": consensus["label"],
                        "review_loop": row.name, "review_agreement": consensus["agreement"],
                        "review_reviewers": consensus["reviewers"],
                        "review_model_prediction": content.get("prediction"),
                        "review_inference_id": content.get("inferenceId"),
                        "review_reason": content.get("reason"),
                        "review_completed": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                          time.gmtime(row.ended or 0))})
    if not records:
        raise TabpilotError(f"flow {flow} has no completed loops with a row to export yet")
    known = sorted(n for n in names if n)
    column = target or (known[0] if len(known) == 1 else DEFAULT_TARGET)
    if column in features or column.startswith(PROVENANCE):
        raise TabpilotError(f"target column {column!r} clashes with a feature or provenance "
                            "column; name another with --target")
    table = pd.DataFrame.from_records(records).rename(columns={"__label__": column})
    provenance = [c for c in table.columns if c.startswith(PROVENANCE)]
    return table[[*features, column, *provenance]], list(features), column


def write_retraining_table(store: Store, flow: str, out: Path, target: str | None = None,
                           provenance: bool = True) -> tuple[Path, Path, int, str]:
    """Write the table (CSV, or Parquet for .parquet) and its FeatureSpecification file."""
    table, features, column = retraining_rows(store, flow, target)
    if not provenance:
        table = table[[*features, column]]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(out, index=False)
    else:
        table.to_csv(out, index=False)
    spec = out.with_name(out.stem + ".features.json")
    spec.write_text(json.dumps({"FeatureAttributeNames": features}, indent=1))
    return out, spec, len(table), column
