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
GENERATING_EXPLAINABILITY = "GeneratingExplainabilityReport"
GENERATING_MODEL_INSIGHTS = "GeneratingModelInsightsReport"
CANDIDATE_DEFINITIONS_GENERATED = "CandidateDefinitionsGenerated"  # --generate-candidates-only
# a report failed: the job still ends Completed, with its candidates and leaderboard
EXPLAINABILITY_ERROR = "ExplainabilityError"
MODEL_INSIGHTS_ERROR = "ModelInsightsError"

CANDIDATE_IN_PROGRESS, CANDIDATE_COMPLETED, CANDIDATE_FAILED, CANDIDATE_STOPPED = (
    "InProgress", "Completed", "Failed", "Stopped")
