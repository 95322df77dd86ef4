"""Packaged models: save, verify, load, predict."""

from tabpilot.artifacts.package import Model, load, save, verify
from tabpilot.artifacts.predictor import Predictor

__all__ = ["Model", "Predictor", "load", "save", "verify"]
