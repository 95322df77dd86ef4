from __future__ import annotations

import numpy as np
import pytest

from tabpilot.data.split import CV_FOLDS, CV_MAX_ROWS, holdout_fraction, make_split, split_words


def _labels(n: int, positive_share: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < positive_share).astype(np.int64)


def test_large_data_gets_a_holdout_of_the_requested_size() -> None:
    y = _labels(CV_MAX_ROWS + 1000)
    split = make_split(y, stratify=True, validation_fraction=0.25)
    assert split.kind == "holdout"
    assert not split.is_cv
    assert len(split.folds) == 1
    train, valid = split.folds[0]
    assert len(valid) == len(y) // 4
    assert len(train) + len(valid) == len(y)
    assert set(train).isdisjoint(valid)
    assert set(train) | set(valid) == set(range(len(y)))


@pytest.mark.parametrize(("n", "valid"), [(12_000, 1200), (25_000, 2500), (34_000, 2500),
                                          (1_000_000, 10_000)])
def test_an_unnamed_fraction_keeps_a_tenth_of_a_mid_table_and_2500_rows_of_a_large_one(
        n: int, valid: int) -> None:
    split = make_split(_labels(n), stratify=True)
    assert split.kind == "holdout"
    assert len(split.folds[0][1]) == valid
    assert split.holdout_share == pytest.approx(valid / n)


def test_the_rule_for_a_small_holdout_keeps_a_fifth_to_a_tenth() -> None:
    assert holdout_fraction(1_000) == 0.2
    assert holdout_fraction(4_000) == pytest.approx(0.125)
    assert holdout_fraction(4_999) == pytest.approx(0.1, abs=1e-3)
    split = make_split(_labels(1_000), stratify=True, n_folds=1)
    assert len(split.folds[0][1]) == 200


def test_holdout_indices_are_sorted() -> None:
    train, valid = make_split(_labels(4000), stratify=True).folds[0]
    assert np.all(np.diff(train) > 0)
    assert np.all(np.diff(valid) > 0)


def test_a_refit_learns_every_training_row_in_the_order_the_trials_encoded_them() -> None:
    """Split.refit_rows: the training part, then a holdout's rows (a view of the trials'
    encoded matrix); under k-fold every training row once."""
    holdout = make_split(_labels(4000), stratify=True, n_folds=1)
    train, valid = holdout.folds[0]
    assert np.array_equal(holdout.refit_rows(), np.concatenate([train, valid]))
    kfold = make_split(_labels(300), stratify=True, n_folds=3)
    assert np.array_equal(kfold.refit_rows(), np.arange(300))


def test_holdout_is_stratified() -> None:
    y = _labels(5000, positive_share=0.07)
    train, valid = make_split(y, stratify=True, validation_fraction=0.2).folds[0]
    assert abs(y[valid].mean() - y.mean()) < 0.002
    assert abs(y[train].mean() - y.mean()) < 0.002


def test_holdout_is_reproducible_and_seeded() -> None:
    y = _labels(4000)
    a = make_split(y, stratify=True, seed=1).folds[0][1]
    b = make_split(y, stratify=True, seed=1).folds[0][1]
    c = make_split(y, stratify=True, seed=2).folds[0][1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_holdout_without_stratification_for_regression() -> None:
    y = np.random.default_rng(0).normal(size=4000)
    split = make_split(y, stratify=False, validation_fraction=0.1, n_folds=1)
    assert split.kind == "holdout"
    train, valid = split.folds[0]
    assert len(valid) == 400
    assert len(train) == 3600


def test_holdout_with_a_class_of_one_row_does_not_fail() -> None:
    y = np.zeros(4000, dtype=np.int64)
    y[:1500] = 1
    y[-1] = 2
    train, valid = make_split(y, stratify=True).folds[0]
    assert len(train) + len(valid) == len(y)


def test_small_data_gets_k_fold() -> None:
    split = make_split(_labels(500), stratify=True)
    assert split.kind == "kfold"
    assert split.is_cv
    assert len(split.folds) == CV_FOLDS


@pytest.mark.parametrize("stratify", [True, False])
def test_folds_cover_every_row_exactly_once(stratify: bool) -> None:
    y = _labels(503)
    split = make_split(y, stratify=stratify)
    valid = np.concatenate([va for _, va in split.folds])
    assert sorted(valid.tolist()) == list(range(len(y)))
    for train, va in split.folds:
        assert set(train).isdisjoint(va)
        assert len(train) + len(va) == len(y)


def test_k_fold_is_stratified() -> None:
    y = _labels(1000, positive_share=0.1)
    for _, valid in make_split(y, stratify=True).folds:
        assert abs(y[valid].mean() - y.mean()) < 0.01


def test_k_fold_with_a_class_smaller_than_the_fold_count_does_not_fail() -> None:
    y = np.zeros(200, dtype=np.int64)
    y[:3] = 1
    split = make_split(y, stratify=True)
    assert sorted(np.concatenate([va for _, va in split.folds]).tolist()) == list(range(200))


def test_explicit_fold_count() -> None:
    split = make_split(_labels(5000), stratify=True, n_folds=3)
    assert split.kind == "kfold"
    assert len(split.folds) == 3


def test_one_fold_forces_a_holdout_on_small_data() -> None:
    split = make_split(_labels(300), stratify=True, n_folds=1, validation_fraction=0.2)
    assert split.kind == "holdout"
    assert len(split.folds[0][1]) == 60


def test_validation_file_rows_follow_the_training_rows() -> None:
    split = make_split(_labels(130), stratify=True, n_valid_rows=30)
    assert split.kind == "validation-file"
    assert not split.is_cv
    [(train, valid)] = split.folds
    np.testing.assert_array_equal(train, np.arange(100))
    np.testing.assert_array_equal(valid, np.arange(100, 130))


def test_a_split_in_words_says_its_kind_size_and_why() -> None:
    y = np.zeros(32_561, dtype=int)
    y[::4] = 1
    assert split_words(make_split(y, True), "32,561 rows, 10,000 or more", False) == (
        "a holdout of 2,500 rows, 7.7% of 32,561 (32,561 rows, 10,000 or more; "
        "its size AutoGluon's rule)")
    assert "5.0% of 32,561 (folds given; its size given)" in split_words(
        make_split(y, True, 0.05, n_folds=1), "folds given", True)
    assert split_words(make_split(y[:2000], True), "2,000 rows, under 10,000", False) == (
        "5-fold cross-validation (2,000 rows, under 10,000)")
    assert split_words(make_split(y[:300], True, n_valid_rows=100), "a validation table given",
                       False) == "the validation table's 100 rows (a validation table given)"
