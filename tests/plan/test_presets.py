"""Planning presets: each task's measured best settings, changed by name and checked."""
import pytest

from genie_robot.errors import InputError
from genie_robot.plan.presets import PlanSettings, parse_setting, task_settings
from genie_robot.plan.search import PlanConfig
from genie_robot.sampling import SamplingConfig


def test_presets_hold_the_settings_measured_best():
    """The reach recipe that reached 6 of 12 held-out goals, and the push settings of record
    (docs/experiments/planning_settings.md)."""
    reach, push = task_settings("reach"), task_settings("push")
    assert reach.search() == PlanConfig("cem", horizon=2, population=16, iterations=3, elites=4, replan_every=1, anchor=True)
    assert (reach.cost, reach.target, reach.vocabulary) == ("state", "hand", "behaviours")
    assert push.search() == PlanConfig("cem", horizon=6, population=16, iterations=3, elites=4, replan_every=3)
    assert (push.cost, push.target, push.vocabulary) == ("object", "all", "latent")
    for settings in (reach, push):
        assert settings.sampling() == SamplingConfig(steps=2, order="confidence")


def test_settings_change_by_name_and_are_checked():
    changed = task_settings("reach", [parse_setting("horizon=4"), parse_setting("anchor=false"), parse_setting("temperature=0")])
    assert (changed.horizon, changed.anchor, changed.temperature) == (4, False, 0.0)
    assert parse_setting("replan-every=2") == ("replan_every", 2)
    with pytest.raises(InputError, match="KEY one of method, horizon, population"):
        parse_setting("colour=red")
    with pytest.raises(InputError, match="population takes an integer"):
        parse_setting("population=many")
    with pytest.raises(InputError, match="unknown planning task 'wave'; choose from reach, push"):
        task_settings("wave")
    for pairs, message in [([("elites", 32)], "elites .32. cannot exceed the population .16."),
                           ([("cost", "embedding")], "unknown planning cost 'embedding'; choose from object, state"),
                           ([("cost", "object")], "anchor shifts the state cost's readings"),
                           ([("order", "spiral")], "unknown unmasking order 'spiral'")]:
        with pytest.raises(InputError, match=message):
            task_settings("reach", pairs)
    with pytest.raises(InputError, match="unknown planning vocabulary"):
        PlanSettings(vocabulary="joints")
