"""Ensembles of candidates: greedy ensemble selection (Caruana et al., 2004) and stacking."""

from tabpilot.ensemble.caruana import greedy_weights
from tabpilot.ensemble.predictor import EnsemblePredictor, StackPredictor

__all__ = ["EnsemblePredictor", "StackPredictor", "greedy_weights"]
