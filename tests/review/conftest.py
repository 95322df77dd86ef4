"""Shared by the review tests: servinglib (real served models) on the path."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # servinglib: real models

