"""Job statuses and secondary statuses, as Autopilot names them."""

from __future__ import annotations

IN_PROGRESS, COMPLETED, FAILED, STOPPING, STOPPED = (
    "InProgress", "Completed", "Failed", "Stopping", "Stopped")
ACTIVE = (IN_PROGRESS, STOPPING)

STARTING = "Starting"
ANALYZING = "AnalyzingData"
FEATURE_ENGINEERING = "FeatureEngineering"
MODEL_TUNING = "ModelTuning"
TRAINING_MODELS = "TrainingModels"
MAX_CANDIDATES = "MaxCandidatesReached"
MAX_RUNTIME = "MaxAutoMLJobRuntimeReached"

CANDIDATE_IN_PROGRESS, CANDIDATE_COMPLETED, CANDIDATE_FAILED, CANDIDATE_STOPPED = (
    "InProgress", "Completed", "Failed", "Stopped")
