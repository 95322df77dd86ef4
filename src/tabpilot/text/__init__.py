"""Text classification (Autopilot V2's TextClassificationJobConfig) on the tabular machinery.

A text job is a classification job whose only feature is one text column: it runs through
the same `JobRunner`, trials, store rows, model directories, ensembles, serving and
reports as a tabular job. What is particular to text lives here:

  featurizer.py   `TextFeaturizer`: word and character n-gram TF-IDF (optionally reduced
                  by TruncatedSVD), the fitted, picklable encoder inside text candidates
  families.py     the text candidates: word TF-IDF with logistic regression, a calibrated
                  linear SVM and SGD; LightGBM on its SVD reduction; logistic regression
                  on word and character n-grams
  explain.py      the words (n-grams) that weigh most per class, over a sample and per row
"""

from __future__ import annotations

# the families a text job tries by default (jobs/runner.py): the cheapest first, so that a
# short job on a busy machine has a model; then the strongest
TEXT_FAMILIES = ["text_sgd", "text_logistic", "text_svm", "text_lightgbm",
                 "text_char_logistic"]

__all__ = ["TEXT_FAMILIES"]
