"""The fast ensemble: a second greedy ensemble within a one-row latency budget, built when
the most accurate candidate answers slower (jobs/ensembling.py `_fast_ensemble`).

Latencies are injected (each LightGBM trial answers in INJECTED_MS, an ensemble in the
sum of its members'), so what is checked never depends on the machine's speed; the job,
its models and their validation predictions are real.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tabpilot import AutoML
from tabpilot.artifacts import load
from tabpilot.execution import LocalProcessExecutor
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.jobs import ensembling, selection
from tabpilot.metrics import METRICS, score
from tabpilot.reports.candidate import VALIDATION_TARGET

INJECTED_MS = 0.3  # each single candidate's one-row latency
BUDGET_MS = 0.65  # at most two distinct members (0.6 ms)


def _injected(poll):
    def poll_with_injected_latency(self, timeout: float):
        results = poll(self, timeout)
        for r in results:
            if r.status == "Completed":
                r.latency_ms_p50 = INJECTED_MS
        return results

    return poll_with_injected_latency


def _summed(model, rows, seconds: float = 1.0) -> dict[str, float]:
    """An ensemble's latency: its distinct members' injected ones, summed."""
    return {"latency_ms_p50": INJECTED_MS * len(model.predictor.names),
            "throughput_rows_s": 1000.0}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 600
    a, b, c = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    y = np.where(((a > 0) ^ (b > 0)) | (c + 0.5 * rng.normal(size=n) > 1.2), "yes", "no")
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": y})


@pytest.fixture(scope="module")
def job(tmp_path_factory, frame) -> AutoML:
    ws = tmp_path_factory.mktemp("fast-ensemble-ws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LocalProcessExecutor, "poll", _injected(LocalProcessExecutor.poll))
        mp.setattr(ensembling, "measure", _summed)
        mp.setattr(ensembling, "FAST_LATENCY_MS", BUDGET_MS)
        # a rung a single model fits (no ensemble), then the budget: one of them is built
        mp.setattr(ensembling, "FAST_BUDGETS_MS", (INJECTED_MS + 0.05, BUDGET_MS))
        return AutoML(target="y", time_limit=120, max_candidates=6, n_workers=2,
                      algorithms=["lightgbm"], workspace=ws, name="fast", metric="AUC",
                      stacking="off", distill=False).fit(frame)


def _board(job: AutoML) -> pd.DataFrame:
    return job.leaderboard().set_index("candidate")


def _fast(job: AutoML) -> list[str]:
    return [n for n in _board(job).index if n.endswith(ensembling.FAST_SUFFIX)]


def _job_dir(job: AutoML) -> Path:
    return Path(job.workspace) / "jobs" / str(job.name)


def _validation_y(job_dir: Path) -> np.ndarray:
    """The validation rows' classes as indices (no, yes), in the split's order."""
    y = np.load(job_dir / VALIDATION_TARGET, allow_pickle=True)
    return (y == "yes").astype(int) if y.dtype == object else y


def _expected_weights(job: AutoML, job_dir: Path, pool: list[str]) -> dict[str, float] | None:
    """The budgeted greedy selection, computed here from the candidates' saved files."""
    y = _validation_y(job_dir)
    prepared = SimpleNamespace(y=y, metric=METRICS["AUC"],
                               problem_type=SimpleNamespace(is_classification=True))
    split = SimpleNamespace(validation_rows=lambda: np.arange(len(y)))
    latency = {n: INJECTED_MS for n in pool}
    ranked = [(n, job_dir / "candidates" / n) for n in pool]
    return ensembling.select(prepared, split, ranked, ensembling.Budget(latency, BUDGET_MS))


def _main(job: AutoML) -> str:
    """The unbudgeted ensemble of the bags (the job's most accurate)."""
    names = [n for n in _board(job).index if n.startswith("ensemble-")
             and not n.endswith((ensembling.FAST_SUFFIX, selection.FULL_SUFFIX))]
    assert len(names) == 1, _board(job)
    return names[0]


def test_the_fast_ensemble_is_the_budgeted_selection_of_the_candidates(job) -> None:
    board = _board(job)
    assert board.at[_main(job), "latency_ms_p50"] > BUDGET_MS, board
    assert len(_fast(job)) == 1, board
    fast = _fast(job)[0]
    job_dir = _job_dir(job)
    pool = [n for n in board.index if board.at[n, "algorithm"] != "Ensemble"]
    expected = _expected_weights(job, job_dir, pool)
    model = load(job_dir / "candidates" / fast / "model")
    assert dict(zip(model.predictor.names, model.predictor.weights, strict=True)) == \
        pytest.approx(expected)
    assert len(expected) == 2  # two distinct members: 0.6 ms of the 0.65 ms budget
    assert model.metadata["latency_budget_ms"] == BUDGET_MS
    assert board.at[fast, "latency_ms_p50"] <= BUDGET_MS


