"""Preprocessing: scikit-learn-API transformers and the builder that picks them per algorithm."""

from tabpilot.features.builder import build_encoder
from tabpilot.features.encoder import TabularEncoder

__all__ = ["TabularEncoder", "build_encoder"]
