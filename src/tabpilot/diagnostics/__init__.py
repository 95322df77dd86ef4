"""Training diagnostics, after SageMaker Debugger's built-in rules, for tabular models.

A trial records each fit's loss per boosting round or epoch (models/, `record_curves`)
and keeps the first fit's as the candidate's curves.json; rules.py turns those curves,
the training labels and the candidate's feature importance into Debugger-shaped rule
results (rules.json beside curves.json, files.py); candidate.py decides which rules run
when: the curve and label rules as the trial packages the candidate (a few list
operations), the importance rule when the reports compute the importance.

Never trains, predicts or reads the store: it reads numbers and writes two small files.
"""
