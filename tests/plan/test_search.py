"""The search itself on worlds whose best answer is known (pure functions, no model)."""
import numpy as np
import pytest

from genie_robot.errors import InputError
from genie_robot.plan.search import PlanConfig, receding_horizon, sample_sequences, search

TARGET = np.array([3, 1, 4, 1, 5, 2])


def mismatches(actions_PH):
    return (actions_PH != TARGET).sum(1).astype(float)


def test_cem_finds_the_known_best_sequence_where_shooting_with_the_same_budget_does_not():
    config = PlanConfig("cem", horizon=6, population=64, iterations=6, elites=8)
    found = search(mismatches, 6, config, np.random.default_rng(0))
    assert found.actions.tolist() == TARGET.tolist() and found.cost == 0
    assert found.probs.argmax(1).tolist() == TARGET.tolist()
    assert found.iteration_costs[-1]["mean"] < found.iteration_costs[0]["mean"]
    shooting = search(mismatches, 6, PlanConfig("shooting", 6, 64, 6, 8), np.random.default_rng(0))
    assert shooting.cost > 0  # 384 draws of 6^6 sequences
    assert shooting.probs is None


def test_cem_drives_a_point_to_its_goal_in_a_toy_world():
    """Actions 0 stay, 1 right, 2 left, 3 jump right by 3; from 0 the goal 7 needs >= 3 moves."""
    moves = np.array([0, 1, -1, 3])
    cost = lambda actions_PH: np.abs(moves[actions_PH].sum(1) - 7).astype(float)
    found = search(cost, 4, PlanConfig(horizon=5, population=32, iterations=4, elites=4), np.random.default_rng(1))
    assert moves[found.actions].sum() == 7


def test_allowed_actions_are_the_only_ones_drawn():
    allowed = np.array([False, True, False, True])
    seen = []
    cost = lambda actions_PH: seen.append(actions_PH) or np.zeros(len(actions_PH))
    search(cost, 4, PlanConfig(horizon=3, population=16, iterations=2, elites=2), np.random.default_rng(0), allowed)
    assert set(np.unique(np.concatenate(seen))) <= {1, 3}
    with pytest.raises(InputError, match="at least one True"):
        search(cost, 4, PlanConfig(), np.random.default_rng(0), np.zeros(4, bool))


def test_sampling_follows_the_per_step_distribution():
    probs_HA = np.array([[0, 0, 1.0], [1.0, 0, 0], [0.5, 0.5, 0]])
    draws = sample_sequences(probs_HA, 2000, np.random.default_rng(0))
    assert (draws[:, 0] == 2).all() and (draws[:, 1] == 0).all()
    assert set(np.unique(draws[:, 2])) == {0, 1} and abs((draws[:, 2] == 1).mean() - 0.5) < 0.05


def test_receding_horizon_replans_from_where_the_world_is():
    position, planned_at, executed = [0], [], []

    def plan_fn(step):
        planned_at.append((step, position[0]))
        return np.full(4, step)  # the plan remembers when it was made

    def execute_fn(action):
        executed.append(action)
        position[0] += 1

    plans = receding_horizon(plan_fn, execute_fn, steps=5, config=PlanConfig(horizon=4, replan_every=2))
    assert planned_at == [(0, 0), (2, 2), (4, 4)] and len(plans) == 3
    assert executed == [0, 0, 2, 2, 4]


def test_a_goal_due_sooner_than_the_horizon_shortens_the_plan():
    config = PlanConfig(horizon=6, replan_every=3, population=8)
    assert config.within(10) == config and config.within(6) == config
    assert (config.within(4).horizon, config.within(4).replan_every) == (4, 3)
    assert (config.within(2).horizon, config.within(2).replan_every) == (2, 2) and config.within(2).population == 8
    assert PlanConfig(horizon=6).within(2).replan_every == 0  # "the whole horizon" stays so


@pytest.mark.parametrize("bad, match", [
    (dict(method="mppi"), "unknown planner"), (dict(horizon=0), "horizon"), (dict(elites=20, population=8), "elites"),
    (dict(smoothing=1.0), "smoothing"), (dict(replan_every=9, horizon=8), "replan_every"),
])
def test_bad_settings_say_what_to_change(bad, match):
    with pytest.raises(InputError, match=match):
        PlanConfig(**bad)