def test_the_fast_ensemble_answers_as_its_weighted_members(job, frame) -> None:
    board = _board(job)
    fast = _fast(job)[0]
    job_dir = _job_dir(job)
    model = load(job_dir / "candidates" / fast / "model")
    X = frame.drop(columns="y").head(50)
    blended = sum(w * load(job_dir / "candidates" / n / "model").predict_proba(X).to_numpy()
                  for n, w in zip(model.predictor.names, model.predictor.weights, strict=True))
    assert np.allclose(model.predict_proba(X).to_numpy(), blended, atol=1e-9)
    # its validation score is that of its saved validation predictions
    pred = np.load(job_dir / "candidates" / fast / VALIDATION_PREDICTIONS)
    assert score(METRICS["AUC"], _validation_y(job_dir), pred) == \
        pytest.approx(board.at[fast, "objective"], abs=1e-6)


def test_no_fast_ensemble_when_the_most_accurate_answers_within_the_budget(
        tmp_path, frame) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LocalProcessExecutor, "poll", _injected(LocalProcessExecutor.poll))
        mp.setattr(ensembling, "measure", _summed)
        mp.setattr(ensembling, "FAST_LATENCY_MS", 100.0)
        mp.setattr(ensembling, "FAST_BUDGETS_MS", (100.0,))
        job = AutoML(target="y", time_limit=120, max_candidates=3, n_workers=2,
                     algorithms=["lightgbm"], workspace=tmp_path, name="roomy",
                     metric="AUC", stacking="off", distill=False).fit(frame)
    assert not _fast(job), _board(job)
    # the most accurate is fast enough: no bag is collapsed either
    assert not [c for c in job.candidates() if c["TrainedOn"] == selection.REFIT_FULL]


# -- bags collapsed into one model each (jobs/refits.py `_collapse_members`) -----------------

def _weights(model) -> dict[str, float]:
    return dict(zip(model.predictor.names, model.predictor.weights, strict=True))


def test_the_slow_ensembles_bags_are_refit_on_every_row(job) -> None:
    board, job_dir = _board(job), _job_dir(job)
    rows = {c["CandidateName"]: c for c in job.candidates()}
    weights = _weights(load(job_dir / "candidates" / _main(job) / "model"))
    heaviest = sorted(weights, key=lambda n: -weights[n])  # all, time allowing
    refit = [n for n in board.index if rows[n]["TrainedOn"] == selection.REFIT_FULL
             and board.at[n, "algorithm"] != "Ensemble"]
    assert sorted(refit) == sorted(f"{n}{selection.FULL_SUFFIX}" for n in heaviest), board
    for bag in heaviest:
        full = f"{bag}{selection.FULL_SUFFIX}"
        # the bag's scores and out-of-fold predictions, carried over; one model, not five
        assert board.at[full, "objective"] == board.at[bag, "objective"]
        assert np.array_equal(np.load(job_dir / "candidates" / full / VALIDATION_PREDICTIONS),
                              np.load(job_dir / "candidates" / bag / VALIDATION_PREDICTIONS))
        model = load(job_dir / "candidates" / full / "model")
        assert model.metadata["refit_of"] == bag
        assert model.metadata["estimators"] == 1
        assert load(job_dir / "candidates" / bag / "model").metadata["estimators"] == 5


def test_the_full_ensemble_is_the_ensemble_over_the_twins_at_the_same_weights(job) -> None:
    board, job_dir = _board(job), _job_dir(job)
    rows = {c["CandidateName"]: c for c in job.candidates()}
    names = [n for n in board.index if n.startswith("ensemble-")
             and n.endswith(selection.FULL_SUFFIX)]
    assert len(names) == 1, board
    full, main = names[0], _main(job)
    assert rows[full]["TrainedOn"] == selection.REFIT_FULL
    # each bag of the most accurate ensemble that was refit (time allowing) is replaced by
    # its refit, weighted alike, so the twin scores as the ensemble does
    expected = {selection.full_twin(n, set(board.index)): w
                for n, w in _weights(load(job_dir / "candidates" / main / "model")).items()}
    assert any(n.endswith(selection.FULL_SUFFIX) for n in expected), board
    assert _weights(load(job_dir / "candidates" / full / "model")) == pytest.approx(expected)
    assert board.at[full, "objective"] == pytest.approx(board.at[main, "objective"], abs=1e-12)
    assert np.allclose(np.load(job_dir / "candidates" / full / VALIDATION_PREDICTIONS),
                       np.load(job_dir / "candidates" / main / VALIDATION_PREDICTIONS))


