"""Data capture: a sampled share of requests and responses as JSON lines, in the shape of
SageMaker's data capture, under <workspace>/capture/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>.jsonl.

The variant level is SageMaker's (an endpoint config's ProductionVariants[0].VariantName,
`AllTraffic` for an endpoint deployed without one), so that Model Monitor tooling that
lists `<prefix>/<endpoint>/<variant>/...` finds the files where it looks."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from pathlib import Path

DEFAULT_VARIANT = "AllTraffic"


class CaptureWriter:
    def __init__(self, root: Path, endpoint: str, percent: float, seed: int | None = None,
                 variant: str | None = None) -> None:
        self.root = root / endpoint / (variant or DEFAULT_VARIANT)
        self.percent = max(0.0, min(100.0, percent))
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def sampled(self) -> bool:
        return self.percent > 0 and self._random.random() * 100 < self.percent

    def write(self, request: bytes, content_type: str, response: bytes, accept: str,
              inference_id: str | None = None, input_check: dict | None = None) -> None:
        """Append one record; `input_check` (the input check's counts: values read as
        missing, unseen categories) goes beside the event's metadata, for monitoring."""
        now = time.time()
        record = {
            "captureData": {
                "endpointInput": _payload(request, content_type, "INPUT"),
                "endpointOutput": _payload(response, accept, "OUTPUT"),
            },
            "eventMetadata": {
                "eventId": str(uuid.uuid4()),
                "inferenceId": inference_id,
                "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            },
            "eventVersion": "0",
        }
        if input_check is not None:
            record["inputCheck"] = input_check
        path = self.root / time.strftime("%Y/%m/%d/%H", time.gmtime(now))
        line = json.dumps(record) + "\n"
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".jsonl"), "a", encoding="utf-8") as f:
                f.write(line)


def _payload(body: bytes, content_type: str, mode: str) -> dict[str, str]:
    try:
        data, encoding = body.decode("utf-8"), _encoding(content_type)
    except UnicodeDecodeError:
        data, encoding = base64.b64encode(body).decode(), "BASE64"
    return {"observedContentType": content_type, "mode": mode, "data": data,
            "encoding": encoding}


def _encoding(content_type: str) -> str:
    return "CSV" if "csv" in content_type else "JSON"
