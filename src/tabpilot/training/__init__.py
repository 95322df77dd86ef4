"""SageMaker's built-in algorithms, run locally: a training job's channels in, a
`model.tar.gz` out, and the model served in the built-in's inference formats.

`images.py` recognises the built-in images, `channels.py` reads the input formats,
`hyperparameters.py` checks the built-ins' hyperparameters, one module per algorithm
(`xgboost_builtin`, `linear_learner`, `kmeans`, `knn`, `rcf`) trains and predicts,
`job.py` runs one training job in its folder, `inference.py` loads a model.tar.gz's
contents and answers requests. Nothing here knows about HTTP or the store.
"""