def test_full_weights_replace_the_members_with_twins_and_keep_the_rest() -> None:
    done = {"lightgbm-001", "lightgbm-001-full", "mlp-002", "stack-004", "stack-004-full"}
    assert ensembling.full_weights({"lightgbm-001": 0.5, "mlp-002": 0.25, "stack-004": 0.25},
                                   done) == {"lightgbm-001-full": 0.5, "mlp-002": 0.25,
                                             "stack-004-full": 0.25}
    # no member has a twin: no -full ensemble of this kind
    assert ensembling.full_weights({"mlp-002": 0.5, "xgboost-003": 0.5}, done) is None


def test_a_refits_estimate_packages_one_model_of_the_bags_k() -> None:
    from tabpilot.execution import TrialResult
    from tabpilot.jobs import refits

    bag = TrialResult("extra_trees-003", "Completed", fit_seconds=8.0,
                      details={"package_seconds": 5.0})
    # a fifth of the bag's packaging (one forest of five), a quarter of its fits
    assert refits._refit_seconds_of(bag, 5) == pytest.approx(
        8.0 / 4 + refits.REFIT_PACKAGE_SECONDS + 5.0 / 5)
    assert refits._refit_seconds_of(bag, 10) < refits._refit_seconds_of(bag, 5)
    # what the collapse keeps adds a quarter of the fit's estimate
    assert refits._collapse_seconds(bag, 5) == pytest.approx(
        refits._refit_seconds_of(bag, 5) + 0.5)


def test_a_refit_started_on_its_estimate_has_the_time_its_fit_needs() -> None:
    """The refit's fit ends PACKAGING_SECONDS before its deadline (execution/trial.py):
    however quick the packaging, the estimate leaves the fit its share of the bag's fits
    (hpc_jobs at 60 s: the refit of a CatBoost bag whose fits took 14.1 s was stopped 3.6 s
    after it started, short of its fit's 3.5 s)."""
    from tabpilot.execution import TrialResult
    from tabpilot.execution.trial import PACKAGING_SECONDS
    from tabpilot.jobs import refits

    for package_seconds in (0.0, 0.5, 1.5, 6.0):
        bag = TrialResult("catboost-002", "Completed", fit_seconds=14.0,
                          details={"package_seconds": package_seconds})
        left_for_fit = refits._refit_seconds_of(bag, 5) - PACKAGING_SECONDS
        assert left_for_fit >= 14.0 / 4
    quick = TrialResult("catboost-002", "Completed", fit_seconds=14.0,
                        details={"package_seconds": 0.5})
    assert refits._refit_seconds_of(quick, 5) == pytest.approx(14.0 / 4 + PACKAGING_SECONDS)
    # on a holdout, the one model learns from the holdout's rows too
    assert refits._refit_seconds_of(quick, 1, 0.2) == pytest.approx(14.0 / 0.8 + PACKAGING_SECONDS)


def test_the_refits_leave_the_stacks_twins_their_packaging() -> None:
    from tabpilot.jobs import refits, stacking

    algorithms = {"ensemble-009": "Ensemble", "stack-008": "Stacking", "lightgbm-001": "LightGBM",
                  "extra_trees-003": "ExtraTrees", "xgboost-002": "XGBoost"}
    params = {"ensemble-009": {"members": {"stack-008": 0.1, "lightgbm-001": 0.9}},
              "stack-008": {"members": ["lightgbm-001", "extra_trees-003", "xgboost-002"]},
              "lightgbm-001": {}, "extra_trees-003": {}, "xgboost-002": {}}
    one_stack = 3 * stacking.SECONDS_PER_MEMBER + stacking.PACKAGE_SECONDS
    # extra_trees-003 answers faster only inside the stack's twin
    assert refits.stack_twins_seconds("ensemble-009", algorithms, params) == \
        pytest.approx(one_stack)
    assert refits.stack_twins_seconds("stack-008", algorithms, params) == \
        pytest.approx(one_stack)
    assert refits.stack_twins_seconds("lightgbm-001", algorithms, params) == 0.0
    params["ensemble-009"]["members"] = {"lightgbm-001": 0.5, "xgboost-002": 0.5}
    assert refits.stack_twins_seconds("ensemble-009", algorithms, params) == 0.0


