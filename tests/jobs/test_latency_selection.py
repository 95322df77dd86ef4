"""Latency-aware selection: --max-latency-ms, the accuracy-latency Pareto front, refit-full.

The jobs use a random forest (accurate on an XOR target) and a linear model (near chance
on XOR), both on the Python path (TABPILOT_COMPILED=0). The latencies they record are
injected, per fitted model, in place of the measured ones: ~8 ms per row for one forest
(~40 ms as a 5-fold bag) and ~0.6 ms for the linear bag, as measured on a quiet machine.
Measured ones moved with the machine's load between the jobs, and so did what was chosen.
The bounds are set from the latencies the unbounded job recorded, at the geometric middle
of the two latencies they separate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot import AutoML
from tabpilot.execution import LocalProcessExecutor
from tabpilot.jobs.selection import (
    REFIT_FULL,
    choose,
    fast_choice,
    joined,
    pareto_front,
    refit_note,
)

ALGORITHMS = ["random_forest", "linear"]
FOLDS = 5  # the k-fold of a 400-row table: a bag answers about 5 times slower than one model
MS_PER_MODEL = {"random_forest": 8.0, "linear": 0.12}  # the injected latency of one model


def _injected_latency(poll):
    """The executor's poll, each completed trial's latency replaced by MS_PER_MODEL times
    the models it fitted (5 for a bag, 1 for a refit on every row)."""

    def poll_with_injected_latency(self, timeout: float):
        results = poll(self, timeout)
        for r in results:
            if r.status == "Completed":
                family = r.candidate.split("-")[0]  # random_forest-000, random_forest-000-full
                r.latency_ms_p50 = MS_PER_MODEL[family] * r.details["estimators"]
        return results

    return poll_with_injected_latency


@pytest.fixture(scope="module")
def xor_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    a, b, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    y = np.where((a > 0) ^ (b > 0), "yes", "no")
    return pd.DataFrame({"a": a, "b": b, "noise": noise, "y": y})


def _job(frame: pd.DataFrame, ws: Path, name: str, bound: float | None) -> AutoML:
    # no stack, no ensemble: these tests choose between the two single candidates (a stack
    # of them scores higher than both and would be the unbounded job's best; an ensemble's
    # latency would be measured, not injected)
    job = AutoML(target="y", time_limit=30, max_candidates=2, algorithms=ALGORITHMS,
                 n_workers=2, name=name, workspace=ws, max_latency_ms=bound, stacking="off",
                 ensemble=False)
    return job.fit(frame)


def bounds(free: AutoML) -> dict[str, float]:
    """From the unbounded job: between one forest and the bag of them; between the linear
    model and one forest (a bag's latency / FOLDS)."""
    ms = free.leaderboard().set_index("algorithm")["latency_ms_p50"]
    bag, linear = float(ms["RandomForest"]), float(ms["Linear"])
    assert bag / FOLDS > 4 * linear, ms  # what the two bounds below need
    return {"bag": bag / np.sqrt(FOLDS), "tight": np.sqrt(linear * bag / FOLDS)}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, xor_frame) -> dict[str, AutoML]:
    ws = tmp_path_factory.mktemp("latency-ws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TABPILOT_COMPILED", "0")
        mp.setattr(LocalProcessExecutor, "poll", _injected_latency(LocalProcessExecutor.poll))
        free = _job(xor_frame, ws, "free", None)
        bound = bounds(free)
        return {"free": free,
                "bag": _job(xor_frame, ws, "bag", bound["bag"]),
                "tight": _job(xor_frame, ws, "tight", bound["tight"]),
                "none": _job(xor_frame, ws, "none", 1e-6)}


def _show(job: AutoML) -> str:
    cols = ["candidate", "objective", "latency_ms_p50", "pareto"]
    return f"bound {job.describe()['MaxLatencyMs']}:\n{job.leaderboard()[cols]}"


