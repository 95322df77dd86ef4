"""SageMaker Experiments' logic without HTTP or the store: metric series and their
summaries (`series.py`), and Search's expressions evaluated over plain records
(`search.py`). The facade's operations that use them are `api/experiments.py`,
`api/search.py` and `api/metrics_service.py`."""