# -- the budget ladder (ensembling.fast_budget), on made predictions ------------------------

LADDER_COSTS = {"a": 0.5, "b": 0.4, "c": 0.4}  # one row, ms, as if measured in their trials


@pytest.fixture(scope="module")
def three_views(tmp_path_factory):
    """Three regression candidates with independent errors of the same size: the ensemble
    of all three (1.3 ms) is about 1/sqrt(3) of one's RMSE, any two (0.8-0.9 ms) 1/sqrt(2)."""
    rng = np.random.default_rng(11)
    n = 400
    y = rng.normal(size=n)
    folder = tmp_path_factory.mktemp("ladder")
    ranked = []
    for name in LADDER_COSTS:
        (folder / name).mkdir()
        np.save(folder / name / VALIDATION_PREDICTIONS, y + rng.normal(size=n))
        ranked.append((name, folder / name))
    prepared = SimpleNamespace(y=y, metric=METRICS["RMSE"], classes=None,
                               problem_type=SimpleNamespace(is_classification=False))
    split = SimpleNamespace(validation_rows=lambda: np.arange(n))
    best = ensembling.evaluate(prepared, split, ranked)  # unbounded: all three
    assert best is not None and len(best[0]) == 3
    return prepared, split, ranked, best[3]


def _budget(views, best_obj: float, best_ms: float = 10.0, error=None) -> float:
    prepared, split, ranked, _ = views
    limit, selected = ensembling.fast_budget(prepared, split, ranked, LADDER_COSTS, best_obj,
                                             best_ms, lambda pred, threshold: error)
    # the budget comes with its selection, as packaging would make it again
    again = ensembling.evaluate(prepared, split, ranked, ensembling.Budget(LADDER_COSTS, limit))
    assert (selected is None) == (again is None)
    if again is not None:
        assert selected[0] == again[0] and selected[3] == again[3]
    return limit


def test_the_ladder_builds_the_cheapest_budget_the_selection_would_hand_out(
        three_views, monkeypatch) -> None:
    monkeypatch.setattr(ensembling, "FAST_BUDGETS_MS", (0.45, 0.95, 1.35, 2.0))
    best_obj = three_views[3]
    # 0.45 ms: one model alone (no ensemble); 0.95 ms: two, far short; 1.35 ms: all three
    assert _budget(three_views, best_obj) == 1.35
    # as good as the best within FAST_TOLERANCE, and within one standard error
    assert _budget(three_views, best_obj * (1 - ensembling.selection.FAST_TOLERANCE / 2),
                   error=1.0) == 1.35


def test_without_an_acceptable_rung_the_first_budget_is_built(three_views,
                                                              monkeypatch) -> None:
    monkeypatch.setattr(ensembling, "FAST_BUDGETS_MS", (0.45, 0.95, 1.35, 2.0))
    monkeypatch.setattr(ensembling, "FAST_LATENCY_MS", 0.45)
    best_obj = three_views[3]
    # beyond the relative tolerance on every rung
    assert _budget(three_views, best_obj * (1 - 2 * ensembling.selection.FAST_TOLERANCE)) \
        == 0.45
    # within it, but beyond one standard error of the difference
    shortfall = best_obj * ensembling.selection.FAST_TOLERANCE / 2
    assert _budget(three_views, best_obj - shortfall, error=shortfall / 2) == 0.45
    # a rung is tried only when the selection's speed-up could still be met
    assert _budget(three_views, best_obj, best_ms=2.6) == 0.45
    assert _budget(three_views, best_obj, best_ms=2.7) == 1.35


def test_the_standard_error_is_asked_only_where_the_relative_rule_accepts(
        three_views, monkeypatch) -> None:
    monkeypatch.setattr(ensembling, "FAST_BUDGETS_MS", (0.45, 0.95, 1.35, 2.0))
    prepared, split, ranked, best_obj = three_views
    asked = []

    def error_of(pred, threshold):
        asked.append(score(METRICS["RMSE"], prepared.y, pred))
        return None

    assert ensembling.fast_budget(prepared, split, ranked, LADDER_COSTS, best_obj, 10.0,
                                  error_of)[0] == 1.35
    assert asked == [pytest.approx(best_obj)]  # once: the three-model rung's ensemble
