"""HTTP control plane: the SageMaker-compatible facade (awsJson 1.1 on `tabpilot serve`)."""
