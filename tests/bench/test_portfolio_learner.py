"""The portfolio learner's choice: greedy cover of the tables, bounded by fit time."""

from __future__ import annotations

import numpy as np

from bench import portfolio as learner


def test_relative_cost_is_the_geometric_mean_of_each_tables_ratio_to_the_default() -> None:
    seconds = np.array([[1.0, 2.0, 0.5],
                        [2.0, 8.0, 1.0]])
    cost = learner.relative_cost(seconds)
    assert np.allclose(cost, [1.0, np.sqrt(2 * 4), 0.5])


def test_greedy_keeps_every_prefix_within_its_budget() -> None:
    norm = np.array([[0.1, 0.0, 0.02, 0.1],
                     [0.1, 0.0, 0.1, 0.02]])
    assert learner.greedy(norm, 2)[0] == 1  # column 1 covers both tables alone
    cost = np.array([1.0, 3.0, 1.0, 1.0])
    assert learner.greedy(norm, 2, cost=cost, budget=[1.1, 2.2]) == [2, 3]
    assert learner.greedy(norm, 2, cost=cost, budget=[1.1, 4.0]) == [2, 1]
    assert learner.greedy(norm, 3, first=[0], cost=cost, budget=[1.0, 1.0, 1.0]) == [0]


def test_budgets_follow_the_hand_written_lists_cumulative_cost() -> None:
    cost = np.array([1.0, 2.0, 0.5, 9.0])
    assert np.allclose(learner.budgets(cost, [0, 1, 2]),
                       learner.COST_SLACK * np.array([1.0, 3.0, 3.5]))


def test_a_better_but_slow_configuration_is_never_shipped() -> None:
    """Column 3 is best on every table but fits 10x slower than the default: the learned
    list is built from the cheap ones, and wins against the hand-written one without it."""
    rng = np.random.default_rng(0)
    n_tables = 8
    losses = np.column_stack([
        np.full(n_tables, 1.10),  # hand-written default
        np.full(n_tables, 1.20),  # hand-written second
        np.full(n_tables, 1.15),  # hand-written third
        np.full(n_tables, 1.00),  # slow and best
        1.02 + rng.uniform(0, 0.01, n_tables),  # cheap and nearly as good
    ])
    seconds = np.column_stack([np.ones(n_tables), np.ones(n_tables), np.ones(n_tables),
                               np.full(n_tables, 10.0), np.full(n_tables, 1.05)])
    chosen, scores = learner.choose(losses, seconds, n_hand=3)
    assert chosen and 3 not in chosen and chosen[0] == 4
    assert scores["shipped"] == "scratch"
    assert scores["scratch cost"] <= learner.COST_SLACK * scores["hand-written cost"]
    cheap = seconds.copy()
    cheap[:, 3] = 1.0  # the same configuration at the default's cost is taken first
    assert learner.choose(losses, cheap, n_hand=3)[0][0] == 3


def test_a_rejected_cell_is_reported_and_kept_hand_written(tmp_path, monkeypatch) -> None:
    """--reuse chooses again from raw losses: the rejected cell ships nothing."""
    import json
    from types import SimpleNamespace

    written = {}
    monkeypatch.setattr(learner, "write_results",
                        lambda stem, md, data: written.update(md=md))
    losses = [[1.10, 1.20, 1.15, 1.02 + 0.001 * k] for k in range(8)]
    seconds = [[1.0, 1.0, 1.0, 1.0]] * 8
    configs = [dict(learning_rate=0.05 + 0.01 * i, num_leaves=31, min_child_samples=20,
                    feature_fraction=0.9, bagging_fraction=1.0, lambda_l2=1e-3,
                    min_data_per_group=100, cat_smooth=10.0) for i in range(4)]
    cell = {"tables": [f"t{k}" for k in range(8)], "configs": configs, "losses": losses,
            "seconds": seconds, "chosen": []}
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"raw": {"lightgbm/regression": cell}, "seconds": 1.0,
                               "command": "test"}))
    for reject, shipped in (("", True), ("lightgbm/regression", False)):
        out = tmp_path / f"portfolio-{bool(reject)}.json"
        learner.reuse(SimpleNamespace(reuse=str(raw), out=str(out), reject=reject))
        families = json.loads(out.read_text())["families"]
        assert ("lightgbm" in families) is shipped
        assert ("rejected end to end" in written["md"]) is not shipped
