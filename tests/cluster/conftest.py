"""End-to-end tests against real services (`make test-cluster`; `make test` skips them)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from pgcluster import postgres, postgres_url  # noqa: E402,F401  (fixtures)
