"""White-box reports: model insights and explanations for every candidate."""
