"""Distillation (a fast LightGBM student of the job's ensemble) and the default selection.

The job ends its search after a few candidates (max_candidates), so the ensemble and the
student have the rest of a generous time limit: what is checked never depends on speed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot import AutoML
from tabpilot.artifacts import load
from tabpilot.config import JobRequest
from tabpilot.data.prepare import prepare
from tabpilot.data.split import make_split
from tabpilot.execution import distill
from tabpilot.execution.base import TrialContext, TrialTask
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.jobs import distilling, selection
from tabpilot.metrics import score
from tabpilot.models import FitData
from tabpilot.tasks import ProblemType


@pytest.fixture(scope="module")
def job(tmp_path_factory, breast_cancer) -> AutoML:
    """The rich plan's estimate made small, so that the job takes it whatever the
    machine's load (the plans' choice by time is tested on its own below)."""
    train, _, _ = breast_cancer
    ws = tmp_path_factory.mktemp("distill-ws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distilling, "RICH_COST", 1e-3)
        return AutoML(target="target", time_limit=120, max_candidates=4, n_workers=2,
                      algorithms=["lightgbm", "linear"], workspace=ws, name="distil",
                      metric="AUC").fit(train)


def _student(job: AutoML) -> dict:
    found = [c for c in job.candidates() if c["CandidateName"].endswith("-distilled")]
    assert len(found) == 1, [c["CandidateName"] for c in job.candidates()]
    return found[0]


@pytest.mark.slow  # shares a 36 s job; the distillation's parts are tested fast below
def test_the_ensemble_gets_a_completed_distilled_candidate(job) -> None:
    student = _student(job)
    assert student["CandidateStatus"] == "Completed", student.get("FailureReason")
    teacher = student["CandidateName"].removesuffix("-distilled")
    board = job.leaderboard().set_index("candidate")
    assert board.at[teacher, "algorithm"] in ("Ensemble", "Stacking")
    model = load(student["ModelLocation"])
    assert model.metadata["distilled_from"] == teacher
    assert model.metadata["family"] == "lightgbm"
    assert model.metadata["estimators"] == 1  # one model, not a bag of folds
    # taught with the best LightGBM trial's parameters, on more synthetic rows
    assert model.metadata["distillation"]["min_synthetic"] == distill.RICH_SYNTHETIC
    assert board.at[student["CandidateName"], "algorithm"] == "LightGBM"


@pytest.mark.slow  # shares a 36 s job; the distillation's parts are tested fast below
def test_the_students_score_is_its_out_of_fold_predictions_score(job, breast_cancer) -> None:
    """The leaderboard's value is computed from the fold students' predictions of the
    rows each did not learn from, saved beside the model (as every trial's)."""
    train, _, _ = breast_cancer
    student = _student(job)
    folder = Path(student["ModelLocation"]).parent
    pred = np.load(folder / VALIDATION_PREDICTIONS)
    prepared = prepare(train, "target", ProblemType.BINARY, "AUC", None, None)
    split = make_split(prepared.y, True, 0.2, None, 0)
    y = prepared.y[split.validation_rows()]
    assert len(pred) == len(y) == len(train)  # every row, out of fold
    expected = score(prepared.metric, y, pred.astype(np.float64))
    assert student["FinalAutoMLJobObjectiveMetric"]["Value"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow  # shares a 36 s job; the distillation's parts are tested fast below
def test_the_student_answers_like_its_teacher(job, breast_cancer) -> None:
    _, new, truth = breast_cancer
    student = _student(job)
    teacher = student["CandidateName"].removesuffix("-distilled")
    folder = Path(student["ModelLocation"]).parents[1]
    fast, slow = load(student["ModelLocation"]), load(folder / teacher / "model")
    agree = (fast.predict(new) == slow.predict(new)).mean()
    assert agree >= 0.9
    assert (fast.predict(new) == truth.to_numpy()).mean() >= 0.85


@pytest.mark.slow  # 28 s; the regrowth of a student cut short is checked fast below
def test_the_exported_script_reruns_the_distillation_and_its_score(job, tmp_path) -> None:
    student = _student(job)["CandidateName"]
    script = tmp_path / "student.py"
    subprocess.run([sys.executable, "-m", "tabpilot", "export", "distil", "--rerun",
                    "--candidate", student,
                    "-o", str(script), "--workspace", str(job.workspace)], check=True)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"{student}: validation AUC" in run.stdout and "reproduced" in run.stdout, run.stdout


@pytest.mark.slow  # shares a 36 s job; the distillation's parts are tested fast below
def test_the_default_selection_explains_a_choice_other_than_the_first(job) -> None:
    desc = job.describe()
    board = job.leaderboard()
    chosen = desc["BestCandidate"]["CandidateName"]
    expected, note = selection.select(board, None, "balanced", greater_is_better=True)
    assert chosen == expected
    if chosen != board["candidate"].iloc[0]:
        # a model of refit bags says so after (jobs/refits.py, built on a slow machine)
        refit = desc["BestCandidate"]["TrainedOn"] == selection.REFIT_FULL
        assert desc["SelectionNote"] == (
            f"{note} {selection.refit_note(chosen, bounded=False)}" if refit else note)
        assert board["candidate"].iloc[0] in note and "--selection accuracy" in note


# -- the score is honest: fold i's student never learns fold i's labels ------------------

def _linear_teacher(frame: pd.DataFrame, ws: Path, name: str) -> str:
    """A 5-fold bag of ridge models (deterministic, no early stopping) fitted by a job."""
    job = AutoML(target="target", time_limit=60, max_candidates=1, algorithms=["linear"],
                 ensemble=False, stacking="off", distill=False, workspace=ws, name=name,
                 n_workers=1).fit(frame)
    return job.describe()["BestCandidate"]["ModelLocation"]


def _distil(frame: pd.DataFrame, teacher: str, out: Path, final: bool = True,
            folds: int | None = None, synthetic: list[int] | None = None) -> np.ndarray:
    prepared = prepare(frame, "target", ProblemType.REGRESSION, "RMSE", None, None)
    split = make_split(prepared.y, False, 0.2, folds, 0)
    ctx = TrialContext(X=prepared.X, y=prepared.y, split=split, schema=prepared.schema,
                       problem_type=prepared.problem_type, metric=prepared.metric,
                       classes=None, job_name="honest", target="target")
    now = time.time()
    params = dict(distill.STUDENT_PARAMS, n_estimators=40)  # no early stopping on fold i
    distill.run_distillation(ctx, TrialTask("s", "lightgbm", params, str(out / "model"),
                                            now + 300, now + 330, distill_of={
                                                "teacher": "t", "teacher_dir": teacher,
                                                "final": final, "synthetic": synthetic}))
    return np.load(out / VALIDATION_PREDICTIONS), split


def test_fold_i_student_is_the_same_whatever_fold_i_labels_are(diabetes, tmp_path) -> None:
    """Two tables that differ only in fold 0's targets, each with its own teacher (fitted
    by a job on it): fold 0's student, taught by the fold-0 models of its teacher, predicts
    fold 0's rows exactly alike; fold 1's student, which learns from fold 0's rows, does not.
    A student taught by the whole teacher (whose bag saw fold 0) would differ on fold 0."""
    train, _ = diabetes
    split = make_split(train["target"].to_numpy(), False, 0.2, None, 0)
    fold0 = split.folds[0][1]
    other = train.copy()
    other.loc[other.index[fold0], "target"] = np.random.default_rng(1).permutation(
        other["target"].to_numpy()[fold0]) * 2.0
    first, _ = _distil(train, _linear_teacher(train, tmp_path / "ws", "first"), tmp_path / "a")
    second, split = _distil(other, _linear_teacher(other, tmp_path / "ws", "second"),
                            tmp_path / "b")
    n0, n1 = len(split.folds[0][1]), len(split.folds[1][1])
    np.testing.assert_array_equal(first[:n0], second[:n0])
    assert not np.allclose(first[n0:n0 + n1], second[n0:n0 + n1])


def test_a_job_that_kept_its_fold_students_is_rebuilt_as_that_bag(diabetes, tmp_path
                                                                   ) -> None:
    """Without the student on every row (`final: False`, as the export of a job that had
    no time for it says) the fold students are the model: a bag validated exactly as the
    one student was. The fit records say which was kept, and the export follows them."""
    from tabpilot.artifacts import package
    from tabpilot.reports.codegen import distill_code

    train, _ = diabetes
    teacher = _linear_teacher(train, tmp_path / "ws", "kept")
    one, _ = _distil(train, teacher, tmp_path / "one")
    bag, split = _distil(train, teacher, tmp_path / "bag", final=False)
    np.testing.assert_array_equal(one, bag)  # the same fold students, the same validation
    meta = [package.load(tmp_path / d / "model") for d in ("one", "bag")]
    assert [len(m.predictor.estimators) for m in meta] == [1, len(split.folds)]
    fits = [m.metadata["fits"][-1]["distilled_on"] for m in meta]
    assert fits == [distill.ALL_ROWS, distill.FOLD_STUDENTS]
    spec = {"name": "s", "objective": 1.0, "params": {"distilled_from": "t"},
            "fits": meta[1].metadata["fits"]}
    assert '"final": False' in distill_code(spec)
    assert '"final"' not in distill_code(dict(spec, fits=meta[0].metadata["fits"]))


def test_fold_students_cut_short_by_the_deadline_are_not_kept_as_the_model(
        diabetes, tmp_path, monkeypatch) -> None:
    """When the deadline cut the fold students short (a few trees each, on a loaded machine
    or behind a slow teacher) the distillation fails, saying so, rather than leave a model
    no one would choose: every fold cut, with or without the time for a student on every
    row (whose trees would be the folds' deadline count); some cut, when the fold students
    would be the model. The fits are real; their records say they were cut."""
    train, _ = diabetes
    teacher = _linear_teacher(train, tmp_path / "ws", "cut")
    fit_folds = distill._fit_folds
    cut = {"folds": None}

    def cut_short(*args, **kwargs):
        estimators, infos, scores, pred = fit_folds(*args, **kwargs)
        return estimators, [dict(i, stopped_by_deadline=cut["folds"] is None or k in cut[
            "folds"]) for k, i in enumerate(infos)], scores, pred

    monkeypatch.setattr(distill, "_fit_folds", cut_short)
    for final in (True, False):
        with pytest.raises(TimeoutError, match="every fold's student was cut short"):
            _distil(train, teacher, tmp_path / f"every-{final}", final=final)
    cut["folds"] = {0}
    with pytest.raises(TimeoutError, match="fold students were cut short"):
        _distil(train, teacher, tmp_path / "bag", final=False)
    _distil(train, teacher, tmp_path / "one", final=True)  # the student on every row is kept
    assert (tmp_path / "one" / "model").is_dir()


def test_a_holdout_student_cut_short_by_the_deadline_is_not_kept(diabetes, tmp_path,
                                                                 monkeypatch) -> None:
    """On a holdout the one student is the model: cut short by the deadline, it fails the
    distillation as cut fold students do. The same student, not cut, is kept."""
    train, _ = diabetes
    teacher = _linear_teacher(train, tmp_path / "ws", "holdout")
    fit_folds = distill._fit_folds
    cut = {"yes": True}

    def maybe_cut(*args, **kwargs):
        estimators, infos, scores, pred = fit_folds(*args, **kwargs)
        assert len(infos) == 1  # a holdout: one fit
        return estimators, [dict(i, stopped_by_deadline=cut["yes"]) for i in infos], \
            scores, pred

    monkeypatch.setattr(distill, "_fit_folds", maybe_cut)
    with pytest.raises(TimeoutError, match="the student was cut short"):
        _distil(train, teacher, tmp_path / "cut", folds=1)
    cut["yes"] = False
    _distil(train, teacher, tmp_path / "whole", folds=1)
    assert (tmp_path / "whole" / "model").is_dir()


def test_a_slow_teacher_labels_what_fits_in_its_share_and_an_export_reruns_it(
        diabetes, tmp_path, monkeypatch) -> None:
    """The teacher labels a fit's synthetic rows for at most LABEL_SHARE of the fit's time,
    its rate timed on the first PROBE_ROWS (here no share at all: the probe alone). The fit
    records say how many, and a rerun given those counts (the export) makes the same
    student; without the cut every row drawn is labelled."""
    from tabpilot.artifacts import package
    from tabpilot.reports.codegen import distill_code

    train, _ = diabetes
    teacher = _linear_teacher(train, tmp_path / "ws", "slow")
    monkeypatch.setattr(distill, "PROBE_ROWS", 100)
    monkeypatch.setattr(distill, "LABEL_SHARE", 0.0)
    cut, split = _distil(train, teacher, tmp_path / "cut")
    fits = package.load(tmp_path / "cut" / "model").metadata["fits"]
    assert [f["synthetic_rows"] for f in fits] == [100] * (len(split.folds) + 1)
    assert all(f["synthetic_cut"] for f in fits)  # 2 per real row were drawn
    spec = {"name": "s", "objective": 1.0, "params": {"distilled_from": "t"}, "fits": fits}
    assert f'"synthetic": {[100] * (len(split.folds) + 1)!r}' in distill_code(spec)
    monkeypatch.setattr(distill, "LABEL_SHARE", 1 / 3)
    again, _ = _distil(train, teacher, tmp_path / "again",
                       synthetic=[100] * (len(split.folds) + 1))
    np.testing.assert_array_equal(cut, again)
    whole, _ = _distil(train, teacher, tmp_path / "whole")
    fits = package.load(tmp_path / "whole" / "model").metadata["fits"]
    assert not any(f["synthetic_cut"] for f in fits)
    assert '"synthetic"' not in distill_code(dict(spec, fits=fits))
    assert not np.array_equal(cut, whole)


def test_the_labelled_rows_are_the_first_drawn_with_the_teachers_predictions(
        diabetes, tmp_path, monkeypatch) -> None:
    train, _ = diabetes
    teacher = load(_linear_teacher(train, tmp_path / "ws", "labels")).predictor
    frame = train.drop(columns="target").iloc[:300]
    monkeypatch.setattr(distill, "PROBE_ROWS", 50)
    later = time.time() + 600
    rows, labels = distill._labelled(teacher, frame, later, 120)
    assert rows.equals(frame.iloc[:120])
    np.testing.assert_allclose(labels, teacher.raw_predict(frame.iloc[:120]), rtol=1e-12)
    assert len(distill._labelled(teacher, frame, later, None)[0]) == 300  # time for all
    assert len(distill._labelled(teacher, frame, later, 0)[0]) == 0
    assert len(distill._labelled(teacher, frame.iloc[:0], later, None)[0]) == 0
    monkeypatch.setattr(distill, "LABEL_SHARE", 0.0)
    assert len(distill._labelled(teacher, frame, later, None)[0]) == 50  # the probe


def test_the_student_on_every_row_is_not_started_without_the_time_it_needs(diabetes
                                                                         ) -> None:
    """Its estimate (FINAL_SHARE fold fits, as timed) against the time left: more, and
    nothing is fitted (the fold students are kept); a fit cut by its deadline is dropped."""
    from tabpilot.models import get_family

    train, _ = diabetes
    X, y = train.drop(columns="target").to_numpy(np.float64), train["target"].to_numpy()
    family, params = get_family("lightgbm"), dict(distill.STUDENT_PARAMS, n_estimators=40)
    asked = []

    def data(rows: np.ndarray, valid: None, deadline: float) -> FitData:
        asked.append(deadline)
        return FitData(X=X[rows], y=y[rows], problem_type=ProblemType.REGRESSION,
                       n_classes=0, categorical_indices=[], deadline=deadline)

    rows, later = np.arange(len(y)), time.time() + 600
    assert distill._final_student(family, params, rows, data, later, need=1.0) is not None
    assert distill._final_student(family, params, rows, data, later, need=1e6) is None
    assert distill._final_student(family, params, rows, data, later, need=None) is None
    assert asked == [later]  # only the first was started
    past = time.time() - 1.0  # the fit stops at its first check: cut short, dropped
    assert distill._final_student(family, params, rows, data, past, need=-10.0) is None
    assert asked == [later, past]


# -- the pieces -----------------------------------------------------------------------------

def _fit_data(n: int) -> FitData:
    return FitData(X=np.arange(n * 2, dtype=np.float64).reshape(n, 2), y=np.zeros(n, int),
                   problem_type=ProblemType.MULTICLASS, n_classes=3, categorical_indices=[])


def test_soft_labels_repeat_each_row_per_class_weighted_by_its_probability() -> None:
    real = np.array([[0.7, 0.3, 0.0], [0.1, 0.1, 0.8]])
    synth = np.array([[0.0005, 0.4995, 0.5]])
    data = distill._soft_fit_data(_fit_data(2), real, np.array([[100.0, 101.0]]), synth, 3)
    rows = {(tuple(x), int(c)): w for x, c, w in zip(data.X, data.y, data.weights, strict=True)}
    assert rows == pytest.approx({((0.0, 1.0), 0): 0.7, ((0.0, 1.0), 1): 0.3,
                                  ((2.0, 3.0), 0): 0.1, ((2.0, 3.0), 1): 0.1,
                                  ((2.0, 3.0), 2): 0.8,
                                  ((100.0, 101.0), 1): 0.4995, ((100.0, 101.0), 2): 0.5})
    # classes of weight under MIN_WEIGHT (0 for row one, 0.0005 for the synthetic row) go


def test_regression_soft_targets_are_the_values_and_row_weights_carry_over() -> None:
    data = _fit_data(2)
    data.problem_type, data.weights = ProblemType.REGRESSION, np.array([2.0, 3.0])
    out = distill._soft_fit_data(data, np.array([1.5, 2.5]), np.array([[9.0, 9.0]]),
                                 np.array([4.0]), 0)
    assert out.y.tolist() == [1.5, 2.5, 4.0]
    assert out.weights.tolist() == [2.0, 3.0, 1.0]
    assert out.X.shape == (3, 2)


def test_synthetic_rows_mix_values_of_real_rows_and_keep_dtypes() -> None:
    frame = pd.DataFrame({"n": np.arange(50, dtype=float),
                          "c": pd.Categorical(list("ab") * 25, categories=["a", "b", "z"]),
                          "s": [f"w{i}" for i in range(50)]})
    out = distill._synthesize(frame, np.random.default_rng(0))
    assert len(out) == int(50 * distill.SYNTHETIC_PER_ROW)
    assert list(out.columns) == ["n", "c", "s"]
    assert out.dtypes.equals(frame.dtypes)
    assert list(out["c"].cat.categories) == ["a", "b", "z"]
    for col in frame:
        assert set(out[col]) <= set(frame[col])
    # values of one synthetic row come from several real rows
    mixed = (out["n"].map(lambda v: f"w{int(v)}") != out["s"]).mean()
    assert 0.2 < mixed < 0.8


# -- the selection rule ---------------------------------------------------------------------

def _board(rows: list[tuple[str, str, float, float]], metric: str = "AUC") -> pd.DataFrame:
    board = pd.DataFrame(rows, columns=["candidate", "algorithm", "objective",
                                        "latency_ms_p50"])
    board.attrs["objective_metric"] = metric
    return board


BOARD = [("ensemble-9", "Ensemble", 0.9300, 6.0), ("lightgbm-1", "LightGBM", 0.9290, 0.4),
         ("ensemble-9-distilled", "LightGBM", 0.9280, 0.2), ("linear-2", "Linear", 0.85, 0.1)]


def test_balanced_hands_out_the_fastest_within_the_tolerance_and_says_why() -> None:
    chosen, note = selection.select(_board(BOARD), None, "balanced", True)
    assert chosen == "ensemble-9-distilled"  # within 0.5 % and 30x faster; linear is not
    assert "ensemble-9" in note and "30.0x faster" in note and "0.5%" in note


def test_accuracy_and_a_bound_override_the_balanced_choice() -> None:
    assert selection.select(_board(BOARD), None, "accuracy", True) == ("ensemble-9", None)
    assert selection.select(_board(BOARD), 0.3, "balanced", True)[0] == "ensemble-9-distilled"
    assert selection.select(_board(BOARD), 1.0, "balanced", True)[0] == "lightgbm-1"
    request = JobRequest(target="y", selection="accuracy")
    assert selection.for_request(_board(BOARD), request)[0] == "ensemble-9"


def test_balanced_keeps_the_best_when_nothing_fast_is_close_enough() -> None:
    board = _board([("ensemble-9", "Ensemble", 0.93, 6.0), ("linear-2", "Linear", 0.90, 0.1)])
    assert selection.select(board, None, "balanced", True) == ("ensemble-9", None)
    # an error metric: lower is better, the tolerance is relative to the best's value
    board = _board([("e", "Ensemble", 100.0, 6.0), ("f", "LightGBM", 100.4, 0.5),
                    ("g", "LightGBM", 101.0, 0.1)], metric="RMSE")
    assert selection.select(board, None, "balanced", False)[0] == "f"


def _with_errors(board: pd.DataFrame, against: str, errors: dict[str, float]) -> pd.DataFrame:
    board.attrs[selection.SHORTFALL_SE] = {"against": against, "errors": errors}
    return board


def test_a_most_accurate_that_misses_the_latency_goal_gives_way_within_the_tolerance() -> None:
    """No candidate within one standard error is faster: the most accurate that meets
    LATENCY_GOAL_MS is handed out when within 0.5 %, however large its shortfall's error."""
    rows = [("ensemble-9", "Ensemble", 0.9851, 2.7), ("stack-8", "Stacking", 0.9830, 0.67),
            ("lightgbm-1", "LightGBM", 0.9829, 0.44), ("ensemble-9-distilled", "LightGBM",
                                                       0.9818, 0.24)]
    errors = {"stack-8": 0.0009, "lightgbm-1": 0.0010, "ensemble-9-distilled": 0.0012}
    board = _with_errors(_board(rows), "ensemble-9", errors)
    assert selection.fast_choice(board, "ensemble-9", True) is None
    chosen, note = selection.select(board, None, "balanced", True)
    assert chosen == "stack-8"  # the most accurate within the goal, not the fastest
    assert f"{selection.LATENCY_GOAL_MS:g} ms goal" in note and "0.5%" in note
    assert "--selection accuracy hands out ensemble-9" in note
    assert selection.select(board, None, "accuracy", True) == ("ensemble-9", None)
    # beyond the tolerance, the goal gives nothing
    far = _with_errors(_board([rows[0], ("lightgbm-1", "LightGBM", 0.97, 0.44)]),
                       "ensemble-9", {"lightgbm-1": 0.001})
    assert selection.select(far, None, "balanced", True) == ("ensemble-9", None)


def test_an_ensemble_is_never_handed_out_in_place_of_its_full_twin() -> None:
    """An ensemble whose twin holds its members refit on every row (REFIT_PARENTS) is
    neither the fast choice nor the goal's, however fast it timed."""
    rows = [("ensemble-9-full", "Ensemble", 32.98, 1.9), ("ensemble-7", "Ensemble", 32.98, 0.96),
            ("ensemble-10-fast", "Ensemble", 33.14, 0.48), ("lightgbm-1", "LightGBM", 34.2, 0.2)]
    # the fast ensemble's shortfall is beyond its error: the goal decides
    board = _with_errors(_board(rows, metric="RMSE"), "ensemble-9-full",
                         {"ensemble-7": 0.05, "ensemble-10-fast": 0.05})
    assert selection.select(board, None, "balanced", False)[0] == "ensemble-7"
    board.attrs[selection.REFIT_PARENTS] = ["ensemble-7"]
    assert selection.select(board, None, "balanced", False)[0] == "ensemble-10-fast"
    # twice as fast and within its error: the fast choice, were it not the twin's parent
    rows[1] = ("ensemble-7", "Ensemble", 32.98, 0.9)
    fast = _with_errors(_board(rows, metric="RMSE"), "ensemble-9-full",
                        {"ensemble-7": 0.05, "ensemble-10-fast": 0.05})
    assert selection.fast_choice(fast, "ensemble-9-full", False) == "ensemble-7"
    fast.attrs[selection.REFIT_PARENTS] = ["ensemble-7"]
    assert selection.fast_choice(fast, "ensemble-9-full", False) is None


def test_the_latency_goal_leaves_a_fast_enough_choice_alone() -> None:
    """A most accurate within the goal keeps the standard-error rule, and so does a
    choice within the error that meets the goal."""
    meets = _with_errors(_board([("ensemble-9", "Ensemble", 0.9851, 0.9),
                                 ("lightgbm-1", "LightGBM", 0.9829, 0.44)]),
                         "ensemble-9", {"lightgbm-1": 0.001})
    assert selection.select(meets, None, "balanced", True) == ("ensemble-9", None)
    near = _with_errors(_board([("ensemble-9", "Ensemble", 0.9851, 2.7),
                                ("stack-8", "Stacking", 0.9849, 0.8),
                                ("lightgbm-1", "LightGBM", 0.9840, 0.3)]),
                        "ensemble-9", {"stack-8": 0.001, "lightgbm-1": 0.0005})
    assert selection.select(near, None, "balanced", True)[0] == "stack-8"
    # a choice within the error that misses the goal gives way to one that meets it
    slow = _with_errors(_board([("ensemble-9", "Ensemble", 0.9851, 6.0),
                                ("stack-8", "Stacking", 0.9849, 2.0),
                                ("lightgbm-1", "LightGBM", 0.9840, 0.3)]),
                        "ensemble-9", {"stack-8": 0.001, "lightgbm-1": 0.0005})
    assert selection.select(slow, None, "balanced", True)[0] == "lightgbm-1"


def test_an_unknown_selection_is_refused_with_the_choices() -> None:
    from tabpilot.errors import ConfigError

    with pytest.raises(ConfigError, match="balanced"):
        JobRequest.build(target="y", selection="fastest")


# -- the time the search keeps for it -------------------------------------------------------

def test_the_reserve_is_the_estimate_less_the_level2_slack_and_capped() -> None:
    from tabpilot.jobs.distilling import SAFETY, Plan, distill_estimate, distill_seconds

    plan = Plan({}, 0, distill_estimate(1.0, 1000, 2, 5))
    assert distill_seconds(600, plan) == pytest.approx(SAFETY * plan.seconds)
    # the stack's and the ensemble's doubled shares leave half of them for it
    assert distill_seconds(600, plan, level2_reserve=4.0) == pytest.approx(
        SAFETY * plan.seconds - 2.0)
    assert distill_seconds(600, plan, level2_reserve=100.0) == 0.0
    assert distill_seconds(60, Plan({}, 0, 100.0)) == pytest.approx(3.0)  # 5 % of the limit
    assert distill_seconds(60, None) == pytest.approx(3.0)  # nothing to scale from yet


def test_the_estimate_grows_with_what_the_student_does() -> None:
    from tabpilot.jobs.distilling import distill_estimate

    estimate = distill_estimate(1.0, 1000, 2, 5)
    assert distill_estimate(2.0, 1000, 2, 5) > estimate
    assert distill_estimate(1.0, 5000, 2, 5) > estimate
    assert distill_estimate(1.0, 1000, 7, 5) > estimate
    assert distill_estimate(1.0, 1000, 2, 5, min_synthetic=10_000) > estimate
    assert distill_estimate(1.0, 1000, 2, 5, cost=1.0) > estimate


def test_a_slow_or_large_teacher_raises_the_estimate_by_its_measured_costs() -> None:
    """The teacher's labelling at its measured rate and its loading count: wine_quality's
    1.6 GB ensemble labelled 597 rows a second, and its students, planned at 20,000 a
    second, were cut short at 2 trees a fold."""
    from types import SimpleNamespace

    from tabpilot.jobs.distilling import TEACHER_ROWS_PER_SECOND, Teacher, distill_estimate
    from tabpilot.jobs.ensembling import LOAD_BYTES_PER_SECOND

    typical = distill_estimate(1.0, 1000, 2, 5)
    assert distill_estimate(1.0, 1000, 2, 5, teacher=Teacher()) == typical
    slow = Teacher.measured(SimpleNamespace(throughput_rows_s=500.0, model_bytes=10**9))
    assert (slow.rows_per_second, slow.model_bytes) == (500.0, 10**9)
    taught = 2 * distill.synthetic_rows(1000)  # the fold models' labels, then the whole's
    assert distill_estimate(1.0, 1000, 2, 5, teacher=slow) == pytest.approx(
        typical - taught / TEACHER_ROWS_PER_SECOND + taught / 500.0
        + 10**9 / LOAD_BYTES_PER_SECOND)
    unmeasured = Teacher.measured(SimpleNamespace(throughput_rows_s=None, model_bytes=None))
    assert (unmeasured.rows_per_second, unmeasured.model_bytes) == (TEACHER_ROWS_PER_SECOND, 0)


def test_synthetic_rows_per_fit_are_bounded() -> None:
    assert distill.synthetic_rows(100) == int(100 * distill.SYNTHETIC_PER_ROW)
    assert distill.synthetic_rows(100, minimum=5000) == 5000
    assert distill.synthetic_rows(10**6, minimum=5000) == distill.MAX_SYNTHETIC
    assert distill.synthetic_rows(0, minimum=5000) == 0


def test_a_rich_student_keeps_early_stopping_within_its_rounds() -> None:
    params = distill.rich_params({"learning_rate": 0.03, "num_leaves": 40, "n_estimators": 77})
    assert params == {"learning_rate": 0.03, "num_leaves": 40,
                      "max_rounds": distill.RICH_MAX_ROUNDS}


def test_the_best_plan_that_fits_in_the_time_left_is_taken() -> None:
    from tabpilot.jobs.distilling import Plan, choose_plan

    rich, cheap = Plan({"rich": 1}, 10_000, 20.0), Plan({"cheap": 1}, 0, 4.0)
    assert choose_plan([rich, cheap], 30.0) is rich
    assert choose_plan([rich, cheap], 10.0) is cheap
    assert choose_plan([rich, cheap], 3.0) is None


def test_the_time_kept_for_distilling_goes_to_the_steps_before_when_it_cannot_fit() -> None:
    """Once the teacher is built its measured costs decide: when even the cheapest plan
    needs more than the time kept, none is kept (the refits and the fast ensemble get it:
    wine_quality at 60 s kept 3 s for a 700 MB teacher that never started)."""
    from tabpilot.jobs.distilling import Distilling, Lesson, Plan, Teacher

    class Job(Distilling):
        def __init__(self, lesson: Lesson | None) -> None:
            self.lesson = lesson

        def _lesson(self, prepared: object, split: object) -> Lesson | None:
            return self.lesson

    plans = [Plan({"rich": 1}, 10_000, 20.0), Plan({"cheap": 1}, 0, 4.0)]
    taught = Job(Lesson("ensemble-009", None, Teacher(), plans))
    assert taught._distill_kept(None, None, 5.0) == 5.0  # the cheap plan fits
    assert taught._distill_kept(None, None, 4.0) == 4.0
    assert taught._distill_kept(None, None, 3.9) == 0.0  # no plan fits: nothing kept
    assert taught._distill_kept(None, None, 0.0) == 0.0
    assert Job(None)._distill_kept(None, None, 5.0) == 0.0  # no ensemble or stack to teach


def test_a_student_cut_short_by_the_deadline_is_regrown_to_the_trees_it_kept() -> None:
    """Under load a fold's student stops at the job's deadline: the exported code grows it
    to the trees it kept (not to its early stopping), so the score it reproduces is the
    job's."""
    from tabpilot.execution.distill import _regrown
    from tabpilot.reports.codegen import distill_code

    spec = {"name": "ensemble-003-distilled", "objective": 0.9, "n_threads": 1,
            "params": {"distilled_from": "ensemble-003", "min_synthetic": 0,
                       "learning_rate": 0.1, "max_rounds": 300},
            "fits": [{"best_iteration": 40, "stopped_by_deadline": True},
                     {"best_iteration": 55}, {"distilled_on": "all rows", "n_estimators": 47}]}
    assert '"fold_rounds": [40, None]' in distill_code(spec)
    whole = dict(spec, fits=[{"best_iteration": 40}, {"best_iteration": 55}])
    assert "fold_rounds" not in distill_code(whole)
    assert _regrown({"learning_rate": 0.1, "max_rounds": 300}, [40, None]) == [
        {"learning_rate": 0.1, "max_rounds": 40}, {"learning_rate": 0.1, "max_rounds": 300}]
    assert _regrown({"learning_rate": 0.1}, None) is None