def _dominated(board: pd.DataFrame, i: int, greater_is_better: bool) -> bool:
    """Whether another row is at least as good and as fast, and strictly better in one."""
    me = board.iloc[i]
    for j in range(len(board)):
        other = board.iloc[j]
        if j == i:
            continue
        better = other.objective > me.objective if greater_is_better else \
            other.objective < me.objective
        as_good = better or other.objective == me.objective
        if as_good and other.latency_ms_p50 <= me.latency_ms_p50 and (
                better or other.latency_ms_p50 < me.latency_ms_p50):
            return True
    return False


def _best(job: AutoML) -> dict:
    return job.describe()["BestCandidate"]


# -- the bound ------------------------------------------------------------------------------

@pytest.mark.slow  # shares 27 s of jobs; the choice rules are tested fast below
def test_without_a_bound_the_best_is_the_slow_accurate_bag(jobs) -> None:
    job = jobs["free"]
    board = job.leaderboard()
    best = _best(job)
    assert best["CandidateName"] == board["candidate"].iloc[0]
    assert best["Algorithm"] == "RandomForest"
    assert job.describe()["MaxLatencyMs"] is None
    # no refit-full without a bound: the bag is the better model
    assert not any(c["TrainedOn"] == REFIT_FULL for c in job.candidates())


@pytest.mark.slow  # shares 27 s of jobs; the choice rules are tested fast below
@pytest.mark.parametrize("which", ["bag", "tight"])
def test_best_candidate_is_the_best_within_the_bound(jobs, which) -> None:
    job = jobs[which]
    desc = job.describe()
    bound = desc["MaxLatencyMs"]
    best = desc["BestCandidate"]
    assert best["InferenceLatencyMs"] <= bound
    board = job.leaderboard()
    within = board[board["latency_ms_p50"] <= bound]
    assert best["CandidateName"] == within["candidate"].iloc[0]  # the best of those
    assert best["Rank"] == int(within["rank"].iloc[0])
    # the bag's one-model refit says its scores are the bag's; the linear model, nothing
    assert desc["SelectionNote"] == (
        refit_note(best["CandidateName"], bounded=True) if which == "bag" else None)
    # the deployed / loaded model is that candidate
    assert Path(job.best_model().path).resolve() == Path(best["ModelLocation"]).resolve()


@pytest.mark.slow  # shares 27 s of jobs; the choice rules are tested fast below
def test_a_bag_too_slow_for_the_bound_is_collapsed_into_one_refit_model(jobs, xor_frame
                                                                         ) -> None:
    job = jobs["bag"]
    best = _best(job)
    board = job.leaderboard().set_index("candidate")
    bag = best["CandidateName"].removesuffix("-full")
    assert best["CandidateName"] == f"{bag}-full", _show(job)
    assert best["TrainedOn"] == REFIT_FULL
    assert board.at[bag, "latency_ms_p50"] > job.describe()["MaxLatencyMs"]
    assert board.at[bag, "objective"] == best["FinalAutoMLJobObjectiveMetric"]["Value"]
    model = job.best_model()
    assert model.metadata["refit_of"] == bag
    assert model.metadata["estimators"] == 1  # one forest, not five
    accuracy = (model.predict(xor_frame.drop(columns="y")) == xor_frame["y"]).mean()
    assert accuracy > 0.9


@pytest.mark.slow  # shares 27 s of jobs; the choice rules are tested fast below
def test_a_tight_bound_picks_the_fast_model_and_no_refit(jobs) -> None:
    job = jobs["tight"]
    assert _best(job)["Algorithm"] == "Linear", _show(job)
    # one forest would not meet the bound either, so nothing was refit
    assert not any(c["TrainedOn"] == REFIT_FULL for c in job.candidates())


@pytest.mark.slow  # shares 27 s of jobs; the choice rules are tested fast below
def test_when_nothing_meets_the_bound_the_fastest_is_chosen_with_a_note(jobs) -> None:
    job = jobs["none"]
    desc = job.describe()
    board = job.leaderboard()
    fastest = board.loc[board["latency_ms_p50"].idxmin(), "candidate"]
    assert desc["BestCandidate"]["CandidateName"] == fastest
    assert "no candidate answers one row within" in desc["SelectionNote"]
    assert fastest in desc["SelectionNote"]


