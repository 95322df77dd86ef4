"""Ensembles of candidates: greedy ensemble selection (Caruana et al., 2004)."""

from tabpilot.ensemble.caruana import greedy_weights
from tabpilot.ensemble.predictor import EnsemblePredictor

__all__ = ["EnsemblePredictor", "greedy_weights"]
