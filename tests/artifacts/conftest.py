"""The S3 half of the artifact store's contract runs on a throwaway SeaweedFS server
(tests/store/seaweed.py; marked `cluster`, so `make test` never starts one)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from seaweed import s3_env, s3_prefix, seaweed  # noqa: E402,F401  (fixtures)
from storelib import backend  # noqa: E402,F401  (the fixture: a folder, or S3)