# -- the Pareto front -----------------------------------------------------------------------

@pytest.mark.slow  # shares 27 s of jobs; the choice rules are tested fast below
@pytest.mark.parametrize("which", ["free", "bag", "tight"])
def test_pareto_flags_match_the_definition(jobs, which) -> None:
    job = jobs[which]
    board = job.leaderboard()
    expected = [not _dominated(board, i, greater_is_better=True) for i in range(len(board))]
    assert board["pareto"].tolist() == expected
    assert board["pareto"].iloc[0]  # the best is on it (its latency breaks objective ties)
    assert board.loc[board["latency_ms_p50"].idxmin(), "pareto"]  # and so is the fastest
    # leaderboard.csv and ListCandidates carry the same flags
    csv = pd.read_csv(Path(job.describe()["JobDirectory"]) / "leaderboard.csv")
    assert csv["pareto"].tolist() == expected
    flags = {c["CandidateName"]: c["ParetoOptimal"] for c in job.candidates()}
    assert [flags[n] for n in board["candidate"]] == expected


@pytest.mark.slow  # shares 27 s of jobs; the choice rules are tested fast below
def test_the_refit_model_pushes_its_bag_off_the_front(jobs) -> None:
    board = jobs["bag"].leaderboard().set_index("candidate")
    full = next((n for n in board.index if n.endswith("-full")), None)
    assert full, _show(jobs["bag"])
    assert board.at[full, "pareto"]
    assert not board.at[full.removesuffix("-full"), "pareto"]  # as good, but slower


def test_pareto_front_unit_cases() -> None:
    objective = np.array([0.9, 0.9, 0.8, 0.8, 0.7, np.nan])
    latency = np.array([5.0, 5.0, 1.0, 2.0, 0.5, 0.1])
    # equal rows do not dominate each other; a missing objective is off the front
    assert pareto_front(objective, latency, True).tolist() == [True, True, True, False,
                                                               True, False]
    # minimised metric (RMSE): smaller is better
    rmse = np.array([1.0, 2.0, 3.0])
    assert pareto_front(rmse, np.array([3.0, 1.0, 2.0]), False).tolist() == [True, True, False]


def test_choose_and_fast_choice_on_a_board() -> None:
    board = pd.DataFrame({"candidate": ["ens", "bag", "one", "lin"],
                          "algorithm": ["Ensemble", "LightGBM", "LightGBM", "Linear"],
                          "objective": [0.950, 0.948, 0.946, 0.80],
                          "latency_ms_p50": [12.0, 6.0, 1.5, 0.2]})
    assert choose(board, None) == ("ens", None)
    assert choose(board, 6.0) == ("bag", None)
    assert choose(board, 0.1)[0] == "lin"
    # within 0.5 % of 0.950 and at least twice as fast: the fastest such is "one"
    assert fast_choice(board, "ens", greater_is_better=True) == "one"
    assert fast_choice(board, "one", greater_is_better=True) is None
    assert fast_choice(board, "ens", greater_is_better=True, tolerance=1e-4) is None


def test_a_model_with_a_refit_twin_is_never_the_fast_choice() -> None:
    board = pd.DataFrame({"candidate": ["ensemble-009-full", "ensemble-009", "catboost-002",
                                        "catboost-002-full", "xgboost-003"],
                          "algorithm": ["Ensemble", "Ensemble", "CatBoost", "CatBoost", "XGBoost"],
                          "objective": [0.824, 0.824, 0.822, 0.822, 0.821],
                          "latency_ms_p50": [0.8, 0.8, 0.14, 0.15, 0.1]})
    # the twin stands for its parent (the same scores, more rows), though the parent timed
    # faster and comes first
    assert fast_choice(board, "ensemble-009-full", greater_is_better=True) == "xgboost-003"
    assert fast_choice(board, "ensemble-009-full", greater_is_better=True,
                       tolerance=0.0025) == "catboost-002-full"


# -- the CLI --------------------------------------------------------------------------------

