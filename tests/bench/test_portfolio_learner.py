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