@pytest.mark.slow  # 16 s; the bound's choice is tested in process above
def test_cli_run_with_max_latency_ms(tmp_path: Path, xor_frame) -> None:
    data = tmp_path / "xor.csv"
    xor_frame.to_csv(data, index=False)
    ws = tmp_path / "ws"
    base = [sys.executable, "-m", "tabpilot.cli"]
    proc = subprocess.run(
        # 45 s, though two candidates end it sooner: with 30 a loaded machine timed both out
        [*base, "run", str(data), "--target", "y", "--time-limit", "45",
         "--max-candidates", "2", "--algorithms", ",".join(ALGORITHMS), "--workers", "2",
         "--name", "cli-bound", "--max-latency-ms", "2.5",
         "--workspace", str(ws), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    assert desc["MaxLatencyMs"] == 2.5
    # whatever the machine's speed: the chosen one meets the bound, or nothing did
    best = desc["BestCandidate"]
    assert best["InferenceLatencyMs"] <= 2.5 or desc["SelectionNote"], desc
    shown = subprocess.run([*base, "candidates", "cli-bound", "--workspace", str(ws)],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "pareto" in shown.stdout
    cells = [[c.strip() for c in line.split("│")] for line in shown.stdout.splitlines()]
    marked = [row[2] for row in cells if len(row) > 2 and row[1].startswith("*")]
    assert marked == [best["CandidateName"]]  # the chosen candidate, and only it, is marked


def test_a_refit_models_note_says_its_scores_are_carried_over() -> None:
    for bounded in (True, False):
        note = refit_note("lightgbm-003-full", bounded)
        assert note.startswith("lightgbm-003-full holds bags") and "out-of-fold" in note
        # the override exists only without a bound (a bound refits whatever the policy)
        assert ("--selection accuracy" in note) is not bounded


def test_a_choice_note_and_a_refit_note_read_as_one_line() -> None:
    choice = "m-fast was chosen over m-full: 2.7x faster; --selection accuracy hands out m-full"
    both = joined(choice, refit_note("m-fast", bounded=False, bagged=False))
    assert both.startswith(f"{choice}; m-fast holds models refit on every training row")
    assert "m-full m-fast" not in both and "\n" not in both
    assert joined(None, "only this") == "only this" and joined(None, "") is None


def test_the_bags_collapsed_for_the_default_model_and_their_order() -> None:
    from tabpilot.jobs.refits import collapse_order

    algorithms = {"ensemble-9": "Ensemble", "stack-8": "Stacking", "xgboost-1": "XGBoost",
                  "lightgbm-2": "LightGBM", "mlp-3": "MLP", "catboost-4": "CatBoost",
                  "linear-5": "Linear", "linear-5-full": "Linear"}
    params = {n: {} for n in algorithms}
    params["ensemble-9"] = {"members": {"xgboost-1": 0.2, "stack-8": 0.5, "mlp-3": 0.1,
                                        "linear-5": 0.2}}
    params["stack-8"] = {"members": ["catboost-4", "mlp-3", "lightgbm-2", "xgboost-1"]}
    # heaviest first, the stack standing for its members; MLP bags kept, refits not redone
    assert collapse_order("ensemble-9", algorithms, params) == [
        "catboost-4", "lightgbm-2", "xgboost-1"]
    # a stack as the most accurate: all of its members; a single bag: itself
    assert collapse_order("stack-8", algorithms, params) == [
        "catboost-4", "lightgbm-2", "xgboost-1"]
    assert collapse_order("lightgbm-2", algorithms, params) == ["lightgbm-2"]
    assert collapse_order("mlp-3", algorithms, params) == []
    assert collapse_order("linear-5", algorithms, params) == []  # collapsed already
    # with each bag's milliseconds a row per second of refit: the most gainful first (the
    # twins score as the bags do, so the time buys speed), the weights breaking ties
    gain = {"catboost-4": 0.1, "lightgbm-2": 0.3, "xgboost-1": 0.1}
    assert collapse_order("ensemble-9", algorithms, params, gain) == [
        "lightgbm-2", "catboost-4", "xgboost-1"]
